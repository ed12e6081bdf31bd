//! An Avro datum as Kafka Connect's `JsonConverter` (`schemas.enable=true`) would have written
//! the same Connect record: `{"schema": <Connect schema>, "payload": <value>}`. Connect's
//! `AvroConverter` (`AvroData`) keeps a Connect schema's name, version and parameters in the
//! Avro schema as `connect.name`, `connect.version` and `connect.parameters`, and an
//! `int8`/`int16` as an Avro `int` with `connect.type`; a Connect `Decimal` is Avro `bytes`
//! with `logicalType: decimal`; an optional field a union with `null`. Read back, they give the
//! Connect schema the JSON decoder types columns from — `io.debezium.time.MicroTimestamp`, a
//! `Decimal`'s scale — and the payload in the JsonConverter's forms (bytes and decimals as
//! base64, NaN and the infinities as Debezium's strings), so one decoder serves both.
//!
//! The Connect attributes live on the type schemas, which `apache_avro::Schema` does not keep:
//! the schema's JSON text is walked beside the datum `apache_avro` decodes.

use std::collections::HashMap;

use apache_avro::types::Value as Avro;
use base64::Engine as _;
use serde_json::{Map, Value as Json, json};

use super::AvroError;

/// A registry's Avro schema, parsed once and kept for every record written with it.
#[derive(Debug)]
pub struct AvroSchema {
    /// The schema's id, for errors (`confluent:42`, `glue:<uuid>`).
    id: String,
    avro: apache_avro::Schema,
    json: Json,
    /// Named types (records, enums, fixed) by full name, for references.
    names: HashMap<String, Json>,
    /// The Connect schema as the JsonConverter writes it: the same for every datum, so made
    /// once here rather than per record.
    connect: String,
}

const PRIMITIVES: [&str; 8] = ["null", "boolean", "int", "long", "float", "double", "bytes", "string"];

impl AvroSchema {
    /// Parse a registry's schema text; `id` names it in errors. Errors: [`AvroError::NotAvro`];
    /// [`AvroError::Unsupported`] for a type Connect's mapping has no JSON form for here.
    pub fn parse(id: &str, text: &str) -> Result<AvroSchema, AvroError> {
        let not_avro = || AvroError::NotAvro(id.to_string());
        let avro = apache_avro::Schema::parse_str(text).map_err(|_| not_avro())?;
        let json: Json = serde_json::from_str(text).map_err(|_| not_avro())?;
        let mut names = HashMap::new();
        collect_names(&json, "", &mut names);
        let mut schema = AvroSchema { id: id.to_string(), avro, json, names, connect: String::new() };
        // AvroData writes `connect.name` on every named Connect type, Debezium's records among
        // them; a record without one comes from `connect.meta.data=false` (or a producer
        // other than Kafka Connect), whose Debezium types (MicroTimestamp, VariableScaleDecimal)
        // would read as plain numbers and structs: refused, not guessed.
        if schema.json.get("type").and_then(Json::as_str) == Some("record") && schema.json.get("connect.name").is_none()
        {
            return Err(AvroError::Unsupported {
                schema: id.to_string(),
                kind: "a record without Connect's metadata (connect.name; connect.meta.data=false?)".into(),
            });
        }
        schema.connect = Walk { schema: &schema }.schema_of(&schema.json, "", 0)?.to_string();
        Ok(schema)
    }

    /// The schema's id as given to [`AvroSchema::parse`].
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The JsonConverter's text of the Connect record `datum` holds. Errors:
    /// [`AvroError::Data`] (the datum does not decode, or bytes are left after it),
    /// [`AvroError::Unsupported`] (a type Connect's mapping has no JSON form for here).
    pub fn to_connect_json(&self, datum: &[u8]) -> Result<String, AvroError> {
        let mut out = Vec::new();
        self.write_connect_json(datum, &mut out)?;
        // Only JSON text (serde_json's strings and numbers, our punctuation) was written.
        String::from_utf8(out).map_err(|_| AvroError::Data(self.id.clone()))
    }

    /// [`AvroSchema::to_connect_json`], appended to `out`. On an error `out` is left as it
    /// was. For many datums of one schema, [`AvroSchema::reader`] once.
    pub fn write_connect_json(&self, datum: &[u8], out: &mut Vec<u8>) -> Result<(), AvroError> {
        self.reader()?.write_connect_json(datum, out)
    }

    /// A reader of this schema's datums: what `apache-avro` prepares per reader (the named
    /// types resolved) is done once for all the datums it reads. Errors: [`AvroError::NotAvro`]
    /// when `apache-avro` cannot prepare one.
    pub fn reader(&self) -> Result<Reader<'_>, AvroError> {
        let not_avro = |_| AvroError::NotAvro(self.id.clone());
        let datums = apache_avro::reader::datum::GenericDatumReader::builder(&self.avro).build().map_err(not_avro)?;
        let names = apache_avro::schema::ResolvedSchema::try_from(&self.avro).map_err(not_avro)?;
        Ok(Reader { schema: self, datums, names })
    }
}

/// Reads the datums of one [`AvroSchema`] ([`AvroSchema::reader`]).
pub struct Reader<'s> {
    schema: &'s AvroSchema,
    datums: apache_avro::reader::datum::GenericDatumReader<'s>,
    /// The schema's named types, for validating each value.
    names: apache_avro::schema::ResolvedSchema<'s>,
}

impl std::fmt::Debug for Reader<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader").field("schema", &self.schema.id).finish()
    }
}

impl Reader<'_> {
    /// The JsonConverter's text of the Connect record `datum` holds, appended to `out` (the
    /// batch's buffer: no copy per record). On an error `out` is left as it was. Errors:
    /// [`AvroError::Data`] (the datum does not decode, or bytes are left after it),
    /// [`AvroError::Unsupported`] (a type Connect's mapping has no JSON form for here).
    pub fn write_connect_json(&self, datum: &[u8], out: &mut Vec<u8>) -> Result<(), AvroError> {
        let schema = self.schema;
        let mut reader = datum;
        let value = self.datums.read_value(&mut reader).map_err(|_| AvroError::Data(schema.id.clone()))?;
        // Every byte used, and a value of the schema: apache-avro 0.22 reads a union branch
        // cut short as `Union(i, Null)` instead of failing, which would null a value the
        // source sent.
        if !reader.is_empty() || !value.validate_with_names(&schema.avro, self.names.get_names()) {
            return Err(AvroError::Data(schema.id.clone()));
        }
        let start = out.len();
        out.reserve(schema.connect.len() + datum.len() * 3 + 32);
        out.extend_from_slice(b"{\"schema\":");
        out.extend_from_slice(schema.connect.as_bytes());
        out.extend_from_slice(b",\"payload\":");
        if let Err(e) = (Walk { schema }).payload(&schema.json, "", &value, out, 0) {
            out.truncate(start);
            return Err(e);
        }
        out.push(b'}');
        Ok(())
    }
}

/// Every named type's definition, by full name (`namespace.name`), as Avro resolves names.
fn collect_names(schema: &Json, namespace: &str, names: &mut HashMap<String, Json>) {
    match schema {
        Json::Array(branches) => branches.iter().for_each(|b| collect_names(b, namespace, names)),
        Json::Object(object) => {
            let kind = object.get("type").and_then(Json::as_str).unwrap_or("");
            let mut inner = namespace.to_string();
            if matches!(kind, "record" | "enum" | "fixed" | "error")
                && let Some(name) = object.get("name").and_then(Json::as_str)
            {
                let full = full_name(name, object.get("namespace").and_then(Json::as_str), namespace);
                inner = full.rsplit_once('.').map_or(String::new(), |(ns, _)| ns.to_string());
                names.insert(full, schema.clone());
            }
            if let Some(fields) = object.get("fields").and_then(Json::as_array) {
                for field in fields {
                    if let Some(ty) = field.get("type") {
                        collect_names(ty, &inner, names);
                    }
                }
            }
            for key in ["items", "values"] {
                if let Some(ty) = object.get(key) {
                    collect_names(ty, &inner, names);
                }
            }
            if let Some(ty) = object.get("type").filter(|t| !t.is_string()) {
                collect_names(ty, &inner, names);
            }
        }
        _ => {}
    }
}

/// The namespace part of a full name (`a.b` of `a.b.C`; empty without one).
fn namespace_of(full: &str) -> &str {
    full.rsplit_once('.').map_or("", |(ns, _)| ns)
}

fn full_name(name: &str, namespace: Option<&str>, enclosing: &str) -> String {
    if name.contains('.') {
        return name.to_string();
    }
    match namespace.unwrap_or(enclosing) {
        "" => name.to_string(),
        ns => format!("{ns}.{name}"),
    }
}

/// Nesting deeper than this is refused (a schema that references itself).
const MAX_DEPTH: usize = 64;

struct Walk<'s> {
    schema: &'s AvroSchema,
}

impl Walk<'_> {
    fn unsupported(&self, kind: &str) -> AvroError {
        AvroError::Unsupported { schema: self.schema.id.clone(), kind: kind.to_string() }
    }

    /// A type schema with references resolved, and the namespace names inside it resolve in
    /// (borrowed: this runs for every node of every record).
    fn resolve<'j>(&'j self, schema: &'j Json, namespace: &'j str) -> Result<(&'j Json, &'j str), AvroError> {
        if let Json::String(name) = schema
            && !PRIMITIVES.contains(&name.as_str())
        {
            let (full, found) = match self.schema.names.get_key_value(name.as_str()) {
                Some(hit) if name.contains('.') || namespace.is_empty() => hit,
                _ => self
                    .schema
                    .names
                    .get_key_value(full_name(name, None, namespace).as_str())
                    .or_else(|| self.schema.names.get_key_value(name.as_str()))
                    .ok_or_else(|| self.unsupported("an unresolved type name"))?,
            };
            return Ok((found, namespace_of(full)));
        }
        let ns = match schema {
            Json::Object(o) if matches!(o.get("type").and_then(Json::as_str), Some("record" | "enum" | "fixed")) => {
                let name = o.get("name").and_then(Json::as_str).unwrap_or("");
                match (name.contains('.'), o.get("namespace").and_then(Json::as_str)) {
                    (true, _) => namespace_of(name),
                    (false, Some(explicit)) => explicit,
                    (false, None) => namespace,
                }
            }
            _ => namespace,
        };
        Ok((schema, ns))
    }

    /// The Connect schema (as the JsonConverter writes it) of an Avro type schema.
    fn schema_of(&self, schema: &Json, namespace: &str, depth: usize) -> Result<Json, AvroError> {
        if depth > MAX_DEPTH {
            return Err(self.unsupported("a type nested too deep"));
        }
        let (schema, ns) = self.resolve(schema, namespace)?;
        // An optional Connect field: a union of null and one type.
        if let Json::Array(branches) = schema {
            let types: Vec<&Json> = branches.iter().filter(|b| b.as_str() != Some("null")).collect();
            let [only] = types.as_slice() else { return Err(self.unsupported("a union of several types")) };
            let mut connect = self.schema_of(only, ns, depth + 1)?;
            connect["optional"] = Json::Bool(true);
            return Ok(connect);
        }
        let (kind, attrs) = match schema {
            Json::String(kind) => (kind.as_str(), None),
            Json::Object(o) => match o.get("type") {
                Some(Json::String(kind)) => (kind.as_str(), Some(o)),
                Some(inner) => return self.schema_of(inner, ns, depth + 1),
                None => return Err(self.unsupported("a type schema without a type")),
            },
            _ => return Err(self.unsupported("a type schema that is no name, object or union")),
        };
        let attr = |key: &str| attrs.and_then(|a| a.get(key));
        let mut connect = Map::new();
        let connect_type = match kind {
            "boolean" => "boolean",
            "int" => match attr("connect.type").and_then(Json::as_str) {
                Some("int8") => "int8",
                Some("int16") => "int16",
                _ => "int32",
            },
            "long" => "int64",
            "float" => "float",
            "double" => "double",
            "string" | "enum" => "string",
            "bytes" | "fixed" => "bytes",
            "array" => {
                let items = attr("items").ok_or_else(|| self.unsupported("an array without items"))?;
                connect.insert("items".into(), self.schema_of(items, ns, depth + 1)?);
                "array"
            }
            "map" => {
                let values = attr("values").ok_or_else(|| self.unsupported("a map without values"))?;
                connect.insert("keys".into(), json!({"type": "string", "optional": false}));
                connect.insert("values".into(), self.schema_of(values, ns, depth + 1)?);
                "map"
            }
            "record" => {
                let mut fields = Vec::new();
                for field in attr("fields").and_then(Json::as_array).map(Vec::as_slice).unwrap_or_default() {
                    let name = field.get("name").and_then(Json::as_str).unwrap_or("");
                    let ty = field.get("type").ok_or_else(|| self.unsupported("a field without a type"))?;
                    let mut f = self.schema_of(ty, ns, depth + 1)?;
                    f["field"] = Json::String(name.to_string());
                    fields.push(f);
                }
                connect.insert("fields".into(), Json::Array(fields));
                "struct"
            }
            "null" => return Err(self.unsupported("a null outside a union")),
            other => return Err(self.unsupported(other)),
        };
        connect.insert("type".into(), Json::String(connect_type.into()));
        connect.insert("optional".into(), Json::Bool(false));
        // Connect's own name, version and parameters.
        // A record's Connect name is its full Avro name (AvroData names the record after the
        // Connect struct, e.g. `io.debezium.data.VariableScaleDecimal`).
        let record_name = (kind == "record")
            .then(|| attr("name").and_then(Json::as_str))
            .flatten()
            .map(|name| Json::String(full_name(name, attr("namespace").and_then(Json::as_str), namespace)));
        let name = attr("connect.name").cloned().or(record_name);
        if let Some(name) = name {
            connect.insert("name".into(), name);
        }
        if let Some(version) = attr("connect.version") {
            connect.insert("version".into(), version.clone());
        }
        if let Some(parameters) = attr("connect.parameters") {
            connect.insert("parameters".into(), parameters.clone());
        }
        if attr("logicalType").and_then(Json::as_str) == Some("decimal") && !connect.contains_key("name") {
            // A decimal written without Connect's attributes: Connect's Decimal of its scale.
            let scale = attr("scale").and_then(Json::as_u64).unwrap_or(0);
            connect.insert("name".into(), json!("org.apache.kafka.connect.data.Decimal"));
            connect.insert("parameters".into(), json!({"scale": scale.to_string()}));
        }
        Ok(Json::Object(connect))
    }

    /// Write the payload of `value` (of Avro type `schema`) in the JsonConverter's form,
    /// fields in the schema's order. Allocates nothing of its own: strings, numbers and base64
    /// are written straight into `out`.
    fn payload(
        &self,
        schema: &Json,
        namespace: &str,
        value: &Avro,
        out: &mut Vec<u8>,
        depth: usize,
    ) -> Result<(), AvroError> {
        if depth > MAX_DEPTH {
            return Err(self.unsupported("a value nested too deep"));
        }
        let (schema, ns) = self.resolve(schema, namespace)?;
        let data_error = || AvroError::Data(self.schema.id.clone());
        // serde_json's own escaping and number forms, into the buffer.
        let text = |out: &mut Vec<u8>, s: &str| serde_json::to_writer(&mut *out, s).map_err(|_| data_error());
        let base64 = |out: &mut Vec<u8>, b: &[u8]| {
            out.push(b'"');
            let start = out.len();
            out.resize(start + base64::encoded_len(b.len(), true).unwrap_or(0), 0);
            let written = base64::engine::general_purpose::STANDARD.encode_slice(b, &mut out[start..]).unwrap_or(0);
            out.truncate(start + written);
            out.push(b'"');
        };
        let float = |out: &mut Vec<u8>, x: f64| {
            if x.is_nan() {
                out.extend_from_slice(b"\"NaN\"");
            } else if x.is_infinite() {
                out.extend_from_slice(if x > 0.0 { b"\"Infinity\"" } else { b"\"-Infinity\"" });
            } else {
                let _ = serde_json::to_writer(&mut *out, &x);
            }
        };
        let integer = |out: &mut Vec<u8>, i: i64| out.extend_from_slice(itoa::Buffer::new().format(i).as_bytes());
        match value {
            Avro::Union(index, inner) => {
                let branch = schema.as_array().and_then(|b| b.get(*index as usize)).ok_or_else(data_error)?;
                self.payload(branch, ns, inner, out, depth + 1)?;
            }
            Avro::Null => out.extend_from_slice(b"null"),
            Avro::Boolean(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
            Avro::Int(i) | Avro::Date(i) | Avro::TimeMillis(i) => integer(out, i64::from(*i)),
            Avro::Long(i)
            | Avro::TimeMicros(i)
            | Avro::TimestampMillis(i)
            | Avro::TimestampMicros(i)
            | Avro::TimestampNanos(i)
            | Avro::LocalTimestampMillis(i)
            | Avro::LocalTimestampMicros(i)
            | Avro::LocalTimestampNanos(i) => integer(out, *i),
            // A float32 in its own shortest form (`0.1`, as Kafka's JsonConverter writes it),
            // not widened to f64 first (`0.10000000149011612`).
            Avro::Float(x) if x.is_finite() => _ = serde_json::to_writer(&mut *out, x),
            Avro::Float(x) => float(out, f64::from(*x)),
            Avro::Double(x) => float(out, *x),
            Avro::String(s) | Avro::Enum(_, s) => text(out, s)?,
            Avro::Uuid(u) => text(out, u.hyphenated().encode_lower(&mut uuid::Uuid::encode_buffer()))?,
            Avro::Bytes(b) | Avro::Fixed(_, b) => base64(out, b),
            Avro::Decimal(d) => {
                // The unscaled value's big-endian two's complement bytes: what Connect's
                // Decimal carries in JSON as base64.
                let bytes = Vec::<u8>::try_from(d).map_err(|_| data_error())?;
                base64(out, &bytes);
            }
            Avro::Array(items) => {
                let item = schema_attr(schema, "items").ok_or_else(|| self.unsupported("an array without items"))?;
                out.push(b'[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    self.payload(item, ns, v, out, depth + 1)?;
                }
                out.push(b']');
            }
            Avro::Map(entries) => {
                let values = schema_attr(schema, "values").ok_or_else(|| self.unsupported("a map without values"))?;
                let mut keys: Vec<&String> = entries.keys().collect();
                keys.sort();
                out.push(b'{');
                for (i, k) in keys.into_iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    text(out, k)?;
                    out.push(b':');
                    self.payload(values, ns, &entries[k], out, depth + 1)?;
                }
                out.push(b'}');
            }
            Avro::Record(fields) => {
                let declared = schema_attr(schema, "fields").and_then(Json::as_array);
                out.push(b'{');
                for (i, (name, v)) in fields.iter().enumerate() {
                    let ty = declared
                        .and_then(|d| d.iter().find(|f| f.get("name").and_then(Json::as_str) == Some(name)))
                        .and_then(|f| f.get("type"))
                        .ok_or_else(data_error)?;
                    if i > 0 {
                        out.push(b',');
                    }
                    text(out, name)?;
                    out.push(b':');
                    self.payload(ty, ns, v, out, depth + 1)?;
                }
                out.push(b'}');
            }
            Avro::BigDecimal(_) => return Err(self.unsupported("big-decimal")),
            Avro::Duration(_) => return Err(self.unsupported("duration")),
        }
        Ok(())
    }
}

/// `key` of an object type schema, also when the object wraps its type (`{"type": {…}}`).
fn schema_attr<'j>(schema: &'j Json, key: &str) -> Option<&'j Json> {
    let object = schema.as_object()?;
    object.get(key).or_else(|| object.get("type").and_then(|inner| schema_attr(inner, key)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROW: &str = r#"{"type": "record", "name": "Value", "namespace": "s.db.dbo.t", "connect.name": "s.db.dbo.t.Value",
        "fields": [{"name": "id", "type": "int"}, {"name": "ssn", "type": ["null", "string"], "default": null}]}"#;

    /// A `ROW` with an SSN.
    fn patient() -> Avro {
        Avro::Record(vec![
            ("id".into(), Avro::Int(5)),
            ("ssn".into(), Avro::Union(1, Box::new(Avro::String("123-45-6789".into())))),
        ])
    }

    fn datum(schema: &str, value: Avro) -> Vec<u8> {
        let schema = apache_avro::Schema::parse_str(schema).unwrap();
        apache_avro::writer::datum::GenericDatumWriter::builder(&schema)
            .build()
            .and_then(|w| w.write_value_to_vec(value))
            .unwrap()
    }

    #[test]
    fn a_row_reads_as_the_json_converter_writes_it_fields_in_order() {
        let schema = AvroSchema::parse("confluent:1", ROW).unwrap();
        let bytes = datum(ROW, patient());
        let text = schema.to_connect_json(&bytes).unwrap();
        let parsed: Json = serde_json::from_str(&text).unwrap();
        assert_eq!(parsed["schema"]["type"], "struct");
        assert_eq!(parsed["schema"]["name"], "s.db.dbo.t.Value");
        assert_eq!(parsed["schema"]["fields"][1], json!({"field": "ssn", "type": "string", "optional": true}));
        assert!(text.ends_with(r#""payload":{"id":5,"ssn":"123-45-6789"}}"#), "{text}");
    }

    #[test]
    fn failures_name_the_schema_and_the_kind_never_the_data() {
        let schema = AvroSchema::parse("glue:0000", ROW).unwrap();
        let whole = datum(ROW, patient());
        // Cut short, and with bytes left over: neither matches the schema.
        for bytes in [&whole[..whole.len() - 3], &[whole.as_slice(), &[0]].concat()[..]] {
            let error = schema.to_connect_json(bytes).unwrap_err();
            assert_eq!(error, AvroError::Data("glue:0000".into()));
            assert!(!error.to_string().contains("123"), "{error}");
        }
        // A Protobuf or JSON Schema text from the registry is no Avro schema.
        for text in ["syntax = \"proto3\"; message M { string ssn = 1; }", r#"{"$schema": "x", "type": "object"}"#] {
            assert_eq!(AvroSchema::parse("confluent:9", text).unwrap_err(), AvroError::NotAvro("confluent:9".into()));
        }
        // A union of several types has no Connect form.
        let union = r#"{"type": "record", "name": "R", "connect.name": "R", "fields": [{"name": "x", "type": ["null", "int", "string"]}]}"#;
        // Found when the schema is read, before any record.
        let error = AvroSchema::parse("confluent:3", union).unwrap_err();
        assert!(
            matches!(error, AvroError::Unsupported { ref kind, .. } if kind == "a union of several types"),
            "{error}"
        );
        // A record that holds itself has no Connect form (a Connect schema is a tree).
        let recursive = r#"{"type": "record", "name": "R", "connect.name": "R", "fields": [{"name": "next", "type": ["null", "R"]}]}"#;
        assert!(matches!(AvroSchema::parse("confluent:4", recursive), Err(AvroError::Unsupported { .. })));
    }

    /// A record written with `connect.meta.data=false` carries no Connect names: its
    /// Debezium types cannot be known, so the schema is refused rather than read as plain
    /// numbers.
    #[test]
    fn a_record_without_connect_metadata_is_refused() {
        let bare = r#"{"type": "record", "name": "Envelope", "namespace": "s.db.dbo.t",
            "fields": [{"name": "ts", "type": "long"}]}"#;
        let error = AvroSchema::parse("confluent:5", bare).unwrap_err();
        assert!(
            matches!(error, AvroError::Unsupported { ref kind, .. } if kind.contains("connect.meta.data")),
            "{error}"
        );
    }

    /// A float32 reads in its own shortest form, as the JsonConverter writes it.
    #[test]
    fn a_float_keeps_its_float32_form() {
        let schema_text =
            r#"{"type": "record", "name": "R", "connect.name": "R", "fields": [{"name": "f", "type": "float"}]}"#;
        let schema = AvroSchema::parse("confluent:6", schema_text).unwrap();
        for (x, text) in [(0.1_f32, "0.1"), (1.1, "1.1"), (-3.4e38, "-3.4e+38"), (1e-7, "1e-7")] {
            let bytes = datum(schema_text, Avro::Record(vec![("f".into(), Avro::Float(x))]));
            let json = schema.to_connect_json(&bytes).unwrap();
            assert!(json.ends_with(&format!(r#""payload":{{"f":{text}}}}}"#)), "{x}: {json}");
            let back: Json = serde_json::from_str(&json).unwrap();
            assert_eq!(back["payload"]["f"].as_f64().unwrap() as f32, x);
        }
    }
}
