//! Kafka Connect schemas (the `schema` half of a JsonConverter message) → column types.
//!
//! A schema-enabled topic repeats the same few kilobytes of schema in every message, so
//! [`SchemaCache`] parses each distinct schema text once and hands out `Arc`s.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::Deserialize;

/// How a column's JSON value is to be read.
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnType {
    Boolean,
    /// Signed integer of the given width in bits (8, 16, 32 or 64).
    Int(u8),
    Float32,
    Float64,
    String,
    Uuid,
    /// Text holding a JSON document (`io.debezium.data.Json`).
    Json,
    /// Base64 in JSON; Redshift VARBYTE.
    Bytes,
    /// Kafka Connect's `Decimal`: base64 two's-complement bytes of the unscaled value (or a
    /// JSON number under `decimal.format=NUMERIC`); the scale comes from the schema.
    Decimal {
        scale: u32,
        precision: Option<u32>,
    },
    /// A decimal written as a JSON number or numeric string (`decimal.handling.mode=string`),
    /// optionally padded to a fixed scale.
    DecimalText {
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeUnit {
    Millis,
    Micros,
    Nanos,
}

impl TimeUnit {
    pub fn ticks_per_second(self) -> i64 {
        match self {
            TimeUnit::Millis => 1_000,
            TimeUnit::Micros => 1_000_000,
            TimeUnit::Nanos => 1_000_000_000,
        }
    }
}

impl ColumnType {
    /// The type a Connect schema describes: semantic `name` first, then the primitive `type`.
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

    /// A config `type` hint, for topics whose messages carry no schema.
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

/// One field of a row (or key) struct.
#[derive(Debug, Clone)]
pub struct FieldSchema {
    /// Name as the source spells it.
    pub name: Arc<str>,
    /// Lowercase name: the target column.
    pub column: Arc<str>,
    pub ty: ColumnType,
    pub optional: bool,
    /// Source column length, when Debezium propagates it (`column.propagate.source.type`).
    pub source_length: Option<u32>,
}

/// The fields of a row image (`before`/`after`) or of a key struct.
#[derive(Debug, Clone, Default)]
pub struct RowSchema {
    pub fields: Vec<FieldSchema>,
    by_name: HashMap<Arc<str>, usize>,
}

impl RowSchema {
    pub fn new(fields: Vec<FieldSchema>) -> RowSchema {
        let by_name = fields.iter().enumerate().map(|(i, f)| (f.name.clone(), i)).collect();
        RowSchema { fields, by_name }
    }

    /// Look a field up, trying the position it usually has first.
    pub fn field(&self, name: &str, expected_index: usize) -> Option<&FieldSchema> {
        match self.fields.get(expected_index) {
            Some(f) if &*f.name == name => Some(f),
            _ => self.by_name.get(name).map(|&i| &self.fields[i]),
        }
    }
}

/// What a value schema tells us.
#[derive(Debug, Clone, Default)]
pub struct MessageSchema {
    /// Schema name, e.g. `sqlsrv.sampledb.dbo.patientinfo.Envelope`.
    pub name: Option<String>,
    /// The row struct (`after`, or `before`), for envelopes; the struct itself for keys.
    pub row: Option<Arc<RowSchema>>,
}

#[derive(Deserialize)]
struct ConnectSchema<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow)]
    fields: Vec<ConnectSchema<'a>>,
    #[serde(default)]
    optional: bool,
    #[serde(default, borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    field: Option<Cow<'a, str>>,
    #[serde(default)]
    parameters: BTreeMap<String, serde_json::Value>,
}

fn row_schema(fields: &[ConnectSchema<'_>]) -> RowSchema {
    RowSchema::new(
        fields
            .iter()
            .filter_map(|f| {
                let name: Arc<str> = f.field.as_deref()?.into();
                let source_length = f
                    .parameters
                    .get("__debezium.source.column.length")
                    .and_then(|v| v.as_str().and_then(|s| s.parse().ok()));
                Some(FieldSchema {
                    column: name.to_lowercase().into(),
                    name,
                    ty: ColumnType::from_connect(&f.kind, f.name.as_deref(), &f.parameters),
                    optional: f.optional,
                    source_length,
                })
            })
            .collect(),
    )
}

/// Parse a Connect schema. For an envelope, the row is taken from `after` (or `before`);
/// for any other struct (a key, a flattened row), from its own fields.
pub fn parse_schema(text: &str) -> Result<MessageSchema, serde_json::Error> {
    let schema: ConnectSchema<'_> = serde_json::from_str(text)?;
    let image = schema
        .fields
        .iter()
        .find(|f| f.field.as_deref() == Some("after"))
        .or_else(|| schema.fields.iter().find(|f| f.field.as_deref() == Some("before")));
    let row = match image {
        Some(image) => Some(row_schema(&image.fields)),
        None if schema.kind == "struct" => Some(row_schema(&schema.fields)),
        None => None,
    };
    Ok(MessageSchema { name: schema.name.map(Cow::into_owned), row: row.map(Arc::new) })
}

/// Parsed schemas by their exact JSON text. Small and move-to-front: a batch rarely holds
/// more than a few distinct schemas, and comparing lengths rejects most misses at once.
#[derive(Debug, Default)]
pub struct SchemaCache {
    entries: Vec<(Box<str>, Arc<MessageSchema>)>,
}

const SCHEMA_CACHE_CAPACITY: usize = 64;

impl SchemaCache {
    pub fn get_or_parse(&mut self, text: &str) -> Result<Arc<MessageSchema>, serde_json::Error> {
        if let Some(i) = self.entries.iter().position(|(k, _)| k.len() == text.len() && **k == *text) {
            if i != 0 {
                self.entries[..=i].rotate_right(1);
            }
            return Ok(self.entries[0].1.clone());
        }
        let parsed = Arc::new(parse_schema(text)?);
        if self.entries.len() == SCHEMA_CACHE_CAPACITY {
            self.entries.pop();
        }
        self.entries.insert(0, (text.into(), parsed.clone()));
        Ok(parsed)
    }

    /// A cached schema whose exact text starts `bytes`, and that text's length.
    pub fn known_prefix(&mut self, bytes: &[u8]) -> Option<(Arc<MessageSchema>, usize)> {
        let i = self.entries.iter().position(|(k, _)| bytes.starts_with(k.as_bytes()))?;
        if i != 0 {
            self.entries[..=i].rotate_right(1);
        }
        Some((self.entries[0].1.clone(), self.entries[0].0.len()))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // `before` deliberately differs from `after`: the row schema must come from `after`.
    const ENVELOPE: &str = r#"{"type":"struct","fields":[
        {"type":"struct","fields":[
            {"type":"int32","optional":false,"field":"ID"}
        ],"optional":true,"name":"s.db.dbo.t.Value","field":"before"},
        {"type":"struct","fields":[
            {"type":"int32","optional":false,"field":"ID"},
            {"type":"int64","optional":true,"name":"io.debezium.time.Timestamp","version":1,"field":"DOB"},
            {"type":"bytes","optional":true,"name":"org.apache.kafka.connect.data.Decimal","version":1,
             "parameters":{"scale":"2","connect.decimal.precision":"10"},"field":"Balance"},
            {"type":"string","optional":true,"parameters":{"__debezium.source.column.length":"100"},"field":"FirstName"}
        ],"optional":true,"name":"s.db.dbo.t.Value","field":"after"},
        {"type":"string","optional":false,"field":"op"}
    ],"optional":false,"name":"s.db.dbo.t.Envelope","version":2}"#;

    #[test]
    fn envelope_schema_yields_row_types() {
        let schema = parse_schema(ENVELOPE).unwrap();
        assert_eq!(schema.name.as_deref(), Some("s.db.dbo.t.Envelope"));
        let row = schema.row.unwrap();
        let types: Vec<_> = row.fields.iter().map(|f| (&*f.column, f.ty.clone())).collect();
        assert_eq!(
            types,
            vec![
                ("id", ColumnType::Int(32)),
                ("dob", ColumnType::Timestamp(TimeUnit::Millis)),
                ("balance", ColumnType::Decimal { scale: 2, precision: Some(10) }),
                ("firstname", ColumnType::String),
            ]
        );
        assert_eq!(row.fields[3].source_length, Some(100));
        assert_eq!(row.field("DOB", 0).unwrap().column.as_ref(), "dob");
        assert!(row.field("missing", 0).is_none());
    }

    #[test]
    fn key_schema_is_its_own_row() {
        let key = r#"{"type":"struct","fields":[{"type":"int32","optional":false,"field":"ID"}],"optional":false,"name":"s.db.dbo.t.Key"}"#;
        let schema = parse_schema(key).unwrap();
        assert_eq!(schema.row.unwrap().fields[0].column.as_ref(), "id");
    }

    #[test]
    fn cache_parses_each_text_once() {
        let mut cache = SchemaCache::default();
        let a = cache.get_or_parse(ENVELOPE).unwrap();
        let b = cache.get_or_parse(ENVELOPE).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(cache.len(), 1);
        assert!(cache.get_or_parse("{not json").is_err());
    }

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
