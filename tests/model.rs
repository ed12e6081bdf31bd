//! Randomized end-to-end model test: "nothing lost, nothing duplicated".
//!
//! Each scenario (from a seed) generates a CDC history over two tables — snapshot reads,
//! inserts, updates, deletes with tombstones — cuts it into MSK batches over three partitions
//! (same key, same partition), adds redeliveries of earlier batches, and feeds them to the
//! real ingest handler against the Data API emulator on PostgreSQL at SNAPSHOT isolation (with
//! random throttling, server errors, serialization failures, `Disk Full` and `abort query`
//! incidents, and latency) — up to three batches of different partitions at once, and the first
//! replay round started twice at once — with a fault-injecting proxy in front of the
//! S3 server, and random deadlines. A batch is retried whenever the handler fails, as the event
//! source mapping does. Then the dead-letter objects are replayed, round after round, with a
//! config that accepts the fixable records, until a round changes nothing.
//!
//! The histories carry what real Debezium streams carry:
//! - poison records: rejected by a rule but fixable, undecodable, or too long for the target;
//! - deletes whose `before` image holds only the key (PostgreSQL's default replica identity);
//! - updates that send a TOASTed column as Debezium's unavailable-value placeholder;
//! - tombstones whose delete was compacted away;
//! - a source switch: a SQL Server database restored with lower LSNs, or a MySQL failover to a
//!   server with its own binlog; either way positions before and after do not compare.
//!
//! For every scenario:
//! - the warehouse equals a reference (below) computed from the history alone;
//! - every successful invocation accounts for each record exactly once;
//! - what is still dead-lettered is only records that cannot be stored, and every
//!   undecodable record is there; no tombstone is;
//! - no dead-letter object disappears unreplayed (each is live or archived).
//!
//! The reference applies the history in source order the way the contract says: a change
//! lands when it can be stored; a delete keeps the row's stored values (or, for a key never
//! stored, leaves no row); a placeholder keeps the stored value and cannot land without a row;
//! fixable records land at replay only if nothing newer landed meanwhile. One known limit is
//! kept out of the histories: a change that sends a *new* TOASTed value is never poisoned nor
//! too long (a placeholder after such a change, dead-lettered in an earlier batch, keeps the
//! value stored before it; README, "Unavailable values").
//!
//! Tables load by the staged COPY (three in four) or by INSERT, drawn per scenario; staged objects
//! go through the faulty S3 proxy too, and none may outlive its transaction unless the attempt
//! failed or S3 refused its DELETE.
//!
//! `MODEL_SCENARIOS` (default 200) sets how many; `MODEL_SEED=<seed>` re-runs one scenario.
//! A failing scenario prints its seed. `make soak SCENARIOS=N` runs more.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use cdc_pipeline::dlq::{Contents, Store, read};
use cdc_pipeline::ingest::{Ingestor, Invocation};
use cdc_pipeline::metrics::Captured;
use cdc_pipeline::redshift::{DataApi, Loader};
use cdc_pipeline::replay::ReplayRequest;
use cdc_pipeline::synth::{RecordSpec, lsn, msk_event_text};
use cdc_pipeline::{Config, Pipeline};
use cdc_tests::faults::{FaultyS3, emulator_faults, set_emulator_faults};
use cdc_tests::harness::{s3_client, s3_client_at, s3_endpoint};
use cdc_tests::hmac_hex;
use cdc_tests::stack::{FAST_POLL, FAST_RETRY, METADATA_DDL, database_url, emulator, pg, sdk_client, staging_at};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

const KEY: &[u8] = b"model-masking-key-0123456789abcdef0123456";
const PARTITIONS: i64 = 3;
const TOPICS: [&str; 2] = ["src.db.dbo.alpha", "src.db.dbo.beta"];
const STATES: [&str; 5] = ["CA", "NY", "TX", "WA", "DC"];
/// Names, hostile ones included; all fit VARCHAR(40) in UTF-8 bytes.
const NAMES: [&str; 10] = [
    "Ana",
    "O'Brien",
    r"back\slash",
    "semi; DROP TABLE x; --",
    "quote\"d",
    "Zoë",
    "emoji 😀",
    "line\nbreak",
    r"\'",
    "tab\t",
];
const OVERSIZED: &str = "a name far too long for its forty-byte column";
const PLACEHOLDER: &str = "__debezium_unavailable_value";

#[derive(Debug, Clone, PartialEq)]
struct Row {
    id: i32,
    name: String,
    state: String,
    score: i64,
    ssn: String,
    /// A TOASTable column: updates that leave it unchanged may send the placeholder.
    notes: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Poison {
    None,
    /// `state` outside the rule's list: rejected, loads after replay with the relaxed config.
    Fixable,
    /// Not base64, or not JSON.
    Undecodable,
}

/// The source database's kind, which decides the form of the positions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Connector {
    SqlServer,
    MySql,
}

#[derive(Debug, Clone)]
struct SourceEvent {
    table: usize,
    key: i32,
    op: &'static str,
    before: Option<Row>,
    after: Option<Row>,
    /// Before the source switch (0) or after it (1).
    lineage: u8,
    /// Grows in source order within a lineage; starts lower again after the switch.
    native: u128,
    /// Commit time: grows with the history (one second a change).
    ts_ms: i64,
    poison: Poison,
    /// `after.notes` is sent as the placeholder (the column did not change).
    placeholder: bool,
    /// The delete's `before` image holds only the key.
    partial_before: bool,
    /// The delete record itself was compacted away; only its tombstone is in Kafka.
    compacted: bool,
}

impl SourceEvent {
    fn is_delete(&self) -> bool {
        self.op == "d"
    }

    /// Fits the target's VARCHAR(40), and decodes.
    fn well_formed(&self) -> bool {
        self.poison != Poison::Undecodable && self.after.as_ref().is_none_or(|r| r.name.len() <= 40)
    }
}

/// A Kafka record of the scenario and the event it carries (`None` for a tombstone).
#[derive(Debug, Clone)]
struct Record {
    topic: usize,
    partition: i64,
    offset: i64,
    event: Option<usize>,
    /// For a tombstone: the event of the delete it follows.
    deletes: Option<usize>,
}

struct Scenario {
    connector: Connector,
    events: Vec<SourceEvent>,
    records: Vec<Record>,
    /// Batches in delivery order (redeliveries included), as indices into `records`.
    deliveries: Vec<Vec<usize>>,
    with_schema: bool,
    emulator_faults: String,
    s3_fault_rate: f64,
    /// Each table's load path (`copy` or `insert`).
    load: [&'static str; 2],
}

fn row_json(row: &Row, placeholder: bool) -> Value {
    let notes = if placeholder { PLACEHOLDER } else { row.notes.as_str() };
    json!({"ID": row.id, "Name": row.name, "State": row.state, "Score": row.score, "SSN": row.ssn, "Notes": notes})
}

fn key_only_json(row: &Row) -> Value {
    json!({"ID": row.id, "Name": null, "State": null, "Score": null, "SSN": null, "Notes": null})
}

const ROW_SCHEMA: &str = r#"[{"type":"int32","optional":false,"field":"ID"},{"type":"string","optional":true,"field":"Name"},{"type":"string","optional":true,"field":"State"},{"type":"int64","optional":true,"field":"Score"},{"type":"string","optional":true,"field":"SSN"},{"type":"string","optional":true,"field":"Notes"}]"#;

fn source_json(connector: Connector, event: &SourceEvent) -> Value {
    let snapshot = if event.op == "r" { "true" } else { "false" };
    match connector {
        Connector::SqlServer => {
            let commit = event.native << 8;
            json!({"version": "2.7.3.Final", "connector": "sqlserver", "name": "src", "ts_ms": event.ts_ms,
                   "snapshot": snapshot, "db": "db", "schema": "dbo", "table": TOPICS[event.table],
                   "change_lsn": if event.op == "r" { Value::Null } else { json!(lsn(commit - 7)) },
                   "commit_lsn": lsn(commit),
                   "event_serial_no": if event.op == "r" { Value::Null } else { json!(if event.op == "u" { 2 } else { 1 }) }})
        }
        Connector::MySql => {
            let (server_id, base) = if event.lineage == 0 { (223_344, "mysql-bin") } else { (223_355, "binlog") };
            let file = 1 + (event.native / 1_000) as u64;
            let pos = (event.native % 1_000) as u64 * 100 + 4;
            json!({"version": "2.7.3.Final", "connector": "mysql", "name": "src", "ts_ms": event.ts_ms,
                   "snapshot": snapshot, "db": "db", "table": TOPICS[event.table], "server_id": server_id,
                   "gtid": null, "file": format!("{base}.{file:06}"), "pos": pos, "row": 0, "thread": 7, "query": null})
        }
    }
}

fn value_json(connector: Connector, event: &SourceEvent, with_schema: bool) -> String {
    let before =
        event.before.as_ref().map(|r| if event.partial_before { key_only_json(r) } else { row_json(r, false) });
    let payload = json!({
        "before": before,
        "after": event.after.as_ref().map(|r| row_json(r, event.placeholder)),
        "source": source_json(connector, event),
        "transaction": null,
        "op": event.op,
        "ts_ms": event.ts_ms + 100,
    });
    if !with_schema {
        return payload.to_string();
    }
    let image = |field: &str| {
        format!(
            r#"{{"type":"struct","fields":{ROW_SCHEMA},"optional":true,"name":"src.db.dbo.t.Value","field":"{field}"}}"#
        )
    };
    let schema = format!(
        r#"{{"type":"struct","fields":[{},{},{{"type":"struct","fields":[],"optional":false,"name":"io.debezium.connector.Source","field":"source"}},{{"type":"string","optional":false,"field":"op"}}],"optional":false,"name":"src.db.dbo.t.Envelope","version":2}}"#,
        image("before"),
        image("after")
    );
    format!(r#"{{"schema":{schema},"payload":{payload}}}"#)
}

fn generate(seed: u64) -> Scenario {
    let mut rng = SmallRng::seed_from_u64(seed);
    let connector = if rng.random_bool(0.5) { Connector::SqlServer } else { Connector::MySql };
    let keys_per_table = rng.random_range(3..=10);
    let mut state: [BTreeMap<i32, Row>; 2] = [BTreeMap::new(), BTreeMap::new()];
    let mut events: Vec<SourceEvent> = Vec::new();
    let (mut lineage, mut native): (u8, u128) = (0, 5_000);
    let base_ts = 1_795_000_000_000i64;
    let changes = rng.random_range(15..60);
    let switch_at = rng.random_bool(0.3).then(|| rng.random_range(3..changes));
    let new_row = |rng: &mut SmallRng, id: i32| Row {
        id,
        name: NAMES[rng.random_range(0..NAMES.len())].to_string(),
        state: STATES[rng.random_range(0..STATES.len())].to_string(),
        score: rng.random_range(-1_000_000..1_000_000),
        ssn: format!("{:09}", rng.random_range(0..1_000_000_000u32)),
        notes: format!("notes {}", rng.random_range(0..1_000_000u32)),
    };
    let plain = |table, key, op, before, after, lineage, native, ts_ms| SourceEvent {
        table,
        key,
        op,
        before,
        after,
        lineage,
        native,
        ts_ms,
        poison: Poison::None,
        placeholder: false,
        partial_before: false,
        compacted: false,
    };
    // A snapshot of some rows: one position, no change position.
    if rng.random_bool(0.6) {
        for (table, rows) in state.iter_mut().enumerate() {
            for key in 1..=rng.random_range(1..=keys_per_table) {
                let row = new_row(&mut rng, key);
                rows.insert(key, row.clone());
                events.push(plain(table, key, "r", None, Some(row), lineage, native, base_ts));
            }
        }
    }
    for step in 0..changes {
        if switch_at == Some(step) {
            // A restore (SQL Server: the same log, lower LSNs) or a failover (MySQL: another
            // server and binlog); positions start lower, commit times go on.
            lineage = 1;
            native = 1_000;
        }
        native += 1;
        let ts_ms = base_ts + 1_000 * (step as i64 + 1);
        let table = rng.random_range(0..2);
        let key = rng.random_range(1..=keys_per_table);
        let previous = state[table].get(&key).cloned();
        let mut notes_changed = true;
        let (op, before, after) = match previous {
            None => ("c", None, Some(new_row(&mut rng, key))),
            Some(old) if rng.random_bool(0.25) => ("d", Some(old), None),
            Some(old) => {
                let mut row = old.clone();
                notes_changed = false;
                match rng.random_range(0..4) {
                    0 => row.name = NAMES[rng.random_range(0..NAMES.len())].to_string(),
                    1 => row.state = STATES[rng.random_range(0..STATES.len())].to_string(),
                    2 => row.score = rng.random_range(-1_000_000..1_000_000),
                    _ => {
                        row.notes = format!("notes {}", rng.random_range(0..1_000_000u32));
                        notes_changed = true;
                    }
                }
                ("u", Some(old), Some(row))
            }
        };
        // The source row goes on without the poison: only this record carries it.
        match &after {
            Some(row) => state[table].insert(key, row.clone()),
            None => state[table].remove(&key),
        };
        let mut event = plain(table, key, op, before, after, lineage, native, ts_ms);
        // A name too long for the target rides one record, never a change that sends a new
        // TOASTed value (see the module docs): the value a later placeholder stands for is
        // then always one the target holds.
        if op == "u" && !notes_changed && rng.random_bool(0.05) {
            event.after.as_mut().expect("an update has a row").name = OVERSIZED.into();
        }
        // An update that changes the TOASTed column is never fixable (see the module docs).
        if op != "d" && !(op == "u" && notes_changed) && rng.random_bool(0.08) {
            event.poison = Poison::Fixable;
            if let Some(row) = event.after.as_mut() {
                row.state = "ZZ".into();
            }
        } else if rng.random_bool(0.05) && !(op == "u" && notes_changed) {
            event.poison = Poison::Undecodable;
        }
        event.placeholder = op == "u" && !notes_changed && rng.random_bool(0.5);
        event.partial_before = op == "d" && rng.random_bool(0.5);
        event.compacted = op == "d" && rng.random_bool(0.15);
        events.push(event);
    }
    // Kafka: per topic-partition offsets in source order; a delete is followed by its tombstone.
    // A compacted delete leaves a gap in the offsets.
    let mut offsets: HashMap<(usize, i64), i64> = HashMap::new();
    let mut records = Vec::new();
    for (i, event) in events.iter().enumerate() {
        let partition = (event.key as i64 * 7 + event.table as i64) % PARTITIONS;
        let mut next = || {
            let offset = offsets.entry((event.table, partition)).or_insert(0);
            *offset += 1;
            *offset - 1
        };
        let offset = next();
        if !event.compacted {
            records.push(Record { topic: event.table, partition, offset, event: Some(i), deletes: None });
        }
        if event.is_delete() {
            let offset = next();
            records.push(Record { topic: event.table, partition, offset, event: None, deletes: Some(i) });
        }
    }
    // Batches: per topic, take runs from its partitions in order, 1 to 3 partitions a batch.
    let mut queues: BTreeMap<(usize, i64), Vec<usize>> = BTreeMap::new();
    for (i, r) in records.iter().enumerate() {
        queues.entry((r.topic, r.partition)).or_default().push(i);
    }
    let mut batches = Vec::new();
    while queues.values().any(|q| !q.is_empty()) {
        let topic = rng.random_range(0..2);
        let mut batch = Vec::new();
        for partition in 0..PARTITIONS {
            if !rng.random_bool(0.6) {
                continue;
            }
            if let Some(queue) = queues.get_mut(&(topic, partition)) {
                let take = rng.random_range(1..=8).min(queue.len());
                batch.extend(queue.drain(..take));
            }
        }
        if !batch.is_empty() {
            batches.push(batch);
        }
    }
    // Redeliveries: a batch again, any time after it was first delivered (the event source
    // mapping never hands out a record before the ones ahead of it on its partition).
    let mut deliveries = batches.clone();
    for _ in 0..rng.random_range(0..=batches.len() / 2 + 1) {
        let batch = batches[rng.random_range(0..batches.len())].clone();
        let first = deliveries.iter().position(|b| *b == batch).expect("delivered once");
        let at = rng.random_range(first + 1..=deliveries.len());
        deliveries.insert(at, batch);
    }
    let faulty = rng.random_bool(0.8);
    let p = |rng: &mut SmallRng, max: f64| if faulty { rng.random_range(0.0..max) } else { 0.0 };
    let emulator_faults = format!(
        "throttle={:.3},server_error={:.3},serialization={:.3},disk_full={:.3},abort={:.3},latency_ms={},seed={}",
        p(&mut rng, 0.15),
        p(&mut rng, 0.08),
        p(&mut rng, 0.15),
        // Cluster incidents, with Redshift's texts: never blamed on rows, the batch is retried.
        p(&mut rng, 0.03),
        p(&mut rng, 0.03),
        if faulty && rng.random_bool(0.3) { rng.random_range(1..40) } else { 0 },
        seed
    );
    let s3_fault_rate = p(&mut rng, 0.2);
    // Mostly the default staged COPY, with the INSERT path in a quarter of the tables.
    let load = [0, 1].map(|_| if rng.random_bool(0.75) { "copy" } else { "insert" });
    Scenario {
        connector,
        events,
        records,
        deliveries,
        with_schema: rng.random_bool(0.5),
        emulator_faults,
        s3_fault_rate,
        load,
    }
}

fn config(tables: &[String; 2], load: [&str; 2], strict: bool) -> Config {
    let mut text = String::new();
    for ((topic, table), load) in TOPICS.iter().zip(tables).zip(load) {
        text.push_str(&format!(
            "[[tables]]\ntopic = \"{topic}\"\ntarget = \"public.{table}\"\nkey = [\"id\"]\nload = \"{load}\"\n\
             [tables.columns.id]\ntype = \"int32\"\n[tables.columns.score]\ntype = \"int64\"\n\
             [tables.columns.ssn]\nmask = \"hmac\"\n"
        ));
        if strict {
            text.push_str("[tables.columns.state]\none_of = [\"CA\", \"NY\", \"TX\", \"WA\", \"DC\"]\n");
        }
    }
    Config::parse(&text, "model.toml").expect("model config")
}

fn event_text(scenario: &Scenario, batch: &[usize]) -> String {
    let specs: Vec<RecordSpec> = batch
        .iter()
        .map(|&i| {
            let r = &scenario.records[i];
            let topic = TOPICS[r.topic];
            let event = r.event.map(|e| &scenario.events[e]);
            let key = scenario.events[r.event.or(r.deletes).expect("a record carries or follows an event")].key;
            let key = json!({"ID": key}).to_string();
            let mut spec =
                RecordSpec::new(topic, r.partition, r.offset, 1_795_000_000_000 + r.offset, Some(&key), None);
            match event {
                None => {}
                Some(e) if e.poison == Poison::Undecodable => {
                    if r.offset % 2 == 0 {
                        spec.raw_value = Some("%%% not base64 %%%".into());
                    } else {
                        spec.value = Some(b"{\"payload\": {\"op\": \"c\"".to_vec());
                    }
                }
                Some(e) => spec.value = Some(value_json(scenario.connector, e, scenario.with_schema).into_bytes()),
            }
            spec
        })
        .collect();
    msk_event_text(&specs)
}

/// The reference: what the warehouse must hold when every delivery and replay is done.
struct Reference {
    /// Per table, per key: the row and whether it is soft-deleted.
    tables: [BTreeMap<i32, (Row, bool)>; 2],
    /// Events that can never be stored (undecodable, too long, or a placeholder whose value no
    /// storable change before it ever sent).
    unstorable: BTreeSet<usize>,
}

fn reference(scenario: &Scenario) -> Reference {
    let mut tables: [BTreeMap<i32, (Row, bool)>; 2] = [BTreeMap::new(), BTreeMap::new()];
    let mut unstorable = BTreeSet::new();
    let mut by_key: BTreeMap<(usize, i32), Vec<usize>> = BTreeMap::new();
    for (i, e) in scenario.events.iter().enumerate() {
        by_key.entry((e.table, e.key)).or_default().push(i);
    }
    for ((table, key), history) in by_key {
        let events = &scenario.events;
        // Which changes can ever be stored, and the TOASTed value each would carry.
        let mut notes_known: Option<String> = None;
        let mut eventually: Vec<(usize, Option<Row>)> = Vec::new();
        for &i in &history {
            let e = &events[i];
            if e.is_delete() {
                // Stored or not, its tombstone deletes the key.
                notes_known = None;
                eventually.push((i, None));
                continue;
            }
            let mut row = e.after.clone().expect("an upsert has a row");
            if !e.well_formed() || (e.placeholder && notes_known.is_none()) {
                unstorable.insert(i);
                continue;
            }
            if e.placeholder {
                row.notes = notes_known.clone().expect("checked");
            } else {
                notes_known = Some(row.notes.clone());
            }
            eventually.push((i, Some(row)));
        }
        // Deliveries, in source order: fixable changes wait for the replay; a placeholder
        // waits when there is no stored row to keep the value of; a delete keeps the stored
        // values, or leaves no row.
        let mut stored: Option<(Row, bool)> = None;
        let mut landed = BTreeSet::new();
        for (i, row) in &eventually {
            let e = &events[*i];
            match row {
                None => {
                    if let Some((_, deleted)) = stored.as_mut() {
                        *deleted = true;
                    }
                    landed.insert(*i);
                }
                Some(_) if e.poison == Poison::Fixable => {}
                Some(_) if e.placeholder && !matches!(stored, Some((_, false))) => {}
                Some(row) => {
                    let mut row = row.clone();
                    if e.placeholder {
                        row.notes = stored.as_ref().expect("live").0.notes.clone();
                    }
                    stored = Some((row, false));
                    landed.insert(*i);
                }
            }
        }
        // Replays land the latest change if it waited; anything older that waited is stale.
        let last = eventually.last().map(|(i, row)| (*i, row.clone()));
        let end = match last {
            Some((i, Some(row))) if !landed.contains(&i) => Some((row, false)),
            _ => stored,
        };
        if let Some(end) = end {
            tables[table].insert(key, end);
        }
    }
    Reference { tables, unstorable }
}

#[derive(Debug, Default, Clone)]
struct Figures {
    scenarios: usize,
    records: usize,
    deliveries: usize,
    failed_invocations: usize,
    staged_left: usize,
    replay_calls: usize,
    rows_checked: usize,
    dead_letters_left: usize,
    /// How often the histories carried what real streams carry (the test checks they did).
    placeholders: usize,
    partial_deletes: usize,
    lone_tombstones: usize,
    source_switches: usize,
}

struct World {
    emulator: redshift_data_local::RunningEmulator,
    s3: FaultyS3,
    database: String,
    /// Emulator faults injected and calls made, summed over every fault spec used.
    tally: std::sync::Mutex<BTreeMap<String, u64>>,
}

impl World {
    async fn new(worker: u64) -> World {
        let database = format!("model_{worker}_{}", uuid::Uuid::new_v4().simple());
        pg().await.batch_execute(&format!("CREATE DATABASE {database}")).await.expect("create database");
        World {
            emulator: emulator("").await,
            s3: FaultyS3::start(s3_endpoint(), worker).await,
            database,
            tally: std::sync::Mutex::new(BTreeMap::new()),
        }
    }

    /// Count what the current spec injected, then switch the emulator to `spec`.
    async fn set_faults(&self, spec: &str) {
        self.count_faults().await;
        set_emulator_faults(&self.emulator.endpoint_url, spec).await;
    }

    async fn count_faults(&self) {
        let snapshot = emulator_faults(&self.emulator.endpoint_url).await;
        let mut tally = self.tally.lock().unwrap();
        for (group, prefix) in [("injected", "emulator_injected"), ("calls", "emulator_calls")] {
            for (name, n) in snapshot[group].as_object().into_iter().flatten() {
                *tally.entry(format!("{prefix}.{name}")).or_default() += n.as_u64().unwrap_or(0);
            }
        }
    }

    async fn sql(&self) -> tokio_postgres::Client {
        let url = database_url();
        let base = url.rsplit_once('/').map_or(url, |(base, _)| base);
        let (client, connection) =
            tokio_postgres::connect(&format!("{base}/{}", self.database), tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(connection);
        client
    }

    fn ingestor(&self, config: Config, bucket: &str) -> Ingestor {
        let pipeline = Pipeline::new(Arc::new(config), Some(KEY)).unwrap();
        let target = cdc_pipeline::redshift::Target {
            auth: cdc_pipeline::redshift::Auth::Workgroup { name: "local".into(), secret_arn: None },
            database: self.database.clone(),
        };
        let staging = staging_at(s3_client_at(&self.s3.endpoint), bucket, "staging");
        let loader = Loader::new(
            DataApi::new(sdk_client(&self.emulator.endpoint_url), target)
                .with_backoff(FAST_POLL, FAST_RETRY)
                .with_staging(staging),
        );
        let store = Store {
            client: s3_client_at(&self.s3.endpoint),
            bucket: bucket.into(),
            prefix: "dead-letter".into(),
            archive_prefix: "archive".into(),
            quarantine_prefix: "quarantine".into(),
            kms_key_id: None,
        };
        let mut ingestor = Ingestor::new(pipeline, loader, store, Arc::new(Captured::default()));
        ingestor.deadline_margin = Duration::from_millis(100);
        ingestor
    }
}

/// How many objects are under `prefix` (staged objects are gzip: not read).
async fn object_count(bucket: &str, prefix: &str) -> usize {
    let s3 = s3_client();
    let (mut count, mut token) = (0, None);
    loop {
        let page =
            s3.list_objects_v2().bucket(bucket).prefix(prefix).set_continuation_token(token).send().await.unwrap();
        count += page.contents().len();
        match page.next_continuation_token() {
            Some(next) => token = Some(next.to_owned()),
            None => return count,
        }
    }
}

async fn objects(bucket: &str, prefix: &str) -> Vec<(String, String)> {
    let s3 = s3_client();
    let mut out = Vec::new();
    let mut token = None;
    loop {
        let page =
            s3.list_objects_v2().bucket(bucket).prefix(prefix).set_continuation_token(token).send().await.unwrap();
        for object in page.contents() {
            let key = object.key().unwrap().to_string();
            let body = s3.get_object().bucket(bucket).key(&key).send().await.unwrap().body.collect().await.unwrap();
            out.push((key, String::from_utf8(body.into_bytes().to_vec()).unwrap()));
        }
        match page.next_continuation_token() {
            Some(next) => token = Some(next.to_string()),
            None => return out,
        }
    }
}

/// Deliver `batch` until an invocation succeeds, as the event source mapping retries it;
/// `deadlines` (ms) for the first attempts, then 30 s. Past 10 failures the faults are turned
/// off (the real mapping would send the batch to its on-failure destination). Returns the
/// attempts and the dead-letter objects written.
async fn deliver(
    world: &World,
    ingestor: &Ingestor,
    scenario: &Scenario,
    batch: &[usize],
    deadlines: &[u64],
    seed: u64,
) -> (usize, Vec<String>) {
    let text = event_text(scenario, batch);
    let mut attempts = 0;
    loop {
        attempts += 1;
        let deadline = deadlines.get(attempts - 1).copied().unwrap_or(30_000);
        let invocation = Invocation::local(Duration::from_millis(deadline));
        let t0 = std::time::Instant::now();
        let result = ingestor.ingest(text.as_bytes(), &invocation).await;
        if std::env::var_os("MODEL_TRACE").is_some() {
            let coordinates: Vec<_> = batch
                .iter()
                .map(|&i| (scenario.records[i].topic, scenario.records[i].partition, scenario.records[i].offset))
                .collect();
            eprintln!(
                "seed {seed}: delivery of {coordinates:?}: {:?} in {:?}",
                result.as_ref().map(|s| &s.processed).map_err(|e| e.to_string()),
                t0.elapsed()
            );
        }
        match result {
            Ok(summary) => {
                let p = &summary.processed;
                assert!(p.is_balanced(), "seed {seed}: an invocation did not account for every record: {p:?}");
                assert_eq!(p.records_received, batch.len(), "seed {seed}");
                return (attempts, p.dead_letter_objects.clone());
            }
            Err(_) => {
                if attempts == 10 {
                    world.set_faults("").await;
                    world.s3.set_rate(0.0);
                }
                assert!(attempts < 40, "seed {seed}: a batch never succeeded");
            }
        }
    }
}

async fn run_scenario(world: &World, seed: u64, figures: &mut Figures) {
    let scenario = generate(seed);
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let tables = [format!("alpha_{}", &suffix[..12]), format!("beta_{}", &suffix[..12])];
    let sql = world.sql().await;
    for table in &tables {
        sql.batch_execute(&format!(
            "CREATE TABLE public.{table} (id INTEGER NOT NULL, name VARCHAR(40), state CHAR(2), score BIGINT, ssn VARCHAR(64), \
             notes VARCHAR(200) NOT NULL, {METADATA_DDL})"
        ))
        .await
        .unwrap();
    }
    cdc_tests::stack::ensure_delete_ledger(&sql, "public").await;
    let bucket = format!("model-{}", &suffix[..20]);
    s3_client().create_bucket().bucket(&bucket).send().await.unwrap();
    let mut rng = SmallRng::seed_from_u64(seed ^ 0x5eed);
    world.set_faults(&scenario.emulator_faults).await;
    world.s3.set_rate(scenario.s3_fault_rate);
    let s3_refused_before = world.s3.counts().refused.load(Ordering::Relaxed);
    let mut failed_attempts = 0;

    let ingestor = world.ingestor(config(&tables, scenario.load, true), &bucket);
    let mut written: BTreeSet<String> = BTreeSet::new();
    // Deliveries run in waves: up to three consecutive batches of different topic-partitions at
    // once, as the event source mapping runs one invocation per partition concurrently (the
    // emulator runs them at SNAPSHOT isolation, as Redshift does by default).
    let mut next = 0;
    while next < scenario.deliveries.len() {
        let mut wave: Vec<&Vec<usize>> = vec![&scenario.deliveries[next]];
        let partitions = |batch: &Vec<usize>| -> BTreeSet<(usize, i64)> {
            batch.iter().map(|&i| (scenario.records[i].topic, scenario.records[i].partition)).collect()
        };
        let mut taken = partitions(&scenario.deliveries[next]);
        next += 1;
        while wave.len() < 3 && next < scenario.deliveries.len() && rng.random_bool(0.5) {
            let candidate = partitions(&scenario.deliveries[next]);
            if !candidate.is_disjoint(&taken) {
                break;
            }
            taken.extend(candidate);
            wave.push(&scenario.deliveries[next]);
            next += 1;
        }
        let deadlines: Vec<Vec<u64>> = wave
            .iter()
            .map(|_| (0..10).map(|_| if rng.random_bool(0.2) { rng.random_range(20..400) } else { 30_000 }).collect())
            .collect();
        let results = futures_util::future::join_all(
            wave.iter()
                .zip(&deadlines)
                .map(|(batch, deadlines)| deliver(world, &ingestor, &scenario, batch, deadlines, seed)),
        )
        .await;
        for (attempts, objects) in results {
            figures.failed_invocations += attempts - 1;
            failed_attempts += attempts - 1;
            figures.deliveries += attempts;
            written.extend(objects);
        }
        world.set_faults(&scenario.emulator_faults).await;
        world.s3.set_rate(scenario.s3_fault_rate);
    }

    // Replay the dead letters with the rule that rejected the fixable records removed, round
    // after round as an operator would, until a round changes nothing: a placeholder update
    // dead-lettered for want of a stored row lands once the row it keeps a value of does.
    let replayer = world.ingestor(config(&tables, scenario.load, false), &bucket);
    let mut rounds = 0;
    loop {
        rounds += 1;
        assert!(rounds < 40, "seed {seed}: replay never finished");
        let mut next_key = None;
        let mut failed = 0;
        let mut changed = 0;
        loop {
            let request =
                ReplayRequest { next_key: next_key.clone(), max_objects: Some(5), ..ReplayRequest::default() };
            figures.replay_calls += 1;
            // In the first round an operator starts the same replay twice (the CLI re-invokes a
            // long replay after its read timeout): both run at once over the same objects.
            // (Two invocations: each has its own request id, which names its dead-letter objects.)
            let invocation = Invocation::local(Duration::from_secs(60));
            let (result, twin) = if rounds == 1 {
                figures.replay_calls += 1;
                let other = Invocation::local(Duration::from_secs(60));
                let (a, b) = tokio::join!(replayer.replay(&request, &invocation), replayer.replay(&request, &other));
                (a, Some(b))
            } else {
                (replayer.replay(&request, &invocation).await, None)
            };
            if let Some(Ok(twin)) = &twin {
                failed_attempts += twin.objects_failed;
                for object in &twin.objects {
                    written.extend(object.dead_letter_objects.iter().cloned());
                }
                changed += twin.records_loaded + twin.records_stale + twin.records_superseded;
            }
            // A replay that cannot list its objects fails as a whole; the operator runs it again.
            let Ok(response) = result else {
                failed += 1;
                failed_attempts += 1;
                break;
            };
            for object in &response.objects {
                written.extend(object.dead_letter_objects.iter().cloned());
            }
            failed += response.objects_failed;
            // A replayed object that failed is a failed load attempt (its staged object may stay).
            failed_attempts += response.objects_failed;
            changed += response.records_loaded + response.records_stale + response.records_superseded;
            next_key = response.next_key;
            if next_key.is_none() {
                break;
            }
        }
        if failed == 0 && changed == 0 {
            break;
        }
        if rounds == 10 {
            world.set_faults("").await;
            world.s3.set_rate(0.0);
        }
    }
    world.set_faults("").await;
    world.s3.set_rate(0.0);

    // 1. The warehouse equals the reference.
    let expected = reference(&scenario);
    for (t, table) in tables.iter().enumerate() {
        let rows: BTreeMap<i32, (Row, bool)> = sql
            .query(&format!("SELECT id, name, state, score, ssn, notes, _cdc_deleted FROM public.{table}"), &[])
            .await
            .unwrap()
            .iter()
            .map(|r| {
                let row = Row {
                    id: r.get(0),
                    name: r.get(1),
                    state: r.get(2),
                    score: r.get(3),
                    ssn: r.get(4),
                    notes: r.get(5),
                };
                (row.id, (row, r.get(6)))
            })
            .collect();
        let want: BTreeMap<i32, (Row, bool)> = expected.tables[t]
            .iter()
            .map(|(k, (row, deleted))| (*k, (Row { ssn: hmac_hex(KEY, row.ssn.as_bytes()), ..row.clone() }, *deleted)))
            .collect();
        if rows != want {
            for key in rows.keys().chain(want.keys()).collect::<BTreeSet<_>>() {
                if rows.get(key) != want.get(key) {
                    eprintln!("seed {seed}: table {t} key {key}: got {:?}, want {:?}", rows.get(key), want.get(key));
                    for (i, e) in scenario.events.iter().enumerate().filter(|(_, e)| e.table == t && e.key == *key) {
                        let records: Vec<_> = scenario
                            .records
                            .iter()
                            .filter(|r| r.event == Some(i) || r.deletes == Some(i))
                            .map(|r| (r.partition, r.offset, r.event.is_some()))
                            .collect();
                        eprintln!(
                            "  event {i}: {} poison {:?} placeholder {} partial {} compacted {} lineage {} native {} ts {} records {records:?} after {:?}",
                            e.op,
                            e.poison,
                            e.placeholder,
                            e.partial_before,
                            e.compacted,
                            e.lineage,
                            e.native,
                            e.ts_ms,
                            e.after
                        );
                    }
                }
            }
        }
        assert_eq!(rows, want, "seed {seed}: table {} differs from the model", TOPICS[t]);
        figures.rows_checked += rows.len();
    }
    // 2. What is still dead-lettered cannot be stored; every undecodable record is there.
    // Records past the attempts cap are quarantined: still dead-lettered, under their own prefix.
    let mut live = objects(&bucket, "dead-letter/").await;
    live.extend(objects(&bucket, "quarantine/").await);
    let mut left: BTreeSet<(String, i64, i64)> = BTreeSet::new();
    for (key, body) in &live {
        let Ok(Contents::DeadLetters(lines)) = read(body) else {
            panic!("seed {seed}: unreadable dead-letter object {key}")
        };
        for line in lines {
            assert!(!line.reasons.is_empty(), "seed {seed}: a dead letter without a reason");
            left.insert((line.topic.to_string(), line.partition, line.offset));
        }
    }
    for record in &scenario.records {
        let coordinates = (TOPICS[record.topic].to_string(), record.partition, record.offset);
        let Some(index) = record.event else {
            assert!(!left.contains(&coordinates), "seed {seed}: a tombstone was dead-lettered");
            continue;
        };
        let event = &scenario.events[index];
        if event.poison == Poison::Undecodable {
            assert!(
                left.contains(&coordinates),
                "seed {seed}: undecodable record {coordinates:?} is not dead-lettered"
            );
        } else if !expected.unstorable.contains(&index) {
            assert!(
                !left.contains(&coordinates),
                "seed {seed}: storable record {coordinates:?} is still dead-lettered"
            );
        }
    }
    figures.dead_letters_left += left.len();
    // 3. No dead-letter object disappeared unreplayed: each is live or archived.
    let live_keys: BTreeSet<String> = live.into_iter().map(|(k, _)| k).collect();
    let archived: BTreeSet<String> = objects(&bucket, "archive/")
        .await
        .into_iter()
        .map(|(k, _)| k.trim_start_matches("archive/").to_string())
        .collect();
    for key in &written {
        assert!(live_keys.contains(key) || archived.contains(key), "seed {seed}: dead-letter object {key} vanished");
    }
    // 4. A staged object outlives its transaction only when the attempt failed (a deadline
    // between its PUT and its COPY, or during the COPY) or its DELETE was refused: the
    // staging prefix's lifecycle rule removes those.
    let staged_left = object_count(&bucket, "staging/").await;
    let refused = world.s3.counts().refused.load(Ordering::Relaxed) - s3_refused_before;
    assert!(
        staged_left as u64 <= failed_attempts as u64 + refused,
        "seed {seed}: {staged_left} staged objects left after {failed_attempts} failed attempts and {refused} refused S3 requests"
    );
    figures.staged_left += staged_left;
    figures.scenarios += 1;
    figures.records += scenario.records.len();
    figures.placeholders += scenario.events.iter().filter(|e| e.placeholder).count();
    figures.partial_deletes += scenario.events.iter().filter(|e| e.partial_before && !e.compacted).count();
    figures.lone_tombstones += scenario.events.iter().filter(|e| e.compacted).count();
    figures.source_switches += usize::from(scenario.events.iter().any(|e| e.lineage == 1));
}

#[test]
fn randomized_histories_end_in_the_model_state() {
    let count: u64 = std::env::var("MODEL_SCENARIOS").ok().and_then(|s| s.parse().ok()).unwrap_or(200);
    let only: Option<u64> = std::env::var("MODEL_SEED").ok().and_then(|s| s.parse().ok());
    let base: u64 = std::env::var("MODEL_BASE_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(20_261_124);
    let seeds: Vec<u64> = match only {
        Some(seed) => vec![seed],
        None => (0..count).map(|i| base + i).collect(),
    };
    let workers = 4.min(seeds.len()).max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let started = std::time::Instant::now();
    let (figures, faults) = runtime.block_on(async {
        let mut tasks = Vec::new();
        for worker in 0..workers {
            let mine: Vec<u64> = seeds.iter().copied().skip(worker).step_by(workers).collect();
            tasks.push(tokio::spawn(async move {
                let world = Arc::new(World::new(worker as u64).await);
                let mut figures = Figures::default();
                for seed in mine {
                    // Its own task, so that a failing scenario is reported with its seed.
                    let scenario = tokio::spawn({
                        let world = world.clone();
                        async move {
                            let mut f = Figures::default();
                            run_scenario(&world, seed, &mut f).await;
                            f
                        }
                    })
                    .await;
                    match scenario {
                        Ok(f) => merge(&mut figures, &f),
                        Err(e) => {
                            panic!("scenario with seed {seed} failed (re-run it alone with MODEL_SEED={seed}): {e}")
                        }
                    }
                }
                world.count_faults().await;
                let faults = world.tally.lock().unwrap().clone();
                let s3 = world.s3.counts();
                (
                    figures,
                    faults,
                    s3.requests.load(Ordering::Relaxed),
                    s3.refused.load(Ordering::Relaxed),
                    s3.answer_lost.load(Ordering::Relaxed),
                )
            }));
        }
        let mut figures = Figures::default();
        let mut faults: BTreeMap<String, u64> = BTreeMap::new();
        for task in tasks {
            let (f, emulator, requests, refused, lost) = task.await.expect("worker");
            merge(&mut figures, &f);
            for (name, n) in emulator {
                *faults.entry(name).or_default() += n;
            }
            *faults.entry("s3_requests".into()).or_default() += requests;
            *faults.entry("s3_refused".into()).or_default() += refused;
            *faults.entry("s3_answer_lost".into()).or_default() += lost;
        }
        (figures, faults)
    });
    let report = json!({
        "scenarios": figures.scenarios,
        "records": figures.records,
        "deliveries_including_retries": figures.deliveries,
        "failed_invocations_retried": figures.failed_invocations,
        "staged_objects_left_for_the_lifecycle_rule": figures.staged_left,
        "replay_calls": figures.replay_calls,
        "rows_checked": figures.rows_checked,
        "placeholders": figures.placeholders,
        "partial_deletes": figures.partial_deletes,
        "lone_tombstones": figures.lone_tombstones,
        "source_switches": figures.source_switches,
        "dead_letters_left_unstorable": figures.dead_letters_left,
        "faults": faults,
        "seconds": started.elapsed().as_secs_f64(),
    });
    println!("model test: {report}");
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| cdc_tests::repo_root().join("target"), std::path::PathBuf::from);
    let _ = std::fs::create_dir_all(dir.join("reliability"));
    let _ = std::fs::write(dir.join("reliability/model.json"), report.to_string());
    assert_eq!(figures.scenarios, seeds.len());
    if seeds.len() >= 50 {
        for (what, n) in [
            ("placeholders", figures.placeholders),
            ("partial deletes", figures.partial_deletes),
            ("lone tombstones", figures.lone_tombstones),
            ("source switches", figures.source_switches),
        ] {
            assert!(n > 0, "the histories carried no {what}");
        }
    }
}

fn merge(into: &mut Figures, f: &Figures) {
    into.scenarios += f.scenarios;
    into.records += f.records;
    into.deliveries += f.deliveries;
    into.failed_invocations += f.failed_invocations;
    into.staged_left += f.staged_left;
    into.replay_calls += f.replay_calls;
    into.rows_checked += f.rows_checked;
    into.dead_letters_left += f.dead_letters_left;
    into.placeholders += f.placeholders;
    into.partial_deletes += f.partial_deletes;
    into.lone_tombstones += f.lone_tombstones;
    into.source_switches += f.source_switches;
}
