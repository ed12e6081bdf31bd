//! Redshift's value rules, which PostgreSQL alone does not enforce: DECIMAL(19, s) in 64 bits,
//! DECIMAL precision, ASCII-only CHAR, VARCHAR lengths in bytes, VARBYTE's length, SUPER only from
//! JSON_PARSE and numeric literals of at most 38 digits.

mod support;

use redshift_data_local::{ASCII_ONLY_ERROR, NUMERIC_OVERFLOW_ERROR, SUPER_STRING_ERROR};
use serde_json::json;
use support::{Emulator, database_url, unique};

/// Runs `sql`; `None` if it FINISHED, else its `Error`.
async fn outcome(emu: &Emulator, sql: &str) -> Option<String> {
    let id = emu.execute(sql).await;
    let described = emu.wait(&id).await;
    match described["Status"].as_str() {
        Some("FINISHED") => None,
        _ => Some(described["Error"].as_str().expect("Error").to_owned()),
    }
}

/// Asserts each `(sql, expected)`: `None` = accepted, `Some(text)` = FAILED with that `Error`.
async fn expect_all(emu: &Emulator, cases: &[(String, Option<&str>)]) {
    for (sql, expected) in cases {
        assert_eq!(outcome(emu, sql).await.as_deref(), *expected, "{sql}");
    }
}

#[tokio::test]
async fn decimal_19_digits_holds_64_bit_unscaled_values_only() {
    let emu = Emulator::start("").await;
    let t = unique("dec19");
    emu.run(&format!("CREATE TABLE {t} (a decimal(19,0), b decimal(19,18), c decimal(18,0), d decimal(38,0))")).await;
    let overflow = Some(NUMERIC_OVERFLOW_ERROR);
    let insert = |column: &str, value: &str| format!("INSERT INTO {t} ({column}) VALUES ({value})");
    expect_all(
        &emu,
        &[
            (insert("a", "9223372036854775807"), None),
            (insert("a", "-9223372036854775807"), None),
            // DG r_Numeric_types201: 19 nines overflow; the largest DECIMAL(19,18) is 9.223372036854775807.
            (insert("a", "9999999999999999999"), overflow),
            (insert("a", "-9223372036854775808"), overflow),
            (insert("b", "9.223372036854775807"), None),
            (insert("b", "9.223372036854775808"), overflow),
            (insert("c", "999999999999999999"), None),
            (insert("d", &"9".repeat(38)), None),
            (format!("UPDATE {t} SET a = 9223372036854775808 WHERE a IS NOT NULL"), overflow),
        ],
    )
    .await;
    let count = emu.query(&format!("SELECT count(*) FROM {t}")).await;
    assert_eq!(count["Records"][0][0], json!({"longValue": 5}));
}

#[tokio::test]
async fn column_types_redshift_refuses_fail_the_ddl() {
    let emu = Emulator::start("").await;
    let t = unique("ddl");
    expect_all(
        &emu,
        &[
            (
                format!("CREATE TABLE {t} (n decimal(39,0))"),
                Some("ERROR: NUMERIC precision 39 must be between 1 and 38"),
            ),
            (format!("CREATE TABLE {t} (n decimal(38,38))"), Some("ERROR: NUMERIC scale 38 must be between 0 and 37")),
            (
                format!("CREATE TABLE {t} (v varchar(65536))"),
                Some("ERROR: length for type varchar cannot exceed 65535"),
            ),
            (format!("CREATE TABLE {t} (c char(4097))"), Some("ERROR: length for type character cannot exceed 4096")),
            (format!("CREATE TABLE {t} (n decimal(38,37), v varchar(65535), c char(4096))"), None),
            (
                format!("ALTER TABLE {t} ADD COLUMN m numeric(40,2)"),
                Some("ERROR: NUMERIC precision 40 must be between 1 and 38"),
            ),
        ],
    )
    .await;
}

#[tokio::test]
async fn char_is_ascii_and_varchar_counts_bytes() {
    let emu = Emulator::start("").await;
    let t = unique("chars");
    emu.run(&format!("CREATE TABLE {t} (c char(2), v varchar(4))")).await;
    let too_long = Some("ERROR: value too long for type character varying(4)");
    let insert = |column: &str, value: &str| format!("INSERT INTO {t} ({column}) VALUES ('{value}')");
    expect_all(
        &emu,
        &[
            (insert("c", "ab"), None),
            (insert("c", "é"), Some(ASCII_ONLY_ERROR)),
            (insert("v", "abcd"), None),
            (insert("v", "éé"), None),
            // 3 characters, 6 bytes.
            (insert("v", "ééé"), too_long),
            (insert("v", "abcde"), too_long),
        ],
    )
    .await;
    // A wider VARCHAR replaces the byte limit.
    emu.run(&format!("ALTER TABLE {t} ALTER COLUMN v TYPE varchar(6)")).await;
    expect_all(
        &emu,
        &[
            (insert("v", "ééé"), None),
            (insert("v", "éééé"), Some("ERROR: value too long for type character varying(6)")),
        ],
    )
    .await;

    // Tables made by LIKE, CREATE TABLE AS, ADD COLUMN and temporary tables follow the same rules.
    let like = unique("like");
    let temp = unique("temp");
    let copy = unique("ctas");
    let id = emu
        .batch(&[&format!("CREATE TEMP TABLE {temp} (LIKE {t})"), &format!("INSERT INTO {temp} (c) VALUES ('ü')")])
        .await;
    assert_eq!(emu.wait(&id).await["Error"], ASCII_ONLY_ERROR);
    expect_all(
        &emu,
        &[
            (format!("CREATE TABLE {like} (LIKE {t} INCLUDING ALL)"), None),
            (
                format!("INSERT INTO {like} (v) VALUES ('éééé')"),
                Some("ERROR: value too long for type character varying(6)"),
            ),
            (format!("ALTER TABLE {like} ADD COLUMN w varchar(2)"), None),
            (format!("INSERT INTO {like} (w) VALUES ('é')"), None),
            (
                format!("INSERT INTO {like} (w) VALUES ('éa')"),
                Some("ERROR: value too long for type character varying(2)"),
            ),
            (format!("CREATE TABLE {copy} AS SELECT CAST('ééé' AS varchar(4)) AS v"), too_long),
        ],
    )
    .await;
}

#[tokio::test]
async fn tables_created_directly_on_postgres_follow_the_rules() {
    // The rules are an event trigger of the database, so a test's own PostgreSQL session gets
    // them too once an emulator has connected.
    let emu = Emulator::start("").await;
    emu.run("SELECT 1").await;
    let (client, connection) = tokio_postgres::connect(database_url(), tokio_postgres::NoTls).await.expect("connect");
    tokio::spawn(connection);
    let t = unique("direct");
    client.batch_execute(&format!("CREATE TABLE {t} (c char(1))")).await.expect("create");
    let error = client.batch_execute(&format!("INSERT INTO {t} VALUES ('ß')")).await.unwrap_err();
    assert_eq!(error.as_db_error().and_then(|e| e.constraint()), Some("rdl_1_ascii"), "{error}");
    assert_eq!(outcome(&emu, &format!("INSERT INTO {t} VALUES ('ß')")).await.as_deref(), Some(ASCII_ONLY_ERROR));
}

#[tokio::test]
async fn varbyte_holds_its_default_64000_bytes() {
    let emu = Emulator::start("").await;
    let t = unique("vb");
    emu.run(&format!("CREATE TABLE {t} (b varbyte)")).await;
    let insert = |bytes: usize| format!("INSERT INTO {t} VALUES (to_varbyte(repeat('ab', {bytes}), 'hex'))");
    expect_all(
        &emu,
        &[(insert(64_000), None), (insert(64_001), Some("ERROR: value too long for type binary varying(64000)"))],
    )
    .await;
}

#[tokio::test]
async fn super_values_come_from_json_parse_only() {
    let emu = Emulator::start("").await;
    let t = unique("sup");
    emu.run(&format!("CREATE TABLE {t} (id int, doc super)")).await;
    expect_all(
        &emu,
        &[
            (
                format!(
                    "INSERT INTO {t} VALUES (1, JSON_PARSE('{{ \"name\": {{ \"first name\": \"Jake\" }}, \"age\": 30, \"tags\": [1, \"a b\"] }}'))"
                ),
                None,
            ),
            (format!("INSERT INTO {t} VALUES (2, NULL)"), None),
            // Redshift would store these as one string; the emulator refuses them.
            (format!("INSERT INTO {t} VALUES (3, '{{\"a\": 1}}')"), Some(SUPER_STRING_ERROR)),
            (format!("UPDATE {t} SET doc = 'plain'"), Some(SUPER_STRING_ERROR)),
            (format!("INSERT INTO {t} SELECT 4, 'text'::varchar"), Some("ERROR: column \"doc\" is of type super but expression is of type character varying")),
            (format!("INSERT INTO {t} VALUES (5, JSON_PARSE('not json'))"), Some("ERROR: invalid input syntax for type json")),
        ],
    )
    .await;
    let result = emu.query(&format!("SELECT doc, JSON_SERIALIZE(doc) FROM {t} ORDER BY id")).await;
    let compact = r#"{"name":{"first name":"Jake"},"age":30,"tags":[1,"a b"]}"#;
    assert_eq!(result["Records"][0], json!([{"stringValue": compact}, {"stringValue": compact}]));
    assert_eq!(result["Records"][1][0], json!({"isNull": true}));
    assert_eq!(result["ColumnMetadata"][0]["typeName"], "super");
}

#[tokio::test]
async fn numeric_literals_have_at_most_38_digits() {
    let emu = Emulator::start("").await;
    let nines = "9".repeat(38);
    expect_all(
        &emu,
        &[
            (format!("SELECT {nines}"), None),
            (format!("SELECT 0.{nines}"), None),
            (format!("SELECT 1{nines}"), Some(NUMERIC_OVERFLOW_ERROR)),
            (format!("SELECT 9.{nines}"), Some(NUMERIC_OVERFLOW_ERROR)),
            (format!("SELECT '1{nines}' AS quoted, \"a1{nines}\".x FROM (SELECT 1 AS x) \"a1{nines}\""), None),
        ],
    )
    .await;
    let id = emu.batch(&["SELECT 1", &format!("SELECT 1{nines}")]).await;
    let described = emu.wait(&id).await;
    assert_eq!(described["SubStatements"][1]["Error"], NUMERIC_OVERFLOW_ERROR);
}
