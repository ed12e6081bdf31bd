//! Data API errors and the one place that decides which are worth retrying.
//!
//! A database error message can quote the offending value (e.g. PostgreSQL's
//! `invalid input syntax for type integer: "…"`, Redshift's `Invalid digit, Value '…'`), so
//! it is reduced to a class at once and the text is dropped: nothing here can carry a value.
//!
//! Redshift's `Error` texts carry no SQLSTATE: compute-node errors come back as text with a
//! `code: NNNN` detail (over the wire their SQLSTATE is the generic `XX000`), leader-node
//! errors as PostgreSQL-style text. Classification therefore reads Redshift's codes and texts
//! first (Database Developer Guide: "Serializable isolation" and its troubleshooting page for
//! `1023` and `1018`; "Numeric types" for `Numeric data overflow`; "Character types"; public
//! reports for `Disk Full … code: 1016`, `abort query … code: 1020`, `Value too long for
//! character type … code: 8001`, `Only ASCII characters are allowed in fixed length strings`,
//! `Cannot insert a NULL value into column`), and a PostgreSQL SQLSTATE only where one is
//! present (the local emulator's PostgreSQL, older texts). What it cannot recognise is
//! [`DbErrorClass::Other`], which no row is blamed for.

use std::fmt;

/// What kind of database error failed a statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DbErrorClass {
    /// Redshift `1023` serializable isolation violation; PostgreSQL SQLSTATE 40001.
    SerializationFailure,
    /// Redshift snapshot isolation: "could not complete because of conflict with concurrent
    /// transaction".
    ConcurrentTransaction,
    /// SQLSTATE 40P01.
    Deadlock,
    /// Redshift `1018`: a relation the transaction's snapshot does not have (created or
    /// dropped concurrently); run again later.
    RelationChanged,
    /// A value longer than its column (`value too long for type …`, `Value too long for
    /// character type`; SQLSTATE 22001).
    ValueTooLong,
    /// A value the column type cannot read (`invalid input syntax`, `Invalid digit`,
    /// multibyte characters in a CHAR column; SQLSTATE 22P02, 22007, 22008).
    InvalidValue,
    /// Numeric overflow (`Numeric data overflow`, `numeric field overflow`, `out of range`;
    /// SQLSTATE 22003).
    OutOfRange,
    /// NULL into a NOT NULL column (`Cannot insert a NULL value into column`; SQLSTATE 23502).
    NotNull,
    /// A unique or check constraint (SQLSTATE 23xxx).
    Constraint,
    /// A value whose type the column cannot take (SQLSTATE 42804, `is of type … but
    /// expression is of type`).
    TypeMismatch,
    /// A table, column or function that does not exist (SQLSTATE 42P01, 42703, 42883, 3F000).
    UndefinedObject,
    /// SQL the database cannot parse (SQLSTATE 42601): our bug, not the data's.
    Syntax,
    /// Missing privileges (SQLSTATE 42501).
    Permission,
    /// The statement was cancelled or aborted (`cancelled on user's request`, `abort query …
    /// code: 1020`, WLM).
    Aborted,
    /// The cluster cannot take the work now: `Disk Full … code: 1016`, resize mode, an
    /// internal `Assert`, out of memory.
    Capacity,
    /// Anything else.
    Other,
}

impl DbErrorClass {
    /// The class's name in dead letters (`error_class`) and logs, e.g. `invalid_value`.
    pub fn as_str(self) -> &'static str {
        match self {
            DbErrorClass::SerializationFailure => "serialization_failure",
            DbErrorClass::ConcurrentTransaction => "concurrent_transaction",
            DbErrorClass::Deadlock => "deadlock",
            DbErrorClass::RelationChanged => "relation_changed",
            DbErrorClass::ValueTooLong => "value_too_long",
            DbErrorClass::InvalidValue => "invalid_value",
            DbErrorClass::OutOfRange => "out_of_range",
            DbErrorClass::NotNull => "not_null_violation",
            DbErrorClass::Constraint => "constraint_violation",
            DbErrorClass::TypeMismatch => "type_mismatch",
            DbErrorClass::UndefinedObject => "undefined_object",
            DbErrorClass::Syntax => "syntax_error",
            DbErrorClass::Permission => "permission_denied",
            DbErrorClass::Aborted => "aborted",
            DbErrorClass::Capacity => "capacity",
            DbErrorClass::Other => "sql_error",
        }
    }

    /// Classify a database error text (the message itself is not kept).
    pub fn classify(message: &str) -> DbErrorClass {
        let lower = message.to_ascii_lowercase();
        // Redshift's codes first: a compute-node error's detail carries `code: NNNN`, and a
        // leader-node one can start with the number (`ERROR: 1023 DETAIL: …`).
        let code = redshift_code(&lower);
        match code {
            Some(1023) => return DbErrorClass::SerializationFailure,
            Some(1018) => return DbErrorClass::RelationChanged,
            Some(1016) => return DbErrorClass::Capacity,
            Some(1020) => return DbErrorClass::Aborted,
            _ => {}
        }
        if let Some(code) = sqlstate(message) {
            let class = match code {
                "40001" => Some(DbErrorClass::SerializationFailure),
                "40P01" => Some(DbErrorClass::Deadlock),
                "22001" => Some(DbErrorClass::ValueTooLong),
                "22P02" | "22007" | "22008" | "22021" | "22P05" | "22023" => Some(DbErrorClass::InvalidValue),
                "22003" => Some(DbErrorClass::OutOfRange),
                "23502" => Some(DbErrorClass::NotNull),
                "42P01" | "42703" | "42883" | "3F000" | "3D000" | "42704" => Some(DbErrorClass::UndefinedObject),
                "42804" | "42846" => Some(DbErrorClass::TypeMismatch),
                "42601" => Some(DbErrorClass::Syntax),
                "42501" => Some(DbErrorClass::Permission),
                "57014" => Some(DbErrorClass::Aborted),
                "53100" | "53200" | "53300" => Some(DbErrorClass::Capacity),
                c if c.starts_with("23") => Some(DbErrorClass::Constraint),
                _ => None,
            };
            if let Some(class) = class {
                return class;
            }
        }
        let has = |needle: &str| lower.contains(needle);
        if has("serializable isolation violation") {
            DbErrorClass::SerializationFailure
        } else if has("conflict with concurrent transaction") || has("could not serialize access") {
            DbErrorClass::ConcurrentTransaction
        } else if has("deadlock detected") {
            DbErrorClass::Deadlock
        } else if has("disk full") || has("resize mode") || has("out of memory") || has("error: assert") {
            DbErrorClass::Capacity
        } else if has("check 'stl_load_errors'") {
            // A COPY that a row failed: "Load into table 'x' failed.  Check 'stl_load_errors'
            // system table for details." The reason is in STL_LOAD_ERRORS, not in the text; a
            // row's value is to blame, so its rows are bisected like an INSERT's.
            DbErrorClass::InvalidValue
        } else if has("value too long") {
            DbErrorClass::ValueTooLong
        } else if has("invalid input syntax")
            || has("invalid digit")
            || has("invalid timestamp")
            || has("only ascii characters are allowed")
            || has("multibyte character not supported")
            || has("invalid characters")
        {
            DbErrorClass::InvalidValue
        } else if has("numeric data overflow") || has("numeric field overflow") || has("out of range") {
            DbErrorClass::OutOfRange
        } else if has("cannot insert a null value") || has("violates not-null") {
            DbErrorClass::NotNull
        } else if has("but expression is of type") {
            DbErrorClass::TypeMismatch
        } else if has("does not exist") {
            DbErrorClass::UndefinedObject
        } else if has("permission denied") || has("must be owner of") {
            DbErrorClass::Permission
        } else if has("syntax error") {
            DbErrorClass::Syntax
        } else if has("cancelled") || has("canceled") || has("abort") {
            DbErrorClass::Aborted
        } else {
            DbErrorClass::Other
        }
    }

    /// Can a row's values cause this? Then bisection finds the rows to reject. Everything else
    /// — concurrency, capacity, a cancelled statement, missing privileges, a table changed
    /// under us, a syntax error, an error we do not recognise — fails every row alike:
    /// bisecting would dead-letter the whole batch one row per call while the cluster has an
    /// incident, so the batch fails instead and the event source mapping retries it.
    pub fn blames_rows(self) -> bool {
        matches!(
            self,
            DbErrorClass::ValueTooLong
                | DbErrorClass::InvalidValue
                | DbErrorClass::OutOfRange
                | DbErrorClass::NotNull
                | DbErrorClass::Constraint
                | DbErrorClass::TypeMismatch
        )
    }

    /// Errors of concurrency: the same transaction will likely succeed if run again.
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            DbErrorClass::SerializationFailure
                | DbErrorClass::ConcurrentTransaction
                | DbErrorClass::Deadlock
                | DbErrorClass::RelationChanged
        )
    }
}

impl fmt::Display for DbErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Redshift's error number: `code: 1016` in a compute-node detail, or the number right after
/// `ERROR:` (`ERROR: 1023 DETAIL: …`, `ERROR:1023 …`). `lower` is the lowercased text.
fn redshift_code(lower: &str) -> Option<u32> {
    let digits = |s: &str| {
        let n: String = s.trim_start().chars().take_while(char::is_ascii_digit).collect();
        (n.len() == 4).then(|| n.parse().ok()).flatten()
    };
    lower
        .find("code:")
        .and_then(|at| digits(&lower[at + 5..]))
        .or_else(|| lower.find("error:").and_then(|at| digits(&lower[at + 6..])))
}

/// `(SQLSTATE 40001)` or `SQLSTATE: 40001` → `40001`.
fn sqlstate(message: &str) -> Option<&str> {
    let at = message.find("SQLSTATE")? + "SQLSTATE".len();
    let rest = message[at..].trim_start_matches([' ', ':', '=']);
    let code = rest.get(..5)?;
    code.bytes().all(|b| b.is_ascii_alphanumeric()).then_some(code)
}

/// How a statement that did not finish ended: the Data API's `DescribeStatement` `Status`
/// other than `FINISHED` and the running states (`SUBMITTED`, `PICKED`, `STARTED`), per the
/// [DescribeStatement reference](https://docs.aws.amazon.com/redshift-data/latest/APIReference/API_DescribeStatement.html).
/// Displayed as the API spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatementEnd {
    /// `FAILED`: the statement (one of its sub-statements) failed; the batch rolled back.
    Failed,
    /// `ABORTED`: cancelled (by us at a deadline, or by someone else).
    Aborted,
    /// A status this client does not know (`ALL` or one added later): treated as a failure.
    Unknown,
}

impl StatementEnd {
    /// The status as the Data API spells it: `FAILED`, `ABORTED`, `UNKNOWN`.
    pub fn as_str(self) -> &'static str {
        match self {
            StatementEnd::Failed => "FAILED",
            StatementEnd::Aborted => "ABORTED",
            StatementEnd::Unknown => "UNKNOWN",
        }
    }
}

impl std::fmt::Display for StatementEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed Data API interaction. Carries codes and classes, never SQL text or values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DataApiError {
    /// The service answered with an error (`ThrottlingException`, `ValidationException`…).
    #[error("Data API {operation} failed with {code} (HTTP {status:?})")]
    Api {
        /// The Data API operation, e.g. `BatchExecuteStatement`.
        operation: &'static str,
        /// The service's error code, or one of ours (`MissingStatementId`,
        /// `UnexpectedReportShape`, `UnexpectedReportRule`, `ConstructionFailure`).
        code: String,
        /// The HTTP status, when there was an answer.
        status: Option<u16>,
    },
    /// The request did not get an answer (connection, timeout, unreadable response).
    #[error("Data API {operation} got no usable response: {kind}")]
    Transport {
        /// The Data API operation.
        operation: &'static str,
        /// What went wrong: `timeout`, `dispatch failure`, `unreadable response`, `unknown`.
        kind: &'static str,
    },
    /// The statement ran and failed (or was aborted).
    #[error("statement {statement_id} ended {status} in sub-statement {sub_statement:?}: {class}")]
    Statement {
        /// The warehouse's id of the transaction.
        statement_id: String,
        /// How it ended (`FAILED`, `ABORTED`, or a status this client does not know).
        status: StatementEnd,
        /// The 0-based index of the statement that failed, when the warehouse names it.
        sub_statement: Option<usize>,
        /// The error's class (the text itself is never kept).
        class: DbErrorClass,
    },
    /// An S3 request for a staged object (`load = "copy"`) failed.
    #[error("S3 {operation} of a staged object failed with {code} (HTTP {status:?})")]
    Staging {
        /// `PutObject` or `DeleteObject`.
        operation: &'static str,
        /// S3's error code (`AccessDenied`, `SlowDown`…), or ours: `Timeout`,
        /// `DispatchFailure`, `UnreadableResponse`, `Unknown`.
        code: String,
        /// The HTTP status, when there was an answer.
        status: Option<u16>,
    },
    /// The caller's deadline came first.
    #[error("deadline reached while {during}")]
    Deadline {
        /// What was being done: `submitting a transaction`, `retrying a transaction`,
        /// `waiting for a statement`, `reading rejected rows`, `describing a table`.
        during: &'static str,
        /// The statement given up on (and cancelled), if one was running.
        statement_id: Option<String>,
    },
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
                    // DescribeTable and CancelStatement can time out ("The Amazon Redshift Data
                    // API operation failed due to timeout"; Data API reference).
                    | "QueryTimeoutException"
            ) || status.is_some_and(|s| s >= 500)
        }
        DataApiError::Transport { .. } => true,
        // S3's throttling and server errors, and no usable answer ("Error responses", Amazon
        // S3 API reference: `SlowDown`, `InternalError`, `ServiceUnavailable` are 503/500).
        DataApiError::Staging { code, status, .. } => {
            matches!(
                code.as_str(),
                "SlowDown"
                    | "InternalError"
                    | "ServiceUnavailable"
                    | "RequestTimeout"
                    | "Timeout"
                    | "DispatchFailure"
                    | "UnreadableResponse"
            ) || status.is_some_and(|s| s >= 500)
        }
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
            c("ERROR: Load into table '_cdc_stage' failed.  Check 'stl_load_errors' system table for details."),
            DbErrorClass::InvalidValue
        );
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

    /// Texts as Redshift's documentation and public reports show them (no SQLSTATE).
    #[test]
    fn classifies_redshift_texts_by_code_and_wording() {
        let c = DbErrorClass::classify;
        let cases = [
            (
                "ERROR:1023 DETAIL: Serializable isolation violation on table in Redshift",
                DbErrorClass::SerializationFailure,
            ),
            ("ERROR: 1018 DETAIL: Relation does not exist.", DbErrorClass::RelationChanged),
            (
                "ERROR: Disk Full Detail: ----- error: Disk Full code: 1016 context: node: 3 query: 1005177 location: fdisk_api.cpp:345 process: query3_66 [pid=27629]",
                DbErrorClass::Capacity,
            ),
            ("ERROR: Cannot execute query because system is in resize mode", DbErrorClass::Capacity),
            (
                "ERROR: abort query DETAIL: error: abort query code: 1020 context: system requested abort query: 1903 location: queryabort.cpp:347",
                DbErrorClass::Aborted,
            ),
            ("ERROR:  Query (150) cancelled on user's request", DbErrorClass::Aborted),
            ("ERROR:  Numeric data overflow (result precision)", DbErrorClass::OutOfRange),
            ("ERROR: numeric field overflow DETAIL: The absolute value is greater than", DbErrorClass::OutOfRange),
            ("ERROR: value too long for type character varying(275)", DbErrorClass::ValueTooLong),
            (
                "Value too long for character type DETAIL: error: Value too long for character type code: 8001 context: Value too long for type character varying(505)",
                DbErrorClass::ValueTooLong,
            ),
            (
                "error: Invalid characters: code: 8001 context: Only ASCII characters are allowed in fixed length strings. Invalid ASCII char: c2 b0",
                DbErrorClass::InvalidValue,
            ),
            ("ERROR: Cannot insert a NULL value into column notes", DbErrorClass::NotNull),
            ("ERROR: permission denied for relation patients", DbErrorClass::Permission),
            ("ERROR: Assert DETAIL: error: Assert code: 1000 context: (fieldstr - curr) < len", DbErrorClass::Capacity),
            ("ERROR: syntax error at or near \"ON\"", DbErrorClass::Syntax),
        ];
        for (text, class) in cases {
            assert_eq!(c(text), class, "{text}");
        }
        // Only what a value can cause is bisected; the rest fails the batch.
        for class in [DbErrorClass::Capacity, DbErrorClass::Aborted, DbErrorClass::Other, DbErrorClass::Syntax] {
            assert!(!class.blames_rows(), "{class}");
        }
        for class in [DbErrorClass::ValueTooLong, DbErrorClass::InvalidValue, DbErrorClass::NotNull] {
            assert!(class.blames_rows(), "{class}");
        }
        assert!(DbErrorClass::RelationChanged.is_transient());
    }

    #[test]
    fn retry_classification() {
        let api =
            |code: &str, status| DataApiError::Api { operation: "BatchExecuteStatement", code: code.into(), status };
        assert!(is_retriable(&api("ThrottlingException", Some(400))));
        assert!(is_retriable(&api("ActiveStatementsExceededException", Some(400))));
        assert!(is_retriable(&api("InternalServerException", Some(500))));
        assert!(is_retriable(&api("SomethingNew", Some(503))));
        assert!(is_retriable(&api("QueryTimeoutException", Some(400))));
        assert!(!is_retriable(&api("ValidationException", Some(400))));
        assert!(!is_retriable(&api("ResourceNotFoundException", Some(404))));
        assert!(is_retriable(&DataApiError::Transport { operation: "DescribeStatement", kind: "timeout" }));
        let statement = |class| DataApiError::Statement {
            statement_id: "x".into(),
            status: StatementEnd::Failed,
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
            status: StatementEnd::Failed,
            sub_statement: Some(1),
            class: DbErrorClass::classify("ERROR: invalid input syntax for type integer: \"123-45-6789\""),
        };
        assert!(!error.to_string().contains("123-45-6789"));
    }
}
