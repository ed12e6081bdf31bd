//! Unit tests of the steps: pure, no I/O. Records are schemaless Debezium JSON; a value or key
//! of `None` is a null Kafka value or key.

use std::borrow::Cow;
use std::sync::Arc;

use super::steps::{Rejected, Stop, decode_stage, decoded, tombstone_rejected};
use super::{Caches, Pipeline};
use crate::batch::Payload;
use crate::config::Config;
use crate::debezium::Op;
use crate::detect::SensitiveKind;
use crate::event::KafkaRecord;
use crate::outcome::{Change, Outcome, Reason, Reject, SkipReason, Stage};
use crate::rule::Rule;
use crate::value::Value;

const TOPIC: &str = "src.db.dbo.patients";
const NOW: i64 = 1_795_521_600_000_000;
const KEY: &[u8] = b"transform-unit-test-masking-key-0123456789";

/// A pipeline over one table, `public.patients` on [`TOPIC`]: `table` is the rest of its
/// `[[tables]]` entry (`key`, `[tables.columns.*]`, `[tables.detect]`), `pipeline` the
/// `[pipeline]` keys.
fn pipeline(pipeline: &str, table: &str) -> Pipeline {
    let text =
        format!("[pipeline]\n{pipeline}\n[[tables]]\ntopic = \"{TOPIC}\"\ntarget = \"public.patients\"\n{table}\n");
    Pipeline::new(Arc::new(Config::parse(&text, "test.toml").unwrap()), Some(KEY)).unwrap()
}

/// A Kafka record on `topic`: only its coordinates count (the steps take its key and value
/// decoded, as `DecodedBatch` gives them).
fn record(topic: &str) -> KafkaRecord<'_> {
    KafkaRecord {
        topic: Cow::Borrowed(topic),
        partition: 0,
        offset: 7,
        timestamp: 0,
        timestamp_type: None,
        key: None,
        value: None,
        headers: Vec::new(),
        key_schema_metadata: None,
        value_schema_metadata: None,
    }
}

/// The outcome of one record on `topic` with this Kafka key and value (JSON text).
fn outcome<'b>(p: &Pipeline, topic: &str, key: Option<&'b str>, value: Option<&'b str>) -> Outcome<'b> {
    let payload = |text: Option<&'b str>| text.map_or(Payload::Absent, |t| Payload::Bytes(t.as_bytes()));
    match p.transform_record(&record(topic), payload(key), payload(value), &mut Caches::default(), NOW) {
        Ok(change) => Outcome::Change(change),
        Err(stop) => stop.into(),
    }
}

fn change<'b>(p: &Pipeline, key: Option<&'b str>, value: &'b str) -> Change<'b> {
    match outcome(p, TOPIC, key, Some(value)) {
        Outcome::Change(change) => change,
        other => panic!("not a change: {other:?}"),
    }
}

fn reject(p: &Pipeline, key: Option<&str>, value: Option<&str>) -> Reject {
    match outcome(p, TOPIC, key, value) {
        Outcome::Reject(reject) => reject,
        other => panic!("not a reject: {other:?}"),
    }
}

/// The stage and `column:rule` pairs of a reject.
fn reasons(reject: &Reject) -> (Stage, Vec<String>) {
    let shown = reject.reasons.iter().map(|r| format!("{}:{}", r.column.as_deref().unwrap_or("-"), r.rule));
    (reject.stage, shown.collect())
}

fn columns(change: &Change<'_>) -> Vec<(String, Value<'static>)> {
    change.columns.iter().map(|c| (c.name.to_string(), c.value.clone().into_owned())).collect()
}

/// A create event with this `after` image (leaked: a change borrows its record's bytes).
fn upsert(after: &str) -> &'static str {
    format!(r#"{{"op":"c","before":null,"after":{after}}}"#).leak()
}

/// A delete event with this `before` image.
fn delete(before: &str) -> &'static str {
    format!(r#"{{"op":"d","before":{before},"after":null}}"#).leak()
}

fn text(s: &str) -> Value<'static> {
    Value::Text(Cow::Owned(s.to_string()))
}

#[test]
fn an_hmac_mask_on_a_key_column_keeps_it_and_masks_that_merge_keys_are_mask_on_key() {
    // `id` comes from the Kafka key (no `key` in the config), so only the record can tell.
    let kept = pipeline("", "[tables.columns.id]\nmask = \"hmac\"\n");
    let c = change(&kept, Some(r#"{"id":7}"#), upsert(r#"{"id":7,"name":"Ann"}"#));
    assert_eq!(&*c.key_columns, [Arc::from("id")]);
    assert_eq!(c.masked, [Arc::from("id")]);
    let Value::Text(hashed) = &c.key[0] else { panic!("{:?}", c.key) };
    assert_eq!(hashed.len(), 64, "hmac's full hex");
    assert_eq!(c.key[0], c.columns[0].value, "the key is the masked column");
    for mask in [
        "\"redact\"",
        "\"null\"",
        "{ type = \"partial\", keep_last = 1 }",
        "\"year\"",
        "{ type = \"hmac\", length = 8 }",
    ] {
        let p = pipeline("", &format!("[tables.columns.id]\nmask = {mask}\n"));
        let r = reject(&p, Some(r#"{"id":7}"#), Some(upsert(r#"{"id":7,"name":"Ann"}"#)));
        assert_eq!(reasons(&r), (Stage::Validate, vec!["id:mask_on_key".into()]), "{mask}");
        // The same mask on a column that is not the key applies (`year` needs a date).
        let c = change(&p, Some(r#"{"name":"Ann"}"#), upsert(r#"{"id":"1984-03-02","name":"Ann"}"#));
        assert_eq!(c.masked, [Arc::from("id")], "{mask}");
    }
}

#[test]
fn a_record_rejected_while_decoding_is_validate_only_for_missing_keys() {
    let missing = |column: Option<&str>| Reason { column: column.map(Arc::from), rule: Rule::MissingKey };
    assert_eq!(decode_stage(&[missing(None)]), Stage::Validate);
    assert_eq!(decode_stage(&[missing(Some("id")), missing(Some("site"))]), Stage::Validate);
    assert_eq!(decode_stage(&[missing(Some("id")), Reason::column("age".into(), Rule::Type)]), Stage::Decode);
    assert_eq!(decoded(Vec::new()), Ok(()));
    assert_eq!(
        decoded(vec![Reason::record(Rule::KeyJson)]),
        Err(Rejected { stage: Stage::Decode, reasons: vec![Reason::record(Rule::KeyJson)] })
    );
    // Through a record: a row without its configured key, and one that also fails a field.
    let p = pipeline("", "key = [\"id\"]\n[tables.columns.age]\ntype = \"int32\"\n");
    let r = reject(&p, None, Some(upsert(r#"{"name":"Ann","age":40}"#)));
    assert_eq!(reasons(&r), (Stage::Validate, vec!["id:missing_key".into()]));
    assert!(r.position.is_some() && r.table.is_some() && r.op == Some(Op::Create));
    let r = reject(&p, None, Some(upsert(r#"{"name":"Ann","age":"forty"}"#)));
    assert_eq!(reasons(&r), (Stage::Decode, vec!["age:type".into(), "id:missing_key".into()]));
    // No key at all: no configured key, no Kafka key.
    let r = reject(&pipeline("", ""), None, Some(upsert(r#"{"id":1}"#)));
    assert_eq!(reasons(&r), (Stage::Validate, vec!["-:missing_key".into()]));
}

#[test]
fn a_delete_without_before_deletes_by_the_kafka_key_alone() {
    let p = pipeline("", "");
    let c = change(&p, Some(r#"{"id":7}"#), delete("null"));
    assert!(c.deleted && !c.tombstone);
    assert_eq!(c.op, Op::Delete);
    assert_eq!(columns(&c), [("id".into(), Value::Int(7))]);
    assert_eq!(c.key, [Value::Int(7)]);
}

#[test]
fn an_upsert_without_after_is_row_image() {
    let p = pipeline("", "");
    let r = reject(&p, Some(r#"{"id":7}"#), Some(upsert("null")));
    assert_eq!(reasons(&r), (Stage::Decode, vec!["-:row_image".into()]));
}

#[test]
fn a_delete_keeps_its_key_whatever_the_rest_of_before_holds() {
    let p = pipeline("", "key = [\"id\"]\n[tables.columns.age]\ntype = \"int32\"\nrequired = true\n");
    // `age` fails to decode and would fail `required`: neither blocks the delete.
    let c = change(&p, None, delete(r#"{"id":7,"age":"forty","name":"Ann"}"#));
    assert!(c.deleted);
    assert_eq!(columns(&c), [("id".into(), Value::Int(7))], "only the key is written");
    // A `before` that is no object is no row image, but the Kafka key still names the row.
    let c = change(&pipeline("", ""), Some(r#"{"id":7}"#), delete("[1]"));
    assert_eq!(columns(&c), [("id".into(), Value::Int(7))]);
    // The key itself must still be good.
    let r = reject(&p, None, Some(delete(r#"{"id":null,"age":"forty"}"#)));
    assert_eq!(reasons(&r), (Stage::Validate, vec!["id:missing_key".into()]));
}

#[test]
fn truncate_and_message_ops_follow_their_policies() {
    for (op, key, skip, rule) in
        [("t", "on_truncate", SkipReason::Truncate, "truncate"), ("m", "on_message", SkipReason::Message, "message")]
    {
        let value: &str = &format!(r#"{{"op":"{op}","before":null,"after":null}}"#);
        let skipping = pipeline(&format!("{key} = \"skip\""), "");
        assert!(matches!(outcome(&skipping, TOPIC, None, Some(value)), Outcome::Skip(s) if s == skip), "{op}");
        let rejecting = pipeline(&format!("{key} = \"reject\""), "");
        let r = reject(&rejecting, None, Some(value));
        assert_eq!(reasons(&r), (Stage::Validate, vec![format!("-:{rule}")]));
        assert!(r.table.is_none() && r.position.is_none(), "rejected before routing");
        assert_eq!(r.op.map(Op::code), Some(op));
    }
    assert_eq!(pipeline("on_truncate = \"reject\"", "").op_policy(Op::Update).ok(), Some(Op::Update));
}

#[test]
fn unroutable_topics_follow_their_policy() {
    let value = upsert(r#"{"id":1}"#);
    let skipping = pipeline("unroutable = \"skip\"", "");
    let other = "src.db.dbo.other";
    assert!(matches!(outcome(&skipping, other, None, Some(value)), Outcome::Skip(SkipReason::Unroutable)));
    let rejecting = pipeline("unroutable = \"reject\"", "");
    let Outcome::Reject(r) = outcome(&rejecting, other, None, Some(value)) else { panic!("not rejected") };
    assert_eq!(reasons(&r), (Stage::Route, vec!["-:unroutable".into()]));
    assert_eq!((r.table.is_none(), r.op), (true, Some(Op::Create)));
}

#[test]
fn control_topics_and_payloads_come_first() {
    let p = pipeline("", "");
    let value = upsert(r#"{"id":1}"#);
    let heartbeat = outcome(&p, "__debezium-heartbeat.src", None, Some(value));
    assert!(matches!(heartbeat, Outcome::Skip(SkipReason::Heartbeat)));
    let transactions = outcome(&p, "src.transaction", None, Some(value));
    assert!(matches!(transactions, Outcome::Skip(SkipReason::Transaction)));
    // A routed table named `transaction` is data.
    let routed = Pipeline::new(
        Arc::new(Config::parse("[[tables]]\ntopic = \"src.transaction\"\ntarget = \"t\"\n", "t.toml").unwrap()),
        None,
    )
    .unwrap();
    assert!(matches!(outcome(&routed, "src.transaction", Some(r#"{"id":1}"#), Some(value)), Outcome::Change(_)));
    let invalid = p.transform_record(&record(TOPIC), Payload::Absent, Payload::Invalid, &mut Caches::default(), NOW);
    let Err(Stop::Reject(r)) = invalid else { panic!("not rejected") };
    assert_eq!(reasons(&r), (Stage::Decode, vec!["-:base64".into()]));
    let r = reject(&p, None, Some("{not json"));
    assert_eq!(reasons(&r), (Stage::Decode, vec!["-:json".into()]));
    let schema_change = r#"{"source":{},"databaseName":"db","ddl":null,"tableChanges":[]}"#;
    assert!(matches!(outcome(&p, TOPIC, None, Some(schema_change)), Outcome::Skip(SkipReason::SchemaChange)));
}

#[test]
fn a_malformed_source_position_is_rejected_at_its_table_without_a_position() {
    let p = pipeline("", "");
    let value = r#"{"op":"c","before":null,"after":{"id":1},
        "source":{"connector":"sqlserver","ts_ms":1,"commit_lsn":"not-an-lsn","change_lsn":null,"event_serial_no":1}}"#;
    let r = reject(&p, Some(r#"{"id":1}"#), Some(value));
    assert_eq!(reasons(&r), (Stage::Decode, vec!["-:source_position".into()]));
    assert_eq!(r.table.as_ref().map(|t| t.target.to_string()), Some("public.patients".into()));
    assert_eq!((r.op, r.position.is_none()), (Some(Op::Create), true));
}

#[test]
fn an_upsert_without_a_masked_column_is_unknown_column() {
    let p = pipeline("", "[tables.columns.ssn]\nmask = \"hmac\"\n[tables.columns.dob]\nmask = \"year\"\n");
    let r = reject(&p, Some(r#"{"id":1}"#), Some(upsert(r#"{"id":1,"name":"Ann"}"#)));
    assert_eq!(reasons(&r), (Stage::Validate, vec!["dob:unknown_column".into(), "ssn:unknown_column".into()]));
    // A delete writes no masked column: it is not asked for.
    assert!(change(&p, Some(r#"{"id":1}"#), delete(r#"{"id":1}"#)).deleted);
    // A null value is a value.
    let c = change(&p, Some(r#"{"id":1}"#), upsert(r#"{"id":1,"ssn":null,"dob":null}"#));
    assert_eq!(c.masked.len(), 2);
}

#[test]
fn rule_failures_are_listed_by_column_each_column_in_rule_order() {
    let table = "[tables.columns.zeta]\nrequired = true\n\
                 [tables.columns.alpha]\nmax_bytes = 1\npattern = '^\\d$'\n\
                 [tables.columns.mid]\none_of = [\"A\"]\n\
                 [tables.columns.fine]\nrequired = true\n";
    let p = pipeline("", table);
    let r = reject(&p, Some(r#"{"id":1}"#), Some(upsert(r#"{"id":1,"alpha":"xy","mid":"B","fine":"ok"}"#)));
    assert_eq!(
        reasons(&r),
        (
            Stage::Validate,
            vec!["alpha:max_bytes".into(), "alpha:pattern".into(), "mid:one_of".into(), "zeta:required".into()]
        )
    );
    assert!(r.position.is_some(), "rejected after the position");
    // Deletes are not validated.
    assert!(change(&p, Some(r#"{"id":1}"#), delete(r#"{"id":1,"alpha":"xy"}"#)).deleted);
}

#[test]
fn detect_rejects_or_masks_per_policy() {
    let value = upsert(r#"{"id":1,"notes":"SSN 219-09-9999","name":"Ann"}"#);
    let rejecting = pipeline("", "[tables.detect]\npolicy = \"reject\"\n");
    let r = reject(&rejecting, Some(r#"{"id":1}"#), Some(value));
    assert_eq!(reasons(&r), (Stage::Validate, vec!["notes:detected_ssn".into()]));
    let masking = pipeline("", "[tables.detect]\npolicy = \"mask\"\nmask = \"redact\"\n");
    let c = change(&masking, Some(r#"{"id":1}"#), value);
    assert_eq!(c.detected, [(Arc::from("notes"), SensitiveKind::Ssn)]);
    assert_eq!(c.masked, [Arc::from("notes")]);
    assert_eq!(
        columns(&c),
        [("id".into(), Value::Int(1)), ("notes".into(), text("REDACTED")), ("name".into(), text("Ann"))]
    );
    // An exempt column is not scanned.
    let exempt = pipeline("", "[tables.detect]\npolicy = \"reject\"\nexempt = [\"notes\"]\n");
    assert!(change(&exempt, Some(r#"{"id":1}"#), value).detected.is_empty());
}

#[test]
fn tombstones_delete_their_kafka_key_or_say_why_not() {
    let p = pipeline("", "");
    let Outcome::Change(c) = outcome(&p, TOPIC, Some(r#"{"id":7}"#), None) else { panic!("not a change") };
    assert!(c.deleted && c.tombstone && !c.position.is_known());
    assert_eq!((c.op, c.source_ts_ms, columns(&c)), (Op::Delete, None, vec![("id".into(), Value::Int(7))]));
    // No key: no row to address.
    assert!(matches!(outcome(&p, TOPIC, None, None), Outcome::Skip(SkipReason::Tombstone)));
    let skipping = pipeline("", "tombstones = \"skip\"\n");
    assert!(matches!(outcome(&skipping, TOPIC, Some(r#"{"id":7}"#), None), Outcome::Skip(SkipReason::Tombstone)));
    // A configured key the Kafka key does not carry.
    let keyed = pipeline("", "key = [\"email\"]\n");
    let Outcome::Reject(r) = outcome(&keyed, TOPIC, Some(r#"{"id":7}"#), None) else { panic!("not rejected") };
    assert_eq!(reasons(&r), (Stage::Validate, vec!["email:tombstone_key".into()]));
    assert_eq!((r.op, r.position.is_none()), (Some(Op::Delete), true));
    // The stage of a tombstone's other reasons.
    let other = vec![Reason::column("id".into(), Rule::MissingKey), Reason::column("id".into(), Rule::MaskOnKey)];
    assert_eq!(tombstone_rejected(other.clone()), Rejected { stage: Stage::Decode, reasons: other });
}
