//! Data API errors and the one place that decides which are worth retrying.
//!
//! A database error message can quote the offending value (e.g. PostgreSQL's
//! `invalid input syntax for type integer: "…"`, Redshift's `Invalid digit, Value '…'`), so
//! it is reduced to a class at once and the text is dropped: nothing here can carry a value.

use std::fmt;

/// What kind of database error failed a statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DbErrorClass {
    /// Redshift `1023` serializable isolation violation; PostgreSQL SQLSTATE 40001.
    SerializationFailure,
    /// Redshift Serverless snapshot isolation: "conflict with concurrent transaction".
    ConcurrentTransaction,
    /// SQLSTATE 40P01.
    Deadlock,
    /// A value longer than its column (SQLSTATE 22001).
    ValueTooLong,
    /// A value the column type cannot read (SQLSTATE 22P02, 22007, 22008, Redshift "Invalid digit").
    InvalidValue,
    /// Numeric overflow (SQLSTATE 22003).
    OutOfRange,
    /// NULL into a NOT NULL column (SQLSTATE 23502).
    NotNull,
    /// A unique or check constraint (SQLSTATE 23xxx).
    Constraint,
    /// A table, column or function that does not exist (SQLSTATE 42P01, 42703, 42883, 3F000).
    UndefinedObject,
    /// SQL the database cannot parse (SQLSTATE 42601) or types it cannot match (42804).
    SyntaxOrType,
    /// Missing privileges (SQLSTATE 42501).
    Permission,
    /// The statement was cancelled or aborted.
    Aborted,
    /// Anything else.
    Other,
}

impl DbErrorClass {
    pub fn as_str(self) -> &'static str {
        match self {
            DbErrorClass::SerializationFailure => "serialization_failure",
            DbErrorClass::ConcurrentTransaction => "concurrent_transaction",
            DbErrorClass::Deadlock => "deadlock",
            DbErrorClass::ValueTooLong => "value_too_long",
            DbErrorClass::InvalidValue => "invalid_value",
            DbErrorClass::OutOfRange => "out_of_range",
            DbErrorClass::NotNull => "not_null_violation",
            DbErrorClass::Constraint => "constraint_violation",
            DbErrorClass::UndefinedObject => "undefined_object",
            DbErrorClass::SyntaxOrType => "syntax_or_type",
            DbErrorClass::Permission => "permission_denied",
            DbErrorClass::Aborted => "aborted",
            DbErrorClass::Other => "sql_error",
        }
    }

    /// Classify a database error text (the message itself is not kept).
    pub fn classify(message: &str) -> DbErrorClass {
        let lower = message.to_ascii_lowercase();
        if let Some(code) = sqlstate(message) {
            let class = match code {
                "40001" => Some(DbErrorClass::SerializationFailure),
                "40P01" => Some(DbErrorClass::Deadlock),
                "22001" => Some(DbErrorClass::ValueTooLong),
                "22P02" | "22007" | "22008" | "22021" | "22P05" | "22023" => Some(DbErrorClass::InvalidValue),
                "22003" => Some(DbErrorClass::OutOfRange),
                "23502" => Some(DbErrorClass::NotNull),
                "42P01" | "42703" | "42883" | "3F000" | "3D000" | "42704" => Some(DbErrorClass::UndefinedObject),
                "42601" | "42804" | "42846" => Some(DbErrorClass::SyntaxOrType),
                "42501" => Some(DbErrorClass::Permission),
                "57014" => Some(DbErrorClass::Aborted),
                c if c.starts_with("23") => Some(DbErrorClass::Constraint),
                _ => None,
            };
            if let Some(class) = class {
                return class;
            }
        }
        if lower.contains("1023") && lower.contains("serializable isolation violation") {
            DbErrorClass::SerializationFailure
        } else if lower.contains("conflict with concurrent transaction") || lower.contains("could not serialize access")
        {
            DbErrorClass::ConcurrentTransaction
        } else if lower.contains("deadlock detected") {
            DbErrorClass::Deadlock
        } else if lower.contains("value too long") {
            DbErrorClass::ValueTooLong
        } else if lower.contains("invalid input syntax")
            || lower.contains("invalid digit")
            || lower.contains("invalid timestamp")
        {
            DbErrorClass::InvalidValue
        } else if lower.contains("out of range") || lower.contains("overflow") {
            DbErrorClass::OutOfRange
        } else if lower.contains("violates not-null") || lower.contains("cannot be null") {
            DbErrorClass::NotNull
        } else if lower.contains("does not exist") {
            DbErrorClass::UndefinedObject
        } else if lower.contains("permission denied") {
            DbErrorClass::Permission
        } else if lower.contains("syntax error") {
            DbErrorClass::SyntaxOrType
        } else if lower.contains("cancel") || lower.contains("abort") {
            DbErrorClass::Aborted
        } else {
            DbErrorClass::Other
        }
    }

    /// Errors of concurrency: the same transaction will likely succeed if run again.
    /// Can a row's values cause this? Then bisection finds the rows to reject. Missing
    /// privileges or a table or column dropped under us fail every row alike: bisecting would
    /// dead-letter the whole stream one row per call, so the batch fails instead and is retried.
    pub fn blames_rows(self) -> bool {
        !self.is_transient()
            && !matches!(self, DbErrorClass::Aborted | DbErrorClass::Permission | DbErrorClass::UndefinedObject)
    }

    pub fn is_transient(self) -> bool {
        matches!(
            self,
            DbErrorClass::SerializationFailure | DbErrorClass::ConcurrentTransaction | DbErrorClass::Deadlock
        )
    }
}

impl fmt::Display for DbErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `(SQLSTATE 40001)` or `SQLSTATE: 40001` → `40001`.
fn sqlstate(message: &str) -> Option<&str> {
    let at = message.find("SQLSTATE")? + "SQLSTATE".len();
    let rest = message[at..].trim_start_matches([' ', ':', '=']);
    let code = rest.get(..5)?;
    code.bytes().all(|b| b.is_ascii_alphanumeric()).then_some(code)
}

/// A failed Data API interaction. Carries codes and classes, never SQL text or values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DataApiError {
    /// The service answered with an error (`ThrottlingException`, `ValidationException`…).
    #[error("Data API {operation} failed with {code} (HTTP {status:?})")]
    Api { operation: &'static str, code: String, status: Option<u16> },
    /// The request did not get an answer (connection, timeout, unreadable response).
    #[error("Data API {operation} got no usable response: {kind}")]
    Transport { operation: &'static str, kind: &'static str },
    /// The statement ran and failed (or was aborted).
    #[error("statement {statement_id} ended {status} in sub-statement {sub_statement:?}: {class}")]
    Statement { statement_id: String, status: &'static str, sub_statement: Option<usize>, class: DbErrorClass },
    /// The caller's deadline came first.
    #[error("deadline reached while {during}")]
    Deadline { during: &'static str, statement_id: Option<String> },
}

/// The single retry classification: throttling, capacity and server-side errors, lost
/// responses, and transaction conflicts are retried; everything else is permanent.
pub fn is_retriable(error: &DataApiError) -> bool {
    match error {
        DataApiError::Api { code, status, .. } => {
            matches!(
                code.as_str(),
                "ThrottlingException"
                    | "Throttling"
                    | "TooManyRequestsException"
                    | "RequestLimitExceeded"
                    | "ActiveStatementsExceededException"
                    | "ActiveSessionsExceededException"
                    | "ActiveWaitingRequestsExceededException"
                    | "InternalServerException"
                    | "DatabaseConnectionException"
                    | "ExecuteStatementException"
                    | "BatchExecuteStatementException"
                    | "ServiceUnavailable"
                    | "RequestTimeout"
                    | "RequestTimeoutException"
            ) || status.is_some_and(|s| s >= 500)
        }
        DataApiError::Transport { .. } => true,
        DataApiError::Statement { class, .. } => class.is_transient(),
        DataApiError::Deadline { .. } => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_redshift_and_postgres_messages() {
        let c = DbErrorClass::classify;
        assert_eq!(
            c(
                "ERROR: 1023 DETAIL: Serializable isolation violation on table - 100341, transactions forming the cycle are: 19402, 19389 (pid:14620)"
            ),
            DbErrorClass::SerializationFailure
        );
        assert_eq!(
            c("ERROR: could not complete because of conflict with concurrent transaction"),
            DbErrorClass::ConcurrentTransaction
        );
        assert_eq!(
            c("ERROR: could not serialize access due to read/write dependencies (SQLSTATE 40001)"),
            DbErrorClass::SerializationFailure
        );
        assert_eq!(c("ERROR: deadlock detected (SQLSTATE 40P01)"), DbErrorClass::Deadlock);
        assert_eq!(
            c("ERROR: value too long for type character varying(2) (SQLSTATE 22001)"),
            DbErrorClass::ValueTooLong
        );
        assert_eq!(
            c("ERROR: invalid input syntax for type integer: \"x\" (SQLSTATE 22P02)"),
            DbErrorClass::InvalidValue
        );
        assert_eq!(c("ERROR: Invalid digit, Value 'a', Pos 0, Type: Integer"), DbErrorClass::InvalidValue);
        assert_eq!(c("ERROR: relation \"public.t\" does not exist"), DbErrorClass::UndefinedObject);
        assert_eq!(c("ERROR: something new"), DbErrorClass::Other);
    }

    #[test]
    fn retry_classification() {
        let api =
            |code: &str, status| DataApiError::Api { operation: "BatchExecuteStatement", code: code.into(), status };
        assert!(is_retriable(&api("ThrottlingException", Some(400))));
        assert!(is_retriable(&api("ActiveStatementsExceededException", Some(400))));
        assert!(is_retriable(&api("InternalServerException", Some(500))));
        assert!(is_retriable(&api("SomethingNew", Some(503))));
        assert!(!is_retriable(&api("ValidationException", Some(400))));
        assert!(!is_retriable(&api("ResourceNotFoundException", Some(404))));
        assert!(is_retriable(&DataApiError::Transport { operation: "DescribeStatement", kind: "timeout" }));
        let statement = |class| DataApiError::Statement {
            statement_id: "x".into(),
            status: "FAILED",
            sub_statement: Some(2),
            class,
        };
        assert!(is_retriable(&statement(DbErrorClass::SerializationFailure)));
        assert!(is_retriable(&statement(DbErrorClass::ConcurrentTransaction)));
        assert!(!is_retriable(&statement(DbErrorClass::InvalidValue)));
        assert!(!is_retriable(&DataApiError::Deadline { during: "polling", statement_id: None }));
    }

    #[test]
    fn errors_never_render_a_message_text() {
        let error = DataApiError::Statement {
            statement_id: "abc".into(),
            status: "FAILED",
            sub_statement: Some(1),
            class: DbErrorClass::classify("ERROR: invalid input syntax for type integer: \"123-45-6789\""),
        };
        assert!(!error.to_string().contains("123-45-6789"));
    }
}
