//! Statement errors as Redshift reports them in DescribeStatement's `Error`: PostgreSQL's
//! conditions mapped to Redshift's texts, never with a SQLSTATE (the Data API has none).
//! The README's "Errors" table lists every mapping with its source.

use crate::Isolation;

/// `ERROR: could not complete because of conflict with concurrent transaction`: a conflict of
/// a SNAPSHOT database.
pub const CONCURRENT_TRANSACTION_ERROR: &str =
    "ERROR: could not complete because of conflict with concurrent transaction";
/// Redshift's 64-bit and 128-bit DECIMAL overflow.
pub const NUMERIC_OVERFLOW_ERROR: &str = "ERROR: Numeric data overflow (result precision)";
/// A multibyte character into a CHAR column (compute-node error 8001).
pub const ASCII_ONLY_ERROR: &str = "ERROR: Invalid characters DETAIL: error: Invalid characters code: 8001 \
context: Only ASCII characters are allowed in fixed length strings.";
/// Not a Redshift error: Redshift stores a string into SUPER as one string; the emulator refuses it.
pub const SUPER_STRING_ERROR: &str = "ERROR: redshift-data-local refuses a string as a SUPER value (Redshift \
would store it as one string): use JSON_PARSE('...')";
/// The size of a plain `varbyte` (Redshift's default VARBYTE length).
pub const VARBYTE_DEFAULT_BYTES: u32 = 64_000;

/// A statement's database error, with what the Redshift text is made from. Row values (the
/// DETAIL of most PostgreSQL errors) are not kept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} ({})", code.as_deref().unwrap_or("no SQLSTATE"))]
pub struct SqlError {
    /// PostgreSQL's SQLSTATE, when the server sent an error.
    pub code: Option<String>,
    /// PostgreSQL's primary message, or the client error's text.
    pub message: String,
    pub constraint: Option<String>,
    pub column: Option<String>,
    /// Precision and scale from the DETAIL of `numeric field overflow`.
    pub numeric_field: Option<(u32, u32)>,
    /// The connection is broken (not a plain SQL error) and must not be reused.
    pub fatal: bool,
}

impl SqlError {
    /// An error the emulator raises itself, already in Redshift's words (`ERROR: ` is added).
    pub fn emulator(message: impl Into<String>) -> Self {
        SqlError {
            code: None,
            message: message.into(),
            constraint: None,
            column: None,
            numeric_field: None,
            fatal: false,
        }
    }

    /// SQLSTATE 57014: the query was cancelled (CancelStatement or a statement timeout).
    pub fn is_cancel(&self) -> bool {
        self.code.as_deref() == Some("57014")
    }

    /// The `Error` text of DescribeStatement.
    pub fn redshift_text(&self, context: &ErrorContext) -> String {
        let message = self.message.as_str();
        let Some(code) = self.code.as_deref() else {
            return format!("ERROR: {message}");
        };
        match code {
            "40001" => serialization_text(context),
            "57014" => cancelled_text(context.query_id),
            "23502" => {
                format!("ERROR: Cannot insert a NULL value into column {}", self.column.as_deref().unwrap_or("?"))
            }
            "23514" => match self.constraint.as_deref().and_then(rule_text) {
                Some(text) => text,
                None => format!("ERROR: {message}"),
            },
            "22003" if message == "numeric field overflow" => match self.numeric_field {
                Some((precision, scale)) => format!(
                    "ERROR: numeric field overflow DETAIL: The absolute value is greater than or equal to \
                     10^{} for field with precision {precision}, scale {scale}.",
                    precision.saturating_sub(scale)
                ),
                None => "ERROR: numeric field overflow".to_owned(),
            },
            "22003" if message == "value overflows numeric format" => NUMERIC_OVERFLOW_ERROR.to_owned(),
            "42501" => format!("ERROR: {}", permission_text(message)),
            "0A000" if message == "cannot accept a value of type any" => SUPER_STRING_ERROR.to_owned(),
            _ => format!("ERROR: {message}"),
        }
    }
}

impl From<tokio_postgres::Error> for SqlError {
    fn from(error: tokio_postgres::Error) -> Self {
        match error.as_db_error() {
            Some(db) => SqlError {
                code: Some(db.code().code().to_owned()),
                message: db.message().to_owned(),
                constraint: db.constraint().map(str::to_owned),
                column: db.column().map(str::to_owned),
                numeric_field: db.detail().and_then(numeric_field),
                fatal: error.is_closed(),
            },
            None => SqlError { fatal: true, ..SqlError::emulator(error.to_string()) },
        }
    }
}

/// What the text of some errors needs to know about the statement that failed.
#[derive(Debug, Clone, Copy, Default)]
pub struct ErrorContext {
    pub isolation: Isolation,
    /// Backend pid of the session (`RedshiftPid`).
    pub pid: i32,
    /// The transaction's id, when the batch asked for it.
    pub xid: Option<i64>,
    /// A table the transaction wrote, when known.
    pub table_oid: Option<u32>,
    /// `RedshiftQueryId` of the failing statement.
    pub query_id: i64,
}

/// The text of a transaction that lost a conflict, per isolation level.
pub fn serialization_text(context: &ErrorContext) -> String {
    match context.isolation {
        Isolation::Snapshot => CONCURRENT_TRANSACTION_ERROR.to_owned(),
        // PostgreSQL does not say which transaction won: the second id is 0.
        Isolation::Serializable => format!(
            "ERROR: 1023 DETAIL: Serializable isolation violation on table - {}, transactions forming the cycle \
             are: {}, 0 (pid:{})",
            context.table_oid.unwrap_or(0),
            context.xid.unwrap_or(0),
            context.pid
        ),
    }
}

/// Redshift's text for a cancelled query (CancelStatement or `statement_timeout`).
pub fn cancelled_text(query_id: i64) -> String {
    format!("ERROR: Query ({query_id}) cancelled on user's request")
}

/// PostgreSQL says `permission denied for table t`; Redshift says `… for relation t`.
fn permission_text(message: &str) -> String {
    for kind in ["table", "view", "materialized view", "sequence", "foreign table"] {
        if let Some(name) = message.strip_prefix(&format!("permission denied for {kind} ")) {
            return format!("permission denied for relation {name}");
        }
    }
    message.to_owned()
}

/// `A field with precision 4, scale 2 must round to …` → `(4, 2)`.
fn numeric_field(detail: &str) -> Option<(u32, u32)> {
    let rest = detail.strip_prefix("A field with precision ")?;
    let (precision, rest) = rest.split_once(", scale ")?;
    let scale: String = rest.chars().take_while(char::is_ascii_digit).collect();
    Some((precision.parse().ok()?, scale.parse().ok()?))
}

/// The text of a CHECK constraint the emulator added for a Redshift rule (see `shims.rs`):
/// `rdl_varbyte_max` on the `varbyte` domain, `rdl_<attnum>_<rule>` on table columns.
fn rule_text(constraint: &str) -> Option<String> {
    if constraint == "rdl_varbyte_max" {
        return Some(format!("ERROR: value too long for type binary varying({VARBYTE_DEFAULT_BYTES})"));
    }
    let (_, rule) = constraint.strip_prefix("rdl_")?.split_once('_')?;
    match rule {
        "decimal19" => Some(NUMERIC_OVERFLOW_ERROR.to_owned()),
        "ascii" => Some(ASCII_ONLY_ERROR.to_owned()),
        _ => {
            let bytes: u32 = rule.strip_prefix("varchar")?.parse().ok()?;
            Some(format!("ERROR: value too long for type character varying({bytes})"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pg(code: &str, message: &str) -> SqlError {
        SqlError { code: Some(code.to_owned()), ..SqlError::emulator(message) }
    }

    #[test]
    fn texts_never_carry_a_sqlstate() {
        let context =
            ErrorContext { pid: 42, xid: Some(900), table_oid: Some(16384), query_id: 7, ..Default::default() };
        let serializable = ErrorContext { isolation: Isolation::Serializable, ..context };
        let cases = [
            (pg("40001", "could not serialize access due to concurrent update"), context, CONCURRENT_TRANSACTION_ERROR),
            (
                pg("40001", "could not serialize access due to read/write dependencies among transactions"),
                serializable,
                "ERROR: 1023 DETAIL: Serializable isolation violation on table - 16384, transactions forming the cycle \
                 are: 900, 0 (pid:42)",
            ),
            (
                pg("57014", "canceling statement due to statement timeout"),
                context,
                "ERROR: Query (7) cancelled on user's request",
            ),
            (
                pg("42501", "permission denied for table secrets"),
                context,
                "ERROR: permission denied for relation secrets",
            ),
            (pg("42501", "permission denied for schema s"), context, "ERROR: permission denied for schema s"),
            (pg("22003", "value overflows numeric format"), context, NUMERIC_OVERFLOW_ERROR),
            (pg("22003", "smallint out of range"), context, "ERROR: smallint out of range"),
            (pg("42601", "syntax error at or near \"x\""), context, "ERROR: syntax error at or near \"x\""),
            (pg("0A000", "cannot accept a value of type any"), context, SUPER_STRING_ERROR),
            (SqlError::emulator("boom"), context, "ERROR: boom"),
        ];
        for (error, context, expected) in cases {
            let text = error.redshift_text(&context);
            assert_eq!(text, expected);
            assert!(!text.contains("SQLSTATE"), "{text}");
        }
    }

    #[test]
    fn not_null_names_the_column() {
        let null = SqlError { column: Some("id".into()), ..pg("23502", "null value in column \"id\" …") };
        assert_eq!(null.redshift_text(&ErrorContext::default()), "ERROR: Cannot insert a NULL value into column id");
    }

    #[test]
    fn rule_constraints_read_as_redshift_texts() {
        let check = |name: &str| {
            SqlError { constraint: Some(name.into()), ..pg("23514", "new row violates check constraint") }
                .redshift_text(&ErrorContext::default())
        };
        assert_eq!(check("rdl_3_varchar4"), "ERROR: value too long for type character varying(4)");
        assert_eq!(check("rdl_1_decimal19"), NUMERIC_OVERFLOW_ERROR);
        assert_eq!(check("rdl_12_ascii"), ASCII_ONLY_ERROR);
        assert_eq!(check("rdl_varbyte_max"), "ERROR: value too long for type binary varying(64000)");
        assert_eq!(check("rdl_2_unknown"), "ERROR: new row violates check constraint");
        assert_eq!(check("user_check"), "ERROR: new row violates check constraint");
    }

    #[test]
    fn numeric_field_overflow_keeps_precision_and_scale_only() {
        let detail = "A field with precision 4, scale 2 must round to an absolute value less than 10^2.";
        assert_eq!(numeric_field(detail), Some((4, 2)));
        assert_eq!(numeric_field("something else"), None);
        let error = SqlError { numeric_field: Some((4, 2)), ..pg("22003", "numeric field overflow") };
        assert_eq!(
            error.redshift_text(&ErrorContext::default()),
            "ERROR: numeric field overflow DETAIL: The absolute value is greater than or equal to 10^2 for field \
             with precision 4, scale 2."
        );
    }
}
