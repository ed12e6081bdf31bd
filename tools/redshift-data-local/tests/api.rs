//! The emulator over real HTTP against a real PostgreSQL (see `support` for how it is found).

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Emulator, req, unique};

fn assert_one_key_fields(result: &Value) {
    for record in result["Records"].as_array().expect("Records") {
        for field in record.as_array().expect("record") {
            assert_eq!(field.as_object().map(|o| o.len()), Some(1), "a Field must have exactly one key: {field}");
        }
    }
}

#[tokio::test]
async fn execute_describe_and_get_result_map_types() {
    let emu = Emulator::start("").await;
    let table = unique("types");
    emu.run(&format!(
        "CREATE TABLE {table} (i2 int2, i4 int4 NOT NULL, i8 int8, b bool, f8 float8, f4 float4, n numeric(10,2), \
         t text, v varchar(20), c char(3), d date, ts timestamp, tz timestamptz, u uuid, j json, y bytea)"
    ))
    .await;
    let (_, inserted) = emu
        .run(&format!(
            "INSERT INTO {table} VALUES (-2, 4, 9000000000, true, 1.25, 0.5, 12.30, 'text', 'var', 'ab', '2024-02-29', \
             '2024-02-29 12:34:56.789', '2024-02-29 12:34:56+02', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{{\"k\":1}}', \
             '\\\\x00ff'), (NULL, 5, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)"
        ))
        .await;
    assert_eq!(inserted["ResultRows"], 2);
    assert_eq!(inserted["HasResultSet"], false);

    let id = emu.execute(&format!("SELECT * FROM {table} ORDER BY i4")).await;
    let response = emu.call("DescribeStatement", json!({"Id": id})).await;
    assert_eq!(response.header("content-type"), Some("application/x-amz-json-1.1"));
    assert!(uuid::Uuid::parse_str(response.header("x-amzn-RequestId").expect("request id")).is_ok());
    let described = emu.wait(&id).await;
    assert_eq!(described["Status"], "FINISHED");
    assert_eq!(described["HasResultSet"], true);
    assert_eq!(described["ResultRows"], 2);
    assert!(described["Duration"].as_i64().unwrap() > 0);
    assert!(described["RedshiftPid"].as_i64().unwrap() > 0);
    assert!(described["CreatedAt"].is_f64() || described["CreatedAt"].is_u64());
    assert!(described["UpdatedAt"].as_f64().unwrap() >= described["CreatedAt"].as_f64().unwrap());
    assert_eq!(described["QueryString"], format!("SELECT * FROM {table} ORDER BY i4"));
    assert_eq!(described["Database"], "postgres");
    assert_eq!(described["ClusterIdentifier"], "local-cluster");
    assert_eq!(described["DbUser"], "awsuser");
    assert!(described.get("Error").is_none());
    assert!(described.get("WorkgroupName").is_none());

    let result = emu.ok("GetStatementResult", json!({"Id": id})).await;
    assert_one_key_fields(&result);
    assert_eq!(result["TotalNumRows"], 2);
    assert!(result.get("NextToken").is_none());
    let row = &result["Records"][0];
    let expected = json!([
        {"longValue": -2}, {"longValue": 4}, {"longValue": 9_000_000_000_i64}, {"booleanValue": true},
        {"doubleValue": 1.25}, {"doubleValue": 0.5}, {"stringValue": "12.30"}, {"stringValue": "text"},
        {"stringValue": "var"}, {"stringValue": "ab "}, {"stringValue": "2024-02-29"},
        {"stringValue": "2024-02-29 12:34:56.789"}, {"stringValue": "2024-02-29 10:34:56+00"},
        {"stringValue": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"}, {"stringValue": "{\"k\":1}"}, {"blobValue": "AP8="}
    ]);
    assert_eq!(row, &expected);
    let nulls = result["Records"][1].as_array().unwrap();
    assert_eq!(nulls[1], json!({"longValue": 5}));
    assert!(nulls.iter().enumerate().all(|(i, f)| i == 1 || *f == json!({"isNull": true})), "{nulls:?}");

    let columns = result["ColumnMetadata"].as_array().unwrap();
    let types: Vec<&str> = columns.iter().map(|c| c["typeName"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "int2",
            "int4",
            "int8",
            "bool",
            "float8",
            "float4",
            "numeric",
            "text",
            "varchar",
            "bpchar",
            "date",
            "timestamp",
            "timestamptz",
            "uuid",
            "json",
            "bytea"
        ]
    );
    let names: Vec<&str> = columns.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names[..3], ["i2", "i4", "i8"]);
    assert_eq!(columns[1]["nullable"], 0, "i4 is NOT NULL");
    assert_eq!(columns[0]["nullable"], 1);
    assert_eq!(columns[1]["tableName"], table.as_str());
    assert_eq!(columns[1]["schemaName"], "public");
    assert_eq!((columns[6]["precision"].as_i64(), columns[6]["scale"].as_i64()), (Some(10), Some(2)));
    assert_eq!(columns[8]["precision"], 20);
    for column in columns {
        for key in ["label", "isSigned", "isCaseSensitive", "isCurrency", "length", "precision", "scale"] {
            assert!(column.get(key).is_some(), "{key} missing in {column}");
        }
    }
}

#[tokio::test]
async fn dml_counts_rows_and_has_no_result() {
    let emu = Emulator::start("").await;
    let table = unique("dml");
    emu.run(&format!("CREATE TABLE {table} (id int)")).await;
    let (id, described) = emu.run(&format!("INSERT INTO {table} SELECT generate_series(1, 3)")).await;
    assert_eq!(described["ResultRows"], 3);
    assert_eq!(described["HasResultSet"], false);
    let response = emu.call("GetStatementResult", json!({"Id": id})).await;
    assert_eq!((response.status, response.error_type()), (400, "ValidationException"));
    assert!(response.message().contains("does not have result"), "{}", response.message());
    let (_, updated) = emu.run(&format!("UPDATE {table} SET id = id + 1 WHERE id > 1")).await;
    assert_eq!(updated["ResultRows"], 2);
}

#[tokio::test]
async fn results_are_paged_by_one_thousand_rows() {
    let emu = Emulator::start("").await;
    let (id, described) = emu.run("SELECT g FROM generate_series(1, 2500) g").await;
    assert_eq!(described["ResultRows"], 2500);
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut body = json!({"Id": id});
        if let Some(token) = &token {
            body["NextToken"] = json!(token);
        }
        let page = emu.ok("GetStatementResult", body).await;
        pages += 1;
        assert_eq!(page["TotalNumRows"], 2500);
        seen.extend(page["Records"].as_array().unwrap().iter().map(|r| r[0]["longValue"].as_i64().unwrap()));
        match page["NextToken"].as_str() {
            Some(next) => token = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, (1..=2500).collect::<Vec<_>>());
    let bad = emu.call("GetStatementResult", json!({"Id": id, "NextToken": "garbage"})).await;
    assert_eq!(bad.error_type(), "ValidationException");
}

#[tokio::test]
async fn batch_commits_all_statements_in_one_transaction() {
    let emu = Emulator::start("").await;
    let table = unique("batch_ok");
    let id = emu
        .batch(&[
            &format!("CREATE TABLE {table} (id int PRIMARY KEY, v text)"),
            &format!("INSERT INTO {table} VALUES (1, 'a'), (2, 'b')"),
            &format!("INSERT INTO {table} VALUES (3, 'c')"),
            &format!("SELECT id, v FROM {table} ORDER BY id"),
            "SHOW transaction_isolation",
        ])
        .await;
    let described = emu.wait(&id).await;
    assert_eq!(described["Status"], "FINISHED", "{described}");
    assert!(described.get("QueryString").is_none());
    let subs = described["SubStatements"].as_array().unwrap();
    assert_eq!(subs.len(), 5);
    for (i, sub) in subs.iter().enumerate() {
        assert_eq!(sub["Id"], format!("{id}:{}", i + 1));
        assert_eq!(sub["Status"], "FINISHED");
        assert!(sub["Duration"].as_i64().unwrap() >= 0);
        assert!(sub["CreatedAt"].is_number() && sub["UpdatedAt"].is_number());
    }
    assert_eq!(subs[1]["ResultRows"], 2);
    assert_eq!(subs[3]["HasResultSet"], true);
    assert_eq!(subs[3]["ResultRows"], 3);
    // Parent rows are the sum of the sub-statements: 0 + 2 + 1 + 3 + 1.
    assert_eq!(described["ResultRows"], 7);
    assert_eq!(described["HasResultSet"], true);

    let parent = emu.call("GetStatementResult", json!({"Id": id})).await;
    assert_eq!((parent.status, parent.error_type()), (400, "ValidationException"));
    assert_eq!(parent.message(), "BatchExecuteStatement result can only be retrieved with sub-statement id.");

    let rows = emu.ok("GetStatementResult", json!({"Id": format!("{id}:4")})).await;
    assert_eq!(rows["Records"][2], json!([{"longValue": 3}, {"stringValue": "c"}]));
    let isolation = emu.ok("GetStatementResult", json!({"Id": format!("{id}:5")})).await;
    assert_eq!(isolation["Records"][0][0], json!({"stringValue": "repeatable read"}), "SNAPSHOT by default");

    let sub = emu.ok("DescribeStatement", json!({"Id": format!("{id}:2")})).await;
    assert_eq!(sub["Id"], format!("{id}:2"));
    assert_eq!(sub["QueryString"], format!("INSERT INTO {table} VALUES (1, 'a'), (2, 'b')"));
    assert_eq!(sub["ResultRows"], 2);
    assert!(sub.get("SubStatements").is_none());
    let missing = emu.call("DescribeStatement", json!({"Id": format!("{id}:6")})).await;
    assert_eq!((missing.status, missing.error_type()), (404, "ResourceNotFoundException"));
}

#[tokio::test]
async fn batch_failure_rolls_back_and_reports_sub_statuses_without_detail() {
    let emu = Emulator::start("").await;
    let table = unique("batch_fail");
    emu.run(&format!("CREATE TABLE {table} (id int PRIMARY KEY, secret text)")).await;
    emu.run(&format!("INSERT INTO {table} VALUES (1, 'old')")).await;
    let id = emu
        .batch(&[
            &format!("INSERT INTO {table} VALUES (2, 'kept?')"),
            &format!("INSERT INTO {table} VALUES (1, 'row-value-must-not-leak')"),
            &format!("INSERT INTO {table} VALUES (3, 'never')"),
        ])
        .await;
    let described = emu.wait(&id).await;
    assert_eq!(described["Status"], "FAILED");
    let error = described["Error"].as_str().unwrap();
    assert!(error.starts_with("ERROR: duplicate key value violates unique constraint"), "{error}");
    assert!(!error.contains("SQLSTATE"), "{error}");
    assert!(!error.contains("Key (") && !error.contains("already exists"), "DETAIL leaked: {error}");
    let statuses: Vec<&str> =
        described["SubStatements"].as_array().unwrap().iter().map(|s| s["Status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["FINISHED", "FAILED", "ABORTED"]);
    assert_eq!(described["SubStatements"][1]["Error"], error);
    assert!(described["SubStatements"][0].get("Error").is_none());
    let result = emu.query(&format!("SELECT id FROM {table} ORDER BY id")).await;
    assert_eq!(result["Records"], json!([[{"longValue": 1}]]), "the batch must be rolled back");
}

#[tokio::test]
async fn client_token_returns_the_same_statement_without_running_it_again() {
    let emu = Emulator::start("").await;
    let table = unique("token");
    emu.run(&format!("CREATE TABLE {table} (id int)")).await;
    let body = req(json!({"Sql": format!("INSERT INTO {table} VALUES (1)"), "ClientToken": unique("tok")}));
    let first = emu.ok("ExecuteStatement", body.clone()).await;
    emu.wait(first["Id"].as_str().unwrap()).await;
    let second = emu.ok("ExecuteStatement", body.clone()).await;
    assert_eq!(first["Id"], second["Id"]);
    assert_eq!(first["CreatedAt"], second["CreatedAt"]);
    let count = emu.query(&format!("SELECT count(*) FROM {table}")).await;
    assert_eq!(count["Records"][0][0], json!({"longValue": 1}));

    let mut changed = body.clone();
    changed["Sql"] = json!(format!("INSERT INTO {table} VALUES (2)"));
    let reused = emu.call("ExecuteStatement", changed).await;
    assert_eq!(reused.error_type(), "ValidationException");

    let batch = req(json!({"Sqls": [format!("INSERT INTO {table} VALUES (5)")], "ClientToken": unique("tok")}));
    let a = emu.ok("BatchExecuteStatement", batch.clone()).await;
    let b = emu.ok("BatchExecuteStatement", batch).await;
    assert_eq!(a["Id"], b["Id"]);
}

#[tokio::test]
async fn requests_are_validated_like_aws() {
    let emu = Emulator::start("").await;
    let expect = |response: support::Response, status: u16, code: &str| {
        assert_eq!((response.status, response.error_type()), (status, code), "{}", response.body);
        response
    };
    let big = format!("SELECT '{}'", "x".repeat(102_400));
    let r = expect(emu.call("ExecuteStatement", req(json!({"Sql": big}))).await, 400, "ValidationException");
    assert_eq!(r.message(), "Cannot process query string larger than 100kB");
    let r = expect(
        emu.call("BatchExecuteStatement", req(json!({"Sqls": ["SELECT 1", big]}))).await,
        400,
        "ValidationException",
    );
    assert_eq!(r.message(), "Cannot process query string larger than 100kB");
    let forty_one: Vec<String> = (0..41).map(|i| format!("SELECT {i}")).collect();
    expect(emu.call("BatchExecuteStatement", req(json!({"Sqls": forty_one}))).await, 400, "ValidationException");
    let forty: Vec<String> = (0..40).map(|i| format!("SELECT {i}")).collect();
    let ok = emu.ok("BatchExecuteStatement", req(json!({"Sqls": forty}))).await;
    assert_eq!(emu.wait(ok["Id"].as_str().unwrap()).await["SubStatements"].as_array().unwrap().len(), 40);
    expect(emu.call("BatchExecuteStatement", req(json!({"Sqls": []}))).await, 400, "ValidationException");
    expect(emu.call("ExecuteStatement", req(json!({"Sql": ""}))).await, 400, "ValidationException");
    expect(emu.call("ExecuteStatement", req(json!({}))).await, 400, "ValidationException");
    expect(
        emu.call("ExecuteStatement", json!({"Sql": "SELECT 1", "ClusterIdentifier": "c"})).await,
        400,
        "ValidationException",
    );
    expect(
        emu.call("ExecuteStatement", json!({"Sql": "SELECT 1", "Database": "postgres"})).await,
        400,
        "ValidationException",
    );
    let r = expect(
        emu.call("ExecuteStatement", req(json!({"Sql": "SELECT :x", "Parameters": [{"name": "x", "value": "1"}]})))
            .await,
        400,
        "ValidationException",
    );
    assert!(r.message().contains("parameters are not supported"));
    // WorkgroupName alone is enough, and only the given target comes back.
    let serverless =
        emu.ok("ExecuteStatement", json!({"Sql": "SELECT 1", "Database": "postgres", "WorkgroupName": "wg"})).await;
    assert_eq!(serverless["WorkgroupName"], "wg");
    assert!(serverless.get("ClusterIdentifier").is_none());
    let id = serverless["Id"].as_str().unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok_and(|u| u.get_version_num() == 4) && id == id.to_lowercase());

    let headers = [("X-Amz-Target", "RedshiftData.ExecuteStatement")];
    let r = emu.http("POST", "/", &headers, b"{not json").await;
    expect(r, 400, "SerializationException");
    let r = emu.http("POST", "/", &[("X-Amz-Target", "RedshiftData.Nope")], b"{}").await;
    expect(r, 400, "UnknownOperationException");
    let r = emu.http("POST", "/", &[], b"{}").await;
    assert!(r.header("x-amzn-RequestId").is_some());
    expect(r, 400, "UnknownOperationException");
    let r = emu.http("GET", "/", &[], b"").await;
    assert_eq!(r.status, 405);
    assert!(r.header("x-amzn-RequestId").is_some(), "axum's own responses carry a request id too");

    let unknown = "11111111-2222-4333-8444-555555555555";
    let r = expect(emu.call("DescribeStatement", json!({"Id": unknown})).await, 404, "ResourceNotFoundException");
    assert_eq!(r.body["ResourceId"], unknown);
    expect(emu.call("GetStatementResult", json!({"Id": unknown})).await, 404, "ResourceNotFoundException");
    expect(emu.call("CancelStatement", json!({"Id": unknown})).await, 404, "ResourceNotFoundException");
    expect(emu.call("DescribeStatement", json!({"Id": "not-an-id"})).await, 400, "ValidationException");
    expect(emu.call("ListStatements", json!({"MaxResults": 101})).await, 400, "ValidationException");
}

#[tokio::test]
async fn sql_errors_fail_the_statement_not_the_call() {
    let emu = Emulator::start("").await;
    let id = emu.execute("SELECT * FROM no_such_table_anywhere").await;
    let described = emu.wait(&id).await;
    assert_eq!(described["Status"], "FAILED");
    assert_eq!(described["Error"], "ERROR: relation \"no_such_table_anywhere\" does not exist");
    let result = emu.call("GetStatementResult", json!({"Id": id})).await;
    assert_eq!(result.error_type(), "ValidationException");
    // ExecuteStatement takes one statement, as Redshift's extended-protocol path does.
    let id = emu.execute("SELECT 1; SELECT 2").await;
    let described = emu.wait(&id).await;
    assert_eq!(described["Status"], "FAILED");
    assert_eq!(described["Error"], "ERROR: cannot insert multiple commands into a prepared statement");
    // A missing database fails the statement with PostgreSQL's error.
    let body = json!({"Sql": "SELECT 1", "Database": "no_such_db", "ClusterIdentifier": "c"});
    let id = emu.ok("ExecuteStatement", body).await["Id"].as_str().unwrap().to_owned();
    let described = emu.wait(&id).await;
    assert_eq!(described["Status"], "FAILED");
    assert!(described["Error"].as_str().unwrap().contains("\"no_such_db\" does not exist"), "{described}");
}

#[tokio::test]
async fn database_selects_a_database_on_the_same_server() {
    let emu = Emulator::start("").await;
    let db = unique("rdl_db");
    emu.run(&format!("CREATE DATABASE {db}")).await;
    let table = unique("in_db");
    let body = json!({"Sql": format!("CREATE TABLE {table} (id int)"), "Database": db, "ClusterIdentifier": "c"});
    let id = emu.ok("ExecuteStatement", body).await["Id"].as_str().unwrap().to_owned();
    assert_eq!(emu.wait(&id).await["Status"], "FINISHED");
    let body = json!({"Sql": "SELECT current_database()", "Database": db, "ClusterIdentifier": "c"});
    let id = emu.ok("ExecuteStatement", body).await["Id"].as_str().unwrap().to_owned();
    emu.wait(&id).await;
    let result = emu.ok("GetStatementResult", json!({"Id": id})).await;
    assert_eq!(result["Records"][0][0]["stringValue"], db.as_str());
    // The table is not in the default database.
    let id = emu.execute(&format!("SELECT * FROM {table}")).await;
    assert_eq!(emu.wait(&id).await["Status"], "FAILED");
}

#[tokio::test]
async fn cancel_aborts_a_running_statement() {
    let emu = Emulator::start("").await;
    let id = emu.execute("SELECT pg_sleep(5)").await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let described = emu.ok("DescribeStatement", json!({"Id": id})).await;
        if described["Status"] == "STARTED" && described["RedshiftQueryId"].as_i64().unwrap() > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "never started: {described}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let started = Instant::now();
    let cancelled = emu.ok("CancelStatement", json!({"Id": id})).await;
    assert_eq!(cancelled, json!({"Status": true}));
    let described = emu.wait(&id).await;
    assert!(started.elapsed() < Duration::from_secs(3), "cancel did not interrupt pg_sleep");
    assert_eq!(described["Status"], "ABORTED");
    assert!(described["Error"].as_str().unwrap().contains("cancelled"), "{described}");
    let again = emu.call("CancelStatement", json!({"Id": id})).await;
    assert_eq!(again.error_type(), "ValidationException");
    assert_eq!(again.message(), "Could not cancel a query that is already in ABORTED status.");

    let (done, _) = emu.run("SELECT 1").await;
    let finished = emu.call("CancelStatement", json!({"Id": done})).await;
    assert_eq!(finished.message(), "Could not cancel a query that is already in FINISHED status.");
}

#[tokio::test]
async fn cancel_aborts_a_batch_and_rolls_it_back() {
    let emu = Emulator::start("").await;
    let table = unique("cancel_batch");
    emu.run(&format!("CREATE TABLE {table} (id int)")).await;
    let id = emu.batch(&[&format!("INSERT INTO {table} VALUES (1)"), "SELECT pg_sleep(5)", "SELECT 1"]).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while emu.ok("DescribeStatement", json!({"Id": format!("{id}:2")})).await["Status"] != "STARTED" {
        assert!(Instant::now() < deadline, "sub-statement 2 never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    emu.ok("CancelStatement", json!({"Id": id})).await;
    let described = emu.wait(&id).await;
    assert_eq!(described["Status"], "ABORTED");
    let statuses: Vec<&str> =
        described["SubStatements"].as_array().unwrap().iter().map(|s| s["Status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["FINISHED", "ABORTED", "ABORTED"]);
    let count = emu.query(&format!("SELECT count(*) FROM {table}")).await;
    assert_eq!(count["Records"][0][0], json!({"longValue": 0}));
}

#[tokio::test]
async fn describe_table_lists_columns_in_order() {
    let emu = Emulator::start("").await;
    let table = unique("described");
    emu.run(&format!(
        "CREATE TABLE {table} (id int4 NOT NULL, name varchar(40), code char(3), amount numeric(12,4), \
         at timestamp, ok bool DEFAULT true, score float8, payload varbyte)"
    ))
    .await;
    let body = req(json!({"Table": table}));
    let described = emu.ok("DescribeTable", body).await;
    assert_eq!(described["TableName"], table.as_str());
    let columns = described["ColumnList"].as_array().unwrap();
    let summary: Vec<(String, String, i64, i64)> = columns
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_owned(),
                c["typeName"].as_str().unwrap().to_owned(),
                c["length"].as_i64().unwrap(),
                c["nullable"].as_i64().unwrap(),
            )
        })
        .collect();
    let expected = [
        ("id", "int4", 0, 0),
        ("name", "varchar", 0, 1),
        ("code", "bpchar", 0, 1),
        ("amount", "numeric", 0, 1),
        ("at", "timestamp", 0, 1),
        ("ok", "bool", 0, 1),
        ("score", "float8", 0, 1),
        ("payload", "varbyte", 0, 1),
    ];
    let expected: Vec<(String, String, i64, i64)> =
        expected.iter().map(|(n, t, l, z)| (n.to_string(), t.to_string(), *l, *z)).collect();
    assert_eq!(summary, expected);
    // A CHAR/VARCHAR size is in precision, with length 0, as in AWS's GetStatementResult example.
    assert_eq!((columns[1]["precision"].as_i64(), columns[2]["precision"].as_i64()), (Some(40), Some(3)));
    assert_eq!((columns[3]["precision"].as_i64(), columns[3]["scale"].as_i64()), (Some(12), Some(4)));
    assert_eq!(columns[5]["columnDefault"], "true");
    assert_eq!(columns[0]["isSigned"], true);
    assert_eq!(columns[0]["schemaName"], "public");
    assert_eq!(columns[0]["tableName"], table.as_str());
    assert_eq!(columns[1]["isCaseSensitive"], true);

    let page = emu.ok("DescribeTable", req(json!({"Table": table, "MaxResults": 5}))).await;
    assert_eq!(page["ColumnList"].as_array().unwrap().len(), 5);
    let token = page["NextToken"].as_str().expect("NextToken").to_owned();
    let rest = emu.ok("DescribeTable", req(json!({"Table": table, "MaxResults": 5, "NextToken": token}))).await;
    assert_eq!(rest["ColumnList"].as_array().unwrap().len(), 3);
    assert_eq!(rest["ColumnList"][0]["name"], "ok");
    assert!(rest.get("NextToken").is_none());

    let unknown = emu.ok("DescribeTable", req(json!({"Table": "no_such_table"}))).await;
    assert_eq!(unknown["ColumnList"], json!([]));
    let response = emu.call("DescribeTable", json!({"Table": table})).await;
    assert_eq!(response.error_type(), "ValidationException");
}

#[tokio::test]
async fn list_statements_newest_first_with_filters_and_paging() {
    let emu = Emulator::start("").await;
    let name = unique("listed");
    let mut ids = Vec::new();
    for i in 0..3 {
        let body = req(json!({"Sql": format!("SELECT {i}"), "StatementName": format!("{name}-{i}")}));
        ids.push(emu.ok("ExecuteStatement", body).await["Id"].as_str().unwrap().to_owned());
    }
    let body =
        req(json!({"Sqls": ["SELECT 1", "SELECT 2"], "StatementName": format!("{name}-batch"), "SecretArn": "arn:s"}));
    let batch = emu.ok("BatchExecuteStatement", body).await["Id"].as_str().unwrap().to_owned();
    for id in ids.iter().chain([&batch]) {
        emu.wait(id).await;
    }
    emu.run("SELECT 'unnamed'").await;

    let listed = emu.ok("ListStatements", json!({"StatementName": name})).await;
    let statements = listed["Statements"].as_array().unwrap();
    let listed_ids: Vec<&str> = statements.iter().map(|s| s["Id"].as_str().unwrap()).collect();
    assert_eq!(listed_ids, [batch.as_str(), &ids[2], &ids[1], &ids[0]]);
    assert_eq!(statements[0]["IsBatchStatement"], true);
    assert_eq!(statements[0]["QueryStrings"], json!(["SELECT 1", "SELECT 2"]));
    assert_eq!(statements[0]["SecretArn"], "arn:s");
    assert!(statements[0].get("QueryString").is_none());
    assert_eq!(statements[1]["QueryString"], "SELECT 2");
    assert_eq!(statements[1]["IsBatchStatement"], false);
    assert_eq!(statements[1]["Status"], "FINISHED");
    assert_eq!(statements[1]["StatementName"], format!("{name}-2"));
    assert!(statements[1]["CreatedAt"].is_number() && statements[1]["UpdatedAt"].is_number());

    let first = emu.ok("ListStatements", json!({"StatementName": name, "MaxResults": 3})).await;
    assert_eq!(first["Statements"].as_array().unwrap().len(), 3);
    let token = first["NextToken"].as_str().expect("NextToken");
    let second = emu.ok("ListStatements", json!({"StatementName": name, "MaxResults": 3, "NextToken": token})).await;
    assert_eq!(second["Statements"].as_array().unwrap().len(), 1);
    assert_eq!(second["Statements"][0]["Id"], ids[0].as_str());
    assert!(second.get("NextToken").is_none());

    let failed = emu.ok("ListStatements", json!({"StatementName": name, "Status": "FAILED"})).await;
    assert_eq!(failed["Statements"], json!([]));
    let all = emu.ok("ListStatements", json!({"Status": "ALL"})).await;
    assert_eq!(all["Statements"].as_array().unwrap().len(), 5);
}

#[tokio::test]
async fn backslash_escapes_in_string_literals_like_redshift() {
    let emu = Emulator::start("").await;
    // SQL text: SELECT 'a\\b', 'it\'s', 'tab\there', length('a\\b')
    let result = emu.query(r"SELECT 'a\\b', 'it\'s', 'tab\there', length('a\\b')").await;
    assert_eq!(
        result["Records"][0],
        json!([{"stringValue": "a\\b"}, {"stringValue": "it's"}, {"stringValue": "tab\there"}, {"longValue": 3}])
    );
}

#[tokio::test]
async fn sessions_do_not_leak_between_calls_on_a_pooled_connection() {
    let emu = Emulator::start("").await;
    let table = unique("tmp_leak");
    // Pauses let each connection be reset and pooled, so every call reuses the same one.
    let settle = || tokio::time::sleep(Duration::from_millis(250));
    let (_, first) = emu.run(&format!("CREATE TEMP TABLE {table} (x int)")).await;
    settle().await;
    let (_, set) = emu.run("SET search_path TO pg_catalog").await;
    settle().await;
    let (_, begin) = emu.run("BEGIN").await;
    settle().await;
    let id = emu.execute(&format!("SELECT * FROM {table}")).await;
    let select = emu.wait(&id).await;
    assert_eq!(select["Status"], "FAILED", "temp table leaked: {select}");
    assert!(select["Error"].as_str().unwrap().contains("does not exist"));
    settle().await;
    let id = emu
        .execute(
            "SELECT current_setting('search_path'), current_setting('standard_conforming_strings'), \
             current_setting('TimeZone'), now() = statement_timestamp()",
        )
        .await;
    let settings = emu.wait(&id).await;
    let pids: Vec<&Value> = [&first, &set, &begin, &select, &settings].iter().map(|d| &d["RedshiftPid"]).collect();
    assert!(pids.iter().all(|p| *p == pids[0]), "the pooled connection should be reused: {pids:?}");
    let result = emu.ok("GetStatementResult", json!({"Id": id})).await;
    assert_eq!(
        result["Records"][0],
        json!([{"stringValue": "\"$user\", public"}, {"stringValue": "off"}, {"stringValue": "UTC"}, {"booleanValue": true}]),
        "session state leaked (search_path, settings or an open transaction)"
    );
}

#[tokio::test]
async fn redshift_shims_exist() {
    let emu = Emulator::start("").await;
    let result = emu.query("SELECT to_varbyte('6869', 'hex'), 'ab'::varbyte").await;
    assert_eq!(result["Records"][0], json!([{"blobValue": "aGk="}, {"blobValue": "YWI="}]));
}

#[tokio::test]
async fn serialization_fault_fails_statements_reproducibly_with_a_seed() {
    let all = Emulator::start("serialization=1,seed=7").await;
    let table = unique("never_created");
    let id = all.execute(&format!("CREATE TABLE {table} (id int)")).await;
    let described = all.wait(&id).await;
    assert_eq!(described["Status"], "FAILED");
    // The default SNAPSHOT database reports a conflict as Redshift's snapshot text.
    assert_eq!(described["Error"], redshift_data_local::CONCURRENT_TRANSACTION_ERROR);
    let id = all.batch(&["SELECT 1", "SELECT 2"]).await;
    let described = all.wait(&id).await;
    assert_eq!(described["Status"], "FAILED");
    assert_eq!(described["SubStatements"][0]["Status"], "FAILED");
    assert_eq!(described["SubStatements"][1]["Status"], "ABORTED");
    let faults = all.http("GET", "/__faults", &[], b"").await.body;
    assert_eq!(faults["injected"]["serialization"], 2);
    assert_eq!(faults["calls"]["ExecuteStatement"], 1);

    // The statement ran nothing.
    let clean = Emulator::start("").await;
    let id = clean.execute(&format!("SELECT * FROM {table}")).await;
    assert_eq!(clean.wait(&id).await["Status"], "FAILED");

    let pattern = |emu: Emulator| async move {
        let mut statuses = Vec::new();
        for i in 0..12 {
            let id = emu.execute(&format!("SELECT {i}")).await;
            statuses.push(emu.wait(&id).await["Status"].as_str().unwrap().to_owned());
        }
        statuses
    };
    let a = pattern(Emulator::start("serialization=0.5,seed=42").await).await;
    let b = pattern(Emulator::start("serialization=0.5,seed=42").await).await;
    assert_eq!(a, b);
    assert!(a.iter().any(|s| s == "FAILED") && a.iter().any(|s| s == "FINISHED"), "{a:?}");
}

#[tokio::test]
async fn throttle_and_server_error_faults_and_control_endpoints() {
    let emu = Emulator::start("throttle=1").await;
    let throttled = emu.call("ExecuteStatement", req(json!({"Sql": "SELECT 1"}))).await;
    assert_eq!((throttled.status, throttled.error_type()), (400, "ThrottlingException"));
    assert_eq!(throttled.message(), "Rate exceeded");
    assert!(throttled.header("x-amzn-RequestId").is_some());
    let throttled = emu.call("ListStatements", json!({})).await;
    assert_eq!(throttled.error_type(), "ThrottlingException");

    let health = emu.http("GET", "/__health", &[], b"").await;
    assert_eq!((health.status, health.body.clone()), (200, json!({"status": "ok"})));
    let faults = emu.http("GET", "/__faults", &[], b"").await;
    assert_eq!(faults.body["spec"], "throttle=1");
    assert_eq!(faults.body["injected"]["throttle"], 2);
    assert_eq!(faults.body["calls"]["ExecuteStatement"], 1);
    assert_eq!(faults.body["calls"]["ListStatements"], 1);

    let replaced = emu.http("POST", "/__faults", &[], b"server_error=1,seed=3").await;
    assert_eq!(replaced.status, 200);
    assert_eq!(replaced.body["injected"]["throttle"], 0, "counters reset");
    let failing = emu.call("DescribeStatement", json!({"Id": "11111111-2222-4333-8444-555555555555"})).await;
    assert_eq!((failing.status, failing.error_type()), (500, "InternalServerException"));

    let bad = emu.http("POST", "/__faults", &[], b"throttle=7").await;
    assert_eq!(bad.status, 400);
    assert!(bad.message().contains("throttle=7"), "{}", bad.body);

    emu.http("POST", "/__faults", &[], b"").await;
    emu.run("SELECT 1").await;
}

#[tokio::test]
async fn latency_keeps_statements_submitted_before_they_run() {
    let emu = Emulator::start("latency_ms=400").await;
    let started = Instant::now();
    let id = emu.execute("SELECT 1").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let early = emu.ok("DescribeStatement", json!({"Id": id})).await;
    assert_eq!(early["Status"], "SUBMITTED");
    assert_eq!(early["Duration"], -1);
    assert_eq!(early["ResultRows"], -1);
    let early_result = emu.call("GetStatementResult", json!({"Id": id})).await;
    assert!(early_result.message().contains("has not finished"), "{}", early_result.body);
    assert_eq!(emu.wait(&id).await["Status"], "FINISHED");
    assert!(started.elapsed() >= Duration::from_millis(400));

    // A cancel during the latency wakes the statement at once and nothing runs.
    let table = unique("never_made");
    let id = emu.execute(&format!("CREATE TABLE {table} (id int)")).await;
    let cancelled_at = Instant::now();
    emu.ok("CancelStatement", json!({"Id": id})).await;
    assert_eq!(emu.wait(&id).await["Status"], "ABORTED");
    assert!(cancelled_at.elapsed() < Duration::from_millis(300));
    let id = emu.execute(&format!("SELECT * FROM {table}")).await;
    assert_eq!(emu.wait(&id).await["Status"], "FAILED", "the cancelled CREATE TABLE must not have run");
}

#[tokio::test]
async fn statuses_go_submitted_picked_started_finished() {
    // One running slot: a second statement waits PICKED while the first runs STARTED.
    let emu = Emulator::start_config(support::config("").with_max_running(1)).await;
    let first = emu.execute("SELECT pg_sleep(0.8)").await;
    let second = emu.execute("SELECT 2").await;
    let mut seen: Vec<(String, String)> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let a = emu.ok("DescribeStatement", json!({"Id": first})).await["Status"].as_str().unwrap().to_owned();
        let b = emu.ok("DescribeStatement", json!({"Id": second})).await["Status"].as_str().unwrap().to_owned();
        if seen.last() != Some(&(a.clone(), b.clone())) {
            seen.push((a.clone(), b.clone()));
        }
        if b == "FINISHED" {
            break;
        }
        assert!(Instant::now() < deadline, "{seen:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(seen.contains(&("STARTED".into(), "PICKED".into())), "{seen:?}");
    let order = ["SUBMITTED", "PICKED", "STARTED", "FINISHED"];
    let rank = |s: &str| order.iter().position(|o| *o == s).unwrap();
    for pair in seen.windows(2) {
        assert!(rank(&pair[0].0) <= rank(&pair[1].0) && rank(&pair[0].1) <= rank(&pair[1].1), "{seen:?}");
    }
    // With latency the statement is SUBMITTED (queued) before it is picked.
    let slow = Emulator::start("latency_ms=300").await;
    let id = slow.execute("SELECT 1").await;
    assert_eq!(slow.ok("DescribeStatement", json!({"Id": id})).await["Status"], "SUBMITTED");
    assert_eq!(slow.wait(&id).await["Status"], "FINISHED");
}

#[tokio::test]
async fn wait_time_seconds_waits_for_the_statement_and_returns_its_status() {
    let emu = Emulator::start("").await;
    let started = Instant::now();
    let done = emu.ok("ExecuteStatement", req(json!({"Sql": "SELECT pg_sleep(0.3)", "WaitTimeSeconds": 5}))).await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(done["Status"], "FINISHED", "{done}");
    assert!(done["RedshiftPid"].as_i64().unwrap() > 0);
    assert_eq!(done["HasResultSet"], true);
    let failed = emu.ok("ExecuteStatement", req(json!({"Sql": "SELECT * FROM no_such_t", "WaitTimeSeconds": 5}))).await;
    assert_eq!(failed["Status"], "FAILED");
    assert!(failed.get("Error").is_none(), "Execute has no Error member: {failed}");
    let batch =
        emu.ok("BatchExecuteStatement", req(json!({"Sqls": ["SELECT 1", "SELECT 2"], "WaitTimeSeconds": 5}))).await;
    assert_eq!(batch["Status"], "FINISHED");

    // A wait shorter than the statement returns its current status.
    let started = Instant::now();
    let running = emu.ok("ExecuteStatement", req(json!({"Sql": "SELECT pg_sleep(3)", "WaitTimeSeconds": 1}))).await;
    assert!(started.elapsed() >= Duration::from_secs(1) && started.elapsed() < Duration::from_millis(2500));
    assert_eq!(running["Status"], "STARTED");
    let id = running["Id"].as_str().unwrap();
    let described = emu.ok("DescribeStatement", json!({"Id": id, "WaitTimeSeconds": 10})).await;
    assert_eq!(described["Status"], "FINISHED");

    let id = emu.execute("SELECT 42 AS answer, pg_sleep(0.3)").await;
    let result = emu.ok("GetStatementResult", json!({"Id": id, "WaitTimeSeconds": 5})).await;
    assert_eq!(result["Records"][0][0], json!({"longValue": 42}));
    let batch = emu.batch(&["SELECT pg_sleep(0.3)", "SELECT 7"]).await;
    let sub = emu.ok("DescribeStatement", json!({"Id": format!("{batch}:1"), "WaitTimeSeconds": 5})).await;
    assert_eq!(sub["Status"], "FINISHED");

    // Without WaitTimeSeconds the call answers at once with the status so far.
    let queued = Emulator::start("latency_ms=500").await;
    let body = queued.ok("ExecuteStatement", req(json!({"Sql": "SELECT 1"}))).await;
    assert_eq!(body["Status"], "SUBMITTED");
    assert!(body.get("RedshiftPid").is_none() && body.get("HasResultSet").is_none(), "{body}");

    for (op, body) in [
        ("ExecuteStatement", req(json!({"Sql": "SELECT 1", "WaitTimeSeconds": 31}))),
        ("BatchExecuteStatement", req(json!({"Sqls": ["SELECT 1"], "WaitTimeSeconds": 31}))),
        ("DescribeStatement", json!({"Id": id, "WaitTimeSeconds": 31})),
        ("GetStatementResult", json!({"Id": id, "WaitTimeSeconds": -1})),
    ] {
        let response = emu.call(op, body).await;
        assert_eq!((response.status, response.error_type()), (400, "ValidationException"), "{op}");
        assert!(response.message().contains("waitTimeSeconds"), "{}", response.body);
    }
}

#[tokio::test]
async fn more_than_200_active_statements_are_refused() {
    // Statements queue (SUBMITTED) for a minute, so they stay active.
    let emu = Emulator::start("latency_ms=60000").await;
    let mut ids = Vec::new();
    for i in 0..redshift_data_local::MAX_ACTIVE_STATEMENTS {
        ids.push(emu.execute(&format!("SELECT {i}")).await);
    }
    assert_eq!(redshift_data_local::MAX_ACTIVE_STATEMENTS, 200);
    let refused = emu.call("ExecuteStatement", req(json!({"Sql": "SELECT 'one more'"}))).await;
    assert_eq!((refused.status, refused.error_type()), (400, "ActiveStatementsExceededException"));
    assert_eq!(refused.message(), "Active statements exceeded the allowed quota (200).");
    let refused = emu.call("BatchExecuteStatement", req(json!({"Sqls": ["SELECT 1"]}))).await;
    assert_eq!(refused.error_type(), "ActiveStatementsExceededException");
    // An ended statement frees its place.
    emu.ok("CancelStatement", json!({"Id": ids[0]})).await;
    emu.wait(&ids[0]).await;
    let another = emu.execute("SELECT 'fits again'").await;
    for id in ids.iter().skip(1).chain([&another]) {
        emu.ok("CancelStatement", json!({"Id": id})).await;
    }
}
