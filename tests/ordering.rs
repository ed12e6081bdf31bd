//! The order of changes has two implementations: `debezium::compare` in Rust (which change of a
//! batch is the latest) and `redshift::sql::OrderSql` in the apply SQL (is a staged change
//! newer than the stored row). They must agree on every input, or a key could end one way when
//! its changes share a batch and another when they do not. Random evidence pairs, evaluated
//! by both — the SQL on PostgreSQL.

use cdc_pipeline::debezium::{Evidence, Order, Position, compare};
use cdc_pipeline::redshift::sql::OrderSql;
use cdc_tests::stack::pg;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

#[derive(Debug, Clone)]
struct Side {
    position: Position,
    ts_ms: Option<i64>,
    kafka: Option<(String, i64, i64)>,
    deleted: bool,
    snapshot: bool,
}

fn side(rng: &mut SmallRng) -> Side {
    let lineages = ["aaaaaaaa", "bbbbbbbb"];
    let position = if rng.random_bool(0.2) {
        Position::none()
    } else {
        Position::from_stored(format!("{}{:04}", lineages[rng.random_range(0..2)], rng.random_range(0..4)))
    };
    Side {
        position,
        ts_ms: rng.random_bool(0.85).then(|| rng.random_range(0..4)),
        kafka: rng
            .random_bool(0.9)
            .then(|| (["t", "u"][rng.random_range(0..2)].to_string(), rng.random_range(0..2), rng.random_range(0..4))),
        deleted: rng.random_bool(0.3),
        snapshot: rng.random_bool(0.2),
    }
}

fn evidence(s: &Side) -> Evidence<'_> {
    Evidence {
        position: &s.position,
        source_ts_ms: s.ts_ms,
        kafka: s.kafka.as_ref().map(|(t, p, o)| (t.as_str(), *p, *o)),
        deleted: s.deleted,
        snapshot: s.snapshot,
    }
}

fn literal(s: &Side, i: usize) -> String {
    let ts = s
        .ts_ms
        .map_or("NULL".to_string(), |ms| format!("TIMESTAMP '2026-01-01 00:00:00' + INTERVAL '{ms} milliseconds'"));
    let (topic, partition, offset) = match &s.kafka {
        Some((t, p, o)) => (format!("'{t}'"), p.to_string(), o.to_string()),
        None => ("NULL".into(), "NULL".into(), "NULL".into()),
    };
    let op = if s.snapshot { "r" } else { "u" };
    format!("({i}, '{}', {ts}, {topic}, {partition}, {offset}, {}, '{op}')", s.position, s.deleted)
}

#[tokio::test]
async fn rust_and_sql_order_agree_on_every_input() {
    let mut rng = SmallRng::seed_from_u64(20_261_129);
    let pairs: Vec<(Side, Side)> = (0..4_000).map(|_| (side(&mut rng), side(&mut rng))).collect();
    let client = pg().await;
    let columns = "(i INTEGER, \"_cdc_position\" VARCHAR(64), \"_cdc_source_ts\" TIMESTAMP, \"_cdc_kafka_topic\" VARCHAR(249), \
                   \"_cdc_kafka_partition\" INTEGER, \"_cdc_kafka_offset\" BIGINT, \"_cdc_deleted\" BOOLEAN, \"_cdc_op\" CHAR(1))";
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let (s_table, t_table) = (format!("order_s_{suffix}"), format!("order_t_{suffix}"));
    client
        .batch_execute(&format!(
            "CREATE TABLE {s_table} {columns}; ALTER TABLE {s_table} ADD COLUMN \"_cdc_found\" CHAR(1); CREATE TABLE {t_table} {columns}"
        ))
        .await
        .unwrap();
    for chunk in pairs.chunks(500).enumerate() {
        let (offset, chunk) = chunk;
        let base = offset * 500;
        let stage: Vec<String> = chunk.iter().enumerate().map(|(k, (s, _))| literal(s, base + k)).collect();
        let stored: Vec<String> = chunk.iter().enumerate().map(|(k, (_, t))| literal(t, base + k)).collect();
        client
            .batch_execute(&format!(
                "INSERT INTO {s_table} (i, \"_cdc_position\", \"_cdc_source_ts\", \"_cdc_kafka_topic\", \"_cdc_kafka_partition\", \
                 \"_cdc_kafka_offset\", \"_cdc_deleted\", \"_cdc_op\") VALUES {}; INSERT INTO {t_table} VALUES {}",
                stage.join(","),
                stored.join(",")
            ))
            .await
            .unwrap();
    }
    let order = OrderSql::new(
        &format!("\"{t_table}\""),
        &format!("\"{t_table}\".\"_cdc_deleted\""),
        &format!("COALESCE(\"{t_table}\".\"_cdc_op\" = 'r', FALSE)"),
        &format!("\"{s_table}\""),
    );
    let rows = client
        .query(
            &format!(
                "SELECT \"{s_table}\".i, CASE WHEN {} THEN 'stale' WHEN {} THEN 'newer' ELSE 'unknown' END \
                 FROM \"{s_table}\" JOIN \"{t_table}\" ON \"{s_table}\".i = \"{t_table}\".i ORDER BY 1",
                order.stale, order.newer
            ),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), pairs.len());
    let mut seen = std::collections::BTreeMap::new();
    for row in rows {
        let i: i32 = row.get(0);
        let sql: &str = row.get(1);
        let (s, t) = &pairs[i as usize];
        let rust = match compare(&evidence(s), &evidence(t)) {
            Order::Stale => "stale",
            Order::Newer => "newer",
            Order::Unknown => "unknown",
        };
        assert_eq!(sql, rust, "incoming {s:?} against stored {t:?}");
        *seen.entry(rust).or_insert(0) += 1;
    }
    // Every verdict occurred, so each branch of both was exercised.
    assert_eq!(seen.len(), 3, "{seen:?}");
    client.batch_execute(&format!("DROP TABLE {s_table}; DROP TABLE {t_table}")).await.unwrap();
}
