//! Debezium change events for any table and connector, written the way Kafka Connect's
//! JsonConverter writes them (`{"schema","payload"}` or payload only), built independently of
//! the pipeline's decoder so tests can check one against the other.

use serde_json::{Map, Value, json};

use cdc_pipeline::synth::{RecordSpec, lsn};

/// A column: its name as the source spells it and its Connect schema (without `field`).
#[derive(Debug, Clone)]
pub struct Column {
    pub name: String,
    pub schema: Value,
}

/// A column of a Connect primitive type (`int32`, `string`, `bytes`…).
pub fn column(name: &str, kind: &str) -> Column {
    Column { name: name.into(), schema: json!({"type": kind, "optional": true}) }
}

/// A column of a named (logical) type, e.g. `("int64", "io.debezium.time.MicroTimestamp")`.
pub fn logical(name: &str, kind: &str, logical: &str) -> Column {
    Column { name: name.into(), schema: json!({"type": kind, "optional": true, "name": logical, "version": 1}) }
}

/// A Connect `Decimal` column with its scale (and precision, when the source has one).
pub fn decimal(name: &str, scale: u32, precision: Option<u32>) -> Column {
    let mut parameters = json!({"scale": scale.to_string()});
    if let Some(p) = precision {
        parameters["connect.decimal.precision"] = json!(p.to_string());
    }
    Column {
        name: name.into(),
        schema: json!({"type": "bytes", "optional": true, "name": "org.apache.kafka.connect.data.Decimal",
                       "version": 1, "parameters": parameters}),
    }
}

/// PostgreSQL's unconstrained `NUMERIC`: `io.debezium.data.VariableScaleDecimal`.
pub fn variable_scale_decimal(name: &str) -> Column {
    Column {
        name: name.into(),
        schema: json!({"type": "struct", "fields": [
            {"type": "int32", "optional": false, "field": "scale"},
            {"type": "bytes", "optional": false, "field": "value"}],
            "optional": true, "name": "io.debezium.data.VariableScaleDecimal", "version": 1,
            "doc": "Variable scaled decimal"}),
    }
}

/// An array of `items` (a Connect primitive type), e.g. PostgreSQL `text[]`.
pub fn array(name: &str, items: &str) -> Column {
    Column {
        name: name.into(),
        schema: json!({"type": "array", "items": {"type": items, "optional": true}, "optional": true}),
    }
}

/// Where a change sits in its source's log: the `source` block of each connector.
#[derive(Debug, Clone)]
pub enum Source {
    SqlServer {
        commit: u128,
        change: Option<u128>,
        serial: Option<i64>,
        ts_ms: i64,
    },
    /// `sequence`: `[lastCommittedLsn, lsn]`, either part may be null; `None` writes `null`.
    Postgres {
        lsn: i64,
        sequence: Option<(Option<i64>, Option<i64>)>,
        tx_id: i64,
        ts_ms: i64,
    },
    MySql {
        server_id: i64,
        file: String,
        pos: i64,
        row: i32,
        gtid: Option<String>,
        ts_ms: i64,
    },
    /// A connector the pipeline has no position for (e.g. Oracle's `scn` is not read).
    Other {
        connector: &'static str,
        ts_ms: i64,
    },
}

impl Source {
    /// The `n`-th change of a SQL Server source: commit and change LSNs that grow with `n`.
    pub fn sqlserver(n: i64) -> Source {
        Source::SqlServer {
            commit: 100 + n as u128,
            change: Some(200 + n as u128),
            serial: None,
            ts_ms: 1_718_000_000_000 + n,
        }
    }

    pub fn ts_ms(&self) -> i64 {
        match self {
            Source::SqlServer { ts_ms, .. }
            | Source::Postgres { ts_ms, .. }
            | Source::MySql { ts_ms, .. }
            | Source::Other { ts_ms, .. } => *ts_ms,
        }
    }

    fn block(&self, table: &str, snapshot: bool) -> Value {
        let ts = self.ts_ms();
        let common = |connector: &str| {
            json!({"version": "2.7.3.Final", "connector": connector, "name": "src", "ts_ms": ts,
                   "ts_us": ts * 1_000, "ts_ns": ts * 1_000_000,
                   "snapshot": if snapshot { "true" } else { "false" }, "db": "db", "sequence": null,
                   "schema": "public", "table": table})
        };
        let mut block = match self {
            Source::SqlServer { .. } => common("sqlserver"),
            Source::Postgres { .. } => common("postgresql"),
            Source::MySql { .. } => common("mysql"),
            Source::Other { connector, .. } => common(connector),
        };
        let fields: Map<String, Value> = match self {
            Source::SqlServer { commit, change, serial, .. } => [
                ("change_lsn", change.map(lsn).map_or(Value::Null, Value::from)),
                ("commit_lsn", Value::from(lsn(*commit))),
                ("event_serial_no", serial.map_or(Value::Null, Value::from)),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
            Source::Postgres { lsn, sequence, tx_id, .. } => {
                let part = |p: &Option<i64>| p.map_or(Value::Null, |n| Value::from(n.to_string()));
                let sequence = sequence.as_ref().map_or(Value::Null, |(a, b)| {
                    Value::from(serde_json::to_string(&json!([part(a), part(b)])).expect("JSON"))
                });
                [("sequence", sequence), ("txId", json!(tx_id)), ("lsn", json!(lsn)), ("xmin", Value::Null)]
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect()
            }
            Source::MySql { server_id, file, pos, row, gtid, .. } => [
                ("server_id", json!(server_id)),
                ("gtid", gtid.as_ref().map_or(Value::Null, |g| Value::from(g.as_str()))),
                ("file", json!(file)),
                ("pos", json!(pos)),
                ("row", json!(row)),
                ("thread", json!(7)),
                ("query", Value::Null),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
            Source::Other { .. } => Map::new(),
        };
        block.as_object_mut().expect("object").extend(fields);
        block
    }
}

/// A source table: its Kafka topic, columns and primary key.
#[derive(Debug, Clone)]
pub struct Table {
    pub topic: String,
    pub columns: Vec<Column>,
    pub key: Vec<String>,
}

fn struct_schema(columns: &[&Column], name: &str, field: Option<&str>, optional: bool) -> Value {
    let fields: Vec<Value> = columns
        .iter()
        .map(|c| {
            let mut schema = c.schema.clone();
            schema["field"] = json!(c.name);
            schema
        })
        .collect();
    let mut schema = json!({"type": "struct", "fields": fields, "optional": optional, "name": name});
    if let Some(field) = field {
        schema["field"] = json!(field);
    }
    schema
}

impl Table {
    pub fn new(topic: &str, columns: Vec<Column>, key: &[&str]) -> Table {
        Table { topic: topic.into(), columns, key: key.iter().map(|k| k.to_string()).collect() }
    }

    fn table_name(&self) -> &str {
        self.topic.rsplit('.').next().unwrap_or(&self.topic)
    }

    /// The value schema the JsonConverter writes for this table's envelope.
    pub fn envelope_schema(&self) -> Value {
        let columns: Vec<&Column> = self.columns.iter().collect();
        let value = format!("{}.Value", self.topic);
        json!({"type": "struct", "fields": [
            struct_schema(&columns, &value, Some("before"), true),
            struct_schema(&columns, &value, Some("after"), true),
            {"type": "struct", "fields": [], "optional": false, "name": "io.debezium.connector.Source", "field": "source"},
            {"type": "string", "optional": false, "field": "op"},
            {"type": "int64", "optional": true, "field": "ts_ms"}],
            "optional": false, "name": format!("{}.Envelope", self.topic), "version": 2})
    }

    /// A change event's value. `before`/`after` are JSON objects of column values.
    pub fn value(
        &self,
        op: &str,
        before: Option<Value>,
        after: Option<Value>,
        source: &Source,
        schema: bool,
    ) -> String {
        let payload = json!({
            "before": before, "after": after,
            "source": source.block(self.table_name(), op == "r"),
            "transaction": null, "op": op, "ts_ms": source.ts_ms() + 100,
        });
        if schema {
            json!({"schema": self.envelope_schema(), "payload": payload}).to_string()
        } else {
            payload.to_string()
        }
    }

    /// The Kafka key of a row: its key columns, as a struct.
    pub fn key(&self, row: &Value, schema: bool) -> String {
        let payload: Map<String, Value> = self.key.iter().map(|k| (k.clone(), row[k.as_str()].clone())).collect();
        if !schema {
            return Value::Object(payload).to_string();
        }
        let columns: Vec<&Column> =
            self.key.iter().map(|k| self.columns.iter().find(|c| &c.name == k).expect("key column")).collect();
        let mut key_schema = struct_schema(&columns, &format!("{}.Key", self.topic), None, false);
        for field in key_schema["fields"].as_array_mut().expect("fields") {
            field["optional"] = json!(false);
        }
        json!({"schema": key_schema, "payload": payload}).to_string()
    }

    /// A Kafka record carrying a change of `row` (the image the op writes: `after`, or `before`
    /// for a delete).
    #[allow(clippy::too_many_arguments)]
    pub fn record(
        &self,
        partition: i64,
        offset: i64,
        op: &str,
        before: Option<Value>,
        after: Option<Value>,
        source: &Source,
        schema: bool,
    ) -> RecordSpec {
        let row = after.clone().or_else(|| before.clone()).expect("a change has an image");
        let key = self.key(&row, schema);
        let value = self.value(op, before, after, source, schema);
        RecordSpec::new(&self.topic, partition, offset, source.ts_ms() + 200, Some(&key), Some(&value))
    }

    /// The tombstone that follows a delete of `row`: same key, null value.
    pub fn tombstone(&self, partition: i64, offset: i64, row: &Value, timestamp: i64, schema: bool) -> RecordSpec {
        RecordSpec::new(&self.topic, partition, offset, timestamp, Some(&self.key(row, schema)), None)
    }
}
