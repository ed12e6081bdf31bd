//! One JSON field of a row image + its column type → a [`Value`].
//!
//! Fields arrive as raw JSON text (`&RawValue`) so numbers keep their exact digits (int64
//! nanosecond timestamps exceed 2^53) and strings without escapes are borrowed, not copied.

use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::value::RawValue;

use crate::column_type::{ColumnType, TimeUnit};
use crate::config::{NulPolicy, Placeholder};
use crate::rule::Rule;
use crate::temporal;
use crate::value::{Decimal, Value};

/// Why a field could not be converted. The names are the `rule` of a reject reason; none
/// of them carries the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConvertError {
    /// The JSON type does not fit the column type.
    Type,
    /// A string escape that does not form valid Unicode (e.g. a lone surrogate).
    InvalidString,
    /// A NUL character, with `nul = "reject"`.
    Nul,
    /// Base64 that does not decode.
    Base64,
    /// A decimal beyond 38 digits.
    DecimalRange,
    /// A date or timestamp outside years 1–9999.
    DateRange,
    /// An integer beyond its declared width.
    IntRange,
    /// A time of day outside 00:00:00–24:00:00 (MySQL `TIME` reaches ±838 hours; Redshift's
    /// `TIME` does not).
    TimeRange,
    /// PostgreSQL's `±infinity` date or timestamp (as Debezium encodes it): Redshift has no
    /// infinity, and storing the sentinel date would store a marker as a value.
    Infinity,
    /// A logical type the pipeline does not decode (e.g. `time.precision.mode=structured`).
    Unsupported,
}

impl ConvertError {
    /// The rule a reject names the column with (`type`, `int_range`, `unsupported_type`…:
    /// README "Rule names").
    pub fn rule(self) -> Rule {
        match self {
            ConvertError::Type => Rule::Type,
            ConvertError::InvalidString => Rule::InvalidString,
            ConvertError::Nul => Rule::Nul,
            ConvertError::Base64 => Rule::Base64,
            ConvertError::DecimalRange => Rule::DecimalRange,
            ConvertError::DateRange => Rule::DateRange,
            ConvertError::IntRange => Rule::IntRange,
            ConvertError::TimeRange => Rule::TimeRange,
            ConvertError::Infinity => Rule::Infinity,
            ConvertError::Unsupported => Rule::UnsupportedType,
        }
    }
}

type Result<T> = std::result::Result<T, ConvertError>;

/// A JSON value seen from its first byte, without building a tree.
enum Json<'a> {
    Null,
    Bool(bool),
    Number(&'a str),
    String(Cow<'a, str>),
    Composite(&'a str),
}

fn lex<'a>(raw: &'a RawValue, nul: NulPolicy) -> Result<Json<'a>> {
    let text = raw.get().trim();
    match text.as_bytes().first() {
        Some(b'n') => Ok(Json::Null),
        Some(b't') => Ok(Json::Bool(true)),
        Some(b'f') => Ok(Json::Bool(false)),
        Some(b'"') => {
            let inner = &text[1..text.len() - 1];
            if !inner.contains('\\') {
                // Raw JSON strings cannot contain control characters, so no NUL here.
                return Ok(Json::String(Cow::Borrowed(inner)));
            }
            let owned: String = serde_json::from_str(text).map_err(|_| ConvertError::InvalidString)?;
            if owned.contains('\0') {
                return match nul {
                    NulPolicy::Reject => Err(ConvertError::Nul),
                    NulPolicy::Strip => Ok(Json::String(Cow::Owned(owned.replace('\0', "")))),
                };
            }
            Ok(Json::String(Cow::Owned(owned)))
        }
        Some(b'{' | b'[') => Ok(Json::Composite(text)),
        Some(_) => Ok(Json::Number(text)),
        None => Err(ConvertError::Type),
    }
}

fn is_integer_text(text: &str) -> bool {
    !text.contains(['.', 'e', 'E'])
}

fn parse_int(text: &str) -> Result<i64> {
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ConvertError::Type);
    }
    text.parse::<i64>().map_err(|_| ConvertError::IntRange)
}

/// Decode Kafka Connect's Decimal bytes: big-endian two's complement of the unscaled value.
pub fn decimal_from_bytes(bytes: &[u8], scale: u32) -> Result<Decimal> {
    let negative = bytes.first().is_some_and(|b| b & 0x80 != 0);
    let fill = if negative { 0xff } else { 0x00 };
    // Longer than 16 bytes is fine only if the extra leading bytes are sign extension.
    let significant = bytes.len().saturating_sub(16);
    if bytes[..significant].iter().any(|&b| b != fill)
        || (significant > 0 && (bytes[significant] & 0x80 != 0) != negative)
    {
        return Err(ConvertError::DecimalRange);
    }
    let mut buf = [fill; 16];
    let tail = &bytes[significant..];
    buf[16 - tail.len()..].copy_from_slice(tail);
    check_decimal(Decimal { unscaled: i128::from_be_bytes(buf), scale })
}

/// Redshift DECIMAL holds at most 38 digits.
fn check_decimal(d: Decimal) -> Result<Decimal> {
    const LIMIT: i128 = 10i128.pow(38);
    if d.unscaled.unsigned_abs() >= LIMIT as u128 || d.scale > 37 {
        return Err(ConvertError::DecimalRange);
    }
    Ok(d)
}

fn decimal_from_text(text: &str, scale: Option<u32>) -> Result<Decimal> {
    let d = Decimal::parse(text).ok_or(ConvertError::Type)?;
    let d = match scale {
        Some(scale) => d.rescaled(scale).ok_or(ConvertError::DecimalRange)?,
        None => d,
    };
    check_decimal(d)
}

fn base64_bytes(text: &str) -> Result<Vec<u8>> {
    BASE64.decode(text).map_err(|_| ConvertError::Base64)
}

fn date_value(days: i64) -> Result<Value<'static>> {
    i32::try_from(days).ok().filter(|d| temporal::valid_date(*d)).map(Value::Date).ok_or(ConvertError::DateRange)
}

fn timestamp_value(micros: Option<i64>) -> Result<Value<'static>> {
    micros.filter(|m| temporal::valid_timestamp(*m)).map(Value::Timestamp).ok_or(ConvertError::DateRange)
}

/// Debezium's PostgreSQL connector sends `±infinity` timestamps as the PostgreSQL JDBC
/// driver's sentinels (postgresql.adoc, "TIMESTAMP type": "converted to timestamps with value
/// `9223372036825200000` in case of positive infinity or `-9223372036832400000`"), in the unit
/// of the column's logical type; `NanoTimestamp` uses `Long.MAX_VALUE`/`MIN_VALUE`.
fn is_infinite_timestamp(ticks: i64, unit: TimeUnit) -> bool {
    const POSITIVE_MICROS: i64 = 9_223_372_036_825_200_000;
    const NEGATIVE_MICROS: i64 = -9_223_372_036_832_400_000;
    match unit {
        TimeUnit::Micros => ticks == POSITIVE_MICROS || ticks == NEGATIVE_MICROS,
        TimeUnit::Millis => ticks == POSITIVE_MICROS / 1_000 || ticks == NEGATIVE_MICROS / 1_000,
        TimeUnit::Nanos => ticks == i64::MAX || ticks == i64::MIN,
    }
}

/// PostgreSQL's `±infinity` dates arrive as day counts near ±2^31 (`+5877611-06-21` or, in
/// Debezium versions with the constant's sign bug, `-5877611-06-21`); no real date is there.
fn is_infinite_date(days: i64) -> bool {
    days.unsigned_abs() > 2_140_000_000
}

/// `infinity`/`-infinity` as `ZonedTimestamp` (TIMESTAMPTZ) and `IsoDate`/`IsoTimestamp` texts
/// with a signed six-or-more-digit year (`+294247-01-10T04:00:25.2Z`).
fn is_infinite_text(text: &str) -> bool {
    matches!(text, "infinity" | "-infinity" | "+infinity")
        || (text.starts_with(['+', '-']) && text[1..].bytes().take_while(u8::is_ascii_digit).count() > 4)
}

fn timestamp_text(text: &str) -> Result<Value<'static>> {
    if is_infinite_text(text) {
        return Err(ConvertError::Infinity);
    }
    temporal::parse_timestamp(text).map(Value::Timestamp).ok_or(ConvertError::Type)
}

/// Is this field Debezium's unavailable-value placeholder, in the form its column type
/// carries it?
fn is_placeholder(json: &Json<'_>, ty: &ColumnType, placeholder: &Placeholder) -> bool {
    match json {
        // Without a schema (`schemas.enable=false`) a `bytea` column's base64 placeholder is
        // a string like any other: it is taken as the placeholder, since a text value equal to
        // the placeholder's base64 is as unlikely as one equal to the placeholder itself.
        Json::String(s) => placeholder.matches_text(s, matches!(ty, ColumnType::Bytes | ColumnType::Untyped)),
        Json::Composite(c) => placeholder.matches_composite(c),
        _ => false,
    }
}

/// Convert one field. With a `placeholder`, a field holding it becomes [`Value::Unavailable`]
/// (key fields are converted without one: a key is always sent).
pub fn convert<'a>(
    raw: &'a RawValue,
    ty: &ColumnType,
    nul: NulPolicy,
    placeholder: Option<&Placeholder>,
) -> Result<Value<'a>> {
    let json = lex(raw, nul)?;
    if let Json::Null = json {
        return Ok(Value::Null);
    }
    if placeholder.is_some_and(|p| is_placeholder(&json, ty, p)) {
        return Ok(Value::Unavailable);
    }
    match ty {
        ColumnType::Untyped => Ok(match json {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(b),
            Json::Number(n) if is_integer_text(n) => match n.parse::<i64>() {
                Ok(i) => Value::Int(i),
                Err(_) => Value::Decimal(decimal_from_text(n, None)?),
            },
            Json::Number(n) => Value::Float(n.parse().map_err(|_| ConvertError::Type)?),
            Json::String(s) => Value::Text(s),
            Json::Composite(c) => Value::Text(Cow::Borrowed(c)),
        }),
        ColumnType::Boolean => match json {
            Json::Bool(b) => Ok(Value::Bool(b)),
            Json::String(s) if s == "true" || s == "false" => Ok(Value::Bool(s == "true")),
            _ => Err(ConvertError::Type),
        },
        ColumnType::Int(bits) => {
            let i = match json {
                Json::Number(n) => parse_int(n)?,
                Json::String(s) => parse_int(s.trim())?,
                _ => return Err(ConvertError::Type),
            };
            let fits = match bits {
                8 => i8::try_from(i).is_ok(),
                // Debezium maps SQL Server TINYINT (0..255) to int16, so 16 is the narrowest check.
                16 => i16::try_from(i).is_ok(),
                32 => i32::try_from(i).is_ok(),
                _ => true,
            };
            if fits { Ok(Value::Int(i)) } else { Err(ConvertError::IntRange) }
        }
        ColumnType::Float32 | ColumnType::Float64 => match json {
            Json::Number(n) => n.parse().map(Value::Float).map_err(|_| ConvertError::Type),
            Json::String(s) => match s.as_ref() {
                "NaN" => Ok(Value::Float(f64::NAN)),
                "Infinity" => Ok(Value::Float(f64::INFINITY)),
                "-Infinity" => Ok(Value::Float(f64::NEG_INFINITY)),
                other => other.parse().map(Value::Float).map_err(|_| ConvertError::Type),
            },
            _ => Err(ConvertError::Type),
        },
        ColumnType::String | ColumnType::Uuid | ColumnType::Json => match json {
            Json::String(s) => Ok(Value::Text(s)),
            Json::Composite(c) => Ok(Value::Text(Cow::Borrowed(c))),
            Json::Number(n) => Ok(Value::Text(Cow::Borrowed(n))),
            Json::Bool(b) => Ok(Value::Text(Cow::Borrowed(if b { "true" } else { "false" }))),
            Json::Null => Ok(Value::Null),
        },
        ColumnType::Bytes => match json {
            Json::String(s) => Ok(Value::Bytes(Cow::Owned(base64_bytes(&s)?))),
            _ => Err(ConvertError::Type),
        },
        ColumnType::Decimal { scale, .. } => match json {
            Json::String(s) => decimal_from_bytes(&base64_bytes(&s)?, *scale).map(Value::Decimal),
            Json::Number(n) => decimal_from_text(n, Some(*scale)).map(Value::Decimal),
            _ => Err(ConvertError::Type),
        },
        ColumnType::DecimalText { scale } => match json {
            Json::String(s) => decimal_from_text(s.trim(), *scale).map(Value::Decimal),
            Json::Number(n) => decimal_from_text(n, *scale).map(Value::Decimal),
            _ => Err(ConvertError::Type),
        },
        ColumnType::VariableScaleDecimal => match json {
            Json::Composite(c) => {
                #[derive(serde::Deserialize)]
                struct Vsd<'a> {
                    scale: u32,
                    #[serde(borrow)]
                    value: Cow<'a, str>,
                }
                let vsd: Vsd<'_> = serde_json::from_str(c).map_err(|_| ConvertError::Type)?;
                decimal_from_bytes(&base64_bytes(&vsd.value)?, vsd.scale).map(Value::Decimal)
            }
            Json::Number(n) => decimal_from_text(n, None).map(Value::Decimal),
            Json::String(s) => decimal_from_text(s.trim(), None).map(Value::Decimal),
            _ => Err(ConvertError::Type),
        },
        ColumnType::Date => match json {
            Json::Number(n) => {
                let days = parse_int(n)?;
                if is_infinite_date(days) { Err(ConvertError::Infinity) } else { date_value(days) }
            }
            Json::String(s) if is_infinite_text(&s) => Err(ConvertError::Infinity),
            Json::String(s) => temporal::parse_date(&s).map(Value::Date).ok_or(ConvertError::Type),
            _ => Err(ConvertError::Type),
        },
        ColumnType::Time(unit) => match json {
            Json::Number(n) => {
                let micros =
                    temporal::to_micros(parse_int(n)?, unit.ticks_per_second()).ok_or(ConvertError::TimeRange)?;
                if temporal::valid_time(micros) { Ok(Value::Time(micros)) } else { Err(ConvertError::TimeRange) }
            }
            _ => Err(ConvertError::Type),
        },
        ColumnType::TimeText => match json {
            Json::String(s) => temporal::parse_time(&s).map(Value::Time).ok_or(ConvertError::Type),
            _ => Err(ConvertError::Type),
        },
        ColumnType::Timestamp(unit) => match json {
            Json::Number(n) => {
                let ticks = parse_int(n)?;
                if is_infinite_timestamp(ticks, *unit) {
                    return Err(ConvertError::Infinity);
                }
                timestamp_value(temporal::to_micros(ticks, unit.ticks_per_second()))
            }
            Json::String(s) => timestamp_text(&s),
            _ => Err(ConvertError::Type),
        },
        ColumnType::TimestampText => match json {
            Json::String(s) => timestamp_text(&s),
            Json::Number(n) => timestamp_value(temporal::to_micros(parse_int(n)?, 1_000)),
            _ => Err(ConvertError::Type),
        },
        ColumnType::Unsupported(_) => Err(ConvertError::Unsupported),
        ColumnType::Composite => match json {
            Json::Composite(c) => Ok(Value::Text(Cow::Borrowed(c))),
            Json::String(s) => Ok(Value::Text(s)),
            _ => Err(ConvertError::Type),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> Box<RawValue> {
        RawValue::from_string(text.to_string()).unwrap()
    }

    fn conv(text: &str, ty: ColumnType) -> Result<String> {
        let raw = raw(text);
        convert(&raw, &ty, NulPolicy::Reject, None).map(|v| v.text().into_owned())
    }

    const DECIMAL_2: ColumnType = ColumnType::Decimal { scale: 2, precision: Some(10) };

    #[test]
    fn documented_decimal_vectors() {
        assert_eq!(conv(r#""AeJA""#, DECIMAL_2).unwrap(), "1234.56");
        assert_eq!(conv(r#""7mI=""#, DECIMAL_2).unwrap(), "-45.10");
        assert_eq!(conv(r#""AA==""#, DECIMAL_2).unwrap(), "0.00");
        assert_eq!(conv(r#""AlQL4/8=""#, DECIMAL_2).unwrap(), "99999999.99");
        assert_eq!(conv("1234.5", DECIMAL_2).unwrap(), "1234.50", "decimal.format=NUMERIC");
        assert_eq!(conv(r#""!!""#, DECIMAL_2), Err(ConvertError::Base64));
    }

    #[test]
    fn variable_scale_decimal() {
        assert_eq!(conv(r#"{"scale":2,"value":"AeJA"}"#, ColumnType::VariableScaleDecimal).unwrap(), "1234.56");
    }

    #[test]
    fn decimal_sign_extension_and_range() {
        let long_negative = [0xff; 20];
        assert_eq!(decimal_from_bytes(&long_negative, 0).unwrap().unscaled, -1);
        let mut too_big = [0u8; 17];
        too_big[0] = 1;
        assert_eq!(decimal_from_bytes(&too_big, 0), Err(ConvertError::DecimalRange));
        assert_eq!(decimal_from_bytes(&[], 0).unwrap().unscaled, 0);
    }

    #[test]
    fn int64_nanoseconds_keep_every_digit() {
        let v = conv("1531481025340000999", ColumnType::Timestamp(TimeUnit::Nanos)).unwrap();
        assert_eq!(v, "2018-07-13 11:23:45.340000");
        assert_eq!(conv("9007199254740993", ColumnType::Int(64)).unwrap(), "9007199254740993");
    }

    #[test]
    fn strings_borrow_unless_escaped() {
        let r = raw(r#""plain""#);
        assert!(matches!(
            convert(&r, &ColumnType::String, NulPolicy::Reject, None),
            Ok(Value::Text(Cow::Borrowed("plain")))
        ));
        assert_eq!(conv(r#""O\u0027Brien \\ \"x\"""#, ColumnType::String).unwrap(), r#"O'Brien \ "x""#);
    }

    #[test]
    fn nul_and_lone_surrogates() {
        assert_eq!(conv(r#""a\u0000b""#, ColumnType::String), Err(ConvertError::Nul));
        let r = raw(r#""a\u0000b""#);
        assert_eq!(convert(&r, &ColumnType::String, NulPolicy::Strip, None).unwrap().text(), "ab");
        assert_eq!(conv(r#""\ud800""#, ColumnType::String), Err(ConvertError::InvalidString));
    }

    #[test]
    fn type_mismatches_and_ranges() {
        assert_eq!(conv(r#""abc""#, ColumnType::Int(32)), Err(ConvertError::Type));
        assert_eq!(conv("3000000000", ColumnType::Int(32)), Err(ConvertError::IntRange));
        assert_eq!(conv("1.5", ColumnType::Int(64)), Err(ConvertError::Type));
        assert_eq!(conv("true", ColumnType::Date), Err(ConvertError::Type));
        assert_eq!(conv("999999999", ColumnType::Date), Err(ConvertError::DateRange));
        assert_eq!(conv("253402300800000", ColumnType::Timestamp(TimeUnit::Millis)), Err(ConvertError::DateRange));
    }

    #[test]
    fn temporal_types() {
        assert_eq!(conv("17725", ColumnType::Date).unwrap(), "2018-07-13");
        assert_eq!(conv("37425680", ColumnType::Time(TimeUnit::Millis)).unwrap(), "10:23:45.680000");
        assert_eq!(
            conv(r#""2018-07-13T12:23:45.456+11:00""#, ColumnType::TimestampText).unwrap(),
            "2018-07-13 01:23:45.456000"
        );
        assert_eq!(conv(r#""10:15:30Z""#, ColumnType::TimeText).unwrap(), "10:15:30.000000");
    }

    #[test]
    fn placeholders_in_every_form_debezium_sends_them() {
        let p = Placeholder::default();
        let unavailable = |text: &str, ty: ColumnType| {
            let raw = raw(text);
            matches!(convert(&raw, &ty, NulPolicy::Reject, Some(&p)), Ok(Value::Unavailable))
        };
        // text, varchar, json/jsonb, uuid, and bytea under binary.handling.mode=hex
        assert!(unavailable(r#""__debezium_unavailable_value""#, ColumnType::String));
        assert!(unavailable(r#""__debezium_unavailable_value""#, ColumnType::Json));
        assert!(unavailable(r#""__debezium_unavailable_value""#, ColumnType::Bytes));
        // bytea (default binary.handling.mode=bytes): the placeholder's bytes, base64, with a
        // schema and without one (schemas.enable=false)
        assert!(unavailable(r#""X19kZWJleml1bV91bmF2YWlsYWJsZV92YWx1ZQ==""#, ColumnType::Bytes));
        assert!(unavailable(r#""X19kZWJleml1bV91bmF2YWlsYWJsZV92YWx1ZQ==""#, ColumnType::Untyped));
        assert!(unavailable(r#""__debezium_unavailable_value""#, ColumnType::Untyped));
        assert!(!unavailable(r#""X19kZWJleml1bV91bmF2YWlsYWJsZV92YWx1ZQ==""#, ColumnType::String), "a text column");
        // text[], bytea[], int[] (one element per byte), hstore as a map and as JSON text
        assert!(unavailable(r#"["__debezium_unavailable_value"]"#, ColumnType::Composite));
        assert!(unavailable(r#"["X19kZWJleml1bV91bmF2YWlsYWJsZV92YWx1ZQ=="]"#, ColumnType::Composite));
        assert!(unavailable(
            "[95,95,100,101,98,101,122,105,117,109,95,117,110,97,118,97,105,108,97,98,108,101,95,118,97,108,117,101]",
            ColumnType::Composite
        ));
        assert!(unavailable(
            r#"{"__debezium_unavailable_value":"__debezium_unavailable_value"}"#,
            ColumnType::Composite
        ));
        assert!(unavailable(
            r#""{\"__debezium_unavailable_value\":\"__debezium_unavailable_value\"}""#,
            ColumnType::String
        ));
        // Real values are not.
        assert!(!unavailable(r#""__debezium_unavailable""#, ColumnType::String));
        assert!(!unavailable(r#"["a","b"]"#, ColumnType::Composite));
        assert!(!unavailable("42", ColumnType::Int(32)));
        let key = raw(r#""__debezium_unavailable_value""#);
        assert!(matches!(convert(&key, &ColumnType::String, NulPolicy::Reject, None), Ok(Value::Text(_))), "keys");
        // A configured placeholder, as Debezium's `hex:` form.
        let custom = Placeholder::parse("hex:deadbeef").unwrap();
        let field = raw(r#""3q2+7w==""#);
        assert!(matches!(
            convert(&field, &ColumnType::Bytes, NulPolicy::Reject, Some(&custom)),
            Ok(Value::Unavailable)
        ));
    }

    #[test]
    fn untyped_passes_json_types_through() {
        let r = raw("12");
        assert!(matches!(convert(&r, &ColumnType::Untyped, NulPolicy::Reject, None), Ok(Value::Int(12))));
        let r = raw("1.25");
        assert!(matches!(convert(&r, &ColumnType::Untyped, NulPolicy::Reject, None), Ok(Value::Float(f)) if f == 1.25));
        assert_eq!(conv(r#"{"a":[1]}"#, ColumnType::Untyped).unwrap(), r#"{"a":[1]}"#);
        assert_eq!(conv("null", ColumnType::Int(32)).unwrap(), "");
    }
}
