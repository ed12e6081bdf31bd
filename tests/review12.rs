//! Review of issue 12 (branch review-12): findings as failing tests.
//!
//! - detect: `[tables.detect]` with an `hmac` mask that has a `salt` rejects every finding
//!   (`mask_key`): the salted key is derived only for `[tables.columns]` masks.
//! - replay: one replay call can take up the dead letters it has just written, so a record
//!   burns several attempts (up to quarantine) in a single call.
//! - replay: `{"prefix": "quarantine"}` (no slash) silently replays nothing.

use std::sync::Arc;
use std::time::Duration;

use cdc_pipeline::dlq::{Contents, read};
use cdc_pipeline::ingest::Invocation;
use cdc_pipeline::replay::ReplayRequest;
use cdc_pipeline::synth::{RecordSpec, msk_event_text};
use cdc_pipeline::{Caches, Config, DecodedBatch, MskEvent, Outcome, Pipeline};
use cdc_tests::debezium::{Source, Table, column};
use cdc_tests::harness::{Harness, KEY};
use serde_json::json;

fn pg(lsn: i64) -> Source {
    Source::Postgres { lsn, sequence: Some((Some(lsn - 1), Some(lsn))), tx_id: 1, ts_ms: 1_718_000_000_000 + lsn }
}

/// A `[tables.detect]` mask may be any mask, `hmac` with a `salt` included (config accepts it,
/// the cold start builds the pipeline). The finding must then be masked under the salted key
/// and loaded, not rejected for a missing key.
#[test]
fn review_a_salted_hmac_detection_mask_masks_instead_of_rejecting() {
    let text = "[[tables]]\ntopic = \"pg.clinic.public.visits\"\ntarget = \"public.visits\"\nkey = [\"id\"]\n\
                [tables.detect]\npolicy = \"mask\"\nmask = { type = \"hmac\", salt = \"visits\" }\n";
    let config = Config::parse(text, "detect.toml").expect("the config is accepted");
    let pipeline = Pipeline::new(Arc::new(config), Some(KEY)).expect("the cold start accepts it");
    let t = Table::new("pg.clinic.public.visits", vec![column("id", "int32"), column("notes", "string")], &["id"]);
    let event = msk_event_text(&[t.record(
        0,
        0,
        "c",
        None,
        Some(json!({"id": 1, "notes": "SSN 219-09-9999 given at intake"})),
        &pg(10),
        true,
    )]);
    let parsed = MskEvent::parse(event.as_bytes()).unwrap();
    let batch = DecodedBatch::from_event(&parsed);
    let outcomes = pipeline.transform(&batch, &mut Caches::default(), 1_800_000_000_000_000);
    match &outcomes[0] {
        Outcome::Change(change) => {
            assert_eq!(change.masked.iter().map(|m| m.as_ref()).collect::<Vec<_>>(), vec!["notes"]);
        }
        Outcome::Reject(reject) => {
            panic!("the finding should be masked and loaded, got a reject: {:?}", reject.reasons)
        }
        Outcome::Skip(reason) => panic!("the finding should be masked and loaded, got a skip: {reason:?}"),
    }
}

fn invocation(request_id: &str) -> Invocation {
    Invocation {
        request_id: request_id.into(),
        deadline: tokio::time::Instant::now() + Duration::from_secs(120),
        batch_tag: None,
    }
}

/// A record that can never load: its value is not base64 (stage `decode`).
fn undecodable_event() -> String {
    let mut spec = RecordSpec::new("pg.clinic.public.visits", 0, 41, 1_718_000_000_000, None, None);
    spec.raw_value = Some("!!! not base64 !!!".into());
    msk_event_text(&[spec])
}

async fn put(h: &Harness, key: &str) {
    h.s3.put_object().bucket(&h.bucket).key(key).body(b"{}\n".to_vec().into()).send().await.unwrap();
}

fn attempts(objects: &[(String, String)]) -> Vec<u32> {
    let mut all = Vec::new();
    for (_, body) in objects {
        if let Ok(Contents::DeadLetters(lines)) = read(body) {
            all.extend(lines.iter().map(|l| l.attempts));
        }
    }
    all
}

/// A replay with `since` (older dead letters left alone) reads the listing page by page. The
/// dead letter it writes for a record that fails again lands in the same prefix, after the
/// object it came from (same stage, topic and partition; today's date; a request id that
/// sorts later). When the next page is fetched after that write, the replay takes up its own
/// output in the same call: the record is replayed again, and again, up to quarantine. Here,
/// with a cap of 2 (the handlers test's "attempt 2 is within the cap"), one call quarantines.
#[tokio::test]
async fn review_one_replay_call_takes_a_record_up_once() {
    let h = Harness::new("").await;
    // Dead letters from before the fix, which the operator leaves alone with `since`.
    for key in ["dead-letter/aaa/1.jsonl", "dead-letter/aaa/2.jsonl", "dead-letter/aaa/3.jsonl"] {
        put(&h, key).await;
    }
    for i in 1..=6 {
        put(&h, &format!("dead-letter/zzz/{i}.jsonl")).await;
    }
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let since = (cdc_pipeline::temporal::now_micros() / 1_000_000 + 1) * 1_000_000;
    let mut since_text = String::new();
    cdc_pipeline::temporal::write_timestamp(&mut since_text, since, 'T');
    since_text.truncate(19);
    since_text.push('Z');
    tokio::time::sleep(Duration::from_millis(2_100)).await;

    let ingestor = h.ingestor(Config::default_routing(), KEY);
    let summary = ingestor.ingest(undecodable_event().as_bytes(), &invocation("a-ingest")).await.unwrap();
    assert_eq!(summary.processed.dead_lettered_total(), 1);
    assert_eq!(h.objects("dead-letter/decode/").await.len(), 1);

    let mut replayer = h.ingestor(Config::default_routing(), KEY);
    replayer.max_attempts = 2;
    let request = ReplayRequest { since: Some(since_text), max_objects: Some(3), ..ReplayRequest::default() };
    let response = replayer.replay(&request, &invocation("b-replay")).await.unwrap();
    let scanned: Vec<&str> = response.objects.iter().map(|o| o.key.as_str()).collect();
    let left = h.objects("dead-letter/decode/").await;
    let quarantined = h.objects("quarantine/").await;
    assert_eq!(
        (response.objects_scanned, response.records_rejected, response.records_quarantined),
        (1, 1, 0),
        "one dead letter, one attempt in one call; scanned {scanned:#?}; dead letters now {:?}, quarantined {:?}",
        attempts(&left),
        attempts(&quarantined),
    );
    assert_eq!(attempts(&left), vec![2]);
}

/// README: "replays it with `"prefix": "quarantine/"`". Without the slash the listing's own
/// skip rule (`quarantine/`) passes over every key it lists: an answer of zero objects, no
/// error.
#[tokio::test]
async fn review_a_quarantine_prefix_without_its_slash_is_replayed_or_refused() {
    let h = Harness::new("").await;
    let ingestor = h.ingestor(Config::default_routing(), KEY);
    ingestor.ingest(undecodable_event().as_bytes(), &invocation("a-ingest")).await.unwrap();
    let (key, body) = h.objects("dead-letter/decode/").await.remove(0);
    let quarantined = key.replacen("dead-letter/", "quarantine/", 1);
    h.s3.put_object().bucket(&h.bucket).key(&quarantined).body(body.into_bytes().into()).send().await.unwrap();
    h.s3.delete_object().bucket(&h.bucket).key(&key).send().await.unwrap();

    let replayer = h.ingestor(Config::default_routing(), KEY);
    let request = ReplayRequest { prefix: Some("quarantine".into()), ..ReplayRequest::default() };
    match replayer.replay(&request, &invocation("b-replay")).await {
        Err(e) => assert!(e.to_string().contains("quarantine"), "{e}"),
        Ok(response) => assert_eq!(response.objects_scanned, 1, "{response:?}"),
    }
}

/// A dry run changes nothing, yet `finish` emits its "would" counts as the real metrics:
/// `RecordsDeadLettered`, `RecordsQuarantined` (which the `<stack>-records-quarantined` alarm
/// watches) and `RecordsLoaded`. An operator previewing a replay pages the on-call.
#[tokio::test]
async fn review_a_dry_run_emits_no_dead_letter_or_quarantine_metrics() {
    let h = Harness::new("").await;
    let ingestor = h.ingestor(Config::default_routing(), KEY);
    ingestor.ingest(undecodable_event().as_bytes(), &invocation("a-ingest")).await.unwrap();
    let before = h.metrics.lines().len();
    let mut replayer = h.ingestor(Config::default_routing(), KEY);
    replayer.max_attempts = 1;
    let request = ReplayRequest { dry_run: true, ..ReplayRequest::default() };
    let response = replayer.replay(&request, &invocation("b-replay")).await.unwrap();
    assert_eq!((response.records_rejected, response.records_quarantined), (1, 1), "{response:?}");
    assert_eq!(h.objects("quarantine/").await.len(), 0, "a dry run writes nothing");
    let emitted: Vec<String> = h.metrics.lines()[before..]
        .iter()
        .filter(|l| ["RecordsDeadLettered\":1", "RecordsQuarantined\":1"].iter().any(|m| l.contains(m)))
        .cloned()
        .collect();
    assert!(emitted.is_empty(), "a dry run counted as real dead letters:\n{}", emitted.join("\n"));
}

/// Pre-existing, found on the way: `transform_record` skips every record of a topic whose name
/// ends in `.transaction` before routing, as Debezium transaction metadata. A source table
/// named `transaction` (billing) has exactly such a topic; its changes are skipped — counted
/// as `skipped: transaction`, never loaded, never dead-lettered — even when a `[[tables]]`
/// entry names that topic. `decode_message` already recognises real transaction metadata by
/// its content.
#[test]
fn review_a_table_named_transaction_is_loaded_not_skipped() {
    let text =
        "[[tables]]\ntopic = \"pg.billing.public.transaction\"\ntarget = \"public.transaction\"\nkey = [\"id\"]\n";
    let config = Config::parse(text, "billing.toml").unwrap();
    let pipeline = Pipeline::new(Arc::new(config), None).unwrap();
    let t =
        Table::new("pg.billing.public.transaction", vec![column("id", "int32"), column("amount", "string")], &["id"]);
    let event = msk_event_text(&[t.record(0, 0, "c", None, Some(json!({"id": 1, "amount": "12.50"})), &pg(10), true)]);
    let parsed = MskEvent::parse(event.as_bytes()).unwrap();
    let batch = DecodedBatch::from_event(&parsed);
    let outcomes = pipeline.transform(&batch, &mut Caches::default(), 1_800_000_000_000_000);
    assert!(
        matches!(&outcomes[0], Outcome::Change(_)),
        "{:?}",
        match &outcomes[0] {
            Outcome::Skip(reason) => format!("skipped: {reason:?}"),
            Outcome::Reject(reject) => format!("rejected: {:?}", reject.reasons),
            Outcome::Change(_) => String::new(),
        }
    );
}
