//! What a decoder produces per column: a [`Column`] (a name and its value) or a [`Reason`] (a
//! column, or the record, and the rule it breaks).
//!
//! A leaf below `debezium`, `validate` and `detect`, which fill them, and `outcome`, which
//! collects them into a change or a reject (and re-exports both). A `Reason` names a
//! [`Rule`], never a value, so a reject cannot carry what it refused.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::rule::Rule;
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

/// One failed check: a column (or the record as a whole) and a rule. Serialized as
/// `{"column": …, "rule": …}` in dead letters and `cdc explain` lines, the rule by its name
/// (README, "Rule names"); reading one back fails on a rule name this version does not know
/// (dead letters read theirs with [`known_reasons`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Reason {
    /// The lowercase column, or `None` when the record as a whole fails.
    pub column: Option<Arc<str>>,
    /// The rule it breaks (`required`, `source_position`, `detected_ssn`, …).
    pub rule: Rule,
}

impl Reason {
    /// The record as a whole breaks `rule`.
    pub fn record(rule: Rule) -> Reason {
        Reason { column: None, rule }
    }

    /// `column` breaks `rule`.
    pub fn column(column: Arc<str>, rule: Rule) -> Reason {
        Reason { column: Some(column), rule }
    }
}

/// Reads a dead letter's `reasons` (a JSON array of `{"column": …, "rule": …}`), keeping those
/// whose rule this version knows and dropping the others, for `#[serde(deserialize_with)]`.
///
/// Dead letters outlive versions: one written by an older (or newer) version may name a rule
/// this one has retired (or not yet made). The reasons only tell a reader why the record
/// failed then; replay transforms the raw record again and decides afresh, so an unknown name
/// must not make the line unreadable. A reason that is not an object with a string `rule` is
/// still an error.
pub fn known_reasons<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<Reason>, D::Error> {
    /// A reason as stored, its rule still text.
    #[derive(Deserialize)]
    struct Stored<'a> {
        column: Option<Arc<str>>,
        #[serde(borrow)]
        rule: Cow<'a, str>,
    }
    let stored = Vec::<Stored<'de>>::deserialize(deserializer)?;
    Ok(stored
        .into_iter()
        .filter_map(|reason| Some(Reason { column: reason.column, rule: reason.rule.parse().ok()? }))
        .collect())
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.column {
            Some(column) => write!(f, "{column}: {}", self.rule),
            None => f.write_str(self.rule.as_str()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every rule name as dead letters wrote it when `Reason::rule` was text: the JSON of a
    /// reason must not change with its type.
    const NAMES_BEFORE_THE_ENUM: [&str; 59] = [
        "base64",
        "json",
        "not_an_envelope",
        "schema",
        "unknown_op",
        "source",
        "source_position",
        "row_image",
        "key_base64",
        "key_json",
        "missing_key",
        "column_name",
        "duplicate_column",
        "mask_on_key",
        "unknown_column",
        "detected_ssn",
        "detected_email",
        "detected_phone",
        "detected_date",
        "unroutable",
        "truncate",
        "message",
        "type",
        "invalid_string",
        "nul",
        "int_range",
        "decimal_range",
        "date_range",
        "required",
        "max_bytes",
        "pattern",
        "one_of",
        "min",
        "max",
        "not_future",
        "mask_year",
        "mask_key",
        "time_range",
        "infinity",
        "unsupported_type",
        "unavailable_value",
        "tombstone_key",
        "position_regressed",
        "stale_fill",
        "target_table_missing",
        "missing_metadata_column",
        "delete_ledger_missing",
        "drift",
        "varchar_length",
        "decimal_scale",
        "decimal_precision",
        "integer_range",
        "float_precision",
        "not_a_number",
        "char_single_byte",
        "not_null",
        "row_too_large",
        "statement_too_large",
        "rejected_by_database",
    ];

    #[test]
    fn reasons_serialize_as_the_text_rules_did() {
        let rules: Vec<Rule> = NAMES_BEFORE_THE_ENUM.iter().map(|name| name.parse().unwrap()).collect();
        // Rules added since are appended to `Rule::ALL`.
        assert_eq!(rules, Rule::ALL[..rules.len()], "one rule per old name, in the same order");
        for (name, rule) in NAMES_BEFORE_THE_ENUM.into_iter().zip(rules) {
            let record = format!(r#"{{"column":null,"rule":"{name}"}}"#);
            let column = format!(r#"{{"column":"ssn","rule":"{name}"}}"#);
            assert_eq!(serde_json::to_string(&Reason::record(rule)).unwrap(), record);
            assert_eq!(serde_json::to_string(&Reason::column("ssn".into(), rule)).unwrap(), column);
            assert_eq!(serde_json::from_str::<Reason>(&column).unwrap(), Reason::column("ssn".into(), rule));
            assert_eq!(Reason::record(rule).to_string(), name);
            assert_eq!(Reason::column("ssn".into(), rule).to_string(), format!("ssn: {name}"));
        }
    }

    #[test]
    fn dead_letter_reasons_with_a_rule_this_version_does_not_know_still_read() {
        #[derive(Deserialize)]
        struct Line {
            #[serde(deserialize_with = "known_reasons")]
            reasons: Vec<Reason>,
        }
        let line: Line = serde_json::from_str(
            r#"{"reasons":[{"column":"ssn","rule":"pattern"},{"column":null,"rule":"retired_rule"},{"column":null,"rule":"json"}]}"#,
        )
        .unwrap();
        assert_eq!(line.reasons, [Reason::column("ssn".into(), Rule::Pattern), Reason::record(Rule::Json)]);
        assert!(serde_json::from_str::<Reason>(r#"{"column":null,"rule":"retired_rule"}"#).is_err());
        assert!(serde_json::from_str::<Line>(r#"{"reasons":[{"column":null,"rule":7}]}"#).is_err());
    }
}
