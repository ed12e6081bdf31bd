//! The typed column value every later stage works with: decoded from Debezium, validated,
//! masked, and finally rendered as JSON (`cdc explain`) or as a SQL literal (loader).
//!
//! Strings borrow from the decoded Kafka value whenever JSON needed no unescaping.
//!
//! A leaf: it uses only [`temporal`] (text forms of dates and times) from the crate, and it
//! never rounds a value (decimals stay exact, times stay in µs).

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt::{self, Write as _};
use std::hash::{Hash, Hasher};

use crate::temporal;

/// Exact decimal: `unscaled × 10^-scale`. 38 digits (Redshift's DECIMAL limit) fit in an i128.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Decimal {
    /// The digits as an integer, with the sign (`-12340` for `-12.340`).
    pub unscaled: i128,
    /// Digits after the decimal point (`3` for `-12.340`); trailing zeros are kept until
    /// [`Decimal::normalized`].
    pub scale: u32,
}

impl Decimal {
    /// Raise the scale by padding zeros; `None` when that would overflow.
    pub fn rescaled(self, scale: u32) -> Option<Decimal> {
        if scale <= self.scale {
            return Some(self);
        }
        let factor = 10i128.checked_pow(scale - self.scale)?;
        Some(Decimal { unscaled: self.unscaled.checked_mul(factor)?, scale })
    }

    /// The same number with trailing fractional zeros dropped (`1.500` → `1.5`, `2.0` → `2`).
    pub fn normalized(self) -> Decimal {
        let mut d = self;
        while d.scale > 0 && d.unscaled % 10 == 0 {
            d.unscaled /= 10;
            d.scale -= 1;
        }
        d
    }

    /// Digits before the decimal point (`0` for `0.5`, `3` for `-123.4`).
    pub fn integer_digits(self) -> u32 {
        let integer = self.unscaled.unsigned_abs() / 10u128.pow(self.scale.min(38));
        if integer == 0 { 0 } else { integer.ilog10() + 1 }
    }

    /// The nearest `f64` (inexact beyond 15–17 significant digits: for display and float
    /// rules, never for storing).
    pub fn to_f64(self) -> f64 {
        self.unscaled as f64 / 10f64.powi(self.scale as i32)
    }

    /// Parse decimal text such as `-12.340`, `1e3` or `1.5E-2` exactly (scale as written, an
    /// exponent folded into it). `None` for anything else (blanks, `NaN`, a lone `.`) or more
    /// digits than an `i128` holds.
    pub fn parse(text: &str) -> Option<Decimal> {
        let (mantissa, exponent) = match text.find(['e', 'E']) {
            Some(i) => (&text[..i], text[i + 1..].parse::<i32>().ok()?),
            None => (text, 0),
        };
        let (negative, digits) = match mantissa.as_bytes().first()? {
            b'-' => (true, &mantissa[1..]),
            b'+' => (false, &mantissa[1..]),
            _ => (false, mantissa),
        };
        let (int_part, frac_part) = match digits.find('.') {
            Some(i) => (&digits[..i], &digits[i + 1..]),
            None => (digits, ""),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return None;
        }
        let mut unscaled: i128 = 0;
        for b in int_part.bytes().chain(frac_part.bytes()) {
            if !b.is_ascii_digit() {
                return None;
            }
            unscaled = unscaled.checked_mul(10)?.checked_add(i128::from(b - b'0'))?;
        }
        let mut scale = i32::try_from(frac_part.len()).ok()?.checked_sub(exponent)?;
        if scale < 0 {
            unscaled = unscaled.checked_mul(10i128.checked_pow((-scale) as u32)?)?;
            scale = 0;
        }
        if negative {
            unscaled = -unscaled;
        }
        Some(Decimal { unscaled, scale: scale as u32 })
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = self.unscaled.unsigned_abs().to_string();
        if self.unscaled < 0 {
            f.write_char('-')?;
        }
        let scale = self.scale as usize;
        if scale == 0 {
            return f.write_str(&digits);
        }
        if digits.len() > scale {
            let (int, frac) = digits.split_at(digits.len() - scale);
            write!(f, "{int}.{frac}")
        } else {
            write!(f, "0.{}{digits}", "0".repeat(scale - digits.len()))
        }
    }
}

/// One column value.
#[derive(Debug, Clone)]
pub enum Value<'a> {
    /// SQL NULL (JSON `null`, or an absent optional field).
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer of any source width up to 64 bits.
    Int(i64),
    /// A binary float; may be NaN or ±infinity (Debezium writes them as strings).
    Float(f64),
    /// An exact decimal.
    Decimal(Decimal),
    /// UTF-8 text, borrowed from the record when it needed no unescaping. Decoded text holds
    /// no NUL (the config's `nul` policy rejects or strips it).
    Text(Cow<'a, str>),
    /// Raw bytes (Debezium's base64 `bytes`, decoded).
    Bytes(Cow<'a, [u8]>),
    /// Days since 1970-01-01 (years 1–9999).
    Date(i32),
    /// Microseconds since midnight, 0 to 24:00:00.
    Time(i64),
    /// Microseconds since 1970-01-01T00:00:00 UTC (no zone is stored).
    Timestamp(i64),
    /// Debezium's unavailable-value placeholder (`unavailable.value.placeholder`): the source
    /// did not send this column (an unchanged TOASTed PostgreSQL value, an unchanged SQL Server
    /// `varchar(max)`). The target keeps the value it holds; the placeholder is never stored.
    Unavailable,
}

impl Value<'_> {
    /// Whether it is [`Value::Null`] (not [`Value::Unavailable`]).
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// A short, value-free name of the variant, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Int(_) => "integer",
            Value::Float(_) => "float",
            Value::Decimal(_) => "decimal",
            Value::Text(_) => "string",
            Value::Bytes(_) => "bytes",
            Value::Date(_) => "date",
            Value::Time(_) => "time",
            Value::Timestamp(_) => "timestamp",
            Value::Unavailable => "unavailable",
        }
    }

    /// The same value owning its text or bytes (a copy only for borrowed ones).
    pub fn into_owned(self) -> Value<'static> {
        match self {
            Value::Null => Value::Null,
            Value::Bool(b) => Value::Bool(b),
            Value::Int(i) => Value::Int(i),
            Value::Float(x) => Value::Float(x),
            Value::Decimal(d) => Value::Decimal(d),
            Value::Text(s) => Value::Text(Cow::Owned(s.into_owned())),
            Value::Bytes(b) => Value::Bytes(Cow::Owned(b.into_owned())),
            Value::Date(d) => Value::Date(d),
            Value::Time(t) => Value::Time(t),
            Value::Timestamp(t) => Value::Timestamp(t),
            Value::Unavailable => Value::Unavailable,
        }
    }

    /// Whether it is Debezium's unavailable-value placeholder.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Value::Unavailable)
    }

    /// The value's canonical text, as rules such as `pattern` and `max_bytes` see it and as
    /// a VARCHAR column would store it. Timestamps use the SQL form (space separator).
    pub fn text(&self) -> Cow<'_, str> {
        match self {
            Value::Text(s) => Cow::Borrowed(s.as_ref()),
            other => {
                let mut out = String::new();
                other.write_text(&mut out);
                Cow::Owned(out)
            }
        }
    }

    /// Append the canonical text form (see [`Value::text`]); `Null` and `Unavailable` append
    /// nothing.
    pub fn write_text(&self, out: &mut String) {
        match self {
            Value::Null | Value::Unavailable => {}
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Value::Float(x) => write_float(out, *x),
            Value::Decimal(d) => {
                let _ = write!(out, "{d}");
            }
            Value::Text(s) => out.push_str(s),
            Value::Bytes(b) => {
                for byte in b.iter() {
                    let _ = write!(out, "{byte:02x}");
                }
            }
            Value::Date(d) => temporal::write_date(out, *d),
            Value::Time(t) => temporal::write_time(out, *t),
            Value::Timestamp(t) => temporal::write_timestamp(out, *t, ' '),
        }
    }

    /// The value as `cdc explain` shows it: numbers and booleans as JSON, decimals as strings
    /// with their exact scale, dates `YYYY-MM-DD`, timestamps `YYYY-MM-DDTHH:MM:SS.ffffff`.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            // JSON has no NaN or infinities: they show as the text Jackson writes for them
            // (`"NaN"`, `"Infinity"`, `"-Infinity"`), which is also the literal the loader sends.
            Value::Float(x) => serde_json::Number::from_f64(*x).map_or_else(
                || {
                    let mut text = String::new();
                    write_float(&mut text, *x);
                    J::String(text)
                },
                J::Number,
            ),
            Value::Timestamp(t) => {
                let mut s = String::with_capacity(26);
                temporal::write_timestamp(&mut s, *t, 'T');
                J::String(s)
            }
            other => J::String(other.text().into_owned()),
        }
    }
}

/// Shortest text that parses back to the same f64 (Rust's `Display` guarantees round-trip).
pub fn write_float(out: &mut String, x: f64) {
    if x.is_nan() {
        out.push_str("NaN");
    } else if x.is_infinite() {
        out.push_str(if x > 0.0 { "Infinity" } else { "-Infinity" });
    } else {
        let _ = write!(out, "{x}");
    }
}

/// Key equality: the same column values. Floats compare by bit pattern so that keys hash.
impl PartialEq for Value<'_> {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Value::Null, Value::Null) => true,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Int(a), Value::Int(b)) => a == b,
            (Value::Float(a), Value::Float(b)) => a.to_bits() == b.to_bits(),
            (Value::Decimal(a), Value::Decimal(b)) => a == b,
            (Value::Text(a), Value::Text(b)) => a == b,
            (Value::Bytes(a), Value::Bytes(b)) => a == b,
            (Value::Date(a), Value::Date(b)) => a == b,
            (Value::Time(a), Value::Time(b)) => a == b,
            (Value::Timestamp(a), Value::Timestamp(b)) => a == b,
            (Value::Unavailable, Value::Unavailable) => true,
            _ => false,
        }
    }
}

impl Eq for Value<'_> {}

impl Hash for Value<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        std::mem::discriminant(self).hash(state);
        match self {
            Value::Null | Value::Unavailable => {}
            Value::Bool(b) => b.hash(state),
            Value::Int(i) => i.hash(state),
            Value::Float(x) => x.to_bits().hash(state),
            Value::Decimal(d) => d.hash(state),
            Value::Text(s) => s.hash(state),
            Value::Bytes(b) => b.hash(state),
            Value::Date(d) => d.hash(state),
            Value::Time(t) | Value::Timestamp(t) => t.hash(state),
        }
    }
}

/// A `min`/`max` rule bound (`[tables.columns]` in the config): a constant a column's value is
/// ordered against by [`compare_value`]. Dates are days and timestamps µs since the epoch, as in
/// [`Value`].
#[derive(Debug, Clone, PartialEq)]
pub enum Bound {
    /// An exact number (a TOML integer, or a numeric string).
    Number(Decimal),
    /// A TOML float.
    Float(f64),
    /// A date: days since 1970-01-01.
    Date(i32),
    /// A timestamp: µs since 1970-01-01 00:00:00 UTC.
    Timestamp(i64),
}

fn cmp_decimal(a: Decimal, b: Decimal) -> Option<Ordering> {
    let scale = a.scale.max(b.scale);
    match (a.rescaled(scale), b.rescaled(scale)) {
        (Some(a), Some(b)) => Some(a.unscaled.cmp(&b.unscaled)),
        _ => a.to_f64().partial_cmp(&b.to_f64()),
    }
}

/// Order a value against a bound; `None` when they cannot be compared (which fails the rule).
/// Numbers compare exactly where both rescale to one scale; a date and a timestamp compare as
/// instants (a date is its midnight); text is parsed as the bound's kind.
pub fn compare_value(value: &Value<'_>, bound: &Bound) -> Option<Ordering> {
    let as_decimal = |v: &Value<'_>| -> Option<Decimal> {
        match v {
            Value::Int(i) => Some(Decimal { unscaled: i128::from(*i), scale: 0 }),
            Value::Decimal(d) => Some(*d),
            Value::Text(t) => Decimal::parse(t.trim()),
            _ => None,
        }
    };
    match bound {
        Bound::Number(b) => match value {
            Value::Float(x) => x.partial_cmp(&b.to_f64()),
            v => cmp_decimal(as_decimal(v)?, *b),
        },
        Bound::Float(b) => match value {
            Value::Float(x) => x.partial_cmp(b),
            v => as_decimal(v)?.to_f64().partial_cmp(b),
        },
        Bound::Date(days) => match value {
            Value::Date(d) => Some(d.cmp(days)),
            Value::Timestamp(t) => Some(t.cmp(&(i64::from(*days) * temporal::MICROS_PER_DAY))),
            Value::Text(t) => temporal::parse_date(t).map(|d| d.cmp(days)),
            _ => None,
        },
        Bound::Timestamp(micros) => match value {
            Value::Timestamp(t) => Some(t.cmp(micros)),
            Value::Date(d) => Some((i64::from(*d) * temporal::MICROS_PER_DAY).cmp(micros)),
            Value::Text(t) => temporal::parse_timestamp(t).map(|v| v.cmp(micros)),
            _ => None,
        },
    }
}

/// Order two bounds of comparable kinds (the config checks `min <= max` with it); `None` when
/// they cannot be compared.
pub fn compare_bounds(a: &Bound, b: &Bound) -> Option<Ordering> {
    let value = match a {
        Bound::Number(d) => Value::Decimal(*d),
        Bound::Float(x) => Value::Float(*x),
        Bound::Date(d) => Value::Date(*d),
        Bound::Timestamp(t) => Value::Timestamp(*t),
    };
    compare_value(&value, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_display_keeps_scale() {
        let d = |unscaled, scale| Decimal { unscaled, scale }.to_string();
        assert_eq!(d(123456, 2), "1234.56");
        assert_eq!(d(-4510, 2), "-45.10");
        assert_eq!(d(0, 2), "0.00");
        assert_eq!(d(5, 3), "0.005");
        assert_eq!(d(-5, 3), "-0.005");
        assert_eq!(d(42, 0), "42");
    }

    #[test]
    fn decimal_parse_is_exact() {
        let p = |s| Decimal::parse(s).map(|d| (d.unscaled, d.scale));
        assert_eq!(p("1234.56"), Some((123456, 2)));
        assert_eq!(p("-0.10"), Some((-10, 2)));
        assert_eq!(p("1e3"), Some((1000, 0)));
        assert_eq!(p("1.5E-2"), Some((15, 3)));
        assert_eq!(p("99999999999999999999999999999999999999"), Some((99999999999999999999999999999999999999, 0)));
        assert_eq!(p("abc"), None);
        assert_eq!(p(""), None);
        assert_eq!(p("."), None);
        assert_eq!(p("1e99999"), None);
        // Found while fuzzing: the scale must not overflow on extreme exponents.
        assert_eq!(p("1e-2147483648"), None);
        assert_eq!(p("1.5e2147483647"), None);
    }

    #[test]
    fn normalized_and_integer_digits() {
        let d = |unscaled, scale| Decimal { unscaled, scale };
        assert_eq!(d(1500, 3).normalized(), d(15, 1));
        assert_eq!(d(20, 1).normalized(), d(2, 0));
        assert_eq!(d(0, 4).normalized(), d(0, 0));
        assert_eq!(d(-1234, 1).integer_digits(), 3);
        assert_eq!(d(5, 1).integer_digits(), 0);
        assert_eq!(d(33333333333333333333, 20).integer_digits(), 0);
        assert_eq!(d(123456789012345678905, 1).integer_digits(), 20);
    }

    #[test]
    fn rescale_pads_zeros() {
        let d = Decimal { unscaled: 15, scale: 1 };
        assert_eq!(d.rescaled(3), Some(Decimal { unscaled: 1500, scale: 3 }));
        assert_eq!(d.rescaled(0), Some(d));
    }

    #[test]
    fn text_forms() {
        assert_eq!(Value::Float(0.1).text(), "0.1");
        assert_eq!(Value::Bytes(Cow::Borrowed(&[0xde, 0xad])).text(), "dead");
        assert_eq!(Value::Timestamp(1_531_488_225_780_000).text(), "2018-07-13 13:23:45.780000");
        assert_eq!(Value::Timestamp(1_531_488_225_780_000).to_json(), serde_json::json!("2018-07-13T13:23:45.780000"));
        assert_eq!(Value::Float(f64::NAN).to_json(), serde_json::json!("NaN"));
        assert_eq!(Value::Float(f64::INFINITY).to_json(), serde_json::json!("Infinity"));
        assert_eq!(Value::Float(f64::NEG_INFINITY).to_json(), serde_json::json!("-Infinity"));
        assert_eq!(Value::Float(1.5).to_json(), serde_json::json!(1.5));
    }
}
