//! Pure SQL builders: data in, strings out. The apply SQL is the portable subset of
//! Redshift and PostgreSQL 15 (DESIGN.md "Apply SQL"), one transaction per
//! `BatchExecuteStatement`:
//!
//! 1. `CREATE TEMP TABLE "_cdc_stage" (LIKE "schema"."table")`
//! 2. `INSERT INTO "_cdc_stage" (…) VALUES (…), (…)` — as many as needed, each ≤ 90 KB
//! 3. `DELETE FROM "_cdc_stage" USING target WHERE keys match AND target position >= stage position`
//!    (stale changes: their count is the statement's ResultRows)
//! 4. `DELETE FROM target USING "_cdc_stage" WHERE keys match`
//! 5. `INSERT INTO target (…) SELECT … FROM "_cdc_stage"` (hard deletes: only rows not deleted)
//!
//! Literals follow Redshift's rules: backslash is an escape inside `'…'`, so `\` becomes `\\`
//! and `'` becomes `''`; `E'…'` does not exist. NUL never reaches here (decode rejects or
//! strips it). Identifiers are lowercase and double-quoted.

use std::fmt::Write as _;
use std::ops::Range;
use std::sync::Arc;

use crate::config::{DeleteMode, TableName};
use crate::outcome::Change;
use crate::plan::TablePlan;
use crate::temporal;
use crate::value::{Value, write_float};

/// The Data API accepts 100 KB of SQL per statement; keep a margin.
pub const MAX_STATEMENT_BYTES: usize = 90 * 1024;
/// Statements per `BatchExecuteStatement`.
pub const MAX_STATEMENTS: usize = 40;
/// Statements after the stage inserts: guard, delete, insert.
const TAIL_STATEMENTS: usize = 3;

pub const STAGE_TABLE: &str = "_cdc_stage";
/// Metadata columns every target table carries, in the order they are written.
pub const METADATA_COLUMNS: [&str; 5] =
    ["_cdc_position", "_cdc_op", "_cdc_deleted", "_cdc_source_ts", "_cdc_loaded_at"];

/// Append `name` as a lowercase double-quoted identifier.
pub fn push_ident(out: &mut String, name: &str) {
    out.push('"');
    for c in name.chars() {
        match c {
            '"' => out.push_str("\"\""),
            c => out.extend(c.to_lowercase()),
        }
    }
    out.push('"');
}

/// `"schema"."table"`.
pub fn qualified(table: &TableName) -> String {
    let mut out = String::with_capacity(table.schema.len() + table.table.len() + 5);
    push_ident(&mut out, &table.schema);
    out.push('.');
    push_ident(&mut out, &table.table);
    out
}

/// Append a string literal with Redshift escaping.
pub fn push_text_literal(out: &mut String, text: &str) {
    out.reserve(text.len() + 2);
    out.push('\'');
    if !text.contains(['\\', '\'']) {
        out.push_str(text);
    } else {
        for c in text.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\'' => out.push_str("''"),
                c => out.push(c),
            }
        }
    }
    out.push('\'');
}

/// Append a value as a SQL literal.
pub fn push_literal(out: &mut String, value: &Value<'_>) {
    match value {
        Value::Null => out.push_str("NULL"),
        Value::Bool(b) => out.push_str(if *b { "TRUE" } else { "FALSE" }),
        Value::Int(i) => out.push_str(itoa::Buffer::new().format(*i)),
        Value::Float(x) if x.is_finite() => write_float(out, *x),
        // 'NaN', 'Infinity' and '-Infinity' as text, cast by the column's float type.
        Value::Float(x) => {
            let mut text = String::new();
            write_float(&mut text, *x);
            push_text_literal(out, &text);
        }
        Value::Decimal(d) => {
            let _ = write!(out, "{d}");
        }
        Value::Text(s) => push_text_literal(out, s),
        // Redshift VARBYTE from hex (the emulator provides the same function).
        Value::Bytes(b) => {
            out.push_str("to_varbyte('");
            out.reserve(b.len() * 2 + 10);
            for byte in b.iter() {
                crate::digits::push_hex_byte(out, *byte);
            }
            out.push_str("', 'hex')");
        }
        Value::Date(_) | Value::Time(_) | Value::Timestamp(_) => {
            out.push('\'');
            value.write_text(out);
            out.push('\'');
        }
    }
}

/// What the apply SQL writes to: the target, its data columns, its key.
#[derive(Debug, Clone)]
pub struct ApplySpec<'a> {
    pub target: &'a TableName,
    /// Data columns to write (metadata columns are added), key columns included.
    pub columns: &'a [Arc<str>],
    pub key: &'a [Arc<str>],
    pub delete_mode: DeleteMode,
    /// Start each transaction with `LOCK` on the target: concurrent loaders of one table
    /// then wait for each other instead of failing on serialization conflicts (at the cost
    /// of blocking readers of the table while a load runs, in Redshift).
    pub lock: bool,
    /// `_cdc_loaded_at` for every row of this load.
    pub loaded_at_micros: i64,
}

/// Append one row as a `VALUES` tuple: the data columns in `spec.columns` order (NULL where
/// the row lacks a column), then the metadata columns.
pub fn push_row(out: &mut String, spec: &ApplySpec<'_>, change: &Change<'_>) {
    out.push('(');
    for (i, name) in spec.columns.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        // Rows usually list their columns in the plan's order: try that position first.
        let value = match change.columns.get(i) {
            Some(c) if &c.name == name => Some(&c.value),
            _ => change.columns.iter().find(|c| &c.name == name).map(|c| &c.value),
        };
        push_literal(out, value.unwrap_or(&Value::Null));
    }
    out.push(',');
    push_text_literal(out, &change.position);
    out.push_str(",'");
    out.push_str(change.op.code());
    out.push_str(if change.deleted { "',TRUE," } else { "',FALSE," });
    match change.source_ts_ms.and_then(|ms| ms.checked_mul(1_000)).filter(|m| temporal::valid_timestamp(*m)) {
        Some(micros) => push_literal(out, &Value::Timestamp(micros)),
        None => out.push_str("NULL"),
    }
    out.push(',');
    push_literal(out, &Value::Timestamp(spec.loaded_at_micros));
    out.push(')');
}

fn column_list(spec: &ApplySpec<'_>, qualifier: Option<&str>) -> String {
    let mut out = String::new();
    for (i, name) in spec.columns.iter().map(|c| c.as_ref()).chain(METADATA_COLUMNS).enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        if let Some(q) = qualifier {
            out.push_str(q);
            out.push('.');
        }
        push_ident(&mut out, name);
    }
    out
}

fn key_match(spec: &ApplySpec<'_>, target: &str, stage: &str) -> String {
    let mut out = String::new();
    for (i, key) in spec.key.iter().enumerate() {
        if i > 0 {
            out.push_str(" AND ");
        }
        out.push_str(target);
        out.push('.');
        push_ident(&mut out, key);
        out.push_str(" = ");
        out.push_str(stage);
        out.push('.');
        push_ident(&mut out, key);
    }
    out
}

/// One `BatchExecuteStatement`: its statements and the rows they carry.
#[derive(Debug, Clone, PartialEq)]
pub struct Transaction {
    pub statements: Vec<String>,
    /// Indices (into the rows given to [`build_transactions`]) of the rows it writes.
    pub rows: Vec<usize>,
    /// For each stage `INSERT` (statement `head + i`), the positions in `rows` it carries.
    pub inserts: Vec<Range<usize>>,
    /// Statements before the first stage insert (`LOCK`, `CREATE TEMP TABLE`).
    pub head: usize,
}

impl Transaction {
    /// Statement index (0-based) of the stale-change guard, whose row count is the stale count.
    pub fn guard_statement(&self) -> usize {
        self.head + self.inserts.len()
    }

    /// The rows carried by stage insert statement `statement` (0-based), if it is one.
    pub fn rows_of_statement(&self, statement: usize) -> Option<&[usize]> {
        let insert = statement.checked_sub(self.head)?;
        self.inserts.get(insert).map(|range| &self.rows[range.clone()])
    }
}

/// Rendered transactions, plus rows too large for one statement.
#[derive(Debug, Default)]
pub struct Rendered {
    pub transactions: Vec<Transaction>,
    /// Indices of rows whose single `VALUES` tuple exceeds [`MAX_STATEMENT_BYTES`].
    pub oversized: Vec<usize>,
}

/// The apply SQL of a whole table plan, for a target that has every column of the plan:
/// what `cdc explain`-style tools, benchmarks and profilers render (the loader narrows the
/// columns to the target's first).
pub fn render_plan(plan: &TablePlan<'_, '_>, loaded_at_micros: i64) -> Rendered {
    let Some(first) = plan.rows.first() else { return Rendered::default() };
    let spec = ApplySpec {
        target: plan.target(),
        columns: &plan.columns,
        key: &first.change.key_columns,
        delete_mode: plan.table.delete_mode,
        lock: plan.table.lock,
        loaded_at_micros,
    };
    let changes: Vec<&Change<'_>> = plan.rows.iter().map(|row| row.change).collect();
    build_transactions(&spec, &changes)
}

/// Render the apply SQL for `rows` (one change per key) into as few transactions as fit.
pub fn build_transactions(spec: &ApplySpec<'_>, rows: &[&Change<'_>]) -> Rendered {
    let table = qualified(spec.target);
    let stage = format!("\"{STAGE_TABLE}\"");
    let insert_header = format!("INSERT INTO {stage} ({}) VALUES ", column_list(spec, None));
    let mut head = Vec::with_capacity(2);
    if spec.lock {
        head.push(format!("LOCK {table}"));
    }
    head.push(format!("CREATE TEMP TABLE {stage} (LIKE {table})"));
    let max_inserts = MAX_STATEMENTS - TAIL_STATEMENTS - head.len();
    let empty = || Transaction { statements: head.clone(), rows: Vec::new(), inserts: Vec::new(), head: head.len() };
    let guard = format!(
        "DELETE FROM {stage} USING {table} WHERE {} AND {table}.\"_cdc_position\" >= {stage}.\"_cdc_position\"",
        key_match(spec, &table, &stage)
    );
    let delete = format!("DELETE FROM {table} USING {stage} WHERE {}", key_match(spec, &table, &stage));
    let apply = format!(
        "INSERT INTO {table} ({}) SELECT {} FROM {stage}{}",
        column_list(spec, None),
        column_list(spec, None),
        match spec.delete_mode {
            DeleteMode::Soft => "",
            DeleteMode::Hard => " WHERE NOT \"_cdc_deleted\"",
        }
    );

    let mut rendered = Rendered::default();
    let mut current = empty();
    let mut statement = String::new();
    let mut statement_first_row = 0;
    let finish_statement = |current: &mut Transaction, statement: &mut String, first: usize| {
        if current.rows.len() > first {
            current.inserts.push(first..current.rows.len());
            current.statements.push(std::mem::take(statement));
        }
    };
    let finish_transaction = |rendered: &mut Rendered, current: &mut Transaction| {
        if !current.rows.is_empty() {
            let mut done = std::mem::replace(current, empty());
            done.statements.extend([guard.clone(), delete.clone(), apply.clone()]);
            rendered.transactions.push(done);
        }
    };
    let mut tuple = String::new();
    for (index, row) in rows.iter().enumerate() {
        tuple.clear();
        push_row(&mut tuple, spec, row);
        if insert_header.len() + tuple.len() > MAX_STATEMENT_BYTES {
            rendered.oversized.push(index);
            continue;
        }
        if !statement.is_empty() && statement.len() + 1 + tuple.len() > MAX_STATEMENT_BYTES {
            finish_statement(&mut current, &mut statement, statement_first_row);
            if current.inserts.len() == max_inserts {
                finish_transaction(&mut rendered, &mut current);
            }
        }
        if statement.is_empty() {
            statement.reserve(MAX_STATEMENT_BYTES.min(insert_header.len() + tuple.len() * (rows.len() - index)));
            statement.push_str(&insert_header);
            statement_first_row = current.rows.len();
        } else {
            statement.push(',');
        }
        statement.push_str(&tuple);
        current.rows.push(index);
    }
    finish_statement(&mut current, &mut statement, statement_first_row);
    finish_transaction(&mut rendered, &mut current);
    rendered
}

/// `ALTER TABLE "schema"."table" ADD COLUMN "name" type`.
pub fn add_column(target: &TableName, column: &str, sql_type: &str) -> String {
    let mut out = format!("ALTER TABLE {} ADD COLUMN ", qualified(target));
    push_ident(&mut out, column);
    out.push(' ');
    out.push_str(sql_type);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TableConfig;
    use crate::debezium::Op;
    use crate::outcome::Column;
    use std::borrow::Cow;

    fn literal(value: Value<'_>) -> String {
        let mut out = String::new();
        push_literal(&mut out, &value);
        out
    }

    #[test]
    fn literals_follow_redshift_rules() {
        assert_eq!(literal(Value::Text(Cow::Borrowed("O'Brien"))), "'O''Brien'");
        assert_eq!(literal(Value::Text(Cow::Borrowed(r"C:\temp\new"))), r"'C:\\temp\\new'");
        assert_eq!(literal(Value::Text(Cow::Borrowed(r"\'; DROP TABLE t; --"))), r"'\\''; DROP TABLE t; --'");
        assert_eq!(literal(Value::Text(Cow::Borrowed("trailing\\"))), r"'trailing\\'");
        assert_eq!(literal(Value::Null), "NULL");
        assert_eq!(literal(Value::Bool(true)), "TRUE");
        assert_eq!(literal(Value::Int(-42)), "-42");
        assert_eq!(literal(Value::Float(0.1)), "0.1");
        assert_eq!(literal(Value::Float(f64::NAN)), "'NaN'");
        assert_eq!(literal(Value::Decimal(crate::value::Decimal { unscaled: -4510, scale: 2 })), "-45.10");
        assert_eq!(literal(Value::Timestamp(1_531_488_225_780_000)), "'2018-07-13 13:23:45.780000'");
        assert_eq!(literal(Value::Date(17725)), "'2018-07-13'");
        assert_eq!(literal(Value::Bytes(Cow::Borrowed(&[0, 255]))), "to_varbyte('00ff', 'hex')");
        assert!(!literal(Value::Text(Cow::Borrowed("x"))).starts_with('E'));
    }

    #[test]
    fn floats_round_trip() {
        for x in [0.1, 1.0 / 3.0, 1e300, -2.5e-300, f64::MAX, f64::MIN_POSITIVE] {
            assert_eq!(literal(Value::Float(x)).parse::<f64>().unwrap(), x);
        }
    }

    #[test]
    fn identifiers_are_lowercase_and_quoted() {
        let mut out = String::new();
        push_ident(&mut out, "First\"Name");
        assert_eq!(out, "\"first\"\"name\"");
        let table = TableName { schema: "Public".into(), table: "T".into() };
        assert_eq!(qualified(&table), "\"public\".\"t\"");
    }

    fn change(id: i64, name: &str, deleted: bool) -> Change<'static> {
        let table = Arc::new(TableConfig::default_for_topic("x.t").unwrap());
        Change {
            table,
            op: if deleted { Op::Delete } else { Op::Create },
            deleted,
            position: format!("{id:020}"),
            source_ts_ms: Some(1_000),
            key: vec![Value::Int(id)],
            key_columns: Arc::from(vec![Arc::from("id")]),
            columns: vec![
                Column { name: "id".into(), value: Value::Int(id) },
                Column { name: "name".into(), value: Value::Text(Cow::Owned(name.to_string())) },
            ],
            masked: Vec::new(),
            row_schema: None,
        }
    }

    fn spec<'a>(
        target: &'a TableName,
        columns: &'a [Arc<str>],
        key: &'a [Arc<str>],
        mode: DeleteMode,
    ) -> ApplySpec<'a> {
        ApplySpec { target, columns, key, delete_mode: mode, lock: false, loaded_at_micros: 0 }
    }

    #[test]
    fn one_small_plan_is_one_transaction_of_five_statements() {
        let target = TableName { schema: "public".into(), table: "patients".into() };
        let columns: Vec<Arc<str>> = vec!["id".into(), "name".into()];
        let key: Vec<Arc<str>> = vec!["id".into()];
        let rows = [change(1, "a", false), change(2, "b", true)];
        let refs: Vec<&Change<'_>> = rows.iter().collect();
        let rendered = build_transactions(&spec(&target, &columns, &key, DeleteMode::Soft), &refs);
        assert!(rendered.oversized.is_empty());
        let [tx] = rendered.transactions.as_slice() else { panic!("one transaction") };
        assert_eq!(tx.rows, vec![0, 1]);
        assert_eq!(tx.guard_statement(), 2);
        assert_eq!(tx.rows_of_statement(1), Some(&[0, 1][..]));
        assert_eq!(tx.statements, vec![
            r#"CREATE TEMP TABLE "_cdc_stage" (LIKE "public"."patients")"#.to_string(),
            concat!(
                r#"INSERT INTO "_cdc_stage" ("id", "name", "_cdc_position", "_cdc_op", "_cdc_deleted", "_cdc_source_ts", "_cdc_loaded_at") VALUES "#,
                r#"(1,'a','00000000000000000001','c',FALSE,'1970-01-01 00:00:01.000000','1970-01-01 00:00:00.000000'),"#,
                r#"(2,'b','00000000000000000002','d',TRUE,'1970-01-01 00:00:01.000000','1970-01-01 00:00:00.000000')"#
            )
            .to_string(),
            r#"DELETE FROM "_cdc_stage" USING "public"."patients" WHERE "public"."patients"."id" = "_cdc_stage"."id" AND "public"."patients"."_cdc_position" >= "_cdc_stage"."_cdc_position""#.to_string(),
            r#"DELETE FROM "public"."patients" USING "_cdc_stage" WHERE "public"."patients"."id" = "_cdc_stage"."id""#.to_string(),
            r#"INSERT INTO "public"."patients" ("id", "name", "_cdc_position", "_cdc_op", "_cdc_deleted", "_cdc_source_ts", "_cdc_loaded_at") SELECT "id", "name", "_cdc_position", "_cdc_op", "_cdc_deleted", "_cdc_source_ts", "_cdc_loaded_at" FROM "_cdc_stage""#.to_string(),
        ]);
        let hard = build_transactions(&spec(&target, &columns, &key, DeleteMode::Hard), &refs);
        assert!(hard.transactions[0].statements[4].ends_with(r#" FROM "_cdc_stage" WHERE NOT "_cdc_deleted""#));
        let locked =
            build_transactions(&ApplySpec { lock: true, ..spec(&target, &columns, &key, DeleteMode::Soft) }, &refs);
        let tx = &locked.transactions[0];
        assert_eq!(tx.statements[0], r#"LOCK "public"."patients""#);
        assert_eq!((tx.head, tx.guard_statement(), tx.rows_of_statement(2)), (2, 3, Some(&[0, 1][..])));
    }

    #[test]
    fn large_plans_split_by_statement_size_and_count() {
        let target = TableName { schema: "public".into(), table: "t".into() };
        let columns: Vec<Arc<str>> = vec!["id".into(), "name".into()];
        let key: Vec<Arc<str>> = vec!["id".into()];
        let name = "x".repeat(1000);
        let rows: Vec<Change<'_>> = (0..5_000).map(|i| change(i, &name, false)).collect();
        let refs: Vec<&Change<'_>> = rows.iter().collect();
        let rendered = build_transactions(&spec(&target, &columns, &key, DeleteMode::Soft), &refs);
        assert!(rendered.transactions.len() >= 2, "5 MB of rows need several transactions");
        let mut seen: Vec<usize> = Vec::new();
        for tx in &rendered.transactions {
            assert!(tx.statements.len() <= MAX_STATEMENTS);
            assert!(tx.statements.iter().all(|s| s.len() <= MAX_STATEMENT_BYTES));
            assert_eq!(tx.inserts.len() + 4, tx.statements.len());
            seen.extend(&tx.rows);
        }
        assert_eq!(seen, (0..5_000).collect::<Vec<_>>(), "every row exactly once, in order");
    }

    #[test]
    fn a_row_too_large_for_one_statement_is_set_aside() {
        let target = TableName { schema: "public".into(), table: "t".into() };
        let columns: Vec<Arc<str>> = vec!["id".into(), "name".into()];
        let key: Vec<Arc<str>> = vec!["id".into()];
        let rows = [change(1, "ok", false), change(2, &"y".repeat(MAX_STATEMENT_BYTES), false)];
        let refs: Vec<&Change<'_>> = rows.iter().collect();
        let rendered = build_transactions(&spec(&target, &columns, &key, DeleteMode::Soft), &refs);
        assert_eq!(rendered.oversized, vec![1]);
        assert_eq!(rendered.transactions[0].rows, vec![0]);
    }

    #[test]
    fn alter_table() {
        let target = TableName { schema: "public".into(), table: "t".into() };
        assert_eq!(
            add_column(&target, "Email", "VARCHAR(256)"),
            r#"ALTER TABLE "public"."t" ADD COLUMN "email" VARCHAR(256)"#
        );
    }
}
