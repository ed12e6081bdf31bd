//! The other way round from [`super::connect`]: a Connect record in the JsonConverter's form
//! (`{"schema": …, "payload": …}`) written as Connect's `AvroConverter` writes it — the Avro
//! schema `AvroData.fromConnectSchema` makes of the Connect schema, and the Avro binary datum of
//! the payload. For the project's own generator (`cdc make-event --avro`, the Avro samples in
//! `events/`, the benchmarks and tests): a registry-framed record made here from a JSON record
//! must read back to the same change.
//!
//! The mapping follows Confluent's `AvroData` (schema-registry, `avro-data` module) with its
//! defaults (`connect.meta.data=true`, no enhanced schema support):
//! - `int8`/`int16` → Avro `int` with `connect.type`; `int32` → `int`; `int64` → `long`;
//!   `float32`/`float64` → `float`/`double`; `boolean`, `string`, `bytes` alike;
//! - a named Connect type keeps its name, version and parameters as `connect.name`,
//!   `connect.version`, `connect.parameters`; Connect's `Decimal` is `bytes` with
//!   `logicalType: decimal` (precision from `connect.decimal.precision`, else 64), `Date`
//!   `int`/`date`, `Time` `int`/`time-millis`, `Timestamp` `long`/`timestamp-millis`;
//! - a struct is a record named after the Connect struct (`a.b.Value` → namespace `a.b`, name
//!   `Value`; an unnamed one `io.confluent.connect.avro.ConnectDefault`, numbered after the
//!   first), a second use of a name refers to the first definition;
//! - an optional schema is the union `["null", T]`, its field's default `null`;
//! - arrays are arrays, maps with string keys Avro maps.
//!
//! Errors name the JSON path of the problem, never a value.

use std::collections::HashMap;

use apache_avro::types::Value as Avro;
use base64::Engine as _;
use serde_json::{Map, Value as Json, json};

/// Why a JSON record cannot be written as Avro: where (a JSON path into the schema or the
/// payload) and what, never the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot write the record as Avro at {path}: {problem}")]
pub struct EncodeError {
    /// `$.schema.fields[2]`, `$.payload.after.ssn`…
    pub path: String,
    /// What is wrong.
    pub problem: &'static str,
}

/// A Connect record written as Avro: the schema's JSON text (what a registry holds) and the
/// datum (what follows the registry's header in a Kafka message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    /// The Avro schema, as JSON text.
    pub schema: String,
    /// The Avro binary datum.
    pub datum: Vec<u8>,
}

/// Write the JsonConverter text `record` (`{"schema": …, "payload": …}`) as Avro.
///
/// Errors: [`EncodeError`] when `record` is not such a document (a payload-only record has no
/// schema to write), or its payload does not fit its schema, or the schema has a form the
/// mapping has none for (a map with non-string keys, two different structs of one name).
pub fn from_connect_json(record: &str) -> Result<Encoded, EncodeError> {
    let document: Json = serde_json::from_str(record).map_err(|_| fail("$", "not JSON text"))?;
    let (Some(schema), Some(payload)) = (document.get("schema"), document.get("payload")) else {
        return Err(fail("$", "not a {\"schema\", \"payload\"} document (schemas.enable=true)"));
    };
    let mut writer = Writer { defined: HashMap::new(), unnamed: 0 };
    let avro_schema = writer.schema(schema, "$.schema")?;
    let value = writer.value(schema, payload, "$.payload")?;
    let text = avro_schema.to_string();
    let parsed = apache_avro::Schema::parse_str(&text).map_err(|_| fail("$.schema", "no valid Avro schema results"))?;
    let datum = apache_avro::writer::datum::GenericDatumWriter::builder(&parsed)
        .build()
        .and_then(|w| w.write_value_to_vec(value))
        .map_err(|_| fail("$.payload", "the payload does not fit its schema"))?;
    Ok(Encoded { schema: text, datum })
}

fn fail(path: &str, problem: &'static str) -> EncodeError {
    EncodeError { path: path.to_string(), problem }
}

struct Writer {
    /// Record full names already defined, with their Connect schemas.
    defined: HashMap<String, Json>,
    unnamed: usize,
}

const DECIMAL: &str = "org.apache.kafka.connect.data.Decimal";
const DATE: &str = "org.apache.kafka.connect.data.Date";
const TIME: &str = "org.apache.kafka.connect.data.Time";
const TIMESTAMP: &str = "org.apache.kafka.connect.data.Timestamp";

fn is_optional(schema: &Json) -> bool {
    schema.get("optional").and_then(Json::as_bool).unwrap_or(false)
}

fn connect_type<'j>(schema: &'j Json, path: &str) -> Result<&'j str, EncodeError> {
    schema.get("type").and_then(Json::as_str).ok_or_else(|| fail(path, "a schema without a type"))
}

impl Writer {
    /// The Avro type of a Connect schema: `["null", T]` when optional.
    fn schema(&mut self, schema: &Json, path: &str) -> Result<Json, EncodeError> {
        let inner = self.required_schema(schema, path)?;
        Ok(if is_optional(schema) { json!(["null", inner]) } else { inner })
    }

    fn required_schema(&mut self, schema: &Json, path: &str) -> Result<Json, EncodeError> {
        let kind = connect_type(schema, path)?;
        let name = schema.get("name").and_then(Json::as_str);
        let mut avro = Map::new();
        let base = match kind {
            "int8" | "int16" => {
                avro.insert("connect.type".into(), json!(kind));
                "int"
            }
            "int32" => "int",
            "int64" => "long",
            "float" | "float32" => "float",
            "double" | "float64" => "double",
            "boolean" => "boolean",
            "string" => "string",
            "bytes" => "bytes",
            "array" => {
                let items = schema.get("items").ok_or_else(|| fail(path, "an array without items"))?;
                avro.insert("items".into(), self.schema(items, &format!("{path}.items"))?);
                "array"
            }
            "map" => {
                let keys = schema.get("keys").ok_or_else(|| fail(path, "a map without keys"))?;
                if connect_type(keys, path)? != "string" || is_optional(keys) {
                    return Err(fail(path, "a map whose keys are not required strings"));
                }
                let values = schema.get("values").ok_or_else(|| fail(path, "a map without values"))?;
                avro.insert("values".into(), self.schema(values, &format!("{path}.values"))?);
                "map"
            }
            "struct" => return self.record(schema, name, path),
            _ => return Err(fail(path, "a Connect type the Avro mapping does not know")),
        };
        avro.insert("type".into(), json!(base));
        self.connect_meta(schema, &mut avro);
        match name {
            Some(DECIMAL) => {
                let scale = parameter(schema, "scale").ok_or_else(|| fail(path, "a Decimal without a scale"))?;
                let precision = parameter(schema, "connect.decimal.precision").unwrap_or(64);
                avro.insert("logicalType".into(), json!("decimal"));
                avro.insert("scale".into(), json!(scale));
                avro.insert("precision".into(), json!(precision));
            }
            Some(DATE) => _ = avro.insert("logicalType".into(), json!("date")),
            Some(TIME) => _ = avro.insert("logicalType".into(), json!("time-millis")),
            Some(TIMESTAMP) => _ = avro.insert("logicalType".into(), json!("timestamp-millis")),
            _ => {}
        }
        Ok(Json::Object(avro))
    }

    /// `connect.name`, `connect.version`, `connect.parameters`, `connect.doc` as AvroData
    /// keeps them.
    fn connect_meta(&self, schema: &Json, avro: &mut Map<String, Json>) {
        for (from, to) in [
            ("doc", "connect.doc"),
            ("version", "connect.version"),
            ("parameters", "connect.parameters"),
            ("name", "connect.name"),
        ] {
            if let Some(v) = schema.get(from) {
                avro.insert(to.into(), v.clone());
            }
        }
    }

    fn record(&mut self, schema: &Json, name: Option<&str>, path: &str) -> Result<Json, EncodeError> {
        let full = match name {
            Some(name) => name.to_string(),
            None => {
                self.unnamed += 1;
                match self.unnamed {
                    1 => "io.confluent.connect.avro.ConnectDefault".to_string(),
                    n => format!("io.confluent.connect.avro.ConnectDefault{n}"),
                }
            }
        };
        if let Some(earlier) = self.defined.get(&full) {
            // The same struct again (Debezium's `after` after `before`): a reference.
            let same = |s: &Json| {
                let mut s = s.clone();
                if let Some(o) = s.as_object_mut() {
                    o.remove("optional");
                    o.remove("field");
                }
                s
            };
            if same(earlier) != same(schema) {
                return Err(fail(path, "two different structs with one name"));
            }
            return Ok(json!(full));
        }
        self.defined.insert(full.clone(), schema.clone());
        let (namespace, short) = full.rsplit_once('.').map_or((None, full.as_str()), |(ns, n)| (Some(ns), n));
        let mut fields = Vec::new();
        for (i, field) in schema.get("fields").and_then(Json::as_array).into_iter().flatten().enumerate() {
            let at = format!("{path}.fields[{i}]");
            let field_name =
                field.get("field").and_then(Json::as_str).ok_or_else(|| fail(&at, "a field without a name"))?;
            let mut f = Map::new();
            f.insert("name".into(), json!(field_name));
            f.insert("type".into(), self.schema(field, &at)?);
            if is_optional(field) {
                f.insert("default".into(), Json::Null);
            }
            fields.push(Json::Object(f));
        }
        let mut avro = Map::new();
        avro.insert("type".into(), json!("record"));
        avro.insert("name".into(), json!(short));
        if let Some(ns) = namespace {
            avro.insert("namespace".into(), json!(ns));
        }
        avro.insert("fields".into(), Json::Array(fields));
        self.connect_meta(schema, &mut avro);
        if name.is_none() {
            avro.remove("connect.name");
        }
        Ok(Json::Object(avro))
    }

    /// The Avro value of `payload` under Connect schema `schema` (union branches as
    /// [`Writer::schema`] lays them out).
    fn value(&self, schema: &Json, payload: &Json, path: &str) -> Result<Avro, EncodeError> {
        if is_optional(schema) {
            return Ok(match payload {
                Json::Null => Avro::Union(0, Box::new(Avro::Null)),
                v => Avro::Union(1, Box::new(self.required_value(schema, v, path)?)),
            });
        }
        self.required_value(schema, payload, path)
    }

    fn required_value(&self, schema: &Json, payload: &Json, path: &str) -> Result<Avro, EncodeError> {
        let kind = connect_type(schema, path)?;
        let name = schema.get("name").and_then(Json::as_str);
        let wrong = || fail(path, "a value that does not fit its Connect type");
        let int = || payload.as_i64().ok_or_else(wrong);
        let int32 = || int().and_then(|i| i32::try_from(i).map_err(|_| wrong()));
        let bytes = || {
            payload.as_str().and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok()).ok_or_else(wrong)
        };
        let float = || match payload {
            Json::String(s) if s == "NaN" => Ok(f64::NAN),
            Json::String(s) if s == "Infinity" => Ok(f64::INFINITY),
            Json::String(s) if s == "-Infinity" => Ok(f64::NEG_INFINITY),
            v => v.as_f64().ok_or_else(wrong),
        };
        Ok(match (kind, name) {
            ("int8", _) => Avro::Int(int().ok().filter(|i| i8::try_from(*i).is_ok()).ok_or_else(wrong)? as i32),
            ("int16", _) => Avro::Int(int().ok().filter(|i| i16::try_from(*i).is_ok()).ok_or_else(wrong)? as i32),
            ("int32", Some(DATE)) => Avro::Date(int32()?),
            ("int32", Some(TIME)) => Avro::TimeMillis(int32()?),
            ("int32", _) => Avro::Int(int32()?),
            ("int64", Some(TIMESTAMP)) => Avro::TimestampMillis(int()?),
            ("int64", _) => Avro::Long(int()?),
            ("float" | "float32", _) => Avro::Float(float()? as f32),
            ("double" | "float64", _) => Avro::Double(float()?),
            ("boolean", _) => Avro::Boolean(payload.as_bool().ok_or_else(wrong)?),
            ("string", _) => Avro::String(payload.as_str().ok_or_else(wrong)?.to_string()),
            ("bytes", Some(DECIMAL)) => Avro::Decimal(apache_avro::Decimal::from(bytes()?)),
            ("bytes", _) => Avro::Bytes(bytes()?),
            ("array", _) => {
                let items = schema.get("items").ok_or_else(wrong)?;
                let values = payload.as_array().ok_or_else(wrong)?;
                let mut out = Vec::with_capacity(values.len());
                for (i, v) in values.iter().enumerate() {
                    out.push(self.value(items, v, &format!("{path}[{i}]"))?);
                }
                Avro::Array(out)
            }
            ("map", _) => {
                let values = schema.get("values").ok_or_else(wrong)?;
                let mut out = HashMap::new();
                for (k, v) in payload.as_object().ok_or_else(wrong)? {
                    out.insert(k.clone(), self.value(values, v, &format!("{path}.<value>"))?);
                }
                Avro::Map(out)
            }
            ("struct", _) => {
                let object = payload.as_object().ok_or_else(wrong)?;
                let mut out = Vec::new();
                for field in schema.get("fields").and_then(Json::as_array).into_iter().flatten() {
                    let name = field.get("field").and_then(Json::as_str).ok_or_else(wrong)?;
                    let at = format!("{path}.{name}");
                    let v = object.get(name).unwrap_or(&Json::Null);
                    if v.is_null() && !is_optional(field) {
                        return Err(fail(&at, "a required field is null or missing"));
                    }
                    out.push((name.to_string(), self.value(field, v, &at)?));
                }
                Avro::Record(out)
            }
            _ => return Err(wrong()),
        })
    }
}

/// A Connect schema parameter that holds a whole number (`"scale": "2"`).
fn parameter(schema: &Json, key: &str) -> Option<u64> {
    schema.get("parameters")?.get(key)?.as_str()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::avro::connect::AvroSchema;

    /// Reading the Avro back gives the same Connect record: schema and payload.
    fn round_trip(record: &str) -> Json {
        let encoded = from_connect_json(record).unwrap();
        let schema = AvroSchema::parse("confluent:1", &encoded.schema).unwrap();
        serde_json::from_str(&schema.to_connect_json(&encoded.datum).unwrap()).unwrap()
    }

    #[test]
    fn an_envelope_reads_back_as_the_same_connect_record() {
        let record = json!({
            "schema": {"type": "struct", "name": "s.db.dbo.t.Envelope", "version": 1, "optional": false, "fields": [
                {"field": "before", "type": "struct", "name": "s.db.dbo.t.Value", "optional": true, "fields": [
                    {"field": "id", "type": "int32", "optional": false},
                    {"field": "amount", "type": "bytes", "optional": true, "name": DECIMAL, "version": 1,
                     "parameters": {"scale": "2", "connect.decimal.precision": "10"}},
                    {"field": "tiny", "type": "int16", "optional": true}]},
                {"field": "after", "type": "struct", "name": "s.db.dbo.t.Value", "optional": true, "fields": [
                    {"field": "id", "type": "int32", "optional": false},
                    {"field": "amount", "type": "bytes", "optional": true, "name": DECIMAL, "version": 1,
                     "parameters": {"scale": "2", "connect.decimal.precision": "10"}},
                    {"field": "tiny", "type": "int16", "optional": true}]},
                {"field": "op", "type": "string", "optional": false},
                {"field": "ts_ms", "type": "int64", "optional": true}]},
            "payload": {"before": null, "after": {"id": 7, "amount": "AN8=", "tiny": -3}, "op": "c", "ts_ms": 9_007_199_254_740_993_i64}
        });
        let back = round_trip(&record.to_string());
        assert_eq!(back["payload"], record["payload"]);
        assert_eq!(back["schema"]["name"], "s.db.dbo.t.Envelope");
        assert_eq!(back["schema"]["fields"][1]["fields"][1]["parameters"]["scale"], "2");
        assert_eq!(back["schema"]["fields"][1]["fields"][2]["type"], "int16");
    }

    #[test]
    fn problems_name_a_path_never_a_value() {
        let bad = json!({"schema": {"type": "struct", "name": "R", "fields": [{"field": "ssn", "type": "int32"}]},
                          "payload": {"ssn": "123-45-6789"}});
        let error = from_connect_json(&bad.to_string()).unwrap_err();
        assert_eq!(error.path, "$.payload.ssn");
        assert!(!error.to_string().contains("123"), "{error}");
        let payload_only = json!({"before": null, "after": {"ssn": "123-45-6789"}, "op": "c"});
        assert_eq!(from_connect_json(&payload_only.to_string()).unwrap_err().path, "$");
        let two = json!({"schema": {"type": "struct", "name": "R", "fields": [
            {"field": "a", "type": "struct", "name": "X", "fields": [{"field": "i", "type": "int32"}]},
            {"field": "b", "type": "struct", "name": "X", "fields": [{"field": "s", "type": "string"}]}]},
            "payload": {"a": {"i": 1}, "b": {"s": "x"}}});
        assert_eq!(from_connect_json(&two.to_string()).unwrap_err().problem, "two different structs with one name");
    }
}
