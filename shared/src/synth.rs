//! Synthetic Debezium SQL Server messages for `sampledb.dbo.patientinfo` and MSK events
//! around them, shaped exactly like the connector's JsonConverter output. Used to write the
//! sample events in `events/`, by benchmarks and by randomized tests. Feature `test-util`
//! only: the deployed library has no synthetic events.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Serialize;
use serde_json::value::RawValue;

/// The table's Debezium topic: `<topic.prefix>.<database>.<schema>.<table>`, as the SQL
/// Server connector names it.
pub const TOPIC: &str = "sqlsrv.sampledb.dbo.patientinfo";

/// A row of `dbo.patientinfo` (ID int PK, FirstName varchar(100), LastName varchar(100),
/// State char(2), SSN varchar(10), DOB datetime).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Patient {
    /// `ID`, the primary key.
    #[serde(rename = "ID")]
    pub id: i32,
    /// `FirstName`, at most 100 bytes.
    #[serde(rename = "FirstName")]
    pub first_name: Option<String>,
    /// `LastName`, at most 100 bytes.
    #[serde(rename = "LastName")]
    pub last_name: Option<String>,
    /// `State`, two letters (a `char(2)` column).
    #[serde(rename = "State")]
    pub state: Option<String>,
    /// `SSN`, nine digits without dashes (the sample config's `pattern`; masked `hmac`).
    #[serde(rename = "SSN")]
    pub ssn: Option<String>,
    /// DATETIME as Debezium sends it: epoch milliseconds of the wall clock read as UTC.
    #[serde(rename = "DOB")]
    pub dob_ms: Option<i64>,
}

impl Patient {
    /// A patient with every column set.
    pub fn new(id: i32, first: &str, last: &str, state: &str, ssn: &str, dob_ms: i64) -> Patient {
        Patient {
            id,
            first_name: Some(first.into()),
            last_name: Some(last.into()),
            state: Some(state.into()),
            ssn: Some(ssn.into()),
            dob_ms: Some(dob_ms),
        }
    }
}

/// Where a change sits in the SQL Server log.
#[derive(Debug, Clone)]
pub struct SourcePosition {
    /// Commit LSN as a number; printed as `xxxxxxxx:xxxxxxxx:xxxx`.
    pub commit_lsn: u128,
    /// `None` for snapshot reads.
    pub change_lsn: Option<u128>,
    /// `source.event_serial_no`; `None` for snapshot reads.
    pub event_serial_no: Option<i64>,
    /// `source.ts_ms`: the commit time, ms since the Unix epoch.
    pub ts_ms: i64,
    /// `source.snapshot`: `"true"`, `"first"`, `"last"` for snapshots, `"false"` otherwise.
    pub snapshot: &'static str,
}

impl SourcePosition {
    /// A streamed change: commit and change LSN, serial number 1 (2 for updates).
    pub fn streamed(commit_lsn: u128, change_lsn: u128, serial: i64, ts_ms: i64) -> SourcePosition {
        SourcePosition {
            commit_lsn,
            change_lsn: Some(change_lsn),
            event_serial_no: Some(serial),
            ts_ms,
            snapshot: "false",
        }
    }

    /// A snapshot read at `commit_lsn`: no change LSN or serial number; `snapshot` is
    /// `"true"`, `"first"` or `"last"`.
    pub fn snapshot(commit_lsn: u128, ts_ms: i64, snapshot: &'static str) -> SourcePosition {
        SourcePosition { commit_lsn, change_lsn: None, event_serial_no: None, ts_ms, snapshot }
    }
}

/// The number of the LSN `high:mid:low`, e.g. `lsn_number(0x2c, 0x10c8, 6)`.
pub fn lsn_number(high: u32, mid: u32, low: u16) -> u128 {
    (u128::from(high) << 48) | (u128::from(mid) << 16) | u128::from(low)
}

/// `0000002c:000010c8:0006` from a number (80 bits used).
pub fn lsn(n: u128) -> String {
    let hex = format!("{:020x}", n & ((1u128 << 80) - 1));
    format!("{}:{}:{}", &hex[..8], &hex[8..16], &hex[16..])
}

#[derive(Serialize)]
struct SourceBlock {
    version: &'static str,
    connector: &'static str,
    name: &'static str,
    ts_ms: i64,
    snapshot: &'static str,
    db: &'static str,
    sequence: Option<()>,
    ts_us: i64,
    ts_ns: i64,
    schema: &'static str,
    table: &'static str,
    change_lsn: Option<String>,
    commit_lsn: String,
    event_serial_no: Option<i64>,
}

impl SourceBlock {
    fn new(pos: &SourcePosition) -> SourceBlock {
        SourceBlock {
            version: "2.7.3.Final",
            connector: "sqlserver",
            name: "sqlsrv",
            ts_ms: pos.ts_ms,
            snapshot: pos.snapshot,
            db: "sampledb",
            sequence: None,
            ts_us: pos.ts_ms * 1_000,
            ts_ns: pos.ts_ms * 1_000_000,
            schema: "dbo",
            table: "patientinfo",
            change_lsn: pos.change_lsn.map(lsn),
            commit_lsn: lsn(pos.commit_lsn),
            event_serial_no: pos.event_serial_no,
        }
    }
}

/// Envelope fields in the order Debezium writes them.
#[derive(Serialize)]
struct Envelope<'a> {
    before: Option<&'a Patient>,
    after: Option<&'a Patient>,
    source: SourceBlock,
    transaction: Option<()>,
    op: &'a str,
    ts_ms: i64,
    ts_us: i64,
    ts_ns: i64,
}

#[derive(Serialize)]
struct Wrapped<'a, T> {
    schema: &'a RawValue,
    payload: T,
}

const ROW_FIELDS: &str = r#"[{"type":"int32","optional":false,"field":"ID"},{"type":"string","optional":true,"field":"FirstName"},{"type":"string","optional":true,"field":"LastName"},{"type":"string","optional":true,"field":"State"},{"type":"string","optional":true,"field":"SSN"},{"type":"int64","optional":true,"name":"io.debezium.time.Timestamp","version":1,"field":"DOB"}]"#;

/// The value schema the JsonConverter writes for this table (`schemas.enable=true`), with
/// its keys in the converter's order.
pub fn envelope_schema() -> String {
    let row = |field: &str| {
        format!(
            r#"{{"type":"struct","fields":{ROW_FIELDS},"optional":true,"name":"sqlsrv.sampledb.dbo.patientinfo.Value","field":"{field}"}}"#
        )
    };
    format!(
        concat!(
            r#"{{"type":"struct","fields":[{},{},"#,
            r#"{{"type":"struct","fields":[{{"type":"string","optional":false,"field":"version"}},{{"type":"string","optional":false,"field":"connector"}},{{"type":"string","optional":false,"field":"name"}},{{"type":"int64","optional":false,"field":"ts_ms"}},"#,
            r#"{{"type":"string","optional":true,"name":"io.debezium.data.Enum","version":1,"parameters":{{"allowed":"true,first,first_in_data_collection,last_in_data_collection,last,false,incremental"}},"default":"false","field":"snapshot"}},"#,
            r#"{{"type":"string","optional":false,"field":"db"}},{{"type":"string","optional":true,"field":"sequence"}},{{"type":"int64","optional":true,"field":"ts_us"}},{{"type":"int64","optional":true,"field":"ts_ns"}},{{"type":"string","optional":false,"field":"schema"}},{{"type":"string","optional":false,"field":"table"}},"#,
            r#"{{"type":"string","optional":true,"field":"change_lsn"}},{{"type":"string","optional":true,"field":"commit_lsn"}},{{"type":"int64","optional":true,"field":"event_serial_no"}}],"optional":false,"name":"io.debezium.connector.sqlserver.Source","field":"source"}},"#,
            r#"{{"type":"struct","fields":[{{"type":"string","optional":false,"field":"id"}},{{"type":"int64","optional":false,"field":"total_order"}},{{"type":"int64","optional":false,"field":"data_collection_order"}}],"optional":true,"name":"event.block","version":1,"field":"transaction"}},"#,
            r#"{{"type":"string","optional":false,"field":"op"}},{{"type":"int64","optional":true,"field":"ts_ms"}},{{"type":"int64","optional":true,"field":"ts_us"}},{{"type":"int64","optional":true,"field":"ts_ns"}}],"#,
            r#""optional":false,"name":"sqlsrv.sampledb.dbo.patientinfo.Envelope","version":2}}"#
        ),
        row("before"),
        row("after")
    )
}

const KEY_SCHEMA: &str = r#"{"type":"struct","fields":[{"type":"int32","optional":false,"field":"ID"}],"optional":false,"name":"sqlsrv.sampledb.dbo.patientinfo.Key"}"#;

/// The value of a change event as JSON text.
pub fn value_json(
    op: &str,
    before: Option<&Patient>,
    after: Option<&Patient>,
    pos: &SourcePosition,
    with_schema: bool,
) -> String {
    let processed_ms = pos.ts_ms + 250;
    let payload = Envelope {
        before,
        after,
        source: SourceBlock::new(pos),
        transaction: None,
        op,
        ts_ms: processed_ms,
        ts_us: processed_ms * 1_000,
        ts_ns: processed_ms * 1_000_000,
    };
    let schema = with_schema.then(envelope_schema);
    wrap(&payload, schema.as_deref())
}

/// The key of a row as JSON text.
pub fn key_json(id: i32, with_schema: bool) -> String {
    #[derive(Serialize)]
    struct Key {
        #[serde(rename = "ID")]
        id: i32,
    }
    wrap(&Key { id }, with_schema.then_some(KEY_SCHEMA))
}

fn wrap<T: Serialize>(payload: &T, schema: Option<&str>) -> String {
    let text = match schema {
        Some(schema) => {
            let schema: &RawValue = serde_json::from_str(schema).expect("schema constants are JSON");
            serde_json::to_string(&Wrapped { schema, payload })
        }
        None => serde_json::to_string(payload),
    };
    text.expect("JSON values serialise")
}

/// One Kafka record of an MSK event; key and value are given as raw bytes.
#[derive(Debug, Clone)]
pub struct RecordSpec {
    /// The topic, e.g. [`TOPIC`]; the event groups records under `<topic>-<partition>`.
    pub topic: String,
    /// The partition (0-based).
    pub partition: i64,
    /// The offset; the pipeline processes a partition's records in offset order whatever
    /// order they are given in.
    pub offset: i64,
    /// The Kafka timestamp, ms since the Unix epoch (`CREATE_TIME`).
    pub timestamp: i64,
    /// The key's bytes, base64-encoded into the event; `None` writes `null`.
    pub key: Option<Vec<u8>>,
    /// The value's bytes, base64-encoded into the event; `None` (a tombstone) writes `null`.
    pub value: Option<Vec<u8>>,
    /// Base64 text to send as the value instead of encoding `value` (for broken inputs).
    pub raw_value: Option<String>,
}

impl RecordSpec {
    /// A record whose key and value are the UTF-8 bytes of the given text.
    pub fn new(
        topic: &str,
        partition: i64,
        offset: i64,
        timestamp: i64,
        key: Option<&str>,
        value: Option<&str>,
    ) -> RecordSpec {
        RecordSpec {
            topic: topic.into(),
            partition,
            offset,
            timestamp,
            key: key.map(|k| k.as_bytes().to_vec()),
            value: value.map(|v| v.as_bytes().to_vec()),
            raw_value: None,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EventRecord<'a> {
    topic: &'a str,
    partition: i64,
    offset: i64,
    timestamp: i64,
    timestamp_type: &'static str,
    key: Option<String>,
    value: Option<String>,
    headers: [(); 0],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Event<'a> {
    event_source: &'static str,
    event_source_arn: &'static str,
    bootstrap_servers: &'static str,
    #[serde(serialize_with = "ordered_groups")]
    records: Vec<(String, Vec<EventRecord<'a>>)>,
}

fn ordered_groups<S: serde::Serializer>(groups: &[(String, Vec<EventRecord<'_>>)], s: S) -> Result<S::Ok, S::Error> {
    s.collect_map(groups.iter().map(|(k, v)| (k, v)))
}

/// An MSK event (`eventSource: aws:kafka`) holding `records`, grouped by topic-partition in
/// order of first appearance, as compact JSON with keys in the order Lambda writes them.
pub fn msk_event_text(records: &[RecordSpec]) -> String {
    let mut groups: Vec<(String, Vec<EventRecord<'_>>)> = Vec::new();
    for r in records {
        let group = format!("{}-{}", r.topic, r.partition);
        let value = match (&r.raw_value, &r.value) {
            (Some(raw), _) => Some(raw.clone()),
            (None, Some(v)) => Some(BASE64.encode(v)),
            (None, None) => None,
        };
        let record = EventRecord {
            topic: &r.topic,
            partition: r.partition,
            offset: r.offset,
            timestamp: r.timestamp,
            timestamp_type: "CREATE_TIME",
            key: r.key.as_ref().map(|k| BASE64.encode(k)),
            value,
            headers: [],
        };
        match groups.iter_mut().find(|(g, _)| *g == group) {
            Some((_, list)) => list.push(record),
            None => groups.push((group, vec![record])),
        }
    }
    serde_json::to_string(&Event {
        event_source: "aws:kafka",
        event_source_arn: "arn:aws:kafka:us-east-1:123456789012:cluster/cdc-demo/7c6a3a6e-1b9e-4c1f-9d3f-5d2f4b6c8e10-3",
        bootstrap_servers: "b-1.cdc-demo.abc123.c3.kafka.us-east-1.amazonaws.com:9098,b-2.cdc-demo.abc123.c3.kafka.us-east-1.amazonaws.com:9098",
        records: groups,
    })
    .expect("JSON values serialise")
}

/// A deterministic patient for benchmarks and bulk tests (no randomness needed).
pub fn bulk_patient(i: i32) -> Patient {
    const FIRST: [&str; 8] = ["John", "Maria", "Wei", "Aisha", "Liam", "Sofia", "Kenji", "Fatima"];
    const LAST: [&str; 8] = ["Smith", "Garcia", "Chen", "Khan", "O'Brien", "Rossi", "Tanaka", "Haddad"];
    const STATES: [&str; 8] = ["CA", "TX", "NY", "IL", "MA", "WA", "FL", "PR"];
    let n = i.unsigned_abs() as usize;
    Patient::new(
        i,
        FIRST[n % 8],
        LAST[(n / 8) % 8],
        STATES[(n / 64) % 8],
        &format!("{:09}", 100_000_000 + (n * 7919) % 800_000_000),
        -1_000_000_000_000 + (n as i64 % 20_000) * 86_400_000,
    )
}

/// An event of `count` schema-enabled create events for distinct patients on `partitions`
/// partitions: the benchmark workload.
pub fn bulk_event(count: usize, partitions: i64, with_schema: bool) -> Vec<u8> {
    let records: Vec<RecordSpec> = (0..count)
        .map(|i| {
            let patient = bulk_patient(i as i32 + 1);
            let pos = SourcePosition::streamed(
                0x2c_0000_10c8_0000 + i as u128 * 16,
                0x2c_0000_10c8_0000 + i as u128 * 16 + 2,
                1,
                1_764_000_000_000 + i as i64,
            );
            let partition = i64::from(patient.id) % partitions;
            RecordSpec::new(
                TOPIC,
                partition,
                i as i64,
                1_764_000_000_000 + i as i64,
                Some(&key_json(patient.id, with_schema)),
                Some(&value_json("c", None, Some(&patient), &pos, with_schema)),
            )
        })
        .collect();
    msk_event_text(&records).into_bytes()
}

/// `event` (an MSK event's JSON text) with every key and value that is a JsonConverter
/// document written as Connect's `AvroConverter` writes it ([`crate::avro::encode`]), in
/// Confluent's wire format: the same changes as Avro. Schema ids count from 1 in first-seen
/// order; the schemas (id, text) come back beside the event. Panics on an event that does not
/// parse (a test's own input).
pub fn avro_event(event: &[u8]) -> (Vec<u8>, Vec<(crate::avro::frame::SchemaRef, String)>) {
    use crate::avro::frame::{self, SchemaRef};
    use std::borrow::Cow;
    let mut parsed = crate::MskEvent::parse(event).expect("the event parses");
    let mut schemas: Vec<(SchemaRef, String)> = Vec::new();
    let mut render = |text: &mut Option<Cow<'_, str>>| {
        let Some(bytes) = text.as_deref().and_then(|t| BASE64.decode(t).ok()) else { return };
        let Ok(json) = std::str::from_utf8(&bytes) else { return };
        let Ok(encoded) = crate::avro::encode::from_connect_json(json) else { return };
        let id = match schemas.iter().find(|(_, s)| *s == encoded.schema) {
            Some((id, _)) => *id,
            None => {
                let id = SchemaRef::Confluent(schemas.len() as u32 + 1);
                schemas.push((id, encoded.schema));
                id
            }
        };
        *text = Some(Cow::Owned(BASE64.encode(frame::write(id, &encoded.datum))));
    };
    for (_, records) in &mut parsed.records {
        for record in records {
            render(&mut record.key);
            render(&mut record.value);
        }
    }
    (serde_json::to_vec(&parsed).expect("an event serialises"), schemas)
}
