//! Randomized end-to-end model test: "nothing lost, nothing duplicated".
//!
//! Each scenario (from a seed) generates a CDC history over two tables — snapshot reads,
//! inserts, updates, deletes with tombstones — with poison records (rejected by a rule but
//! fixable, undecodable, or too long for the target), cuts it into MSK batches over three
//! partitions (same key, same partition), adds redeliveries of earlier batches, and feeds
//! them to the real ingest handler against the Data API emulator on PostgreSQL (with random
//! throttling, server errors, serialization failures and latency), a fault-injecting proxy in
//! front of the S3 server, and random deadlines. A batch is retried whenever the handler
//! fails, as the event source mapping does. Then every dead-letter object is replayed with a
//! config that accepts the fixable records. For every scenario:
//!
//! - the warehouse equals a reference model: per key, the latest change (by source position)
//!   that can be stored, soft-deleted rows as such;
//! - every successful invocation accounts for each record exactly once;
//! - what is still dead-lettered is only records that cannot be stored, and every
//!   undecodable record is there;
//! - no dead-letter object disappears unreplayed (each is live or archived).
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
use cdc_tests::stack::{FAST_POLL, FAST_RETRY, METADATA_DDL, database_url, emulator, pg, sdk_client};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

const KEY: &[u8] = b"model-masking-key";
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

#[derive(Debug, Clone, PartialEq)]
struct Row {
    id: i32,
    name: String,
    state: String,
    score: i64,
    ssn: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Poison {
    None,
    /// `state` outside the rule's list: rejected, loads after replay with the relaxed config.
    Fixable,
    /// Not base64, or not JSON.
    Undecodable,
}

#[derive(Debug, Clone)]
struct SourceEvent {
    table: usize,
    key: i32,
    op: &'static str,
    before: Option<Row>,
    after: Option<Row>,
    commit: u128,
    change: Option<u128>,
    serial: i64,
    poison: Poison,
}

impl SourceEvent {
    fn image(&self) -> &Row {
        if self.op == "d" {
            self.before.as_ref().expect("a delete has a before image")
        } else {
            self.after.as_ref().expect("an upsert has an after image")
        }
    }

    /// Can this change ever be stored? Undecodable changes cannot, nor images the target's
    /// VARCHAR(40) cannot hold.
    fn storable(&self) -> bool {
        self.poison != Poison::Undecodable && self.image().name.len() <= 40
    }

    fn position(&self) -> (u128, u128, i64) {
        (self.commit, self.change.unwrap_or(0), self.serial)
    }
}

/// A Kafka record of the scenario and the event it carries (`None` for a tombstone).
#[derive(Debug, Clone)]
struct Record {
    topic: usize,
    partition: i64,
    offset: i64,
    event: Option<usize>,
}

struct Scenario {
    events: Vec<SourceEvent>,
    records: Vec<Record>,
    /// Batches in delivery order (redeliveries included), as indices into `records`.
    deliveries: Vec<Vec<usize>>,
    with_schema: bool,
    emulator_faults: String,
    s3_fault_rate: f64,
}

fn row_json(row: &Row) -> Value {
    json!({"ID": row.id, "Name": row.name, "State": row.state, "Score": row.score, "SSN": row.ssn})
}

const ROW_SCHEMA: &str = r#"[{"type":"int32","optional":false,"field":"ID"},{"type":"string","optional":true,"field":"Name"},{"type":"string","optional":true,"field":"State"},{"type":"int64","optional":true,"field":"Score"},{"type":"string","optional":true,"field":"SSN"}]"#;

fn value_json(event: &SourceEvent, with_schema: bool) -> String {
    let payload = json!({
        "before": event.before.as_ref().map(row_json),
        "after": event.after.as_ref().map(row_json),
        "source": {"version": "2.7.3.Final", "connector": "sqlserver", "name": "src", "ts_ms": 1_795_000_000_000i64,
                   "snapshot": if event.op == "r" { "true" } else { "false" }, "db": "db", "schema": "dbo", "table": TOPICS[event.table],
                   "change_lsn": event.change.map(lsn), "commit_lsn": lsn(event.commit), "event_serial_no": if event.op == "r" { Value::Null } else { json!(event.serial) }},
        "transaction": null,
        "op": event.op,
        "ts_ms": 1_795_000_000_100i64,
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
        r#"{{"type":"struct","fields":[{},{},{{"type":"struct","fields":[],"optional":false,"name":"io.debezium.connector.sqlserver.Source","field":"source"}},{{"type":"string","optional":false,"field":"op"}}],"optional":false,"name":"src.db.dbo.t.Envelope","version":2}}"#,
        image("before"),
        image("after")
    );
    format!(r#"{{"schema":{schema},"payload":{payload}}}"#)
}

fn generate(seed: u64) -> Scenario {
    let mut rng = SmallRng::seed_from_u64(seed);
    let keys_per_table = rng.random_range(3..=10);
    let mut state: [BTreeMap<i32, Row>; 2] = [BTreeMap::new(), BTreeMap::new()];
    let mut events = Vec::new();
    let mut commit: u128 = 0x100 << 20;
    let new_row = |rng: &mut SmallRng, id: i32| Row {
        id,
        name: NAMES[rng.random_range(0..NAMES.len())].to_string(),
        state: STATES[rng.random_range(0..STATES.len())].to_string(),
        score: rng.random_range(-1_000_000..1_000_000),
        ssn: format!("{:09}", rng.random_range(0..1_000_000_000u32)),
    };
    // A snapshot of some rows: one commit LSN, no change LSN.
    if rng.random_bool(0.6) {
        for (table, rows) in state.iter_mut().enumerate() {
            for key in 1..=rng.random_range(1..=keys_per_table) {
                let row = new_row(&mut rng, key);
                rows.insert(key, row.clone());
                events.push(SourceEvent {
                    table,
                    key,
                    op: "r",
                    before: None,
                    after: Some(row),
                    commit,
                    change: None,
                    serial: 0,
                    poison: Poison::None,
                });
            }
        }
    }
    for _ in 0..rng.random_range(15..60) {
        commit += 1 << 20;
        let table = rng.random_range(0..2);
        let key = rng.random_range(1..=keys_per_table);
        let previous = state[table].get(&key).cloned();
        let (op, before, after) = match previous {
            None => {
                let mut row = new_row(&mut rng, key);
                if rng.random_bool(0.05) {
                    row.name = OVERSIZED.into();
                }
                ("c", None, Some(row))
            }
            Some(old) if rng.random_bool(0.25) => ("d", Some(old), None),
            Some(old) => {
                let mut row = old.clone();
                match rng.random_range(0..3) {
                    0 => row.name = NAMES[rng.random_range(0..NAMES.len())].to_string(),
                    1 => row.state = STATES[rng.random_range(0..STATES.len())].to_string(),
                    _ => row.score = rng.random_range(-1_000_000..1_000_000),
                }
                if rng.random_bool(0.05) {
                    row.name = OVERSIZED.into();
                }
                ("u", Some(old), Some(row))
            }
        };
        let mut poison = Poison::None;
        let mut after = after;
        if op != "d" && rng.random_bool(0.08) {
            poison = Poison::Fixable;
            if let Some(row) = after.as_mut() {
                row.state = "ZZ".into();
            }
        } else if rng.random_bool(0.05) {
            poison = Poison::Undecodable;
        }
        match &after {
            Some(row) => state[table].insert(key, row.clone()),
            None => state[table].remove(&key),
        };
        let serial = if op == "u" { 2 } else { 1 };
        events.push(SourceEvent { table, key, op, before, after, commit, change: Some(commit - 7), serial, poison });
    }
    // Kafka: per topic-partition offsets in source order; a delete is followed by its tombstone.
    let mut offsets: HashMap<(usize, i64), i64> = HashMap::new();
    let mut records = Vec::new();
    for (i, event) in events.iter().enumerate() {
        let partition = (event.key as i64 * 7 + event.table as i64) % PARTITIONS;
        let mut push = |event: Option<usize>| {
            let offset = offsets.entry((events[i].table, partition)).or_insert(0);
            records.push(Record { topic: events[i].table, partition, offset: *offset, event });
            *offset += 1;
        };
        push(Some(i));
        if event.op == "d" {
            push(None);
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
    // Redeliveries: an earlier batch again, later (out of order).
    let mut deliveries = batches.clone();
    for _ in 0..rng.random_range(0..=batches.len() / 2 + 1) {
        let batch = batches[rng.random_range(0..batches.len())].clone();
        let at = rng.random_range(0..=deliveries.len());
        deliveries.insert(at, batch);
    }
    let faulty = rng.random_bool(0.8);
    let p = |rng: &mut SmallRng, max: f64| if faulty { rng.random_range(0.0..max) } else { 0.0 };
    let emulator_faults = format!(
        "throttle={:.3},server_error={:.3},serialization={:.3},latency_ms={},seed={}",
        p(&mut rng, 0.15),
        p(&mut rng, 0.08),
        p(&mut rng, 0.15),
        if faulty && rng.random_bool(0.3) { rng.random_range(1..40) } else { 0 },
        seed
    );
    let s3_fault_rate = p(&mut rng, 0.2);
    Scenario { events, records, deliveries, with_schema: rng.random_bool(0.5), emulator_faults, s3_fault_rate }
}

fn config(tables: &[String; 2], strict: bool) -> Config {
    let mut text = String::new();
    for (topic, table) in TOPICS.iter().zip(tables) {
        text.push_str(&format!(
            "[[tables]]\ntopic = \"{topic}\"\ntarget = \"public.{table}\"\nkey = [\"id\"]\n\
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
            let key = json!({"ID": event.map_or_else(|| tombstone_key(scenario, i), |e| e.key)}).to_string();
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
                Some(e) => spec.value = Some(value_json(e, scenario.with_schema).into_bytes()),
            }
            spec
        })
        .collect();
    msk_event_text(&specs)
}

/// The key of a tombstone: that of the delete just before it on its partition.
fn tombstone_key(scenario: &Scenario, index: usize) -> i32 {
    let previous = &scenario.records[index - 1];
    scenario.events[previous.event.expect("a tombstone follows its delete")].key
}

/// The warehouse the history should leave: per key, the latest storable change.
fn expected(scenario: &Scenario) -> [BTreeMap<i32, (Row, bool)>; 2] {
    let mut latest: [BTreeMap<i32, &SourceEvent>; 2] = [BTreeMap::new(), BTreeMap::new()];
    for event in scenario.events.iter().filter(|e| e.storable()) {
        let slot = latest[event.table].entry(event.key).or_insert(event);
        if event.position() >= slot.position() {
            *slot = event;
        }
    }
    latest.map(|table| table.into_iter().map(|(k, e)| (k, (e.image().clone(), e.op == "d"))).collect())
}

#[derive(Debug, Default, Clone)]
struct Figures {
    scenarios: usize,
    records: usize,
    deliveries: usize,
    failed_invocations: usize,
    replay_calls: usize,
    rows_checked: usize,
    dead_letters_left: usize,
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
        let loader = Loader::new(
            DataApi::new(sdk_client(&self.emulator.endpoint_url), target).with_backoff(FAST_POLL, FAST_RETRY),
        );
        let store = Store {
            client: s3_client_at(&self.s3.endpoint),
            bucket: bucket.into(),
            prefix: "dead-letter".into(),
            archive_prefix: "archive".into(),
            kms_key_id: None,
        };
        let mut ingestor = Ingestor::new(pipeline, loader, store, Arc::new(Captured::default()));
        ingestor.deadline_margin = Duration::from_millis(100);
        ingestor
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

async fn run_scenario(world: &World, seed: u64, figures: &mut Figures) {
    let scenario = generate(seed);
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let tables = [format!("alpha_{}", &suffix[..12]), format!("beta_{}", &suffix[..12])];
    let sql = world.sql().await;
    for table in &tables {
        sql.batch_execute(&format!(
            "CREATE TABLE public.{table} (id INTEGER NOT NULL, name VARCHAR(40), state CHAR(2), score BIGINT, ssn VARCHAR(64), {METADATA_DDL}, PRIMARY KEY (id))"
        ))
        .await
        .unwrap();
    }
    let bucket = format!("model-{}", &suffix[..20]);
    s3_client().create_bucket().bucket(&bucket).send().await.unwrap();
    let mut rng = SmallRng::seed_from_u64(seed ^ 0x5eed);
    world.set_faults(&scenario.emulator_faults).await;
    world.s3.set_rate(scenario.s3_fault_rate);

    let ingestor = world.ingestor(config(&tables, true), &bucket);
    let mut written: BTreeSet<String> = BTreeSet::new();
    for batch in &scenario.deliveries {
        let text = event_text(&scenario, batch);
        let mut attempts = 0;
        loop {
            attempts += 1;
            // Random deadlines, as when a batch arrives late in a slow invocation.
            let deadline = if attempts < 10 && rng.random_bool(0.2) { rng.random_range(20..400) } else { 30_000 };
            let invocation = Invocation::local(Duration::from_millis(deadline));
            let t0 = std::time::Instant::now();
            let result = ingestor.ingest(text.as_bytes(), &invocation).await;
            if std::env::var_os("MODEL_TRACE").is_some() {
                eprintln!(
                    "seed {seed}: delivery of {} records: ok {} in {:?}",
                    batch.len(),
                    result.is_ok(),
                    t0.elapsed()
                );
            }
            match result {
                Ok(summary) => {
                    let p = &summary.processed;
                    assert!(p.is_balanced(), "seed {seed}: an invocation did not account for every record: {p:?}");
                    assert_eq!(p.records_received, batch.len(), "seed {seed}");
                    written.extend(p.dead_letter_objects.iter().cloned());
                    break;
                }
                Err(_) => {
                    figures.failed_invocations += 1;
                    // The event source mapping retries; past 10 failures, spare it the faults.
                    if attempts == 10 {
                        world.set_faults("").await;
                        world.s3.set_rate(0.0);
                    }
                    assert!(attempts < 40, "seed {seed}: a batch never succeeded");
                }
            }
        }
        if attempts >= 10 {
            world.set_faults(&scenario.emulator_faults).await;
            world.s3.set_rate(scenario.s3_fault_rate);
        }
        figures.deliveries += attempts;
    }

    // Replay every dead letter with the rule that rejected the fixable records removed.
    let replayer = world.ingestor(config(&tables, false), &bucket);
    let mut rounds = 0;
    loop {
        rounds += 1;
        assert!(rounds < 40, "seed {seed}: replay never finished");
        let mut next_key = None;
        let mut failed = 0;
        loop {
            let request =
                ReplayRequest { next_key: next_key.clone(), max_objects: Some(5), ..ReplayRequest::default() };
            figures.replay_calls += 1;
            // A replay that cannot list its objects fails as a whole; the operator runs it again.
            let Ok(response) = replayer.replay(&request, &Invocation::local(Duration::from_secs(60))).await else {
                failed += 1;
                break;
            };
            for object in &response.objects {
                written.extend(object.dead_letter_objects.iter().cloned());
            }
            failed += response.objects_failed;
            next_key = response.next_key;
            if next_key.is_none() {
                break;
            }
        }
        // Done when every object left holds only records that cannot be stored.
        let live = objects(&bucket, "dead-letter/").await;
        let all_permanent = live.iter().all(|(_, body)| match read(body) {
            Ok(Contents::DeadLetters(lines)) => lines.iter().all(|l| !l.stage.eq("validate")),
            _ => false,
        });
        if failed == 0 && all_permanent {
            break;
        }
        if rounds == 10 {
            world.set_faults("").await;
            world.s3.set_rate(0.0);
        }
    }
    world.set_faults("").await;
    world.s3.set_rate(0.0);

    // 1. The warehouse equals the model.
    let expected = expected(&scenario);
    for (t, table) in tables.iter().enumerate() {
        let rows: BTreeMap<i32, (Row, bool)> = sql
            .query(&format!("SELECT id, name, state, score, ssn, _cdc_deleted FROM public.{table}"), &[])
            .await
            .unwrap()
            .iter()
            .map(|r| {
                let row = Row { id: r.get(0), name: r.get(1), state: r.get(2), score: r.get(3), ssn: r.get(4) };
                (row.id, (row, r.get(5)))
            })
            .collect();
        let want: BTreeMap<i32, (Row, bool)> = expected[t]
            .iter()
            .map(|(k, (row, deleted))| (*k, (Row { ssn: hmac_hex(KEY, row.ssn.as_bytes()), ..row.clone() }, *deleted)))
            .collect();
        assert_eq!(rows, want, "seed {seed}: table {} differs from the model", TOPICS[t]);
        figures.rows_checked += rows.len();
    }
    // 2. What is still dead-lettered cannot be stored; every undecodable record is there.
    let live = objects(&bucket, "dead-letter/").await;
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
        let Some(event) = record.event.map(|e| &scenario.events[e]) else {
            assert!(!left.contains(&coordinates), "seed {seed}: a tombstone was dead-lettered");
            continue;
        };
        if event.poison == Poison::Undecodable {
            assert!(
                left.contains(&coordinates),
                "seed {seed}: undecodable record {coordinates:?} is not dead-lettered"
            );
        } else if event.storable() {
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
    figures.scenarios += 1;
    figures.records += scenario.records.len();
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
        "replay_calls": figures.replay_calls,
        "rows_checked": figures.rows_checked,
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
}

fn merge(into: &mut Figures, f: &Figures) {
    into.scenarios += f.scenarios;
    into.records += f.records;
    into.deliveries += f.deliveries;
    into.failed_invocations += f.failed_invocations;
    into.replay_calls += f.replay_calls;
    into.rows_checked += f.rows_checked;
    into.dead_letters_left += f.dead_letters_left;
}
