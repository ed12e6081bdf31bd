//! PostgreSQL side: connections per database (with Redshift session settings and shims), a
//! small idle pool, running one statement, and mapping PostgreSQL types to Data API `Field`s
//! and `ColumnMetadata`.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use base64::Engine as _;
use tokio::sync::Semaphore;
use tokio_postgres::types::{Kind, Type};
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

use crate::errors::{NUMERIC_OVERFLOW_ERROR, SqlError};
use crate::store::{Outcome, ResultSet};
use crate::wire::{ColumnMetadata, Field};

/// Statements running on PostgreSQL at once by default; others wait (PICKED) for a slot.
pub const MAX_RUNNING: usize = 32;
/// Idle connections kept per database and in total.
const MAX_IDLE_PER_DATABASE: usize = 8;
const MAX_IDLE_TOTAL: usize = 32;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Redshift session behaviour: backslash escapes in '...' literals, UTC.
const SESSION_SETUP: &str = "SET standard_conforming_strings = off; SET escape_string_warning = off; \
SET TIME ZONE 'UTC'; SET bytea_output = 'hex'";

/// Every Data API call without SessionId gets a fresh session: nothing may survive to the next
/// statement on a pooled connection (open transaction, temp tables, SET values).
const SESSION_RESET: &str = "DISCARD TEMP; RESET ALL";

/// A connection with its backend pid (Describe's `RedshiftPid`).
pub struct Conn {
    pub client: Client,
    pub pid: i32,
}

/// Connections per database: opening, idle pool and the running-statement limit.
pub struct Pool {
    base: tokio_postgres::Config,
    idle: Mutex<HashMap<String, Vec<Conn>>>,
    shimmed: Mutex<HashSet<String>>,
    pub running: Semaphore,
}

impl Pool {
    pub fn new(mut base: tokio_postgres::Config, max_running: usize) -> Self {
        base.connect_timeout(CONNECT_TIMEOUT);
        base.application_name("redshift-data-local");
        Pool {
            base,
            idle: Mutex::new(HashMap::new()),
            shimmed: Mutex::new(HashSet::new()),
            running: Semaphore::new(max_running.max(1)),
        }
    }

    /// The server configuration (with the emulator's own connect options).
    pub fn config(&self) -> &tokio_postgres::Config {
        &self.base
    }

    /// An idle connection to `database`, or a new one.
    pub async fn get(&self, database: &str) -> Result<Conn, SqlError> {
        loop {
            let reused = {
                let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
                idle.get_mut(database).and_then(Vec::pop)
            };
            match reused {
                Some(conn) if !conn.client.is_closed() => return Ok(conn),
                Some(_) => continue,
                None => break,
            }
        }
        self.connect(database).await
    }

    async fn connect(&self, database: &str) -> Result<Conn, SqlError> {
        let mut config = self.base.clone();
        config.dbname(database);
        let (client, connection) = config.connect(NoTls).await?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "postgres connection ended");
            }
        });
        client.batch_execute(SESSION_SETUP).await?;
        let pid = scalar(&client, "SELECT pg_backend_pid()").await?.and_then(|p| p.parse().ok()).unwrap_or(0);
        let needs_shims = !self.shimmed.lock().unwrap_or_else(PoisonError::into_inner).contains(database);
        if needs_shims
            && (scalar(&client, crate::shims::INSTALLED).await?.as_deref() == Some("t")
                || install_shims(&client, database).await)
        {
            self.shimmed.lock().unwrap_or_else(PoisonError::into_inner).insert(database.to_owned());
        }
        Ok(Conn { client, pid })
    }

    /// Returns a connection after resetting its session; broken connections are dropped.
    pub async fn put(&self, database: &str, conn: Conn) {
        if conn.client.is_closed() {
            return;
        }
        // ROLLBACK alone: a multi-statement string would run in an implicit transaction.
        let reset = async {
            conn.client.batch_execute("ROLLBACK").await?;
            conn.client.batch_execute(SESSION_RESET).await?;
            conn.client.batch_execute(SESSION_SETUP).await
        };
        if let Err(error) = reset.await {
            tracing::debug!(%error, "dropping connection that failed its reset");
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        let total: usize = idle.values().map(Vec::len).sum();
        let slot = idle.entry(database.to_owned()).or_default();
        if slot.len() < MAX_IDLE_PER_DATABASE && total < MAX_IDLE_TOTAL {
            slot.push(conn);
        }
    }
}

/// Runs every shim block (see `shims.rs`); true if all are in place. A block that fails is not
/// fatal (e.g. no superuser): statements that need it fail on their own, and the next new
/// connection tries again.
async fn install_shims(client: &Client, database: &str) -> bool {
    let mut installed = true;
    for (shim, sql) in crate::shims::blocks() {
        if let Err(error) = client.batch_execute(&sql).await {
            tracing::warn!(database, shim, error = %SqlError::from(error), "could not install a shim");
            installed = false;
        }
    }
    installed
}

/// The first column of the first row of a simple query, as text (`None` for no row or NULL).
pub async fn scalar(client: &Client, sql: &str) -> Result<Option<String>, SqlError> {
    Ok(client.simple_query(sql).await?.iter().find_map(|m| match m {
        SimpleQueryMessage::Row(row) => row.get(0).map(str::to_owned),
        _ => None,
    }))
}

/// A result column as PostgreSQL described it when the statement was prepared.
struct RawColumn {
    name: String,
    type_: Type,
    type_modifier: i32,
    table_oid: Option<u32>,
    column_id: Option<i16>,
}

/// Runs one SQL statement. It is prepared first (extended protocol: rejects several statements
/// in one string like Redshift's driver does, and gives the result column types), then run as
/// a simple query so every value arrives in PostgreSQL's text form.
pub async fn run_statement(client: &Client, sql: &str) -> Result<Outcome, SqlError> {
    if crate::literals::widest_numeric_literal(sql) > crate::literals::MAX_LITERAL_DIGITS {
        return Err(SqlError::emulator(NUMERIC_OVERFLOW_ERROR.trim_start_matches("ERROR: ")));
    }
    let statement = client.prepare(sql).await?;
    let columns: Vec<RawColumn> = statement
        .columns()
        .iter()
        .map(|c| RawColumn {
            name: c.name().to_owned(),
            type_: c.type_().clone(),
            type_modifier: c.type_modifier(),
            table_oid: c.table_oid(),
            column_id: c.column_id(),
        })
        .collect();
    drop(statement);
    let messages = client.simple_query(sql).await?;
    let mut rows = 0;
    let mut records = Vec::new();
    let mut size = 0i64;
    for message in messages {
        match message {
            SimpleQueryMessage::Row(row) => {
                let mut record = Vec::with_capacity(columns.len());
                for (index, column) in columns.iter().enumerate() {
                    let text = row.try_get(index)?;
                    size += text.map_or(0, |t| t.len() as i64);
                    record.push(to_field(&column.type_, text));
                }
                records.push(record);
            }
            SimpleQueryMessage::CommandComplete(n) => rows = i64::try_from(n).unwrap_or(i64::MAX),
            _ => {}
        }
    }
    if columns.is_empty() {
        return Ok(Outcome { rows, result: None });
    }
    let metadata = column_metadata(client, &columns).await?;
    let rows = records.len() as i64;
    Ok(Outcome { rows, result: Some(ResultSet { columns: metadata, records, size }) })
}

/// A domain behaves like its base type.
fn base_type(type_: &Type) -> &Type {
    match type_.kind() {
        Kind::Domain(inner) => base_type(inner),
        _ => type_,
    }
}

fn to_field(type_: &Type, text: Option<&str>) -> Field {
    let Some(text) = text else { return Field::IsNull(true) };
    let type_ = base_type(type_);
    let as_string = || Field::String(text.to_owned());
    match *type_ {
        Type::BOOL => Field::Boolean(text == "t"),
        Type::INT2 | Type::INT4 | Type::INT8 | Type::OID => text.parse().map_or_else(|_| as_string(), Field::Long),
        // JSON has no NaN or Infinity: those stay text.
        Type::FLOAT4 | Type::FLOAT8 => match text.parse::<f64>() {
            Ok(value) if value.is_finite() => Field::Double(value),
            _ => as_string(),
        },
        Type::BYTEA => match decode_hex_bytea(text) {
            Some(bytes) => Field::Blob(base64::engine::general_purpose::STANDARD.encode(bytes)),
            None => as_string(),
        },
        _ => as_string(),
    }
}

/// PostgreSQL's hex bytea output: `\x` then two hex digits per byte.
fn decode_hex_bytea(text: &str) -> Option<Vec<u8>> {
    let hex = text.strip_prefix("\\x")?.as_bytes();
    if hex.len() % 2 != 0 {
        return None;
    }
    let digit = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    hex.chunks(2).map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?)).collect()
}

/// `(precision, scale)` from a type and its modifier, roughly as Redshift's JDBC layer reports.
fn precision_scale(type_: &Type, type_modifier: i32) -> (i32, i32) {
    match *base_type(type_) {
        Type::BOOL => (1, 0),
        Type::INT2 => (5, 0),
        Type::INT4 | Type::OID => (10, 0),
        Type::INT8 => (19, 0),
        Type::FLOAT4 => (8, 8),
        Type::FLOAT8 => (17, 17),
        Type::NUMERIC if type_modifier >= 4 => (((type_modifier - 4) >> 16) & 0xffff, (type_modifier - 4) & 0xffff),
        Type::NUMERIC => (0, 0),
        Type::VARCHAR | Type::BPCHAR if type_modifier >= 4 => (type_modifier - 4, 0),
        // Without a modifier the fractional precision is the maximum, 6.
        Type::TIMESTAMP | Type::TIMESTAMPTZ | Type::TIME | Type::TIMETZ => {
            (29, if type_modifier < 0 { 6 } else { type_modifier.min(6) })
        }
        Type::DATE => (13, 0),
        _ => (0, 0),
    }
}

fn is_signed(type_: &Type) -> bool {
    matches!(
        *base_type(type_),
        Type::INT2 | Type::INT4 | Type::INT8 | Type::FLOAT4 | Type::FLOAT8 | Type::NUMERIC | Type::MONEY
    )
}

fn is_case_sensitive(type_: &Type) -> bool {
    matches!(*base_type(type_), Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::CHAR | Type::JSON)
}

/// ColumnMetadata of a result; schema, table and NOT NULL come from the catalog when the
/// column is a plain table column.
async fn column_metadata(client: &Client, columns: &[RawColumn]) -> Result<Vec<ColumnMetadata>, SqlError> {
    let mut oids: Vec<u32> = columns.iter().filter_map(|c| c.table_oid).collect();
    oids.sort_unstable();
    oids.dedup();
    let mut catalog: HashMap<(u32, i16), (String, String, bool)> = HashMap::new();
    if !oids.is_empty() {
        let rows = client
            .query(
                "SELECT a.attrelid, a.attnum, n.nspname::text, c.relname::text, a.attnotnull \
                 FROM pg_catalog.pg_attribute a \
                 JOIN pg_catalog.pg_class c ON c.oid = a.attrelid \
                 JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
                 WHERE a.attrelid = ANY($1) AND a.attnum > 0",
                &[&oids],
            )
            .await?;
        for row in rows {
            catalog.insert((row.try_get(0)?, row.try_get(1)?), (row.try_get(2)?, row.try_get(3)?, row.try_get(4)?));
        }
    }
    Ok(columns
        .iter()
        .map(|column| {
            let known = column.table_oid.zip(column.column_id).and_then(|key| catalog.get(&key));
            let (schema_name, table_name, not_null) = known.cloned().unwrap_or_default();
            let (precision, scale) = precision_scale(&column.type_, column.type_modifier);
            ColumnMetadata {
                is_case_sensitive: is_case_sensitive(&column.type_),
                is_currency: false,
                is_signed: is_signed(&column.type_),
                label: column.name.clone(),
                length: 0,
                name: column.name.clone(),
                nullable: if not_null { 0 } else { 1 },
                precision,
                scale,
                schema_name,
                table_name,
                type_name: column.type_.name().to_owned(),
                column_default: None,
            }
        })
        .collect())
}

/// One page of DescribeTable: columns of `schema`.`table` (every table of the schema when
/// `table` is None) in ordinal order.
pub async fn describe_table(
    client: &Client,
    schema: &str,
    table: Option<&str>,
    offset: i64,
    limit: i64,
) -> Result<(Vec<ColumnMetadata>, bool), SqlError> {
    // information_schema columns are domains; cast to plain types for the client.
    let rows = client
        .query(
            "SELECT column_name::text, COALESCE(domain_name, udt_name)::text, character_maximum_length::int4, \
                    numeric_precision::int4, numeric_scale::int4, datetime_precision::int4, is_nullable::text, \
                    column_default::text, table_schema::text, table_name::text, udt_name::text \
             FROM information_schema.columns \
             WHERE table_schema::text = $1 AND ($2::text IS NULL OR table_name::text = $2) \
             ORDER BY table_name, ordinal_position OFFSET $3 LIMIT $4",
            &[&schema, &table, &offset, &(limit + 1)],
        )
        .await?;
    let more = rows.len() as i64 > limit;
    let mut columns = Vec::with_capacity(rows.len());
    for row in rows.iter().take(usize::try_from(limit).unwrap_or(usize::MAX)) {
        let name: String = row.try_get(0)?;
        let type_name: String = row.try_get(1)?;
        let udt_name: String = row.try_get(10)?;
        let char_length: Option<i32> = row.try_get(2)?;
        let numeric_precision: Option<i32> = row.try_get(3)?;
        let numeric_scale: Option<i32> = row.try_get(4)?;
        let datetime_precision: Option<i32> = row.try_get(5)?;
        let is_nullable: String = row.try_get(6)?;
        let text_like = matches!(udt_name.as_str(), "varchar" | "bpchar" | "text" | "char" | "name");
        let signed = matches!(udt_name.as_str(), "int2" | "int4" | "int8" | "float4" | "float8" | "numeric");
        columns.push(ColumnMetadata {
            is_case_sensitive: text_like,
            is_currency: false,
            is_signed: signed,
            label: name.clone(),
            // As GetStatementResult reports it: a CHAR/VARCHAR size is the precision; length is 0.
            length: 0,
            name,
            nullable: if is_nullable == "YES" { 1 } else { 0 },
            precision: char_length.or(numeric_precision).or(datetime_precision).unwrap_or(0),
            scale: numeric_scale.or(datetime_precision).unwrap_or(0),
            schema_name: row.try_get(8)?,
            table_name: row.try_get(9)?,
            type_name,
            column_default: row.try_get(7)?,
        });
    }
    Ok((columns, more))
}

/// Text for logs of a URL-ish config without its password.
pub fn describe_config(config: &tokio_postgres::Config) -> String {
    let mut out = String::new();
    for host in config.get_hosts() {
        match host {
            tokio_postgres::config::Host::Tcp(name) => out.push_str(name),
            tokio_postgres::config::Host::Unix(path) => out.push_str(&path.display().to_string()),
        }
    }
    if let Some(port) = config.get_ports().first() {
        let _ = write!(out, ":{port}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_text_values_to_one_field_kind_per_type() {
        assert_eq!(to_field(&Type::INT4, None), Field::IsNull(true));
        assert_eq!(to_field(&Type::BOOL, Some("t")), Field::Boolean(true));
        assert_eq!(to_field(&Type::BOOL, Some("f")), Field::Boolean(false));
        assert_eq!(to_field(&Type::INT8, Some("-9223372036854775808")), Field::Long(i64::MIN));
        assert_eq!(to_field(&Type::OID, Some("4294967295")), Field::Long(4_294_967_295));
        assert_eq!(to_field(&Type::FLOAT8, Some("1.5")), Field::Double(1.5));
        assert_eq!(to_field(&Type::FLOAT8, Some("NaN")), Field::String("NaN".into()));
        assert_eq!(to_field(&Type::NUMERIC, Some("12.340")), Field::String("12.340".into()));
        assert_eq!(to_field(&Type::BYTEA, Some("\\x6869")), Field::Blob("aGk=".into()));
        assert_eq!(
            to_field(&Type::TIMESTAMP, Some("2024-01-02 03:04:05")),
            Field::String("2024-01-02 03:04:05".into())
        );
    }

    #[test]
    fn decodes_hex_bytea_and_rejects_garbage() {
        assert_eq!(decode_hex_bytea("\\x00ff10"), Some(vec![0, 255, 16]));
        assert_eq!(decode_hex_bytea("\\x"), Some(vec![]));
        assert_eq!(decode_hex_bytea("\\x0"), None);
        assert_eq!(decode_hex_bytea("\\xzz"), None);
        assert_eq!(decode_hex_bytea("abc"), None);
    }

    #[test]
    fn numeric_and_varchar_modifiers_give_precision_and_scale() {
        // numeric(10,2) has typmod ((10 << 16) | 2) + 4; varchar(20) has 24.
        assert_eq!(precision_scale(&Type::NUMERIC, ((10 << 16) | 2) + 4), (10, 2));
        assert_eq!(precision_scale(&Type::VARCHAR, 24), (20, 0));
        assert_eq!(precision_scale(&Type::NUMERIC, -1), (0, 0));
    }
}
