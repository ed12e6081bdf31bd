//! A row that cannot load: where it is (file, line, column) and why, as Redshift's
//! `stl_load_errors` says it (Developer Guide *STL_LOAD_ERRORS*, `r_STL_LOAD_ERRORS`, and *Load
//! error reference*, `r_Load_Error_Reference`, whose codes and descriptions are used here).
//! Never a value: PostgreSQL's messages (`invalid input syntax for type integer: "…"`, COPY's
//! CONTEXT line) are only classified, never kept; `raw_line` and `raw_field_value` stay empty.

use tokio_postgres::Client;

use super::Context;
use super::convert::{Column, Kind, Table};
use super::parse::Options;
use crate::errors::SqlError;

/// 1220's description.
pub const INVALID_UTF8: &str = "String contains invalid or unsupported UTF-8 code points.";
/// A line PostgreSQL's `COPY … FROM STDIN` would take for its end-of-data marker.
pub const END_MARKER: &str =
    "Input line is not valid: the emulator cannot load a line that is \\. alone (PostgreSQL's end of data)";
const NOT_VALID: &str = "Input line is not valid.";
const RANGE: &str = "Input data exceeded the acceptable range for the data type.";

/// One `stl_load_errors` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    pub filename: String,
    /// 1-based; 0 when the error is not on a line (e.g. the file is not gzip).
    pub line: u64,
    pub colname: String,
    pub type_name: String,
    pub col_length: String,
    pub code: i32,
    pub reason: &'static str,
}

impl LoadError {
    /// An error of the whole file, before its lines.
    pub fn file(code: i32, reason: &'static str) -> Self {
        LoadError {
            filename: String::new(),
            line: 0,
            colname: String::new(),
            type_name: String::new(),
            col_length: String::new(),
            code,
            reason,
        }
    }

    pub fn at(mut self, url: &str) -> Self {
        url.clone_into(&mut self.filename);
        self
    }

    pub fn on_line(mut self, line: u64) -> Self {
        self.line = line;
        self
    }

    fn of(mut self, column: Option<&Column>) -> Self {
        if let Some(column) = column {
            column.name.clone_into(&mut self.colname);
            column.type_name.clone_into(&mut self.type_name);
            column.col_length.clone_into(&mut self.col_length);
        }
        self
    }
}

/// Writes `error` to `public.stl_load_errors` on a connection of its own, in autocommit, so it
/// outlives the rollback of the statement's transaction. A failure to write is logged (without
/// the row) and does not change the COPY's error.
pub async fn record(context: &Context<'_>, table: &Table, error: &LoadError) {
    let conn = match context.app.pool.get(context.database).await {
        Ok(conn) => conn,
        Err(failure) => {
            tracing::warn!(error = %failure, "could not connect to record a load error");
            return;
        }
    };
    let tbl = table.oid as i32;
    let line = i64::try_from(error.line).unwrap_or(i64::MAX);
    let written = conn
        .client
        .execute(
            "INSERT INTO public.stl_load_errors (userid, slice, tbl, starttime, session, query, filename, line_number, \
             colname, type, col_length, position, raw_line, raw_field_value, err_code, err_reason, is_partial, \
             start_offset) VALUES (0, 0, $1, pg_catalog.timezone('UTC', pg_catalog.now()), $2, $3, $4, $5, $6, $7, $8, 0, \
             '', '', $9, $10, 0, 0)",
            &[
                &tbl,
                &context.conn.pid,
                &context.query_id,
                &error.filename,
                &line,
                &error.colname,
                &error.type_name,
                &error.col_length,
                &error.code,
                &error.reason,
            ],
        )
        .await;
    if let Err(failure) = written {
        tracing::warn!(error = %SqlError::from(failure), "could not record a load error");
    }
    context.app.pool.put(context.database, conn).await;
}

/// A PostgreSQL error of the INSERT that a bad row causes (not a lock, permission or cancel):
/// a data exception, a NOT NULL or a CHECK violation. Unique and foreign keys are not Redshift
/// rules, so their violations stay plain errors.
pub fn is_data_error(error: &SqlError) -> bool {
    let code = error.code.as_deref().unwrap_or("");
    code.starts_with("22") || (code.starts_with("23") && !matches!(code, "23505" | "23503" | "23P01"))
}

/// The load error of a failed `COPY … FROM STDIN` of `text`, or None when the failure is not
/// the data's (it is then returned as it is). PostgreSQL's CONTEXT gives the record number and
/// column; only those numbers are read from it.
pub fn from_copy(error: &tokio_postgres::Error, text: &str, quote: char, table: &Table) -> Option<LoadError> {
    let db = error.as_db_error()?;
    let code = db.code().code();
    if !code.starts_with("22") {
        return None;
    }
    let message = db.message();
    let (number, reason) = if message.starts_with("extra data after last expected column") {
        (1202, "Extra column(s) found")
    } else if message.starts_with("missing data for column") {
        (1214, "Delimiter not found")
    } else if message.starts_with("unterminated CSV quoted field") {
        (1216, "Input line is not valid: a quoted field is not terminated")
    } else if message.starts_with("unquoted carriage return") || message.starts_with("unquoted newline") {
        (1216, "Input line is not valid: an unquoted carriage return")
    } else if code == "22021" {
        (1220, INVALID_UTF8)
    } else {
        (1216, NOT_VALID)
    };
    // `COPY <stage>, line <n>[, column <c>]: "<the data>"`: only what precedes the data.
    let context = db.where_().unwrap_or("");
    let context = context.split_once(':').map_or(context, |(head, _)| head);
    let record = number_after(context, ", line ").unwrap_or(0);
    let field = number_after(message, "column \"c").or_else(|| number_after(context, "column c"));
    let column = field.and_then(|i| table.columns.get(usize::try_from(i).ok()?.checked_sub(1)?));
    Some(LoadError::file(number, reason).on_line(record_line(text, quote, record)).of(column))
}

/// The digits right after `marker` in `text`.
fn number_after(text: &str, marker: &str) -> Option<u64> {
    let rest = &text[text.find(marker)? + marker.len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// The physical line (1-based) where CSV record `record` (1-based) of `text` begins; newlines
/// inside quotes belong to their record. Record 0 is line 0; a record past the end is the last
/// one (PostgreSQL counts one more line for a quoted field that runs to the end of the data).
pub fn record_line(text: &str, quote: char, record: u64) -> u64 {
    if record <= 1 {
        return record;
    }
    let (mut line, mut current, mut start, mut in_quote) = (1, 1, 1, false);
    for byte in text.bytes() {
        if char::from(byte) == quote {
            in_quote = !in_quote;
        } else if byte == b'\n' {
            line += 1;
            if !in_quote {
                current += 1;
                start = line;
                if current == record {
                    return line;
                }
            }
        }
    }
    start
}

/// The line of the first record that is `\.` alone, which PostgreSQL's COPY FROM STDIN would
/// take for the end of the data (dropping every line after it).
pub fn end_marker_line(text: &str, quote: char) -> Option<u64> {
    if !text.contains("\\.") {
        return None;
    }
    let bytes = text.as_bytes();
    let (mut line, mut in_quote, mut at_start) = (1, false, true);
    for (i, &byte) in bytes.iter().enumerate() {
        if at_start && bytes[i..].starts_with(b"\\.") && matches!(bytes.get(i + 2), None | Some(b'\n' | b'\r')) {
            return Some(line);
        }
        at_start = false;
        if char::from(byte) == quote {
            in_quote = !in_quote;
        } else if byte == b'\n' {
            line += 1;
            at_start = !in_quote;
        }
    }
    None
}

/// The first failing row and its load error.
pub struct Found {
    /// The stage row (1-based, in file order); 0 if the failure could not be reproduced.
    pub row: u64,
    pub error: LoadError,
}

/// Finds the first row of `stage` whose INSERT fails and the column that fails it; only on the
/// failure path. The row: the shortest failing prefix of rows, by bisection (each probe inserts
/// a prefix under a savepoint and rolls it back). The column: each column's value of that row,
/// converted and inserted alone into a copy of the target's columns (with the emulator's value
/// rules but no NOT NULL); when none fails alone, the row's own error names the column (NOT
/// NULL, a rule of the table).
pub async fn locate(
    client: &Client,
    table: &Table,
    stage: &str,
    options: &Options,
    first: &SqlError,
    n: u64,
) -> Result<Found, SqlError> {
    let insert = table.insert(stage, options);
    let total: i64 = client.query_one(&format!("SELECT count(*) FROM {stage}"), &[]).await?.try_get(0)?;
    let (mut low, mut high) = (1i64, total);
    let mut failure = None;
    while low < high {
        let middle = low + (high - low) / 2;
        match probe(client, &format!("{insert} WHERE s.rdl_row <= {middle}")).await? {
            Some(error) => {
                high = middle;
                failure = Some(error);
            }
            None => low = middle + 1,
        }
    }
    if failure.is_none() {
        failure = probe(client, &format!("{insert} WHERE s.rdl_row <= {low}")).await?;
    }
    let Some(failure) = failure else {
        return Ok(Found { row: 0, error: classify(None, first) });
    };
    let row = u64::try_from(low).unwrap_or(0);
    let names = table.columns.iter().map(|c| super::convert::quote_ident(&c.name)).collect::<Vec<_>>().join(", ");
    client
        .batch_execute(&format!(
            "CREATE TEMP TABLE rdl_probe_{n} AS SELECT {names} FROM {} WHERE false",
            table.qualified
        ))
        .await?;
    for (index, column) in table.columns.iter().enumerate() {
        let sql = format!(
            "INSERT INTO pg_temp.rdl_probe_{n} ({}) SELECT {} FROM {stage} s WHERE s.rdl_row = {low}",
            super::convert::quote_ident(&column.name),
            table.conversion(index, options)
        );
        if let Some(error) = probe(client, &sql).await? {
            return Ok(Found { row, error: classify(Some(column), &error) });
        }
    }
    let column =
        failure.column.as_deref().and_then(|name| table.columns.iter().find(|c| c.name == name)).or_else(|| {
            let attnum: i16 = failure.constraint.as_deref()?.strip_prefix("rdl_")?.split_once('_')?.0.parse().ok()?;
            table.columns.iter().find(|c| c.attnum == attnum)
        });
    Ok(Found { row, error: classify(column, &failure) })
}

/// Runs `sql` under a savepoint and rolls it back: the data error it raised, if any. Other
/// errors (a cancel, a lock timeout) end the search.
async fn probe(client: &Client, sql: &str) -> Result<Option<SqlError>, SqlError> {
    client.batch_execute("SAVEPOINT rdl_probe").await?;
    let result = client.batch_execute(sql).await;
    client.batch_execute("ROLLBACK TO SAVEPOINT rdl_probe").await?;
    match result {
        Ok(()) => Ok(None),
        Err(error) => {
            let error = SqlError::from(error);
            if is_data_error(&error) { Ok(Some(error)) } else { Err(error) }
        }
    }
}

/// The load error code and reason of a value's failure in `column`.
fn classify(column: Option<&Column>, error: &SqlError) -> LoadError {
    let state = error.code.as_deref().unwrap_or("");
    let rule = error.constraint.as_deref().unwrap_or("");
    let kind = column.map(|c| c.kind);
    let (code, reason) = if state == "23502" {
        (1213, "A field specified as NOT NULL contained no data.")
    } else if rule.starts_with("rdl_") && rule.ends_with("_ascii") {
        (1220, "Multibyte character not supported for CHAR (Hint: try using VARCHAR)")
    } else if state == "22001" || (rule.starts_with("rdl_") && rule.contains("_varchar")) {
        match kind {
            // Redshift's own reasons for these (not on the Load error reference page).
            Some(Kind::Text { fixed: true }) => (1204, "Char length exceeds DDL length"),
            _ => (1204, "String length exceeds DDL length"),
        }
    } else if rule.starts_with("rdl_") {
        (1204, RANGE)
    } else {
        match kind {
            Some(Kind::Int) if state == "22003" => (1222, "Integer value overflow error."),
            Some(Kind::Int) => (1207, "Data contained a value outside of the expected range of 0-9."),
            Some(Kind::Float | Kind::Numeric { .. }) if state == "22003" => (1204, RANGE),
            Some(Kind::Float) => (1208, "FLOAT data type format error."),
            Some(Kind::Numeric { .. }) => (1209, "DECIMAL data type format error."),
            Some(Kind::Bool) => (1210, "BOOLEAN data type format error."),
            Some(Kind::Date) => {
                (1205, "Date format is not valid. See DATEFORMAT and TIMEFORMAT strings for valid formats.")
            }
            Some(Kind::Timestamp | Kind::TimestampTz) => {
                (1206, "Timestamp format is not valid. See DATEFORMAT and TIMEFORMAT strings for valid formats.")
            }
            Some(Kind::Bytes) => (1219, "Hexadecimal contains an invalid digit."),
            Some(Kind::Super) => (1224, "Input data is not well-formed JSON for the SUPER data type."),
            _ => (1216, NOT_VALID),
        }
    };
    LoadError::file(code, reason).of(column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_begin_on_physical_lines() {
        let text = "1,\"a\nb\"\n2,\"c\"\"\n\"\n3,x\n";
        assert_eq!(record_line(text, '"', 0), 0);
        assert_eq!(record_line(text, '"', 1), 1);
        assert_eq!(record_line(text, '"', 2), 3);
        assert_eq!(record_line(text, '"', 3), 5);
        assert_eq!(record_line("1,\"a\"\n2,\"b\n", '"', 3), 2, "an unterminated quote runs to the end");
    }

    #[test]
    fn finds_an_unquoted_end_marker_only() {
        assert_eq!(end_marker_line("1\n\\.\n2\n", '"'), Some(2));
        assert_eq!(end_marker_line("\\.", '"'), Some(1));
        assert_eq!(end_marker_line("\"a\n\\.\nb\"\n", '"'), None);
        assert_eq!(end_marker_line("\\.x\n\"\\.\"\n", '"'), None);
        assert_eq!(end_marker_line("a\\.\n", '"'), None);
    }

    #[test]
    fn reads_only_numbers_from_postgres_context() {
        assert_eq!(number_after("COPY rdl_copy_1, line 12, column c3: \"secret\"", ", line "), Some(12));
        assert_eq!(number_after("COPY rdl_copy_1, line 12, column c3: \"secret\"", "column c"), Some(3));
        assert_eq!(number_after("missing data for column \"c7\"", "column \"c"), Some(7));
        assert_eq!(number_after("nothing", ", line "), None);
    }

    #[test]
    fn classifies_by_column_type_and_sqlstate() {
        let column = |kind| Column {
            name: "c".into(),
            attnum: 1,
            kind,
            type_name: "t".into(),
            col_length: String::new(),
            cast: "t".into(),
        };
        let error = |state: &str| SqlError { code: Some(state.into()), ..SqlError::emulator("x") };
        assert_eq!(classify(Some(&column(Kind::Int)), &error("22P02")).code, 1207);
        assert_eq!(classify(Some(&column(Kind::Int)), &error("22003")).code, 1222);
        assert_eq!(classify(Some(&column(Kind::Timestamp)), &error("22P02")).code, 1206);
        assert_eq!(classify(Some(&column(Kind::Super)), &error("22P02")).code, 1224);
        let char_too_long = classify(Some(&column(Kind::Text { fixed: true })), &error("22001"));
        assert_eq!((char_too_long.code, char_too_long.reason), (1204, "Char length exceeds DDL length"));
        let rule = SqlError { constraint: Some("rdl_3_varchar4".into()), ..error("23514") };
        assert_eq!(
            classify(Some(&column(Kind::Text { fixed: false })), &rule).reason,
            "String length exceeds DDL length"
        );
        assert_eq!(classify(None, &error("23502")).code, 1213);
    }
}
