//! What is particular to one database in the SQL the pipeline sends, behind one trait, as
//! Debezium's JDBC sink keeps a `DatabaseDialect` per database: identifier quoting, literals,
//! column types, the apply SQL, `ALTER TABLE … ADD COLUMN`, and reading the database's error
//! texts. The loader takes its dialect from its [`Warehouse`](super::Warehouse) and writes no
//! SQL of its own.
//!
//! [`Redshift`] is the one implementation: it hands each call to the pure functions of
//! [`sql`] (the apply SQL, literals, identifiers), [`types`] (column
//! types) and [`error`](super::error) (error classes), which stay free functions so that the
//! SQL builders run without a dialect object (benchmarks, fuzzers, `cdc ddl`). A second
//! database is a second implementation of [`Dialect`], with its own builders where its SQL
//! differs; the loader, the bisection and the reports do not change.

use std::fmt;

use super::error::DbErrorClass;
use super::sql::{self, ApplySpec, Rendered};
use super::types::{self, DdlFlavor};
use crate::config::{Mask, TableName};
use crate::debezium::FieldSchema;
use crate::outcome::Change;
use crate::value::Value;

/// One database's SQL. Every method is pure: text in, text out.
pub trait Dialect: Send + Sync + fmt::Debug {
    /// The database's name, for logs (`redshift`).
    fn name(&self) -> &'static str;

    /// Append `name` as an identifier, quoted and folded as the database reads it.
    fn push_ident(&self, out: &mut String, name: &str);

    /// Append `value` as a literal of its type; `NULL` for a null or unavailable value.
    fn push_literal(&self, out: &mut String, value: &Value<'_>);

    /// The SQL type of a new target column: from its Debezium schema `field` when the message
    /// had one, else from a `sample` value; a masked column stores the `mask`'s output.
    fn column_type(&self, field: Option<&FieldSchema>, sample: Option<&Value<'_>>, mask: Option<&Mask>) -> String;

    /// Whether a target column of type `type_name` (as described) holds documents that the
    /// apply SQL must parse rather than store as text ([`ApplySpec::super_columns`]).
    fn is_document_type(&self, type_name: &str) -> bool;

    /// The apply SQL of `rows` (one change per key) into `spec`'s target, cut into
    /// transactions, with the rows it cannot render set aside ([`Rendered`]).
    fn apply_sql(&self, spec: &ApplySpec<'_>, rows: &[&Change<'_>]) -> Rendered;

    /// The statement that adds `column` of `sql_type` to `target`.
    fn add_column(&self, target: &TableName, column: &str, sql_type: &str) -> String;

    /// The class of a database error `message`. Only the class is kept: the text may quote
    /// a value.
    fn classify_error(&self, message: &str) -> DbErrorClass;
}

/// Amazon Redshift, as the Data API reaches it (and the local emulator imitates it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Redshift;

impl Dialect for Redshift {
    fn name(&self) -> &'static str {
        "redshift"
    }

    /// [`sql::push_ident`]: lowercase, double-quoted.
    fn push_ident(&self, out: &mut String, name: &str) {
        sql::push_ident(out, name);
    }

    /// [`sql::push_literal`]: Redshift's escaping (`\` and `'` doubled, no `E'…'`).
    fn push_literal(&self, out: &mut String, value: &Value<'_>) {
        sql::push_literal(out, value);
    }

    /// [`types::column_type`] for Redshift.
    fn column_type(&self, field: Option<&FieldSchema>, sample: Option<&Value<'_>>, mask: Option<&Mask>) -> String {
        types::column_type(field, sample, mask, DdlFlavor::Redshift)
    }

    /// `SUPER`: a JSON document goes through `JSON_PARSE`, else Redshift stores it as one
    /// string ("Ingesting and querying semistructured data", Redshift Database Developer
    /// Guide).
    fn is_document_type(&self, type_name: &str) -> bool {
        type_name.eq_ignore_ascii_case("super")
    }

    /// [`sql::build_transactions`].
    fn apply_sql(&self, spec: &ApplySpec<'_>, rows: &[&Change<'_>]) -> Rendered {
        sql::build_transactions(spec, rows)
    }

    /// [`sql::add_column`].
    fn add_column(&self, target: &TableName, column: &str, sql_type: &str) -> String {
        sql::add_column(target, column, sql_type)
    }

    /// [`DbErrorClass::classify`]: Redshift's codes, then SQLSTATE, then wording.
    fn classify_error(&self, message: &str) -> DbErrorClass {
        DbErrorClass::classify(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redshift_is_the_sql_modules_behind_one_object() {
        let dialect: &dyn Dialect = &Redshift;
        let mut out = String::new();
        dialect.push_ident(&mut out, "Email");
        out.push('=');
        dialect.push_literal(&mut out, &Value::Text("O'Brien \\".into()));
        assert_eq!(out, r#""email"='O''Brien \\'"#);
        assert_eq!(dialect.column_type(None, Some(&Value::Int(1)), None), "BIGINT");
        let target = TableName { schema: "public".into(), table: "t".into() };
        assert_eq!(dialect.add_column(&target, "n", "BIGINT"), sql::add_column(&target, "n", "BIGINT"));
        assert!(dialect.is_document_type("SUPER") && !dialect.is_document_type("varchar"));
        assert_eq!(
            dialect.classify_error("ERROR: 1023 DETAIL: Serializable isolation violation"),
            DbErrorClass::SerializationFailure
        );
    }
}
