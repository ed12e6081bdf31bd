//! Batch transactions run at the database's isolation level: Redshift SNAPSHOT (PostgreSQL
//! REPEATABLE READ) by default, SERIALIZABLE on request.

mod support;

use redshift_data_local::{CONCURRENT_TRANSACTION_ERROR, Isolation};
use serde_json::{Value, json};
use support::{Emulator, config, unique};

/// Two batches that each read the other's row and then write their own (write skew).
async fn write_skew(emu: &Emulator) -> (Value, Value) {
    let table = unique("skew");
    emu.run(&format!("CREATE TABLE {table} (k int, v int)")).await;
    emu.run(&format!("INSERT INTO {table} VALUES (1, 0), (2, 0)")).await;
    // Each batch reads the other's row, waits for the other to read, then writes its own.
    let batch = |read: i32, write: i32| {
        let sqls = [
            format!("SELECT sum(v) FROM {table} WHERE k = {read}"),
            "SELECT pg_sleep(0.5)".to_owned(),
            format!("UPDATE {table} SET v = 1 WHERE k = {write}"),
        ];
        async move { emu.batch(&sqls.iter().map(String::as_str).collect::<Vec<_>>()).await }
    };
    let a = batch(2, 1).await;
    let b = batch(1, 2).await;
    (emu.wait(&a).await, emu.wait(&b).await)
}

fn statuses(a: &Value, b: &Value) -> [String; 2] {
    let mut statuses = [a["Status"].as_str().unwrap().to_owned(), b["Status"].as_str().unwrap().to_owned()];
    statuses.sort_unstable();
    statuses
}

#[tokio::test]
async fn snapshot_is_the_default_and_lets_write_skew_commit() {
    let emu = Emulator::start("").await;
    let level = emu.batch(&["SHOW transaction_isolation"]).await;
    assert_eq!(emu.wait(&level).await["Status"], "FINISHED");
    let shown = emu.ok("GetStatementResult", json!({"Id": format!("{level}:1")})).await;
    assert_eq!(shown["Records"][0][0], json!({"stringValue": "repeatable read"}));
    // DG r_CREATE_DATABASE: SNAPSHOT "doesn't prevent write skew inserts and updates on
    // different table rows".
    let (a, b) = write_skew(&emu).await;
    assert_eq!(statuses(&a, &b), ["FINISHED", "FINISHED"], "{a}\n{b}");
}

#[tokio::test]
async fn snapshot_refuses_a_concurrent_update_of_the_same_row() {
    let emu = Emulator::start("").await;
    let table = unique("same_row");
    emu.run(&format!("CREATE TABLE {table} (k int, v int)")).await;
    emu.run(&format!("INSERT INTO {table} VALUES (1, 0)")).await;
    let first = emu.batch(&[&format!("UPDATE {table} SET v = 1 WHERE k = 1"), "SELECT pg_sleep(0.6)"]).await;
    // The second batch takes its snapshot before the first commits, then updates the same row.
    let second =
        emu.batch(&[&format!("SELECT count(*) FROM {table}"), &format!("UPDATE {table} SET v = 2 WHERE k = 1")]).await;
    let (first, second) = (emu.wait(&first).await, emu.wait(&second).await);
    assert_eq!(first["Status"], "FINISHED", "{first}");
    assert_eq!(second["Status"], "FAILED", "{second}");
    assert_eq!(second["SubStatements"][1]["Status"], "FAILED");
    assert_eq!(second["Error"], CONCURRENT_TRANSACTION_ERROR);
    let kept = emu.query(&format!("SELECT v FROM {table}")).await;
    assert_eq!(kept["Records"][0][0], json!({"longValue": 1}));
}

#[tokio::test]
async fn serializable_refuses_write_skew() {
    let emu = Emulator::start_config(config("").with_isolation(Isolation::Serializable)).await;
    let level = emu.batch(&["SHOW transaction_isolation"]).await;
    emu.wait(&level).await;
    let shown = emu.ok("GetStatementResult", json!({"Id": format!("{level}:1")})).await;
    assert_eq!(shown["Records"][0][0], json!({"stringValue": "serializable"}));
    let (a, b) = write_skew(&emu).await;
    assert_eq!(statuses(&a, &b), ["FAILED", "FINISHED"], "{a}\n{b}");
    let failed = if a["Status"] == "FAILED" { &a } else { &b };
    // ERROR: 1023 DETAIL: Serializable isolation violation on table - <oid>, transactions forming
    // the cycle are: <xid>, 0 (pid:<RedshiftPid>)
    let error = failed["Error"].as_str().unwrap();
    let prefix = "ERROR: 1023 DETAIL: Serializable isolation violation on table - ";
    let rest = error.strip_prefix(prefix).unwrap_or_else(|| panic!("{error}"));
    let (oid, rest) = rest.split_once(", transactions forming the cycle are: ").expect(error);
    assert!(oid.parse::<u32>().is_ok(), "{error}");
    let (xid, pid) = rest.split_once(", 0 (pid:").expect(error);
    assert!(xid.parse::<u64>().unwrap() > 0, "{error}");
    assert_eq!(pid, format!("{})", failed["RedshiftPid"]), "{error}");
}

#[test]
fn isolation_parses_and_prints_both_levels() {
    assert_eq!("snapshot".parse::<Isolation>().unwrap(), Isolation::Snapshot);
    assert_eq!(" SERIALIZABLE ".parse::<Isolation>().unwrap(), Isolation::Serializable);
    assert!("read committed".parse::<Isolation>().is_err());
    assert_eq!(Isolation::default(), Isolation::Snapshot);
    assert_eq!(Isolation::Serializable.to_string(), "serializable");
    assert_eq!(Isolation::Snapshot.postgres_level(), "REPEATABLE READ");
}
