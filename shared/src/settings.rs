//! Function settings from environment variables, checked at cold start: a missing or invalid
//! setting fails the start with a message that names it.
//!
//! Owns reading and checking the variables ([`Settings::from_lookup`]) and their list
//! ([`VARIABLES`], README "Environment variables"). It must do no I/O beyond reading
//! variables: the config file, the masking key's secret and the clients are `wiring`'s.

use std::path::PathBuf;
use std::time::Duration;

use crate::redshift::{Auth, Target};

/// Where the pipeline configuration comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    /// `CDC_CONFIG=<path>`: a TOML file (in Lambda, under `/var/task/`).
    File(PathBuf),
    /// `CDC_CONFIG=default`: route every topic to `public.<last segment>`, no rules, no masks.
    /// Must be asked for: a function without masks would load PII as it comes.
    DefaultRouting,
}

/// Where the HMAC masking key comes from. Its `Debug` never prints an inline key.
#[derive(Clone, PartialEq, Eq)]
pub enum MaskingKeySource {
    /// Secrets Manager: the secret's `SecretString` (or `SecretBinary`) is the key; `version`
    /// pins a `VersionId` or a staging label (`MASKING_KEY_VERSION`; default `AWSCURRENT`).
    Secret {
        /// The secret's ARN (`MASKING_KEY_SECRET_ARN`).
        arn: String,
        /// A `VersionId` (a UUID) or a staging label (`AWSCURRENT`, `AWSPREVIOUS`…);
        /// `None`: the current version.
        version: Option<String>,
    },
    /// The key itself (`MASKING_KEY`, its UTF-8 bytes), for local use only: refused in Lambda.
    Inline(Vec<u8>),
    /// No key: `hmac` masks are refused when the pipeline is built.
    None,
}

impl std::fmt::Debug for MaskingKeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MaskingKeySource::Secret { arn, version } => {
                f.debug_struct("Secret").field("arn", arn).field("version", version).finish()
            }
            MaskingKeySource::Inline(key) => write!(f, "Inline(<{} bytes withheld>)", key.len()),
            MaskingKeySource::None => f.write_str("None"),
        }
    }
}

/// The schema registry the functions read Avro schemas from (`SCHEMA_REGISTRY`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchemaRegistrySettings {
    /// `glue`: AWS Glue Schema Registry (`GetSchemaVersion`, with the function's role).
    Glue,
    /// `confluent`: a Confluent-compatible registry's REST API.
    Confluent {
        /// `SCHEMA_REGISTRY_URL`: `https://…` (or `http://…` without credentials).
        url: String,
        /// `SCHEMA_REGISTRY_SECRET_ARN`: a Secrets Manager secret whose `SecretString` is
        /// `{"username": …, "password": …}`, for HTTP basic auth.
        secret_arn: Option<String>,
    },
}

/// Everything a function reads from its environment, checked. Prefixes have their slashes
/// stripped; the archive prefix is not the dead-letter prefix or inside it, and the
/// quarantine prefix is apart from both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The pipeline configuration (`CDC_CONFIG`).
    pub config: ConfigSource,
    /// The warehouse: database and workgroup or cluster (`REDSHIFT_*`).
    pub target: Target,
    /// The dead-letter bucket (`DLQ_BUCKET`).
    pub dlq_bucket: String,
    /// `DLQ_PREFIX`, default `dead-letter`; never empty.
    pub dlq_prefix: String,
    /// `DLQ_ARCHIVE_PREFIX`, default `archive`.
    pub archive_prefix: String,
    /// `DLQ_QUARANTINE_PREFIX`, default `quarantine`.
    pub quarantine_prefix: String,
    /// Dead-letter attempts after which a failing record is quarantined (`REPLAY_MAX_ATTEMPTS`,
    /// 1–100, default 5).
    pub max_attempts: u32,
    /// `STAGING_PREFIX`, default `staging`: where `load = "copy"` tables' staged objects go in
    /// the dead-letter bucket; apart from the dead-letter prefixes.
    pub staging_prefix: String,
    /// `REDSHIFT_COPY_ROLE_ARN`: the IAM role Redshift assumes for `COPY` (an ARN, or `default`
    /// for the cluster's or namespace's default role). Needed when a table loads by `copy`.
    pub copy_role: Option<String>,
    /// The KMS key (id, ARN or alias) for SSE-KMS on every dead-letter write
    /// (`DLQ_KMS_KEY_ID`); `None`: the bucket's default encryption.
    pub kms_key_id: Option<String>,
    /// Where the masking key comes from.
    pub masking_key: MaskingKeySource,
    /// Where Avro schemas come from; `None`: no registry, and registry-framed records are
    /// rejected (`converter_binary`).
    pub schema_registry: Option<SchemaRegistrySettings>,
    /// Time kept back from the Lambda deadline for dead-letter writes and the response
    /// (`DEADLINE_MARGIN_MS`, default 5 s).
    pub deadline_margin: Duration,
    /// `METRICS_NAMESPACE`, default `MskRedshiftCdc`.
    pub metrics_namespace: String,
    /// `AWS_LAMBDA_FUNCTION_NAME` (set by Lambda), else the binary's default name.
    pub function_name: String,
    /// `LOG_LEVEL`, lowercase: `error`, `warn`, `info` (default), `debug` or `trace`.
    pub log_level: String,
}

/// A setting that stops the cold start. The message names the variable and what is wrong,
/// never its value (a variable can hold a key).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    /// A required variable is unset or empty.
    #[error("environment variable {name} is required: {help}")]
    Missing {
        /// The variable.
        name: &'static str,
        /// What it should hold.
        help: &'static str,
    },
    /// A variable is set to something unusable, or conflicts with another.
    #[error("environment variable {name} is invalid: {problem}")]
    Invalid {
        /// The variable.
        name: &'static str,
        /// What is wrong with it.
        problem: String,
    },
}

/// Every variable the functions read, with its meaning (README "Environment variables").
pub const VARIABLES: &[(&str, &str)] = &[
    ("CDC_CONFIG", "pipeline config file path, or `default` for the default routing (no masks)"),
    ("REDSHIFT_DATABASE", "database name"),
    ("REDSHIFT_WORKGROUP", "Redshift Serverless workgroup (or REDSHIFT_CLUSTER_ID)"),
    ("REDSHIFT_CLUSTER_ID", "provisioned cluster identifier (or REDSHIFT_WORKGROUP)"),
    ("REDSHIFT_DB_USER", "database user for a provisioned cluster (GetClusterCredentials)"),
    ("REDSHIFT_SECRET_ARN", "Secrets Manager secret with database credentials"),
    ("DLQ_BUCKET", "dead-letter bucket"),
    ("DLQ_PREFIX", "dead-letter key prefix (default `dead-letter`)"),
    ("DLQ_ARCHIVE_PREFIX", "where replayed objects move (default `archive`)"),
    ("DLQ_QUARANTINE_PREFIX", "where records past REPLAY_MAX_ATTEMPTS go (default `quarantine`)"),
    ("REPLAY_MAX_ATTEMPTS", "dead-letter attempts before a record is quarantined, 1–100 (default 5)"),
    ("DLQ_KMS_KEY_ID", "KMS key for SSE-KMS on every write (default: the bucket's default encryption)"),
    ("STAGING_PREFIX", "key prefix of staged COPY objects in DLQ_BUCKET (default `staging`)"),
    (
        "REDSHIFT_COPY_ROLE_ARN",
        "IAM role Redshift assumes to COPY staged objects (an ARN, or `default`); needed by `load = \"copy\"` tables",
    ),
    ("MASKING_KEY_SECRET_ARN", "Secrets Manager secret holding the HMAC masking key"),
    ("MASKING_KEY_VERSION", "the secret's VersionId (or staging label) to use; default AWSCURRENT"),
    ("MASKING_KEY", "the HMAC masking key itself — local use only, refused in Lambda"),
    (
        "SCHEMA_REGISTRY",
        "where Avro schemas come from: `glue` (AWS Glue Schema Registry) or `confluent` (SCHEMA_REGISTRY_URL); unset: none",
    ),
    (
        "SCHEMA_REGISTRY_URL",
        "the Confluent-compatible registry's base URL (`https://…`); with SCHEMA_REGISTRY=confluent",
    ),
    (
        "SCHEMA_REGISTRY_SECRET_ARN",
        "Secrets Manager secret `{\"username\",\"password\"}` for the registry's basic auth (optional)",
    ),
    ("DEADLINE_MARGIN_MS", "time kept back from the Lambda deadline, ms (default 5000)"),
    ("METRICS_NAMESPACE", "CloudWatch namespace of the EMF metrics (default `MskRedshiftCdc`)"),
    ("LOG_LEVEL", "log level: error, warn, info (default), debug, trace"),
];

impl Settings {
    /// Read settings from the process environment (an empty variable counts as unset);
    /// `default_function_name` names the function outside Lambda.
    ///
    /// Errors: [`Settings::from_lookup`]'s.
    pub fn from_env(default_function_name: &str) -> Result<Settings, SettingsError> {
        Settings::from_lookup(|name| std::env::var(name).ok().filter(|v| !v.is_empty()), default_function_name)
    }

    /// Read settings through `get` (tests pass a map).
    ///
    /// Errors: [`SettingsError::Missing`] for `CDC_CONFIG`, `REDSHIFT_DATABASE`, `DLQ_BUCKET`,
    /// or neither `REDSHIFT_WORKGROUP` nor `REDSHIFT_CLUSTER_ID`; [`SettingsError::Invalid`]
    /// for both of those, `REDSHIFT_DB_USER` with a workgroup or with `REDSHIFT_SECRET_ARN`,
    /// both masking-key sources, `MASKING_KEY` in Lambda, `MASKING_KEY_VERSION` without a
    /// secret, a `DEADLINE_MARGIN_MS` that is not whole milliseconds, an unknown `LOG_LEVEL`,
    /// prefixes that are empty or overlap, `REPLAY_MAX_ATTEMPTS` outside 1–100; for
    /// `SCHEMA_REGISTRY*`: an unknown registry, a URL or secret without `confluent`,
    /// `confluent` without a URL ([`SettingsError::Missing`]), a URL that is no base URL or
    /// holds credentials, a secret with `http://` to another host than this one.
    pub fn from_lookup(
        get: impl Fn(&str) -> Option<String>,
        default_function_name: &str,
    ) -> Result<Settings, SettingsError> {
        let required = |name: &'static str, help: &'static str| get(name).ok_or(SettingsError::Missing { name, help });
        let config = match required("CDC_CONFIG", "a pipeline config file path, or `default` for the default routing")?
            .as_str()
        {
            "default" => ConfigSource::DefaultRouting,
            path => ConfigSource::File(PathBuf::from(path)),
        };
        let database = required("REDSHIFT_DATABASE", "the Redshift database to load into")?;
        let secret_arn = get("REDSHIFT_SECRET_ARN");
        let auth = match (get("REDSHIFT_WORKGROUP"), get("REDSHIFT_CLUSTER_ID")) {
            (Some(name), None) => {
                if get("REDSHIFT_DB_USER").is_some() {
                    return Err(SettingsError::Invalid {
                        name: "REDSHIFT_DB_USER",
                        problem: "applies to provisioned clusters (REDSHIFT_CLUSTER_ID), not workgroups".into(),
                    });
                }
                Auth::Workgroup { name, secret_arn }
            }
            (None, Some(id)) => {
                let db_user = get("REDSHIFT_DB_USER");
                if db_user.is_some() && secret_arn.is_some() {
                    return Err(SettingsError::Invalid {
                        name: "REDSHIFT_DB_USER",
                        problem: "set REDSHIFT_DB_USER or REDSHIFT_SECRET_ARN, not both".into(),
                    });
                }
                Auth::Cluster { id, db_user, secret_arn }
            }
            (Some(_), Some(_)) => {
                return Err(SettingsError::Invalid {
                    name: "REDSHIFT_WORKGROUP",
                    problem: "set REDSHIFT_WORKGROUP (Serverless) or REDSHIFT_CLUSTER_ID (provisioned), not both"
                        .into(),
                });
            }
            (None, None) => {
                return Err(SettingsError::Missing {
                    name: "REDSHIFT_WORKGROUP",
                    help: "set REDSHIFT_WORKGROUP (Serverless) or REDSHIFT_CLUSTER_ID (provisioned)",
                });
            }
        };
        let masking_key = match (get("MASKING_KEY_SECRET_ARN"), get("MASKING_KEY")) {
            (Some(_), Some(_)) => {
                return Err(SettingsError::Invalid {
                    name: "MASKING_KEY",
                    problem: "set MASKING_KEY_SECRET_ARN or MASKING_KEY, not both".into(),
                });
            }
            (Some(arn), None) => MaskingKeySource::Secret { arn, version: get("MASKING_KEY_VERSION") },
            // An environment variable is readable by anyone who can read the function's
            // configuration: inside Lambda (which sets AWS_LAMBDA_INITIALIZATION_TYPE for every
            // runtime) the key must come from Secrets Manager.
            (None, Some(_)) if get("AWS_LAMBDA_INITIALIZATION_TYPE").is_some() => {
                return Err(SettingsError::Invalid {
                    name: "MASKING_KEY",
                    problem: "an inline key is for local use only; in Lambda set MASKING_KEY_SECRET_ARN".into(),
                });
            }
            (None, Some(key)) => MaskingKeySource::Inline(key.into_bytes()),
            (None, None) => MaskingKeySource::None,
        };
        if get("MASKING_KEY_VERSION").is_some() && !matches!(masking_key, MaskingKeySource::Secret { .. }) {
            return Err(SettingsError::Invalid {
                name: "MASKING_KEY_VERSION",
                problem: "names a version of MASKING_KEY_SECRET_ARN, which is not set".into(),
            });
        }
        let deadline_margin = match get("DEADLINE_MARGIN_MS") {
            Some(ms) => Duration::from_millis(ms.parse().map_err(|_| SettingsError::Invalid {
                name: "DEADLINE_MARGIN_MS",
                problem: "not a whole number of milliseconds".into(),
            })?),
            None => Duration::from_secs(5),
        };
        let log_level = get("LOG_LEVEL").unwrap_or_else(|| "info".into()).to_lowercase();
        if !["error", "warn", "info", "debug", "trace"].contains(&log_level.as_str()) {
            return Err(SettingsError::Invalid {
                name: "LOG_LEVEL",
                problem: "expected error, warn, info, debug or trace".into(),
            });
        }
        let prefix = |name, default: &str| get(name).unwrap_or_else(|| default.into()).trim_matches('/').to_string();
        let dlq_prefix = prefix("DLQ_PREFIX", "dead-letter");
        if dlq_prefix.is_empty() {
            return Err(SettingsError::Invalid {
                name: "DLQ_PREFIX",
                problem: "must name a prefix: dead letters at the bucket's root would mix with archive/, \
                          quarantine/ and on-failure records, and a default replay would list none of them"
                    .into(),
            });
        }
        let archive_prefix = prefix("DLQ_ARCHIVE_PREFIX", "archive");
        if archive_prefix.is_empty()
            || archive_prefix == dlq_prefix
            || archive_prefix.starts_with(&format!("{dlq_prefix}/"))
        {
            return Err(SettingsError::Invalid {
                name: "DLQ_ARCHIVE_PREFIX",
                problem: "must be non-empty and outside DLQ_PREFIX, or replays would list archived objects again"
                    .into(),
            });
        }
        let quarantine_prefix = prefix("DLQ_QUARANTINE_PREFIX", "quarantine");
        let inside = |outer: &str, inner: &str| inner == outer || inner.starts_with(&format!("{outer}/"));
        if quarantine_prefix.is_empty()
            || inside(&dlq_prefix, &quarantine_prefix)
            || inside(&quarantine_prefix, &dlq_prefix)
            || inside(&archive_prefix, &quarantine_prefix)
            || inside(&quarantine_prefix, &archive_prefix)
        {
            return Err(SettingsError::Invalid {
                name: "DLQ_QUARANTINE_PREFIX",
                problem: "must be non-empty and apart from DLQ_PREFIX and DLQ_ARCHIVE_PREFIX, or replays would take quarantined records up again".into(),
            });
        }
        let staging_prefix = prefix("STAGING_PREFIX", "staging");
        if staging_prefix.is_empty()
            || [&dlq_prefix, &archive_prefix, &quarantine_prefix]
                .iter()
                .any(|other| inside(other, &staging_prefix) || inside(&staging_prefix, other))
        {
            return Err(SettingsError::Invalid {
                name: "STAGING_PREFIX",
                problem: "must be non-empty and apart from the dead-letter, archive and quarantine prefixes: \
                          the functions may delete objects under it"
                    .into(),
            });
        }
        let copy_role = get("REDSHIFT_COPY_ROLE_ARN");
        if let Some(role) = &copy_role
            && !role.eq_ignore_ascii_case("default")
            && !is_role_arn(role)
        {
            return Err(SettingsError::Invalid {
                name: "REDSHIFT_COPY_ROLE_ARN",
                problem: "expected an IAM role ARN (arn:aws:iam::<12-digit account>:role/<name>) or `default`".into(),
            });
        }
        let max_attempts = match get("REPLAY_MAX_ATTEMPTS") {
            None => crate::ingest::DEFAULT_MAX_ATTEMPTS,
            Some(text) => text.parse().ok().filter(|n| (1..=100).contains(n)).ok_or(SettingsError::Invalid {
                name: "REPLAY_MAX_ATTEMPTS",
                problem: "expected a whole number from 1 to 100".into(),
            })?,
        };
        let schema_registry = schema_registry(&get)?;
        Ok(Settings {
            config,
            target: Target { auth, database },
            dlq_bucket: required("DLQ_BUCKET", "the S3 bucket for dead-letter objects")?,
            dlq_prefix,
            archive_prefix,
            quarantine_prefix,
            max_attempts,
            kms_key_id: get("DLQ_KMS_KEY_ID"),
            staging_prefix,
            copy_role,
            masking_key,
            schema_registry,
            deadline_margin,
            metrics_namespace: get("METRICS_NAMESPACE").unwrap_or_else(|| "MskRedshiftCdc".into()),
            function_name: get("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|| default_function_name.into()),
            log_level,
        })
    }
}

/// `SCHEMA_REGISTRY`, `SCHEMA_REGISTRY_URL`, `SCHEMA_REGISTRY_SECRET_ARN`, checked together.
fn schema_registry(get: &impl Fn(&str) -> Option<String>) -> Result<Option<SchemaRegistrySettings>, SettingsError> {
    let invalid = |name, problem: &str| SettingsError::Invalid { name, problem: problem.into() };
    let (url, secret_arn) = (get("SCHEMA_REGISTRY_URL"), get("SCHEMA_REGISTRY_SECRET_ARN"));
    match get("SCHEMA_REGISTRY").map(|r| r.to_ascii_lowercase()).as_deref() {
        None | Some("none") if url.is_some() || secret_arn.is_some() => Err(invalid(
            "SCHEMA_REGISTRY",
            "SCHEMA_REGISTRY_URL or SCHEMA_REGISTRY_SECRET_ARN is set: set SCHEMA_REGISTRY=confluent too",
        )),
        None | Some("none") => Ok(None),
        Some("glue") if url.is_some() || secret_arn.is_some() => Err(invalid(
            if url.is_some() { "SCHEMA_REGISTRY_URL" } else { "SCHEMA_REGISTRY_SECRET_ARN" },
            "applies to SCHEMA_REGISTRY=confluent; Glue is reached with the function's role",
        )),
        Some("glue") => Ok(Some(SchemaRegistrySettings::Glue)),
        Some("confluent") => {
            let url = url.ok_or(SettingsError::Missing {
                name: "SCHEMA_REGISTRY_URL",
                help: "the Confluent-compatible registry's base URL (https://…)",
            })?;
            if let Some(problem) = registry_url_problem(&url, secret_arn.is_some()) {
                return Err(invalid("SCHEMA_REGISTRY_URL", problem));
            }
            Ok(Some(SchemaRegistrySettings::Confluent { url, secret_arn }))
        }
        Some(_) => Err(invalid("SCHEMA_REGISTRY", "expected `glue`, `confluent` or `none`")),
    }
}

/// What is wrong with `url` as a Confluent-compatible registry's base URL (`SCHEMA_REGISTRY_URL`,
/// `cdc connector-config --registry-url`), if anything. It is a base the request path is
/// appended to: scheme, host, optional port and path; no user name or password (basic auth
/// comes from a secret, never from a setting anyone reading the function's configuration
/// sees), query or fragment; `http://` with `credentials` only to this machine (`localhost`,
/// `127.x.x.x`, `[::1]`), where a password never crosses a network.
pub fn registry_url_problem(url: &str, credentials: bool) -> Option<&'static str> {
    let Ok(uri) = url.parse::<http::Uri>() else { return Some("not a URL") };
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Some("holds a user name or password: put them in the secret SCHEMA_REGISTRY_SECRET_ARN");
    }
    let host = uri.host().unwrap_or("");
    if host.is_empty() || uri.query().is_some() || url.contains('#') {
        return Some("expected the registry's base URL: scheme, host, optional port and path, no query or fragment");
    }
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let loopback =
        host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    match uri.scheme_str().map(str::to_ascii_lowercase).as_deref() {
        Some("https") => None,
        Some("http") if credentials && !loopback => Some(
            "basic auth (SCHEMA_REGISTRY_SECRET_ARN) over plain http:// would send the password in clear: use https:// (http:// only to a loopback address)",
        ),
        Some("http") => None,
        _ => Some("expected an http:// or https:// URL"),
    }
}

/// `arn:<partition>:iam::<12 digits>:role/<path/name>`: the form COPY's `IAM_ROLE` takes
/// ("Authorization parameters", COPY, Redshift Database Developer Guide).
fn is_role_arn(text: &str) -> bool {
    let mut parts = text.splitn(6, ':');
    let fields: Vec<&str> = parts.by_ref().collect();
    matches!(fields.as_slice(), ["arn", partition, "iam", "", account, resource]
        if partition.starts_with("aws")
            && account.len() == 12
            && account.bytes().all(|b| b.is_ascii_digit())
            && resource.strip_prefix("role/").is_some_and(|name| !name.is_empty() && !name.contains(char::is_whitespace) && !name.contains('\'')))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn the_copy_role_is_an_iam_role_arn_or_default() {
        assert!(is_role_arn("arn:aws:iam::123456789012:role/RedshiftCopy"));
        assert!(is_role_arn("arn:aws-us-gov:iam::123456789012:role/path/RedshiftCopy"));
        for bad in [
            "arn:aws:iam::12345:role/x",
            "arn:aws:s3:::bucket",
            "arn:aws:iam::123456789012:user/x",
            "role/x",
            "arn:aws:iam::123456789012:role/",
        ] {
            assert!(!is_role_arn(bad), "{bad}");
        }
    }

    fn settings(pairs: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Settings::from_lookup(|name| map.get(name).cloned(), "ingest")
    }

    const BASE: &[(&str, &str)] = &[
        ("CDC_CONFIG", "/var/task/pipeline.toml"),
        ("REDSHIFT_DATABASE", "dev"),
        ("REDSHIFT_WORKGROUP", "wg"),
        ("DLQ_BUCKET", "b"),
    ];

    #[test]
    fn staging_settings_are_checked() {
        let s = settings(BASE).unwrap();
        assert_eq!((s.staging_prefix.as_str(), s.copy_role.as_deref()), ("staging", None));
        for (name, value) in [
            ("REDSHIFT_COPY_ROLE_ARN", "not-an-arn"),
            ("STAGING_PREFIX", "dead-letter/staging"),
            ("STAGING_PREFIX", "archive"),
            ("STAGING_PREFIX", "/"),
        ] {
            let mut pairs = BASE.to_vec();
            pairs.push((name, value));
            let err = settings(&pairs).unwrap_err();
            assert!(matches!(err, SettingsError::Invalid { name: n, .. } if n == name), "{name}={value}: {err}");
            assert!(name != "REDSHIFT_COPY_ROLE_ARN" || !err.to_string().contains(value), "the value is echoed: {err}");
        }
        let mut pairs = BASE.to_vec();
        pairs.extend([("REDSHIFT_COPY_ROLE_ARN", "default"), ("STAGING_PREFIX", "/cdc/staging/")]);
        let s = settings(&pairs).unwrap();
        assert_eq!((s.staging_prefix.as_str(), s.copy_role.as_deref()), ("cdc/staging", Some("default")));
    }

    #[test]
    fn schema_registry_settings_go_together() {
        let with = |extra: &[(&'static str, &'static str)]| {
            let mut pairs = BASE.to_vec();
            pairs.extend_from_slice(extra);
            settings(&pairs)
        };
        assert_eq!(with(&[]).unwrap().schema_registry, None);
        assert_eq!(with(&[("SCHEMA_REGISTRY", "Glue")]).unwrap().schema_registry, Some(SchemaRegistrySettings::Glue));
        let arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:registry";
        assert_eq!(
            with(&[
                ("SCHEMA_REGISTRY", "confluent"),
                ("SCHEMA_REGISTRY_URL", "https://r:8081/"),
                ("SCHEMA_REGISTRY_SECRET_ARN", arn)
            ])
            .unwrap()
            .schema_registry,
            Some(SchemaRegistrySettings::Confluent { url: "https://r:8081/".into(), secret_arn: Some(arn.into()) })
        );
        for (pairs, variable) in [
            (&[("SCHEMA_REGISTRY", "avro")][..], "SCHEMA_REGISTRY"),
            (&[("SCHEMA_REGISTRY_URL", "https://r")][..], "SCHEMA_REGISTRY"),
            (&[("SCHEMA_REGISTRY", "glue"), ("SCHEMA_REGISTRY_URL", "https://r")][..], "SCHEMA_REGISTRY_URL"),
            (&[("SCHEMA_REGISTRY", "confluent"), ("SCHEMA_REGISTRY_URL", "r:8081")][..], "SCHEMA_REGISTRY_URL"),
            (
                &[
                    ("SCHEMA_REGISTRY", "confluent"),
                    ("SCHEMA_REGISTRY_URL", "http://r"),
                    ("SCHEMA_REGISTRY_SECRET_ARN", arn),
                ][..],
                "SCHEMA_REGISTRY_URL",
            ),
        ] {
            let err = with(pairs).unwrap_err();
            assert!(matches!(err, SettingsError::Invalid { name, .. } if name == variable), "{pairs:?}: {err}");
        }
        for bad in [
            "https://",
            "https://bad host",
            "https://user:hunter2@registry",
            "http://user:pw@registry",
            "https://registry/?x=1",
            "https://registry/#frag",
        ] {
            let err = with(&[("SCHEMA_REGISTRY", "confluent"), ("SCHEMA_REGISTRY_URL", bad)]).unwrap_err();
            assert!(matches!(err, SettingsError::Invalid { name: "SCHEMA_REGISTRY_URL", .. }), "{bad}: {err}");
            assert!(!err.to_string().contains("hunter2"), "{err}");
        }
        let err = with(&[("SCHEMA_REGISTRY", "glue"), ("SCHEMA_REGISTRY_SECRET_ARN", arn)]).unwrap_err();
        assert!(matches!(err, SettingsError::Invalid { name: "SCHEMA_REGISTRY_SECRET_ARN", .. }), "{err}");
        for local in ["http://127.0.0.1:8081", "http://localhost/registry", "http://[::1]:80"] {
            let s = with(&[
                ("SCHEMA_REGISTRY", "confluent"),
                ("SCHEMA_REGISTRY_URL", local),
                ("SCHEMA_REGISTRY_SECRET_ARN", arn),
            ]);
            assert!(s.is_ok(), "{local}: a loopback address may take credentials over http");
        }
        let err = with(&[
            ("SCHEMA_REGISTRY", "confluent"),
            ("SCHEMA_REGISTRY_URL", "http://127.0.0.1.evil.example/"),
            ("SCHEMA_REGISTRY_SECRET_ARN", arn),
        ])
        .unwrap_err();
        assert!(matches!(err, SettingsError::Invalid { name: "SCHEMA_REGISTRY_URL", .. }), "{err}");
        let err = with(&[("SCHEMA_REGISTRY", "confluent")]).unwrap_err();
        assert!(matches!(err, SettingsError::Missing { name: "SCHEMA_REGISTRY_URL", .. }), "{err}");
    }

    #[test]
    fn debug_output_withholds_an_inline_key() {
        let mut pairs = BASE.to_vec();
        pairs.push(("MASKING_KEY", "an-inline-key-that-must-never-be-printed"));
        let shown = format!("{:?}", settings(&pairs).unwrap());
        assert!(shown.contains("Inline(<40 bytes withheld>)"), "{shown}");
        assert!(!shown.contains("never-be-printed"), "{shown}");
    }

    #[test]
    fn minimal_settings_and_defaults() {
        let s = settings(BASE).unwrap();
        assert_eq!(s.target.auth, Auth::Workgroup { name: "wg".into(), secret_arn: None });
        assert_eq!((s.dlq_prefix.as_str(), s.archive_prefix.as_str()), ("dead-letter", "archive"));
        assert_eq!(s.deadline_margin, Duration::from_secs(5));
        assert_eq!(s.masking_key, MaskingKeySource::None);
        assert_eq!(s.function_name, "ingest");
        assert_eq!((s.quarantine_prefix.as_str(), s.max_attempts), ("quarantine", 5));
    }

    #[test]
    fn every_missing_or_invalid_setting_is_named() {
        for (drop, name) in [
            ("CDC_CONFIG", "CDC_CONFIG"),
            ("REDSHIFT_DATABASE", "REDSHIFT_DATABASE"),
            ("REDSHIFT_WORKGROUP", "REDSHIFT_WORKGROUP"),
            ("DLQ_BUCKET", "DLQ_BUCKET"),
        ] {
            let pairs: Vec<_> = BASE.iter().filter(|(k, _)| *k != drop).copied().collect();
            let err = settings(&pairs).unwrap_err();
            assert!(err.to_string().contains(name), "{err}");
        }
        let mut both = BASE.to_vec();
        both.push(("REDSHIFT_CLUSTER_ID", "c"));
        assert!(settings(&both).unwrap_err().to_string().contains("not both"));
        let mut bad = BASE.to_vec();
        bad.push(("DEADLINE_MARGIN_MS", "soon"));
        assert!(settings(&bad).unwrap_err().to_string().contains("DEADLINE_MARGIN_MS"));
        let mut keys = BASE.to_vec();
        keys.extend([("MASKING_KEY", "k"), ("MASKING_KEY_SECRET_ARN", "arn")]);
        assert!(settings(&keys).unwrap_err().to_string().contains("MASKING_KEY"));
        let mut archive = BASE.to_vec();
        archive.push(("DLQ_ARCHIVE_PREFIX", "dead-letter/archive"));
        assert!(settings(&archive).unwrap_err().to_string().contains("DLQ_ARCHIVE_PREFIX"));
        for quarantine in ["dead-letter/q", "archive", "archive/q", "/", ""] {
            let mut pairs = BASE.to_vec();
            pairs.push(("DLQ_QUARANTINE_PREFIX", quarantine));
            assert!(settings(&pairs).unwrap_err().to_string().contains("DLQ_QUARANTINE_PREFIX"), "{quarantine}");
        }
        for attempts in ["0", "101", "-1", "five"] {
            let mut pairs = BASE.to_vec();
            pairs.push(("REPLAY_MAX_ATTEMPTS", attempts));
            assert!(settings(&pairs).unwrap_err().to_string().contains("REPLAY_MAX_ATTEMPTS"), "{attempts}");
        }
        let mut three = BASE.to_vec();
        three.push(("REPLAY_MAX_ATTEMPTS", "3"));
        assert_eq!(settings(&three).unwrap().max_attempts, 3);
    }

    /// Review (issue 12): `DLQ_PREFIX=/` trims to an empty prefix. Dead letters are then written
    /// at the bucket's root (`decode/…`, `validate/…`) while a default replay lists `/` and finds
    /// nothing; and the root also holds `archive/`, `quarantine/` and `aws/lambda/`.
    #[test]
    fn review_an_empty_dead_letter_prefix_is_refused() {
        for empty in ["/", "//"] {
            let mut pairs = BASE.to_vec();
            pairs.push(("DLQ_PREFIX", empty));
            let result = settings(&pairs);
            assert!(result.is_err(), "DLQ_PREFIX={empty:?} accepted: {:?}", result.map(|s| s.dlq_prefix));
        }
    }

    #[test]
    fn the_masking_key_comes_from_secrets_manager_in_lambda_and_may_be_pinned() {
        let mut inline = BASE.to_vec();
        inline.push(("MASKING_KEY", "local-key-0123456789abcdef0123456789"));
        assert!(matches!(settings(&inline).unwrap().masking_key, MaskingKeySource::Inline(_)), "locally");
        inline.push(("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand"));
        let err = settings(&inline).unwrap_err().to_string();
        assert!(err.contains("MASKING_KEY") && err.contains("local use only"), "{err}");
        let mut pinned = BASE.to_vec();
        pinned.extend([("MASKING_KEY_SECRET_ARN", "arn:s"), ("MASKING_KEY_VERSION", "AWSCURRENT")]);
        assert_eq!(
            settings(&pinned).unwrap().masking_key,
            MaskingKeySource::Secret { arn: "arn:s".into(), version: Some("AWSCURRENT".into()) }
        );
        let mut orphan = BASE.to_vec();
        orphan.push(("MASKING_KEY_VERSION", "AWSCURRENT"));
        assert!(settings(&orphan).unwrap_err().to_string().contains("MASKING_KEY_VERSION"));
    }

    #[test]
    fn cluster_auth_forms() {
        let cluster = [
            ("CDC_CONFIG", "default"),
            ("REDSHIFT_DATABASE", "dev"),
            ("REDSHIFT_CLUSTER_ID", "c1"),
            ("REDSHIFT_DB_USER", "loader"),
            ("DLQ_BUCKET", "b"),
        ];
        let s = settings(&cluster).unwrap();
        assert_eq!(s.config, ConfigSource::DefaultRouting);
        assert_eq!(s.target.auth, Auth::Cluster { id: "c1".into(), db_user: Some("loader".into()), secret_arn: None });
    }
}
