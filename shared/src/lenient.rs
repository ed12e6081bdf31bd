//! Integers as producers really write them in JSON: a number, an integral float, or a decimal
//! string. One parser for the MSK event's record coordinates (`partition`, `offset`,
//! `timestamp`: a self-managed Kafka event source mapping has sent `"partition": "0"`) and
//! Debezium's `source` block (`ts_ms`, `event_serial_no`, `lsn`, `txId`, `server_id`, `pos`,
//! `row`: some connector versions write numbers as strings). A leaf: serde only.
//!
//! Accepted: any JSON integer that fits `i64`; a float with no fractional part below 9×10¹⁵
//! (exact in an `f64`: a larger one may already have lost digits); a string holding a decimal
//! `i64`, surrounding blanks ignored. [`opt_i64`] also reads `null`, an absent field (with
//! `#[serde(default)]`) and the empty string as `None`. Errors name the kind of value found,
//! never the value.

use std::fmt;

use serde::de::{self, Deserializer, Unexpected, Visitor};

/// Floats at or above this magnitude are refused: not every integer there is exact in an
/// `f64` (2⁵³ ≈ 9.007×10¹⁵).
const MAX_EXACT_FLOAT: f64 = 9.0e15;

/// `deserialize_with` for an `i64` field: `null` is an error.
pub(crate) fn i64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    deserializer
        .deserialize_any(Integer { optional: false })?
        .ok_or_else(|| de::Error::invalid_type(Unexpected::Unit, &Integer { optional: false }))
}

/// `deserialize_with` for an `Option<i64>` field: `null` and `""` are `None`.
pub(crate) fn opt_i64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
    deserializer.deserialize_any(Integer { optional: true })
}

/// The one visitor behind both: `None` only when `optional`.
struct Integer {
    optional: bool,
}

impl Visitor<'_> for Integer {
    type Value = Option<i64>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(if self.optional { "an integer, a numeric string or null" } else { "an integer" })
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        if self.optional { Ok(None) } else { Err(E::invalid_type(Unexpected::Unit, &self)) }
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        self.visit_unit()
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Some(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        i64::try_from(v).map(Some).map_err(|_| E::custom("integer out of range"))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        if v.fract() != 0.0 {
            Err(E::custom("expected an integer, found a fractional number"))
        } else if v.abs() < MAX_EXACT_FLOAT {
            Ok(Some(v as i64))
        } else {
            Err(E::custom("integer out of range"))
        }
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        if self.optional && v.is_empty() {
            return Ok(None);
        }
        v.trim().parse().map(Some).map_err(|_| E::custom("expected an integer, found a non-numeric string"))
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    struct Fields {
        #[serde(deserialize_with = "super::i64")]
        required: i64,
        #[serde(default, deserialize_with = "super::opt_i64")]
        optional: Option<i64>,
    }

    fn read(json: &str) -> Result<(i64, Option<i64>), String> {
        serde_json::from_str::<Fields>(json).map(|f| (f.required, f.optional)).map_err(|e| e.to_string())
    }

    #[test]
    fn numbers_floats_and_strings() {
        assert_eq!(read(r#"{"required": 7, "optional": -3}"#), Ok((7, Some(-3))));
        assert_eq!(read(r#"{"required": "7", "optional": " 12 "}"#), Ok((7, Some(12))));
        assert_eq!(read(r#"{"required": 7.0, "optional": 1e3}"#), Ok((7, Some(1000))));
        assert_eq!(read(r#"{"required": 9223372036854775807}"#), Ok((i64::MAX, None)));
        assert_eq!(read(r#"{"required": 1, "optional": null}"#), Ok((1, None)));
        assert_eq!(read(r#"{"required": 1, "optional": ""}"#), Ok((1, None)));
    }

    #[test]
    fn what_is_refused_and_why_without_the_value() {
        let refused = [
            (r#"{"required": 1.5}"#, "fractional"),
            (r#"{"required": 1e16}"#, "out of range"),
            (r#"{"required": 9223372036854775808}"#, "out of range"),
            (r#"{"required": "Jane"}"#, "non-numeric string"),
            (r#"{"required": ""}"#, "non-numeric string"),
            (r#"{"required": null}"#, "invalid type: null, expected an integer"),
            (r#"{"required": 1, "optional": "soon"}"#, "non-numeric string"),
            (r#"{"required": 1, "optional": true}"#, "expected an integer, a numeric string or null"),
        ];
        for (json, why) in refused {
            let error = read(json).unwrap_err();
            assert!(error.contains(why), "{json}: {error}");
            assert!(!error.contains("Jane") && !error.contains("soon"), "{error}");
        }
    }
}
