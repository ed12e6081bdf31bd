//! Schema registries: where the Avro schema of a registry frame ([`crate::avro::frame`]) comes
//! from, and the function-lifetime cache of the schemas read.
//!
//! - AWS Glue Schema Registry: `GetSchemaVersion(SchemaVersionId)` through `aws-sdk-glue`
//!   ([Glue API: GetSchemaVersion](https://docs.aws.amazon.com/glue/latest/webapi/API_GetSchemaVersion.html);
//!   an unknown id is `EntityNotFoundException`).
//! - A Confluent-compatible registry: `GET {url}/schemas/ids/{id}`, optionally with HTTP basic
//!   auth ([Confluent: Schema Registry API
//!   reference](https://docs.confluent.io/platform/current/schema-registry/develop/api.html#get--schemas-ids-int-%20id);
//!   the answer is `{"schema": "<text>"}`, with `schemaType` absent for Avro; an unknown id is
//!   HTTP 404 with `error_code` 40403).
//!
//! A schema id names one immutable schema in both registries, so a schema read once is kept
//! for the life of the function, and so is a schema that is not Avro. An id the registry does
//! not know is not kept: each batch that meets it asks again, and its records are rejected
//! (`avro_schema_unknown`). A registry that does not answer fails the batch
//! ([`RegistryError`]): the event source mapping retries it, no record is rejected for an
//! outage.
//!
//! Owns the registry clients and the cache; the frames and the Avro-to-Connect mapping are
//! [`crate::avro`]'s. Errors and logs carry schema ids, HTTP statuses and AWS error codes,
//! never a schema's text or a record's bytes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty, Limited};

use crate::avro::AvroError;
use crate::avro::connect::AvroSchema;
use crate::avro::frame::SchemaRef;

/// What a registry said of one schema id.
#[derive(Debug, Clone)]
pub enum Lookup {
    /// The schema, parsed.
    Found(Arc<AvroSchema>),
    /// The registry has no schema under this id (or it is another registry's id).
    Unknown,
    /// The registry's schema is not one the pipeline reads (not Avro; a type with no Connect
    /// form; schema references).
    Refused(AvroError),
}

/// A registry that did not answer: the batch fails and is retried. Names the registry, the
/// schema id and an HTTP status or AWS error code; never a body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the {registry} schema registry did not give schema {schema}: {detail}")]
pub struct RegistryError {
    /// `glue` or `confluent`.
    pub registry: &'static str,
    /// The schema id (`confluent:42`, `glue:<uuid>`).
    pub schema: String,
    /// `HTTP 503`, `AccessDeniedException`, `timed out`, `connection failed`…
    pub detail: String,
}

/// A Confluent-compatible registry's REST API. `Debug` withholds the credentials.
pub struct Confluent {
    /// The base URL, without a trailing slash (`https://registry.example:8081`).
    base: String,
    /// `Basic <base64(user:password)>`, when the registry asks for it.
    authorization: std::sync::RwLock<Option<String>>,
    /// Where the credentials came from, to read them again when the registry refuses them
    /// (a rotated password): Secrets Manager and the secret's ARN.
    secret: Option<(aws_sdk_secretsmanager::Client, String)>,
    client: hyper_util::client::legacy::Client<
        hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
        Empty<Bytes>,
    >,
    timeout: Duration,
}

impl std::fmt::Debug for Confluent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Confluent")
            .field("base", &self.base)
            .field("authorization", &"<withheld>")
            .field("secret", &self.secret.as_ref().map(|(_, arn)| arn))
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// The largest schema text read from a registry: a schema is kilobytes; a body past this is
/// not one.
const MAX_SCHEMA_BYTES: usize = 8 * 1024 * 1024;

/// Confluent's `error_code` for an unknown schema id.
const CONFLUENT_SCHEMA_NOT_FOUND: i64 = 40403;

impl Confluent {
    /// A client of the registry at `url` (`http://` or `https://`; TLS checks the server
    /// against the system's roots), with basic auth when `credentials` (user, password) are
    /// given. Each request times out after `timeout`.
    ///
    /// Errors: the system's root certificates cannot be read (`io::Error`).
    pub fn new(url: &str, credentials: Option<(&str, &str)>, timeout: Duration) -> std::io::Result<Confluent> {
        let https =
            hyper_rustls::HttpsConnectorBuilder::new().with_native_roots()?.https_or_http().enable_http1().build();
        let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build(https);
        let authorization = std::sync::RwLock::new(credentials.map(|(user, password)| basic(user, password)));
        Ok(Confluent { base: url.trim_end_matches('/').to_string(), authorization, secret: None, client, timeout })
    }

    /// Read the credentials again from this secret (`{"username", "password"}`) when the
    /// registry answers 401, and retry once: a rotated password takes effect without a cold
    /// start.
    pub fn refreshing_from(mut self, secrets: aws_sdk_secretsmanager::Client, arn: String) -> Confluent {
        self.secret = Some((secrets, arn));
        self
    }

    async fn fetch(&self, id: u32, schema: SchemaRef) -> Result<Lookup, RegistryError> {
        // Confluent's ids are Java ints: a larger one cannot be registered, and the REST API
        // answers it with a plain 404 (no error_code).
        if id > i32::MAX as u32 {
            return Ok(Lookup::Unknown);
        }
        match self.fetch_once(id, schema).await {
            Err(Refused::Unauthorized) if self.secret.is_some() => {
                self.load_credentials().await.map_err(|detail| RegistryError {
                    registry: "confluent",
                    schema: schema.to_string(),
                    detail: format!("reading SCHEMA_REGISTRY_SECRET_ARN again: {detail}"),
                })?;
                tracing::warn!(schema = %schema, "the schema registry refused the credentials: read them again from SCHEMA_REGISTRY_SECRET_ARN");
                self.fetch_once(id, schema).await.map_err(|e| e.into_error(schema))
            }
            other => other.map_err(|e| e.into_error(schema)),
        }
    }

    /// Read the credentials from the secret of [`Confluent::refreshing_from`] now (a cold
    /// start: a secret that cannot be read stops it). Errors: its AWS error code or what is
    /// wrong with its shape, never its content.
    pub async fn load_credentials(&self) -> Result<(), String> {
        use aws_sdk_secretsmanager::error::ProvideErrorMetadata as _;
        let Some((client, arn)) = &self.secret else { return Err("no secret to read the credentials from".into()) };
        let output = client
            .get_secret_value()
            .secret_id(arn)
            .send()
            .await
            .map_err(|e| e.code().unwrap_or("request failed").to_string())?;
        let (user, password) = output
            .secret_string()
            .and_then(basic_credentials)
            .ok_or("the SecretString is not {\"username\": …, \"password\": …}")?;
        *self.authorization.write().unwrap_or_else(|e| e.into_inner()) = Some(basic(&user, &password));
        Ok(())
    }

    async fn fetch_once(&self, id: u32, schema: SchemaRef) -> Result<Lookup, Refused> {
        let failed = |detail: String| Refused::Other(detail);
        let mut request = http::Request::get(format!("{}/schemas/ids/{id}", self.base))
            .header(http::header::ACCEPT, "application/vnd.schemaregistry.v1+json, application/json");
        if let Some(authorization) = self.authorization.read().unwrap_or_else(|e| e.into_inner()).as_deref() {
            request = request.header(http::header::AUTHORIZATION, authorization);
        }
        let request = request.body(Empty::new()).map_err(|_| failed("SCHEMA_REGISTRY_URL is not a URL".into()))?;
        let exchange = async {
            let response = self.client.request(request).await.map_err(|_| failed("connection failed".into()))?;
            let status = response.status();
            let body = Limited::new(response.into_body(), MAX_SCHEMA_BYTES)
                .collect()
                .await
                .map_err(|_| failed(format!("HTTP {}: the body could not be read", status.as_u16())))?
                .to_bytes();
            Ok::<_, Refused>((status, body))
        };
        let (status, body) =
            tokio::time::timeout(self.timeout, exchange).await.map_err(|_| failed("timed out".into()))??;
        #[derive(serde::Deserialize)]
        struct Answer {
            schema: Option<String>,
            #[serde(rename = "schemaType")]
            schema_type: Option<String>,
            #[serde(default)]
            references: Option<Vec<serde::de::IgnoredAny>>,
            error_code: Option<i64>,
        }
        let answer: Option<Answer> = serde_json::from_slice(&body).ok();
        let id_text = schema.to_string();
        if status == http::StatusCode::NOT_FOUND {
            return match answer.and_then(|a| a.error_code) {
                // 40401 (subject not found) and the like are another path's answers.
                Some(CONFLUENT_SCHEMA_NOT_FOUND) => Ok(Lookup::Unknown),
                _ => Err(failed(
                    "HTTP 404 without error_code 40403 (is SCHEMA_REGISTRY_URL the registry's root?)".into(),
                )),
            };
        }
        if status == http::StatusCode::UNAUTHORIZED {
            return Err(Refused::Unauthorized);
        }
        if status.is_redirection() {
            return Err(failed(format!(
                "HTTP {}: redirects are not followed; give SCHEMA_REGISTRY_URL as the registry answers it",
                status.as_u16()
            )));
        }
        if !status.is_success() {
            return Err(failed(format!("HTTP {}", status.as_u16())));
        }
        let Some(Answer { schema: Some(text), schema_type, references, .. }) = answer else {
            return Err(failed(format!("HTTP {}: not a schema answer", status.as_u16())));
        };
        if schema_type.is_some_and(|t| !t.eq_ignore_ascii_case("AVRO")) {
            return Ok(Lookup::Refused(AvroError::NotAvro(id_text)));
        }
        if references.is_some_and(|r| !r.is_empty()) {
            return Ok(Lookup::Refused(AvroError::Unsupported { schema: id_text, kind: "schema references".into() }));
        }
        Ok(parsed(&id_text, &text))
    }
}

/// Why one request got no schema: the credentials refused (worth reading them again), or
/// anything else.
enum Refused {
    Unauthorized,
    Other(String),
}

impl Refused {
    fn into_error(self, schema: SchemaRef) -> RegistryError {
        let detail = match self {
            Refused::Unauthorized => "HTTP 401".to_string(),
            Refused::Other(detail) => detail,
        };
        RegistryError { registry: "confluent", schema: schema.to_string(), detail }
    }
}

/// The `Authorization` header of HTTP basic auth.
fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
}

/// `(username, password)` of a secret's `{"username": …, "password": …}` (the shape of
/// Lambda's own `BASIC_AUTH` secrets for Kafka and schema registries).
fn basic_credentials(secret: &str) -> Option<(String, String)> {
    #[derive(serde::Deserialize)]
    struct Basic {
        username: String,
        password: String,
    }
    serde_json::from_str::<Basic>(secret).ok().map(|b| (b.username, b.password))
}

fn parsed(id: &str, text: &str) -> Lookup {
    match AvroSchema::parse(id, text) {
        Ok(schema) => Lookup::Found(Arc::new(schema)),
        Err(error) => Lookup::Refused(error),
    }
}

/// Where the functions read schemas from (`SCHEMA_REGISTRY`).
#[derive(Debug)]
pub enum Registry {
    /// AWS Glue Schema Registry (Glue frames).
    Glue(aws_sdk_glue::Client),
    /// A Confluent-compatible registry (Confluent frames); boxed, as it is the larger.
    Confluent(Box<Confluent>),
}

impl Registry {
    /// `glue` or `confluent`.
    pub fn name(&self) -> &'static str {
        match self {
            Registry::Glue(_) => "glue",
            Registry::Confluent(_) => "confluent",
        }
    }

    /// Whether `schema` is of this registry's kind (a Glue version id for Glue, a numeric id
    /// for a Confluent-compatible registry).
    pub fn reads(&self, schema: SchemaRef) -> bool {
        matches!(
            (self, schema),
            (Registry::Glue(_), SchemaRef::Glue(_)) | (Registry::Confluent(_), SchemaRef::Confluent(_))
        )
    }

    /// Ask the registry for `schema`. A frame of the other registry's kind is
    /// [`Lookup::Unknown`] without a request.
    ///
    /// Errors: [`RegistryError`] when the registry does not answer, refuses the function
    /// (`AccessDeniedException`, HTTP 401/403) or answers something that is not a schema.
    pub async fn fetch(&self, schema: SchemaRef) -> Result<Lookup, RegistryError> {
        match (self, schema) {
            (Registry::Confluent(client), SchemaRef::Confluent(id)) => client.fetch(id, schema).await,
            (Registry::Glue(client), SchemaRef::Glue(uuid)) => glue_fetch(client, uuid, schema).await,
            _ => Ok(Lookup::Unknown),
        }
    }
}

async fn glue_fetch(client: &aws_sdk_glue::Client, uuid: [u8; 16], schema: SchemaRef) -> Result<Lookup, RegistryError> {
    use aws_sdk_glue::error::ProvideErrorMetadata as _;
    use aws_sdk_glue::types::DataFormat;
    let id = uuid::Uuid::from_bytes(uuid).hyphenated().to_string();
    let output = match client.get_schema_version().schema_version_id(id).send().await {
        Ok(output) => output,
        Err(error) => {
            let code = error.code().map(str::to_string);
            return match code.as_deref() {
                Some("EntityNotFoundException") => Ok(Lookup::Unknown),
                Some(code) => Err(RegistryError { registry: "glue", schema: schema.to_string(), detail: code.into() }),
                None => Err(RegistryError {
                    registry: "glue",
                    schema: schema.to_string(),
                    detail: "request failed (no answer from Glue)".into(),
                }),
            };
        }
    };
    let id_text = schema.to_string();
    if output.data_format() != Some(&DataFormat::Avro) {
        return Ok(Lookup::Refused(AvroError::NotAvro(id_text)));
    }
    match output.schema_definition() {
        Some(text) => Ok(parsed(&id_text, text)),
        None => Err(RegistryError {
            registry: "glue",
            schema: id_text,
            detail: "the answer has no SchemaDefinition".into(),
        }),
    }
}

/// The schemas a function has read, by id, for its whole life; and the registry it reads
/// them from.
#[derive(Debug)]
pub struct SchemaCache {
    registry: Registry,
    schemas: Mutex<HashMap<SchemaRef, Lookup>>,
}

impl SchemaCache {
    /// An empty cache in front of `registry`.
    pub fn new(registry: Registry) -> SchemaCache {
        SchemaCache { registry, schemas: Mutex::new(HashMap::new()) }
    }

    /// The registry behind the cache.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// What is known of each of `refs`, asking the registry (one at a time) for those not yet
    /// cached. Found and refused schemas are cached; unknown ids are not.
    ///
    /// Errors: the first [`RegistryError`]: the batch cannot be read and must be retried.
    pub async fn resolve(&self, refs: &[SchemaRef]) -> Result<HashMap<SchemaRef, Lookup>, RegistryError> {
        let mut known: HashMap<SchemaRef, Lookup> = {
            let cached = self.schemas.lock().unwrap_or_else(|e| e.into_inner());
            refs.iter().filter_map(|r| cached.get(r).map(|l| (*r, l.clone()))).collect()
        };
        for schema in refs.iter().filter(|r| !known.contains_key(r)).copied().collect::<Vec<_>>() {
            let lookup = self.registry.fetch(schema).await?;
            match &lookup {
                Lookup::Unknown if !self.registry.reads(schema) => {
                    tracing::warn!(schema = %schema, registry = self.registry.name(), "a frame in the other registry's wire format than SCHEMA_REGISTRY's: its records are rejected (avro_schema_unknown)")
                }
                Lookup::Unknown => {
                    tracing::warn!(schema = %schema, registry = self.registry.name(), "the schema registry does not know this schema id: its records are rejected (avro_schema_unknown)")
                }
                Lookup::Refused(error) => {
                    tracing::warn!(schema = %schema, rule = error.rule().as_str(), error = %error, "schema refused: its records are rejected")
                }
                Lookup::Found(_) => {
                    tracing::info!(schema = %schema, registry = self.registry.name(), "schema read from the registry")
                }
            }
            if !matches!(lookup, Lookup::Unknown) {
                self.schemas.lock().unwrap_or_else(|e| e.into_inner()).insert(schema, lookup.clone());
            }
            known.insert(schema, lookup);
        }
        Ok(known)
    }
}
