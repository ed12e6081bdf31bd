//! COPY … FROM 's3://…' against a real PostgreSQL and the local S3 server (moto), the objects
//! written with the real S3 SDK and a small CSV writer of the loader's format.

mod support;

use std::io::Write as _;

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use serde_json::{Value, json};
use support::{Emulator, config, req, unique};

const ROLE: &str = "IAM_ROLE 'arn:aws:iam::123456789012:role/redshift-copy'";
/// The loader's options, with `{null}` for NULL AS.
const OPTIONS: &str = "FORMAT AS CSV QUOTE AS '\"' DELIMITER ',' NULL AS '{null}' GZIP ENCODING UTF8 \
                       DATEFORMAT 'YYYY-MM-DD' COMPUPDATE OFF STATUPDATE OFF";

fn s3() -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "tests"))
        .endpoint_url(test_services::s3_endpoint())
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

async fn emulator() -> Emulator {
    Emulator::start_config(config("").with_s3_endpoint(test_services::s3_endpoint())).await
}

/// A new bucket.
async fn bucket() -> String {
    let name = unique("copy").replace('_', "-");
    s3().create_bucket().bucket(&name).send().await.expect("create bucket");
    name
}

async fn put(bucket: &str, key: &str, bytes: Vec<u8>) {
    s3().put_object().bucket(bucket).key(key).body(bytes.into()).send().await.expect("put object");
}

fn gzip(text: &str) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(text.as_bytes()).unwrap();
    encoder.finish().unwrap()
}

/// A value as the loader writes it.
#[derive(Clone, Debug)]
enum V {
    Null,
    /// Text: always quoted, `""` doubling a quote.
    Text(&'static str),
    /// Numbers, booleans, dates, timestamps, hex: unquoted.
    Raw(&'static str),
    /// SUPER: JSON text, quoted.
    Json(&'static str),
}

/// One CSV file of `rows` with `null` as NULL AS ('\n' line ends).
fn csv(rows: &[Vec<V>], null: &str) -> String {
    let quoted = |text: &str| format!("\"{}\"", text.replace('"', "\"\""));
    let mut out = String::new();
    for row in rows {
        let fields: Vec<String> = row
            .iter()
            .map(|v| match v {
                V::Null => null.to_owned(),
                V::Text(text) | V::Json(text) => quoted(text),
                V::Raw(raw) => (*raw).to_owned(),
            })
            .collect();
        out.push_str(&fields.join(","));
        out.push('\n');
    }
    out
}

fn copy_sql(table: &str, columns: &str, bucket: &str, prefix: &str, null: &str) -> String {
    let null = null.replace('\\', "\\\\");
    format!("COPY {table} ({columns}) FROM 's3://{bucket}/{prefix}' {ROLE} {}", OPTIONS.replace("{null}", &null))
}

/// Runs `sql` and returns its DescribeStatement.
async fn described(emu: &Emulator, sql: &str) -> Value {
    let id = emu.execute(sql).await;
    emu.wait(&id).await
}

async fn failed_with(emu: &Emulator, sql: &str) -> String {
    let described = described(emu, sql).await;
    assert_eq!(described["Status"], "FAILED", "{sql}: {described}");
    described["Error"].as_str().expect("Error").to_owned()
}

/// The rows of a query, each field as its text (None for NULL).
async fn rows(emu: &Emulator, sql: &str) -> Vec<Vec<Option<String>>> {
    let result = emu.query(sql).await;
    result["Records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|record| {
            record
                .as_array()
                .unwrap()
                .iter()
                .map(|field| match field.as_object().unwrap().iter().next().unwrap() {
                    (key, _) if key == "isNull" => None,
                    (_, Value::String(text)) => Some(text.clone()),
                    (_, other) => Some(other.to_string()),
                })
                .collect()
        })
        .collect()
}

const COLUMNS: &str = "id, t, c, i2, i4, i8, f4, f8, d, b, dt, ts, tz, vb, sp";

async fn every_type_table(emu: &Emulator) -> String {
    let table = unique("copy_types");
    emu.run(&format!(
        "CREATE TABLE {table} (id int8 NOT NULL, t varchar(400), c char(6), i2 int2, i4 int4, i8 int8, f4 float4, \
         f8 float8, d numeric(38,10), b bool, dt date, ts timestamp, tz timestamptz, vb varbyte, sp super, extra int DEFAULT 7)"
    ))
    .await;
    table
}

fn row(id: &'static str, t: V, rest: [V; 13]) -> Vec<V> {
    let mut row = vec![V::Raw(id), t];
    row.extend(rest);
    row
}

#[tokio::test]
async fn round_trips_every_kind_of_value() {
    let emu = emulator().await;
    let bucket = bucket().await;
    let table = every_type_table(&emu).await;
    let texts: [&'static str; 12] = [
        "",
        "a,b,c",
        "say \"hi\"",
        "back\\slash \\\\ and \\N inside",
        "new\nline",
        "carriage\rreturn\r\n",
        "tab\there",
        "non-ASCII: é ß 日本語 🎉",
        "control: \u{1}\u{7}\u{1b}\u{7f}",
        "\\.",
        " padded ",
        "NULL",
    ];
    const IDS: [&str; 12] = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12"];
    let mut file: Vec<Vec<V>> =
        IDS.iter().zip(texts).map(|(id, text)| row(id, V::Text(text), std::array::from_fn(|_| V::Null))).collect();
    file.push(row(
        "100",
        V::Null,
        [
            V::Text("ab"),
            V::Raw("-32768"),
            V::Raw("2147483647"),
            V::Raw("-9223372036854775808"),
            V::Raw("3.4028235e38"),
            V::Raw("0.1"),
            V::Raw("1234567890123456789012345678.0123456789"),
            V::Raw("true"),
            V::Raw("2024-02-29"),
            V::Raw("2024-02-29 23:59:59.123456"),
            V::Raw("2024-02-29 23:59:59.000001+00"),
            V::Raw("00ff10"),
            V::Json("{\"a\":[1,2,{\"b\":null}],\"c\":\"x,\\\"y\\\"\"}"),
        ],
    ));
    file.push(row(
        "101",
        V::Text("x"),
        [
            V::Text("zz"),
            V::Raw("0"),
            V::Raw("-1"),
            V::Raw("1"),
            V::Raw("NaN"),
            V::Raw("-Infinity"),
            V::Raw("-0.0000000001"),
            V::Raw("false"),
            V::Raw("0001-01-01"),
            V::Raw("1970-01-01 00:00:00"),
            V::Raw("1999-12-31 23:00:00-05:30"),
            V::Raw("cafe"),
            V::Json("[1,\"two\",3.5]"),
        ],
    ));
    file.push(row(
        "102",
        V::Text("y"),
        [
            V::Null,
            V::Null,
            V::Null,
            V::Null,
            V::Raw("Infinity"),
            V::Raw("1e-300"),
            V::Raw("20.259"),
            V::Null,
            V::Null,
            V::Null,
            V::Null,
            V::Null,
            V::Json("\"just a string\""),
        ],
    ));
    file.push(row("103", V::Text("z"), std::array::from_fn(|i| if i == 12 { V::Json("12.5") } else { V::Null })));
    put(&bucket, "stage/all.csv.gz", gzip(&csv(&file, "\\N"))).await;
    let (_, loaded) = emu.run(&copy_sql(&table, COLUMNS, &bucket, "stage/all", "\\N")).await;
    assert_eq!(loaded["ResultRows"], file.len());
    assert_eq!(loaded["HasResultSet"], false);

    let got = rows(
        &emu,
        &format!(
            "SELECT id, t, c, i2, i4, i8, f4::text, f8::text, d, b, dt, ts, tz, encode(vb, 'hex'), json_serialize(sp), extra \
             FROM {table} ORDER BY id"
        ),
    )
    .await;
    for (i, text) in texts.iter().enumerate() {
        assert_eq!(got[i][1].as_deref(), Some(*text), "text row {}", i + 1);
        assert!(got[i][2..15].iter().all(Option::is_none), "NULLs of row {}: {:?}", i + 1, got[i]);
        assert_eq!(got[i][15].as_deref(), Some("7"), "an unlisted column takes its default");
    }
    let s = |v: &str| Some(v.to_owned());
    assert_eq!(got[12][1], None, "NULL text is not ''");
    assert_eq!(
        got[12][2..15],
        [
            s("ab    "),
            s("-32768"),
            s("2147483647"),
            s("-9223372036854775808"),
            s("3.4028235e+38"),
            s("0.1"),
            s("1234567890123456789012345678.0123456789"),
            s("true"),
            s("2024-02-29"),
            s("2024-02-29 23:59:59.123456"),
            s("2024-02-29 23:59:59.000001+00"),
            s("00ff10"),
            s("{\"a\":[1,2,{\"b\":null}],\"c\":\"x,\\\"y\\\"\"}"),
        ]
    );
    assert_eq!(
        got[13][2..15],
        [
            s("zz    "),
            s("0"),
            s("-1"),
            s("1"),
            s("NaN"),
            s("-Infinity"),
            s("-0.0000000001"),
            s("false"),
            s("0001-01-01"),
            s("1970-01-01 00:00:00"),
            s("2000-01-01 04:30:00+00"),
            s("cafe"),
            s("[1,\"two\",3.5]"),
        ]
    );
    // DECIMAL truncates extra scale: 20.259 into DECIMAL(38,10) keeps all; see the (8,2) test.
    assert_eq!(got[14][6..9], [s("Infinity"), s("1e-300"), s("20.2590000000")]);
    assert_eq!(got[14][14], s("\"just a string\""));
    assert_eq!(got[15][14], s("12.5"));
    let f8: f64 = got[13][7].as_deref().unwrap().parse().unwrap();
    assert_eq!(f8.to_bits(), f64::NEG_INFINITY.to_bits());
}

#[tokio::test]
async fn another_null_string_loads_the_text_backslash_n() {
    let emu = emulator().await;
    let bucket = bucket().await;
    let table = unique("copy_null_as");
    emu.run(&format!("CREATE TABLE {table} (id int, t varchar(20), n int)")).await;
    let null = "NIL\u{1}";
    let file = csv(
        &[
            vec![V::Raw("1"), V::Text("\\N"), V::Null],
            vec![V::Raw("2"), V::Null, V::Raw("5")],
            // Redshift compares the null string after removing quotes: a quoted one is NULL too.
            vec![V::Raw("3"), V::Text(null), V::Raw("6")],
        ],
        null,
    );
    put(&bucket, "n.gz", gzip(&file)).await;
    let sql = format!("COPY {table} FROM 's3://{bucket}/n.gz' {ROLE} CSV NULL AS 'NIL\u{1}' GZIP");
    let (_, loaded) = emu.run(&sql).await;
    assert_eq!(loaded["ResultRows"], 3);
    let got = rows(&emu, &format!("SELECT id, t, n FROM {table} ORDER BY id")).await;
    let s = |v: &str| Some(v.to_owned());
    assert_eq!(got, [vec![s("1"), s("\\N"), None], vec![s("2"), None, s("5")], vec![s("3"), None, s("6")]]);
}

#[tokio::test]
async fn decimals_truncate_and_empty_fields_follow_the_column_type() {
    let emu = emulator().await;
    let bucket = bucket().await;
    let table = unique("copy_conv");
    emu.run(&format!("CREATE TABLE {table} (d numeric(8,2), v varchar(10), n int, e varchar(10))")).await;
    put(&bucket, "c.csv", "20.259,,,\"\"\n-20.259,\"   \",\"\",x\n".as_bytes().to_vec()).await;
    let sql = |extra: &str| format!("COPY {table} FROM 's3://{bucket}/c.csv' {ROLE} CSV {extra}");
    emu.run(&sql("")).await;
    emu.run(&sql("EMPTYASNULL")).await;
    emu.run(&sql("BLANKSASNULL")).await;
    let got = rows(&emu, &format!("SELECT d, v, n, e FROM {table}")).await;
    let s = |v: &str| Some(v.to_owned());
    assert_eq!(
        got,
        [
            vec![s("20.25"), s(""), None, s("")],
            vec![s("-20.25"), s("   "), None, s("x")],
            vec![s("20.25"), None, None, None],
            vec![s("-20.25"), s("   "), None, s("x")],
            vec![s("20.25"), None, None, None],
            vec![s("-20.25"), None, None, s("x")],
        ]
    );
}

#[tokio::test]
async fn loads_every_object_under_the_prefix() {
    let emu = emulator().await;
    let bucket = bucket().await;
    let table = unique("copy_prefix");
    emu.run(&format!("CREATE TABLE {table} (id int, t varchar(10))")).await;
    put(&bucket, "load/t/part-0001.gz", gzip("1,\"a\"\n2,\"b\"\n")).await;
    put(&bucket, "load/t/part-0002.gz", gzip("3,\"c\"\n")).await;
    put(&bucket, "load/other/part-0001.gz", gzip("99,\"no\"\n")).await;
    let (_, loaded) = emu.run(&copy_sql(&table, "id, t", &bucket, "load/t/part", "\\N")).await;
    assert_eq!(loaded["ResultRows"], 3);
    let got = rows(&emu, &format!("SELECT id FROM {table} ORDER BY id")).await;
    assert_eq!(got, [[Some("1".to_owned())], [Some("2".to_owned())], [Some("3".to_owned())]]);

    let missing = failed_with(&emu, &copy_sql(&table, "id, t", &bucket, "load/nothing", "\\N")).await;
    assert_eq!(
        missing,
        "ERROR: The specified S3 prefix 'load/nothing' does not exist DETAIL: error: The specified S3 prefix \
         'load/nothing' does not exist code: 8001"
    );
    let no_bucket = failed_with(&emu, &copy_sql(&table, "id, t", "no-such-bucket-rdl", "x", "\\N")).await;
    assert!(
        no_bucket.starts_with("ERROR: S3ServiceException:") && no_bucket.contains("Error NoSuchBucket"),
        "{no_bucket}"
    );
    let missing_table = failed_with(&emu, &copy_sql("no_such_table", "id", &bucket, "load/t/part", "\\N")).await;
    assert_eq!(missing_table, "ERROR: relation \"no_such_table\" does not exist");
}

#[tokio::test]
async fn refuses_options_and_combinations_redshift_or_the_emulator_refuses() {
    let emu = emulator().await;
    let table = unique("copy_refuse");
    emu.run(&format!("CREATE TABLE {table} (id int)")).await;
    let from = format!("COPY {table} FROM 's3://bucket/prefix'");
    let invalid = "ERROR: Invalid credentials. Must be of the format: credentials 'aws_iam_role=...' or \
                   'aws_access_key_id=...;aws_secret_access_key=...[;token=...]'";
    for (rest, expected) in [
        ("CSV".to_owned(), invalid.to_owned()),
        ("IAM_ROLE 'arn:aws:iam::123:role/r' CSV".to_owned(), invalid.to_owned()),
        (format!("{ROLE} CSV ESCAPE"), "ERROR: CSV cannot be used with ESCAPE".to_owned()),
        (format!("{ROLE} REMOVEQUOTES CSV"), "ERROR: CSV cannot be used with REMOVEQUOTES".to_owned()),
        (format!("{ROLE} CSV FIXEDWIDTH 'id:3'"), "ERROR: CSV cannot be used with FIXEDWIDTH".to_owned()),
        (format!("{ROLE} CSV DELIMITER '\"'"), "ERROR: COPY delimiter and quote must be different".to_owned()),
        (
            format!("{ROLE} CSV NULL AS 'a\\nb'"),
            "ERROR: NULL AS cannot contain a newline or carriage return: Redshift reserves '\\n' as the line delimiter"
                .to_owned(),
        ),
        (
            format!("{ROLE} CSV MAXERROR 5"),
            "ERROR: the emulator does not support COPY option MAXERROR 5: it never skips rows (MAXERROR 0 only)"
                .to_owned(),
        ),
        (format!("{ROLE} CSV ROUNDEC"), "ERROR: the emulator does not support COPY option ROUNDEC".to_owned()),
        (
            format!("{ROLE} FORMAT AS JSON 'auto'"),
            "ERROR: the emulator does not support COPY option FORMAT JSON".to_owned(),
        ),
        (format!("{ROLE} DELIMITER '|'"), "ERROR: the emulator only supports COPY with FORMAT CSV".to_owned()),
        (
            "IAM_ROLE 'arn:aws:iam::123456789012:role/a,arn:aws:iam::123456789012:role/b' CSV".to_owned(),
            "ERROR: the emulator does not support chained IAM roles in IAM_ROLE".to_owned(),
        ),
    ] {
        assert_eq!(failed_with(&emu, &format!("{from} {rest}")).await, expected, "{rest}");
    }
    let stdin = failed_with(&emu, &format!("COPY {table} FROM STDIN")).await;
    assert_eq!(stdin, "ERROR: the emulator only supports COPY FROM 's3://bucket/prefix'");
}

/// A load error's stl_load_errors row (by file name).
async fn load_error(emu: &Emulator, filename: &str) -> Vec<Option<String>> {
    let got = rows(
        emu,
        &format!(
            "SELECT line_number, colname, type, col_length, raw_line, raw_field_value, err_code, err_reason, query \
             FROM stl_load_errors WHERE filename = '{filename}'"
        ),
    )
    .await;
    assert_eq!(got.len(), 1, "one stl_load_errors row for {filename}: {got:?}");
    got.into_iter().next().unwrap()
}

#[tokio::test]
async fn a_bad_value_fails_the_copy_with_its_line_and_column_never_the_value() {
    let record = std::env::temp_dir().join(format!("{}.jsonl", unique("copy_record")));
    let emu = Emulator::start_config(
        config("").with_s3_endpoint(test_services::s3_endpoint()).with_record(Some(record.clone())),
    )
    .await;
    let bucket = bucket().await;
    let table = unique("copy_bad");
    emu.run(&format!("CREATE TABLE {table} (id int8, note varchar(100), amount int4)")).await;
    let secret = "SECRET-7f3a";
    let file = format!("1,\"two\nlines\",10\n2,\"ok\",20\n3,\"fine\",{secret}\n4,\"after\",40\n");
    put(&bucket, "bad/part.gz", gzip(&file)).await;
    let sql = copy_sql(&table, "id, note, amount", &bucket, "bad/", "\\N");
    let described = described(&emu, &sql).await;
    assert_eq!(described["Status"], "FAILED");
    assert_eq!(
        described["Error"],
        format!("ERROR: Load into table '{table}' failed.  Check 'stl_load_errors' system table for details.")
    );
    let error = load_error(&emu, &format!("s3://{bucket}/bad/part.gz")).await;
    let s = |v: &str| Some(v.to_owned());
    assert_eq!(
        error[..8],
        [
            s("4"),
            s("amount"),
            s("int4"),
            s(""),
            s(""),
            s(""),
            s("1207"),
            s("Data contained a value outside of the expected range of 0-9.")
        ]
    );
    assert_eq!(error[8], Some(described["RedshiftQueryId"].to_string()));
    assert!(rows(&emu, &format!("SELECT * FROM {table}")).await.is_empty(), "nothing loaded");

    let listed = emu.ok("ListStatements", json!({})).await;
    for text in [described.to_string(), listed.to_string(), std::fs::read_to_string(&record).unwrap()] {
        assert!(!text.contains(secret), "the value leaked: {text}");
    }
    std::fs::remove_file(&record).unwrap();
}

#[tokio::test]
async fn each_kind_of_bad_row_has_its_load_error() {
    let emu = emulator().await;
    let bucket = bucket().await;
    let table = unique("copy_kinds");
    emu.run(&format!(
        "CREATE TABLE {table} (id int NOT NULL, v varchar(3), c char(2), ts timestamp, d numeric(4,2), b bool, sp super, \
         vb varbyte)"
    ))
    .await;
    let range = "Input data exceeded the acceptable range for the data type.";
    let timestamp = "Timestamp format is not valid. See DATEFORMAT and TIMEFORMAT strings for valid formats.";
    for (name, columns, file, expected) in [
        ("extra", "id, v", "1,\"a\",9\n", ["1", "", "1202", "Extra column(s) found"]),
        ("missing", "id, v, c", "1,\"a\"\n", ["1", "c", "1214", "Delimiter not found"]),
        (
            "unterminated",
            "id, v",
            "1,\"a\"\n2,\"b\n",
            ["2", "", "1216", "Input line is not valid: a quoted field is not terminated"],
        ),
        ("null", "id, v", "\\N,\"a\"\n", ["1", "id", "1213", "A field specified as NOT NULL contained no data."]),
        (
            "digit",
            "id, v",
            "x1,\"a\"\n",
            ["1", "id", "1207", "Data contained a value outside of the expected range of 0-9."],
        ),
        ("overflow", "id", "1\n99999999999\n", ["2", "id", "1222", "Integer value overflow error."]),
        ("long", "id, v", "1,\"abcd\"\n", ["1", "v", "1204", "String length exceeds DDL length"]),
        ("bytes", "id, v", "1,\"éé\"\n", ["1", "v", "1204", "String length exceeds DDL length"]),
        ("char", "id, c", "1,\"abc\"\n", ["1", "c", "1204", "Char length exceeds DDL length"]),
        ("ts", "id, ts", "1,2024-01-02 03:04:05\n2,2024-01-02T03:04:05\n", ["2", "ts", "1206", timestamp]),
        ("offset", "id, ts", "1,2024-01-02 03:04:05+00\n", ["1", "ts", "1206", timestamp]),
        ("dec", "id, d", "1,100.5\n", ["1", "d", "1204", range]),
        ("bool", "id, b", "1,on\n", ["1", "b", "1210", "BOOLEAN data type format error."]),
        (
            "json",
            "id, sp",
            "1,\"{bad\"\n",
            ["1", "sp", "1224", "Input data is not well-formed JSON for the SUPER data type."],
        ),
        ("hex", "id, vb", "1,0g\n", ["1", "vb", "1219", "Hexadecimal contains an invalid digit."]),
    ] {
        put(&bucket, &format!("{name}.gz"), gzip(file)).await;
        let error = failed_with(&emu, &copy_sql(&table, columns, &bucket, &format!("{name}.gz"), "\\N")).await;
        assert_eq!(
            error,
            format!("ERROR: Load into table '{table}' failed.  Check 'stl_load_errors' system table for details.")
        );
        let row = load_error(&emu, &format!("s3://{bucket}/{name}.gz")).await;
        let got: Vec<&str> = [&row[0], &row[1], &row[6], &row[7]].iter().map(|v| v.as_deref().unwrap_or("")).collect();
        assert_eq!(got, expected, "{name}");
    }
    // The file itself: not gzip under GZIP, gzip without GZIP, invalid UTF-8, PostgreSQL's end marker.
    put(&bucket, "plain.csv", b"1,\"a\"\n".to_vec()).await;
    put(&bucket, "zipped.csv", gzip("1,\"a\"\n")).await;
    put(&bucket, "latin1.csv", b"1,\"ok\"\n2,\"caf\xe9\"\n".to_vec()).await;
    put(&bucket, "marker.csv", b"1,\"a\"\n\\.\n3,\"c\"\n".to_vec()).await;
    for (key, gzip_option, line, code) in [
        ("plain.csv", "GZIP", "0", "1216"),
        ("zipped.csv", "", "1", "1220"),
        ("latin1.csv", "", "2", "1220"),
        ("marker.csv", "", "2", "1216"),
    ] {
        let sql = format!("COPY {table} (id, v) FROM 's3://{bucket}/{key}' {ROLE} CSV {gzip_option}");
        let error = failed_with(&emu, &sql).await;
        assert!(error.starts_with("ERROR: Load into table"), "{key}: {error}");
        let row = load_error(&emu, &format!("s3://{bucket}/{key}")).await;
        assert_eq!((row[0].as_deref(), row[6].as_deref()), (Some(line), Some(code)), "{key}: {row:?}");
    }
    assert!(rows(&emu, &format!("SELECT * FROM {table}")).await.is_empty());
    let auto = format!("COPY {table} (id, ts) FROM 's3://{bucket}/ts.gz' {ROLE} CSV GZIP TIMEFORMAT 'auto'");
    let (_, loaded) = emu.run(&auto).await;
    assert_eq!(loaded["ResultRows"], 2, "TIMEFORMAT 'auto' takes the T form");
}

#[tokio::test]
async fn copy_in_a_batch_loads_the_temp_stage_and_rolls_back_with_it() {
    let emu = emulator().await;
    let bucket = bucket().await;
    let table = unique("copy_batch");
    emu.run(&format!("CREATE TABLE {table} (id int8, name varchar(20), \"_cdc_row\" int4)")).await;
    put(&bucket, "stage/b.gz", gzip("1,\"a\",1\n2,\"b\",2\n")).await;
    let stage = [
        format!("CREATE TEMP TABLE \"_cdc_stage\" AS SELECT * FROM {table} WHERE 1 = 0"),
        copy_sql("\"_cdc_stage\"", "\"id\", \"name\", \"_cdc_row\"", &bucket, "stage/b", "\\N"),
        format!("INSERT INTO {table} SELECT * FROM \"_cdc_stage\""),
    ];
    let mut failing = stage.to_vec();
    failing.push("SELECT 1 / 0".to_owned());
    let id = emu.ok("BatchExecuteStatement", req(json!({ "Sqls": failing }))).await["Id"].as_str().unwrap().to_owned();
    let described = emu.wait(&id).await;
    assert_eq!(described["Status"], "FAILED");
    assert_eq!(described["SubStatements"][1]["Status"], "FINISHED");
    assert_eq!(described["SubStatements"][1]["ResultRows"], 2);
    assert!(rows(&emu, &format!("SELECT * FROM {table}")).await.is_empty(), "the COPY's rows rolled back");

    let id = emu.ok("BatchExecuteStatement", req(json!({ "Sqls": stage }))).await["Id"].as_str().unwrap().to_owned();
    assert_eq!(emu.wait(&id).await["Status"], "FINISHED");
    assert_eq!(rows(&emu, &format!("SELECT count(*) FROM {table}")).await, [[Some("2".to_owned())]]);

    // A failing COPY in a batch: the batch fails, its load error row stays.
    put(&bucket, "stage/bad.gz", gzip("1,\"a\",x\n")).await;
    let bad =
        [stage[0].clone(), copy_sql("\"_cdc_stage\"", "\"id\", \"name\", \"_cdc_row\"", &bucket, "stage/bad", "\\N")];
    let id = emu.ok("BatchExecuteStatement", req(json!({ "Sqls": bad }))).await["Id"].as_str().unwrap().to_owned();
    let described = emu.wait(&id).await;
    assert_eq!(described["SubStatements"][1]["Status"], "FAILED");
    assert_eq!(load_error(&emu, &format!("s3://{bucket}/stage/bad.gz")).await[1].as_deref(), Some("_cdc_row"));
}
