//! The ingest and replay handlers end to end: real PostgreSQL behind the Data API emulator,
//! a real S3-protocol server for the dead-letter store, the real AWS SDK clients.

use std::collections::BTreeSet;
use std::time::Duration;

use cdc_pipeline::dlq::{Contents, read};
use cdc_pipeline::ingest::{IngestError, Invocation};
use cdc_pipeline::replay::{ObjectOutcome, ReplayRequest};
use cdc_tests::harness::Harness;
use cdc_tests::{event_files, events_dir, hmac_hex};
use serde_json::json;

use cdc_tests::faults::FaultyS3;
use cdc_tests::harness::{KEY, config, invocation, relaxed_config, s3_client_at, s3_endpoint};

type TableRow = (i32, Option<String>, Option<String>, Option<String>, Option<String>, Option<String>, bool, String);

async fn table(h: &Harness) -> Vec<TableRow> {
    h.sql()
        .await
        .query("SELECT id, firstname, lastname, state, ssn, dob::text, _cdc_deleted, _cdc_op FROM public.patientinfo ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5), r.get(6), r.get(7)))
        .collect()
}

/// A row as the example config stores it; `op` "d" means soft-deleted.
fn expected_row(id: i32, first: &str, last: &str, state: &str, ssn: &str, year: i32, op: &str) -> TableRow {
    (
        id,
        Some(first.into()),
        Some(last.into()),
        Some(state.into()),
        Some(hmac_hex(KEY, ssn.as_bytes())),
        Some(format!("{year}-01-01 00:00:00")),
        op == "d",
        op.into(),
    )
}

#[tokio::test]
async fn every_sample_event_ends_in_the_exact_expected_table() {
    let h = Harness::new("").await;
    h.create_targets(&config(), &event_files()).await;
    let summaries = h.ingest_all_samples().await;
    assert_eq!(
        table(&h).await,
        vec![
            expected_row(1001, "John", "Smith-Jones", "WA", "123456789", 1958, "u"),
            expected_row(1002, "Maria", "Garcia", "TX", "987654321", 1985, "d"),
            expected_row(1003, "Wei", "Chen-Li", "NJ", "555123456", 1990, "u"),
            expected_row(1004, "Aisha", "Khan", "TX", "222334444", 2001, "u"),
            expected_row(1005, "Liam", "O'Brien", "MA", "444556666", 1979, "c"),
            expected_row(1006, "Sam", "Lee", "NV", "135792468", 1966, "d"),
            expected_row(1007, "Noor", "Hassan", "MI", "246813579", 2003, "c"),
            expected_row(2008, "Eve", "Adams", "DC", "111223333", 1999, "c"),
        ]
    );
    let invalid = &summaries[5];
    assert_eq!(invalid["records_received"], 8);
    assert_eq!(invalid["loaded"], 1);
    assert_eq!(invalid["dead_lettered"], json!({"decode": 2, "validate": 5}));
    assert_eq!(summaries[6]["superseded"], 2);
    assert_eq!(summaries[7]["skipped"], json!({"heartbeat": 1, "schema_change": 1, "transaction": 1}));
    // Ingesting everything again changes nothing: every change is stale now.
    let before = table(&h).await;
    h.ingest_all_samples().await;
    assert_eq!(table(&h).await, before);
}

#[tokio::test]
async fn poison_records_land_in_dead_letter_objects_with_coordinates_and_reasons() {
    let h = Harness::new("").await;
    h.create_targets(&config(), &event_files()).await;
    let ingestor = h.ingestor(config(), KEY);
    let bytes = std::fs::read(events_dir().join("06-patientinfo-invalid.json")).unwrap();
    let summary = ingestor.ingest(&bytes, &invocation()).await.unwrap();
    assert_eq!(summary.processed.loaded, 1, "the valid record of the batch loads");
    let objects = h.objects("dead-letter/").await;
    assert_eq!(
        objects.len(),
        2,
        "one object per stage and partition: {:?}",
        objects.iter().map(|o| &o.0).collect::<Vec<_>>()
    );
    let (validate_key, validate_body) = objects.iter().find(|(k, _)| k.starts_with("dead-letter/validate/")).unwrap();
    assert!(validate_key.starts_with("dead-letter/validate/sqlsrv.sampledb.dbo.patientinfo/0/"), "{validate_key}");
    assert!(validate_key.ends_with(&format!("00000000000000000009-00000000000000000015-{}.jsonl", summary.request_id)));
    let Contents::DeadLetters(lines) = read(validate_body).unwrap() else { panic!("dead letters") };
    let got: Vec<(i64, serde_json::Value)> =
        lines.iter().map(|l| (l.offset, serde_json::to_value(&l.reasons).unwrap())).collect();
    assert_eq!(
        got,
        vec![
            (9, json!([{"column": "ssn", "rule": "pattern"}])),
            (10, json!([{"column": "dob", "rule": "not_future"}])),
            (11, json!([{"column": "state", "rule": "one_of"}])),
            (12, json!([{"column": "firstname", "rule": "max_bytes"}])),
            (15, json!([{"column": "ssn", "rule": "pattern"}, {"column": "state", "rule": "one_of"}])),
        ]
    );
    let raw: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let original = &raw["records"]["sqlsrv.sampledb.dbo.patientinfo-0"][0];
    assert_eq!(lines[0].value.as_deref(), original["value"].as_str(), "the value exactly as received");
    assert_eq!(
        (lines[0].partition, lines[0].timestamp, lines[0].attempts),
        (0, original["timestamp"].as_i64().unwrap(), 1)
    );
    assert_eq!(
        (lines[0].stage.as_ref(), lines[0].function.as_ref(), lines[0].request_id.as_ref()),
        ("validate", "ingest", summary.request_id.as_str())
    );
    let decode = objects.iter().find(|(k, _)| k.starts_with("dead-letter/decode/")).unwrap();
    let Contents::DeadLetters(decode_lines) = read(&decode.1).unwrap() else { panic!() };
    assert_eq!(
        decode_lines.iter().map(|l| (l.offset, l.reasons[0].rule.to_string())).collect::<Vec<_>>(),
        vec![(13, "base64".into()), (14, "json".into())]
    );
}

#[tokio::test]
async fn a_failed_dead_letter_write_fails_the_batch() {
    let h = Harness::new("").await;
    h.create_targets(&config(), &event_files()).await;
    let mut store = h.store();
    store.bucket = format!("{}-missing", h.bucket);
    let ingestor = h.ingestor_with_store(config(), KEY, store);
    let bytes = std::fs::read(events_dir().join("06-patientinfo-invalid.json")).unwrap();
    let err = ingestor.ingest(&bytes, &invocation()).await.unwrap_err();
    assert!(matches!(err, IngestError::DeadLetter(_)), "{err}");
    assert!(err.to_string().contains("NoSuchBucket"), "{err}");
    assert!(h.objects("").await.is_empty(), "nothing half-written");
}

#[tokio::test]
async fn a_dead_letter_write_whose_answer_is_lost_leaves_no_object_behind() {
    let h = Harness::new("").await;
    h.create_targets(&config(), &event_files()).await;
    // Every PUT is stored, then answered with a 500 (through the SDK's own retries).
    let proxy = FaultyS3::start(s3_endpoint(), 1).await;
    proxy.lose_put_answers(true);
    let mut store = h.store();
    store.client = s3_client_at(&proxy.endpoint);
    let ingestor = h.ingestor_with_store(config(), KEY, store);
    let bytes = std::fs::read(events_dir().join("06-patientinfo-invalid.json")).unwrap();
    let err = ingestor.ingest(&bytes, &invocation()).await.unwrap_err();
    assert!(matches!(err, IngestError::DeadLetter(_)), "{err}");
    assert!(proxy.counts().answer_lost.load(std::sync::atomic::Ordering::Relaxed) > 0, "writes were stored");
    assert!(h.objects("").await.is_empty(), "the stored but unacknowledged writes are deleted again");
}

#[tokio::test]
async fn a_persistent_data_api_failure_fails_the_batch_and_writes_nothing() {
    let h = Harness::new("throttle=1.0").await;
    let ingestor = h.ingestor(config(), KEY);
    let bytes = std::fs::read(events_dir().join("06-patientinfo-invalid.json")).unwrap();
    let err = ingestor.ingest(&bytes, &invocation()).await.unwrap_err();
    assert!(matches!(err, IngestError::Load(_)), "{err}");
    assert!(err.to_string().contains("ThrottlingException"), "{err}");
    assert!(h.objects("").await.is_empty(), "no dead letters for a batch that will be retried");
    let failed = h.metrics.lines().iter().any(|l| l.contains("\"BatchesFailed\":1.0"));
    assert!(failed, "a failed batch is counted");
}

#[tokio::test]
async fn replay_after_fixing_the_cause_loads_and_archives_and_is_idempotent() {
    let h = Harness::new("").await;
    h.create_targets(&config(), &event_files()).await;
    let bytes = std::fs::read(events_dir().join("06-patientinfo-invalid.json")).unwrap();
    h.ingestor(config(), KEY).ingest(&bytes, &invocation()).await.unwrap();
    let replayer = h.ingestor(relaxed_config(), KEY);

    // The dry run checks the rows against the target as the real run does: the 120-byte name
    // passes the relaxed rules, and the VARCHAR(100) target refuses it in both.
    let dry =
        replayer.replay(&ReplayRequest { dry_run: true, ..ReplayRequest::default() }, &invocation()).await.unwrap();
    assert_eq!((dry.objects_scanned, dry.objects_archived, dry.records_loaded, dry.records_rejected), (2, 0, 4, 3));
    assert_eq!(h.objects("dead-letter/").await.len(), 2, "a dry run changes nothing");
    assert_eq!(table(&h).await.len(), 1);

    let real = replayer.replay(&ReplayRequest::default(), &invocation()).await.unwrap();
    assert_eq!((real.objects_scanned, real.objects_archived, real.objects_failed), (2, 2, 0));
    assert_eq!(
        (real.records_loaded, real.records_rejected),
        (4, 3),
        "the undecodable two and the too-long name stay dead-lettered"
    );
    let ids: Vec<i32> = table(&h).await.iter().map(|r| r.0).collect();
    assert_eq!(ids, vec![2001, 2002, 2003, 2007, 2008]);
    let archived = h.objects("archive/").await;
    assert_eq!(archived.len(), 2);
    let remaining = h.objects("dead-letter/").await;
    assert_eq!(remaining.len(), 2, "new objects for the re-dead-lettered records: {remaining:?}");
    for (key, body) in &remaining {
        let Contents::DeadLetters(lines) = read(body).unwrap() else { panic!() };
        assert!(lines.iter().all(|l| l.attempts == 2), "attempts + 1");
        if key.starts_with("dead-letter/load/") {
            assert_eq!(lines.len(), 1);
            assert_eq!(lines[0].offset, 12);
            assert_eq!(
                serde_json::to_value(&lines[0].reasons).unwrap(),
                json!([{"column": "firstname", "rule": "varchar_length"}])
            );
        }
    }

    // Replaying the archived objects again changes nothing.
    let before = h.sql().await.query("SELECT * FROM public.patientinfo ORDER BY id", &[]).await.unwrap().len();
    let keys: Vec<String> = archived.iter().map(|(k, _)| k.clone()).collect();
    let again =
        replayer.replay(&ReplayRequest { keys: Some(keys), ..ReplayRequest::default() }, &invocation()).await.unwrap();
    assert_eq!((again.records_loaded, again.records_stale), (0, 4));
    assert_eq!(h.sql().await.query("SELECT * FROM public.patientinfo ORDER BY id", &[]).await.unwrap().len(), before);
}

fn on_failure_fixture(name: &str) -> String {
    std::fs::read_to_string(events_dir().join("on-failure").join(name)).unwrap()
}

/// Where Lambda puts an on-failure record in the destination bucket, as AWS documents it for
/// stream event source mappings: `aws/lambda/<ESM-UUID>/<shardID>/YYYY/MM/DD/
/// YYYY-MM-DDTHH.MM.SS-<Random UUID>` (no extension); for Kafka, the topic-partition in the
/// shard's place.
fn on_failure_key(topic_partition: &str, time: &str, random: &str) -> String {
    let (date, _) = time.split_once('T').unwrap();
    format!("aws/lambda/{ESM_UUID}/{topic_partition}/{}/{time}-{random}", date.replace('-', "/"))
}

const ESM_UUID: &str = "f89f8514-cdd9-4602-9e1f-01a5b77d449b";

async fn put(h: &Harness, key: &str, body: &str) {
    h.s3.put_object().bucket(&h.bucket).key(key).body(body.as_bytes().to_vec().into()).send().await.unwrap();
}

#[tokio::test]
async fn replay_of_the_documented_s3_on_failure_record_loads_its_batch_and_archives_it() {
    let h = Harness::new("").await;
    h.create_targets(&config(), &event_files()).await;
    // AWS's S3 example record (pretty-printed, as documented), and the same record on one line.
    let pretty = on_failure_fixture("s3-retry-attempts-exhausted.json");
    let compact = serde_json::to_string(&serde_json::from_str::<serde_json::Value>(&pretty).unwrap()).unwrap();
    let first = on_failure_key(
        "sqlsrv.sampledb.dbo.patientinfo-0",
        "2026-11-20T14.00.06",
        "0b6f6a5e-3c1d-4e8a-9f2b-7d5c4a3b2e10",
    );
    let second = on_failure_key(
        "sqlsrv.sampledb.dbo.patientinfo-0",
        "2026-11-20T14.05.06",
        "5d2e1f0a-9b8c-4d7e-a6f5-e4d3c2b1a090",
    );
    put(&h, &first, &pretty).await;
    put(&h, &second, &compact).await;
    let replayer = h.ingestor(config(), KEY);
    let prefix = format!("aws/lambda/{ESM_UUID}/");

    let dry = replayer
        .replay(
            &ReplayRequest { prefix: Some(prefix.clone()), dry_run: true, ..ReplayRequest::default() },
            &invocation(),
        )
        .await
        .unwrap();
    assert_eq!((dry.objects_scanned, dry.objects_failed, dry.objects[0].records), (2, 0, 7), "{dry:?}");
    assert!(table(&h).await.is_empty(), "a dry run loads nothing");

    let once = ReplayRequest { prefix: Some(prefix.clone()), max_objects: Some(1), ..ReplayRequest::default() };
    let response = replayer.replay(&once, &invocation()).await.unwrap();
    assert_eq!(response.objects.len(), 1);
    assert_eq!(
        (response.objects[0].key.as_str(), response.objects[0].outcome, response.objects[0].records),
        (first.as_str(), ObjectOutcome::Archived, 7)
    );
    assert_eq!(response.objects[0].archived_to.as_deref(), Some(format!("archive/{first}").as_str()));
    assert_eq!(
        (response.records_loaded, response.records_superseded, response.records_skipped, response.records_rejected),
        (4, 2, 1, 0),
        "the batch's four keys load; 1003's first update and 1006's create are superseded; the tombstone skipped"
    );
    assert_eq!(
        table(&h).await,
        vec![
            expected_row(1003, "Wei", "Chen-Li", "NJ", "555123456", 1990, "u"),
            expected_row(1004, "Aisha", "Khan", "TX", "222334444", 2001, "u"),
            expected_row(1006, "Sam", "Lee", "NV", "135792468", 1966, "d"),
            expected_row(1007, "Noor", "Hassan", "MI", "246813579", 2003, "c"),
        ]
    );
    let archived = h.objects("archive/").await;
    assert_eq!(archived, vec![(format!("archive/{first}"), pretty.clone())], "moved whole, byte for byte");

    // The single-line copy of the same batch: read alike, every change already stored.
    let rest = ReplayRequest { next_key: response.next_key.clone(), ..once };
    let again = replayer.replay(&rest, &invocation()).await.unwrap();
    assert_eq!((again.objects_archived, again.records_loaded, again.records_stale), (1, 0, 4), "{again:?}");
    assert!(h.objects("aws/lambda/").await.is_empty());
    assert_eq!(h.objects("archive/aws/lambda/").await.len(), 2);
    assert!(h.objects("dead-letter/").await.is_empty(), "nothing failed");
}

#[tokio::test]
async fn replay_of_a_kafka_topic_destination_record_whose_payload_is_an_object() {
    let h = Harness::new("").await;
    h.create_targets(&config(), &event_files()).await;
    let key = on_failure_key(
        "sqlsrv.sampledb.dbo.patientinfo-0",
        "2026-11-20T09.00.00",
        "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
    );
    put(&h, &key, &on_failure_fixture("kafka-topic-destination.json")).await;
    let response = h
        .ingestor(config(), KEY)
        .replay(&ReplayRequest { keys: Some(vec![key.clone()]), ..ReplayRequest::default() }, &invocation())
        .await
        .unwrap();
    assert_eq!((response.objects_archived, response.records_loaded), (1, 1), "{response:?}");
    assert_eq!(table(&h).await, vec![expected_row(1004, "Aisha", "Khan", "IL", "222334444", 2001, "c")]);
    assert_eq!(h.objects("archive/").await.len(), 1);
}

#[tokio::test]
async fn an_on_failure_record_without_its_payload_is_reported_by_key_and_never_archived() {
    let h = Harness::new("").await;
    h.create_targets(&config(), &event_files()).await;
    let body = on_failure_fixture("s3-maximum-payload-size-exceeded.json");
    let key = on_failure_key(
        "sqlsrv.sampledb.dbo.patientinfo-0",
        "2026-11-20T08.00.05",
        "7e6d5c4b-3a29-4180-9f7e-6d5c4b3a2918",
    );
    put(&h, &key, &body).await;
    let replayer = h.ingestor(config(), KEY);
    for dry_run in [true, false] {
        let request = ReplayRequest { prefix: Some("aws/lambda/".into()), dry_run, ..ReplayRequest::default() };
        let response = replayer.replay(&request, &invocation()).await.unwrap();
        assert_eq!((response.objects_scanned, response.objects_failed, response.objects_archived), (1, 1, 0));
        let report = &response.objects[0];
        assert_eq!((report.key.as_str(), report.outcome), (key.as_str(), ObjectOutcome::Failed));
        let error = report.error.as_deref().unwrap();
        assert!(error.contains("without a payload"), "{error}");
        assert!(error.contains("MaximumPayloadSizeExceeded"), "{error}");
        assert!(error.contains("sqlsrv.sampledb.dbo.patientinfo-0 offsets 0-2"), "{error}");
    }
    assert_eq!(h.objects("aws/lambda/").await, vec![(key, body)], "left in place, unchanged");
    assert!(h.objects("archive/").await.is_empty(), "never archived");
    assert!(h.objects("dead-letter/").await.is_empty());
    assert!(table(&h).await.is_empty());
    let failed = h.metrics.lines().iter().any(|l| l.contains("\"ReplayObjectsFailed\":1.0"));
    assert!(failed, "counted in ReplayObjectsFailed");
}

/// A stack holding five `validate` dead-letter objects: five invocations of the invalid sample.
async fn five_validate_objects() -> Harness {
    let h = Harness::new("").await;
    h.create_targets(&config(), &event_files()).await;
    let ingestor = h.ingestor(config(), KEY);
    let bytes = std::fs::read(events_dir().join("06-patientinfo-invalid.json")).unwrap();
    for _ in 0..5 {
        ingestor.ingest(&bytes, &invocation()).await.unwrap();
    }
    h
}

#[tokio::test]
async fn a_replay_cut_short_resumes_from_next_key_without_loss() {
    let h = five_validate_objects().await;
    let keys: BTreeSet<String> = h.objects("dead-letter/validate/").await.into_iter().map(|o| o.0).collect();
    assert_eq!(keys.len(), 5);
    let replayer = h.ingestor(relaxed_config(), KEY);
    let request = ReplayRequest {
        prefix: Some("dead-letter/validate/".into()),
        max_objects: Some(2),
        ..ReplayRequest::default()
    };
    let first = replayer.replay(&request, &invocation()).await.unwrap();
    assert_eq!(first.objects_archived, 2);
    let next = first.next_key.clone().expect("more to do");
    // A deadline too close for another object: stops at once, same continuation.
    let tight = Invocation {
        request_id: "tight".into(),
        deadline: tokio::time::Instant::now() + Duration::from_secs(1),
        batch_tag: None,
    };
    let stopped =
        replayer.replay(&ReplayRequest { next_key: Some(next.clone()), ..request.clone() }, &tight).await.unwrap();
    assert_eq!((stopped.objects_scanned, stopped.next_key.as_deref()), (0, Some(next.as_str())));
    let mut cursor = Some(next);
    let mut archived = first.objects_archived;
    while let Some(key) = cursor {
        let more =
            replayer.replay(&ReplayRequest { next_key: Some(key), ..request.clone() }, &invocation()).await.unwrap();
        archived += more.objects_archived;
        cursor = more.next_key;
    }
    assert_eq!(archived, 5, "every object archived exactly once");
    assert!(h.objects("dead-letter/validate/").await.is_empty());
    assert_eq!(h.objects("archive/dead-letter/validate/").await.len(), 5);
    let ids: Vec<i32> = table(&h).await.iter().map(|r| r.0).collect();
    assert_eq!(ids, vec![2001, 2002, 2003, 2007, 2008]);
}

#[tokio::test]
async fn a_record_that_keeps_failing_is_quarantined_after_the_attempts_cap() {
    let h = Harness::new("").await;
    h.create_targets(&config(), &event_files()).await;
    let bytes = std::fs::read(events_dir().join("06-patientinfo-invalid.json")).unwrap();
    h.ingestor(config(), KEY).ingest(&bytes, &invocation()).await.unwrap();
    // With the relaxed rules, the two undecodable records and the name too long for its
    // VARCHAR fail on every replay; the rest load on the first.
    let mut replayer = h.ingestor(relaxed_config(), KEY);
    replayer.max_attempts = 2;
    let first = replayer.replay(&ReplayRequest::default(), &invocation()).await.unwrap();
    assert_eq!(first.records_quarantined, 0, "attempt 2 is within the cap");
    let undecodable = |objects: &[(String, String)]| -> Vec<u32> {
        let mut attempts = Vec::new();
        for (_, body) in objects {
            let Contents::DeadLetters(lines) = read(body).unwrap() else { panic!("a dead-letter object") };
            attempts.extend(lines.iter().filter(|l| l.stage == "decode").map(|l| l.attempts));
        }
        attempts
    };
    assert_eq!(undecodable(&h.objects("dead-letter/").await), vec![2, 2]);

    let second = replayer.replay(&ReplayRequest::default(), &invocation()).await.unwrap();
    assert_eq!((second.records_rejected, second.records_quarantined), (3, 3), "{second:?}");
    assert!(undecodable(&h.objects("dead-letter/").await).is_empty(), "left the dead-letter prefix");
    let quarantined = h.objects("quarantine/").await;
    let stages: BTreeSet<&str> = quarantined.iter().map(|(k, _)| k.split('/').nth(1).unwrap()).collect();
    assert_eq!(stages, BTreeSet::from(["decode", "load"]), "{quarantined:?}");
    assert_eq!(undecodable(&quarantined), vec![3, 3], "stored with their attempts, never dropped");
    let counted: usize = h
        .metrics
        .lines()
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|m| m["RecordsQuarantined"].as_f64())
        .map(|n| n as usize)
        .sum();
    assert_eq!(counted, 3, "RecordsQuarantined counts them");

    // A default replay no longer reaches them; one that names the prefix does.
    let third = replayer.replay(&ReplayRequest::default(), &invocation()).await.unwrap();
    assert_eq!(third.objects_scanned, 0, "{third:?}");
    let named = replayer
        .replay(&ReplayRequest { prefix: Some("quarantine/".into()), ..ReplayRequest::default() }, &invocation())
        .await
        .unwrap();
    assert_eq!((named.objects_scanned, named.records_quarantined), (2, 3), "still failing: back to quarantine");
    assert_eq!(h.objects("quarantine/").await.len(), 2, "the replayed ones archived, new ones written");
}

#[tokio::test]
async fn a_replay_reads_only_its_own_bucket() {
    let h = Harness::new("").await;
    let replayer = h.ingestor(config(), KEY);
    let other = ReplayRequest { bucket: Some("someone-elses-phi".into()), ..ReplayRequest::default() };
    let err = replayer.replay(&other, &invocation()).await.unwrap_err();
    assert!(matches!(err, cdc_pipeline::replay::ReplayError::Request(_)), "{err}");
    assert!(err.to_string().contains("DLQ_BUCKET"), "{err}");
    let own = ReplayRequest { bucket: Some(h.bucket.clone()), ..ReplayRequest::default() };
    assert_eq!(replayer.replay(&own, &invocation()).await.unwrap().objects_scanned, 0);
}

#[tokio::test]
async fn a_replay_walks_the_listing_page_by_page() {
    let h = five_validate_objects().await;
    let replayer = h.ingestor(relaxed_config(), KEY);
    // `max_objects = 2` lists three keys a page: an `until` that excludes every object makes
    // the replay read both pages (five objects) and take none.
    let prefix = Some("dead-letter/validate/".to_string());
    let past = ReplayRequest {
        prefix: prefix.clone(),
        max_objects: Some(2),
        until: Some("2000-01-01T00:00:00Z".into()),
        ..ReplayRequest::default()
    };
    let none = replayer.replay(&past, &invocation()).await.unwrap();
    assert_eq!((none.objects_scanned, none.next_key.as_deref()), (0, None), "{none:?}");
    // Without it, two objects per call across page boundaries until none is left.
    let mut cursor = None;
    let mut archived = 0;
    loop {
        let request = ReplayRequest {
            prefix: prefix.clone(),
            max_objects: Some(2),
            next_key: cursor.clone(),
            ..ReplayRequest::default()
        };
        let response = replayer.replay(&request, &invocation()).await.unwrap();
        archived += response.objects_archived;
        match response.next_key {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(archived, 5, "every object archived exactly once");
    assert!(h.objects("dead-letter/validate/").await.is_empty());
    assert_eq!(h.objects("archive/dead-letter/validate/").await.len(), 5);
}
