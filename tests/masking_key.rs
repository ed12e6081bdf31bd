//! The masking key from Secrets Manager (moto's, through the real SDK client): a cold start
//! reads the version `MASKING_KEY_VERSION` pins — a `VersionId` or a staging label — or
//! `AWSCURRENT`, and every dead letter records the version it was masked under. This is what
//! the README's rotation procedure stands on.

use aws_config::{BehaviorVersion, Region};
use aws_sdk_s3::config::Credentials;
use cdc_pipeline::dlq::{Contents, read};
use cdc_pipeline::settings::MaskingKeySource;
use cdc_pipeline::wiring::masking_key;
use cdc_tests::events_dir;
use cdc_tests::harness::{Harness, config, invocation, s3_endpoint};

const OLD: &str = "old-masking-key-0123456789abcdef0123456789";
const NEW: &str = "new-masking-key-fedcba9876543210fedcba9876";

/// An SDK config whose every service (Secrets Manager included) is the local moto server.
fn moto() -> aws_config::SdkConfig {
    aws_config::SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(aws_sdk_s3::config::SharedCredentialsProvider::new(Credentials::new(
            "test", "test", None, None, "tests",
        )))
        .endpoint_url(s3_endpoint())
        .build()
}

#[tokio::test]
async fn a_cold_start_reads_the_pinned_version_or_the_current_one() {
    let sdk = moto();
    let client = aws_sdk_secretsmanager::Client::new(&sdk);
    let name = format!("masking-key-{}", uuid::Uuid::new_v4());
    let created = client.create_secret().name(&name).secret_string(OLD).send().await.expect(
        "moto serves Secrets Manager at the local S3 endpoint (LOCAL_S3_ENDPOINT, when set, must be a moto server)",
    );
    let arn = created.arn().unwrap().to_string();
    let old_version = created.version_id().unwrap().to_string();
    let rotated = client.put_secret_value().secret_id(&arn).secret_string(NEW).send().await.unwrap();
    let new_version = rotated.version_id().unwrap().to_string();
    assert_ne!(old_version, new_version);

    let read = |version: Option<&str>| {
        let source = MaskingKeySource::Secret { arn: arn.clone(), version: version.map(str::to_string) };
        let sdk = sdk.clone();
        async move { masking_key(&sdk, &source).await.unwrap() }
    };
    assert_eq!(read(None).await, (Some(NEW.as_bytes().to_vec()), Some(new_version.clone())), "AWSCURRENT");
    assert_eq!(read(Some(&old_version)).await, (Some(OLD.as_bytes().to_vec()), Some(old_version.clone())));
    assert_eq!(read(Some("AWSPREVIOUS")).await, (Some(OLD.as_bytes().to_vec()), Some(old_version.clone())));
    assert_eq!(read(Some("AWSCURRENT")).await.1, Some(new_version));

    let missing = MaskingKeySource::Secret { arn: arn.clone(), version: Some(uuid::Uuid::new_v4().to_string()) };
    let err = masking_key(&sdk, &missing).await.unwrap_err().to_string();
    assert!(!err.contains(OLD) && !err.contains(NEW), "{err}");
}

#[tokio::test]
async fn every_dead_letter_records_the_key_version_it_was_masked_under() {
    let h = Harness::new("").await;
    let mut ingestor = h.ingestor(config(), OLD.as_bytes());
    ingestor.pipeline.key_version = Some("3f6c0a4e-version-under-test".into());
    let bytes = std::fs::read(events_dir().join("06-patientinfo-invalid.json")).unwrap();
    h.create_targets(&config(), &cdc_tests::event_files()).await;
    ingestor.ingest(&bytes, &invocation()).await.unwrap();
    let objects = h.objects("dead-letter/").await;
    assert!(!objects.is_empty());
    for (_, body) in objects {
        let Contents::DeadLetters(lines) = read(&body).unwrap() else { panic!("dead letters") };
        for line in lines {
            assert_eq!(line.mask_key_version.as_deref(), Some("3f6c0a4e-version-under-test"));
        }
    }
}
