//! The local stack the integration tests run against: a throwaway PostgreSQL 15 cluster,
//! the Data API emulator in-process, and the real AWS SDK client pointed at it.
//!
//! PostgreSQL comes from [`test_services::database_url`]: `DATABASE_URL`, or a throwaway cluster
//! for this test process; a missing PostgreSQL fails the test with install instructions.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_redshiftdata::config::{BehaviorVersion, Credentials, Region};
use cdc_pipeline::redshift::staging::Staging;
use cdc_pipeline::redshift::{Auth, Backoff, DataApi, Loader, Target};
use redshift_data_local::{EmulatorConfig, RunningEmulator};

pub use test_services::database_url;

/// A direct PostgreSQL connection for setting up and checking tables.
pub async fn pg() -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(database_url(), tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {}: {e}", database_url()));
    tokio::spawn(connection);
    client
}

/// An emulator on a free port, in the current runtime, with the given fault spec ("" for none).
pub async fn emulator(faults: &str) -> RunningEmulator {
    let faults = faults.parse().expect("valid fault spec");
    // COPY reads staged objects from the tests' S3 server.
    let config = EmulatorConfig::new(database_url()).with_faults(faults).with_s3_endpoint(test_services::s3_endpoint());
    redshift_data_local::spawn(config).await.expect("emulator starts")
}

/// The AWS SDK client for the Data API at `endpoint`, as the Lambda builds it
/// ([`cdc_pipeline::redshift::client::sdk_client`]: SDK retries off, the same attempt
/// timeout), with dummy credentials.
pub fn sdk_client(endpoint: &str) -> aws_sdk_redshiftdata::Client {
    cdc_pipeline::redshift::client::sdk_client(
        aws_sdk_redshiftdata::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("test", "test", None, None, "tests"))
            .endpoint_url(endpoint),
    )
}

/// Short backoffs so that retry tests run quickly.
pub const FAST_POLL: Backoff =
    Backoff { initial: Duration::from_millis(5), max: Duration::from_millis(50), factor: 1.5 };
pub const FAST_RETRY: Backoff =
    Backoff { initial: Duration::from_millis(5), max: Duration::from_millis(100), factor: 2.0 };

pub fn target() -> Target {
    Target { auth: Auth::Workgroup { name: "local".into(), secret_arn: None }, database: "postgres".into() }
}

/// The role in the tests' `COPY … IAM_ROLE` (the emulator checks its form, not the role).
pub const COPY_ROLE: &str = "arn:aws:iam::111122223333:role/local-copy";

/// Staged COPY objects at `prefix/` of `bucket` on the tests' S3 server, read as [`COPY_ROLE`].
pub fn staging_at(s3: aws_sdk_s3::Client, bucket: &str, prefix: &str) -> Staging {
    Staging { client: s3, bucket: bucket.into(), prefix: prefix.into(), kms_key_id: None, iam_role: COPY_ROLE.into() }
}

/// Staging in a bucket the tests share (`cdc-test-staging`, created if missing).
pub async fn staging() -> Staging {
    const BUCKET: &str = "cdc-test-staging";
    let s3 = crate::harness::s3_client();
    if let Err(e) = s3.create_bucket().bucket(BUCKET).send().await {
        let code = aws_sdk_s3::error::ProvideErrorMetadata::code(&e).unwrap_or_default().to_owned();
        assert!(code.starts_with("BucketAlready"), "creating the staging bucket: {e:?}");
    }
    staging_at(s3, BUCKET, "staging")
}

/// A loader into the emulator at `endpoint`, staging COPY objects in [`staging`]'s bucket.
pub async fn loader(endpoint: &str) -> Arc<Loader> {
    let api = DataApi::new(sdk_client(endpoint), target()).with_backoff(FAST_POLL, FAST_RETRY);
    Arc::new(Loader::new(api.with_staging(staging().await)))
}

/// A table name no other test uses.
pub fn unique_table(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}

/// The `_cdc_*` metadata columns in PostgreSQL DDL.
pub const METADATA_DDL: &str = "_cdc_position VARCHAR(64) NOT NULL, _cdc_op CHAR(1) NOT NULL, \
    _cdc_deleted BOOLEAN NOT NULL, _cdc_source_ts TIMESTAMP, _cdc_loaded_at TIMESTAMP NOT NULL, \
    _cdc_kafka_topic VARCHAR(249), _cdc_kafka_partition INTEGER, _cdc_kafka_offset BIGINT";

/// Create the delete ledger of `schema` (as `cdc ddl` writes it) unless it exists. Tests share
/// a database, so two may race to create it: the loser's error is expected and ignored.
pub async fn ensure_delete_ledger(pg: &tokio_postgres::Client, schema: &str) {
    let ddl =
        cdc_pipeline::redshift::ddl::create_delete_ledger(schema, cdc_pipeline::redshift::types::DdlFlavor::Postgres);
    for _ in 0..5 {
        if pg.batch_execute(&ddl).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    pg.batch_execute(&ddl).await.unwrap_or_else(|e| panic!("{ddl}: {e}"));
}

/// Create `public.<name>` shaped like the `patientinfo` target, plus `extra` column DDL.
pub async fn create_patient_table(pg: &tokio_postgres::Client, name: &str, extra: &str) {
    let extra = if extra.is_empty() { String::new() } else { format!("{extra}, ") };
    pg.batch_execute(&format!(
        "CREATE TABLE public.{name} (id INTEGER NOT NULL, firstname VARCHAR(100), lastname VARCHAR(100), \
         state CHAR(2), ssn VARCHAR(64), dob TIMESTAMP, {extra}{METADATA_DDL})"
    ))
    .await
    .unwrap_or_else(|e| panic!("create table {name}: {e}"));
    ensure_delete_ledger(pg, "public").await;
}
