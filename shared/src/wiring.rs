//! Cold start: settings → logging (capped: see `DEPENDENCY_LOG_CAP`) → configuration,
//! masking key and AWS clients → an [`Ingestor`]. The binaries stay thin; `cdc ingest`/`cdc
//! replay` build the same thing.
//!
//! Owns what runs once per container: settings, logging (the JSON format and the cap on
//! other crates), the configuration, the masking key, the clients and the check of configured
//! columns against the targets. Nothing here may run per invocation.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::timeout::TimeoutConfig;
use tracing::level_filters::LevelFilter;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::{Config, ConfigError, LoadPath};
use crate::dlq::Store;
use crate::ingest::Ingestor;
use crate::metrics::{MetricsSink, Stdout};
use crate::redshift::client::sdk_client;
use crate::redshift::staging::Staging;
use crate::redshift::{DataApi, Loader};
use crate::registry::{Confluent, Registry, SchemaCache};
use crate::settings::{ConfigSource, MaskingKeySource, SchemaRegistrySettings, Settings};
use crate::transform::{Pipeline, PipelineError};

/// A cold start that cannot finish: the function exits (code 1) and Lambda reports an init
/// error. Messages name files, keys, tables and codes, never a value or the masking key.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The config file cannot be read or is invalid (file, line and key in the message).
    #[error("configuration: {0}")]
    Config(#[from] ConfigError),
    /// The pipeline refuses the config with this key (a short key, `hmac` without one).
    #[error("{0}")]
    Pipeline(#[from] PipelineError),
    /// Secrets Manager did not give the key: its error code (`AccessDeniedException`,
    /// `ResourceNotFoundException`…), `request failed`, or `the secret has no value`.
    #[error("reading the masking key from MASKING_KEY_SECRET_ARN failed: {0}")]
    Secret(String),
    /// The schema registry's credentials (`SCHEMA_REGISTRY_SECRET_ARN`) could not be read: an
    /// AWS error code, or what is wrong with the secret's shape (never its content).
    #[error("reading the schema registry's credentials from SCHEMA_REGISTRY_SECRET_ARN failed: {0}")]
    RegistrySecret(String),
    /// The schema registry's client cannot be made (the system's TLS roots).
    #[error("the schema registry client: {0}")]
    RegistryClient(String),
    /// `DescribeTable` of a configured target failed.
    #[error("reading the columns of {table} failed: {source}")]
    DescribeTable {
        /// The target table.
        table: crate::config::TableName,
        /// The Data API error (codes and classes only).
        #[source]
        source: crate::redshift::DataApiError,
    },
    /// A table loads by `copy` and no role is set for Redshift to read the staged objects.
    #[error(
        "{table} loads by COPY (`load = \"copy\"`, the default) but REDSHIFT_COPY_ROLE_ARN is not set: set it to the IAM role Redshift assumes to read the staging prefix (or `default`), or set `load = \"insert\"` for the table"
    )]
    NoCopyRole {
        /// The first such table.
        table: crate::config::TableName,
    },
    /// The default routing (`CDC_CONFIG=default`) loads every topic's table by `copy`, and no
    /// role is set for Redshift to read the staged objects.
    #[error(
        "the default routing (CDC_CONFIG=default) loads each topic's table in schema public by COPY but REDSHIFT_COPY_ROLE_ARN is not set: set it to the IAM role Redshift assumes to read the staging prefix (or `default`), or use a config file with `load = \"insert\"` tables"
    )]
    DefaultRoutingNeedsCopyRole,
    /// The config names columns its (existing) target does not have.
    #[error(
        "the config names columns that {table} does not have: {columns} (a misspelt column would leave the real one unmasked; fix the config)"
    )]
    UnknownColumns {
        /// The target table.
        table: crate::config::TableName,
        /// The missing column names, lowercase, sorted, comma-separated.
        columns: String,
    },
}

/// Every column the config names must be a column of its target (`DescribeTable`): a mask
/// under a misspelt name guards nothing. A target that does not exist yet, or whose columns
/// the pipeline adds itself (`drift = "add"`), is checked record by record instead (rule
/// `unknown_column`).
pub async fn check_configured_columns(loader: &Loader, config: &Config) -> Result<(), StartError> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    for table in config.tables.iter().filter(|t| !t.columns.is_empty() && t.drift != crate::config::DriftPolicy::Add) {
        let target = loader
            .describe_target(&table.target, deadline)
            .await
            .map_err(|e| StartError::DescribeTable { table: e.table, source: e.source })?;
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

/// The configuration named by the settings (`CDC_CONFIG`): the functions' and every `cdc`
/// subcommand's that reads settings. Errors: the file's [`ConfigError`].
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

/// The registry client of `settings` (`SCHEMA_REGISTRY`), its credentials read once.
pub async fn schema_registry(
    sdk: &aws_config::SdkConfig,
    settings: Option<&SchemaRegistrySettings>,
) -> Result<Option<Registry>, StartError> {
    match settings {
        None => Ok(None),
        Some(SchemaRegistrySettings::Glue) => Ok(Some(Registry::Glue(aws_sdk_glue::Client::new(sdk)))),
        Some(SchemaRegistrySettings::Confluent { url, secret_arn }) => {
            let mut client = Confluent::new(url, None, REGISTRY_TIMEOUT).map_err(|e| {
                StartError::RegistryClient(format!("the system's root certificates cannot be read ({})", e.kind()))
            })?;
            if let Some(arn) = secret_arn {
                client = client.refreshing_from(aws_sdk_secretsmanager::Client::new(sdk), arn.clone());
                client.load_credentials().await.map_err(StartError::RegistrySecret)?;
            }
            Ok(Some(Registry::Confluent(Box::new(client))))
        }
    }
}

/// How long one request to a Confluent-compatible registry may take.
const REGISTRY_TIMEOUT: Duration = Duration::from_secs(10);

/// A custom S3 endpoint (local S3 server) needs path-style addressing.
fn custom_s3_endpoint() -> bool {
    ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"].iter().any(|v| std::env::var_os(v).is_some_and(|x| !x.is_empty()))
}

/// The AWS SDK's shared configuration from the environment (region, credentials,
/// `AWS_ENDPOINT_URL_*`), as the functions load it.
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).load().await
}

/// The warehouse (a [`Loader`] into the Data API, staging `COPY` objects when
/// `REDSHIFT_COPY_ROLE_ARN` is set) and the dead-letter [`Store`] of `settings`: what
/// [`build`] wires, without the configuration, the masking key or its checks. `cdc check` and
/// `cdc dlq` use them as they are.
pub fn clients(sdk: &aws_config::SdkConfig, settings: &Settings) -> (Loader, Store) {
    let s3 = aws_sdk_s3::config::Builder::from(sdk)
        .force_path_style(custom_s3_endpoint())
        .timeout_config(TimeoutConfig::builder().operation_attempt_timeout(Duration::from_secs(15)).build())
        .build();
    let s3_client = aws_sdk_s3::Client::from_conf(s3);
    let mut api = DataApi::new(sdk_client(aws_sdk_redshiftdata::config::Builder::from(sdk)), settings.target.clone());
    if let Some(role) = &settings.copy_role {
        api = api.with_staging(Staging {
            client: s3_client.clone(),
            bucket: settings.dlq_bucket.clone(),
            prefix: settings.staging_prefix.clone(),
            kms_key_id: settings.kms_key_id.clone(),
            iam_role: role.clone(),
        });
    }
    let store = Store {
        client: s3_client,
        bucket: settings.dlq_bucket.clone(),
        prefix: settings.dlq_prefix.clone(),
        archive_prefix: settings.archive_prefix.clone(),
        quarantine_prefix: settings.quarantine_prefix.clone(),
        kms_key_id: settings.kms_key_id.clone(),
    };
    (Loader::new(api), store)
}

/// Build everything a function needs. Clients are built once and shared by invocations.
pub async fn build(settings: &Settings, metrics: Arc<dyn MetricsSink>) -> Result<Ingestor, StartError> {
    let config = load_config(&settings.config)?;
    let sdk = sdk_config().await;
    let (key, key_version) = masking_key(&sdk, &settings.masking_key).await?;
    let mut pipeline = Pipeline::new(Arc::new(config), key.as_deref())?;
    pipeline.key_version = key_version;
    if settings.copy_role.is_none() {
        if let Some(table) = pipeline.config.tables.iter().find(|t| t.load == LoadPath::Copy) {
            return Err(StartError::NoCopyRole { table: table.target.clone() });
        }
        // The default routing (`CDC_CONFIG=default`) makes each topic's table as it comes,
        // loading by COPY.
        if pipeline.config.tables.is_empty() {
            return Err(StartError::DefaultRoutingNeedsCopyRole);
        }
    }
    let (loader, store) = clients(&sdk, settings);
    check_configured_columns(&loader, &pipeline.config).await?;
    let mut ingestor = Ingestor::new(pipeline, loader, store, metrics);
    ingestor.schemas = schema_registry(&sdk, settings.schema_registry.as_ref()).await?.map(SchemaCache::new);
    ingestor.deadline_margin = settings.deadline_margin;
    ingestor.metrics_namespace = settings.metrics_namespace.clone();
    ingestor.function_name = settings.function_name.clone();
    ingestor.max_attempts = settings.max_attempts;
    Ok(ingestor)
}

/// The targets of our own crates (prefixes, as `tracing-subscriber` matches targets): the
/// library, the two functions and `cdc`. They log at the level asked for.
const OWN_TARGETS: &[&str] = &["cdc_pipeline", "ingest", "replay", "cdc"];

/// The most any other target logs, whatever `LOG_LEVEL` or `RUST_LOG` ask. From the sources of
/// the versions in Cargo.lock: at TRACE, `lambda_runtime::layers::api_response` logs every raw
/// invocation event, `aws_smithy_runtime::client::orchestrator` every request and response with
/// its body (`SdkBody`'s `Debug` prints the bytes), `aws_sigv4::http_request::sign` the signed
/// body under `LOG_SIGNABLE_BODY`, `aws_runtime::content_encoding` S3 body chunks; at DEBUG,
/// `aws_smithy_runtime` logs orchestrator errors with `{:?}` (a service's error message).
/// WARN and ERROR carry no body. Everything that is not ours is capped alike: lambda_runtime,
/// lambda_runtime_api_client, aws_lambda_events, aws_config, aws_runtime, aws_sigv4,
/// aws_smithy_*, aws_sdk_*, hyper, hyper_util, hyper_rustls, h2, rustls, tokio_rustls, tower*,
/// reqwest, and any crate added later.
const DEPENDENCY_LOG_CAP: LevelFilter = LevelFilter::WARN;

/// Environment variables that make the AWS SDK log bodies (at TRACE, which the cap never lets
/// through): `LOG_SIGNABLE_BODY` (aws-sigv4: the signed request body) and
/// `LOG_SENSITIVE_BODIES` (aws-smithy-runtime: responses marked sensitive). The functions
/// remove them from their environment at cold start, before any SDK client exists
/// ([`remove_body_logging_variables`]), and log a warning that they were ignored.
const BODY_LOGGING_VARIABLES: &[&str] = &["LOG_SIGNABLE_BODY", "LOG_SENSITIVE_BODIES"];

/// Exit code of a function whose cold start was refused for bad settings (an invalid
/// `LOG_LEVEL` or `RUST_LOG` among them): the same as `cdc`'s for bad input.
const EXIT_BAD_SETTINGS: u8 = 2;

/// `LOG_LEVEL` or `RUST_LOG` that cannot be read: the cold start stops (exit code 2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("environment variable {name} is invalid: {problem}")]
pub struct LogFilterError {
    /// `LOG_LEVEL` or `RUST_LOG`.
    pub name: &'static str,
    /// What is wrong: the expected levels, or `tracing-subscriber`'s parse error for
    /// `RUST_LOG`.
    pub problem: String,
}

/// What gets logged: the level asked for (`LOG_LEVEL`, or `RUST_LOG`'s full filter), and on
/// top of it the cap: a line is written only when both let it through.
#[derive(Debug)]
struct LogFilter {
    requested: EnvFilter,
    cap: Targets,
}

impl LogFilter {
    /// `rust_log` (when set and not empty) is a full `EnvFilter` spec that replaces `level`; an
    /// invalid one is an error, not a silent fallback.
    fn new(level: &str, rust_log: Option<&str>) -> Result<LogFilter, LogFilterError> {
        let requested = match rust_log.map(str::trim).filter(|s| !s.is_empty()) {
            Some(spec) => EnvFilter::builder()
                .parse(spec)
                .map_err(|e| LogFilterError { name: "RUST_LOG", problem: e.to_string() })?,
            None => {
                let level: LevelFilter = level.parse().map_err(|_| LogFilterError {
                    name: "LOG_LEVEL",
                    problem: "expected error, warn, info, debug or trace".into(),
                })?;
                EnvFilter::builder().with_default_directive(level.into()).parse("").expect("no directives")
            }
        };
        let cap = Targets::new()
            .with_targets(OWN_TARGETS.iter().map(|target| (*target, LevelFilter::TRACE)))
            .with_default(DEPENDENCY_LOG_CAP);
        Ok(LogFilter { requested, cap })
    }

    /// [`LogFilter::new`] with `RUST_LOG` from the environment.
    fn from_env(level: &str) -> Result<LogFilter, LogFilterError> {
        LogFilter::new(level, std::env::var("RUST_LOG").ok().as_deref())
    }

    /// The JSON subscriber the functions and `cdc` install, writing to `writer`.
    fn subscriber<W>(self, writer: W) -> impl tracing::Subscriber + Send + Sync + 'static
    where
        W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
    {
        let format = tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .with_target(false)
            .without_time()
            .with_writer(writer);
        tracing_subscriber::registry().with(self.cap).with(self.requested).with(format)
    }
}

/// JSON logs at `level`, with the invocation's span fields (the request id) on every line:
/// on stdout in Lambda, on stderr for `cdc` (whose stdout is the handler's response).
/// `RUST_LOG` replaces the level with a full filter; either way, other crates than ours log at
/// most at `DEPENDENCY_LOG_CAP` (WARN).
pub fn init_logging(level: &str, to_stderr: bool) -> Result<(), LogFilterError> {
    let filter = LogFilter::from_env(level)?;
    let requested = filter.requested.to_string();
    let _ = if to_stderr {
        filter.subscriber(std::io::stderr).try_init()
    } else {
        filter.subscriber(std::io::stdout).try_init()
    };
    tracing::info!(filter = %requested, dependency_cap = %DEPENDENCY_LOG_CAP, "logging configured");
    Ok(())
}

/// Remove [`BODY_LOGGING_VARIABLES`] from the process environment; returns those that were set.
///
/// # Safety
///
/// Changes the environment ([`std::env::remove_var`]): call it first thing in `main`, while the
/// process has no other thread (before the tokio runtime is built).
unsafe fn remove_body_logging_variables() -> Vec<&'static str> {
    let mut removed = Vec::new();
    for name in BODY_LOGGING_VARIABLES {
        if std::env::var_os(name).is_some() {
            // SAFETY: the caller guarantees that no other thread exists.
            unsafe { std::env::remove_var(name) };
            removed.push(*name);
        }
    }
    removed
}

/// A function's cold start up to its clients: the settings, then the logging, then a warning
/// per body-logging variable that was removed. Bad settings are printed and answered with
/// [`EXIT_BAD_SETTINGS`].
fn start_function(function: &str, removed: &[&str]) -> Result<Settings, ExitCode> {
    let refuse = |e: &dyn std::fmt::Display| {
        eprintln!("{function}: cold start failed: {e}");
        ExitCode::from(EXIT_BAD_SETTINGS)
    };
    let settings = Settings::from_env(function).map_err(|e| refuse(&e))?;
    init_logging(&settings.log_level, false).map_err(|e| refuse(&e))?;
    for variable in removed {
        tracing::warn!(variable, "ignored and removed: this function never logs request or response bodies");
    }
    Ok(settings)
}

/// The error a function's serving loop ends with (`lambda_runtime::Error`).
pub type ServeError = Box<dyn std::error::Error + Send + Sync>;

/// A function's whole `main`: remove the body-logging variables (`LOG_SIGNABLE_BODY`,
/// `LOG_SENSITIVE_BODIES`), read the settings and set up logging (exit 2 on bad settings), a
/// current-thread tokio runtime, [`build`] (exit 1 when it fails), then `serve` with the
/// [`Ingestor`] until the runtime API goes away (exit 1 on error).
///
/// # Safety
///
/// It changes the environment ([`std::env::remove_var`]): call it from `main`, before any
/// other thread exists.
pub unsafe fn function_main<F, Fut>(function: &str, serve: F) -> ExitCode
where
    F: FnOnce(Arc<Ingestor>) -> Fut,
    Fut: Future<Output = Result<(), ServeError>>,
{
    // SAFETY: passed on to the caller.
    let removed = unsafe { remove_body_logging_variables() };
    let settings = match start_function(function, &removed) {
        Ok(settings) => settings,
        Err(code) => return code,
    };
    let served = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(ServeError::from).and_then(
        |runtime| {
            runtime.block_on(async {
                let ingestor =
                    build(&settings, Arc::new(Stdout)).await.map_err(|e| format!("cold start failed: {e}"))?;
                serve(Arc::new(ingestor)).await
            })
        },
    );
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{function}: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A table that loads by COPY needs REDSHIFT_COPY_ROLE_ARN, and so does the default
    /// routing (every topic's table loads by COPY): each cold start fails naming what to set,
    /// before any client is made. The default routing's message names no table it made up.
    #[tokio::test]
    async fn copy_without_a_role_fails_the_cold_start() {
        let dir = std::env::temp_dir().join(format!("cdc-wiring-copy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("copy.toml");
        std::fs::write(&file, "[[tables]]\ntopic = \"*.dbo.t\"\ntarget = \"public.t\"\n").unwrap();
        let file = file.to_str().unwrap().to_string();
        for (config, expect) in [(file.as_str(), "public.t loads by COPY"), ("default", "the default routing")] {
            let settings = Settings::from_lookup(
                |name| match name {
                    "CDC_CONFIG" => Some(config.to_string()),
                    "REDSHIFT_DATABASE" => Some("dev".into()),
                    "REDSHIFT_WORKGROUP" => Some("wg".into()),
                    "DLQ_BUCKET" => Some("b".into()),
                    _ => None,
                },
                "ingest",
            )
            .unwrap();
            let error = build(&settings, Arc::new(crate::metrics::Stdout)).await.unwrap_err();
            let text = error.to_string();
            assert!(text.contains(expect) && text.contains("REDSHIFT_COPY_ROLE_ARN"), "{text}");
            assert!(!text.contains("<each"), "no made-up table name: {text}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// One event per (target, level), each naming both; the names of those written.
    macro_rules! written {
        ($filter:expr, [$($target:literal),* $(,)?]) => {{
            let buffer = Buffer::default();
            let writer = buffer.clone();
            let subscriber = $filter.subscriber(move || writer.clone());
            tracing::subscriber::with_default(subscriber, || {
                $(
                    tracing::error!(target: $target, "{}:ERROR", $target);
                    tracing::warn!(target: $target, "{}:WARN", $target);
                    tracing::info!(target: $target, "{}:INFO", $target);
                    tracing::debug!(target: $target, "{}:DEBUG", $target);
                    tracing::trace!(target: $target, body = "the body", "{}:TRACE", $target);
                )*
            });
            let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
            text.lines()
                .map(|line| {
                    let line: serde_json::Value = serde_json::from_str(line).unwrap();
                    line["fields"]["message"].as_str().unwrap().to_string()
                })
                .collect::<Vec<String>>()
        }};
    }

    /// The real targets these crates log under (module paths), as read in their sources:
    /// `dependency_targets!(m!(args,))` is `m!(args, [targets…])` (tracing needs literal
    /// targets, so the list is handed to another macro rather than being a constant).
    macro_rules! dependency_targets {
        ($callback:ident ! ($($args:tt)*)) => {
            $callback!($($args)*
            [
                "lambda_runtime::layers::api_response",
                "lambda_runtime::runtime",
                "lambda_runtime_api_client",
                "aws_lambda_events::event::kafka",
                "aws_smithy_runtime::client::orchestrator",
                "aws_smithy_runtime::client::orchestrator::http",
                "aws_smithy_runtime_api::client::retries",
                "aws_smithy_http_client::client",
                "aws_smithy_types::body",
                "aws_sdk_redshiftdata::config",
                "aws_sdk_s3::config",
                "aws_sdk_secretsmanager::config",
                "aws_config::profile::credentials",
                "aws_runtime::content_encoding::body::http_body_1_x",
                "aws_sigv4::http_request::sign",
                "hyper::proto::h1::io",
                "hyper_util::client::legacy::pool",
                "hyper_rustls::connector",
                "h2::codec::framed_write",
                "reqwest::connect",
                "rustls::client::hs",
                "tokio_rustls",
                "tower::buffer::worker",
                "tower_http::trace::on_request",
            ]
            )
        };
    }

    /// The list itself, as an array.
    macro_rules! list {
        ([$($target:literal),* $(,)?]) => {
            [$($target),*]
        };
    }

    fn levels_of(written: &[String], target: &str) -> Vec<String> {
        written
            .iter()
            .filter_map(|m| m.rsplit_once(':').filter(|(t, _)| *t == target).map(|(_, level)| level.to_string()))
            .collect()
    }

    #[test]
    fn dependencies_are_capped_at_warn_whatever_is_asked() {
        let asked = [
            ("trace", None),
            ("debug", None),
            ("info", None),
            ("error", Some("trace")),
            ("info", Some("trace,lambda_runtime=trace,aws_smithy_runtime=trace,aws_sigv4=trace,hyper=trace")),
            ("info", Some("lambda_runtime::layers::api_response=trace,aws_smithy_runtime::client::orchestrator=trace")),
            ("info", Some("[{body}]=trace")),
        ];
        for (level, rust_log) in asked {
            let written = dependency_targets!(written!(LogFilter::new(level, rust_log).unwrap(),));
            for target in dependency_targets!(list!()) {
                let levels = levels_of(&written, target);
                assert!(
                    levels.iter().all(|l| l == "ERROR" || l == "WARN"),
                    "LOG_LEVEL={level} RUST_LOG={rust_log:?}: {target} logged {levels:?}"
                );
            }
            assert!(!written.iter().any(|m| m.ends_with(":TRACE") || m.ends_with(":DEBUG")), "{written:?}");
        }
        // What the cap lets through still comes out: it caps, it does not silence.
        let written = dependency_targets!(written!(LogFilter::new("trace", None).unwrap(),));
        for target in dependency_targets!(list!()) {
            assert_eq!(levels_of(&written, target), ["ERROR", "WARN"], "{target}");
        }
        // ...and below the cap, the level asked for rules.
        let written = dependency_targets!(written!(LogFilter::new("error", None).unwrap(),));
        for target in dependency_targets!(list!()) {
            assert_eq!(levels_of(&written, target), ["ERROR"], "{target}");
        }
    }

    #[test]
    fn our_crates_keep_the_level_asked_for() {
        let all = ["ERROR", "WARN", "INFO", "DEBUG", "TRACE"];
        for (n, level) in ["error", "warn", "info", "debug", "trace"].into_iter().enumerate() {
            let written = written!(
                LogFilter::new(level, None).unwrap(),
                ["cdc_pipeline::ingest", "cdc_pipeline::redshift::client", "ingest", "replay", "cdc::run"]
            );
            for target in ["cdc_pipeline::ingest", "cdc_pipeline::redshift::client", "ingest", "replay", "cdc::run"] {
                assert_eq!(levels_of(&written, target), all[..=n], "LOG_LEVEL={level}: {target}");
            }
        }
        let written = written!(
            LogFilter::new("error", Some("warn,cdc_pipeline=trace")).unwrap(),
            ["cdc_pipeline::ingest", "ingest", "lambda_runtime::runtime"]
        );
        assert_eq!(levels_of(&written, "cdc_pipeline::ingest"), all);
        assert_eq!(levels_of(&written, "ingest"), ["ERROR", "WARN"]);
        assert_eq!(levels_of(&written, "lambda_runtime::runtime"), ["ERROR", "WARN"]);
    }

    #[test]
    fn no_dependency_in_the_lockfile_passes_for_ours() {
        let lock = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.lock")).unwrap();
        let ours = ["cdc-pipeline", "cdc-ingest", "cdc-replay", "cdc-cli", "cdc-tests"];
        let mut checked = 0;
        for name in lock.lines().filter_map(|l| l.strip_prefix("name = \"")?.strip_suffix('"')) {
            checked += 1;
            let target = name.replace('-', "_");
            if !ours.contains(&name) {
                assert!(
                    !OWN_TARGETS.iter().any(|own| target.starts_with(own)),
                    "crate {name} logs under a target that OWN_TARGETS leaves uncapped"
                );
            }
        }
        assert!(checked > 100, "read the lockfile: {checked} packages");
    }

    #[test]
    fn an_invalid_level_or_filter_is_an_error_naming_its_variable() {
        assert_eq!(LogFilter::new("verbose", None).unwrap_err().name, "LOG_LEVEL");
        for bad in ["lambda_runtime=loud", "info,[{", "=trace=", "a=b=c"] {
            assert_eq!(LogFilter::new("info", Some(bad)).unwrap_err().name, "RUST_LOG", "{bad}");
        }
        // Unset or empty RUST_LOG: the level rules.
        assert!(LogFilter::new("info", Some("")).is_ok());
        assert!(LogFilter::new("info", Some("  ")).is_ok());
    }
}
