//! `sql::push_text_literal` (and `sql::push_ident`) against a real PostgreSQL 15 running
//! with Redshift's string semantics (`standard_conforming_strings = off`: backslash is an
//! escape inside `'…'`).
//!
//! Invariants, for any UTF-8 input without NUL (the pipeline never renders NUL):
//! - the literal starts with `'` (never `E'`) and ends with `'`; lexed with Redshift's rules
//!   (`\x` is an escaped character, `''` a quote) it closes exactly at its last byte, so an
//!   unescaped quote can never end it early;
//! - `SELECT <literal>` returns exactly the input;
//! - `SELECT 1 AS <ident>` names its column with the lowercased input (when it fits in
//!   PostgreSQL's 63-byte identifiers; Redshift allows 127).
//!
//! Needs `DATABASE_URL` (`eval "$(scripts/local-pg.sh start)"`; `fuzz/run.sh` does it).
//! With `SQL_LITERAL_OFFLINE=1` only the lexical checks run.
#![no_main]

use std::sync::{LazyLock, Mutex};

use cdc_pipeline::redshift::sql::{push_ident, push_text_literal};
use libfuzzer_sys::fuzz_target;
use postgres::{Client, NoTls};

static DB: LazyLock<Option<Mutex<Client>>> = LazyLock::new(|| {
    if std::env::var_os("SQL_LITERAL_OFFLINE").is_some() {
        eprintln!("sql_literal: SQL_LITERAL_OFFLINE set, lexical checks only");
        return None;
    }
    let url = std::env::var("DATABASE_URL")
        .expect("sql_literal needs DATABASE_URL (eval \"$(scripts/local-pg.sh start)\") or SQL_LITERAL_OFFLINE=1");
    let mut client = Client::connect(&url, NoTls).expect("connect to DATABASE_URL");
    client
        .batch_execute(
            "SET standard_conforming_strings = off; SET escape_string_warning = off; SET client_min_messages = error",
        )
        .expect("session settings");
    let scs: String = client.query_one("SHOW standard_conforming_strings", &[]).expect("show").get(0);
    assert_eq!(scs, "off");
    Some(Mutex::new(client))
});

/// Where a `'…'` literal starting at byte 0 closes under Redshift's rules, if it does.
fn closing_quote(literal: &str) -> Option<usize> {
    let bytes = literal.as_bytes();
    if bytes.first() != Some(&b'\'') {
        return None;
    }
    let mut i = 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'\'' if bytes.get(i + 1) == Some(&b'\'') => i += 2,
            b'\'' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if text.contains('\0') {
        return;
    }

    let mut literal = String::new();
    push_text_literal(&mut literal, text);
    assert!(literal.starts_with('\'') && !literal.starts_with("E'") && literal.len() >= 2, "{literal:?}");
    assert_eq!(closing_quote(&literal), Some(literal.len() - 1), "literal closes at its end: {literal:?}");

    // Names reach push_ident already lowercased (config, schema and row field names).
    let expected_ident = text.to_lowercase();
    let mut ident = String::new();
    push_ident(&mut ident, &expected_ident);

    let Some(db) = DB.as_ref() else { return };
    let mut client = db.lock().unwrap_or_else(|e| e.into_inner());
    // The extended protocol runs exactly one statement: a literal that ended early fails
    // to parse (or returns something else) instead of running a second statement.
    let sql = format!("SELECT {literal}::text");
    match client.query_one(sql.as_str(), &[]) {
        Ok(row) => {
            let back: String = row.get(0);
            assert_eq!(back, text, "round trip of {literal:?}");
        }
        Err(e) => panic!("PostgreSQL refused {sql:?}: {e}"),
    }

    if !expected_ident.is_empty() && expected_ident.len() <= 63 {
        let sql = format!("SELECT 1 AS {ident}");
        match client.prepare(&sql) {
            Ok(statement) => assert_eq!(statement.columns()[0].name(), expected_ident, "identifier {ident:?}"),
            Err(e) => panic!("PostgreSQL refused {sql:?}: {e}"),
        }
    }
});
