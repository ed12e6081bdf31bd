//! `cdc connector-config` as a user runs it: the printed configuration, parsed back, is one
//! MSK Connect accepts (`key=value`, no key twice) and produces exactly the topics the pipeline
//! config routes, with the converters and modes the decoder reads; what it cannot derive is an
//! exit 2 naming the flag.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use cdc_pipeline::{Config, Rule};
use regex::RegexBuilder;

fn cdc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cdc"))
        .args(args)
        .current_dir(test_services::repo_root())
        .env_remove("CDC_CONFIG")
        .output()
        .expect("cdc runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The output as MSK Connect reads its connector configuration: one `key=value` per line,
/// split at the first `=`; a key twice, an empty key or a line without `=` fails.
fn parse(output: &Output) -> BTreeMap<String, String> {
    assert_eq!(output.status.code(), Some(0), "{}", stderr(output));
    let text = String::from_utf8(output.stdout.clone()).expect("UTF-8");
    let mut properties = BTreeMap::new();
    for line in text.lines() {
        let (key, value) = line.split_once('=').unwrap_or_else(|| panic!("not key=value: {line}"));
        assert!(!key.is_empty() && key.trim() == key, "bad key in {line}");
        assert!(properties.insert(key.to_string(), value.to_string()).is_none(), "{key} twice");
    }
    properties
}

fn temp_config(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cdc-connector-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Whether Debezium, configured by `p`, writes `topic`: `<topic.prefix>.` then, for connectors
/// whose topics carry it, one of the databases, then an identifier that one
/// `table.include.list` expression matches whole (Debezium matches case-insensitively).
fn debezium_writes(p: &BTreeMap<String, String>, topic: &str) -> bool {
    let Some(rest) = topic.strip_prefix(&format!("{}.", p["topic.prefix"])) else { return false };
    let class = p["connector.class"].as_str();
    let identifier = match class {
        "io.debezium.connector.sqlserver.SqlServerConnector" => {
            let Some((database, identifier)) = rest.split_once('.') else { return false };
            if !p["database.names"].split(',').any(|d| d == database) {
                return false;
            }
            identifier
        }
        "io.debezium.connector.mysql.MySqlConnector" => {
            let Some((database, _)) = rest.split_once('.') else { return false };
            if !p["database.include.list"].split(',').any(|d| d == database) {
                return false;
            }
            rest // MySQL's identifier is database.table
        }
        "io.debezium.connector.postgresql.PostgresConnector" => rest,
        other => panic!("unexpected connector.class {other}"),
    };
    p["table.include.list"].split(',').any(|expression| {
        RegexBuilder::new(&format!("^(?:{expression})$"))
            .case_insensitive(true)
            .build()
            .expect("a valid regular expression")
            .is_match(identifier)
    })
}

/// What every configuration must hold, whatever the connector: the converters the decoder
/// reads (exactly the settings its converter rejects name), the modes it reads best, the
/// pipeline's heartbeat prefix, credentials by reference only, no transform.
fn assert_reads_as_the_pipeline_decodes(p: &BTreeMap<String, String>) {
    for rule in [Rule::ConverterString, Rule::ConverterBinary, Rule::KeyJson] {
        let remedy = rule.remedy().expect("a converter rule names its setting");
        for setting in remedy.split_whitespace().filter(|w| w.contains('=') && w.contains(".converter")) {
            let (key, value) = setting.split_once('=').unwrap();
            assert_eq!(p.get(key).map(String::as_str), Some(value), "{rule}: {setting}");
        }
    }
    assert!(!p.contains_key("transforms"), "no transform: the pipeline reads Debezium's envelope");
    assert_eq!(p["decimal.handling.mode"], "precise");
    assert_eq!(p["binary.handling.mode"], "bytes");
    // `cdc ddl` sizes text columns from the propagated source length.
    assert_eq!(p["column.propagate.source.type"], ".*");
    assert_eq!(p["tombstones.on.delete"], "true");
    assert_eq!(p["topic.heartbeat.prefix"], "__debezium-heartbeat", "the prefix the transform skips");
    assert!(p["heartbeat.interval.ms"].parse::<u64>().unwrap() > 0);
    assert_eq!(p["unavailable.value.placeholder"], "__debezium_unavailable_value");
    assert!(p["database.user"].starts_with("${secretsmanager:") && p["database.user"].ends_with(":username}"));
    assert!(p["database.password"].starts_with("${secretsmanager:") && p["database.password"].ends_with(":password}"));
    assert_eq!(p["config.action.reload"], "none");
}

fn assert_schema_history_over_iam(p: &BTreeMap<String, String>) {
    assert!(p["schema.history.internal.kafka.topic"].starts_with("__debezium-schema-history."));
    for client in ["producer", "consumer"] {
        let get = |name: &str| p[&format!("schema.history.internal.{client}.{name}")].as_str();
        assert_eq!(get("security.protocol"), "SASL_SSL");
        assert_eq!(get("sasl.mechanism"), "AWS_MSK_IAM");
        assert_eq!(get("sasl.jaas.config"), "software.amazon.msk.auth.iam.IAMLoginModule required;");
        assert_eq!(get("sasl.client.callback.handler.class"), "software.amazon.msk.auth.iam.IAMClientCallbackHandler");
    }
}

/// Every topic in `routed` is one the config routes and one the connector writes; every topic
/// in `not_written` the connector does not write.
fn assert_topics(config: &Path, p: &BTreeMap<String, String>, routed: &[&str], not_written: &[&str]) {
    let config = Config::load(config).unwrap();
    for topic in routed {
        assert!(config.table_for_topic(topic).is_some(), "test premise: the config routes {topic}");
        assert!(debezium_writes(p, topic), "the connector does not write the routed topic {topic}: {p:?}");
    }
    for topic in not_written {
        assert!(!debezium_writes(p, topic), "the connector writes {topic}, which it should not");
    }
    // Debezium's own topics stay out of the routing (the transform skips them by name).
    let heartbeat = format!("{}.{}", p["topic.heartbeat.prefix"], p["topic.prefix"]);
    assert!(config.table_for_topic(&heartbeat).is_none(), "{heartbeat} is routed");
    if let Some(history) = p.get("schema.history.internal.kafka.topic") {
        assert!(config.table_for_topic(history).is_none(), "{history} is routed");
    }
}

#[test]
fn sqlserver_for_the_sample_config() {
    let args = [
        "connector-config",
        "--config",
        "config/pipeline.toml",
        "--topic-prefix",
        "sqlsrv",
        "--secret",
        "rds-sampledb",
        "--bootstrap-servers",
        "b-1.demo.kafka.us-east-1.amazonaws.com:9098,b-2.demo.kafka.us-east-1.amazonaws.com:9098",
        "--db-host",
        "sampledb.abc123.us-east-1.rds.amazonaws.com",
    ];
    let out = cdc(&args);
    let p = parse(&out);
    assert_eq!(p["connector.class"], "io.debezium.connector.sqlserver.SqlServerConnector");
    assert_eq!(p["topic.prefix"], "sqlsrv");
    assert_eq!(p["database.names"], "sampledb");
    assert_eq!(p["table.include.list"], "dbo.patientinfo");
    assert_eq!(p["time.precision.mode"], "adaptive");
    assert_eq!(p["database.user"], "${secretsmanager:rds-sampledb:username}");
    assert_eq!(
        p["schema.history.internal.kafka.bootstrap.servers"],
        "b-1.demo.kafka.us-east-1.amazonaws.com:9098,b-2.demo.kafka.us-east-1.amazonaws.com:9098"
    );
    assert_reads_as_the_pipeline_decodes(&p);
    assert_schema_history_over_iam(&p);
    let root = test_services::repo_root();
    assert_topics(
        &root.join("config/pipeline.toml"),
        &p,
        &["sqlsrv.sampledb.dbo.patientinfo"],
        &["sqlsrv.sampledb.dbo.visits", "sqlsrv.otherdb.dbo.patientinfo", "other.sampledb.dbo.patientinfo"],
    );
    // The same input gives the same bytes.
    assert_eq!(cdc(&args).stdout, out.stdout, "deterministic");
    assert!(stderr(&out).is_empty(), "every placeholder was filled: {}", stderr(&out));
}

#[test]
fn placeholders_left_are_named_on_stderr() {
    let out = cdc(&["connector-config", "--config", "config/pipeline.toml", "--topic-prefix", "sqlsrv"]);
    let p = parse(&out);
    assert_eq!(p["database.hostname"], "<database-endpoint>");
    assert_eq!(p["database.password"], "${secretsmanager:<secret-name>:password}");
    assert_eq!(p["schema.history.internal.kafka.bootstrap.servers"], "<msk-iam-bootstrap-servers>");
    let note = stderr(&out);
    for flag in ["--secret", "--bootstrap-servers", "--db-host"] {
        assert!(note.contains(flag), "{note}");
    }
}

#[test]
fn postgresql_with_wildcards_and_two_schemas() {
    let config = temp_config(
        "pg.toml",
        "[[tables]]\ntopic = \"pgsrv.public.patients\"\ntarget = \"public.patients\"\n\
         [[tables]]\ntopic = \"pgsrv.clinic.visit_20??\"\ntarget = \"clinic.visits\"\n",
    );
    let out = cdc(&[
        "connector-config",
        "--config",
        config.to_str().unwrap(),
        "--connector",
        "postgresql",
        "--database",
        "clinicdb",
        "--db-host",
        "pg.example.internal",
    ]);
    let p = parse(&out);
    assert_eq!(p["connector.class"], "io.debezium.connector.postgresql.PostgresConnector");
    assert_eq!(p["plugin.name"], "pgoutput");
    assert_eq!(p["database.dbname"], "clinicdb");
    assert_eq!(p["database.port"], "5432");
    assert_eq!(p["slot.name"], "debezium_pgsrv");
    assert_eq!(p["publication.autocreate.mode"], "filtered");
    assert_eq!(p["table.include.list"], "public.patients,clinic.visit_20..");
    assert!(!p.keys().any(|k| k.starts_with("schema.history")), "PostgreSQL keeps no schema history");
    assert_reads_as_the_pipeline_decodes(&p);
    assert_topics(
        &config,
        &p,
        &["pgsrv.public.patients", "pgsrv.clinic.visit_2024", "pgsrv.clinic.visit_2025"],
        &["pgsrv.public.visits", "pgsrv.clinic.visit_202", "pgsrv.clinic.patients"],
    );
    // No --database: PostgreSQL topics do not carry it.
    let out = cdc(&["connector-config", "--config", config.to_str().unwrap(), "--connector", "postgresql"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--database"), "{}", stderr(&out));
}

#[test]
fn mysql_takes_the_database_from_the_topics() {
    let config = temp_config(
        "mysql.toml",
        "[[tables]]\ntopic = \"mysrv.inventory.customers\"\ntarget = \"public.customers\"\n\
         [[tables]]\ntopic = \"mysrv.inventory.orders_*\"\ntarget = \"public.orders\"\n\
         [[tables]]\ntopic = \"mysrv.billing.invoices\"\ntarget = \"public.invoices\"\n",
    );
    let out = cdc(&[
        "connector-config",
        "--config",
        config.to_str().unwrap(),
        "--connector",
        "mysql",
        "--bootstrap-servers",
        "b-1.x:9098",
    ]);
    let p = parse(&out);
    assert_eq!(p["connector.class"], "io.debezium.connector.mysql.MySqlConnector");
    assert_eq!(p["database.include.list"], "inventory,billing");
    assert_eq!(p["table.include.list"], "inventory.customers,inventory.orders_.*,billing.invoices");
    assert_eq!(p["time.precision.mode"], "adaptive_time_microseconds");
    assert_eq!(p["bigint.unsigned.handling.mode"], "precise");
    let server_id: u32 = p["database.server.id"].parse().expect("a number");
    assert!(server_id > 5400);
    assert_reads_as_the_pipeline_decodes(&p);
    assert_schema_history_over_iam(&p);
    assert_topics(
        &config,
        &p,
        &["mysrv.inventory.customers", "mysrv.inventory.orders_2024", "mysrv.billing.invoices"],
        &["mysrv.billing.customers", "mysrv.inventory.invoices", "mysrv.other.customers"],
    );
}

#[test]
fn the_default_routing_takes_the_tables_from_flags() {
    // No config, and `CDC_CONFIG=default` as the functions read it: the default routing.
    for cdc_config in [None, Some("default")] {
        let run = |extra: &[&str]| {
            let mut command = Command::new(env!("CARGO_BIN_EXE_cdc"));
            command
                .args(["connector-config", "--connector", "sqlserver"])
                .args(extra)
                .current_dir(test_services::repo_root())
                .env_remove("CDC_CONFIG");
            if let Some(value) = cdc_config {
                command.env("CDC_CONFIG", value);
            }
            command.output().unwrap()
        };
        // Nothing to derive from: each missing flag is named, exit 2.
        let out = run(&[]);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        for flag in ["--topic-prefix", "--database", "--table"] {
            assert!(stderr(&out).contains(flag), "{}", stderr(&out));
        }
        let p = parse(&run(&["--topic-prefix", "sqlsrv", "--database", "sampledb", "--table", "dbo.patientinfo"]));
        assert_eq!(p["table.include.list"], "dbo.patientinfo");
        assert_reads_as_the_pipeline_decodes(&p);
        // The default routing routes every data topic: the sample topic is written, no other.
        assert!(debezium_writes(&p, "sqlsrv.sampledb.dbo.patientinfo"));
        assert!(!debezium_writes(&p, "sqlsrv.sampledb.dbo.other"));
    }
    // Only the missing one is listed as missing.
    let out = cdc(&["connector-config", "--config", "default", "--topic-prefix", "sqlsrv", "--database", "db"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("(missing: --table)"), "{}", stderr(&out));
    // mysql's --table is the table alone, the database comes from --database.
    let p = parse(&cdc(&[
        "connector-config",
        "--connector",
        "mysql",
        "--topic-prefix",
        "mysrv",
        "--database",
        "inventory",
        "--table",
        "customers",
        "--server-id",
        "184054",
    ]));
    assert_eq!(p["table.include.list"], "inventory.customers");
    assert_eq!(p["database.server.id"], "184054");
    assert!(debezium_writes(&p, "mysrv.inventory.customers"));
}

#[test]
fn what_cannot_be_derived_is_refused_with_exit_2() {
    let two_prefixes = temp_config(
        "two-prefixes.toml",
        "[[tables]]\ntopic = \"a.db.dbo.t1\"\ntarget = \"public.t1\"\n\
         [[tables]]\ntopic = \"b.db.dbo.t2\"\ntarget = \"public.t2\"\n",
    );
    let short = temp_config("short.toml", "[[tables]]\ntopic = \"*.patientinfo\"\ntarget = \"public.patientinfo\"\n");
    let placeholders = temp_config(
        "placeholders.toml",
        "[[tables]]\ntopic = \"a.db.dbo.t1\"\ntarget = \"public.t1\"\n\
         [[tables]]\ntopic = \"a.db.dbo.t2\"\ntarget = \"public.t2\"\nunavailable_value_placeholder = \"~\"\n",
    );
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--config", "config/pipeline.toml"], "give --topic-prefix"),
        (vec!["--config", "config/pipeline.toml", "--topic-prefix", "sqlsrv", "--table", "dbo.x"], "--table applies"),
        (vec!["--config", "config/pipeline.toml", "--topic-prefix", "sql srv"], "--topic-prefix must be"),
        (
            vec!["--config", "config/pipeline.toml", "--topic-prefix", "a", "--database", "otherdb"],
            "--database does not match",
        ),
        (vec!["--config", two_prefixes.to_str().unwrap()], "different topic prefixes"),
        (vec!["--config", short.to_str().unwrap(), "--topic-prefix", "x"], "tables[0].topic"),
        (vec!["--config", placeholders.to_str().unwrap()], "unavailable_value_placeholder"),
        (
            vec!["--config", "config/pipeline.toml", "--topic-prefix", "s", "--secret", "arn:aws:secretsmanager:x"],
            "not its ARN",
        ),
        (vec!["--config", "config/pipeline.toml", "--topic-prefix", "s", "--bootstrap-servers", "nohost"], "host:port"),
        (vec!["--config", "config/pipeline.toml", "--topic-prefix", "s", "--server-id", "7"], "mysql only"),
        (vec!["--config", "no/such/file.toml"], "file.toml"),
    ];
    for (extra, expected) in cases {
        let mut args = vec!["connector-config"];
        args.extend(&extra);
        let out = cdc(&args);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(expected), "{extra:?}: {}", stderr(&out));
        assert!(out.stdout.is_empty(), "{extra:?}: nothing printed");
    }
}

/// The decoder's rejects for other converter settings, as `cdc explain` shows them, name
/// settings `cdc connector-config` sets; the record's text is never printed.
#[test]
fn explain_hints_at_the_settings_the_generated_config_sets() {
    let dir = std::env::temp_dir().join(format!("cdc-hints-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let topic = "sqlsrv.sampledb.dbo.patientinfo";
    let kcat = |offset: u32, payload: &str| {
        serde_json::json!({"topic": topic, "partition": 0, "offset": offset, "tstype": "create",
            "ts": 1795168800000_i64, "broker": 1, "key": "{\"ID\":1004}", "payload": payload})
        .to_string()
    };
    let glue = format!("\u{3}\u{0}{}Aisha", "0123456789abcdef");
    let lines = [
        kcat(0, "Struct{after=Struct{ID=1004,FirstName=Aisha,SSN=123456789},source=Struct{connector=sqlserver},op=c}"),
        kcat(1, r#"{"ID":1004,"FirstName":"Aisha","SSN":"123456789","__op":"c","__source_ts_ms":1795168800000}"#),
        kcat(2, "\u{0}\u{0}\u{0}\u{0}\u{1}\u{10}Aisha123456789"),
        kcat(3, &glue),
    ];
    let input = dir.join("converters.jsonl");
    std::fs::write(&input, lines.join("\n")).unwrap();
    let out = cdc(&["make-event", input.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let event = dir.join("converters.json");
    std::fs::write(&event, &out.stdout).unwrap();
    let out = cdc(&["explain", event.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    for secret in ["Aisha", "123456789"] {
        assert!(!text.contains(secret), "a value was printed: {text}");
    }
    let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let rules: Vec<&str> = lines.iter().map(|l| l["reasons"][0]["rule"].as_str().unwrap()).collect();
    assert_eq!(rules, ["converter_string", "unwrapped_record", "converter_binary", "converter_binary"]);
    let generated = parse(&cdc(&["connector-config", "--config", "config/pipeline.toml", "--topic-prefix", "sqlsrv"]));
    for line in &lines {
        assert_eq!(line["action"], "reject");
        assert_eq!(line["stage"], "decode");
        let hint = line["hints"][0].as_str().expect("a hint");
        let settings: Vec<&str> = hint.split_whitespace().filter(|w| w.contains('=')).collect();
        assert!(!settings.is_empty(), "{hint}");
        for setting in settings {
            match setting.split_once('=').unwrap() {
                // The unwrap hint names the transform to remove: the generated config has none.
                ("(transforms", _) => assert!(!generated.contains_key("transforms")),
                (key, value) => assert_eq!(generated.get(key).map(String::as_str), Some(value), "{hint}"),
            }
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `--format avro`: a registry's AvroConverter for keys and values, Debezium's Avro name
/// adjustment, the registry named as the functions' `SCHEMA_REGISTRY` reads it; the JSON
/// converters are gone; flags that do not fit the format or registry exit 2, naming them.
#[test]
fn avro_format_sets_the_registry_converters_for_keys_and_values() {
    let base = ["connector-config", "--config", "config/pipeline.toml", "--topic-prefix", "sqlsrv"];
    let glue = parse(&cdc(&[
        &base[..],
        &["--format", "avro", "--registry", "glue", "--glue-registry", "cdc", "--region", "eu-west-1"],
    ]
    .concat()));
    for side in ["key", "value"] {
        assert_eq!(
            glue[&format!("{side}.converter")],
            "com.amazonaws.services.schemaregistry.kafkaconnect.AWSKafkaAvroConverter"
        );
        assert_eq!(glue[&format!("{side}.converter.registry.name")], "cdc");
        assert_eq!(glue[&format!("{side}.converter.region")], "eu-west-1");
        assert_eq!(glue[&format!("{side}.converter.avroRecordType")], "GENERIC_RECORD");
        assert!(!glue.contains_key(&format!("{side}.converter.schemas.enable")));
    }
    assert_eq!(
        (glue["schema.name.adjustment.mode"].as_str(), glue["field.name.adjustment.mode"].as_str()),
        ("avro", "avro")
    );
    // The value representations stay those the decoder reads exactly.
    assert_eq!(glue["decimal.handling.mode"], "precise");

    let confluent = parse(&cdc(&[
        &base[..],
        &[
            "--format",
            "avro",
            "--registry",
            "confluent",
            "--registry-url",
            "https://registry:8081",
            "--registry-secret",
            "reg",
        ],
    ]
    .concat()));
    for side in ["key", "value"] {
        assert_eq!(confluent[&format!("{side}.converter")], "io.confluent.connect.avro.AvroConverter");
        assert_eq!(confluent[&format!("{side}.converter.schema.registry.url")], "https://registry:8081");
        assert_eq!(
            confluent[&format!("{side}.converter.basic.auth.user.info")],
            "${secretsmanager:reg:username}:${secretsmanager:reg:password}"
        );
    }

    for (flags, named) in [
        (&["--format", "avro"][..], "--registry glue"),
        (&["--registry", "glue"][..], "--format avro"),
        (&["--format", "avro", "--registry", "glue", "--registry-url", "https://r"][..], "--registry confluent"),
        (&["--format", "avro", "--registry", "confluent", "--region", "x"][..], "--registry glue"),
        (&["--format", "avro", "--registry", "confluent", "--registry-url", "http://r"][..], "https://"),
        (
            &["--format", "avro", "--registry", "confluent", "--registry-url", "https://u:p@r"][..],
            "user name or password",
        ),
        (
            &[
                "--format",
                "avro",
                "--registry",
                "confluent",
                "--registry-url",
                "https://r",
                "--registry-secret",
                "arn:aws:x",
            ][..],
            "not its ARN",
        ),
        (&["--format", "avro", "--registry", "glue", "--glue-registry", "bad name"][..], "Glue registry name"),
        (&["--format", "avro", "--registry", "glue", "--region", "EU West"][..], "AWS region"),
    ] {
        let out = cdc(&[&base[..], flags].concat());
        assert_eq!(out.status.code(), Some(2), "{flags:?}");
        assert!(stderr(&out).contains(named), "{flags:?}: {}", stderr(&out));
    }
}
