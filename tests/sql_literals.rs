//! Property: any string (without NUL) rendered as a Redshift literal reads back byte for byte
//! from PostgreSQL with `standard_conforming_strings = off`, where backslash escapes as in
//! Redshift — and a hostile value never ends the literal early.

use std::sync::OnceLock;

use cdc_pipeline::redshift::sql::push_text_literal;
use cdc_tests::stack::database_url;
use proptest::prelude::*;

struct Db {
    runtime: tokio::runtime::Runtime,
    client: tokio_postgres::Client,
}

fn db() -> &'static Db {
    static DB: OnceLock<Db> = OnceLock::new();
    DB.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let client = runtime.block_on(async {
            let (client, connection) = tokio_postgres::connect(database_url(), tokio_postgres::NoTls).await.unwrap();
            tokio::spawn(connection);
            client
                .batch_execute("SET standard_conforming_strings = off; SET escape_string_warning = off")
                .await
                .unwrap();
            client
        });
        Db { runtime, client }
    })
}

/// Render the strings as literals in one SELECT and read them back.
fn round_trip(values: &[String]) -> Vec<String> {
    let mut sql = String::from("SELECT v FROM (VALUES ");
    for (i, value) in values.iter().enumerate() {
        if i > 0 {
            sql.push(',');
        }
        sql.push_str(&format!("({i}, "));
        push_text_literal(&mut sql, value);
        sql.push_str("::text)");
    }
    sql.push_str(") AS t(i, v) ORDER BY i");
    let db = db();
    db.runtime
        .block_on(db.client.query(&sql, &[]))
        .unwrap_or_else(|e| panic!("rendered SQL failed: {e}"))
        .iter()
        .map(|row| row.get(0))
        .collect()
}

#[test]
fn hostile_values_round_trip() {
    let corpus: Vec<String> = [
        "O'Brien",
        "'",
        "''",
        "\\",
        "\\\\",
        "\\'",
        "trailing\\",
        "'; DROP TABLE t; --",
        "a\\'b",
        "\\'; SELECT 1; --",
        "/* comment */",
        "-- comment",
        "line\nbreak",
        "tab\there",
        "\u{2019}look-alike\u{2018}",
        "\u{FF07}fullwidth",
        "emoji 😀",
        "\u{1}\u{1f}\u{7f}",
        "E'x'",
        "$$dollar$$",
        "\r\n",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain(std::iter::once("x\\'".repeat(10_000)))
    .collect();
    assert_eq!(round_trip(&corpus), corpus);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_strings_round_trip(values in prop::collection::vec("[^\u{0}]{0,40}", 1..32),
                                    tricky in prop::collection::vec(prop::sample::select(vec!['\\', '\'', '"', '\n', '\t', ';', 'é', '😀', '\u{7f}']), 0..64)) {
        let mut values = values;
        values.push(tricky.into_iter().collect());
        prop_assert_eq!(round_trip(&values), values);
    }
}
