//! A target the loader cannot load into fails the batch loudly instead of dead-lettering the
//! stream, and a column an operator adds to a warm function's target takes effect at the next
//! batch: the ingest and replay handlers end to end against PostgreSQL behind the Data API
//! emulator and the S3 server. Its own test binary: the log capture sets a thread's tracing
//! dispatcher.

use cdc_pipeline::ingest::IngestError;
use cdc_pipeline::redshift::LoadError;
use cdc_pipeline::replay::{ObjectOutcome, ReplayRequest};
use cdc_tests::LogBuffer;
use cdc_tests::harness::{Harness, KEY, config, ingest, invocation, relaxed_config};
use cdc_tests::{event_files, events_dir};

fn event(name: &str) -> Vec<u8> {
    std::fs::read(events_dir().join(name)).unwrap()
}

/// Ingest the sample event `name`, which must succeed with every record accounted for.
async fn ingest_file(ingestor: &cdc_pipeline::ingest::Ingestor, name: &str) -> cdc_pipeline::ingest::Processed {
    ingest(ingestor, &String::from_utf8(event(name)).unwrap()).await
}

/// JSON log lines of this thread, at `info` and above.
fn capture_logs() -> (LogBuffer, tracing::subscriber::DefaultGuard) {
    let logs = LogBuffer::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_writer(move || writer.clone())
        .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
        .finish();
    (logs, tracing::subscriber::set_default(subscriber))
}

/// The ERROR lines among `logs`, parsed.
fn errors(logs: &LogBuffer) -> Vec<serde_json::Value> {
    let lines = logs.text();
    let parsed = lines.lines().map(|l| serde_json::from_str::<serde_json::Value>(l).expect("JSON log line"));
    parsed.filter(|l| l["level"] == "ERROR").collect()
}

#[tokio::test]
async fn a_warm_ingestor_loads_a_column_added_between_two_batches() {
    let h = Harness::new("").await;
    h.create_targets(&config(), &event_files()).await;
    // The target as an operator made it before the source had `state` (drift = "dlq").
    h.sql().await.batch_execute("ALTER TABLE public.patientinfo DROP COLUMN state").await.unwrap();
    let ingestor = h.ingestor(config(), KEY);
    let first = ingest_file(&ingestor, "01-patientinfo-snapshot.json").await;
    assert_eq!(first.loaded, 0);
    assert!(first.dead_lettered_total() > 0, "the warm cache now holds a target without `state`: {first:?}");
    assert!(h.dead_letters().await.iter().all(|(_, stage, reasons)| stage == "drift" && reasons == &["state:drift"]));
    h.sql().await.batch_execute("ALTER TABLE public.patientinfo ADD COLUMN state CHAR(2)").await.unwrap();
    // The same warm ingestor: no cold start in between.
    let second = ingest_file(&ingestor, "02-patientinfo-create.json").await;
    assert_eq!((second.loaded, second.dead_lettered_total()), (1, 0), "{second:?}");
    let rows = h.text_rows("SELECT id::text, state FROM public.patientinfo").await;
    assert_eq!(rows, vec![vec![Some("1004".to_string()), Some("IL".to_string())]]);
}

#[tokio::test]
async fn a_missing_target_fails_the_batch_naming_the_table_and_dead_letters_nothing() {
    let (logs, _guard) = capture_logs();
    let h = Harness::new("").await;
    let ingestor = h.ingestor(config(), KEY);
    let err = ingestor.ingest(&event("02-patientinfo-create.json"), &invocation()).await.unwrap_err();
    let IngestError::Load(LoadError::TargetTableMissing { table }) = &err else { panic!("{err}") };
    assert_eq!(table.to_string(), "public.patientinfo");
    assert_eq!(err.error_type(), "Load");
    assert!(h.objects("").await.is_empty(), "nothing dead-lettered");
    let errors = errors(&logs);
    let named = errors.iter().find(|l| l["fields"]["table"] == "public.patientinfo").expect("an ERROR line names it");
    let message = named["fields"]["message"].as_str().unwrap();
    assert!(message.contains("target table missing"), "{named}");
    assert!(named["fields"]["fix"].as_str().unwrap().contains("cdc ddl"), "{named}");
    let metrics = h.metrics.lines().join("\n");
    assert!(metrics.contains(r#""TargetTableMissing":1.0"#) && metrics.contains(r#""BatchesFailed":1.0"#), "{metrics}");
}

#[tokio::test]
async fn missing_metadata_columns_fail_the_batch_naming_them() {
    let (logs, _guard) = capture_logs();
    let h = Harness::new("").await;
    h.create_targets(&config(), &event_files()).await;
    h.sql().await.batch_execute("ALTER TABLE public.patientinfo DROP COLUMN _cdc_kafka_offset").await.unwrap();
    let ingestor = h.ingestor(config(), KEY);
    let err = ingestor.ingest(&event("02-patientinfo-create.json"), &invocation()).await.unwrap_err();
    let IngestError::Load(LoadError::MetadataColumnsMissing { columns, .. }) = &err else { panic!("{err}") };
    assert_eq!(columns, &["_cdc_kafka_offset"]);
    assert!(err.to_string().contains("public.patientinfo lacks the metadata columns _cdc_kafka_offset"), "{err}");
    assert!(h.objects("").await.is_empty(), "nothing dead-lettered");
    let errors = errors(&logs);
    assert!(errors.iter().any(|l| l["fields"]["missing"] == "_cdc_kafka_offset"), "{errors:?}");
    assert!(h.metrics.lines().join("\n").contains(r#""TargetMetadataColumnsMissing":1.0"#));
    // Once the column is there, the retried batch loads (the function stays warm).
    h.sql().await.batch_execute("ALTER TABLE public.patientinfo ADD COLUMN _cdc_kafka_offset BIGINT").await.unwrap();
    let loaded = ingest_file(&ingestor, "02-patientinfo-create.json").await;
    assert_eq!(loaded.loaded, 1);
}

#[tokio::test]
async fn a_replay_into_a_missing_target_fails_the_object_and_leaves_it_in_place() {
    let h = Harness::new("").await;
    h.create_targets(&config(), &event_files()).await;
    let objects = ingest_file(&h.ingestor(config(), KEY), "06-patientinfo-invalid.json").await.dead_letter_objects;
    assert!(!objects.is_empty());
    h.sql().await.batch_execute("DROP TABLE public.patientinfo").await.unwrap();
    let replayer = h.ingestor(relaxed_config(), KEY);
    for dry_run in [true, false] {
        let request = ReplayRequest { dry_run, ..ReplayRequest::default() };
        let response = replayer.replay(&request, &invocation()).await.unwrap();
        let failed: Vec<_> = response.objects.iter().filter(|o| o.outcome == ObjectOutcome::Failed).collect();
        // The validate object fails on the missing table; the decode object's records never
        // reach the loader (undecodable), so it is stored again as before.
        assert!(!failed.is_empty(), "dry run {dry_run}: {response:?}");
        for object in failed {
            let error = object.error.as_deref().unwrap();
            assert!(error.contains("target table public.patientinfo does not exist"), "{error}");
        }
    }
    let left: Vec<String> = h.objects("dead-letter/validate/").await.into_iter().map(|(k, _)| k).collect();
    assert!(objects.iter().any(|k| left.contains(k)), "the object stays for a replay after the DDL: {left:?}");
    assert!(h.metrics.lines().join("\n").contains(r#""TargetTableMissing":1.0"#), "the real replay counts it");
}
