//! A whole function's world for one test: its own PostgreSQL database behind the Data API
//! emulator, its own bucket on the S3-protocol server, and an [`Ingestor`] wired to them
//! with the real AWS SDK clients.

use std::sync::Arc;

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use cdc_pipeline::dlq::Store;
use cdc_pipeline::ingest::Ingestor;
use cdc_pipeline::metrics::Captured;
use cdc_pipeline::redshift::types::DdlFlavor;
use cdc_pipeline::redshift::{Auth, DataApi, Loader, Target};
use cdc_pipeline::{Config, MskEvent, Pipeline};
use redshift_data_local::RunningEmulator;

use crate::stack::{FAST_POLL, FAST_RETRY, database_url, emulator, sdk_client};

pub use test_services::s3_endpoint;

use crate::{event_files, example_config};
use cdc_pipeline::ingest::Invocation;
use std::time::Duration;

pub const KEY: &[u8] = b"handler-test-masking-key-0123456789abcdef";

pub fn config() -> Config {
    Config::load(&example_config()).unwrap()
}

/// The example config without its validation rules (`config/replay-relaxed.toml`): what an
/// operator deploys after deciding the rejected records are acceptable after all.
pub fn relaxed_config() -> Config {
    Config::load(&crate::repo_root().join("config/replay-relaxed.toml")).unwrap()
}

/// Ingest `event`, which must succeed with every record accounted for.
pub async fn ingest(ingestor: &Ingestor, event: &str) -> cdc_pipeline::ingest::Processed {
    let summary = ingestor.ingest(event.as_bytes(), &invocation()).await.expect("the batch succeeds");
    assert!(summary.processed.is_balanced(), "every record accounted for: {:?}", summary.processed);
    summary.processed
}

/// `values` as a row of [`Harness::text_rows`].
pub fn some(values: &[&str]) -> Vec<Option<String>> {
    values.iter().map(|v| Some(v.to_string())).collect()
}

pub fn invocation() -> Invocation {
    Invocation::local(Duration::from_secs(120))
}

pub struct Harness {
    pub emulator: RunningEmulator,
    pub database: String,
    pub bucket: String,
    pub s3: aws_sdk_s3::Client,
    pub metrics: Arc<Captured>,
}

pub fn s3_client() -> aws_sdk_s3::Client {
    s3_client_at(s3_endpoint())
}

/// An S3 client for `endpoint` (e.g. a fault-injecting proxy), with the SDK's standard retries.
pub fn s3_client_at(endpoint: &str) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "tests"))
        .endpoint_url(endpoint)
        .force_path_style(true)
        // Standard retries, with test-sized backoff.
        .retry_config(
            aws_sdk_s3::config::retry::RetryConfig::standard()
                .with_initial_backoff(std::time::Duration::from_millis(10))
                .with_max_backoff(std::time::Duration::from_millis(100)),
        )
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

impl Harness {
    /// A fresh database and bucket; `faults` for the emulator ("" for none).
    pub async fn new(faults: &str) -> Harness {
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        let database = format!("db_{suffix}");
        crate::stack::pg().await.batch_execute(&format!("CREATE DATABASE {database}")).await.expect("create database");
        let bucket = format!("dlq-{}", &suffix[..20]);
        let s3 = s3_client();
        s3.create_bucket().bucket(&bucket).send().await.expect("create bucket");
        Harness { emulator: emulator(faults).await, database, bucket, s3, metrics: Arc::new(Captured::default()) }
    }

    /// A connection to this test's database.
    pub async fn sql(&self) -> tokio_postgres::Client {
        let url = database_url();
        let base = url.rsplit_once('/').map_or(url, |(base, _)| base);
        let (client, connection) = tokio_postgres::connect(&format!("{base}/{}", self.database), tokio_postgres::NoTls)
            .await
            .expect("connect");
        tokio::spawn(connection);
        client
    }

    /// Create the targets of `config` for these sample events (PostgreSQL DDL from `cdc ddl`).
    pub async fn create_targets(&self, config: &Config, event_files: &[std::path::PathBuf]) {
        let texts: Vec<Vec<u8>> = event_files.iter().map(|p| std::fs::read(p).expect("event file")).collect();
        let events: Vec<MskEvent<'_>> = texts.iter().map(|t| MskEvent::parse(t).expect("event")).collect();
        let pipeline =
            Pipeline::new(Arc::new(config.clone()), Some(b"ddl-only-key-never-masks-0123456789abcdef")).unwrap();
        let sql = self.sql().await;
        for ddl in cdc_cli::ddl::for_events(&pipeline, &events, DdlFlavor::Postgres) {
            sql.batch_execute(&ddl.sql).await.unwrap_or_else(|e| panic!("{}: {e}", ddl.sql));
        }
    }

    pub fn store(&self) -> Store {
        Store {
            client: self.s3.clone(),
            bucket: self.bucket.clone(),
            prefix: "dead-letter".into(),
            archive_prefix: "archive".into(),
            quarantine_prefix: "quarantine".into(),
            kms_key_id: None,
        }
    }

    /// Staged COPY objects under `staging/` of this test's bucket.
    pub fn staging(&self) -> cdc_pipeline::redshift::staging::Staging {
        crate::stack::staging_at(self.s3.clone(), &self.bucket, "staging")
    }

    pub fn target(&self) -> Target {
        Target { auth: Auth::Workgroup { name: "local".into(), secret_arn: None }, database: self.database.clone() }
    }

    /// An ingestor for this world with `config` and `masking_key`.
    pub fn ingestor(&self, config: Config, masking_key: &[u8]) -> Ingestor {
        self.ingestor_with_store(config, masking_key, self.store())
    }

    pub fn ingestor_with_store(&self, config: Config, masking_key: &[u8], store: Store) -> Ingestor {
        let pipeline = Pipeline::new(Arc::new(config), Some(masking_key)).expect("pipeline");
        let loader = Loader::new(
            DataApi::new(sdk_client(&self.emulator.endpoint_url), self.target())
                .with_backoff(FAST_POLL, FAST_RETRY)
                .with_staging(self.staging()),
        );
        let mut ingestor = Ingestor::new(pipeline, loader, store, self.metrics.clone());
        ingestor.deadline_margin = std::time::Duration::from_millis(200);
        ingestor
    }

    /// Create the targets `cdc ddl` makes for the tables `event`'s records route to.
    pub async fn create_from_event(&self, config: &Config, event: &[u8]) {
        let event = MskEvent::parse(event).expect("event");
        let pipeline =
            Pipeline::new(Arc::new(config.clone()), Some(b"ddl-only-key-never-masks-0123456789abcdef")).unwrap();
        let sql = self.sql().await;
        for table in cdc_cli::ddl::for_events(&pipeline, &[event], DdlFlavor::Postgres) {
            sql.batch_execute(&table.sql).await.unwrap_or_else(|e| panic!("{}: {e}", table.sql));
        }
    }

    /// Every dead letter: (offset, stage, reasons as `column:rule`), sorted.
    pub async fn dead_letters(&self) -> Vec<(i64, String, Vec<String>)> {
        let mut out = Vec::new();
        for (_, body) in self.objects("dead-letter/").await {
            let cdc_pipeline::dlq::Contents::DeadLetters(lines) = cdc_pipeline::dlq::read(&body).expect("dead letters")
            else {
                panic!("dead letters")
            };
            for line in lines {
                let reasons =
                    line.reasons.iter().map(|r| format!("{}:{}", r.column.as_deref().unwrap_or(""), r.rule)).collect();
                out.push((line.offset, line.stage.to_string(), reasons));
            }
        }
        out.sort();
        out
    }

    /// The rows `sql` selects, every value as text.
    pub async fn text_rows(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        self.sql()
            .await
            .simple_query(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .into_iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(row) => {
                    Some((0..row.len()).map(|i| row.get(i).map(str::to_string)).collect())
                }
                _ => None,
            })
            .collect()
    }

    /// Every object under `prefix`, with its body, in key order.
    pub async fn objects(&self, prefix: &str) -> Vec<(String, String)> {
        let listed = self.s3.list_objects_v2().bucket(&self.bucket).prefix(prefix).send().await.expect("list");
        let mut out = Vec::new();
        for object in listed.contents() {
            let key = object.key().unwrap_or_default().to_string();
            let body = self
                .s3
                .get_object()
                .bucket(&self.bucket)
                .key(&key)
                .send()
                .await
                .expect("get")
                .body
                .collect()
                .await
                .unwrap();
            out.push((key, String::from_utf8(body.into_bytes().to_vec()).unwrap()));
        }
        out
    }

    /// Ingest every sample event in order with the example config; the summaries as JSON.
    pub async fn ingest_all_samples(&self) -> Vec<serde_json::Value> {
        let ingestor = self.ingestor(config(), KEY);
        let mut summaries = Vec::new();
        for file in event_files() {
            let bytes = std::fs::read(&file).unwrap();
            let summary =
                ingestor.ingest(&bytes, &invocation()).await.unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            assert!(summary.processed.is_balanced(), "{}: every record accounted for: {summary:?}", file.display());
            summaries.push(serde_json::to_value(&summary).unwrap());
        }
        summaries
    }
}
