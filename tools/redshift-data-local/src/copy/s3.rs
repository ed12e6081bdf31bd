//! Reading COPY's objects: every object whose key begins with the prefix (Developer Guide
//! *COPY from Amazon S3*, `copy-parameters-data-source-s3`: the FROM path is an "object prefix"
//! and "all objects" whose keys begin with it are loaded), with one S3 client per emulator.

use aws_config::BehaviorVersion;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::{Credentials, Region};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use tokio::sync::OnceCell;

use crate::errors::SqlError;

/// One object to load: its `s3://bucket/key` and its bytes as stored.
pub struct Object {
    pub url: String,
    pub bytes: bytes::Bytes,
}

/// The emulator's S3 client, built on first use.
pub struct S3 {
    endpoint: Option<String>,
    client: OnceCell<aws_sdk_s3::Client>,
}

impl S3 {
    /// `endpoint` overrides `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL`.
    pub fn new(endpoint: Option<String>) -> Self {
        S3 { endpoint, client: OnceCell::new() }
    }

    async fn client(&self) -> &aws_sdk_s3::Client {
        self.client
            .get_or_init(|| async {
                let mut loader = aws_config::defaults(BehaviorVersion::latest());
                // The region and credentials from the environment only: no instance metadata
                // lookups (seconds of timeouts on a developer machine). Without credentials in
                // the environment a local S3 server gets placeholder ones, which it accepts.
                let region = ["AWS_REGION", "AWS_DEFAULT_REGION"]
                    .iter()
                    .find_map(|v| std::env::var(v).ok().filter(|r| !r.is_empty()))
                    .unwrap_or_else(|| "us-east-1".to_owned());
                loader = loader.region(Region::new(region));
                if std::env::var_os("AWS_ACCESS_KEY_ID").is_none_or(|v| v.is_empty()) {
                    loader = loader.credentials_provider(Credentials::new(
                        "test",
                        "test",
                        None,
                        None,
                        "redshift-data-local",
                    ));
                }
                let shared = loader.load().await;
                // Path-style addressing: local S3 servers (moto) do not serve bucket subdomains.
                let mut config = aws_sdk_s3::config::Builder::from(&shared).force_path_style(true);
                if let Some(endpoint) = &self.endpoint {
                    config = config.endpoint_url(endpoint);
                }
                aws_sdk_s3::Client::from_conf(config.build())
            })
            .await
    }

    /// Every object under `s3://bucket/prefix`, in key order. No object is Redshift's
    /// "The specified S3 prefix '<prefix>' does not exist" (error 8001, as Redshift reports it in
    /// https://github.com/3scale/apisonator/issues/196 and https://github.com/apache/hop/issues/3469).
    pub async fn objects(&self, bucket: &str, prefix: &str, region: Option<&str>) -> Result<Vec<Object>, SqlError> {
        let client = self.client().await;
        let override_region = || {
            let mut config = aws_sdk_s3::config::Builder::default();
            if let Some(region) = region {
                config = config.region(Region::new(region.to_owned()));
            }
            config
        };
        let mut keys = Vec::new();
        let mut token = None;
        loop {
            let page = client
                .list_objects_v2()
                .bucket(bucket)
                .prefix(prefix)
                .set_continuation_token(token)
                .customize()
                .config_override(override_region())
                .send()
                .await
                .map_err(s3_error)?;
            for object in page.contents() {
                let Some(key) = object.key() else { continue };
                // A "folder" placeholder is not data.
                if key.ends_with('/') && object.size().unwrap_or(0) == 0 {
                    continue;
                }
                keys.push(key.to_owned());
            }
            token = page.next_continuation_token().map(str::to_owned);
            if token.is_none() {
                break;
            }
        }
        if keys.is_empty() {
            let text = format!("The specified S3 prefix '{prefix}' does not exist");
            return Err(SqlError::emulator(format!("{text} DETAIL: error: {text} code: 8001")));
        }
        keys.sort();
        let mut objects = Vec::with_capacity(keys.len());
        for key in keys {
            let output = client
                .get_object()
                .bucket(bucket)
                .key(&key)
                .customize()
                .config_override(override_region())
                .send()
                .await
                .map_err(s3_error)?;
            let bytes = output.body.collect().await.map_err(|_| read_failed())?.into_bytes();
            objects.push(Object { url: format!("s3://{bucket}/{key}"), bytes });
        }
        Ok(objects)
    }
}

fn read_failed() -> SqlError {
    SqlError::emulator("S3ServiceException:the object's body could not be read")
}

/// An S3 failure in Redshift's form, `S3ServiceException:<message>,Status <status>,Error <code>`
/// (as in https://github.com/awslabs/aws-lambda-redshift-loader/issues/73); it names S3's error
/// code, never object content.
fn s3_error<E: ProvideErrorMetadata>(error: SdkError<E, HttpResponse>) -> SqlError {
    let text = match &error {
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            let code = service.err().code().unwrap_or("Unknown");
            let message = service.err().message().unwrap_or(code);
            format!("S3ServiceException:{message},Status {status},Error {code}")
        }
        SdkError::TimeoutError(_) => "S3ServiceException:the S3 request timed out".to_owned(),
        SdkError::DispatchFailure(_) => "S3ServiceException:the S3 endpoint could not be reached".to_owned(),
        _ => "S3ServiceException:the S3 request failed".to_owned(),
    };
    SqlError::emulator(text)
}
