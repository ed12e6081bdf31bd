//! Column rules from the config, checked against raw (unmasked) values.
//!
//! A NULL value passes every rule except `required`. Rules that read text (`max_bytes`,
//! `pattern`, `one_of`) see the value's canonical text ([`Value::text`]).
//!
//! The transform calls it for upserts only, before masking: it never sees a masked value or
//! a delete (whose values are not written).

use std::cmp::Ordering;

use crate::config::Rules;
use crate::rule::Rule;
use crate::temporal::MICROS_PER_DAY;
use crate::value::{Value, compare_value};

/// Append every rule `value` breaks, in the order `required`, `max_bytes`, `pattern`,
/// `one_of`, `min`, `max`, `not_future`. `now_micros` (epoch microseconds, UTC) is the clock
/// `not_future` compares with.
pub fn check(rules: &Rules, value: &Value<'_>, now_micros: i64, failed: &mut Vec<Rule>) {
    if value.is_null() {
        if rules.required {
            failed.push(Rule::Required);
        }
        return;
    }
    if rules.max_bytes.is_some() || rules.pattern.is_some() || rules.one_of.is_some() {
        let text = value.text();
        if rules.max_bytes.is_some_and(|max| text.len() > max) {
            failed.push(Rule::MaxBytes);
        }
        if rules.pattern.as_ref().is_some_and(|p| !p.is_match(&text)) {
            failed.push(Rule::Pattern);
        }
        if rules.one_of.as_ref().is_some_and(|set| !set.contains(text.as_ref())) {
            failed.push(Rule::OneOf);
        }
    }
    if rules
        .min
        .as_ref()
        .is_some_and(|min| !matches!(compare_value(value, min), Some(Ordering::Greater | Ordering::Equal)))
    {
        failed.push(Rule::Min);
    }
    if rules
        .max
        .as_ref()
        .is_some_and(|max| !matches!(compare_value(value, max), Some(Ordering::Less | Ordering::Equal)))
    {
        failed.push(Rule::Max);
    }
    if rules.not_future {
        let future = match value {
            Value::Date(days) => i64::from(*days) > now_micros.div_euclid(MICROS_PER_DAY),
            Value::Timestamp(micros) => *micros > now_micros,
            // Not a date at all: the rule cannot be satisfied.
            _ => true,
        };
        if future {
            failed.push(Rule::NotFuture);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::temporal::{parse_date, parse_timestamp};
    use crate::value::{Bound, Decimal};
    use regex::Regex;
    use std::borrow::Cow;

    fn failed(rules: &Rules, value: Value<'_>) -> Vec<&'static str> {
        let now = parse_timestamp("2026-11-24T12:00:00Z").unwrap();
        let mut out = Vec::new();
        check(rules, &value, now, &mut out);
        out.into_iter().map(Rule::as_str).collect()
    }

    fn text(s: &str) -> Value<'_> {
        Value::Text(Cow::Borrowed(s))
    }

    #[test]
    fn required_and_nulls() {
        let rules = Rules { required: true, pattern: Some(Regex::new("^x$").unwrap()), ..Rules::default() };
        assert_eq!(failed(&rules, Value::Null), vec!["required"]);
        let optional = Rules { pattern: Some(Regex::new("^x$").unwrap()), ..Rules::default() };
        assert!(failed(&optional, Value::Null).is_empty(), "null passes every rule but required");
    }

    #[test]
    fn text_rules_report_every_failure() {
        let rules = Rules {
            max_bytes: Some(4),
            pattern: Some(Regex::new(r"^\d+$").unwrap()),
            one_of: Some(["AL".to_string()].into_iter().collect()),
            ..Rules::default()
        };
        assert_eq!(failed(&rules, text("héllo")), vec!["max_bytes", "pattern", "one_of"]);
        assert_eq!(failed(&rules, text("AL")), vec!["pattern"]);
        // max_bytes counts UTF-8 bytes, not characters: "éé" is 4 bytes.
        let bytes = Rules { max_bytes: Some(3), ..Rules::default() };
        assert_eq!(failed(&bytes, text("éé")), vec!["max_bytes"]);
    }

    #[test]
    fn min_max_numbers_and_dates() {
        let rules = Rules {
            min: Some(Bound::Number(Decimal { unscaled: 0, scale: 0 })),
            max: Some(Bound::Float(99.5)),
            ..Rules::default()
        };
        assert!(failed(&rules, Value::Int(0)).is_empty());
        assert_eq!(failed(&rules, Value::Int(-1)), vec!["min"]);
        assert_eq!(failed(&rules, Value::Decimal(Decimal { unscaled: 9951, scale: 2 })), vec!["max"]);
        assert_eq!(failed(&rules, text("abc")), vec!["min", "max"], "incomparable values fail closed");
        let dates = Rules { min: parse_date("1900-01-01").map(Bound::Date), ..Rules::default() };
        assert_eq!(failed(&dates, Value::Date(parse_date("1899-12-31").unwrap())), vec!["min"]);
        assert!(failed(&dates, Value::Timestamp(parse_timestamp("1900-01-01T00:00:00").unwrap())).is_empty());
    }

    #[test]
    fn not_future() {
        let rules = Rules { not_future: true, ..Rules::default() };
        assert!(failed(&rules, Value::Date(parse_date("2026-11-24").unwrap())).is_empty());
        assert_eq!(failed(&rules, Value::Date(parse_date("2026-11-25").unwrap())), vec!["not_future"]);
        assert_eq!(
            failed(&rules, Value::Timestamp(parse_timestamp("2026-11-24T12:00:01Z").unwrap())),
            vec!["not_future"]
        );
        assert_eq!(failed(&rules, Value::Int(5)), vec!["not_future"]);
    }
}
