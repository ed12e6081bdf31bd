//! Debezium messages written by Kafka Connect's JsonConverter: envelope, schema, logical
//! types and source position.
//!
//! - `envelope.rs`: the envelope, [`Op`], [`Source`], [`decode_message`], [`decode_key`]; it
//!   does not read row values.
//! - `schema.rs`: Connect schema → [`ColumnType`], [`SchemaCache`] (one parse per distinct
//!   schema text, not per message).
//! - `convert.rs`: one field and its type → a [`Value`](crate::value::Value): exact decimals,
//!   temporals in µs, placeholders; it never rounds, and truncates finer digits toward the
//!   past only.
//! - `position/`: the source [`Position`] (one file per connector) and `order.rs`
//!   ([`compare`]); it never guesses: a malformed field is a `source_position` reject.
//! - here: [`decode_row`] (a row image into [`Column`]s) and [`check_column_names`].
//!
//! Nothing here does I/O, masks, or decides what to do with a change (that is the transform's).

mod convert;
mod envelope;
mod position;
mod schema;

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::value::RawValue;

pub use convert::{ConvertError, convert, decimal_from_bytes};
pub use envelope::{DecodeError, Entries, Envelope, Key, Message, Op, Source, decode_key, decode_message};
pub use position::order::{Evidence, Order, compare};
pub use position::{LINEAGE_WIDTH, MAX_WIDTH as MAX_POSITION_WIDTH, Position, PositionError, position};
pub use schema::{FieldSchema, MessageSchema, RowSchema, SchemaCache, parse_schema};
// Below the config (a `type` hint is one), kept at this path for the decoder's users.
pub use crate::column_type::{ColumnType, TimeUnit};

use crate::config::{NulPolicy, TableConfig};
use crate::row::{Column, Reason};
use crate::rule::Rule;

/// Lowercase column names for schemaless messages, shared rather than re-allocated.
#[derive(Debug, Default)]
pub struct ColumnNames {
    names: HashMap<Box<str>, Arc<str>>,
}

impl ColumnNames {
    /// `name` lowercased (`str::to_lowercase`: Unicode, not only ASCII), the same `Arc`
    /// for the same source spelling every time.
    pub fn lowercase(&mut self, name: &str) -> Arc<str> {
        if let Some(lower) = self.names.get(name) {
            return lower.clone();
        }
        let lower: Arc<str> = name.to_lowercase().into();
        self.names.insert(name.into(), lower.clone());
        lower
    }
}

/// Redshift's limit on an identifier, in bytes.
pub const MAX_COLUMN_NAME_BYTES: usize = 127;

/// Column names come from the source's rows and schemas, and become quoted identifiers in the
/// apply SQL. One that Redshift cannot name (empty, NUL, over 127 bytes), one the pipeline
/// writes itself (`_cdc_…`, its metadata: the row would carry it twice, or the source's value
/// would stand where the apply SQL reads the position), or two fields that name the same
/// column once lowercased, reject the record here rather than fail or corrupt its SQL. A
/// `[tables.change_schema] rename` (applied before) is the remedy for a `_cdc_` name.
pub fn check_column_names(columns: &[Column<'_>], reasons: &mut Vec<Reason>) {
    for (i, column) in columns.iter().enumerate() {
        let name = &column.name;
        if name.is_empty() || name.len() > MAX_COLUMN_NAME_BYTES || name.contains('\0') {
            // The name goes into logs and dead letters: show a NUL as `\0`, and at most 127 bytes.
            let shown: String = name.escape_default().take(MAX_COLUMN_NAME_BYTES).collect();
            reasons.push(Reason::column(shown.into(), Rule::ColumnName));
        } else if name.starts_with("_cdc_") {
            reasons.push(Reason::column(name.clone(), Rule::ColumnName));
        } else if columns[..i].iter().any(|earlier| earlier.name == *name) {
            reasons.push(Reason::column(name.clone(), Rule::DuplicateColumn));
        }
    }
}

/// Decode a row image into columns. Types come from the message schema when there is one,
/// else from the table's `type` hints, else from the JSON value itself; then the table's
/// `[tables.change_schema]` drops, renames and casts ([`crate::cast`]). Every column that
/// fails adds a reason; the others are still decoded so that a reject lists all problems.
pub fn decode_row<'a>(
    image: &'a RawValue,
    schema: Option<&RowSchema>,
    table: &TableConfig,
    nul: NulPolicy,
    names: &mut ColumnNames,
    out: &mut Vec<Column<'a>>,
    reasons: &mut Vec<Reason>,
) {
    let entries = match Entries::parse(image.get()) {
        Ok(entries) => entries,
        Err(_) => {
            reasons.push(Reason::record(Rule::RowImage));
            return;
        }
    };
    out.reserve(entries.0.len());
    for (i, (name, raw)) in entries.0.into_iter().enumerate() {
        let field = schema.and_then(|s| s.field(&name, i));
        let column = match field {
            Some(f) => f.column.clone(),
            None => names.lowercase(&name),
        };
        // `[tables.change_schema]`: a dropped column is not even converted, so nothing in it
        // can reject the record; a renamed one is known by its new name from here on.
        let Some(column) = table.change_schema.target_name(&column) else { continue };
        let hint;
        let ty = match field {
            Some(f) => &f.ty,
            None => {
                hint = table.column(&column).and_then(|c| c.type_hint.clone()).unwrap_or(ColumnType::Untyped);
                &hint
            }
        };
        match convert(raw, ty, nul, Some(&table.placeholder)) {
            Ok(value) => match table.change_schema.cast_of(&column) {
                None => out.push(Column { name: column, value }),
                Some(to) => match crate::cast::cast(value, to) {
                    Some(value) => out.push(Column { name: column, value }),
                    None => reasons.push(Reason::column(column, Rule::Cast)),
                },
            },
            Err(e) => reasons.push(Reason::column(column, e.rule())),
        }
    }
}
