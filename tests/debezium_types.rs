//! Table-driven: every temporal logical type Debezium's SQL Server, PostgreSQL and MySQL
//! connectors document, in every `time.precision.mode` they support (`adaptive`,
//! `adaptive_time_microseconds`, `connect`, `isostring`), with values taken from Debezium's
//! documentation and tests, through the pipeline to the value it writes — or the rule that
//! rejects it.
//!
//! Sources (debezium/debezium): `documentation/.../connectors/sqlserver.adoc` and
//! `postgresql.adoc` ("Temporal types"), `partials/.../shared-mariadb-mysql.adoc`,
//! `AbstractSqlServerDatatypesTest`, `PostgresTemporalPrecisionHandlingIT`
//! (`shouldConvertTemporalsToIsoString`), `MySqlTimeIT` (DBZ-342), and the `java.time` ISO
//! formatters behind `io.debezium.time.IsoDate`/`IsoTime`/`IsoTimestamp`.

use std::sync::Arc;

use cdc_pipeline::explain::explain;
use cdc_pipeline::synth::msk_event_text;
use cdc_pipeline::{Caches, Config, DecodedBatch, MskEvent, Pipeline};
use cdc_tests::debezium::{Column, Source, Table, column, logical};
use serde_json::{Value, json};

/// What a value must become: the value `cdc explain` shows (and the loader writes), or the
/// rule of the reject.
#[derive(Debug, Clone)]
enum Expect {
    Written(Value),
    Rejected(&'static str),
}
use Expect::{Rejected, Written};

struct Case {
    connector: &'static str,
    mode: &'static str,
    source_type: &'static str,
    column: Column,
    value: Value,
    expect: Expect,
}

fn case(
    connector: &'static str,
    mode: &'static str,
    source_type: &'static str,
    column: Column,
    value: Value,
    expect: Expect,
) -> Case {
    Case { connector, mode, source_type, column, value, expect }
}

fn ts(text: &str) -> Expect {
    Written(json!(text))
}

fn cases() -> Vec<Case> {
    let date = |n| logical(n, "int32", "io.debezium.time.Date");
    let time = |n| logical(n, "int32", "io.debezium.time.Time");
    let micro_time = |n| logical(n, "int64", "io.debezium.time.MicroTime");
    let nano_time = |n| logical(n, "int64", "io.debezium.time.NanoTime");
    let timestamp = |n| logical(n, "int64", "io.debezium.time.Timestamp");
    let micro_ts = |n| logical(n, "int64", "io.debezium.time.MicroTimestamp");
    let nano_ts = |n| logical(n, "int64", "io.debezium.time.NanoTimestamp");
    let zoned_ts = |n| logical(n, "string", "io.debezium.time.ZonedTimestamp");
    let zoned_time = |n| logical(n, "string", "io.debezium.time.ZonedTime");
    let iso_date = |n| logical(n, "string", "io.debezium.time.IsoDate");
    let iso_time = |n| logical(n, "string", "io.debezium.time.IsoTime");
    let iso_ts = |n| logical(n, "string", "io.debezium.time.IsoTimestamp");
    let k_date = |n| logical(n, "int32", "org.apache.kafka.connect.data.Date");
    let k_time = |n| logical(n, "int32", "org.apache.kafka.connect.data.Time");
    let k_ts = |n| logical(n, "int64", "org.apache.kafka.connect.data.Timestamp");
    vec![
        // --- SQL Server, adaptive (default): sqlserver.adoc and AbstractSqlServerDatatypesTest.
        case("sqlserver", "adaptive", "DATE", date("v"), json!(17725), ts("2018-07-13")),
        case("sqlserver", "adaptive", "TIME(2)", time("v"), json!(37425680), ts("10:23:45.680000")),
        case("sqlserver", "adaptive", "TIME(4)", micro_time("v"), json!(37425678900i64), ts("10:23:45.678900")),
        case("sqlserver", "adaptive", "TIME(7)", nano_time("v"), json!(37425678901200i64), ts("10:23:45.678901")),
        case(
            "sqlserver",
            "adaptive",
            "DATETIME",
            timestamp("v"),
            json!(1531488225780i64),
            ts("2018-07-13T13:23:45.780000"),
        ),
        case(
            "sqlserver",
            "adaptive",
            "SMALLDATETIME",
            timestamp("v"),
            json!(1531491840000i64),
            ts("2018-07-13T14:24:00.000000"),
        ),
        case(
            "sqlserver",
            "adaptive",
            "DATETIME2(6)",
            micro_ts("v"),
            json!(1529507596945104i64),
            ts("2018-06-20T15:13:16.945104"),
        ),
        case(
            "sqlserver",
            "adaptive",
            "DATETIME2(7)",
            nano_ts("v"),
            json!(1531481025340000000i64),
            ts("2018-07-13T11:23:45.340000"),
        ),
        case(
            "sqlserver",
            "adaptive",
            "DATETIME (pre-1970 DOB)",
            timestamp("v"),
            json!(-361275269543i64),
            ts("1958-07-21T13:45:30.457000"),
        ),
        case(
            "sqlserver",
            "adaptive",
            "DATETIMEOFFSET",
            zoned_ts("v"),
            json!("2018-07-13T12:23:45.456+11:00"),
            ts("2018-07-13T01:23:45.456000"),
        ),
        // --- SQL Server, adaptive_time_microseconds: every TIME is MicroTime.
        case(
            "sqlserver",
            "adaptive_time_microseconds",
            "TIME(2)",
            micro_time("v"),
            json!(37425680000i64),
            ts("10:23:45.680000"),
        ),
        case(
            "sqlserver",
            "adaptive_time_microseconds",
            "TIME(7)",
            micro_time("v"),
            json!(37425678901i64),
            ts("10:23:45.678901"),
        ),
        // --- SQL Server, connect: Kafka's built-in types, millisecond precision.
        case("sqlserver", "connect", "DATE", k_date("v"), json!(17725), ts("2018-07-13")),
        case("sqlserver", "connect", "TIME(4)", k_time("v"), json!(37425678), ts("10:23:45.678000")),
        case("sqlserver", "connect", "DATETIME2", k_ts("v"), json!(1531481025340i64), ts("2018-07-13T11:23:45.340000")),
        // --- SQL Server, isostring (Debezium 3.1+): ISO_OFFSET_* formatters, always `Z`.
        case("sqlserver", "isostring", "DATE", iso_date("v"), json!("2018-07-13Z"), ts("2018-07-13")),
        case("sqlserver", "isostring", "TIME(2)", iso_time("v"), json!("10:23:45.68Z"), ts("10:23:45.680000")),
        case("sqlserver", "isostring", "TIME(7)", iso_time("v"), json!("10:23:45.6789012Z"), ts("10:23:45.678901")),
        case("sqlserver", "isostring", "TIME(0) midnight", iso_time("v"), json!("00:00:00Z"), ts("00:00:00.000000")),
        case(
            "sqlserver",
            "isostring",
            "DATETIME2(7)",
            iso_ts("v"),
            json!("2018-07-13T11:23:45.34Z"),
            ts("2018-07-13T11:23:45.340000"),
        ),
        case(
            "sqlserver",
            "isostring",
            "DATETIME",
            iso_ts("v"),
            json!("2018-07-13T13:23:45.78Z"),
            ts("2018-07-13T13:23:45.780000"),
        ),
        case(
            "sqlserver",
            "isostring",
            "SMALLDATETIME",
            iso_ts("v"),
            json!("2018-07-13T14:24:00Z"),
            ts("2018-07-13T14:24:00.000000"),
        ),
        case(
            "sqlserver",
            "isostring",
            "DATETIME2 (9 digits floored)",
            iso_ts("v"),
            json!("2018-07-13T11:23:45.123456789Z"),
            ts("2018-07-13T11:23:45.123456"),
        ),
        case(
            "sqlserver",
            "isostring",
            "DATETIMEOFFSET",
            zoned_ts("v"),
            json!("2018-07-13T12:23:45.456+11:00"),
            ts("2018-07-13T01:23:45.456000"),
        ),
        // --- PostgreSQL, adaptive (default): postgresql.adoc "Temporal types".
        case("postgresql", "adaptive", "DATE", date("v"), json!(17424), ts("2017-09-15")),
        case("postgresql", "adaptive", "TIME(3)", time("v"), json!(14711789), ts("04:05:11.789000")),
        case("postgresql", "adaptive", "TIME(6)", micro_time("v"), json!(10799999999i64), ts("02:59:59.999999")),
        case(
            "postgresql",
            "adaptive",
            "TIME '24:00:00'",
            micro_time("v"),
            json!(86400000000i64),
            ts("24:00:00.000000"),
        ),
        case(
            "postgresql",
            "adaptive",
            "TIMESTAMP(3)",
            timestamp("v"),
            json!(1562639337123i64),
            ts("2019-07-09T02:28:57.123000"),
        ),
        case(
            "postgresql",
            "adaptive",
            "TIMESTAMP",
            micro_ts("v"),
            json!(1529507596945104i64),
            ts("2018-06-20T15:13:16.945104"),
        ),
        case(
            "postgresql",
            "adaptive",
            "TIMESTAMPTZ",
            zoned_ts("v"),
            json!("2019-07-09T01:28:10.123456Z"),
            ts("2019-07-09T01:28:10.123456"),
        ),
        case(
            "postgresql",
            "adaptive",
            "TIMESTAMPTZ (whole seconds)",
            zoned_ts("v"),
            json!("2019-07-09T01:28:10.000000Z"),
            ts("2019-07-09T01:28:10.000000"),
        ),
        case("postgresql", "adaptive", "TIMETZ", zoned_time("v"), json!("12:05:11Z"), ts("12:05:11.000000")),
        case(
            "postgresql",
            "adaptive",
            "TIMETZ '24:00:00+00'",
            zoned_time("v"),
            json!("24:00:00Z"),
            ts("24:00:00.000000"),
        ),
        case(
            "postgresql",
            "adaptive",
            "INTERVAL (numeric)",
            logical("v", "int64", "io.debezium.time.MicroDuration"),
            json!(31557600000000i64),
            Written(json!(31557600000000i64)),
        ),
        case(
            "postgresql",
            "adaptive",
            "INTERVAL (string)",
            logical("v", "string", "io.debezium.time.Interval"),
            json!("P1Y2M3DT4H5M6.78S"),
            ts("P1Y2M3DT4H5M6.78S"),
        ),
        // PostgreSQL ±infinity: Redshift has no infinity; the sentinel is a marker, not a date.
        case(
            "postgresql",
            "adaptive",
            "TIMESTAMP 'infinity'",
            micro_ts("v"),
            json!(9223372036825200000i64),
            Rejected("infinity"),
        ),
        case(
            "postgresql",
            "adaptive",
            "TIMESTAMP '-infinity'",
            micro_ts("v"),
            json!(-9223372036832400000i64),
            Rejected("infinity"),
        ),
        case(
            "postgresql",
            "adaptive",
            "TIMESTAMP(3) 'infinity'",
            timestamp("v"),
            json!(9223372036825200i64),
            Rejected("infinity"),
        ),
        case(
            "postgresql",
            "adaptive",
            "TIMESTAMPTZ 'infinity'",
            zoned_ts("v"),
            json!("infinity"),
            Rejected("infinity"),
        ),
        case(
            "postgresql",
            "adaptive",
            "TIMESTAMPTZ '-infinity'",
            zoned_ts("v"),
            json!("-infinity"),
            Rejected("infinity"),
        ),
        case("postgresql", "adaptive", "DATE '-infinity'", date("v"), json!(-2147472691), Rejected("infinity")),
        case("postgresql", "adaptive", "DATE 'infinity'", date("v"), json!(2146033979), Rejected("infinity")),
        // --- PostgreSQL, adaptive_time_microseconds.
        case(
            "postgresql",
            "adaptive_time_microseconds",
            "TIME(3)",
            micro_time("v"),
            json!(14711789000i64),
            ts("04:05:11.789000"),
        ),
        // --- PostgreSQL, connect.
        case("postgresql", "connect", "DATE", k_date("v"), json!(17424), ts("2017-09-15")),
        case("postgresql", "connect", "TIME", k_time("v"), json!(14711789), ts("04:05:11.789000")),
        case(
            "postgresql",
            "connect",
            "TIMESTAMP",
            k_ts("v"),
            json!(1529507596945i64),
            ts("2018-06-20T15:13:16.945000"),
        ),
        // --- PostgreSQL, isostring (PostgresTemporalPrecisionHandlingIT, DBZ-6387).
        case("postgresql", "isostring", "DATE", iso_date("v"), json!("2017-09-15Z"), ts("2017-09-15")),
        case(
            "postgresql",
            "isostring",
            "TIMESTAMP(0)",
            iso_ts("v"),
            json!("2019-07-09T02:28:57Z"),
            ts("2019-07-09T02:28:57.000000"),
        ),
        case(
            "postgresql",
            "isostring",
            "TIMESTAMP(1)",
            iso_ts("v"),
            json!("2019-07-09T02:28:57.1Z"),
            ts("2019-07-09T02:28:57.100000"),
        ),
        case(
            "postgresql",
            "isostring",
            "TIMESTAMP(6)",
            iso_ts("v"),
            json!("2019-07-09T02:28:57.123456Z"),
            ts("2019-07-09T02:28:57.123456"),
        ),
        case(
            "postgresql",
            "isostring",
            "TIMESTAMPTZ",
            zoned_ts("v"),
            json!("2019-07-09T01:28:10.123456Z"),
            ts("2019-07-09T01:28:10.123456"),
        ),
        case(
            "postgresql",
            "isostring",
            "TIME WITH TIME ZONE",
            zoned_time("v"),
            json!("12:05:11Z"),
            ts("12:05:11.000000"),
        ),
        case("postgresql", "isostring", "TIME", iso_time("v"), json!("04:05:11.789Z"), ts("04:05:11.789000")),
        case(
            "postgresql",
            "isostring",
            "time(6)[] element",
            iso_time("v"),
            json!("02:59:59.999999Z"),
            ts("02:59:59.999999"),
        ),
        case(
            "postgresql",
            "isostring",
            "TIMESTAMP 'infinity'",
            iso_ts("v"),
            json!("+294247-01-10T04:00:25.2Z"),
            Rejected("infinity"),
        ),
        case(
            "postgresql",
            "isostring",
            "DATE 'infinity'",
            iso_date("v"),
            json!("+5877611-06-21Z"),
            Rejected("infinity"),
        ),
        // --- MySQL, adaptive_time_microseconds (its default; `adaptive` is refused by MySQL).
        case("mysql", "adaptive_time_microseconds", "DATE", date("v"), json!(17702), ts("2018-06-20")),
        case(
            "mysql",
            "adaptive_time_microseconds",
            "TIME(6)",
            micro_time("v"),
            json!(37425678900i64),
            ts("10:23:45.678900"),
        ),
        // MySQL TIME spans ±838:59:59 (DBZ-342); Redshift's TIME is 00:00:00–24:00:00.
        case(
            "mysql",
            "adaptive_time_microseconds",
            "TIME(2) '517:51:04.777'",
            micro_time("v"),
            json!(1864264780000i64),
            Rejected("time_range"),
        ),
        case(
            "mysql",
            "adaptive_time_microseconds",
            "TIME(0) '-13:14:50'",
            micro_time("v"),
            json!(-47690000000i64),
            Rejected("time_range"),
        ),
        case(
            "mysql",
            "adaptive_time_microseconds",
            "DATETIME",
            timestamp("v"),
            json!(1529476623000i64),
            ts("2018-06-20T06:37:03.000000"),
        ),
        case(
            "mysql",
            "adaptive_time_microseconds",
            "DATETIME(6)",
            micro_ts("v"),
            json!(1529476623123456i64),
            ts("2018-06-20T06:37:03.123456"),
        ),
        case(
            "mysql",
            "adaptive_time_microseconds",
            "TIMESTAMP",
            zoned_ts("v"),
            json!("2018-06-20T13:37:03Z"),
            ts("2018-06-20T13:37:03.000000"),
        ),
        case(
            "mysql",
            "adaptive_time_microseconds",
            "TIMESTAMP(3)",
            zoned_ts("v"),
            json!("2020-02-13T01:02:03.123Z"),
            ts("2020-02-13T01:02:03.123000"),
        ),
        case(
            "mysql",
            "adaptive_time_microseconds",
            "YEAR",
            logical("v", "int32", "io.debezium.time.Year"),
            json!(2018),
            Written(json!(2018)),
        ),
        // --- MySQL, connect.
        case("mysql", "connect", "DATE", k_date("v"), json!(17702), ts("2018-06-20")),
        case("mysql", "connect", "TIME", k_time("v"), json!(37425678), ts("10:23:45.678000")),
        case("mysql", "connect", "DATETIME", k_ts("v"), json!(1529476623000i64), ts("2018-06-20T06:37:03.000000")),
        // --- MySQL, isostring (accepted by the connector, undocumented).
        case("mysql", "isostring", "DATE", iso_date("v"), json!("2018-06-20Z"), ts("2018-06-20")),
        case("mysql", "isostring", "TIME", iso_time("v"), json!("10:23:45.6789Z"), ts("10:23:45.678900")),
        case(
            "mysql",
            "isostring",
            "DATETIME",
            iso_ts("v"),
            json!("2018-06-20T06:37:03Z"),
            ts("2018-06-20T06:37:03.000000"),
        ),
        // --- `structured` (Debezium 3.7): not decoded, so refused rather than stored as JSON.
        case(
            "postgresql",
            "structured",
            "TIMESTAMP",
            Column {
                name: "v".into(),
                schema: json!({"type": "struct", "fields": [{"type": "int32", "optional": true, "field": "year"}],
                               "optional": true, "name": "io.debezium.time.StructuredTimestamp", "version": 1}),
            },
            json!({"year": 2018}),
            Rejected("unsupported_type"),
        ),
    ]
}

fn source(connector: &str) -> Source {
    match connector {
        "sqlserver" => Source::SqlServer {
            commit: 0x2c_0000_10c8_0006,
            change: Some(0x2c_0000_10c8_0003),
            serial: Some(1),
            ts_ms: 1_718_000_000_000,
        },
        "postgresql" => Source::Postgres {
            lsn: 24_023_128,
            sequence: Some((Some(24_023_119), Some(24_023_128))),
            tx_id: 555,
            ts_ms: 1_718_000_000_000,
        },
        _ => Source::MySql {
            server_id: 223_344,
            file: "mysql-bin.000003".into(),
            pos: 484,
            row: 0,
            gtid: None,
            ts_ms: 1_718_000_000_000,
        },
    }
}

/// Runs one case through the pipeline (schema-enabled JSON, default routing) and returns the
/// `cdc explain` line of the record.
fn explain_case(case: &Case) -> Value {
    let table = Table::new(
        &format!("src.db.public.t_{}", case.connector),
        vec![column("id", "int32"), case.column.clone()],
        &["id"],
    );
    let after = json!({"id": 1, case.column.name.clone(): case.value.clone()});
    let record = table.record(0, 0, "c", None, Some(after), &source(case.connector), true);
    let text = msk_event_text(&[record]);
    let event = MskEvent::parse(text.as_bytes()).expect("event");
    let batch = DecodedBatch::from_event(&event);
    let pipeline = Pipeline::new(Arc::new(Config::default_routing()), None).expect("pipeline");
    let outcomes = pipeline.transform(&batch, &mut Caches::default(), 1_795_521_600_000_000);
    serde_json::to_value(explain(batch.records()[0], &outcomes[0])).expect("JSON")
}

#[test]
fn every_documented_temporal_type_in_every_mode() {
    let cases = cases();
    let mut failures = Vec::new();
    for case in &cases {
        let line = explain_case(case);
        let label = format!(
            "{} {} {} ({}) = {}",
            case.connector,
            case.mode,
            case.source_type,
            case.column.schema.get("name").and_then(Value::as_str).unwrap_or("?"),
            case.value
        );
        match &case.expect {
            Written(value) => {
                if line["action"] != "upsert" || line["row"]["v"] != *value {
                    failures.push(format!("{label}: expected {value}, got {line}"));
                }
            }
            Rejected(rule) => {
                let expected = json!([{"column": "v", "rule": rule}]);
                if line["action"] != "reject" || line["reasons"] != expected {
                    failures.push(format!("{label}: expected reject `{rule}`, got {line}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{} of {} cases wrong:\n{}", failures.len(), cases.len(), failures.join("\n"));
    // Every mode of every connector is covered.
    for (connector, modes) in [
        ("sqlserver", &["adaptive", "adaptive_time_microseconds", "connect", "isostring"][..]),
        ("postgresql", &["adaptive", "adaptive_time_microseconds", "connect", "isostring"][..]),
        ("mysql", &["adaptive_time_microseconds", "connect", "isostring"][..]),
    ] {
        for mode in modes {
            assert!(
                cases.iter().any(|c| c.connector == connector && c.mode == *mode),
                "{connector} {mode} has no case"
            );
        }
    }
}

/// Every logical type name the connectors' temporal tables list appears in the cases.
#[test]
fn the_table_names_every_documented_temporal_type() {
    let names: Vec<String> = cases()
        .iter()
        .filter_map(|c| c.column.schema.get("name").and_then(Value::as_str).map(str::to_string))
        .collect();
    for documented in [
        "io.debezium.time.Date",
        "io.debezium.time.Time",
        "io.debezium.time.MicroTime",
        "io.debezium.time.NanoTime",
        "io.debezium.time.Timestamp",
        "io.debezium.time.MicroTimestamp",
        "io.debezium.time.NanoTimestamp",
        "io.debezium.time.ZonedTimestamp",
        "io.debezium.time.ZonedTime",
        "io.debezium.time.IsoDate",
        "io.debezium.time.IsoTime",
        "io.debezium.time.IsoTimestamp",
        "io.debezium.time.Year",
        "io.debezium.time.MicroDuration",
        "io.debezium.time.Interval",
        "org.apache.kafka.connect.data.Date",
        "org.apache.kafka.connect.data.Time",
        "org.apache.kafka.connect.data.Timestamp",
    ] {
        assert!(names.iter().any(|n| n == documented), "{documented} has no case");
    }
}

/// The same changes without a schema (`schemas.enable=false`): the config's `type` hints
/// decode them the same way.
#[test]
fn schemaless_values_decode_through_type_hints() {
    let config = Config::parse(
        "[[tables]]\ntopic = \"src.*\"\ntarget = \"public.t\"\nkey = [\"id\"]\n\
         [tables.columns.d]\ntype = \"io.debezium.time.IsoDate\"\n\
         [tables.columns.t]\ntype = \"io.debezium.time.IsoTime\"\n\
         [tables.columns.ts]\ntype = \"io.debezium.time.IsoTimestamp\"\n\
         [tables.columns.mt]\ntype = \"time_us\"\n",
        "hints.toml",
    )
    .expect("config");
    let table = Table::new(
        "src.db.dbo.t",
        vec![
            column("id", "int32"),
            column("d", "string"),
            column("t", "string"),
            column("ts", "string"),
            column("mt", "int64"),
        ],
        &["id"],
    );
    let after = json!({"id": 1, "d": "2018-07-13Z", "t": "10:23:45.6789012Z", "ts": "2018-07-13T11:23:45.34Z", "mt": 86400000001i64});
    let text = msk_event_text(&[table.record(0, 0, "c", None, Some(after), &source("sqlserver"), false)]);
    let event = MskEvent::parse(text.as_bytes()).unwrap();
    let batch = DecodedBatch::from_event(&event);
    let outcomes = Pipeline::new(Arc::new(config), None).unwrap().transform(&batch, &mut Caches::default(), 0);
    let line = serde_json::to_value(explain(batch.records()[0], &outcomes[0])).unwrap();
    assert_eq!(line["reasons"], json!([{"column": "mt", "rule": "time_range"}]), "{line}");
}
