//! Writes the sample events in `events/`: `cargo run -p cdc-tests --bin gen-events [DIR]`.
//!
//! The files are committed; this program documents how each was made and regenerates them
//! byte for byte.

use std::path::PathBuf;

use cdc_pipeline::synth::{self, Patient, RecordSpec, SourcePosition, TOPIC};
use cdc_pipeline::temporal;
use serde_json::json;

fn ms(ts: &str) -> i64 {
    temporal::parse_timestamp(ts).expect("valid timestamp") / 1_000
}

/// Commit LSNs: snapshot at 0000002c:000010c8:0006, later transactions above it.
const SNAPSHOT_LSN: (u32, u32, u16) = (0x2c, 0x10c8, 6);
fn tx(n: u128) -> u128 {
    synth::lsn_number(0x2d, 0, 0) + (n << 20)
}

fn record(partition: i64, offset: i64, ts: i64, key_id: i32, value: Option<String>, with_schema: bool) -> RecordSpec {
    RecordSpec::new(TOPIC, partition, offset, ts, Some(&synth::key_json(key_id, with_schema)), value.as_deref())
}

fn patients() -> [Patient; 4] {
    [
        Patient::new(1001, "John", "Smith", "CA", "123456789", ms("1958-07-21T13:45:30.457")),
        Patient::new(1002, "Maria", "Garcia", "TX", "987654321", ms("1985-02-14T00:00:00")),
        Patient::new(1003, "Wei", "Chen", "NY", "555123456", ms("1990-11-30T08:15:00")),
        Patient::new(1004, "Aisha", "Khan", "IL", "222334444", ms("2001-05-09T00:00:00")),
    ]
}

fn main() -> std::io::Result<()> {
    let dir: PathBuf = std::env::args().nth(1).map_or_else(|| cdc_tests::repo_root().join("events"), PathBuf::from);
    // Pretty-print without reordering keys: Debezium's field order is part of the sample.
    let write = |name: &str, compact: String| -> std::io::Result<()> {
        let mut out = Vec::new();
        let mut de = serde_json::Deserializer::from_str(&compact);
        serde_transcode::transcode(&mut de, &mut serde_json::Serializer::pretty(&mut out)).expect("valid JSON");
        out.push(b'\n');
        std::fs::write(dir.join(name), out)
    };
    let [john, maria, wei, aisha] = patients();
    let day = ms("2026-11-20T08:00:00Z");

    // 01: initial snapshot of three rows (op r), schema-enabled JSON.
    let snap = |i: usize, p: &Patient, flag| {
        let pos = SourcePosition::snapshot(
            synth::lsn_number(SNAPSHOT_LSN.0, SNAPSHOT_LSN.1, SNAPSHOT_LSN.2),
            day + i as i64,
            flag,
        );
        record(0, i as i64, day + i as i64, p.id, Some(synth::value_json("r", None, Some(p), &pos, true)), true)
    };
    write(
        "01-patientinfo-snapshot.json",
        synth::msk_event_text(&[snap(0, &john, "first"), snap(1, &maria, "true"), snap(2, &wei, "last")]),
    )?;

    // 02: an insert.
    let pos = SourcePosition::streamed(tx(1), tx(1) - 2, 1, day + 3_600_000);
    write(
        "02-patientinfo-create.json",
        synth::msk_event_text(&[record(
            0,
            3,
            day + 3_600_000,
            aisha.id,
            Some(synth::value_json("c", None, Some(&aisha), &pos, true)),
            true,
        )]),
    )?;

    // 03: an update (SQL Server writes it as serial number 2).
    let mut john_moved = john.clone();
    john_moved.state = Some("WA".into());
    john_moved.last_name = Some("Smith-Jones".into());
    let pos = SourcePosition::streamed(tx(2), tx(2) - 2, 2, day + 7_200_000);
    write(
        "03-patientinfo-update.json",
        synth::msk_event_text(&[record(
            0,
            4,
            day + 7_200_000,
            john.id,
            Some(synth::value_json("u", Some(&john), Some(&john_moved), &pos, true)),
            true,
        )]),
    )?;

    // 04: a delete followed by its tombstone.
    let pos = SourcePosition::streamed(tx(3), tx(3) - 2, 1, day + 10_800_000);
    write(
        "04-patientinfo-delete.json",
        synth::msk_event_text(&[
            record(
                0,
                5,
                day + 10_800_000,
                maria.id,
                Some(synth::value_json("d", Some(&maria), None, &pos, true)),
                true,
            ),
            record(0, 6, day + 10_800_000, maria.id, None, true),
        ]),
    )?;

    // 05: the same connector with schemas.enable=false: payload-only JSON, no type names.
    let liam = Patient::new(1005, "Liam", "O'Brien", "MA", "444556666", ms("1979-03-02T00:00:00"));
    let mut wei_renamed = wei.clone();
    wei_renamed.first_name = Some("Wéi".into());
    let pos_c = SourcePosition::streamed(tx(4), tx(4) - 2, 1, day + 14_400_000);
    let pos_u = SourcePosition::streamed(tx(5), tx(5) - 2, 2, day + 14_460_000);
    write(
        "05-patientinfo-payload-only.json",
        synth::msk_event_text(&[
            record(
                0,
                7,
                day + 14_400_000,
                liam.id,
                Some(synth::value_json("c", None, Some(&liam), &pos_c, false)),
                false,
            ),
            record(
                0,
                8,
                day + 14_460_000,
                wei.id,
                Some(synth::value_json("u", Some(&wei), Some(&wei_renamed), &pos_u, false)),
                false,
            ),
        ]),
    )?;

    // 06: records that must be rejected, around one that is fine.
    let base = day + 18_000_000;
    let bad = |offset: i64, p: Patient, serial: u128| {
        let pos = SourcePosition::streamed(tx(6 + serial), tx(6 + serial) - 2, 1, base + offset);
        record(0, offset, base + offset, p.id, Some(synth::value_json("c", None, Some(&p), &pos, true)), true)
    };
    let mut undecodable = RecordSpec::new(TOPIC, 0, 13, base + 13, Some(&synth::key_json(2005, true)), None);
    undecodable.raw_value = Some("this is not base64!".into());
    write(
        "06-patientinfo-invalid.json",
        synth::msk_event_text(&[
            bad(9, Patient::new(2001, "Ana", "Silva", "FL", "12345678", ms("1970-01-01T00:00:00")), 0),
            bad(10, Patient::new(2002, "Ben", "Okafor", "GA", "321654987", ms("2031-03-04T00:00:00")), 1),
            bad(11, Patient::new(2003, "Chloe", "Martin", "XX", "741852963", ms("1995-06-07T00:00:00")), 2),
            bad(12, Patient::new(2004, &"A".repeat(120), "Long", "OH", "963852741", ms("1988-08-08T00:00:00")), 3),
            undecodable,
            RecordSpec::new(
                TOPIC,
                0,
                14,
                base + 14,
                Some(&synth::key_json(2006, true)),
                Some("{\"payload\": {\"op\": \"c\", "),
            ),
            bad(15, Patient::new(2007, "Dan", "Wu", "ZZ", "98-765432", ms("1975-05-05T00:00:00")), 4),
            bad(16, Patient::new(2008, "Eve", "Adams", "DC", "111223333", ms("1999-09-09T00:00:00")), 5),
        ]),
    )?;

    // 07: one batch over three partitions; the same key always lands on the same partition.
    let base = day + 21_600_000;
    let change =
        |partition: i64, offset: i64, n: u128, op: &str, before: Option<&Patient>, after: Option<&Patient>, id: i32| {
            let pos =
                SourcePosition::streamed(tx(20 + n), tx(20 + n) - 2, if op == "u" { 2 } else { 1 }, base + offset);
            record(partition, offset, base + offset, id, Some(synth::value_json(op, before, after, &pos, true)), true)
        };
    let mut wei_nj = wei.clone();
    wei_nj.state = Some("NJ".into());
    let mut wei_nj2 = wei_nj.clone();
    wei_nj2.last_name = Some("Chen-Li".into());
    let mut aisha_tx = aisha.clone();
    aisha_tx.state = Some("TX".into());
    let sam = Patient::new(1006, "Sam", "Lee", "NV", "135792468", ms("1966-12-12T00:00:00"));
    let noor = Patient::new(1007, "Noor", "Hassan", "MI", "246813579", ms("2003-03-03T00:00:00"));
    write(
        "07-patientinfo-multi-partition.json",
        synth::msk_event_text(&[
            change(0, 9, 0, "u", Some(&wei), Some(&wei_nj), wei.id),
            change(0, 10, 3, "u", Some(&wei_nj), Some(&wei_nj2), wei.id),
            change(1, 30, 1, "u", Some(&aisha), Some(&aisha_tx), aisha.id),
            change(1, 31, 4, "c", None, Some(&noor), noor.id),
            change(2, 12, 2, "c", None, Some(&sam), sam.id),
            change(2, 13, 5, "d", Some(&sam), None, sam.id),
            record(2, 14, base + 14, sam.id, None, true),
        ]),
    )?;

    // 08: what else a Debezium connector writes: heartbeat, schema change, transaction marker.
    let control = [
        RecordSpec::new("__debezium-heartbeat.sqlsrv", 0, 100, day, Some(r#"{"serverName":"sqlsrv"}"#), Some(&json!({"ts_ms": day}).to_string())),
        RecordSpec::new(
            "sqlsrv",
            0,
            7,
            day,
            Some(r#"{"databaseName":"sampledb"}"#),
            Some(
                &json!({"source": {"version": "2.7.3.Final", "connector": "sqlserver", "name": "sqlsrv", "ts_ms": day,
                                   "snapshot": "true", "db": "sampledb", "schema": "dbo", "table": "patientinfo",
                                   "change_lsn": null, "commit_lsn": synth::lsn(synth::lsn_number(SNAPSHOT_LSN.0, SNAPSHOT_LSN.1, SNAPSHOT_LSN.2)), "event_serial_no": null},
                        "ts_ms": day, "databaseName": "sampledb", "schemaName": "dbo", "ddl": null,
                        "tableChanges": [{"type": "CREATE", "id": "\"sampledb\".\"dbo\".\"patientinfo\"",
                                          "table": {"primaryKeyColumnNames": ["ID"], "columns": []}}]})
                .to_string(),
            ),
        ),
        RecordSpec::new(
            "sqlsrv.transaction",
            0,
            3,
            day,
            Some(&json!({"id": synth::lsn(tx(1))}).to_string()),
            Some(&json!({"status": "BEGIN", "id": synth::lsn(tx(1)), "event_count": null, "data_collections": null, "ts_ms": day}).to_string()),
        ),
    ];
    write("08-debezium-control-topics.json", synth::msk_event_text(&control))?;

    // The AWS documentation samples, verbatim (values are not Debezium JSON).
    write("aws-msk-sample.json", AWS_MSK_SAMPLE.to_string())?;
    write("self-managed-kafka-sample.json", SELF_MANAGED_SAMPLE.to_string())?;
    Ok(())
}

/// https://docs.aws.amazon.com/lambda/latest/dg/with-msk.html ("Example event").
const AWS_MSK_SAMPLE: &str = r#"{
  "eventSource":"aws:kafka",
  "eventSourceArn":"arn:aws:kafka:us-east-1:123456789012:cluster/vpc-2priv-2pub/751d2973-a626-431c-9d4e-d7975eb44dd7-2",
  "bootstrapServers":"b-2.demo-cluster-1.a1bcde.c1.kafka.us-east-1.amazonaws.com:9092,b-1.demo-cluster-1.a1bcde.c1.kafka.us-east-1.amazonaws.com:9092",
  "records":{
    "mytopic-0":[
      {
        "topic":"mytopic",
        "partition":0,
        "offset":15,
        "timestamp":1545084650987,
        "timestampType":"CREATE_TIME",
        "key":"abcDEFghiJKLmnoPQRstuVWXyz1234==",
        "value":"SGVsbG8sIHRoaXMgaXMgYSB0ZXN0Lg==",
        "headers":[ { "headerKey":[104,101,97,100,101,114,86,97,108,117,101] } ]
      }
    ]
  }
}"#;

/// https://docs.aws.amazon.com/lambda/latest/dg/with-kafka.html ("Example event").
const SELF_MANAGED_SAMPLE: &str = r#"{"eventSource":"SelfManagedKafka",
 "bootstrapServers":"b-2.demo-cluster-1.a1bcde.c1.kafka.us-east-1.amazonaws.com:9092,b-1.demo-cluster-1.a1bcde.c1.kafka.us-east-1.amazonaws.com:9092",
 "records":{"mytopic-0":[{"topic":"mytopic","partition":0,"offset":15,"timestamp":1545084650987,"timestampType":"CREATE_TIME",
   "key":"abcDEFghiJKLmnoPQRstuVWXyz1234==","value":"SGVsbG8sIHRoaXMgaXMgYSB0ZXN0Lg==",
   "headers":[{"headerKey":[104,101,97,100,101,114,86,97,108,117,101]}]}]}}"#;
