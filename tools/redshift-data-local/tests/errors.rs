//! DescribeStatement's `Error` reads like Redshift's and never carries a SQLSTATE.

mod support;

use redshift_data_local::{ABORT_QUERY_ERROR, DISK_FULL_ERROR, Isolation, RESIZE_ERROR, SERIALIZATION_ERROR};
use serde_json::Value;
use support::{Emulator, config, unique};

/// Runs `sql` and returns the FAILED statement's description.
async fn failure(emu: &Emulator, sql: &str) -> Value {
    let id = emu.execute(sql).await;
    let described = emu.wait(&id).await;
    assert_eq!(described["Status"], "FAILED", "{sql}: {described}");
    described
}

async fn error(emu: &Emulator, sql: &str) -> String {
    let text = failure(emu, sql).await["Error"].as_str().unwrap().to_owned();
    assert!(!text.contains("SQLSTATE"), "{text}");
    text
}

#[tokio::test]
async fn postgres_conditions_read_as_redshift_texts() {
    let emu = Emulator::start("").await;
    let table = unique("errs");
    emu.run(&format!("CREATE TABLE {table} (id int NOT NULL, name varchar(4), code char(2), amount decimal(4,2))"))
        .await;
    let cases = [
        (
            format!("INSERT INTO {table} (id, name) VALUES (1, 'abcdef')"),
            "ERROR: value too long for type character varying(4)".to_owned(),
        ),
        (
            format!("INSERT INTO {table} (id, code) VALUES (1, 'abc')"),
            "ERROR: value too long for type character(2)".to_owned(),
        ),
        (
            format!("INSERT INTO {table} (name) VALUES ('a')"),
            "ERROR: Cannot insert a NULL value into column id".to_owned(),
        ),
        (
            format!("INSERT INTO {table} (id, amount) VALUES (1, 350.10)"),
            "ERROR: numeric field overflow DETAIL: The absolute value is greater than or equal to 10^2 for field with \
             precision 4, scale 2."
                .to_owned(),
        ),
        (
            format!("INSERT INTO {table} (id) VALUES ('x1')"),
            "ERROR: invalid input syntax for type integer: \"x1\"".to_owned(),
        ),
        ("SELECT 40000::int2".to_owned(), "ERROR: smallint out of range".to_owned()),
        (
            "SELECT * FROM no_such_relation_here".to_owned(),
            "ERROR: relation \"no_such_relation_here\" does not exist".to_owned(),
        ),
        ("SELEC 1".to_owned(), "ERROR: syntax error at or near \"SELEC\"".to_owned()),
    ];
    for (sql, expected) in cases {
        assert_eq!(error(&emu, &sql).await, expected, "{sql}");
    }
}

#[tokio::test]
async fn permission_and_timeout_errors_use_redshift_words() {
    let emu = Emulator::start("").await;
    let table = unique("guarded");
    emu.run(&format!("CREATE TABLE {table} (id int)")).await;
    let role = unique("rdl_reader");
    let id = emu
        .batch(&[&format!("CREATE ROLE {role}"), &format!("SET LOCAL ROLE {role}"), &format!("SELECT * FROM {table}")])
        .await;
    let described = emu.wait(&id).await;
    assert_eq!(described["Error"], format!("ERROR: permission denied for relation {table}"));

    // A statement_timeout cancels the query: Redshift reports it as cancelled, with the query id.
    let id = emu.batch(&["SET LOCAL statement_timeout = 50", "SELECT pg_sleep(2)"]).await;
    let described = emu.wait(&id).await;
    assert_eq!(described["Status"], "FAILED", "{described}");
    let query_id = &described["SubStatements"][1]["RedshiftQueryId"];
    assert_eq!(described["Error"], format!("ERROR: Query ({query_id}) cancelled on user's request"));
}

#[tokio::test]
async fn injected_incidents_use_redshift_texts() {
    for (spec, isolation, expected, counter) in [
        ("disk_full=1", Isolation::Snapshot, DISK_FULL_ERROR, "disk_full"),
        ("abort=1", Isolation::Snapshot, ABORT_QUERY_ERROR, "abort"),
        ("resize=1", Isolation::Snapshot, RESIZE_ERROR, "resize"),
        ("serialization=1", Isolation::Serializable, SERIALIZATION_ERROR, "serialization"),
    ] {
        let emu = Emulator::start_config(config(spec).with_isolation(isolation)).await;
        let table = unique("never_made");
        let described = failure(&emu, &format!("CREATE TABLE {table} (id int)")).await;
        assert_eq!(described["Error"], expected, "{spec}");
        let id = emu.batch(&["SELECT 1", "SELECT 2"]).await;
        let batch = emu.wait(&id).await;
        assert_eq!(batch["Error"], expected, "{spec}");
        assert_eq!(batch["SubStatements"][0]["Status"], "FAILED");
        assert_eq!(batch["SubStatements"][1]["Status"], "ABORTED");
        let faults = emu.http("GET", "/__faults", &[], b"").await.body;
        assert_eq!(faults["injected"][counter], 2, "{spec}");
        // Nothing ran.
        emu.http("POST", "/__faults", &[], b"").await;
        failure(&emu, &format!("SELECT * FROM {table}")).await;
    }
    assert!(DISK_FULL_ERROR.contains("code: 1016") && ABORT_QUERY_ERROR.contains("code: 1020"));
}
