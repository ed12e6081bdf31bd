//! Kafka Connect schemas (the `schema` half of a JsonConverter message) → column types.
//!
//! A schema-enabled topic repeats the same few kilobytes of schema in every message, so
//! [`SchemaCache`] parses each distinct schema text once and hands out `Arc`s.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use crate::column_type::ColumnType;
use std::sync::Arc;

use serde::Deserialize;

/// One field of a row (or key) struct.
#[derive(Debug, Clone)]
pub struct FieldSchema {
    /// Name as the source spells it.
    pub name: Arc<str>,
    /// Lowercase name: the target column.
    pub column: Arc<str>,
    /// How the field's JSON is read: from its Connect `type`, `name` (the logical type) and
    /// `parameters` ([`ColumnType::from_connect`]).
    pub ty: ColumnType,
    /// Connect's `optional`: the field may be null (a nullable source column).
    pub optional: bool,
    /// Source column length, when Debezium propagates it (`column.propagate.source.type`).
    pub source_length: Option<u32>,
}

/// The fields of a row image (`before`/`after`) or of a key struct.
#[derive(Debug, Clone, Default)]
pub struct RowSchema {
    /// The fields in schema order (a field without a `field` name is left out).
    pub fields: Vec<FieldSchema>,
    by_name: HashMap<Arc<str>, usize>,
}

impl RowSchema {
    /// A row of `fields`, indexed by source name (of two fields with one name, the later one
    /// is found by name).
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
/// for any other struct (a key, a flattened row), from its own fields; a schema that is
/// neither has no row.
///
/// Errors: serde_json's, when `text` is not a Connect schema object (no `type`, a field of the
/// wrong kind); its text can quote the input and is dropped by the callers
/// ([`DecodeError::Schema`](super::DecodeError::Schema)).
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
    /// The schema of `text` (exact bytes), parsed on first sight and kept (at most 64, the
    /// least recently used dropped first).
    ///
    /// Errors: [`parse_schema`]'s; a schema that fails is not cached.
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

    /// The number of distinct schema texts held (at most 64).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no schema has been parsed yet.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::column_type::TimeUnit;

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
}
