//! Redshift's `COPY … FROM 's3://…'` on PostgreSQL: parse (see [`parse`]), read every object
//! under the prefix (see [`s3`]), check and decompress it, load it with PostgreSQL's own
//! `COPY … FROM STDIN` into a temp table of text columns, then one `INSERT … SELECT` converts
//! each column by the target column's type (see [`convert`]). A row that cannot load fails the
//! whole COPY with Redshift's text, and a `stl_load_errors` row (written on its own connection,
//! so the batch's rollback keeps it) says where: file, line and column, never the value. The
//! README's "COPY" section lists what is supported and every error.
//!
//! The load runs inside a savepoint, so a failure leaves the transaction (a batch's, or the one
//! an ExecuteStatement COPY opens) as it was, the temp table gone. The failing line and column
//! are searched for only on the failure path.

mod convert;
mod load_error;
pub mod parse;
pub mod s3;

use std::io::Read as _;
use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::SinkExt as _;
use tokio_postgres::Client;

use crate::App;
use crate::errors::SqlError;
use crate::executor::Conn;
use crate::store::Outcome;
use load_error::LoadError;

pub use parse::is_copy;

/// Names the helper tables of one COPY (unique within the emulator process; temp tables are
/// per session anyway).
static NEXT: AtomicU64 = AtomicU64::new(1);

/// Redshift's text for a COPY that a row failed: "Load into table 'part' failed.  Check
/// 'stl_load_errors' system table for details." (two spaces, SQLSTATE XX000), as the Developer
/// Guide's *Tutorial: Loading data from Amazon S3* (`tutorial-loading-run-copy`) shows it.
pub fn load_failed_text(table: &str) -> String {
    format!("Load into table '{table}' failed.  Check 'stl_load_errors' system table for details.")
}

/// What one statement needs from its surroundings.
pub struct Context<'a> {
    pub app: &'a App,
    pub database: &'a str,
    pub conn: &'a Conn,
    /// The statement's RedshiftQueryId (`stl_load_errors.query`).
    pub query_id: i64,
    /// In a BatchExecuteStatement's transaction; otherwise COPY opens its own.
    pub in_batch: bool,
}

/// Runs a COPY statement; `ResultRows` is the number of rows loaded.
pub async fn run(context: &Context<'_>, sql: &str) -> Result<Outcome, SqlError> {
    let copy = parse::parse(sql).map_err(|refused| SqlError::emulator(refused.0))?;
    let client = &context.conn.client;
    if !context.in_batch {
        client.batch_execute("BEGIN").await?;
    }
    client.batch_execute("SAVEPOINT rdl_copy").await?;
    let loaded = load(context, &copy).await;
    let result = match loaded {
        Ok(rows) => client.batch_execute("RELEASE SAVEPOINT rdl_copy").await.map(|()| rows).map_err(SqlError::from),
        Err(error) => {
            if !error.fatal {
                // Drops the temp tables and undoes the load; the batch goes on being rolled back by its runner.
                let _ = client.batch_execute("ROLLBACK TO SAVEPOINT rdl_copy").await;
            }
            Err(error)
        }
    };
    if !context.in_batch {
        let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
        if let Err(error) = client.batch_execute(end).await
            && result.is_ok()
        {
            return Err(error.into());
        }
    }
    result.map(|rows| Outcome { rows, result: None })
}

/// One object, checked and decompressed.
struct Data {
    url: String,
    text: String,
    /// Rows PostgreSQL's COPY read from it.
    rows: u64,
}

async fn load(context: &Context<'_>, copy: &parse::Copy) -> Result<i64, SqlError> {
    let client = &context.conn.client;
    let table = convert::Table::resolve(client, copy).await?;
    let objects = context.app.s3.objects(&copy.bucket, &copy.prefix, copy.options.region.as_deref()).await?;
    let mut data = Vec::with_capacity(objects.len());
    for object in objects {
        match checked_text(&object.bytes, &copy.options) {
            Ok(text) => data.push(Data { url: object.url, text, rows: 0 }),
            Err(error) => return Err(failed(context, &table, error.at(&object.url)).await),
        }
    }
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let stage = format!("pg_temp.rdl_copy_{n}");
    let fields: Vec<String> = (1..=table.columns.len()).map(|i| format!("c{i}")).collect();
    client
        .batch_execute(&format!(
            "CREATE TEMP TABLE rdl_copy_{n} (rdl_row bigint GENERATED ALWAYS AS IDENTITY, {})",
            fields.iter().map(|f| format!("{f} text")).collect::<Vec<_>>().join(", ")
        ))
        .await?;
    // FORCE_NULL (every column): Redshift compares NULL AS after removing quotes, so a quoted
    // field equal to the null string is NULL too (it loads a quoted empty field as NULL under
    // EMPTYASNULL: https://github.com/airbytehq/airbyte/pull/84982). PostgreSQL alone would
    // load a quoted "\N" as the text \N.
    let o = &copy.options;
    let copy_sql = format!(
        "COPY {stage} ({list}) FROM STDIN WITH (FORMAT csv, DELIMITER {}, QUOTE {}, NULL {}, FORCE_NULL ({list}))",
        convert::literal(&o.delimiter.to_string()),
        convert::literal(&o.quote.to_string()),
        convert::literal(&o.null_as),
        list = fields.join(", "),
    );
    for object in &mut data {
        match copy_in(client, &copy_sql, &object.text).await {
            Ok(rows) => object.rows = rows,
            Err(error) => match load_error::from_copy(&error, &object.text, o.quote, &table) {
                Some(found) => return Err(failed(context, &table, found.at(&object.url)).await),
                None => return Err(error.into()),
            },
        }
    }
    let insert = table.insert(&stage, o);
    client.batch_execute("SAVEPOINT rdl_copy_insert").await?;
    match client.execute(insert.as_str(), &[]).await {
        Ok(rows) => {
            client.batch_execute(&format!("RELEASE SAVEPOINT rdl_copy_insert; DROP TABLE {stage}")).await?;
            Ok(i64::try_from(rows).unwrap_or(i64::MAX))
        }
        Err(error) => {
            let error = SqlError::from(error);
            if error.fatal || !load_error::is_data_error(&error) {
                return Err(error);
            }
            client.batch_execute("ROLLBACK TO SAVEPOINT rdl_copy_insert").await?;
            let found = load_error::locate(client, &table, &stage, o, &error, n).await?;
            let (object, record) = object_of(&data, found.row);
            let line = load_error::record_line(&object.text, o.quote, record);
            Err(failed(context, &table, found.error.at(&object.url).on_line(line)).await)
        }
    }
}

/// Records `error` in `stl_load_errors` and returns Redshift's text for the failed COPY.
async fn failed(context: &Context<'_>, table: &convert::Table, error: LoadError) -> SqlError {
    load_error::record(context, table, &error).await;
    SqlError { code: Some("XX000".to_owned()), ..SqlError::emulator(load_failed_text(table.name())) }
}

/// The object holding stage row `row` (1-based) and the row's record number in it.
fn object_of(data: &[Data], row: u64) -> (&Data, u64) {
    let mut before = 0;
    for object in data {
        if row <= before + object.rows {
            return (object, row - before);
        }
        before += object.rows;
    }
    (data.last().expect("a COPY reads at least one object"), 0)
}

/// The object's text, decompressed if GZIP, or the load error that stops it: data that is not
/// gzip under GZIP, invalid UTF-8 (which gzip data without GZIP is), a NUL byte, or a line that
/// PostgreSQL would take for its end-of-data marker.
fn checked_text(bytes: &[u8], options: &parse::Options) -> Result<String, Box<LoadError>> {
    let raw = if options.gzip {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(bytes)
            .read_to_end(&mut out)
            .map_err(|_| Box::new(LoadError::file(1216, NOT_GZIP)))?;
        if bytes.is_empty() {
            return Err(Box::new(LoadError::file(1216, NOT_GZIP)));
        }
        out
    } else {
        bytes.to_vec()
    };
    let text = String::from_utf8(raw).map_err(|error| {
        let valid = &error.as_bytes()[..error.utf8_error().valid_up_to()];
        Box::new(LoadError::file(1220, load_error::INVALID_UTF8).on_line(line_at(valid)))
    })?;
    if let Some(at) = text.find('\0') {
        let error = LoadError::file(1216, "Input line is not valid: it holds a NUL byte");
        return Err(Box::new(error.on_line(line_at(&text.as_bytes()[..at]))));
    }
    if let Some(line) = load_error::end_marker_line(&text, options.quote) {
        return Err(Box::new(LoadError::file(1216, load_error::END_MARKER).on_line(line)));
    }
    Ok(text)
}

const NOT_GZIP: &str = "The file is not valid gzip data (COPY has GZIP)";

/// The 1-based line of the byte after `before`.
fn line_at(before: &[u8]) -> u64 {
    before.iter().filter(|&&b| b == b'\n').count() as u64 + 1
}

/// Sends `text` through PostgreSQL's `COPY … FROM STDIN`; the rows it read.
async fn copy_in(client: &Client, sql: &str, text: &str) -> Result<u64, tokio_postgres::Error> {
    let sink = client.copy_in::<_, bytes::Bytes>(sql).await?;
    futures_util::pin_mut!(sink);
    let sent = sink.send(bytes::Bytes::copy_from_slice(text.as_bytes())).await;
    let finished = sink.as_mut().finish().await;
    match (sent, finished) {
        (_, Ok(rows)) => Ok(rows),
        (Err(error), Err(_)) if error.as_db_error().is_some() => Err(error),
        (_, Err(error)) => Err(error),
    }
}
