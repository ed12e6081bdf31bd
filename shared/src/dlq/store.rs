//! The S3 side of the dead-letter store: [`Store`] writes a batch's objects all or none,
//! reads, archives and lists them, every write encrypted the same way
//! ([`Store::encrypted`]).
//!
//! Owns every S3 call of the pipeline. It must not read or write an object's content beyond
//! passing it through (the format is `format.rs`'s), nor put anything but codes, the bucket
//! and the key in an error.

use std::fmt::Write as _;

use aws_sdk_s3::Client;
use aws_sdk_s3::operation::copy_object::builders::CopyObjectFluentBuilder;
use aws_sdk_s3::operation::put_object::builders::PutObjectFluentBuilder;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ServerSideEncryption;

use super::format::Object;

/// Where dead letters go and how they are encrypted.
#[derive(Debug, Clone)]
pub struct Store {
    /// The S3 client (path-style addressing for a local endpoint: `wiring::build`).
    pub client: Client,
    /// The dead-letter bucket (`DLQ_BUCKET`): every write goes here.
    pub bucket: String,
    /// The key prefix of dead-letter objects (`DLQ_PREFIX`, default `dead-letter`; the
    /// settings strip its slashes).
    pub prefix: String,
    /// Replayed objects move here (`<archive prefix>/<original key>`).
    pub archive_prefix: String,
    /// Records dead-lettered more than the replay's attempts cap go here instead of `prefix`,
    /// out of every default replay's way (`<quarantine prefix>/<stage>/…`).
    pub quarantine_prefix: String,
    /// SSE-KMS with this key (and an S3 Bucket Key) on every write. `None`: no encryption
    /// header, so the bucket's default encryption applies — the template's SSE-KMS key; S3
    /// encrypts every new object with SSE-S3 at least
    /// (<https://docs.aws.amazon.com/AmazonS3/latest/userguide/default-encryption-faq.html>).
    pub kms_key_id: Option<String>,
}

/// One page of a listing: keys in key order with their last-modified time (epoch seconds),
/// and the token of the next page.
#[derive(Debug, Default)]
pub struct Page {
    /// (key, last modified in seconds since the Unix epoch; 0 when S3 gives none).
    pub keys: Vec<(String, i64)>,
    /// The continuation token of the next page; `None` on the last.
    pub next: Option<String>,
}

/// An S3 request that failed: which, on what, and the error code. Never a body.
#[derive(Debug, thiserror::Error)]
#[error("S3 {operation} of s3://{bucket}/{key} failed: {code}")]
pub struct StoreError {
    /// The S3 operation: `PutObject`, `GetObject`, `DeleteObject`, `CopyObject`,
    /// `ListObjectsV2`.
    pub operation: &'static str,
    /// The bucket the request went to.
    pub bucket: String,
    /// The object's key (a listing's prefix; a copy's target key).
    pub key: String,
    /// S3's error code (`AccessDenied`, `NoSuchKey`…), or ours: `Timeout`, `DispatchFailure`,
    /// `UnreadableResponse`, `BodyReadFailed`, `NotUtf8`, `Unknown`.
    pub code: String,
}

fn s3_error<E: aws_sdk_s3::error::ProvideErrorMetadata + std::fmt::Debug>(
    operation: &'static str,
    bucket: &str,
    key: &str,
    err: aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> StoreError {
    StoreError { operation, bucket: bucket.into(), key: key.into(), code: error_code(&err) }
}

/// The code of a failed S3 request: S3's (`AccessDenied`, `SlowDown`…), or ours when there
/// was no usable answer (`Timeout`, `DispatchFailure`, `UnreadableResponse`, `Unknown`).
/// Never a body. Shared with the staged objects of `load = "copy"` (`redshift::staging`).
pub(crate) fn error_code<E: aws_sdk_s3::error::ProvideErrorMetadata, R>(
    err: &aws_sdk_s3::error::SdkError<E, R>,
) -> String {
    use aws_sdk_s3::error::SdkError;
    match err {
        SdkError::ServiceError(e) => e.err().code().unwrap_or("Unknown").to_string(),
        SdkError::TimeoutError(_) => "Timeout".into(),
        SdkError::DispatchFailure(_) => "DispatchFailure".into(),
        SdkError::ResponseError(_) => "UnreadableResponse".into(),
        _ => "Unknown".into(),
    }
}

/// A request that writes an object and can name its encryption: the SDK's `PutObject` and
/// `CopyObject` builders share the setters but no trait.
pub(crate) trait EncryptedWrite {
    /// SSE-KMS with `key`, and an S3 Bucket Key.
    fn sse_kms_with_bucket_key(self, key: &str) -> Self;
}

macro_rules! encrypted_write {
    ($($builder:ty),*) => {$(
        impl EncryptedWrite for $builder {
            fn sse_kms_with_bucket_key(self, key: &str) -> Self {
                self.server_side_encryption(ServerSideEncryption::AwsKms).ssekms_key_id(key).bucket_key_enabled(true)
            }
        }
    )*};
}

encrypted_write!(PutObjectFluentBuilder, CopyObjectFluentBuilder);

/// [`Store::encrypted`]'s decision for any writer of the bucket (the staged objects of
/// `load = "copy"` too): SSE-KMS with `kms_key_id` and an S3 Bucket Key, or no header.
pub(crate) fn encrypted<R: EncryptedWrite>(kms_key_id: Option<&str>, request: R) -> R {
    match kms_key_id {
        Some(key) => request.sse_kms_with_bucket_key(key),
        None => request,
    }
}

impl Store {
    /// The one encryption decision, for every request that writes an object (`PutObject`,
    /// `CopyObject`): SSE-KMS with [`Store::kms_key_id`] and an S3 Bucket Key (one KMS call per
    /// bucket key period instead of one per object) when a key is set; otherwise no header,
    /// and the bucket's default encryption applies.
    fn encrypted<R: EncryptedWrite>(&self, request: R) -> R {
        encrypted(self.kms_key_id.as_deref(), request)
    }

    /// Write one object, encrypted at rest.
    async fn put(&self, object: &Object) -> Result<(), StoreError> {
        let request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(&object.key)
            .content_type("application/x-ndjson")
            .body(ByteStream::from(object.body.clone().into_bytes()));
        self.encrypted(request).send().await.map_err(|e| s3_error("PutObject", &self.bucket, &object.key, e))?;
        Ok(())
    }

    /// Write every object, or none: if one write fails, every object of the set is deleted
    /// again (best effort) so that the retried batch does not leave a second copy. Failed
    /// writes are deleted too: a write whose answer was lost may have been stored, and
    /// deleting a key that does not exist is harmless. Writes run concurrently.
    ///
    /// Errors: the [`StoreError`] of the first failed `PutObject`, in `objects` order.
    pub async fn put_all(&self, objects: &[Object]) -> Result<(), StoreError> {
        let results = futures_util::future::join_all(objects.iter().map(|o| self.put(o))).await;
        if let Some(error) = results.into_iter().find_map(Result::err) {
            let deletes = objects.iter().map(|object| self.delete(&self.bucket, &object.key));
            let _ = futures_util::future::join_all(deletes).await;
            return Err(error);
        }
        Ok(())
    }

    /// An object's body as text.
    ///
    /// Errors: [`StoreError`] for `GetObject` when the request fails (`NoSuchKey`,
    /// `AccessDenied`…), `BodyReadFailed` when the body stops, `NotUtf8` when it is not UTF-8.
    pub async fn get(&self, bucket: &str, key: &str) -> Result<String, StoreError> {
        let output = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| s3_error("GetObject", bucket, key, e))?;
        let failed = |code: &str| StoreError {
            operation: "GetObject",
            bucket: bucket.into(),
            key: key.into(),
            code: code.into(),
        };
        let bytes = output.body.collect().await.map_err(|_| failed("BodyReadFailed"))?;
        String::from_utf8(bytes.into_bytes().to_vec()).map_err(|_| failed("NotUtf8"))
    }

    async fn delete(&self, bucket: &str, key: &str) -> Result<(), StoreError> {
        self.client
            .delete_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| s3_error("DeleteObject", bucket, key, e))?;
        Ok(())
    }

    /// Move an object under the archive prefix: copy (encrypted), then delete the original.
    /// Returns the archive key, `<archive prefix>/<key>`.
    ///
    /// Errors: [`StoreError`] of the `CopyObject` (nothing moved) or of the `DeleteObject`
    /// (the copy exists and the original stays: a later replay finds its records stale).
    pub async fn archive(&self, bucket: &str, key: &str) -> Result<String, StoreError> {
        let target = format!("{}/{key}", self.archive_prefix.trim_end_matches('/'));
        let source = format!("{bucket}/{}", url_encode_key(key));
        let request = self.client.copy_object().bucket(bucket).key(&target).copy_source(source);
        // Without an encryption header the copy takes the bucket's default encryption, not the
        // source object's (CopyObject, "Server-side encryption").
        self.encrypted(request).send().await.map_err(|e| s3_error("CopyObject", bucket, &target, e))?;
        self.delete(bucket, key).await?;
        Ok(target)
    }

    /// One page (at most `max_keys`; S3 caps a page at 1,000) of the keys under `prefix` after
    /// `start_after`, from the page `token` names (`None`: the first). Pages, not the whole
    /// listing: a replay starts on the first page however many objects wait.
    ///
    /// Errors: [`StoreError`] for `ListObjectsV2`, with the prefix as its key.
    pub async fn list_page(
        &self,
        bucket: &str,
        prefix: &str,
        start_after: Option<&str>,
        token: Option<&str>,
        max_keys: i32,
    ) -> Result<Page, StoreError> {
        let output = self
            .client
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .set_start_after(start_after.map(str::to_string))
            .set_continuation_token(token.map(str::to_string))
            .max_keys(max_keys)
            .send()
            .await
            .map_err(|e| s3_error("ListObjectsV2", bucket, prefix, e))?;
        let keys = output
            .contents()
            .iter()
            .filter_map(|o| o.key().map(|k| (k.to_string(), o.last_modified().map_or(0, |t| t.secs()))))
            .collect();
        let next = match output.next_continuation_token() {
            Some(next) if output.is_truncated() == Some(true) => Some(next.to_string()),
            _ => None,
        };
        Ok(Page { keys, next })
    }
}

/// The objects under a prefix, in key order, each with its last-modified time (epoch
/// seconds), read one page at a time as the caller reaches them ([`Store::listing`]): the
/// replay's walk and `cdc dlq list` share it. A listing starts at once however many objects
/// wait, and never holds more than a page.
#[derive(Debug)]
pub struct Listing {
    prefix: String,
    /// Keys per page, at most S3's 1,000.
    page_size: i32,
    /// Key prefixes passed over.
    skip: Vec<String>,
    start_after: Option<String>,
    page: std::collections::VecDeque<(String, i64)>,
    token: Option<String>,
    done: bool,
}

impl Listing {
    /// The prefix listed.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The next key and its last-modified time (0 when S3 gives none); `None` at the end.
    ///
    /// Errors: [`StoreError`] for the `ListObjectsV2` of a page (keys already answered stay
    /// answered; a later call asks for the page again).
    pub async fn next(&mut self, store: &Store) -> Result<Option<(String, i64)>, StoreError> {
        loop {
            if let Some((key, modified)) = self.page.pop_front() {
                if self.skip.iter().any(|s| key.starts_with(s.as_str())) {
                    continue;
                }
                return Ok(Some((key, modified)));
            }
            if self.done {
                return Ok(None);
            }
            let next = store
                .list_page(
                    &store.bucket,
                    &self.prefix,
                    self.start_after.as_deref(),
                    self.token.as_deref(),
                    self.page_size,
                )
                .await?;
            self.page.extend(next.keys);
            self.done = next.next.is_none();
            self.token = next.next;
        }
    }
}

impl Store {
    /// The objects of the bucket under `prefix` (default: the dead-letter prefix, as a
    /// directory) after `start_after`, `page_size` keys per request (1 to 1,000). Archived
    /// objects are done and quarantined ones wait for an operator: the archive and quarantine
    /// prefixes are passed over unless `prefix` names one of them (with or without its slash);
    /// an empty prefix lists the rest of the bucket (`aws/lambda/` included).
    pub fn listing(&self, prefix: Option<&str>, start_after: Option<String>, page_size: i32) -> Listing {
        let prefix = prefix.map_or_else(|| format!("{}/", self.prefix.trim_end_matches('/')), str::to_string);
        let mut skip = vec![format!("{}/", self.archive_prefix.trim_end_matches('/'))];
        skip.push(format!("{}/", self.quarantine_prefix.trim_end_matches('/')));
        // A prefix names a directory with or without its slash (`quarantine`).
        let as_directory = format!("{}/", prefix.trim_end_matches('/'));
        skip.retain(|s| prefix.is_empty() || !as_directory.starts_with(s.as_str()));
        Listing {
            prefix,
            page_size: page_size.clamp(1, 1000),
            skip,
            start_after,
            page: Default::default(),
            token: None,
            done: false,
        }
    }
}

/// Percent-encode a key for `CopySource` (slashes kept).
fn url_encode_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_source_keys_are_encoded() {
        assert_eq!(url_encode_key("a/b c+d.jsonl"), "a/b%20c%2Bd.jsonl");
    }
}
