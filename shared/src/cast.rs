//! `[tables.change_schema] cast`: a decoded value converted to another type, exactly or not at
//! all. A cast that would lose anything (a fraction into an integer, a time of day into a
//! date, text that is no number) rejects its record with rule `cast` and the column instead of
//! rounding, truncating or nulling: the pipeline never stores a value the source did not hold.
//!
//! Targets, by `type` hint name ([`ColumnType::from_hint`]):
//!
//! | target | from |
//! |---|---|
//! | `string` | anything: the value's canonical text ([`Value::text`]: decimals with their scale, timestamps `YYYY-MM-DD HH:MM:SS.ffffff`, bytes as hex) |
//! | `int16`, `int32`, `int64` | integers in range; decimals and floats without a fraction, in range; text of an integer (`-12`) |
//! | `float32`, `float64` | floats; integers within ±2^53 (exact in a double); text of a number a double holds as written (`2.5`, `0.1`; not `9007199254740993`, `1e400`), and `NaN`, `Infinity`, `-Infinity` |
//! | `decimal` | decimals, integers, text of a decimal (`12.50`); a `decimal(s)` cast also rescales up to `s` digits, never down |
//! | `boolean` | booleans; integers 0 and 1; text `true`/`false` |
//! | `date` | dates; timestamps at midnight; text `YYYY-MM-DD` |
//! | `timestamp` | timestamps; dates (at midnight); ISO-8601 text with at most microseconds (further digits 0) and no leap second |
//!
//! A null stays null and Debezium's unavailable-value placeholder stays unavailable.

use std::borrow::Cow;

use crate::column_type::ColumnType;
use crate::temporal;
use crate::value::{Decimal, Value, write_float};

/// What the config error says a cast may target.
pub const TARGETS: &str = "expected one of string, int16, int32, int64, float32, float64, decimal, decimal(<scale>), boolean, date, timestamp";

/// Whether values can be cast to `ty`.
pub fn castable(ty: &ColumnType) -> bool {
    target(ty).is_some()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Text,
    Int(u8),
    Float,
    Decimal(Option<u32>),
    Bool,
    Date,
    Timestamp,
}

fn target(ty: &ColumnType) -> Option<Target> {
    Some(match ty {
        ColumnType::String => Target::Text,
        ColumnType::Int(bits) => Target::Int(*bits),
        ColumnType::Float32 | ColumnType::Float64 => Target::Float,
        ColumnType::DecimalText { scale } => Target::Decimal(*scale),
        ColumnType::Decimal { scale, .. } => Target::Decimal(Some(*scale)),
        ColumnType::Boolean => Target::Bool,
        ColumnType::Date => Target::Date,
        ColumnType::Timestamp(_) | ColumnType::TimestampText => Target::Timestamp,
        _ => return None,
    })
}

/// The largest integer every double holds exactly, and every integer below it.
const EXACT_IN_F64: i64 = 1 << 53;

const MICROS_PER_DAY: i64 = 86_400_000_000;

fn in_range(i: i64, bits: u8) -> bool {
    match bits {
        8 => i8::try_from(i).is_ok(),
        16 => i16::try_from(i).is_ok(),
        32 => i32::try_from(i).is_ok(),
        _ => true,
    }
}

/// `value` as type `ty`; `None` when it cannot be converted exactly (rule `cast`).
pub fn cast<'a>(value: Value<'a>, ty: &ColumnType) -> Option<Value<'a>> {
    if value.is_null() || value.is_unavailable() {
        return Some(value);
    }
    Some(match target(ty)? {
        Target::Text => match value {
            Value::Text(_) => value,
            other => Value::Text(Cow::Owned(other.text().into_owned())),
        },
        Target::Int(bits) => {
            let i = match &value {
                Value::Int(i) => *i,
                Value::Decimal(d) => {
                    let d = d.normalized();
                    if d.scale != 0 {
                        return None;
                    }
                    i64::try_from(d.unscaled).ok()?
                }
                Value::Float(x) if x.fract() == 0.0 && x.abs() < 9.2e18 => *x as i64,
                Value::Text(t) => t.parse::<i64>().ok().filter(|_| !t.starts_with('+'))?,
                _ => return None,
            };
            if !in_range(i, bits) {
                return None;
            }
            Value::Int(i)
        }
        Target::Float => match value {
            Value::Float(_) => value,
            Value::Int(i) if (-EXACT_IN_F64..=EXACT_IN_F64).contains(&i) => Value::Float(i as f64),
            Value::Text(t) => Value::Float(float_of_text(&t)?),
            _ => return None,
        },
        Target::Decimal(scale) => {
            let d = match &value {
                Value::Decimal(d) => *d,
                Value::Int(i) => Decimal { unscaled: i128::from(*i), scale: 0 },
                Value::Text(t) => Decimal::parse(t)?,
                _ => return None,
            };
            match scale {
                // Padding zeros is exact; cutting a digit other than a trailing zero is not.
                Some(scale) => {
                    let d = if d.scale > scale { d.normalized() } else { d };
                    Value::Decimal(d.rescaled(scale).filter(|r| r.scale == scale)?)
                }
                None => Value::Decimal(d),
            }
        }
        Target::Bool => match value {
            Value::Bool(_) => value,
            Value::Int(0) => Value::Bool(false),
            Value::Int(1) => Value::Bool(true),
            Value::Text(t) if t == "true" => Value::Bool(true),
            Value::Text(t) if t == "false" => Value::Bool(false),
            _ => return None,
        },
        Target::Date => match value {
            Value::Date(_) => value,
            Value::Timestamp(micros) if micros.rem_euclid(MICROS_PER_DAY) == 0 => {
                Value::Date(i32::try_from(micros.div_euclid(MICROS_PER_DAY)).ok()?)
            }
            Value::Text(t) => Value::Date(temporal::parse_date(&t).filter(|_| t.len() == 10)?),
            _ => return None,
        },
        Target::Timestamp => match value {
            Value::Timestamp(_) => value,
            Value::Date(days) => Value::Timestamp(i64::from(days) * MICROS_PER_DAY),
            Value::Text(t) if exact_timestamp_text(&t) => Value::Timestamp(temporal::parse_timestamp(&t)?),
            _ => return None,
        },
    })
}

/// The double text stands for, when it stands for one exactly as written: the double's own
/// shortest text ([`write_float`]) is the same number. So `0.1` and `2.5` are read, and
/// `9007199254740993` (which no double holds), `1e400` (infinity) and `1e-400` (zero) are not;
/// `NaN`, `Infinity` and `-Infinity` are read as spelled by [`write_float`].
fn float_of_text(text: &str) -> Option<f64> {
    let x: f64 = match text {
        "NaN" => return Some(f64::NAN),
        "Infinity" => return Some(f64::INFINITY),
        "-Infinity" => return Some(f64::NEG_INFINITY),
        text if text.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'.')) => text.parse().ok()?,
        _ => return None,
    };
    let mut back = String::new();
    write_float(&mut back, x);
    let same = |a: &str, b: &str| Some(Decimal::parse(a)?.normalized() == Decimal::parse(b)?.normalized());
    (x.is_finite() && same(text, &back)?).then_some(x)
}

/// Whether timestamp text loses nothing when read to the microsecond: no leap second (`:60`,
/// which would roll into the next minute) and no digit past the sixth of a fraction other than
/// 0 (which would be cut).
fn exact_timestamp_text(text: &str) -> bool {
    let Some(time) = text.get(11..) else { return true }; // a date alone
    if time.get(6..8) == Some("60") {
        return false;
    }
    match time.get(8..).and_then(|rest| rest.strip_prefix('.')) {
        Some(fraction) => fraction.bytes().take_while(u8::is_ascii_digit).skip(6).all(|b| b == b'0'),
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ty(name: &str) -> ColumnType {
        match name.split_once('(') {
            Some((name, scale)) => ColumnType::from_hint(name, scale.trim_end_matches(')').parse().ok()).unwrap(),
            None => ColumnType::from_hint(name, None).unwrap(),
        }
    }

    fn text(s: &str) -> Value<'static> {
        Value::Text(Cow::Owned(s.to_string()))
    }

    fn dec(s: &str) -> Value<'static> {
        Value::Decimal(Decimal::parse(s).unwrap())
    }

    #[test]
    fn exact_casts_convert() {
        let day = 19_000_i32;
        for (value, to, expected) in [
            (Value::Int(42), "string", text("42")),
            (dec("12.50"), "string", text("12.50")),
            (Value::Bool(true), "string", text("true")),
            (Value::Date(0), "string", text("1970-01-01")),
            (text("02139"), "int32", Value::Int(2139)),
            (text("-7"), "int16", Value::Int(-7)),
            (dec("12.000"), "int64", Value::Int(12)),
            (Value::Float(3.0), "int32", Value::Int(3)),
            (Value::Int(1 << 53), "float64", Value::Float(9_007_199_254_740_992.0)),
            (text("2.5"), "float64", Value::Float(2.5)),
            (Value::Int(7), "decimal", dec("7")),
            (text("12.5"), "decimal(2)", dec("12.50")),
            (dec("12.500"), "decimal(2)", dec("12.50")),
            (Value::Int(1), "boolean", Value::Bool(true)),
            (text("false"), "boolean", Value::Bool(false)),
            (Value::Timestamp(i64::from(day) * MICROS_PER_DAY), "date", Value::Date(day)),
            (text("2024-02-29"), "date", Value::Date(temporal::parse_date("2024-02-29").unwrap())),
            (Value::Date(day), "timestamp", Value::Timestamp(i64::from(day) * MICROS_PER_DAY)),
            (Value::Null, "int32", Value::Null),
            (Value::Unavailable, "int32", Value::Unavailable),
        ] {
            assert_eq!(cast(value.clone(), &ty(to)), Some(expected), "{value:?} as {to}");
        }
    }

    #[test]
    fn a_cast_that_would_lose_anything_is_refused() {
        for (value, to) in [
            (text("12.5"), "int32"),
            (text("+3"), "int32"),
            (text(" 3"), "int32"),
            (text("MA"), "int64"),
            (dec("1.5"), "int64"),
            (Value::Int(70_000), "int16"),
            (Value::Int(i64::from(i32::MAX) + 1), "int32"),
            (Value::Float(2.5), "int64"),
            (Value::Int((1 << 53) + 1), "float64"),
            (Value::Float(0.1), "decimal"),
            (dec("1.005"), "decimal(2)"),
            (Value::Int(2), "boolean"),
            (text("yes"), "boolean"),
            (Value::Timestamp(MICROS_PER_DAY + 1), "date"),
            (text("2024-02-30"), "date"),
            (text("2024-02-01T00:00:00"), "date"),
            (Value::Bytes(Cow::Owned(vec![1])), "int32"),
        ] {
            assert_eq!(cast(value.clone(), &ty(to)), None, "{value:?} as {to}");
        }
    }

    #[test]
    fn only_the_listed_targets_can_be_cast_to() {
        for name in ["string", "int16", "int32", "int64", "float64", "decimal", "boolean", "date", "timestamp"] {
            assert!(castable(&ty(name)), "{name}");
        }
        for name in ["bytes", "json", "time", "uuid"] {
            assert!(!castable(&ty(name)), "{name}");
        }
    }
}
