//! `cdc ddl` as an operator uses it: the table holds every column of every sample record
//! whatever the rules say of the sample; the views it prints (`--views`) count what the table
//! holds, checked against the rows themselves after the sample events are ingested through the
//! Data API emulator; the GRANTs it prints (`--grants`) give the functions' user what the
//! loader needs, and nothing is granted to a user it does not name.

use std::sync::Arc;

use cdc_cli::ddl::{Options, script};
use cdc_pipeline::redshift::types::DdlFlavor;
use cdc_pipeline::synth::msk_event_text;
use cdc_pipeline::{Config, MskEvent, Pipeline};
use cdc_tests::debezium::{Source, Table, column, logical};
use cdc_tests::harness::{Harness, KEY, config};
use chrono::Datelike;
use serde_json::json;

fn sqlserver(n: i64) -> Source {
    Source::sqlserver(n)
}

/// A record every rule of the table rejects: a birth date after the clock (`not_future`), a
/// state outside `one_of`, a name past `max_bytes`.
fn rejected_by_every_rule() -> String {
    let t = Table::new(
        "sqlsrv.sampledb.dbo.patientinfo",
        vec![
            column("id", "int32"),
            column("firstname", "string"),
            column("lastname", "string"),
            column("state", "string"),
            logical("dob", "int64", "io.debezium.time.Timestamp"),
            column("referral_code", "string"),
            column("ssn", "string"),
        ],
        &["id"],
    );
    let future_dob_ms = 4_102_444_800_000_i64; // 2100-01-01
    msk_event_text(&[t.record(
        0,
        0,
        "c",
        None,
        Some(json!({"id": 7, "firstname": "x".repeat(300), "lastname": "L", "state": "ZZ", "dob": future_dob_ms, "referral_code": "R", "ssn": "12"})),
        &sqlserver(1),
        true,
    )])
}

fn ddl_of(config: Config, events: &[String], options: &Options) -> String {
    let pipeline = Pipeline::new(Arc::new(config), Some(KEY)).unwrap();
    let events: Vec<MskEvent<'_>> = events.iter().map(|e| MskEvent::parse(e.as_bytes()).unwrap()).collect();
    script(&pipeline, &events, DdlFlavor::Redshift, options).expect("ddl").0
}

#[test]
fn rules_never_filter_the_sample_and_the_same_input_gives_the_same_ddl() {
    let event = rejected_by_every_rule();
    let sql = ddl_of(config(), std::slice::from_ref(&event), &Options::default());
    // The record's own column no config names, typed from its schema, and the birth date
    // typed as a timestamp (not only from the config's hint).
    assert!(sql.contains("\"referral_code\" VARCHAR"), "{sql}");
    assert!(sql.contains("\"dob\" TIMESTAMP"), "{sql}");
    assert!(!sql.contains("warning"), "no record is left out of the sample: {sql}");
    assert_eq!(sql, ddl_of(config(), &[event], &Options::default()), "deterministic");
}

#[test]
fn every_column_of_every_sample_event_is_in_the_table() {
    let second = Table::new(
        "sqlsrv.sampledb.dbo.patientinfo",
        vec![
            column("id", "int32"),
            column("insurer", "string"),
            column("ssn", "string"),
            logical("dob", "int64", "io.debezium.time.Timestamp"),
        ],
        &["id"],
    );
    let events = [
        rejected_by_every_rule(),
        msk_event_text(&[second.record(
            0,
            1,
            "c",
            None,
            Some(json!({"id": 8, "insurer": "I", "ssn": "123456789", "dob": 0})),
            &sqlserver(2),
            true,
        )]),
    ];
    let sql = ddl_of(config(), &events, &Options::default());
    for column in ["\"referral_code\"", "\"insurer\"", "\"ssn\"", "\"lastname\""] {
        assert!(sql.contains(column), "{column}: {sql}");
    }
    assert_eq!(sql.matches("CREATE TABLE \"public\".\"patientinfo\"").count(), 1, "{sql}");
}

/// A cluster-wide PostgreSQL role of its own for this run (roles outlive the test database).
fn user() -> String {
    format!("IAMR:cdc-ddl-test-{}-{}", std::process::id(), cdc_pipeline::temporal::now_micros())
}

#[tokio::test]
async fn the_views_count_what_the_table_holds_and_the_grants_give_the_loader_what_it_needs() {
    let h = Harness::new("").await;
    let sql = h.sql().await;
    let user = user();
    let other = format!("{user}-not-granted");
    for role in [&user, &other] {
        sql.batch_execute(&format!("CREATE ROLE \"{role}\"")).await.unwrap();
    }
    let texts: Vec<Vec<u8>> = cdc_tests::event_files().iter().map(|p| std::fs::read(p).unwrap()).collect();
    let events: Vec<MskEvent<'_>> = texts.iter().map(|t| MskEvent::parse(t).unwrap()).collect();
    let pipeline = Pipeline::new(Arc::new(config()), Some(KEY)).unwrap();
    let options = Options { views: true, grants: Some(user.clone()) };
    let (ddl, _) = script(&pipeline, &events, DdlFlavor::Postgres, &options).unwrap();
    sql.batch_execute(&ddl).await.unwrap_or_else(|e| panic!("{ddl}: {e:?}"));
    h.ingest_all_samples().await;

    let count = |q: &str| {
        let sql = &sql;
        let q = q.to_string();
        async move { sql.query_one(&q, &[]).await.unwrap_or_else(|e| panic!("{q}: {e:?}")).get::<_, i64>(0) }
    };
    let live = count("SELECT COUNT(*) FROM public.patientinfo WHERE NOT _cdc_deleted").await;
    let deleted = count("SELECT COUNT(*) FROM public.patientinfo WHERE _cdc_deleted").await;
    assert!(live > 0 && deleted > 0, "the samples leave live and soft-deleted rows: {live} {deleted}");
    assert_eq!(count("SELECT COUNT(*) FROM public.patientinfo_current").await, live);
    assert_eq!(
        count("SELECT COUNT(*) FROM public.patientinfo_current c JOIN public.patientinfo t USING (id) WHERE t._cdc_deleted").await,
        0,
        "no soft-deleted row in the current view"
    );

    // Per state: the table's own live rows, grouped here.
    let by_state =
        h.text_rows("SELECT coalesce(state, '-'), \"rows\"::text FROM public.patientinfo_by_state ORDER BY 1").await;
    let expected = h
        .text_rows("SELECT coalesce(state, '-'), COUNT(*)::text FROM public.patientinfo WHERE NOT _cdc_deleted GROUP BY 1 ORDER BY 1")
        .await;
    assert_eq!(by_state, expected);

    // Age bands, computed here from the masked birth dates' years.
    let this_year = chrono::DateTime::from_timestamp_micros(cdc_pipeline::temporal::now_micros()).unwrap().year();
    let mut bands = std::collections::BTreeMap::<String, i64>::new();
    for row in h.text_rows("SELECT to_char(dob, 'YYYY') FROM public.patientinfo WHERE NOT _cdc_deleted").await {
        let band = match row[0].as_deref().map(|y| this_year - y.parse::<i32>().unwrap()) {
            None => "unknown",
            Some(age) if age < 0 => "unknown",
            Some(age) if age < 18 => "0-17",
            Some(age) if age < 35 => "18-34",
            Some(age) if age < 50 => "35-49",
            Some(age) if age < 65 => "50-64",
            Some(_) => "65+",
        };
        *bands.entry(band.to_string()).or_default() += 1;
    }
    let from_view: std::collections::BTreeMap<String, i64> = h
        .text_rows("SELECT age_band, \"rows\"::text FROM public.patientinfo_dob_age_bands")
        .await
        .into_iter()
        .map(|r| (r[0].clone().unwrap(), r[1].as_deref().unwrap().parse().unwrap()))
        .collect();
    assert_eq!(from_view, bands);

    // Data quality: one row, counted again here.
    let quality = h
        .text_rows("SELECT \"rows\"::text, deleted_rows::text, nulls_ssn::text, nulls_dob::text FROM public.patientinfo_quality")
        .await;
    let expected = h
        .text_rows(
            "SELECT COUNT(*)::text, COUNT(*) FILTER (WHERE _cdc_deleted)::text, \
             COUNT(*) FILTER (WHERE NOT _cdc_deleted AND ssn IS NULL)::text, \
             COUNT(*) FILTER (WHERE NOT _cdc_deleted AND dob IS NULL)::text FROM public.patientinfo",
        )
        .await;
    assert_eq!(quality, expected);

    // The grants: every privilege the apply SQL uses, on the target and the ledger, for the
    // user named; none for another.
    for (role, granted) in [(&user, true), (&other, false)] {
        for table in ["public.patientinfo", "public._cdc_deletes"] {
            for privilege in ["SELECT", "INSERT", "UPDATE", "DELETE"] {
                let row =
                    sql.query_one("SELECT has_table_privilege($1, $2, $3)", &[role, &table, &privilege]).await.unwrap();
                assert_eq!(row.get::<_, bool>(0), granted, "{role} {privilege} on {table}");
            }
        }
    }
    let row = sql.query_one("SELECT has_schema_privilege($1, 'public', 'USAGE')", &[&user]).await.unwrap();
    assert!(row.get::<_, bool>(0));
}

/// The Redshift flavor of `--views` and `--grants` (a `drift = "add"` table among them) has
/// the statements a cluster needs; under `make test` they also go to the grammar gate's
/// recording (`REDSHIFT_DATA_LOCAL_RECORD`), which parses them with sqlfluff's redshift dialect:
/// PostgreSQL, which runs the other tests' views, is not the judge of Redshift's syntax.
#[test]
fn the_redshift_views_and_grants_are_complete_and_go_to_the_grammar_gate() {
    let config = Config::parse(
        "[[tables]]\ntopic = \"*.patientinfo\"\ntarget = \"clinic.patientinfo\"\nkey = [\"id\"]\n\
         [tables.columns.ssn]\nmask = \"hmac\"\n[tables.columns.state]\none_of = [\"CA\"]\n\
         [tables.columns.dob]\nmask = \"year\"\n\
         [[tables]]\ntopic = \"*.visits\"\ntarget = \"clinic.visits\"\nkey = [\"id\"]\ndrift = \"add\"\n\
         [tables.columns.id]\ntype = \"int64\"\n",
        "views.toml",
    )
    .unwrap();
    let user = "IAMR:msk-redshift-cdc-IngestFunctionRole-AbC";
    let sql = ddl_of(config, &[rejected_by_every_rule()], &Options { views: true, grants: Some(user.into()) });
    let statements: Vec<String> = sql
        .split(";\n")
        .map(|s| s.lines().filter(|l| !l.starts_with("--")).collect::<Vec<_>>().join("\n").trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    for expected in [
        "CREATE OR REPLACE VIEW \"clinic\".\"patientinfo_current\" AS",
        "CREATE OR REPLACE VIEW \"clinic\".\"patientinfo_by_state\" AS",
        "CREATE OR REPLACE VIEW \"clinic\".\"patientinfo_dob_age_bands\" AS",
        "CREATE OR REPLACE VIEW \"clinic\".\"visits_quality\" AS",
        "GRANT USAGE ON SCHEMA \"clinic\" TO \"IAMR:msk-redshift-cdc-IngestFunctionRole-AbC\"",
        "GRANT SELECT, INSERT, UPDATE, DELETE ON \"clinic\".\"_cdc_deletes\" TO \"IAMR:msk-redshift-cdc-IngestFunctionRole-AbC\"",
        "ALTER TABLE \"clinic\".\"visits\" OWNER TO \"IAMR:msk-redshift-cdc-IngestFunctionRole-AbC\"",
    ] {
        assert!(statements.iter().any(|s| s.starts_with(expected)), "{expected}: {sql}");
    }
    assert!(!sql.contains("\"patientinfo\" OWNER"), "only drift = \"add\" tables change owner: {sql}");
    assert!(
        statements
            .iter()
            .filter(|s| s.starts_with("CREATE OR REPLACE VIEW"))
            .all(|s| s.ends_with("WITH NO SCHEMA BINDING")),
        "{sql}"
    );
    if let Some(recording) = std::env::var_os("REDSHIFT_DATA_LOCAL_RECORD") {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(recording).unwrap();
        for statement in &statements {
            // One write per line: the emulators of other tests append to the same file.
            let line = format!("{}\n", json!({ "sql": statement }));
            file.write_all(line.as_bytes()).unwrap();
        }
    }
}
