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
use std::fmt::Write as _;

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
        let mut reader = datum;
        let value = apache_avro::reader::datum::GenericDatumReader::builder(&self.avro)
            .build()
            .and_then(|r| r.read_value(&mut reader))
            .map_err(|_| AvroError::Data(self.id.clone()))?;
        // Every byte used, and a value of the schema: apache-avro 0.22 reads a union branch
        // cut short as `Union(i, Null)` instead of failing, which would null a value the
        // source sent.
        if !reader.is_empty() || !value.validate(&self.avro) {
            return Err(AvroError::Data(self.id.clone()));
        }
        let walk = Walk { schema: self };
        let mut out = String::with_capacity(self.connect.len() + datum.len() * 3 + 32);
        out.push_str("{\"schema\":");
        out.push_str(&self.connect);
        out.push_str(",\"payload\":");
        walk.payload(&self.json, "", &value, &mut out, 0)?;
        out.push('}');
        Ok(out)
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

    /// A type schema with references resolved, and the namespace names inside it resolve in.
    fn resolve<'j>(&'j self, schema: &'j Json, namespace: &str) -> Result<(&'j Json, String), AvroError> {
        if let Json::String(name) = schema
            && !PRIMITIVES.contains(&name.as_str())
        {
            let full = full_name(name, None, namespace);
            let found = self.schema.names.get(&full).or_else(|| self.schema.names.get(name.as_str()));
            let found = found.ok_or_else(|| self.unsupported("an unresolved type name"))?;
            let ns = full.rsplit_once('.').map_or(String::new(), |(ns, _)| ns.to_string());
            return Ok((found, ns));
        }
        let ns = match schema {
            Json::Object(o) if matches!(o.get("type").and_then(Json::as_str), Some("record" | "enum" | "fixed")) => {
                let name = o.get("name").and_then(Json::as_str).unwrap_or("");
                let full = full_name(name, o.get("namespace").and_then(Json::as_str), namespace);
                full.rsplit_once('.').map_or(String::new(), |(ns, _)| ns.to_string())
            }
            _ => namespace.to_string(),
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
            let mut connect = self.schema_of(only, &ns, depth + 1)?;
            connect["optional"] = Json::Bool(true);
            return Ok(connect);
        }
        let (kind, attrs) = match schema {
            Json::String(kind) => (kind.as_str(), None),
            Json::Object(o) => match o.get("type") {
                Some(Json::String(kind)) => (kind.as_str(), Some(o)),
                Some(inner) => return self.schema_of(inner, &ns, depth + 1),
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
                connect.insert("items".into(), self.schema_of(items, &ns, depth + 1)?);
                "array"
            }
            "map" => {
                let values = attr("values").ok_or_else(|| self.unsupported("a map without values"))?;
                connect.insert("keys".into(), json!({"type": "string", "optional": false}));
                connect.insert("values".into(), self.schema_of(values, &ns, depth + 1)?);
                "map"
            }
            "record" => {
                let mut fields = Vec::new();
                for field in attr("fields").and_then(Json::as_array).map(Vec::as_slice).unwrap_or_default() {
                    let name = field.get("name").and_then(Json::as_str).unwrap_or("");
                    let ty = field.get("type").ok_or_else(|| self.unsupported("a field without a type"))?;
                    let mut f = self.schema_of(ty, &ns, depth + 1)?;
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
    /// fields in the schema's order.
    fn payload(
        &self,
        schema: &Json,
        namespace: &str,
        value: &Avro,
        out: &mut String,
        depth: usize,
    ) -> Result<(), AvroError> {
        if depth > MAX_DEPTH {
            return Err(self.unsupported("a value nested too deep"));
        }
        let (schema, ns) = self.resolve(schema, namespace)?;
        let text = |out: &mut String, s: &str| out.push_str(&Json::String(s.to_string()).to_string());
        let base64 = |out: &mut String, b: &[u8]| {
            out.push('"');
            out.push_str(&base64::engine::general_purpose::STANDARD.encode(b));
            out.push('"');
        };
        let float = |out: &mut String, x: f64| {
            if x.is_nan() {
                out.push_str("\"NaN\"");
            } else if x.is_infinite() {
                out.push_str(if x > 0.0 { "\"Infinity\"" } else { "\"-Infinity\"" });
            } else {
                out.push_str(&Json::from(x).to_string());
            }
        };
        match value {
            Avro::Union(index, inner) => {
                let branch = schema
                    .as_array()
                    .and_then(|b| b.get(*index as usize))
                    .ok_or_else(|| AvroError::Data(self.schema.id.clone()))?;
                self.payload(branch, &ns, inner, out, depth + 1)?;
            }
            Avro::Null => out.push_str("null"),
            Avro::Boolean(b) => out.push_str(if *b { "true" } else { "false" }),
            Avro::Int(i) | Avro::Date(i) | Avro::TimeMillis(i) => {
                let _ = write!(out, "{i}");
            }
            Avro::Long(i)
            | Avro::TimeMicros(i)
            | Avro::TimestampMillis(i)
            | Avro::TimestampMicros(i)
            | Avro::TimestampNanos(i)
            | Avro::LocalTimestampMillis(i)
            | Avro::LocalTimestampMicros(i)
            | Avro::LocalTimestampNanos(i) => {
                let _ = write!(out, "{i}");
            }
            Avro::Float(x) => float(out, f64::from(*x)),
            Avro::Double(x) => float(out, *x),
            Avro::String(s) | Avro::Enum(_, s) => text(out, s),
            Avro::Uuid(u) => text(out, &u.to_string()),
            Avro::Bytes(b) | Avro::Fixed(_, b) => base64(out, b),
            Avro::Decimal(d) => {
                // The unscaled value's big-endian two's complement bytes: what Connect's
                // Decimal carries in JSON as base64.
                let bytes = Vec::<u8>::try_from(d).map_err(|_| AvroError::Data(self.schema.id.clone()))?;
                base64(out, &bytes);
            }
            Avro::Array(items) => {
                let item = schema_attr(schema, "items").ok_or_else(|| self.unsupported("an array without items"))?;
                out.push('[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    self.payload(item, &ns, v, out, depth + 1)?;
                }
                out.push(']');
            }
            Avro::Map(entries) => {
                let values = schema_attr(schema, "values").ok_or_else(|| self.unsupported("a map without values"))?;
                let mut keys: Vec<&String> = entries.keys().collect();
                keys.sort();
                out.push('{');
                for (i, k) in keys.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    text(out, k);
                    out.push(':');
                    self.payload(values, &ns, &entries[k], out, depth + 1)?;
                }
                out.push('}');
            }
            Avro::Record(fields) => {
                let declared = schema_attr(schema, "fields").and_then(Json::as_array);
                out.push('{');
                for (i, (name, v)) in fields.iter().enumerate() {
                    let ty = declared
                        .and_then(|d| d.iter().find(|f| f.get("name").and_then(Json::as_str) == Some(name)))
                        .and_then(|f| f.get("type"))
                        .ok_or_else(|| AvroError::Data(self.schema.id.clone()))?;
                    if i > 0 {
                        out.push(',');
                    }
                    text(out, name);
                    out.push(':');
                    self.payload(ty, &ns, v, out, depth + 1)?;
                }
                out.push('}');
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

    const ROW: &str = r#"{"type": "record", "name": "Value", "namespace": "s.db.dbo.t",
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
        let union = r#"{"type": "record", "name": "R", "fields": [{"name": "x", "type": ["null", "int", "string"]}]}"#;
        // Found when the schema is read, before any record.
        let error = AvroSchema::parse("confluent:3", union).unwrap_err();
        assert!(
            matches!(error, AvroError::Unsupported { ref kind, .. } if kind == "a union of several types"),
            "{error}"
        );
        // A record that holds itself has no Connect form (a Connect schema is a tree).
        let recursive = r#"{"type": "record", "name": "R", "fields": [{"name": "next", "type": ["null", "R"]}]}"#;
        assert!(matches!(AvroSchema::parse("confluent:4", recursive), Err(AvroError::Unsupported { .. })));
    }
}
