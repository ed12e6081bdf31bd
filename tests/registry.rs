//! Issue 16: Avro records read through a schema registry by the functions, into the local
//! warehouse (PostgreSQL behind the Data API emulator) and dead-letter store (moto S3):
//!
//! - AWS Glue Schema Registry served by moto, reached with the real `aws-sdk-glue` client, the
//!   schemas registered by `cdc make-event --avro glue --glue-registry` (which the demo uses);
//! - a Confluent-compatible registry: its REST API as Confluent documents it
//!   (`GET /schemas/ids/{id}` → `{"schema": …}`; unknown id → 404 with `error_code` 40403;
//!   <https://docs.confluent.io/platform/current/schema-registry/develop/api.html>), served
//!   here from `events/avro/schemas/`, behind HTTP basic auth. Only a real registry can confirm
//!   more than the documented API (the opt-in contract suite has none).
//!
//! The rows an Avro event loads must be the rows its JSON twin loads; an unknown schema
//! rejects its own record (`avro_schema_unknown`, a dead letter); a registry that does not
//! answer fails the batch without rejecting anything; the deployed ingest binary does the
//! same.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use base64::Engine as _;
use cdc_pipeline::ingest::IngestError;
use cdc_pipeline::registry::{Confluent, Registry, SchemaCache};
use cdc_tests::harness::{Harness, KEY, config, invocation, s3_endpoint};
use cdc_tests::{events_dir, repo_root};

/// The JSON samples whose Avro renderings are in `events/avro/`.
const SAMPLES: [&str; 4] =
    ["01-patientinfo-snapshot", "02-patientinfo-create", "03-patientinfo-update", "04-patientinfo-delete"];

fn sample_paths() -> Vec<std::path::PathBuf> {
    SAMPLES.iter().map(|n| events_dir().join(format!("{n}.json"))).collect()
}

/// The AWS SDK's configuration for the local moto server (Secrets Manager, Glue).
fn moto_sdk() -> aws_config::SdkConfig {
    aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_secretsmanager::config::SharedCredentialsProvider::new(
            aws_sdk_secretsmanager::config::Credentials::new("test", "test", None, None, "tests"),
        ))
        .endpoint_url(s3_endpoint())
        .build()
}

fn glue_client(endpoint: &str) -> aws_sdk_glue::Client {
    let config = aws_sdk_glue::Config::builder()
        .behavior_version(aws_sdk_glue::config::BehaviorVersion::latest())
        .region(aws_sdk_glue::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_glue::config::Credentials::new("test", "test", None, None, "tests"))
        .endpoint_url(endpoint)
        .build();
    aws_sdk_glue::Client::from_conf(config)
}

/// Samples 01–04 as one Avro event in Glue's wire format, their schemas registered in the
/// Glue registry `registry` on moto by `cdc make-event --glue-registry`.
fn glue_event(registry: &str) -> String {
    glue_event_with(registry, &[])
}

/// [`glue_event`] with more `cdc make-event` flags.
fn glue_event_with(registry: &str, flags: &[&str]) -> String {
    let out = std::process::Command::new(cdc_tests::cli::cdc_binary())
        .args(["make-event", "--avro", "glue", "--glue-registry", registry])
        .args(flags)
        .args(sample_paths())
        .env_clear()
        .envs([
            ("AWS_ENDPOINT_URL_GLUE", s3_endpoint()),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
            ("AWS_CONFIG_FILE", "/dev/null"),
            ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "cdc make-event --glue-registry: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

const ROWS: &str = "SELECT id, firstname, lastname, state, ssn, dob, _cdc_position, _cdc_op, _cdc_deleted, \
                    _cdc_source_ts, _cdc_kafka_offset FROM public.patientinfo ORDER BY id";
const LEDGER: &str =
    "SELECT _cdc_table, _cdc_key, _cdc_position, _cdc_kafka_offset FROM public._cdc_deletes ORDER BY 2";

/// The rows and delete ledger the JSON samples 01–04 leave, ingested one event at a time.
async fn json_twin_rows() -> (Vec<Vec<Option<String>>>, Vec<Vec<Option<String>>>) {
    let h = Harness::new("").await;
    h.create_targets(&config(), &sample_paths()).await;
    let ingestor = h.ingestor(config(), KEY);
    for path in sample_paths() {
        cdc_tests::harness::ingest(&ingestor, &std::fs::read_to_string(path).unwrap()).await;
    }
    let (rows, ledger) = (h.text_rows(ROWS).await, h.text_rows(LEDGER).await);
    // Four patients, one of them soft-deleted (the example config keeps deleted rows).
    assert_eq!(rows.len(), 4, "{rows:?}");
    assert_eq!(rows.iter().filter(|r| r[8].as_deref() == Some("t")).count(), 1, "{rows:?}");
    (rows, ledger)
}

/// A record framed under a schema no registry has: Glue's or Confluent's header, any datum.
fn unknown_schema_event(frame: &[u8]) -> String {
    let value = base64::engine::general_purpose::STANDARD.encode(frame);
    serde_json::json!({"eventSource": "aws:kafka", "records": {"sqlsrv.sampledb.dbo.patientinfo-0": [
        {"topic": "sqlsrv.sampledb.dbo.patientinfo", "partition": 0, "offset": 50, "timestamp": 1,
         "timestampType": "CREATE_TIME", "key": null, "value": value, "headers": []}]}})
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn glue_avro_records_load_the_rows_of_their_json_twins_and_schemas_are_read_once() {
    let registry = format!("cdc-test-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let event = glue_event(&registry);
    let h = Harness::new("").await;
    h.create_targets(&config(), &sample_paths()).await;
    let mut ingestor = h.ingestor(config(), KEY);
    let calls = Arc::new(AtomicUsize::new(0));
    let glue = aws_sdk_glue::Client::from_conf(
        glue_client(s3_endpoint()).config().to_builder().interceptor(Counting(calls.clone())).build(),
    );
    ingestor.schemas = Some(SchemaCache::new(Registry::Glue(glue)));
    let first = cdc_tests::harness::ingest(&ingestor, &event).await;
    assert_eq!(first.dead_lettered_total(), 0, "{first:?}");
    assert!(first.loaded >= 4, "{first:?}");
    let (rows, ledger) = json_twin_rows().await;
    assert_eq!(h.text_rows(ROWS).await, rows, "the Avro event loads the JSON samples' rows");
    assert_eq!(h.text_rows(LEDGER).await, ledger, "and their delete ledger");

    // The schemas are kept for the function's life: one GetSchemaVersion per schema (a key
    // schema and a value schema), however often the event comes again.
    assert_eq!(calls.load(Ordering::SeqCst), 2, "one Glue call per schema");
    let again = cdc_tests::harness::ingest(&ingestor, &event).await;
    assert_eq!((again.loaded, again.dead_lettered_total()), (0, 0), "{again:?}");
    assert_eq!(again.stale + again.superseded + again.skipped_total(), again.records_received);
    assert_eq!(calls.load(Ordering::SeqCst), 2, "a warm function asks Glue no more");
}

/// Counts the requests a client sends.
#[derive(Debug)]
struct Counting(Arc<AtomicUsize>);

impl aws_sdk_glue::config::Intercept for Counting {
    fn name(&self) -> &'static str {
        "Counting"
    }

    fn read_before_transmit(
        &self,
        _: &aws_sdk_glue::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _: &aws_sdk_glue::config::RuntimeComponents,
        _: &mut aws_sdk_glue::config::ConfigBag,
    ) -> Result<(), aws_sdk_glue::error::BoxError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_glue_registry_fails_the_batch_and_rejects_nothing() {
    let h = Harness::new("").await;
    h.create_targets(&config(), &sample_paths()).await;
    let event = std::fs::read_to_string(events_dir().join("avro/glue-patientinfo.json")).unwrap();
    let mut ingestor = h.ingestor(config(), KEY);
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    ingestor.schemas = Some(SchemaCache::new(Registry::Glue(glue_client(&format!("http://{closed}")))));
    let error = ingestor.ingest(event.as_bytes(), &invocation()).await.unwrap_err();
    assert!(matches!(error, IngestError::SchemaRegistry(ref e) if e.registry == "glue"), "{error}");
    assert_eq!(error.error_type(), "SchemaRegistry");
    assert!(h.objects("dead-letter/").await.is_empty(), "an outage rejects no record");
    assert!(h.text_rows(ROWS).await.is_empty(), "and loads nothing");

    // A Glue registry that answers, but has no such version: that record alone is rejected.
    let mut ingestor = h.ingestor(config(), KEY);
    ingestor.schemas = Some(SchemaCache::new(Registry::Glue(glue_client(s3_endpoint()))));
    let frame = [&[3u8, 0][..], &[0x42; 16], &[0, 2]].concat();
    let processed = cdc_tests::harness::ingest(&ingestor, &unknown_schema_event(&frame)).await;
    assert_eq!(processed.dead_lettered_total(), 1);
    assert_eq!(h.dead_letters().await, [(50, "decode".to_string(), vec![":avro_schema_unknown".to_string()])]);
}

/// A Confluent-compatible registry on a local port: `GET /schemas/ids/{id}` from
/// `events/avro/schemas/confluent-<id>.avsc`, behind basic auth `cdc:<password>` (`s3cret`
/// until a test changes it); id 77 is a Protobuf schema, id 88 schema 2 with
/// `"references": null`, id 301 a redirect, id 503 answers 503. Counts the requests it answers.
struct ConfluentServer {
    url: String,
    requests: Arc<AtomicUsize>,
    password: Arc<std::sync::Mutex<String>>,
}

async fn confluent_server() -> ConfluentServer {
    use axum::extract::{Path, State};
    use axum::http::{HeaderMap, StatusCode};
    let mut schemas: HashMap<u32, String> = HashMap::new();
    for entry in std::fs::read_dir(repo_root().join("events/avro/schemas")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        if let Some(id) = name.strip_prefix("confluent-").and_then(|n| n.strip_suffix(".avsc")) {
            schemas.insert(id.parse().unwrap(), std::fs::read_to_string(&path).unwrap());
        }
    }
    let requests = Arc::new(AtomicUsize::new(0));
    let password = Arc::new(std::sync::Mutex::new("s3cret".to_string()));
    let state = (Arc::new(schemas), requests.clone(), password.clone());
    type Shared = (Arc<HashMap<u32, String>>, Arc<AtomicUsize>, Arc<std::sync::Mutex<String>>);
    async fn by_id(
        State((schemas, requests, password)): State<Shared>,
        Path(id): Path<u32>,
        headers: HeaderMap,
    ) -> (StatusCode, String) {
        requests.fetch_add(1, Ordering::SeqCst);
        let password = password.lock().unwrap().clone();
        let expected = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("cdc:{password}")));
        if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
            return (StatusCode::UNAUTHORIZED, r#"{"error_code":401,"message":"Unauthorized"}"#.into());
        }
        match id {
            503 => (StatusCode::SERVICE_UNAVAILABLE, "{}".into()),
            301 => (StatusCode::MOVED_PERMANENTLY, String::new()),
            88 => (StatusCode::OK, serde_json::json!({"schema": schemas[&2], "references": null}).to_string()),
            77 => (
                StatusCode::OK,
                serde_json::json!({"schemaType": "PROTOBUF", "schema": "syntax = \"proto3\"; message M {}"})
                    .to_string(),
            ),
            id => match schemas.get(&id) {
                Some(text) => (StatusCode::OK, serde_json::json!({"schema": text}).to_string()),
                None => (StatusCode::NOT_FOUND, format!(r#"{{"error_code":40403,"message":"Schema {id} not found"}}"#)),
            },
        }
    }
    let app = axum::Router::new().route("/schemas/ids/{id}", axum::routing::get(by_id)).with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    ConfluentServer { url, requests, password }
}

fn confluent(url: &str, credentials: Option<(&str, &str)>) -> SchemaCache {
    SchemaCache::new(Registry::Confluent(Box::new(Confluent::new(url, credentials, Duration::from_secs(5)).unwrap())))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confluent_registry_with_basic_auth_gives_the_json_twins_rows_and_each_failure_its_answer() {
    let server = confluent_server().await;
    let event = std::fs::read_to_string(events_dir().join("avro/confluent-patientinfo.json")).unwrap();
    let h = Harness::new("").await;
    h.create_targets(&config(), &sample_paths()).await;

    // Wrong credentials: the registry refuses, the batch fails, nothing is rejected.
    let mut ingestor = h.ingestor(config(), KEY);
    ingestor.schemas = Some(confluent(&server.url, Some(("cdc", "wrong"))));
    let error = ingestor.ingest(event.as_bytes(), &invocation()).await.unwrap_err();
    assert!(matches!(error, IngestError::SchemaRegistry(ref e) if e.detail == "HTTP 401"), "{error}");
    assert!(!error.to_string().contains("wrong"), "{error}");
    assert!(h.objects("dead-letter/").await.is_empty());

    let mut ingestor = h.ingestor(config(), KEY);
    ingestor.schemas = Some(confluent(&server.url, Some(("cdc", "s3cret"))));
    let before = server.requests.load(Ordering::SeqCst);
    let processed = cdc_tests::harness::ingest(&ingestor, &event).await;
    assert_eq!(processed.dead_lettered_total(), 0, "{processed:?}");
    assert_eq!(server.requests.load(Ordering::SeqCst) - before, 2, "one request per schema: key and value");
    let (rows, ledger) = json_twin_rows().await;
    assert_eq!(h.text_rows(ROWS).await, rows);
    assert_eq!(h.text_rows(LEDGER).await, ledger);
    cdc_tests::harness::ingest(&ingestor, &event).await;
    assert_eq!(server.requests.load(Ordering::SeqCst) - before, 2, "a warm function asks no more");

    // An unknown id (404, 40403) and a Protobuf schema reject their own records; a registry
    // error (503) fails the batch.
    let unknown = unknown_schema_event(&[0, 0, 0, 0x03, 0xe7, 0, 2]);
    cdc_tests::harness::ingest(&ingestor, &unknown).await;
    let protobuf = unknown_schema_event(&[0, 0, 0, 0, 77, 0, 2]).replace("\"offset\":50", "\"offset\":51");
    cdc_tests::harness::ingest(&ingestor, &protobuf).await;
    assert_eq!(
        h.dead_letters().await,
        [
            (50, "decode".to_string(), vec![":avro_schema_unknown".to_string()]),
            (51, "decode".to_string(), vec![":avro_schema".to_string()])
        ]
    );
    let failing = unknown_schema_event(&[0, 0, 0, 0x01, 0xf7, 0, 2]);
    let error = ingestor.ingest(failing.as_bytes(), &invocation()).await.unwrap_err();
    assert!(
        matches!(error, IngestError::SchemaRegistry(ref e) if e.detail == "HTTP 503" && e.schema == "confluent:503"),
        "{error}"
    );
}

/// `event` with one more record (offset 999): its first value's datum cut right after a union
/// branch index, which apache-avro 0.22 reads as a null branch and the pipeline refuses
/// (`avro_data`) after `Value::validate`.
fn with_cut_union(event: &str) -> String {
    let mut parsed: serde_json::Value = serde_json::from_str(event).unwrap();
    let group = parsed["records"].as_object_mut().unwrap().values_mut().next().unwrap().as_array_mut().unwrap();
    let mut record = group[0].clone();
    let frame = base64::engine::general_purpose::STANDARD.decode(record["value"].as_str().unwrap()).unwrap();
    let cut =
        (1..16).map(|k| &frame[..frame.len() - k]).find(|f| f.last() == Some(&2)).expect("a union index near the end");
    record["value"] = base64::engine::general_purpose::STANDARD.encode(cut).into();
    record["offset"] = 999.into();
    group.push(record);
    parsed.to_string()
}

/// The deployed ingest binary (release build, Lambda's environment, settings as the template
/// sets them): with `SCHEMA_REGISTRY=confluent` (credentials from moto's Secrets Manager) and
/// with `SCHEMA_REGISTRY=glue` (moto's Glue), it loads the Avro samples' rows; its output names
/// no value of the samples and not the registry's password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deployed_ingest_function_reads_avro_through_both_registries_and_logs_no_value() {
    use cdc_tests::functions::{Function, lambda_environment};
    use cdc_tests::lambda_api::{Outcome, RuntimeApi};
    let server = confluent_server().await;
    let sdk = moto_sdk();
    let secret = aws_sdk_secretsmanager::Client::new(&sdk)
        .create_secret()
        .name(format!("registry-basic-auth-{}", uuid::Uuid::new_v4()))
        .secret_string(r#"{"username": "cdc", "password": "s3cret"}"#)
        .send()
        .await
        .expect("moto serves Secrets Manager at the local S3 endpoint");
    // The masking key the in-process twin uses, so that the masked columns compare too.
    let masking_key = aws_sdk_secretsmanager::Client::new(&sdk)
        .create_secret()
        .name(format!("registry-test-masking-key-{}", uuid::Uuid::new_v4()))
        .secret_string(std::str::from_utf8(KEY).unwrap())
        .send()
        .await
        .unwrap();
    let glue_registry = format!("cdc-fn-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let glue_event = glue_event(&glue_registry);
    let confluent_event =
        with_cut_union(&std::fs::read_to_string(events_dir().join("avro/confluent-patientinfo.json")).unwrap());
    let (rows, _) = json_twin_rows().await;
    for (registry, event) in [("confluent", &confluent_event), ("glue", &glue_event)] {
        let h = Harness::new("").await;
        h.create_targets(&config(), &sample_paths()).await;
        let api = RuntimeApi::start().await;
        let mut env = lambda_environment("ingest", &api);
        let config_path = repo_root().join("config/pipeline.toml").to_string_lossy().into_owned();
        for (k, v) in [
            ("CDC_CONFIG", config_path.as_str()),
            ("REDSHIFT_DATABASE", h.database.as_str()),
            ("REDSHIFT_WORKGROUP", "local"),
            ("DLQ_BUCKET", h.bucket.as_str()),
            ("REDSHIFT_COPY_ROLE_ARN", cdc_tests::stack::COPY_ROLE),
            ("MASKING_KEY_SECRET_ARN", masking_key.arn().unwrap()),
            ("SCHEMA_REGISTRY", registry),
            ("AWS_ENDPOINT_URL_REDSHIFT_DATA", h.emulator.endpoint_url.as_str()),
            ("AWS_ENDPOINT_URL_S3", s3_endpoint()),
            ("AWS_ENDPOINT_URL_SECRETS_MANAGER", s3_endpoint()),
            ("AWS_ENDPOINT_URL_GLUE", s3_endpoint()),
            ("LOG_LEVEL", "debug"),
        ] {
            env.insert(k.into(), v.into());
        }
        if registry == "confluent" {
            // http:// with credentials is refused unless the host is a loopback address.
            env.insert("SCHEMA_REGISTRY_URL".into(), server.url.clone());
            env.insert("SCHEMA_REGISTRY_SECRET_ARN".into(), secret.arn().unwrap().into());
        }
        let function = Function::spawn("ingest", &env).ready(&api, Duration::from_secs(30)).await;
        let outcome = api.invoke(event.clone().into_bytes(), Duration::from_secs(60)).await;
        let output = function.stop().await;
        let Outcome::Response(summary) = &outcome else { panic!("{registry}: {outcome:?}\n{}", output.text()) };
        // The Confluent event carries one more record, cut short: rejected (avro_data) on its
        // own. apache-avro describes such a value, names and SSN included, to the `log` crate:
        // nothing may reach the output.
        let rejected = if registry == "confluent" { 1 } else { 0 };
        assert_eq!(summary["dead_letter_objects"].as_array().map(Vec::len), Some(rejected), "{registry}: {summary}");
        assert_eq!(h.text_rows(ROWS).await, rows, "{registry}: the JSON samples' rows");
        let text = output.text();
        for value in ["John", "Smith", "Garcia", "123456789", "987654321", "s3cret"] {
            assert!(!text.contains(value), "{registry}: the function's output shows {value}:\n{text}");
        }
    }
}

/// The event source mapping's own registry integration (`EventRecordFormat` `SOURCE`): each
/// datum without its header, the Glue schema version id in `valueSchemaMetadata`. Without a
/// registry the function rejects them (`converter_binary`), and the dead letters keep the
/// metadata, so that a replay by a function with the registry loads the JSON twins' rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_the_trigger_deserialized_load_and_their_dead_letters_replay_with_their_schema_ids() {
    use cdc_pipeline::replay::ReplayRequest;
    let registry = format!("cdc-src-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let event = glue_event_with(&registry, &["--registry-integration"]);
    let parsed: serde_json::Value = serde_json::from_str(&event).unwrap();
    let first = &parsed["records"]["sqlsrv.sampledb.dbo.patientinfo-0"][0];
    assert_eq!(first["valueSchemaMetadata"]["dataFormat"], "AVRO", "{first}");
    let h = Harness::new("").await;
    h.create_targets(&config(), &sample_paths()).await;

    let without = h.ingestor(config(), KEY);
    let rejected = cdc_tests::harness::ingest(&without, &event).await;
    assert_eq!(rejected.dead_lettered_total(), rejected.records_received);
    let objects = h.objects("dead-letter/").await;
    assert!(objects.iter().all(|(_, body)| body.contains("\"valueSchemaMetadata\"")), "the metadata is kept");

    let mut replayer = h.ingestor(config(), KEY);
    replayer.schemas = Some(SchemaCache::new(Registry::Glue(glue_client(s3_endpoint()))));
    let replayed = replayer.replay(&ReplayRequest::default(), &invocation()).await.unwrap();
    assert_eq!((replayed.objects_failed, replayed.records_rejected), (0, 0), "{replayed:?}");
    let (rows, _) = json_twin_rows().await;
    assert_eq!(h.text_rows(ROWS).await, rows);

    // The same records ingested directly load the same rows in a fresh world.
    let h = Harness::new("").await;
    h.create_targets(&config(), &sample_paths()).await;
    let mut ingestor = h.ingestor(config(), KEY);
    ingestor.schemas = Some(SchemaCache::new(Registry::Glue(glue_client(s3_endpoint()))));
    let processed = cdc_tests::harness::ingest(&ingestor, &event).await;
    assert_eq!(processed.dead_lettered_total(), 0, "{processed:?}");
    assert_eq!(h.text_rows(ROWS).await, rows);
}

/// The registry's answers the client must read right: an id no Confluent registry can hold
/// (above 2^31 − 1) is unknown without a request; `"references": null` is no reference; a
/// redirect fails the batch saying it is not followed; a password rotated in Secrets Manager
/// is read again on the registry's 401 and the request retried once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confluent_answers_and_a_rotated_password() {
    let server = confluent_server().await;
    let sdk = moto_sdk();
    let secrets = aws_sdk_secretsmanager::Client::new(&sdk);
    let name = format!("registry-rotation-{}", uuid::Uuid::new_v4());
    let created = secrets
        .create_secret()
        .name(&name)
        .secret_string(r#"{"username": "cdc", "password": "s3cret"}"#)
        .send()
        .await
        .unwrap();
    let arn = created.arn().unwrap().to_string();
    let client = Confluent::new(&server.url, Some(("cdc", "s3cret")), Duration::from_secs(5))
        .unwrap()
        .refreshing_from(secrets.clone(), arn.clone());
    let cache = SchemaCache::new(Registry::Confluent(Box::new(client)));
    use cdc_pipeline::avro::frame::SchemaRef;
    use cdc_pipeline::registry::Lookup;

    let before = server.requests.load(Ordering::SeqCst);
    let found = cache.resolve(&[SchemaRef::Confluent(u32::MAX), SchemaRef::Confluent(88)]).await.unwrap();
    assert!(matches!(found[&SchemaRef::Confluent(u32::MAX)], Lookup::Unknown));
    assert!(matches!(found[&SchemaRef::Confluent(88)], Lookup::Found(_)), "references: null is no reference");
    assert_eq!(server.requests.load(Ordering::SeqCst) - before, 1, "no request for an impossible id");

    let error = cache.resolve(&[SchemaRef::Confluent(301)]).await.unwrap_err();
    assert!(error.detail.contains("redirects are not followed"), "{error}");

    // The password rotates: the registry and the secret both change; the client's copy is old.
    *server.password.lock().unwrap() = "n3w-s3cret".into();
    secrets
        .put_secret_value()
        .secret_id(&arn)
        .secret_string(r#"{"username": "cdc", "password": "n3w-s3cret"}"#)
        .send()
        .await
        .unwrap();
    let found = cache.resolve(&[SchemaRef::Confluent(1)]).await.unwrap();
    assert!(matches!(found[&SchemaRef::Confluent(1)], Lookup::Found(_)), "read again after the 401");
    // Wrong in the secret too: the batch fails, naming the status, never the password.
    *server.password.lock().unwrap() = "other".into();
    let error = cache.resolve(&[SchemaRef::Confluent(2)]).await.unwrap_err();
    assert_eq!(error.detail, "HTTP 401");
    assert!(!format!("{error:?} {:?}", cache).contains("n3w-s3cret"), "{error:?}");
}
