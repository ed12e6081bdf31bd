//! The contract against a real Amazon Redshift (`make contract`, tests/contract/README.md): the
//! claims the local emulator takes for granted, run through the project's own code (the
//! Loader, the Data API client the Lambdas build, `cdc ddl`'s Redshift DDL, the literal
//! writers, `DbErrorClass::classify`) and recorded in `tests/contract/observed.json`.
//!
//! Not part of `cargo test --workspace` (`test = false`). Unconfigured, every test fails with
//! the list of missing `CONTRACT_*` variables. Each test works in its own fresh
//! `cdc_contract_<random>` schema (or `CONTRACT_SCHEMA`) and drops what it made, pass or fail.

use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_config::BehaviorVersion;
use aws_sdk_redshiftdata::error::DisplayErrorContext;
use aws_sdk_redshiftdata::types::{Field, StatusString};
use cdc_pipeline::config::TableName;
use cdc_pipeline::plan::plan;
use cdc_pipeline::redshift::ddl::{self, METADATA_COLUMNS_DDL};
use cdc_pipeline::redshift::sql::{push_ident, push_literal, qualified};
use cdc_pipeline::redshift::types::DdlFlavor;
use cdc_pipeline::redshift::{Auth, DataApi, DataApiError, DbErrorClass, Loader, Warehouse, WarehouseSession};
use cdc_pipeline::synth::{RecordSpec, msk_event_text};
use cdc_pipeline::value::Value;
use cdc_pipeline::{Caches, Config, DecodedBatch, MskEvent, Outcome, Pipeline};
use cdc_tests::contract::{ContractSettings, from_env};
use cdc_tests::debezium::{Source, Table, column, decimal, logical};
use cdc_tests::harness::some;
use serde_json::{Map, Value as Json, json};
use tokio::time::Instant;

/// Apply the target's database and auth to a Data API request builder.
macro_rules! on_target {
    ($builder:expr, $settings:expr) => {{
        let target = &$settings.target;
        let builder = $builder.database(&target.database);
        match &target.auth {
            Auth::Workgroup { name, secret_arn } => builder.workgroup_name(name).set_secret_arn(secret_arn.clone()),
            Auth::Cluster { id, db_user, secret_arn } => {
                builder.cluster_identifier(id).set_db_user(db_user.clone()).set_secret_arn(secret_arn.clone())
            }
        }
    }};
}

/// A failed statement as `DescribeStatement` reports it.
#[derive(Debug)]
struct Failed {
    /// The failing sub-statement's `Error`, else the statement's (or the API error).
    text: String,
    /// The statement's own `Error` field.
    top: Option<String>,
    /// 0-based index of the failing sub-statement.
    sub_statement: Option<usize>,
}

/// One test's connection to the cluster, its schema and what it observed.
struct Ctx {
    client: aws_sdk_redshiftdata::Client,
    settings: ContractSettings,
    schema: String,
    version: Mutex<String>,
    /// Tables made in a schema the suite did not create (dropped one by one).
    made: Mutex<Vec<String>>,
    notes: Mutex<Map<String, Json>>,
    /// tests/contract/observed.json; under the target directory when the Data API endpoint is
    /// not AWS's (the local emulator), so that file only ever holds what Redshift did.
    observed: PathBuf,
}

const DEADLINE: Duration = Duration::from_secs(300);

impl Ctx {
    async fn start() -> Arc<Ctx> {
        let settings = from_env(|name| std::env::var(name).ok()).unwrap_or_else(|message| panic!("{message}"));
        let sdk = aws_config::defaults(BehaviorVersion::latest()).load().await;
        assert!(sdk.region().is_some(), "no AWS region: set AWS_REGION (or AWS_PROFILE with a region)");
        let custom = sdk.endpoint_url().is_some() || std::env::var_os("AWS_ENDPOINT_URL_REDSHIFT_DATA").is_some();
        let observed = match custom {
            true => PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("contract-observed.json"),
            false => cdc_tests::repo_root().join("tests/contract/observed.json"),
        };
        let schema = settings
            .schema
            .clone()
            .unwrap_or_else(|| format!("cdc_contract_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]));
        let ctx = Arc::new(Ctx {
            client: cdc_pipeline::redshift::client::sdk_client(aws_sdk_redshiftdata::config::Builder::from(&sdk)),
            settings,
            schema,
            version: Mutex::new(String::new()),
            made: Mutex::new(Vec::new()),
            notes: Mutex::new(Map::new()),
            observed,
        });
        let version = ctx.query(&["SELECT version()".into()]).await;
        *ctx.version.lock().unwrap() = version[0][0].clone().unwrap_or_default();
        if ctx.settings.schema.is_none() {
            ctx.ok(&[format!("CREATE SCHEMA {}", ident(&ctx.schema))]).await;
        }
        ctx
    }

    fn data_api(&self) -> DataApi {
        DataApi::new(self.client.clone(), self.settings.target.clone())
    }

    /// A loader; with staging when `CONTRACT_STAGING_BUCKET` and `CONTRACT_COPY_ROLE_ARN` are
    /// set (without them a `load = "copy"` table fails its load: `NoStagingLocation`).
    async fn loader(&self) -> Loader {
        let api = self.data_api();
        match &self.settings.staging {
            Some((bucket, role)) => {
                let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
                let s3 = aws_sdk_s3::Client::new(&sdk);
                let mut staging = cdc_tests::stack::staging_at(s3, bucket, "staging");
                staging.iam_role = role.clone();
                Loader::new(api.with_staging(staging))
            }
            None => Loader::new(api),
        }
    }

    /// `"<schema>"."<name>"`, dropped at the end.
    fn table(&self, name: &str) -> (TableName, String) {
        let table = TableName { schema: self.schema.clone(), table: name.into() };
        let q = qualified(&table);
        self.made.lock().unwrap().push(q.clone());
        (table, q)
    }

    /// The schema's delete ledger, created (and dropped at the end) unless it exists.
    async fn ensure_ledger(&self) {
        let ledger =
            TableName { schema: self.schema.clone(), table: cdc_pipeline::redshift::sql::DELETE_LEDGER.into() };
        let found = self.data_api().session().describe_table(&ledger, Instant::now() + DEADLINE).await;
        if !found.expect("DescribeTable of the ledger").exists() {
            self.table(&ledger.table);
            self.ok(&[ddl::create_delete_ledger(&self.schema, DdlFlavor::Redshift)]).await;
        }
    }

    /// Run `sqls` as one `BatchExecuteStatement` (long-polling) to its end; the statement id.
    async fn exec(&self, sqls: &[String]) -> Result<String, Failed> {
        let api = |op: &str, e: String| Failed { text: format!("Data API {op}: {e}"), top: None, sub_statement: None };
        let sent = on_target!(self.client.batch_execute_statement(), self.settings)
            .set_sqls(Some(sqls.to_vec()))
            .wait_time_seconds(10)
            .send()
            .await
            .map_err(|e| api("BatchExecuteStatement", DisplayErrorContext(e).to_string()))?;
        let id = sent.id().unwrap_or_default().to_string();
        let deadline = Instant::now() + DEADLINE;
        loop {
            let described = self.client.describe_statement().id(&id).wait_time_seconds(10).send().await;
            let d = described.map_err(|e| api("DescribeStatement", DisplayErrorContext(e).to_string()))?;
            match d.status() {
                Some(StatusString::Finished) => return Ok(id),
                Some(StatusString::Failed | StatusString::Aborted) => {
                    let sub = d.sub_statements().iter().enumerate().find_map(|(i, s)| s.error().map(|e| (i, e)));
                    let text = sub.map(|(_, e)| e).or(d.error()).unwrap_or("ABORTED").to_string();
                    return Err(Failed {
                        text,
                        top: d.error().map(str::to_string),
                        sub_statement: sub.map(|(i, _)| i),
                    });
                }
                _ if Instant::now() > deadline => panic!("statement {id} still running after {DEADLINE:?}"),
                _ => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }

    async fn ok(&self, sqls: &[String]) -> String {
        self.exec(sqls).await.unwrap_or_else(|f| panic!("{}: {}", sqls.join("; "), f.text))
    }

    /// The rows of the last statement of `sqls`, every field as text.
    async fn query(&self, sqls: &[String]) -> Vec<Vec<Option<String>>> {
        let id = self.ok(sqls).await;
        self.rows(&id, sqls.len()).await
    }

    /// The rows of sub-statement `n` (from 1) of statement `id`.
    async fn rows(&self, id: &str, n: usize) -> Vec<Vec<Option<String>>> {
        let result = self.client.get_statement_result().id(format!("{id}:{n}")).send().await;
        let result = result.unwrap_or_else(|e| panic!("GetStatementResult: {}", DisplayErrorContext(e)));
        let text = |field: &Field| match field {
            Field::IsNull(true) => None,
            Field::StringValue(s) => Some(s.clone()),
            Field::LongValue(n) => Some(n.to_string()),
            Field::DoubleValue(x) => Some(format!("{x:e}")),
            Field::BooleanValue(b) => Some(b.to_string()),
            other => Some(format!("{other:?}")),
        };
        result.records().iter().map(|r| r.iter().map(text).collect()).collect()
    }

    /// Note `value` under `section` ("sent" or "observed") of this test's record.
    fn note(&self, section: &str, key: &str, value: Json) {
        let mut notes = self.notes.lock().unwrap();
        let entry = notes.entry(section).or_insert_with(|| json!({}));
        entry.as_object_mut().expect("a section is an object").insert(key.into(), value);
    }

    /// Drop what this test made: its schema, or its tables in `CONTRACT_SCHEMA`.
    async fn cleanup(&self) -> Result<(), String> {
        let drops: Vec<String> = match self.settings.schema {
            None => vec![format!("DROP SCHEMA {} CASCADE", ident(&self.schema))],
            Some(_) => self.made.lock().unwrap().iter().rev().map(|t| format!("DROP TABLE IF EXISTS {t}")).collect(),
        };
        match drops.is_empty() {
            true => Ok(()),
            false => self.exec(&drops).await.map(drop).map_err(|f| format!("{}: {}", drops.join("; "), f.text)),
        }
    }

    /// Merge this test's record into tests/contract/observed.json (schema name redacted).
    fn record(&self, name: &str, failure: Option<&str>) {
        let path = &self.observed;
        let mut all: Map<String, Json> =
            std::fs::read_to_string(path).ok().and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default();
        let secs = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let at = chrono::DateTime::from_timestamp(i64::try_from(secs).unwrap_or(0), 0).map(|t| t.to_rfc3339());
        let kind = match self.settings.target.auth {
            Auth::Workgroup { .. } => "serverless",
            Auth::Cluster { .. } => "provisioned",
        };
        let mut entry = json!({"at": at, "passed": failure.is_none(), "failure": failure, "target": kind,
                               "redshift_version": *self.version.lock().unwrap()});
        entry.as_object_mut().unwrap().extend(std::mem::take(&mut *self.notes.lock().unwrap()));
        let redacted = entry.to_string().replace(&self.schema, "<schema>");
        all.insert(name.into(), serde_json::from_str(&redacted).expect("still JSON"));
        let text = serde_json::to_string_pretty(&all).expect("JSON") + "\n";
        std::fs::write(path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        eprintln!("contract: {name} recorded in {}", path.display());
    }
}

fn ident(name: &str) -> String {
    let mut out = String::new();
    push_ident(&mut out, name);
    out
}

/// Run one contract test: start (or fail naming the missing configuration), run `body`, drop
/// what it made whatever happened, record the observation, then pass or fail.
async fn run<F, Fut>(name: &'static str, body: F)
where
    F: FnOnce(Arc<Ctx>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let ctx = Ctx::start().await;
    let outcome = tokio::spawn(body(ctx.clone())).await;
    let cleanup = ctx.cleanup().await;
    let panic = outcome.err().map(|e| e.try_into_panic().unwrap_or_else(|e| Box::new(e.to_string()) as Box<_>));
    let failure = panic.as_ref().map(|p| {
        p.downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default()
    });
    let failure = failure.or_else(|| cleanup.clone().err().map(|e| format!("cleanup failed: {e}")));
    ctx.record(name, failure.as_deref());
    if let Some(panic) = panic {
        std::panic::resume_unwind(panic);
    }
    if let Err(e) = cleanup {
        panic!("cleanup failed: {e}; drop `{}` by hand", ctx.schema);
    }
}

/// `id int32, status string, amount DECIMAL(19,2)` from PostgreSQL.
fn items() -> Table {
    let columns = vec![column("id", "int32"), column("status", "string"), decimal("amount", 2, Some(19))];
    Table::new("pg.shop.public.items", columns, &["id"])
}

/// A change of `id` at LSN `lsn`: a create, an update, or a delete (`op` "d", the row as `before`).
fn change(partition: i64, offset: i64, op: &str, id: i64, status: &str, lsn: i64) -> RecordSpec {
    let row = json!({"id": id, "status": status, "amount": "MDk="}); // 123.45
    let (before, after) = if op == "d" { (Some(row), None) } else { (None, Some(row)) };
    let source =
        Source::Postgres { lsn, sequence: Some((Some(lsn - 1), Some(lsn))), tx_id: 1, ts_ms: 1_718_000_000_000 };
    items().record(partition, offset, op, before, after, &source, true)
}

fn pipeline(target: &TableName, lock: bool) -> Pipeline {
    let text = format!(
        "[[tables]]\ntopic = \"{}\"\ntarget = \"{}.{}\"\nkey = [\"id\"]\nlock = {lock}\n",
        items().topic,
        target.schema,
        target.table
    );
    Pipeline::new(Arc::new(Config::parse(&text, "contract.toml").expect("config")), None).expect("pipeline")
}

/// Create `target` with `cdc ddl`'s Redshift DDL typed from `records`; the DDL sent.
async fn create_with_cdc_ddl(ctx: &Ctx, target: &TableName, records: &[RecordSpec]) -> Json {
    ctx.ensure_ledger().await;
    let text = msk_event_text(records);
    let event = MskEvent::parse(text.as_bytes()).expect("event");
    let sqls: Vec<String> = cdc_cli::ddl::for_events(&pipeline(target, true), &[event], DdlFlavor::Redshift)
        .into_iter()
        .map(|d| d.sql)
        .collect();
    ctx.ok(&sqls).await;
    json!(sqls)
}

/// Load `records` through `loader` as the ingest function does; what the report says.
async fn load(loader: &Loader, pipeline: &Pipeline, records: &[RecordSpec]) -> Json {
    let text = msk_event_text(records);
    let event = MskEvent::parse(text.as_bytes()).expect("event");
    let batch = DecodedBatch::from_event(&event);
    let now = cdc_pipeline::temporal::now_micros();
    let outcomes = pipeline.transform(&batch, &mut Caches::default(), now);
    let refused: Vec<String> = outcomes
        .iter()
        .filter_map(|o| if let Outcome::Reject(r) = o { Some(format!("{:?}", r.reasons)) } else { None })
        .collect();
    assert!(refused.is_empty(), "the transform refused: {refused:?}");
    let plans = plan(&outcomes);
    let report = loader.load(&plans, Instant::now() + DEADLINE, now).await.unwrap_or_else(|e| panic!("load: {e}"));
    let rejects: Vec<String> = report.rejects.iter().flat_map(|r| r.reasons.iter().map(|x| x.to_string())).collect();
    json!({"loaded": report.rows_loaded, "stale": report.rows_stale, "rejects": rejects, "retries": report.retries,
           "transactions": report.transactions, "data_api_calls": report.data_api_calls,
           "elapsed_ms": report.elapsed.as_millis() as u64})
}

#[tokio::test]
async fn apply_sql_end_to_end() {
    run("apply_sql_end_to_end", |ctx| async move {
        let (target, q) = ctx.table("contract_items");
        let first: Vec<RecordSpec> = (1..=3).map(|id| change(0, id, "c", id, "A", 10 + id)).collect();
        ctx.note("sent", "ddl", create_with_cdc_ddl(&ctx, &target, &first).await);
        let second = [change(0, 4, "u", 1, "B", 20), change(0, 5, "d", 2, "A", 21)];
        ctx.note("sent", "batches", json!(["3 creates (ids 1-3)", "update of 1, soft delete of 2", "the first again"]));
        let (loader, pipeline) = (ctx.loader().await, pipeline(&target, true));
        let read = format!(
            "SELECT id, status, amount, _cdc_deleted, _cdc_op, _cdc_position, _cdc_loaded_at FROM {q} ORDER BY id"
        );
        let reports = [load(&loader, &pipeline, &first).await, load(&loader, &pipeline, &second).await];
        let after = ctx.query(std::slice::from_ref(&read)).await;
        let redelivered = load(&loader, &pipeline, &first).await;
        let again = ctx.query(&[read]).await;
        ctx.note("observed", "reports", json!([reports[0], reports[1], redelivered]));
        ctx.note("observed", "rows", json!(after));
        let counts = |r: &Json| (r["loaded"].clone(), r["stale"].clone(), r["rejects"].clone());
        assert_eq!(counts(&reports[0]), (json!(3), json!(0), json!([])), "three new rows");
        assert_eq!(counts(&reports[1]), (json!(2), json!(0), json!([])), "an update and a soft delete");
        assert_eq!(counts(&redelivered), (json!(0), json!(3), json!([])), "a redelivery is stale");
        let short: Vec<_> = after.iter().map(|r| r[..5].to_vec()).collect();
        let expected = [
            some(&["1", "B", "123.45", "false", "u"]),
            some(&["2", "A", "123.45", "true", "d"]),
            some(&["3", "A", "123.45", "false", "c"]),
        ];
        assert_eq!(short, expected, "update in place, soft delete keeps the row");
        assert_eq!(again, after, "the redelivery changed nothing, not even _cdc_loaded_at");
    })
    .await;
}

#[tokio::test]
async fn concurrent_writers_of_new_keys() {
    run("concurrent_writers_of_new_keys", |ctx| async move {
        for sql in [
            "SELECT isolation_level FROM stv_db_isolation_level WHERE db_name = current_database()",
            "SELECT concurrency_model FROM pg_database_info WHERE datname = current_database()",
        ] {
            let seen = match ctx.exec(&[sql.into()]).await {
                Ok(id) => json!(ctx.rows(&id, 1).await),
                Err(f) => json!({"error": f.text}),
            };
            ctx.note("observed", sql, seen);
        }
        ctx.note("sent", "rounds", json!("3 rounds: 20 new keys loaded at once by two Loaders (partitions 0 and 1)"));
        let mut wrong = Vec::new();
        for lock in [true, false] {
            let (target, q) = ctx.table(if lock { "contract_locked" } else { "contract_unlocked" });
            create_with_cdc_ddl(&ctx, &target, &[change(0, 0, "c", 1, "P0", 1)]).await;
            let pipeline = pipeline(&target, lock);
            let mut reports = Vec::new();
            for round in 0..3 {
                let ids = round * 20 + 1..=round * 20 + 20;
                let left: Vec<_> = ids.clone().map(|id| change(0, id, "c", id, "P0", 1_000 + id)).collect();
                let right: Vec<_> = ids.map(|id| change(1, id, "c", id, "P1", 5_000 + id)).collect();
                let (a, b) = (ctx.loader().await, ctx.loader().await);
                let (x, y) = tokio::join!(load(&a, &pipeline, &left), load(&b, &pipeline, &right));
                reports.extend([x, y]);
            }
            let odd = ctx
                .query(&[format!(
                    "SELECT id, COUNT(*), MAX(status) FROM {q} GROUP BY id HAVING COUNT(*) <> 1 OR MAX(status) <> 'P1' ORDER BY id"
                )])
                .await;
            let total = ctx.query(&[format!("SELECT COUNT(*), COUNT(DISTINCT id) FROM {q}")]).await;
            ctx.note("observed", &format!("lock_{lock}"), json!({"reports": reports, "keys_not_one_latest_row": odd,
                                                                  "rows_and_keys": total}));
            if lock && (!odd.is_empty() || total != [some(&["60", "60"])]) {
                wrong.push(format!("lock = true: keys without exactly one latest row: {odd:?}, {total:?}"));
            }
        }
        assert!(wrong.is_empty(), "{wrong:?}");
    })
    .await;
}

#[tokio::test]
async fn error_texts() {
    run("error_texts", |ctx| async move {
        let (_, q) = ctx.table("contract_errors");
        ctx.ok(&[format!("CREATE TABLE {q} (v VARCHAR(4), c CHAR(4), d DECIMAL(19,0), n INTEGER NOT NULL)")]).await;
        let cases = [
            ("varchar_4_overflow", format!("INSERT INTO {q} (v, n) VALUES ('abcde', 1)"), DbErrorClass::ValueTooLong),
            ("multibyte_into_char_4", format!("INSERT INTO {q} (c, n) VALUES ('é', 1)"), DbErrorClass::InvalidValue),
            (
                "19_nines_into_decimal_19_0",
                format!("INSERT INTO {q} (d, n) VALUES (9999999999999999999, 1)"),
                DbErrorClass::OutOfRange,
            ),
            ("null_into_not_null", format!("INSERT INTO {q} (n) VALUES (NULL)"), DbErrorClass::NotNull),
            ("syntax_error", "SELEC 1".into(), DbErrorClass::Syntax),
            (
                "missing_relation",
                format!("SELECT * FROM {}.\"contract_missing\"", ident(&ctx.schema)),
                DbErrorClass::UndefinedObject,
            ),
        ];
        let api = ctx.data_api();
        let mut wrong = Vec::new();
        for (name, sql, expected) in cases {
            // Second in its batch, as a failing INSERT is in the apply SQL.
            let batch = ["SELECT 1".to_string(), sql];
            ctx.note("sent", name, json!(batch));
            let Err(failed) = ctx.exec(&batch).await else {
                ctx.note("observed", name, json!({"error": null}));
                wrong.push(format!("{name}: succeeded"));
                continue;
            };
            let class = DbErrorClass::classify(&failed.text);
            // The loader's client reading the same failure.
            let loader = match api.session().run_transaction(&batch, Instant::now() + DEADLINE).await {
                Err(DataApiError::Statement { class, sub_statement, .. }) => (Some(class), sub_statement),
                _ => (None, None),
            };
            ctx.note(
                "observed",
                name,
                json!({"error": failed.text, "statement_error": failed.top,
                "failed_sub_statement": failed.sub_statement, "class": class.as_str(),
                "loader_class": loader.0.map(DbErrorClass::as_str), "loader_sub_statement": loader.1}),
            );
            if class != expected || loader.0 != Some(expected) || failed.text.contains("SQLSTATE") {
                wrong.push(format!("{name}: {class} (loader {:?}), expected {expected}: {}", loader.0, failed.text));
            }
        }
        assert!(wrong.is_empty(), "{wrong:#?}");
    })
    .await;
}

#[tokio::test]
async fn value_semantics() {
    run("value_semantics", |ctx| async move {
        let mut wrong = Vec::new();
        // Through the Loader: DECIMAL(20,2) (cdc ddl's type for a source DECIMAL(19,2)), a
        // double, a JSON document into SUPER.
        ctx.ensure_ledger().await;
        let (target, q) = ctx.table("contract_values");
        let metadata: Vec<String> = METADATA_COLUMNS_DDL.iter().map(|(n, t)| format!("{n} {t}")).collect();
        let create = format!(
            "CREATE TABLE {q} (id INTEGER NOT NULL, amount DECIMAL(20,2), f DOUBLE PRECISION, doc SUPER, {})",
            metadata.join(", ")
        );
        ctx.ok(std::slice::from_ref(&create)).await;
        let columns = vec![
            column("id", "int32"),
            decimal("amount", 2, Some(19)),
            column("f", "float64"),
            logical("doc", "string", "io.debezium.data.Json"),
        ];
        let source = Table::new(&items().topic, columns, &["id"]);
        // 9999999999999999999 unscaled, big-endian two's complement, base64.
        let row = json!({"id": 1, "amount": "AIrHIwSJ5///", "f": 1e300, "doc": "{\"a\":[1,2]}"});
        let pg = Source::Postgres { lsn: 10, sequence: Some((Some(9), Some(10))), tx_id: 1, ts_ms: 1_718_000_000_000 };
        let record = source.record(0, 0, "c", None, Some(row.clone()), &pg, true);
        ctx.note("sent", "table", json!(create));
        ctx.note("sent", "loaded_row", row);
        let report = load(&ctx.loader().await, &pipeline(&target, true), &[record]).await;
        let read = format!("SELECT amount, f, JSON_TYPEOF(doc), JSON_SERIALIZE(doc) FROM {q}");
        let stored = ctx.query(&[read]).await;
        ctx.note("observed", "load", json!({"report": report, "stored": stored}));
        if stored != [some(&["99999999999999999.99", "1e300", "object", "{\"a\":[1,2]}"])] {
            wrong.push(format!("loaded values: {stored:?}"));
        }

        // Literals as the apply SQL writes them, in one batch under another session time zone.
        let (_, raw) = ctx.table("contract_raw");
        let mut utc = String::new();
        push_literal(&mut utc, &Value::Timestamp(1_718_020_800_000_000)); // 2024-06-10 12:00:00 UTC
        let mut doc = String::new();
        push_literal(&mut doc, &Value::Text("{\"a\":1}".into()));
        let batch = [
            format!("CREATE TABLE {raw} (id INTEGER, ts TIMESTAMPTZ, doc SUPER)"),
            "SET timezone TO 'America/New_York'".into(),
            format!("INSERT INTO {raw} VALUES (1, {utc}, NULL), (2, '2024-06-10 12:00:00', NULL)"),
            format!("INSERT INTO {raw} VALUES (3, NULL, JSON_PARSE({doc})), (4, NULL, {doc})"),
        ];
        ctx.ok(&batch).await;
        ctx.note("sent", "literals", json!(batch));
        let read =
            format!("SELECT id, EXTRACT(EPOCH FROM ts)::BIGINT, ts::VARCHAR, JSON_TYPEOF(doc) FROM {raw} ORDER BY id");
        let rows = ctx.query(&["SET timezone TO 'UTC'".into(), read]).await;
        ctx.note("observed", "literals", json!(rows));
        let cell = |i: usize, c: usize| rows.get(i).and_then(|r| r[c].clone()).unwrap_or_default();
        if cell(0, 1) != "1718020800" {
            wrong.push(format!("'… +00' under America/New_York stored {}, not 12:00 UTC", cell(0, 2)));
        }
        if (cell(2, 3).as_str(), cell(3, 3).as_str()) != ("object", "string") {
            wrong.push(format!("JSON_TYPEOF with/without JSON_PARSE: {} / {}", cell(2, 3), cell(3, 3)));
        }

        let blanks = "SELECT CASE WHEN 'AB' = 'AB  ' THEN 1 ELSE 0 END, \
                      CASE WHEN CAST('AB' AS VARCHAR(8)) = CAST('AB  ' AS VARCHAR(8)) THEN 1 ELSE 0 END";
        let equal = ctx.query(&[blanks.into()]).await;
        ctx.note("sent", "trailing_blanks", json!(blanks));
        ctx.note("observed", "trailing_blanks", json!(equal));
        if equal != [some(&["1", "1"])] {
            wrong.push(format!("'AB' = 'AB  ': {equal:?}"));
        }
        assert!(wrong.is_empty(), "{wrong:#?}");
    })
    .await;
}

#[tokio::test]
async fn describe_table_shape() {
    run("describe_table_shape", |ctx| async move {
        let (table, q) = ctx.table("contract_shape");
        let create = format!("CREATE TABLE {q} (v VARCHAR(200), c CHAR(2), d DECIMAL(10,2), t TIMESTAMP NOT NULL)");
        ctx.ok(std::slice::from_ref(&create)).await;
        ctx.note("sent", "table", json!(create));
        let raw = on_target!(ctx.client.describe_table(), ctx.settings).schema(&ctx.schema).table(&table.table);
        let raw = raw.send().await.unwrap_or_else(|e| panic!("DescribeTable: {}", DisplayErrorContext(e)));
        let columns: Vec<Json> = raw
            .column_list()
            .iter()
            .map(|c| {
                json!({"name": c.name(), "typeName": c.type_name(), "length": c.length(), "precision": c.precision(),
                       "scale": c.scale(), "nullable": c.nullable(), "columnDefault": c.column_default(),
                       "isSigned": c.is_signed(), "isCaseSensitive": c.is_case_sensitive()})
            })
            .collect();
        ctx.note("observed", "column_list", json!(columns));
        let described = ctx.data_api().session().describe_table(&table, Instant::now() + DEADLINE).await;
        let described = described.expect("DescribeTable through the loader's client");
        let view: Vec<_> = described.columns.iter().map(|c| (&c.name, c.max_bytes, c.numeric, c.not_null)).collect();
        ctx.note("observed", "loader_view", json!(format!("{view:?}")));
        let get = |n: &str| described.column(n).map(|c| (c.max_bytes, c.numeric, c.not_null));
        assert_eq!(get("v"), Some((Some(200), None, false)), "VARCHAR(200)");
        assert_eq!(get("c"), Some((Some(2), None, false)), "CHAR(2)");
        assert_eq!(get("d"), Some((None, Some((10, 2)), false)), "DECIMAL(10,2)");
        assert_eq!(get("t"), Some((None, None, true)), "TIMESTAMP NOT NULL");
    })
    .await;
}

#[tokio::test]
async fn data_api_calls_per_batch() {
    run("data_api_calls_per_batch", |ctx| async move {
        let (target, _) = ctx.table("contract_calls");
        let batch = |from: i64| (from..from + 3).map(|id| change(0, id, "c", id, "A", 10 + id)).collect::<Vec<_>>();
        create_with_cdc_ddl(&ctx, &target, &batch(1)).await;
        let (loader, pipeline) = (ctx.loader().await, pipeline(&target, true));
        let cold = load(&loader, &pipeline, &batch(1)).await;
        let warm = [load(&loader, &pipeline, &batch(4)).await, load(&loader, &pipeline, &batch(7)).await];
        ctx.note("sent", "batches", json!("3 new rows each: one cold start, then two warm loads"));
        ctx.note("observed", "reports", json!({"cold": cold, "warm": warm}));
        let calls = |r: &Json| r["data_api_calls"].as_u64().unwrap_or(u64::MAX);
        assert!(calls(&cold) <= 5, "cold: two DescribeTable and at most 3 calls: {cold}");
        assert!(warm.iter().all(|w| calls(w) <= 3), "warm: at most 3 calls per batch: {warm:?}");
    })
    .await;
}

#[tokio::test]
async fn case_sensitive_identifiers() {
    run("case_sensitive_identifiers", |ctx| async move {
        let (table, q) = ctx.table("contract_ident");
        let on = "SET enable_case_sensitive_identifier TO true".to_string();
        let sent = [on.clone(), format!("CREATE TABLE {q} (\"Email\" VARCHAR(20), id INTEGER)")];
        ctx.ok(&sent).await;
        ctx.note("sent", "table", json!(sent));
        let mut seen = Map::new();
        for (label, batch) in [
            ("lower_on", vec![on.clone(), format!("SELECT \"email\" FROM {q}")]),
            ("exact_on", vec![on.clone(), format!("SELECT \"Email\" FROM {q}")]),
            ("lower_default", vec![format!("SELECT \"email\" FROM {q}")]),
        ] {
            let result = ctx.exec(&batch).await;
            seen.insert(label.into(), json!(result.as_ref().err().map(|f| &f.text)));
        }
        let described = ctx.data_api().session().describe_table(&table, Instant::now() + DEADLINE).await;
        let names: Vec<String> = described.expect("DescribeTable").columns.iter().map(|c| c.name.clone()).collect();
        seen.insert("described_names".into(), json!(names));
        ctx.note("observed", "results", Json::Object(seen.clone()));
        let lower_on = seen["lower_on"].as_str().unwrap_or_default();
        assert_eq!(DbErrorClass::classify(lower_on), DbErrorClass::UndefinedObject, "\"email\" is not \"Email\"");
        assert!(seen["exact_on"].is_null(), "\"Email\" is found: {}", seen["exact_on"]);
        assert!(names.contains(&"Email".to_string()), "DescribeTable keeps the case: {names:?}");
    })
    .await;
}
