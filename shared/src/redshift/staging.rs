//! Where staged objects go (`load = "copy"`): an S3 location the functions may write and
//! delete, and the IAM role Redshift assumes to read it. Objects are named
//! `<prefix>/<schema>.<table>/<random>.csv.gz`: COPY loads every object whose key starts with
//! its `FROM` ("Amazon S3 object prefix", "COPY from Amazon S3"), and a fresh random name with
//! a fixed suffix is the prefix of no other object.
//!
//! The delete names the version the PUT created: in the (versioned) bucket the object's data
//! is then gone, not kept as a noncurrent version. The functions need `s3:DeleteObjectVersion`
//! on the prefix for it.
//!
//! Every write is encrypted like the dead letters ([`crate::dlq::Store`]'s choice): SSE-KMS
//! with the configured key and an S3 Bucket Key, or the bucket's default encryption. The role
//! needs `s3:GetObject` on the prefix (and `s3:ListBucket` for it) and `kms:Decrypt` on the key.

use aws_sdk_s3::Client;
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::primitives::ByteStream;
use tokio::time::Instant;

use super::copy::CopySource;
use super::error::DataApiError;
use crate::config::TableName;
use crate::dlq;

/// The staging location and the role that reads it; built once per cold start.
#[derive(Debug, Clone)]
pub struct Staging {
    /// The S3 client (path-style for a local endpoint, like the dead-letter store's).
    pub client: Client,
    /// The bucket (the dead-letter bucket: `DLQ_BUCKET`).
    pub bucket: String,
    /// The key prefix, no slashes at either end (`STAGING_PREFIX`, default `staging`).
    pub prefix: String,
    /// SSE-KMS with this key on every write; `None`: the bucket's default encryption.
    pub kms_key_id: Option<String>,
    /// The role in COPY's `IAM_ROLE` (`REDSHIFT_COPY_ROLE_ARN`): an ARN, or `default`.
    pub iam_role: String,
}

/// An object staged (or to be staged) for one transaction's COPY.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagedObject {
    /// The object's key.
    pub key: String,
    /// The COPY's source: `s3://bucket/key` and the role.
    pub source: CopySource,
}

impl Staging {
    /// A new object name for a COPY into `table`.
    pub fn object(&self, table: &TableName) -> StagedObject {
        let key = format!("{}/{}.{}/{}.csv.gz", self.prefix, table.schema, table.table, uuid::Uuid::new_v4().simple());
        let source = CopySource { url: format!("s3://{}/{key}", self.bucket), iam_role: self.iam_role.clone() };
        StagedObject { key, source }
    }

    /// `PutObject` of `body` (one attempt, by `deadline`): the version S3 gave the object
    /// (`None` in an unversioned bucket).
    pub async fn put(
        &self,
        object: &StagedObject,
        body: Vec<u8>,
        deadline: Instant,
    ) -> Result<Option<String>, DataApiError> {
        let request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(&object.key)
            .content_type("text/csv")
            .content_encoding("gzip")
            .body(ByteStream::from(body));
        let request = dlq::encrypted(self.kms_key_id.as_deref(), request);
        match tokio::time::timeout_at(deadline, request.send()).await {
            Err(_) => Err(DataApiError::Deadline { during: "staging an object", statement_id: None }),
            Ok(result) => result.map(|out| out.version_id).map_err(|e| staging_error("PutObject", e)),
        }
    }

    /// `DeleteObject` of `version` (one attempt, by `deadline`). In a versioned bucket a
    /// delete without the version only adds a delete marker and keeps the rows as a
    /// noncurrent version until the lifecycle rule expires it; with it, they are gone at once.
    pub async fn delete(
        &self,
        object: &StagedObject,
        version: Option<&str>,
        deadline: Instant,
    ) -> Result<(), DataApiError> {
        let request = self.client.delete_object().bucket(&self.bucket).key(&object.key);
        let request = request.set_version_id(version.map(str::to_owned)).send();
        match tokio::time::timeout_at(deadline, request).await {
            Err(_) => Err(DataApiError::Deadline { during: "deleting a staged object", statement_id: None }),
            Ok(result) => result.map(|_| ()).map_err(|e| staging_error("DeleteObject", e)),
        }
    }
}

fn staging_error<E: ProvideErrorMetadata>(
    operation: &'static str,
    err: aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> DataApiError {
    let status = err.raw_response().map(|r| r.status().as_u16());
    DataApiError::Staging { operation, code: dlq::error_code(&err), status }
}
