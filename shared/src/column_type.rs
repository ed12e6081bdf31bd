//! How a source column's JSON value is read: [`ColumnType`], from a Kafka Connect schema
//! ([`ColumnType::from_connect`]) or from a config `type` hint ([`ColumnType::from_hint`]).
//!
//! A leaf: the config model (`[tables.columns] type = …`), the Debezium decoder and the
//! Redshift type mapping all speak this vocabulary, so it sits below all of them
//! (re-exported as `debezium::ColumnType` and `debezium::TimeUnit`). The semantic names are
//! Debezium's (each connector's "Data type mappings" section) and Kafka Connect's logical types
//! (`org.apache.kafka.connect.data.*`).

use std::collections::BTreeMap;
use std::sync::Arc;

/// How a column's JSON value is to be read.
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnType {
    /// `true`/`false` (Connect `boolean`).
    Boolean,
    /// Signed integer of the given width in bits (8, 16, 32 or 64).
    Int(u8),
    /// IEEE 754 single precision (Connect `float32`).
    Float32,
    /// IEEE 754 double precision (Connect `float64`).
    Float64,
    /// Text (Connect `string`).
    String,
    /// `io.debezium.data.Uuid`: a UUID as 36-character text.
    Uuid,
    /// Text holding a JSON document (`io.debezium.data.Json`).
    Json,
    /// Base64 in JSON; Redshift VARBYTE.
    Bytes,
    /// Kafka Connect's `Decimal`: base64 two's-complement bytes of the unscaled value (or a
    /// JSON number under `decimal.format=NUMERIC`); the scale comes from the schema.
    Decimal {
        /// Digits after the decimal point (`scale` parameter).
        scale: u32,
        /// Significant digits (`connect.decimal.precision`), when the schema gives them.
        precision: Option<u32>,
    },
    /// A decimal written as a JSON number or numeric string (`decimal.handling.mode=string`),
    /// optionally padded to a fixed scale.
    DecimalText {
        /// The scale values are padded to (a config hint's `scale`), if any.
        scale: Option<u32>,
    },
    /// `io.debezium.data.VariableScaleDecimal`: `{"scale": n, "value": base64}`.
    VariableScaleDecimal,
    /// Integer days since the epoch, or `YYYY-MM-DD` text.
    Date,
    /// Integer ticks since midnight.
    Time(TimeUnit),
    /// Time text, with or without a zone.
    TimeText,
    /// Integer ticks since the epoch (zone-less source types, wall clock read as UTC).
    Timestamp(TimeUnit),
    /// ISO-8601 text; a zone is converted to UTC.
    TimestampText,
    /// Structs, arrays and maps: kept as JSON text.
    Composite,
    /// No schema and no hint: the JSON type decides.
    Untyped,
    /// A logical type the decoder does not read (its name): every value of it is rejected
    /// with rule `unsupported_type` rather than stored as something it is not.
    Unsupported(Arc<str>),
}

/// The tick of an integer time or timestamp: Debezium's `Time`/`Timestamp` (ms),
/// `MicroTime`/`MicroTimestamp` (µs) and `NanoTime`/`NanoTimestamp` (ns).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeUnit {
    /// Milliseconds.
    Millis,
    /// Microseconds.
    Micros,
    /// Nanoseconds.
    Nanos,
}

impl TimeUnit {
    /// Ticks in one second: 1,000, 1,000,000 or 1,000,000,000.
    pub fn ticks_per_second(self) -> i64 {
        match self {
            TimeUnit::Millis => 1_000,
            TimeUnit::Micros => 1_000_000,
            TimeUnit::Nanos => 1_000_000_000,
        }
    }
}

impl ColumnType {
    /// The type a Connect schema describes: semantic `name` first, then the primitive `type`
    /// (`kind`); `parameters` give a decimal's `scale` and `connect.decimal.precision`. A
    /// primitive it does not know is [`ColumnType::Untyped`].
    pub fn from_connect(
        kind: &str,
        name: Option<&str>,
        parameters: &BTreeMap<String, serde_json::Value>,
    ) -> ColumnType {
        let param = |key: &str| -> Option<u32> {
            match parameters.get(key)? {
                serde_json::Value::String(s) => s.parse().ok(),
                serde_json::Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
                _ => None,
            }
        };
        match name {
            Some("io.debezium.time.Date" | "org.apache.kafka.connect.data.Date" | "io.debezium.time.IsoDate") => {
                return ColumnType::Date;
            }
            Some("io.debezium.time.Time" | "org.apache.kafka.connect.data.Time") => {
                return ColumnType::Time(TimeUnit::Millis);
            }
            Some("io.debezium.time.MicroTime") => return ColumnType::Time(TimeUnit::Micros),
            Some("io.debezium.time.NanoTime") => return ColumnType::Time(TimeUnit::Nanos),
            Some("io.debezium.time.ZonedTime" | "io.debezium.time.IsoTime") => return ColumnType::TimeText,
            Some("io.debezium.time.Timestamp" | "org.apache.kafka.connect.data.Timestamp") => {
                return ColumnType::Timestamp(TimeUnit::Millis);
            }
            Some("io.debezium.time.MicroTimestamp") => return ColumnType::Timestamp(TimeUnit::Micros),
            Some("io.debezium.time.NanoTimestamp") => return ColumnType::Timestamp(TimeUnit::Nanos),
            Some("io.debezium.time.ZonedTimestamp" | "io.debezium.time.IsoTimestamp") => {
                return ColumnType::TimestampText;
            }
            Some("org.apache.kafka.connect.data.Decimal") => {
                return ColumnType::Decimal {
                    scale: param("scale").unwrap_or(0),
                    precision: param("connect.decimal.precision"),
                };
            }
            Some("io.debezium.data.VariableScaleDecimal") => return ColumnType::VariableScaleDecimal,
            // `time.precision.mode=structured` (Debezium 3.7): structs of calendar fields.
            Some(structured) if structured.starts_with("io.debezium.time.Structured") => {
                return ColumnType::Unsupported(structured.into());
            }
            Some("io.debezium.data.Uuid") => return ColumnType::Uuid,
            Some("io.debezium.data.Json") => return ColumnType::Json,
            _ => {}
        }
        match kind {
            "boolean" => ColumnType::Boolean,
            "int8" => ColumnType::Int(8),
            "int16" => ColumnType::Int(16),
            "int32" => ColumnType::Int(32),
            "int64" => ColumnType::Int(64),
            "float" | "float32" => ColumnType::Float32,
            "double" | "float64" => ColumnType::Float64,
            "string" => ColumnType::String,
            "bytes" => ColumnType::Bytes,
            "struct" | "array" | "map" => ColumnType::Composite,
            _ => ColumnType::Untyped,
        }
    }

    /// A config `type` hint, for topics whose messages carry no schema: a short name
    /// (`int32`, `timestamp_ms`, …) or a Debezium/Connect logical type name, with the column's
    /// `scale`. Errors (a message for the config error, naming no value): an unknown name,
    /// `decimal_bytes` without `scale`, `scale` on a type that is not a decimal.
    pub fn from_hint(hint: &str, scale: Option<u32>) -> Result<ColumnType, String> {
        let ty = match hint {
            "boolean" | "bool" => ColumnType::Boolean,
            "int8" => ColumnType::Int(8),
            "int16" | "smallint" => ColumnType::Int(16),
            "int32" | "int" | "integer" => ColumnType::Int(32),
            "int64" | "bigint" => ColumnType::Int(64),
            "float" | "float32" | "real" => ColumnType::Float32,
            "double" | "float64" => ColumnType::Float64,
            "string" | "text" | "varchar" => ColumnType::String,
            "uuid" => ColumnType::Uuid,
            "json" => ColumnType::Json,
            "bytes" => ColumnType::Bytes,
            "decimal" => ColumnType::DecimalText { scale },
            "decimal_bytes" => match scale {
                Some(scale) => ColumnType::Decimal { scale, precision: None },
                None => return Err("`decimal_bytes` needs `scale`".into()),
            },
            "date" => ColumnType::Date,
            "time" => ColumnType::TimeText,
            "time_ms" => ColumnType::Time(TimeUnit::Millis),
            "time_us" => ColumnType::Time(TimeUnit::Micros),
            "time_ns" => ColumnType::Time(TimeUnit::Nanos),
            "timestamp" => ColumnType::TimestampText,
            "timestamp_ms" => ColumnType::Timestamp(TimeUnit::Millis),
            "timestamp_us" => ColumnType::Timestamp(TimeUnit::Micros),
            "timestamp_ns" => ColumnType::Timestamp(TimeUnit::Nanos),
            name if name.contains('.') => {
                let mut parameters = BTreeMap::new();
                if let Some(scale) = scale {
                    parameters.insert("scale".to_string(), serde_json::Value::String(scale.to_string()));
                }
                match ColumnType::from_connect("", Some(name), &parameters) {
                    ColumnType::Untyped => return Err(format!("unknown Debezium/Connect type name `{name}`")),
                    ty => ty,
                }
            }
            other => {
                return Err(format!(
                    "unknown type `{other}`; expected one of boolean, int8, int16, int32, int64, float, double, string, \
                     uuid, json, bytes, decimal, decimal_bytes, date, time, time_ms, time_us, time_ns, timestamp, timestamp_ms, \
                     timestamp_us, timestamp_ns, or a Debezium/Connect logical type name"
                ));
            }
        };
        if scale.is_some() && !matches!(ty, ColumnType::Decimal { .. } | ColumnType::DecimalText { .. }) {
            return Err("`scale` applies only to decimal types".into());
        }
        Ok(ty)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints() {
        assert_eq!(ColumnType::from_hint("decimal", Some(2)), Ok(ColumnType::DecimalText { scale: Some(2) }));
        assert_eq!(
            ColumnType::from_hint("decimal_bytes", Some(2)),
            Ok(ColumnType::Decimal { scale: 2, precision: None })
        );
        assert!(ColumnType::from_hint("decimal_bytes", None).is_err());
        assert_eq!(
            ColumnType::from_hint("io.debezium.time.NanoTimestamp", None),
            Ok(ColumnType::Timestamp(TimeUnit::Nanos))
        );
        assert!(ColumnType::from_hint("varbinary2", None).is_err());
        assert!(ColumnType::from_hint("int", Some(2)).is_err());
    }
}
