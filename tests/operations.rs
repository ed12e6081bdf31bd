//! The operator's commands of issue 15 against the local stack (PostgreSQL behind the Data API
//! emulator, the S3 server, the real SDK clients; `cdc` run as a process): `cdc check` on a
//! good target and three broken ones, `cdc dlq list`/`show` never printing a value, `cdc
//! replay --all`, and a replay dry run that counts what the real replay then does.

use std::path::PathBuf;

use cdc_pipeline::replay::{ObjectOutcome, ReplayRequest, ReplayResponse};
use cdc_tests::cli::{CdcRun, cdc, cdc_at};
use cdc_tests::harness::{Harness, KEY, config, invocation, relaxed_config};
use cdc_tests::leaks::{find_leaks, sample_sensitive_values};
use cdc_tests::stack::{METADATA_DDL, ensure_delete_ledger};
use cdc_tests::{event_files, repo_root};

fn example_config() -> PathBuf {
    repo_root().join("config/pipeline.toml")
}

fn relaxed_config_file() -> PathBuf {
    repo_root().join("config/replay-relaxed.toml")
}

/// A file in a directory of its own under the temp dir (unique names: tests run at once).
fn temp_file(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cdc-operations-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// The `cdc check` lines of `table` and `check` (`column ssn`, …).
fn check_line<'a>(run: &'a CdcRun, table: &str, check: &str) -> &'a str {
    let prefix = format!("public.{table}  {check}  ");
    run.stdout
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no line {prefix:?} in\n{}", run.stdout))
}

/// A harness with `public.good` (the table [`CHECK_CONFIG`] wants), the delete ledger and
/// the tables `ddl` creates; a connection to its database, and the config file.
async fn check_world(ddl: &str) -> (Harness, tokio_postgres::Client, PathBuf) {
    let h = Harness::new("").await;
    let sql = h.sql().await;
    sql.batch_execute(&format!(
        "CREATE TABLE public.good (id INTEGER NOT NULL, ssn VARCHAR(64), name VARCHAR(100), {METADATA_DDL}); {ddl}"
    ))
    .await
    .unwrap();
    ensure_delete_ledger(&sql, "public").await;
    (h, sql, temp_file("check.toml", CHECK_CONFIG))
}

const CHECK_CONFIG: &str = r#"
[[tables]]
topic = "src.db.good"
target = "public.good"
key = ["id"]
[tables.columns.id]
type = "int32"
[tables.columns.ssn]
mask = "hmac"
[tables.columns.name]
max_bytes = 100

[[tables]]
topic = "src.db.missing"
target = "public.missing"
key = ["id"]

[[tables]]
topic = "src.db.nometa"
target = "public.nometa"
key = ["id"]

[[tables]]
topic = "src.db.badcol"
target = "public.badcol"
key = ["id"]
[tables.columns.ssn]
mask = "hmac"
[tables.columns.name]
max_bytes = 100
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cdc_check_passes_a_good_target_and_names_what_is_wrong_with_three_broken_ones() {
    let without_op = METADATA_DDL.replace("_cdc_op CHAR(1) NOT NULL, ", "");
    assert_ne!(without_op, METADATA_DDL);
    let (h, _, config) = check_world(&format!(
        "CREATE TABLE public.nometa (id INTEGER NOT NULL, {without_op}); \
         CREATE TABLE public.badcol (id INTEGER NOT NULL, ssn VARCHAR(10), {METADATA_DDL})"
    ))
    .await;
    let run = cdc(&h, &config, &["check"]).await;
    assert_eq!(run.code, Some(1), "a check fails: {run:?}");
    for check in [
        "table",
        "metadata columns",
        "column id",
        "column name",
        "column ssn",
        "delete ledger",
        "privileges",
        "copy role",
    ] {
        assert!(check_line(&run, "good", check).contains("  ok  "), "{}", check_line(&run, "good", check));
    }
    assert!(check_line(&run, "good", "column ssn").contains("varchar(64) holds the hmac mask's 64 hex characters"));
    assert!(check_line(&run, "missing", "table").contains("FAIL  does not exist: create it (`cdc ddl`"));
    assert!(!run.stdout.contains("public.missing  metadata"), "nothing else is checked of a table that is not there");
    assert!(check_line(&run, "nometa", "table").contains("  ok  "));
    assert!(check_line(&run, "nometa", "metadata columns").contains("FAIL  lacks _cdc_op: add them"));
    assert!(check_line(&run, "badcol", "column name").contains("FAIL  the target has no column name"));
    assert!(
        check_line(&run, "badcol", "column ssn")
            .contains("FAIL  varchar(10) cannot hold the hmac mask's 64 hex characters (varchar_length)"),
        "{}",
        check_line(&run, "badcol", "column ssn")
    );
    assert_eq!(run.stdout.lines().filter(|l| l.contains("  FAIL  ")).count(), 4, "{}", run.stdout);
    assert!(run.stderr.contains("4 check(s) failed"), "{}", run.stderr);
    // The good table alone holds: exit 0.
    let good = cdc(&h, &config, &["check", "--topic", "src.db.good"]).await;
    assert_eq!(good.code, Some(0), "{good:?}");
    assert!(good.stdout.lines().all(|l| l.starts_with("public.good  ") && l.contains("  ok  ")), "{}", good.stdout);
    // Bad input: exit 2, nothing checked.
    let unrouted = cdc(&h, &config, &["check", "--topic", "src.db.nowhere"]).await;
    assert_eq!((unrouted.code, unrouted.stdout.as_str()), (Some(2), ""), "{unrouted:?}");
    let default = cdc(&h, std::path::Path::new("default"), &["check"]).await;
    assert_eq!(default.code, Some(2), "{default:?}");
    assert!(default.stderr.contains("--topic"), "{}", default.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cdc_check_names_the_privileges_the_identity_lacks() {
    let (h, sql, config) = check_world("").await;
    // The emulator as the harness runs it connects as a superuser: every privilege holds.
    let run = cdc(&h, &config, &["check", "--topic", "src.db.good"]).await;
    assert!(check_line(&run, "good", "privileges").contains("ok  the identity holds all 8 needed"), "{}", run.stdout);
    // A second emulator on the same PostgreSQL connects as a role that may only read.
    let role = format!("checker_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    sql.batch_execute(&format!("CREATE ROLE {role} LOGIN; GRANT SELECT ON public.good, public._cdc_deletes TO {role}"))
        .await
        .unwrap();
    let url = cdc_tests::stack::database_url();
    let (scheme, rest) = url.split_once("://").expect("a URL");
    let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    let config_as_role = redshift_data_local::EmulatorConfig::new(format!("{scheme}://{role}@{host}"))
        .with_s3_endpoint(cdc_tests::harness::s3_endpoint());
    let reader = redshift_data_local::spawn(config_as_role).await.expect("emulator starts");
    let run = cdc_at(&h, &reader.endpoint_url, &config, &["check", "--topic", "src.db.good"]).await;
    assert_eq!(run.code, Some(1), "{run:?}");
    let line = check_line(&run, "good", "privileges");
    assert!(
        line.contains(
            "FAIL  the identity lacks INSERT on \"public\".\"good\", UPDATE on \"public\".\"good\", \
             INSERT on \"public\".\"_cdc_deletes\", DELETE on \"public\".\"_cdc_deletes\": GRANT them"
        ),
        "{line}"
    );
    assert!(check_line(&run, "good", "table").contains("  ok  "), "the role reads the table: {}", run.stdout);

    // `--user`: the functions' user, checked by whoever runs `cdc check` (here the superuser
    // emulator): what it lacks, then — after what `cdc ddl --grants` prints for it — nothing.
    let user = format!("IAMR:check-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let run = cdc(&h, &config, &["check", "--topic", "src.db.good", "--user", &user]).await;
    let line = check_line(&run, "good", "privileges");
    assert!(line.contains(&format!("FAIL  `{user}` does not exist in the database")), "{line}");
    sql.batch_execute(&format!("CREATE ROLE \"{user}\"")).await.unwrap();
    let run = cdc(&h, &config, &["check", "--topic", "src.db.good", "--user", &user]).await;
    assert_eq!(run.code, Some(1), "{run:?}");
    let line = check_line(&run, "good", "privileges");
    assert!(line.contains(&format!("FAIL  `{user}` lacks SELECT on \"public\".\"good\"")), "{line}");
    let table = cdc_pipeline::config::TableName::parse("public.good").unwrap();
    let grants = cdc_pipeline::redshift::ddl::grants(
        &user,
        &[cdc_pipeline::redshift::ddl::Grantee { target: &table, alters: false }],
    );
    sql.batch_execute(&grants.join("\n")).await.unwrap();
    let run = cdc(&h, &config, &["check", "--topic", "src.db.good", "--user", &user]).await;
    assert!(
        check_line(&run, "good", "privileges").contains(&format!("ok  `{user}` holds all 8 needed")),
        "{}",
        run.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dlq_list_and_show_give_coordinates_stages_rules_and_attempts_and_never_a_value() {
    let h = Harness::new("").await;
    h.create_targets(&config(), &event_files()).await;
    h.ingest_all_samples().await;
    // A replay that loads what the relaxed rules let through and dead-letters the rest again:
    // a `load` object (a name too long for VARCHAR(100)) and attempts 2.
    h.ingestor(relaxed_config(), KEY).replay(&ReplayRequest::default(), &invocation()).await.unwrap();
    let config = example_config();
    let mut printed = Vec::new();
    let list = cdc(&h, &config, &["dlq", "list"]).await;
    assert_eq!(list.code, Some(0), "{list:?}");
    assert!(list.stdout.contains("dead-letter/: 4 objects, 5 records"), "{}", list.stdout);
    assert!(list.stdout.contains("  public.patientinfo  load  firstname:varchar_length  1\n"), "{}", list.stdout);
    assert!(list.stdout.contains("  public.patientinfo  decode  json  1\n"), "{}", list.stdout);
    assert!(list.stdout.contains("attempts 2"), "{}", list.stdout);
    printed.push(list.stdout.clone() + &list.stderr);
    let archived = cdc(&h, &config, &["dlq", "list", "--prefix", "archive/"]).await;
    assert!(archived.stdout.contains("archive/: 4 objects, 9 records"), "{}", archived.stdout);
    assert!(archived.stdout.contains("  public.patientinfo  validate  ssn:pattern  2\n"), "{}", archived.stdout);
    printed.push(archived.stdout.clone() + &archived.stderr);
    let later = cdc(&h, &config, &["dlq", "list", "--since", "2999-01-01T00:00:00Z"]).await;
    assert!(later.stdout.contains(": 0 objects, 0 records"), "{}", later.stdout);
    let keys: Vec<String> = h.objects("").await.into_iter().map(|(key, _)| key).collect();
    assert!(keys.len() >= 8, "dead letters and their archive: {keys:?}");
    for key in &keys {
        let show = cdc(&h, &config, &["dlq", "show", key]).await;
        assert_eq!(show.code, Some(0), "{show:?}");
        assert!(show.stdout.contains(" offset ") && show.stdout.contains(" attempts "), "{}", show.stdout);
        printed.push(show.stdout + &show.stderr);
    }
    let validate = keys.iter().find(|k| k.starts_with("archive/dead-letter/validate/")).unwrap();
    let show = cdc(&h, &config, &["dlq", "show", validate]).await;
    assert!(show.stdout.contains("stage validate  reasons ssn:pattern"), "{}", show.stdout);
    let missing = cdc(&h, &config, &["dlq", "show", "dead-letter/no-such-object.jsonl"]).await;
    assert_eq!(missing.code, Some(2), "{missing:?}");
    let bad_since = cdc(&h, &config, &["dlq", "list", "--since", "yesterday"]).await;
    assert_eq!(bad_since.code, Some(2), "{bad_since:?}");
    // Every value the dead-lettered records carry, in any encoding: none is printed.
    let everything = printed.join("\n");
    let sensitive = sample_sensitive_values();
    assert!(sensitive.len() > 20);
    let leaks = find_leaks(&everything, &sensitive);
    assert!(leaks.is_empty(), "values printed by cdc dlq: {leaks:?}");
    // The base64 record itself is not printed either.
    for (_, body) in h.objects("dead-letter/").await {
        for line in body.lines() {
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            if let Some(raw) = value["value"].as_str().filter(|v| v.len() > 12) {
                assert!(!everything.contains(&raw[..12]), "a record's base64 value was printed");
            }
        }
    }
}

/// The counts of a replay response that a dry run predicts.
fn counts(r: &ReplayResponse) -> [usize; 8] {
    let would = r.objects.iter().filter(|o| matches!(o.outcome, ObjectOutcome::Archived | ObjectOutcome::WouldArchive));
    [
        r.objects_scanned,
        would.count(),
        r.objects_failed,
        r.records_loaded,
        r.records_stale,
        r.records_superseded,
        r.records_skipped,
        r.records_rejected,
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_dry_run_counts_what_the_real_replay_does_on_the_demos_dead_letters() {
    // The demo: every sample ingested with the example config, then a replay with the rules
    // relaxed (config/replay-relaxed.toml), dry run first.
    let h = Harness::new("").await;
    h.create_targets(&config(), &event_files()).await;
    h.ingest_all_samples().await;
    let before = h.objects("").await;
    let replayer = h.ingestor(relaxed_config(), KEY);
    let dry =
        replayer.replay(&ReplayRequest { dry_run: true, ..ReplayRequest::default() }, &invocation()).await.unwrap();
    assert_eq!(h.objects("").await, before, "a dry run writes nothing");
    let real = replayer.replay(&ReplayRequest::default(), &invocation()).await.unwrap();
    assert_eq!(counts(&dry), counts(&real), "dry run {dry:?}\nreal {real:?}");
    assert_eq!((real.records_loaded, real.records_rejected), (4, 5), "the demo's numbers");
    assert_eq!(real.records_quarantined, dry.records_quarantined);
    let per_object = |r: &ReplayResponse| r.objects.iter().map(|o| (o.key.clone(), o.records)).collect::<Vec<_>>();
    assert_eq!(per_object(&dry), per_object(&real));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cdc_replay_all_follows_next_key_to_the_end_with_progress_and_its_dry_run_matches() {
    let h = Harness::new("").await;
    h.create_targets(&config(), &event_files()).await;
    h.ingest_all_samples().await;
    let objects = h.objects("dead-letter/").await.len();
    assert_eq!(objects, 4);
    let relaxed = relaxed_config_file();
    let one_at_a_time = temp_file("dry.json", r#"{"dry_run": true, "max_objects": 1}"#);
    let dry = cdc(&h, &relaxed, &["replay", "--all", one_at_a_time.to_str().unwrap()]).await;
    assert_eq!(dry.code, Some(0), "{dry:?}");
    let progress: Vec<&str> = dry.stderr.lines().filter(|l| l.starts_with("cdc replay --all: call ")).collect();
    assert_eq!(progress.len(), objects, "one call per object: {}", dry.stderr);
    assert!(progress[0].contains("call 1 (dry run): objects 1") && progress[0].contains("resuming after dead-letter/"));
    assert!(progress[objects - 1].ends_with("; done"), "{}", progress[objects - 1]);
    let dry: ReplayResponse = serde_json::from_str::<serde_json::Value>(&dry.stdout)
        .map(|v| response(&v))
        .unwrap_or_else(|e| panic!("{e}: {}", dry.stdout));
    let real_request = temp_file("real.json", r#"{"max_objects": 1}"#);
    let real = cdc(&h, &relaxed, &["replay", "--all", real_request.to_str().unwrap()]).await;
    assert_eq!(real.code, Some(0), "{real:?}");
    let real = response(&serde_json::from_str(&real.stdout).unwrap());
    assert_eq!(counts(&dry), counts(&real), "dry {dry:?}\nreal {real:?}");
    assert_eq!((real.objects_scanned, real.objects_archived, real.next_key), (4, 4, None));
    // Records that failed again went to new objects, which the same `--all` did not take up
    // again: every dead letter left has attempts 2.
    let mut left = Vec::new();
    for (_, body) in h.objects("dead-letter/").await {
        for line in body.lines() {
            left.push(serde_json::from_str::<serde_json::Value>(line).unwrap()["attempts"].as_u64().unwrap());
        }
    }
    assert_eq!(left.len(), real.records_rejected);
    assert!(left.iter().all(|a| *a == 2), "{left:?}");
}

/// The fields of a printed replay response that [`counts`] reads.
fn response(v: &serde_json::Value) -> ReplayResponse {
    let n = |field: &str| v[field].as_u64().unwrap_or_else(|| panic!("{field} in {v}")) as usize;
    let outcome = |o: &serde_json::Value| match o["outcome"].as_str() {
        Some("archived") => ObjectOutcome::Archived,
        Some("would_archive") => ObjectOutcome::WouldArchive,
        _ => ObjectOutcome::Failed,
    };
    ReplayResponse {
        dry_run: v["dry_run"].as_bool().unwrap(),
        objects_scanned: n("objects_scanned"),
        objects_archived: n("objects_archived"),
        objects_failed: n("objects_failed"),
        records_loaded: n("records_loaded"),
        records_stale: n("records_stale"),
        records_superseded: n("records_superseded"),
        records_skipped: n("records_skipped"),
        records_rejected: n("records_rejected"),
        records_quarantined: n("records_quarantined"),
        objects: v["objects"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| cdc_pipeline::replay::ObjectReport {
                key: o["key"].as_str().unwrap().into(),
                outcome: outcome(o),
                records: o["records"].as_u64().unwrap() as usize,
                archived_to: None,
                dead_letter_objects: Vec::new(),
                error: None,
            })
            .collect(),
        next_key: v["next_key"].as_str().map(str::to_string),
    }
}
