//! The AWS JSON 1.1 shapes of the Redshift Data API: request bodies, response bodies, the
//! `Field` union, `ColumnMetadata` and the error body.
//!
//! Every request member is an `Option` so that a missing member becomes our own
//! `ValidationException` (as AWS answers) while only unparsable JSON or a wrong JSON type
//! becomes a `SerializationException`. Members that change nothing here (`WithEvent`,
//! `RoleLevel`, `ConnectedDatabase`) are not declared: unknown members are ignored.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

/// Seconds since the Unix epoch with millisecond precision. AWS JSON 1.1 timestamps are JSON
/// numbers; the Rust SDK rejects ISO-8601 strings.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize)]
#[serde(transparent)]
pub struct Epoch(f64);

impl Epoch {
    pub fn now() -> Self {
        let millis = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
        Epoch(millis as f64 / 1000.0)
    }
}

/// Members shared by ExecuteStatement, BatchExecuteStatement and DescribeTable that say where
/// and as whom to run.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Target {
    pub database: Option<String>,
    pub cluster_identifier: Option<String>,
    pub workgroup_name: Option<String>,
    pub secret_arn: Option<String>,
    pub db_user: Option<String>,
}

/// ExecuteStatement and BatchExecuteStatement (`Sql` for the first, `Sqls` for the second).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SubmitInput {
    pub sql: Option<String>,
    pub sqls: Option<Vec<String>>,
    #[serde(flatten)]
    pub target: Target,
    pub client_token: Option<String>,
    pub statement_name: Option<String>,
    pub parameters: Option<serde_json::Value>,
    pub session_id: Option<String>,
    pub session_keep_alive_seconds: Option<i64>,
    pub result_format: Option<String>,
    pub execution_mode: Option<String>,
    pub wait_time_seconds: Option<i64>,
}

/// DescribeStatement, GetStatementResult and CancelStatement.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct IdInput {
    pub id: Option<String>,
    pub next_token: Option<String>,
    pub wait_time_seconds: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeTableInput {
    #[serde(flatten)]
    pub target: Target,
    pub schema: Option<String>,
    pub table: Option<String>,
    pub next_token: Option<String>,
    pub max_results: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListStatementsInput {
    pub max_results: Option<i64>,
    pub next_token: Option<String>,
    pub status: Option<String>,
    pub statement_name: Option<String>,
    pub database: Option<String>,
    pub cluster_identifier: Option<String>,
    pub workgroup_name: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SubmitOutput {
    pub id: String,
    /// The status when the call returns (after `WaitTimeSeconds`, if any). There is no `Error`
    /// member: DescribeStatement gives the error of a FAILED statement.
    pub status: &'static str,
    /// Only with `WaitTimeSeconds`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redshift_pid: Option<i64>,
    /// Only with `WaitTimeSeconds`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub has_result_set: Option<bool>,
    pub created_at: Epoch,
    pub database: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub db_user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_identifier: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workgroup_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_arn: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeOutput {
    pub id: String,
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub created_at: Epoch,
    pub updated_at: Epoch,
    pub duration: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query_string: Option<String>,
    pub has_result_set: bool,
    pub result_rows: i64,
    pub result_size: i64,
    pub redshift_pid: i64,
    pub redshift_query_id: i64,
    pub database: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub db_user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_identifier: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workgroup_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub_statements: Option<Vec<SubStatementData>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SubStatementData {
    pub id: String,
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub query_string: String,
    pub duration: i64,
    pub result_rows: i64,
    pub result_size: i64,
    pub has_result_set: bool,
    pub created_at: Epoch,
    pub updated_at: Epoch,
    pub redshift_query_id: i64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetResultOutput<'a> {
    pub records: &'a [Vec<Field>],
    pub column_metadata: &'a [ColumnMetadata],
    pub total_num_rows: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeTableOutput {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table_name: Option<String>,
    pub column_list: Vec<ColumnMetadata>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CancelOutput {
    pub status: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListStatementsOutput {
    pub statements: Vec<StatementData>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct StatementData {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query_string: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query_strings: Option<Vec<String>>,
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub statement_name: Option<String>,
    pub created_at: Epoch,
    pub updated_at: Epoch,
    pub is_batch_statement: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_arn: Option<String>,
}

/// One value of `GetStatementResult.Records`. Serde's externally tagged enum gives exactly one
/// key per value, which the SDKs require of this union.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Field {
    #[serde(rename = "isNull")]
    IsNull(bool),
    #[serde(rename = "booleanValue")]
    Boolean(bool),
    #[serde(rename = "longValue")]
    Long(i64),
    #[serde(rename = "doubleValue")]
    Double(f64),
    #[serde(rename = "stringValue")]
    String(String),
    /// Base64 text of the bytes.
    #[serde(rename = "blobValue")]
    Blob(String),
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ColumnMetadata {
    pub is_case_sensitive: bool,
    pub is_currency: bool,
    pub is_signed: bool,
    pub label: String,
    pub length: i32,
    pub name: String,
    pub nullable: i32,
    pub precision: i32,
    pub scale: i32,
    pub schema_name: String,
    pub table_name: String,
    pub type_name: String,
    pub column_default: Option<String>,
}

/// The `__type` of an error body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    Validation,
    ResourceNotFound,
    Throttling,
    InternalServer,
    ActiveStatementsExceeded,
    DatabaseConnection,
    UnknownOperation,
    Serialization,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Validation => "ValidationException",
            ErrorCode::ResourceNotFound => "ResourceNotFoundException",
            ErrorCode::Throttling => "ThrottlingException",
            ErrorCode::InternalServer => "InternalServerException",
            ErrorCode::ActiveStatementsExceeded => "ActiveStatementsExceededException",
            ErrorCode::DatabaseConnection => "DatabaseConnectionException",
            ErrorCode::UnknownOperation => "UnknownOperationException",
            ErrorCode::Serialization => "SerializationException",
        }
    }

    /// The HTTP status AWS uses (Smithy `httpError`); the SDKs retry 5xx and throttling only.
    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::ResourceNotFound => StatusCode::NOT_FOUND,
            ErrorCode::InternalServer | ErrorCode::DatabaseConnection => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Validation
            | ErrorCode::Throttling
            | ErrorCode::ActiveStatementsExceeded
            | ErrorCode::UnknownOperation
            | ErrorCode::Serialization => StatusCode::BAD_REQUEST,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An API-level error: the call itself fails (unlike SQL errors, which fail the statement).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    /// `ResourceId` of ResourceNotFoundException.
    pub resource_id: Option<String>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError { code, message: message.into(), resource_id: None }
    }

    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Validation, message)
    }

    pub fn not_found(id: &str) -> Self {
        ApiError {
            resource_id: Some(id.to_owned()),
            ..Self::new(ErrorCode::ResourceNotFound, format!("Query {id} does not exist."))
        }
    }

    pub fn body(&self) -> serde_json::Value {
        let mut body = serde_json::json!({ "__type": self.code.as_str(), "message": self.message });
        if let Some(id) = &self.resource_id {
            body["ResourceId"] = id.clone().into();
        }
        body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_variant_serializes_to_exactly_one_key() {
        let fields = [
            Field::IsNull(true),
            Field::Boolean(false),
            Field::Long(-7),
            Field::Double(1.5),
            Field::String("x".into()),
            Field::Blob("aGk=".into()),
        ];
        let keys = ["isNull", "booleanValue", "longValue", "doubleValue", "stringValue", "blobValue"];
        for (field, key) in fields.iter().zip(keys) {
            let value = serde_json::to_value(field).unwrap();
            let object = value.as_object().unwrap();
            assert_eq!(object.len(), 1, "{value}");
            assert!(object.contains_key(key), "{value} lacks {key}");
        }
    }

    #[test]
    fn epoch_is_a_json_number_with_a_fraction() {
        let value = serde_json::to_value(Epoch(1_764_000_000.123)).unwrap();
        assert!(value.is_f64());
        assert_eq!(value.to_string(), "1764000000.123");
        assert!(Epoch::now().0 > 1_600_000_000.0);
    }

    #[test]
    fn error_body_carries_type_message_and_resource_id() {
        let error = ApiError::not_found("abc");
        assert_eq!(error.code.status(), StatusCode::NOT_FOUND);
        let body = error.body();
        assert_eq!(body["__type"], "ResourceNotFoundException");
        assert_eq!(body["ResourceId"], "abc");
        assert!(body["message"].as_str().unwrap().contains("abc"));
        assert_eq!(body.as_object().unwrap().len(), 3);
    }

    #[test]
    fn submit_input_reads_pascal_case_and_flattened_target() {
        let input: SubmitInput = serde_json::from_str(
            r#"{"Sql":"select 1","Database":"dev","WorkgroupName":"wg","ClientToken":"t","Unknown":1}"#,
        )
        .unwrap();
        assert_eq!(input.sql.as_deref(), Some("select 1"));
        assert_eq!(input.target.database.as_deref(), Some("dev"));
        assert_eq!(input.target.workgroup_name.as_deref(), Some("wg"));
        assert_eq!(input.client_token.as_deref(), Some("t"));
        assert!(serde_json::from_str::<SubmitInput>(r#"{"Sql":5}"#).is_err());
    }
}
