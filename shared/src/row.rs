//! What a decoder produces per column: a [`Column`] (a name and its value) or a [`Reason`] (a
//! column, or the record, and the rule it breaks).
//!
//! A leaf below `debezium`, `validate` and `detect`, which fill them, and `outcome`, which
//! collects them into a change or a reject (and re-exports both). A `Reason` names a rule,
//! never a value, so a reject cannot carry what it refused.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use serde::Serialize;

use crate::value::Value;

/// A target column and its value (masked where configured).
#[derive(Debug, Clone)]
pub struct Column<'a> {
    /// Lowercase column name.
    pub name: Arc<str>,
    /// The decoded value: raw until `Masker::apply` replaces it, [`Value::Unavailable`] for
    /// Debezium's placeholder.
    pub value: Value<'a>,
}

/// One failed check: a column (or the record as a whole) and a rule name. Serialized as
/// `{"column": …, "rule": …}` in dead letters (README, "Rule names").
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
pub struct Reason {
    /// The lowercase column, or `None` when the record as a whole fails.
    pub column: Option<Arc<str>>,
    /// The rule's name (`required`, `source_position`, `detected_ssn`, …).
    pub rule: Cow<'static, str>,
}

impl Reason {
    /// The record as a whole breaks `rule`.
    pub fn record(rule: &'static str) -> Reason {
        Reason { column: None, rule: Cow::Borrowed(rule) }
    }

    /// `column` breaks `rule`.
    pub fn column(column: Arc<str>, rule: &'static str) -> Reason {
        Reason { column: Some(column), rule: Cow::Borrowed(rule) }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.column {
            Some(column) => write!(f, "{column}: {}", self.rule),
            None => f.write_str(&self.rule),
        }
    }
}
