"""Drive redshift-data-local with boto3's `redshift-data` client.

Usage: boto3_conformance.py ENDPOINT_URL

botocore parses every response against the service model, so this catches wire mistakes
(timestamp formats, union shapes, error bodies) that a more lenient client would let through.
Exits non-zero with a message on the first failed check.
"""

import sys
import time
import uuid

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

DONE = {"FINISHED", "FAILED", "ABORTED"}
TARGET = {"ClusterIdentifier": "local-cluster", "Database": "postgres", "DbUser": "awsuser"}


def check(condition, message):
    if not condition:
        raise AssertionError(message)


def wait(client, statement_id, timeout=30.0):
    deadline = time.monotonic() + timeout
    while True:
        described = client.describe_statement(Id=statement_id)
        if described["Status"] in DONE:
            return described
        check(time.monotonic() < deadline, f"statement {statement_id} did not finish: {described}")
        time.sleep(0.02)


def run(client, sql, **extra):
    statement_id = client.execute_statement(Sql=sql, **TARGET, **extra)["Id"]
    described = wait(client, statement_id)
    check(described["Status"] == "FINISHED", f"{sql!r}: {described}")
    return statement_id, described


def client_error_code(call, **kwargs):
    try:
        call(**kwargs)
    except ClientError as error:
        return error.response["Error"]["Code"], error.response["Error"]["Message"]
    raise AssertionError(f"{call.__name__} did not fail")


def main(endpoint):
    client = boto3.client(
        "redshift-data",
        region_name="us-east-1",
        endpoint_url=endpoint,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )
    table = f"boto3_{uuid.uuid4().hex[:12]}"
    name = f"conformance-{table}"

    # execute_statement + describe_statement
    submitted = client.execute_statement(
        Sql=f"CREATE TABLE {table} (id int4 NOT NULL, label varchar(20), amount numeric(10,2), "
        f"ok bool, score float8, at timestamp, raw varbyte)",
        StatementName=f"{name}-create",
        **TARGET,
    )
    check(len(submitted["Id"]) == 36, submitted)
    check(submitted["CreatedAt"].year >= 2024, submitted)
    check(submitted["ClusterIdentifier"] == "local-cluster", submitted)
    described = wait(client, submitted["Id"])
    check(described["Status"] == "FINISHED", described)
    check(described["UpdatedAt"] >= described["CreatedAt"], described)
    check(isinstance(described["Duration"], int) and described["Duration"] > 0, described)
    check(described["HasResultSet"] is False, described)
    print("execute/describe: ok")

    # WaitTimeSeconds: the call returns once the statement ended, with its status
    waited = client.execute_statement(Sql="SELECT pg_sleep(0.2)", WaitTimeSeconds=5, **TARGET)
    check(waited["Status"] == "FINISHED" and waited["HasResultSet"] is True, waited)
    check(client.describe_statement(Id=waited["Id"], WaitTimeSeconds=1)["Status"] == "FINISHED", waited)
    print("wait_time_seconds: ok")

    # batch_execute_statement with sub-statements
    batch = client.batch_execute_statement(
        Sqls=[
            f"INSERT INTO {table} VALUES (1, 'o''neil', 12.30, true, 1.5, '2024-01-02 03:04:05', to_varbyte('6869', 'hex'))",
            f"INSERT INTO {table} VALUES (2, 'back\\\\slash', NULL, false, NULL, NULL, NULL)",
            f"SELECT id, label, amount, ok, score, at, raw FROM {table} ORDER BY id",
        ],
        StatementName=f"{name}-batch",
        **TARGET,
    )
    described = wait(client, batch["Id"])
    check(described["Status"] == "FINISHED", described)
    subs = described["SubStatements"]
    check([s["Id"] for s in subs] == [f"{batch['Id']}:{i}" for i in (1, 2, 3)], subs)
    check(all(s["Status"] == "FINISHED" for s in subs), subs)
    check(described["ResultRows"] == 4, described)
    code, message = client_error_code(client.get_statement_result, Id=batch["Id"])
    check(code == "ValidationException" and "sub-statement id" in message, (code, message))
    result = client.get_statement_result(Id=f"{batch['Id']}:3")
    check(result["TotalNumRows"] == 2, result)
    for record in result["Records"]:
        for field in record:
            check(len(field) == 1, f"a Field must have one key: {record}")
    first, second = result["Records"]
    check(first[0] == {"longValue": 1}, first)
    check(first[1] == {"stringValue": "o'neil"}, first)
    check(first[2] == {"stringValue": "12.30"}, first)
    check(first[3] == {"booleanValue": True}, first)
    check(first[4] == {"doubleValue": 1.5}, first)
    check(first[5] == {"stringValue": "2024-01-02 03:04:05"}, first)
    check(first[6] == {"blobValue": b"hi"}, first)
    check(second[1] == {"stringValue": "back\\slash"}, second)
    check(second[2] == {"isNull": True}, second)
    columns = result["ColumnMetadata"]
    check([c["name"] for c in columns] == ["id", "label", "amount", "ok", "score", "at", "raw"], columns)
    check([c["typeName"] for c in columns][:6] == ["int4", "varchar", "numeric", "bool", "float8", "timestamp"], columns)
    print("batch/get_statement_result: ok")

    # paginated results
    statement_id, _ = run(client, "SELECT g FROM generate_series(1, 2345) g")
    values = []
    for page in client.get_paginator("get_statement_result").paginate(Id=statement_id):
        values.extend(record[0]["longValue"] for record in page["Records"])
    check(values == list(range(1, 2346)), f"paginated {len(values)} rows")
    print("pagination: ok")

    # describe_table
    table_description = client.describe_table(Table=table, Schema="public", **TARGET)
    column_list = table_description["ColumnList"]
    check([c["name"] for c in column_list] == ["id", "label", "amount", "ok", "score", "at", "raw"], column_list)
    check(column_list[1]["typeName"] == "varchar" and column_list[1]["precision"] == 20, column_list[1])
    check(column_list[1]["length"] == 0, column_list[1])
    check(column_list[0]["nullable"] == 0 and column_list[1]["nullable"] == 1, column_list[:2])
    check(column_list[6]["typeName"] == "varbyte", column_list[6])
    check(client.describe_table(Table="no_such_table", **TARGET)["ColumnList"] == [], "unknown table")
    print("describe_table: ok")

    # list_statements
    listed = client.list_statements(StatementName=name)["Statements"]
    check([s["StatementName"] for s in listed] == [f"{name}-batch", f"{name}-create"], listed)
    check(listed[0]["IsBatchStatement"] is True and len(listed[0]["QueryStrings"]) == 3, listed[0])
    check(listed[1]["IsBatchStatement"] is False and listed[1]["QueryString"].startswith("CREATE TABLE"), listed[1])
    print("list_statements: ok")

    # cancel_statement
    slow = client.execute_statement(Sql="SELECT pg_sleep(5)", **TARGET)["Id"]
    deadline = time.monotonic() + 5
    while client.describe_statement(Id=slow)["Status"] != "STARTED":
        check(time.monotonic() < deadline, "slow statement never started")
        time.sleep(0.02)
    time.sleep(0.1)
    check(client.cancel_statement(Id=slow)["Status"] is True, "cancel")
    described = wait(client, slow)
    check(described["Status"] == "ABORTED", described)
    code, message = client_error_code(client.cancel_statement, Id=slow)
    check(code == "ValidationException" and "ABORTED" in message, (code, message))
    print("cancel_statement: ok")

    # errors: SQL errors fail the statement; API errors are ClientErrors with the right code
    failed = client.execute_statement(Sql="SELECT * FROM no_such_table_here", **TARGET)["Id"]
    described = wait(client, failed)
    check(described["Status"] == "FAILED", described)
    check(described["Error"] == 'ERROR: relation "no_such_table_here" does not exist', described)
    code, message = client_error_code(client.execute_statement, Sql="SELECT '" + "x" * 102_400 + "'", **TARGET)
    check(code == "ValidationException" and "100kB" in message, (code, message))
    code, _ = client_error_code(client.describe_statement, Id=str(uuid.uuid4()))
    check(code == "ResourceNotFoundException", code)
    code, _ = client_error_code(client.execute_statement, Sql="SELECT 1", Database="postgres")
    check(code == "ValidationException", code)
    print("errors: ok")
    print("boto3 conformance: all checks passed")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: boto3_conformance.py ENDPOINT_URL")
    main(sys.argv[1])
