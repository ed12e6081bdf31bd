//! Regressions from the review of issue 15's `cdc ddl` (`--views`, `--grants`, the sample's
//! union) and `[tables.change_schema]`: each test failed before its fix (the doc comments say
//! what broke and where). Worst first: two loaded a raw SSN.

use std::sync::Arc;

use cdc_cli::ddl::{Options, script};
use cdc_pipeline::cast::cast;
use cdc_pipeline::column_type::ColumnType;
use cdc_pipeline::explain::explain;
use cdc_pipeline::redshift::types::DdlFlavor;
use cdc_pipeline::synth::msk_event_text;
use cdc_pipeline::value::Value as V;
use cdc_pipeline::{Caches, Config, DecodedBatch, MskEvent, Pipeline};
use cdc_tests::debezium::{Column, Source, Table, column};
use cdc_tests::harness::{Harness, ingest};
use serde_json::{Value, json};

const KEY: &[u8] = b"review15-test-masking-key-0123456789abcde";
const SSN: &str = "123-45-6789";

fn source(n: i64) -> Source {
    Source::sqlserver(n)
}

fn explained(config: Config, event: &str) -> Vec<Value> {
    let pipeline = Pipeline::new(Arc::new(config), Some(KEY)).unwrap();
    let event = MskEvent::parse(event.as_bytes()).unwrap();
    let batch = DecodedBatch::from_event(&event);
    let outcomes = pipeline.transform(&batch, &mut Caches::default(), 0);
    batch.records().iter().zip(&outcomes).map(|(r, o)| serde_json::to_value(explain(r, o)).unwrap()).collect()
}

fn ddl(config: Config, events: &[String], flavor: DdlFlavor, options: &Options) -> Result<String, String> {
    let pipeline = Pipeline::new(Arc::new(config), Some(KEY)).unwrap();
    let events: Vec<MskEvent<'_>> = events.iter().map(|e| MskEvent::parse(e.as_bytes()).unwrap()).collect();
    script(&pipeline, &events, flavor, options).map(|(sql, _)| sql)
}

/// One create of `row` in `patients()`, as an MSK event.
fn patient_created(row: Value) -> String {
    msk_event_text(&[patients().record(0, 0, "c", None, Some(row), &source(1), true)])
}

fn patients() -> Table {
    Table::new("sqlsrv.clinic.dbo.patients", vec![column("ssn", "string"), column("name", "string")], &["ssn"])
}

/// (1) `drop` on a column the Kafka key carries (no configured `key`): `key_columns` takes the
/// key from the Kafka key (steps.rs:274-279) and `from_kafka_key` pushes the dropped column
/// back into the row, raw; `cdc ddl` creates it `NOT NULL`, so nothing stops the load. The
/// README: "`drop`: source columns never loaded"; the comment there claims the config refuses
/// it, which it does only for a configured `key`.
#[tokio::test]
async fn a_dropped_column_the_kafka_key_carries_is_never_loaded() {
    let text = "[[tables]]\ntopic = \"*.patients\"\ntarget = \"public.patients\"\n\
                [tables.change_schema]\ndrop = [\"ssn\"]\n";
    let config = || Config::parse(text, "drop.toml").unwrap();
    let event = patient_created(json!({"ssn": SSN, "name": "Ana"}));
    let sql = ddl(config(), std::slice::from_ref(&event), DdlFlavor::Postgres, &Options::default()).unwrap();
    let h = Harness::new("").await;
    h.sql().await.batch_execute(&sql).await.unwrap();
    let p = ingest(&h.ingestor(config(), KEY), &event).await;
    let stored = h.text_rows("SELECT to_jsonb(p)::text FROM public.patients p").await;
    assert!(
        !format!("{stored:?}").contains(SSN),
        "loaded {} row(s); the dropped SSN is in the target: {stored:?}\n{sql}",
        p.loaded
    );
}

/// (2) `key` naming a column by its source name after a `rename` (README: `key` names columns
/// "as they come out"): accepted; `from_kafka_key` finds no rename onto `ssn`, reads the Kafka
/// key's `ssn` and adds it to the row under that name, unmasked, next to the masked
/// `patient_ssn`; `cdc ddl` creates the `ssn` column too. parse.rs:214 checks `key` against
/// `drop` only.
#[test]
fn a_key_named_by_its_renamed_source_is_refused() {
    let text = "[[tables]]\ntopic = \"*.patients\"\ntarget = \"public.patients\"\nkey = [\"ssn\"]\n\
                [tables.change_schema]\nrename = { ssn = \"patient_ssn\" }\n\
                [tables.columns.patient_ssn]\nmask = \"hmac\"\n";
    match Config::parse(text, "rename.toml") {
        Err(e) => assert_eq!(e.key, "tables[0].key", "{e}"),
        Ok(config) => {
            let event = patient_created(json!({"ssn": SSN, "name": "Ana"}));
            let line = &explained(config, &event)[0];
            assert!(!line.to_string().contains(SSN), "the raw SSN is written: {line}");
        }
    }
}

/// (2b) The same check compares target names (`key`) with source names (`drop`): a key on a
/// column renamed onto a dropped source's name is refused although the row has it.
#[test]
fn a_key_on_a_column_renamed_onto_a_dropped_name_is_accepted() {
    let text = "[[tables]]\ntopic = \"t\"\ntarget = \"a.b\"\nkey = [\"id\"]\n\
                [tables.change_schema]\nrename = { new_id = \"id\" }\ndrop = [\"id\"]\n";
    Config::parse(text, "k.toml").expect("target column `id` comes from `new_id`: nothing keyed is dropped");
}

/// (3) Casts that lose data (README: "never rounded, cut or nulled"; text → float is not even in
/// its list): text to a float goes through `f64::from_str` (cast.rs:107), which rounds past
/// 2^53, overflows to Infinity and underflows to 0; text to a timestamp floors digits past the
/// microsecond and rolls a leap second into the next day (cast.rs:145, `parse_timestamp`).
#[test]
fn text_casts_that_would_round_overflow_or_cut_are_refused() {
    let ty = |name: &str| ColumnType::from_hint(name, None).unwrap();
    let text = |s: &str| V::Text(s.to_string().into());
    for (value, to) in [
        ("9007199254740993", "float64"),
        ("1e400", "float64"),
        ("1e-400", "float64"),
        ("2024-01-01T00:00:00.1234567", "timestamp"),
        ("2024-01-01T23:59:60", "timestamp"),
    ] {
        let got = cast(text(value), &ty(to));
        assert!(got.is_none(), "{value} as {to}: {got:?}");
    }
}

/// (4) Schemaless messages (`schemas.enable=false`): `cdc ddl` types a cast column from the
/// `type` hint or the normalized sample, not from the cast (redshift/ddl.rs:203-212; the same
/// in the loader's `add_columns` for `drift = "add"`, loader.rs:567): `zip` cast to int32 but
/// hinted `string` becomes VARCHAR, `visits` cast to `decimal(2)` becomes DECIMAL(38, 0), and
/// the next `3.5` is rejected (`decimal_scale`).
#[test]
fn cdc_ddl_types_schemaless_columns_by_their_cast() {
    let config = Config::parse(
        "[[tables]]\ntopic = \"*.patients\"\ntarget = \"public.patients\"\nkey = [\"id\"]\n\
         [tables.change_schema]\ncast = { zip = \"int32\", visits = \"decimal(2)\" }\n\
         [tables.columns.id]\ntype = \"int32\"\n[tables.columns.zip]\ntype = \"string\"\n",
        "schemaless.toml",
    )
    .unwrap();
    let t = Table::new(
        "sqlsrv.clinic.dbo.patients",
        vec![column("id", "int32"), column("zip", "string"), column("visits", "string")],
        &["id"],
    );
    let event = msk_event_text(&[t.record(
        0,
        0,
        "c",
        None,
        Some(json!({"id": 1, "zip": "02139", "visits": "3"})),
        &source(1),
        false,
    )]);
    let sql = ddl(config, &[event], DdlFlavor::Redshift, &Options::default()).unwrap();
    assert!(sql.contains("\"zip\" INTEGER"), "{sql}");
    assert!(sql.contains("\"visits\" DECIMAL(38, 2)"), "{sql}");
}

/// (5) Two `[[tables]]` with one target (several sources into one table, where renames are
/// most needed): `tables_for_events` builds the table with the first config, and
/// `create_table` maps every change's schema with that config's `change_schema`
/// (redshift/ddl.rs:151) instead of the change's own: the second source's dropped `ssn` and
/// its source name `fname` become columns.
#[test]
fn cdc_ddl_maps_each_source_with_its_own_change_schema() {
    let config = Config::parse(
        "[[tables]]\ntopic = \"east.*\"\ntarget = \"public.patients\"\nkey = [\"id\"]\n\
         [[tables]]\ntopic = \"west.*\"\ntarget = \"public.patients\"\nkey = [\"id\"]\n\
         [tables.change_schema]\nrename = { fname = \"first_name\" }\ndrop = [\"ssn\"]\n",
        "two.toml",
    )
    .unwrap();
    let east = Table::new("east.db.dbo.patients", vec![column("id", "int32"), column("first_name", "string")], &["id"]);
    let west = Table::new(
        "west.db.dbo.patients",
        vec![column("id", "int32"), column("fname", "string"), column("ssn", "string")],
        &["id"],
    );
    let event = msk_event_text(&[
        east.record(0, 0, "c", None, Some(json!({"id": 1, "first_name": "Ana"})), &source(1), true),
        west.record(0, 0, "c", None, Some(json!({"id": 2, "fname": "Bo", "ssn": "123456789"})), &source(2), true),
    ]);
    let sql = ddl(config, &[event], DdlFlavor::Redshift, &Options::default()).unwrap();
    assert!(!sql.contains("\"ssn\"") && !sql.contains("\"fname\""), "{sql}");
}

/// (6) `--views` for a column masked to its `year` that holds date text (README: `year` takes
/// "dates and timestamps (or date text)"): the age-band view applies EXTRACT to a VARCHAR
/// (redshift/ddl.rs:332), so the printed script stops there (PostgreSQL; a late-binding view
/// on Redshift fails when queried instead).
#[tokio::test]
async fn a_year_masked_text_column_gets_no_age_band_view() {
    let config = Config::parse(
        "[[tables]]\ntopic = \"*.patients\"\ntarget = \"public.patients\"\nkey = [\"id\"]\n\
         [tables.columns.dob]\nmask = \"year\"\n",
        "dob.toml",
    )
    .unwrap();
    let t = Table::new("sqlsrv.clinic.dbo.patients", vec![column("id", "int32"), column("dob", "string")], &["id"]);
    let event =
        msk_event_text(&[t.record(0, 0, "c", None, Some(json!({"id": 1, "dob": "1980-05-06"})), &source(1), true)]);
    let sql = ddl(config, &[event], DdlFlavor::Postgres, &Options { views: true, grants: None }).unwrap();
    let h = Harness::new("").await;
    h.sql().await.batch_execute(&sql).await.unwrap_or_else(|e| panic!("{e:?}\n{sql}"));
}

/// (7) The quality view's `deleted_rows` and `nulls_<column>` are SUMs: NULL, not 0, on a table
/// with no rows (redshift/ddl.rs:343) — the state right after the walkthrough applies the DDL.
#[tokio::test]
async fn the_quality_view_counts_zero_on_an_empty_table() {
    let config = Config::parse(
        "[[tables]]\ntopic = \"*.patients\"\ntarget = \"public.patients\"\nkey = [\"ssn\"]\n\
         [tables.columns.name]\nrequired = true\n",
        "q.toml",
    )
    .unwrap();
    let event = patient_created(json!({"ssn": "1", "name": "Ana"}));
    let sql = ddl(config, &[event], DdlFlavor::Postgres, &Options { views: true, grants: None }).unwrap();
    let h = Harness::new("").await;
    h.sql().await.batch_execute(&sql).await.unwrap();
    let rows =
        h.text_rows("SELECT \"rows\"::text, deleted_rows::text, nulls_name::text FROM public.patients_quality").await;
    assert_eq!(rows, vec![vec![Some("0".to_string()), Some("0".to_string()), Some("0".to_string())]]);
}

/// (8) README ("`cdc ddl`"): "A config column no sample record has is an error (exit 2)". Only
/// masked columns are checked (`configured_columns_missing`, now `sample_report`, looked for `unknown_column`, which
/// only masks raise): a misspelt rules-only column is printed as a column of its own, with a
/// `_by_` view, and — since the DDL made it — the cold-start DescribeTable check passes too.
#[test]
fn a_misspelt_rules_only_column_is_an_error() {
    let config = Config::parse(
        "[[tables]]\ntopic = \"*.patients\"\ntarget = \"public.patients\"\n\
         [tables.columns.nmae]\none_of = [\"Ana\"]\n",
        "typo.toml",
    )
    .unwrap();
    let event = patient_created(json!({"ssn": "1", "name": "Ana"}));
    let out = ddl(config, &[event], DdlFlavor::Redshift, &Options { views: true, grants: None });
    assert!(out.is_err(), "{out:?}");
}

/// (9) A rename onto a metadata column's name is accepted (parse.rs:309 checks length and NUL
/// only): `cdc ddl` prints `_cdc_op` twice in one CREATE TABLE, and the loader would name it
/// twice in its column lists.
#[test]
fn a_rename_onto_a_metadata_column_is_refused() {
    let text = "[[tables]]\ntopic = \"*.patients\"\ntarget = \"public.patients\"\nkey = [\"ssn\"]\n\
                [tables.change_schema]\nrename = { name = \"_cdc_op\" }\n";
    let err = Config::parse(text, "meta.toml").expect_err("a rename onto a metadata column is refused");
    assert_eq!(err.key, "tables[0].change_schema.rename.name", "{err}");
    let config = Config::parse(&text.replace("_cdc_op", "cdc_op"), "meta.toml").unwrap();
    let event = patient_created(json!({"ssn": "1", "name": "Ana"}));
    let sql = ddl(config, &[event], DdlFlavor::Redshift, &Options::default()).unwrap();
    assert_eq!(sql.matches("\"_cdc_op\" ").count(), 1, "{sql}");
}

/// (10) Config errors in `[tables.change_schema]` name the line of the table header, not of
/// the key (parse.rs:210 locates every sub-key at the table's span). README: "the line and the
/// full key path".
#[test]
fn change_schema_errors_name_the_line_of_the_key() {
    let text = "[[tables]]\ntopic = \"t\"\ntarget = \"a.b\"\n\n[tables.change_schema]\n\
                rename = { zip = \"postal\" }\ndrop = [\"x\"]\n\ncast = { postal = \"bytes\" }\n";
    let err = Config::parse(text, "t.toml").unwrap_err();
    assert_eq!((err.key.as_str(), err.line), ("tables[0].change_schema.cast.postal", Some(9)), "{err}");
}

/// (11) A cast keeps the source field's `__debezium.source.column.length` (cast.rs:156,
/// `..field.clone()`), which typed the source type, not the cast's text: BIT(1) (length 1)
/// cast to `string` becomes VARCHAR(4), and `false` (5 bytes) is rejected (`varchar_length`).
#[test]
fn a_boolean_cast_to_string_is_not_typed_by_the_source_length() {
    let config = Config::parse(
        "[[tables]]\ntopic = \"*.patients\"\ntarget = \"public.patients\"\nkey = [\"id\"]\n\
         [tables.change_schema]\ncast = { active = \"string\" }\n",
        "bit.toml",
    )
    .unwrap();
    let active = Column {
        name: "active".into(),
        schema: json!({"type": "boolean", "optional": true, "parameters": {"__debezium.source.column.length": "1"}}),
    };
    let t = Table::new("sqlsrv.clinic.dbo.patients", vec![column("id", "int32"), active], &["id"]);
    let event = msk_event_text(&[t.record(0, 0, "c", None, Some(json!({"id": 1, "active": false})), &source(1), true)]);
    let sql = ddl(config, &[event], DdlFlavor::Redshift, &Options::default()).unwrap();
    assert!(!sql.contains("\"active\" VARCHAR(4)"), "{sql}");
}
