//! Cold start: settings → configuration, masking key and AWS clients → an [`Ingestor`].
//! The binaries stay thin; `cdc ingest`/`cdc replay` build the same thing.

use std::sync::Arc;
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;

use crate::config::{Config, ConfigError};
use crate::dlq::Store;
use crate::ingest::Ingestor;
use crate::metrics::MetricsSink;
use crate::redshift::{DataApi, Loader};
use crate::settings::{ConfigSource, MaskingKeySource, Settings};
use crate::transform::{Pipeline, PipelineError};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("configuration: {0}")]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Pipeline(#[from] PipelineError),
    #[error("reading the masking key from MASKING_KEY_SECRET_ARN failed: {0}")]
    Secret(String),
    #[error("reading the columns of {table} failed: {source}")]
    DescribeTable {
        table: crate::config::TableName,
        #[source]
        source: crate::redshift::DataApiError,
    },
    #[error(
        "the config names columns that {table} does not have: {columns} (a misspelt column would leave the real one unmasked; fix the config)"
    )]
    UnknownColumns { table: crate::config::TableName, columns: String },
}

/// Every column the config names must be a column of its target (`DescribeTable`): a mask
/// under a misspelt name guards nothing. A target that does not exist yet, or whose columns
/// the pipeline adds itself (`drift = "add"`), is checked record by record instead (rule
/// `unknown_column`).
pub async fn check_configured_columns(api: &DataApi, config: &Config) -> Result<(), StartError> {
    let session = api.session();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    for table in config.tables.iter().filter(|t| !t.columns.is_empty() && t.drift != crate::config::DriftPolicy::Add) {
        let target = session
            .describe_table(&table.target, deadline)
            .await
            .map_err(|source| StartError::DescribeTable { table: table.target.clone(), source })?;
        if !target.exists() {
            tracing::warn!(table = %table.target, "the target does not exist yet: its configured columns are checked record by record");
            continue;
        }
        let mut missing: Vec<&str> =
            table.columns.keys().map(|c| c.as_ref()).filter(|c| target.column(c).is_none()).collect();
        if !missing.is_empty() {
            missing.sort_unstable();
            return Err(StartError::UnknownColumns { table: table.target.clone(), columns: missing.join(", ") });
        }
    }
    Ok(())
}

/// The configuration named by the settings.
pub fn load_config(source: &ConfigSource) -> Result<Config, ConfigError> {
    match source {
        ConfigSource::File(path) => Config::load(path),
        ConfigSource::DefaultRouting => Ok(Config::default_routing()),
    }
}

/// The masking key and its version. A cold start reads the key once and keeps it: every
/// invocation of a container masks with one version. Pinning `MASKING_KEY_VERSION` makes every
/// container use the same one (README, "Masking key rotation").
pub async fn masking_key(
    sdk: &aws_config::SdkConfig,
    source: &MaskingKeySource,
) -> Result<(Option<Vec<u8>>, Option<String>), StartError> {
    match source {
        MaskingKeySource::None => Ok((None, None)),
        MaskingKeySource::Inline(key) => Ok((Some(key.clone()), None)),
        MaskingKeySource::Secret { arn, version } => {
            let client = aws_sdk_secretsmanager::Client::new(sdk);
            let mut request = client.get_secret_value().secret_id(arn);
            request = match version {
                // Staging labels are upper case (AWSCURRENT, AWSPREVIOUS, AWSPENDING, custom);
                // version ids are UUIDs.
                Some(v) if uuid::Uuid::parse_str(v).is_ok() => request.version_id(v),
                Some(v) => request.version_stage(v),
                None => request,
            };
            let output = request.send().await.map_err(|e| {
                use aws_sdk_secretsmanager::error::ProvideErrorMetadata;
                StartError::Secret(e.code().unwrap_or("request failed").to_string())
            })?;
            let version = output.version_id().map(str::to_string);
            let key = match (output.secret_string(), output.secret_binary()) {
                (Some(text), _) => text.as_bytes().to_vec(),
                (None, Some(bytes)) => bytes.as_ref().to_vec(),
                (None, None) => return Err(StartError::Secret("the secret has no value".into())),
            };
            tracing::info!(mask_key_version = version.as_deref().unwrap_or("unknown"), "masking key loaded");
            Ok((Some(key), version))
        }
    }
}

/// A custom S3 endpoint (local S3 server) needs path-style addressing.
fn custom_s3_endpoint() -> bool {
    ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"].iter().any(|v| std::env::var_os(v).is_some_and(|x| !x.is_empty()))
}

/// The Data API client the functions use (and the contract suite, `make contract`). The
/// pipeline retries Data API calls itself, within the invocation's deadline, so the SDK's
/// retries are off; an attempt may take 15 s (above the 10 s long poll).
pub fn data_api_client(sdk: &aws_config::SdkConfig) -> aws_sdk_redshiftdata::Client {
    let config = aws_sdk_redshiftdata::config::Builder::from(sdk)
        .retry_config(RetryConfig::disabled())
        .timeout_config(TimeoutConfig::builder().operation_attempt_timeout(Duration::from_secs(15)).build())
        .build();
    aws_sdk_redshiftdata::Client::from_conf(config)
}

/// Build everything a function needs. Clients are built once and shared by invocations.
pub async fn build(settings: &Settings, metrics: Arc<dyn MetricsSink>) -> Result<Ingestor, StartError> {
    let config = load_config(&settings.config)?;
    let sdk = aws_config::defaults(BehaviorVersion::latest()).load().await;
    let (key, key_version) = masking_key(&sdk, &settings.masking_key).await?;
    let mut pipeline = Pipeline::new(Arc::new(config), key.as_deref())?;
    pipeline.key_version = key_version;
    let s3 = aws_sdk_s3::config::Builder::from(&sdk)
        .force_path_style(custom_s3_endpoint())
        .timeout_config(TimeoutConfig::builder().operation_attempt_timeout(Duration::from_secs(15)).build())
        .build();
    let api = DataApi::new(data_api_client(&sdk), settings.target.clone());
    check_configured_columns(&api, &pipeline.config).await?;
    let loader = Loader::new(api);
    let store = Store {
        client: aws_sdk_s3::Client::from_conf(s3),
        bucket: settings.dlq_bucket.clone(),
        prefix: settings.dlq_prefix.clone(),
        archive_prefix: settings.archive_prefix.clone(),
        quarantine_prefix: settings.quarantine_prefix.clone(),
        kms_key_id: settings.kms_key_id.clone(),
    };
    let mut ingestor = Ingestor::new(pipeline, loader, store, metrics);
    ingestor.deadline_margin = settings.deadline_margin;
    ingestor.metrics_namespace = settings.metrics_namespace.clone();
    ingestor.function_name = settings.function_name.clone();
    ingestor.max_attempts = settings.max_attempts;
    Ok(ingestor)
}

/// JSON logs at `level`, with the invocation's span fields (the request id) on every line:
/// on stdout in Lambda, on stderr for `cdc` (whose stdout is the handler's response).
/// `RUST_LOG` overrides the level with a full filter.
pub fn init_logging(level: &str, to_stderr: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!("{level},aws_smithy_runtime=warn,aws_config=warn,hyper=warn"))
    });
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false)
        .without_time();
    let _ = if to_stderr { subscriber.with_writer(std::io::stderr).try_init() } else { subscriber.try_init() };
}
