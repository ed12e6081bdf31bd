//! The steps of one record, each a function that returns what it found or how the record
//! ends there: [`Stop`] (a skip, or a reject with the record's coordinates) for the steps up
//! to the source position, [`Rejected`] (a stage and reasons) for the row steps after it,
//! which [`Pipeline::transform_record`] places at the record's table, op and position.
//!
//! The order is the module table of `transform/mod.rs`; `transform_record`, `row` and
//! `tombstone` read as those lists.

use std::sync::Arc;

use super::{Caches, Pipeline};
use crate::batch::Payload;
use crate::config::{NulPolicy, OpPolicy, TableConfig, TombstonePolicy, UnroutablePolicy};
use crate::debezium::{self, ColumnNames, ColumnType, Envelope, Key, Message, Op, Position, SchemaCache};
use crate::detect::{Detect, DetectPolicy, SensitiveKind};
use crate::event::KafkaRecord;
use crate::outcome::{Change, Column, KafkaOrigin, Outcome, Reason, Reject, SkipReason, Stage};
use crate::rule::Rule;
use crate::validate;
use crate::value::Value;

/// How a record ends before it becomes a change: skipped, or rejected.
#[derive(Debug)]
pub(super) enum Stop {
    Skip(SkipReason),
    Reject(Reject),
}

impl From<Stop> for Outcome<'_> {
    fn from(stop: Stop) -> Self {
        match stop {
            Stop::Skip(reason) => Outcome::Skip(reason),
            Stop::Reject(reject) => Outcome::Reject(reject),
        }
    }
}

/// A reject before the record's coordinates are attached: the stage and every reason.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Rejected {
    pub(super) stage: Stage,
    pub(super) reasons: Vec<Reason>,
}

impl Rejected {
    /// Rejected by `Validate` (the data decoded; a check refused it).
    fn validate(reasons: Vec<Reason>) -> Rejected {
        Rejected { stage: Stage::Validate, reasons }
    }

    /// The reject, with what is known of the record: its table, op and source position.
    fn at(self, table: Option<&Arc<TableConfig>>, op: Option<Op>, position: Option<Position>) -> Stop {
        let Rejected { stage, reasons } = self;
        Stop::Reject(Reject { stage, table: table.cloned(), op, position, reasons })
    }
}

/// A reject of the record as a whole for `rule`, before anything but the op is known.
fn record_reject(stage: Stage, op: Option<Op>, rule: Rule) -> Stop {
    Rejected { stage, reasons: vec![Reason::record(rule)] }.at(None, op, None)
}

/// What the row steps make of a record: everything of its change but the event's evidence.
#[derive(Debug)]
pub(super) struct Row<'b> {
    pub(super) key_columns: Arc<[Arc<str>]>,
    /// The row as it will be written: masked, a delete's reduced to its key.
    pub(super) columns: Vec<Column<'b>>,
    pub(super) masked: Vec<Arc<str>>,
    pub(super) detected: Vec<(Arc<str>, SensitiveKind)>,
}

impl<'b> Row<'b> {
    /// The change this row makes in `table`, from the Kafka record at `kafka`: of a change
    /// event (its op, source position and envelope), or of a tombstone (`None`: a delete
    /// without position, commit time or schema, which Kafka order places).
    fn into_change(
        self,
        table: Arc<TableConfig>,
        kafka: KafkaOrigin,
        event: Option<(Op, Position, &Envelope<'_>)>,
    ) -> Change<'b> {
        let (op, tombstone, position, source_ts_ms, row_schema) = match event {
            Some((op, position, envelope)) => (
                op,
                false,
                position,
                envelope.source.as_ref().and_then(|s| s.ts_ms),
                envelope.schema.as_ref().and_then(|s| s.row.clone()),
            ),
            None => (Op::Delete, true, Position::none(), None, None),
        };
        Change {
            key: key_values(&self.key_columns, &self.columns),
            table,
            op,
            deleted: op == Op::Delete,
            tombstone,
            position,
            source_ts_ms,
            kafka,
            key_columns: self.key_columns,
            columns: self.columns,
            masked: self.masked,
            detected: self.detected,
            row_schema,
            filled_from: None,
        }
    }
}

/// No key columns: the reasons already say why, and the record is rejected.
fn no_key() -> Arc<[Arc<str>]> {
    Arc::from(Vec::new())
}

impl Pipeline {
    /// One record's steps, in order: the first that skips or rejects it decides its outcome.
    pub(super) fn transform_record<'b>(
        &self,
        record: &KafkaRecord<'_>,
        key: Payload<'b>,
        value: Payload<'b>,
        caches: &mut Caches,
        now_micros: i64,
    ) -> Result<Change<'b>, Stop> {
        self.control_topic(&record.topic)?;
        let Some(bytes) = payload(value)? else { return self.tombstone(record, key, caches) };
        let envelope = decode(bytes, &mut caches.schemas)?;
        let op = self.op_policy(envelope.op)?;
        let table = self.routed(&record.topic, op, caches)?;
        let position = position(&envelope, &table, op)?;
        match self.row(&envelope, &table, op, key, caches, now_micros) {
            Ok(row) => Ok(row.into_change(table, caches.origin(record), Some((op, position, &envelope)))),
            Err(rejected) => Err(rejected.at(Some(&table), Some(op), Some(position))),
        }
    }

    /// The row steps of a change event: its image, its key, a delete's reduction to the key
    /// (or an upsert's column names), the reasons so far; for an upsert, the masked columns
    /// present and the column rules; then detection and masks.
    pub(super) fn row<'b>(
        &self,
        envelope: &Envelope<'b>,
        table: &TableConfig,
        op: Op,
        key: Payload<'b>,
        caches: &mut Caches,
        now_micros: i64,
    ) -> Result<Row<'b>, Rejected> {
        let deleted = op == Op::Delete;
        let (mut columns, mut reasons) = (Vec::new(), Vec::new());
        decode_image(envelope, table, deleted, self.config.pipeline.nul, &mut caches.names, &mut columns, &mut reasons);
        let key_columns = self.key_columns(table, key, &mut columns, caches, &mut reasons);
        if deleted {
            keep_the_key(key_columns.as_deref(), &mut columns, &mut reasons);
        } else {
            debezium::check_column_names(&columns, &mut reasons);
        }
        decoded(reasons)?;
        let key_columns = key_columns.unwrap_or_else(no_key);
        if !deleted {
            masked_columns_present(table, &columns)?;
            rules(table, &columns, now_micros)?;
        }
        let detected = detect(table, &columns)?;
        let masked = self.mask(table, &key_columns, &mut columns, &detected).map_err(Rejected::validate)?;
        Ok(Row { key_columns, columns, masked, detected })
    }

    /// A record with a null value. Per its table's `tombstones` policy it is skipped, or it is a
    /// delete of its key that has no source position (Kafka order places it). Without a key it
    /// addresses no row and is skipped. Its steps: the route, the key (from the Kafka key
    /// alone), detection, masks; a reject is [`tombstone_rejected`].
    pub(super) fn tombstone<'b>(
        &self,
        record: &KafkaRecord<'_>,
        key: Payload<'b>,
        caches: &mut Caches,
    ) -> Result<Change<'b>, Stop> {
        let table = match self.route(&record.topic, caches) {
            Some(table) if table.tombstones == TombstonePolicy::Delete && key != Payload::Absent => table,
            _ => return Err(Stop::Skip(SkipReason::Tombstone)),
        };
        let at = |rejected: Rejected| rejected.at(Some(&table), Some(Op::Delete), None);
        let (mut columns, mut reasons) = (Vec::new(), Vec::new());
        let key_columns = self.key_columns(&table, key, &mut columns, caches, &mut reasons).unwrap_or_else(no_key);
        let detected = detect(&table, &columns).map_err(at)?;
        if !reasons.is_empty() {
            return Err(at(tombstone_rejected(reasons)));
        }
        let masked = self.mask(&table, &key_columns, &mut columns, &detected).map_err(|r| at(tombstone_rejected(r)))?;
        let row = Row { key_columns, columns, masked, detected };
        Ok(row.into_change(table, caches.origin(record), None))
    }

    /// Step: Debezium's own topics carry no rows. Heartbeats; and the transaction metadata
    /// topic `<prefix>.transaction`, unless a configured table routes it: a source table named
    /// `transaction` is data (its BEGIN/END messages are still recognised by their content,
    /// in [`decode`]).
    pub(super) fn control_topic(&self, topic: &str) -> Result<(), Stop> {
        if topic.starts_with("__debezium-heartbeat") {
            return Err(Stop::Skip(SkipReason::Heartbeat));
        }
        if topic.ends_with(".transaction") && !self.config.tables.iter().any(|t| t.topic.matches(topic)) {
            return Err(Stop::Skip(SkipReason::Transaction));
        }
        Ok(())
    }

    /// Step: ops `t` (truncate) and `m` (logical decoding message) load nothing; per
    /// `on_truncate`/`on_message` they are skipped or rejected (`truncate`, `message`). Any
    /// other op passes.
    pub(super) fn op_policy(&self, op: Op) -> Result<Op, Stop> {
        let pipeline = &self.config.pipeline;
        let (policy, skip, rule) = match op {
            Op::Truncate => (pipeline.on_truncate, SkipReason::Truncate, Rule::Truncate),
            Op::Message => (pipeline.on_message, SkipReason::Message, Rule::Message),
            _ => return Ok(op),
        };
        Err(match policy {
            OpPolicy::Skip => Stop::Skip(skip),
            OpPolicy::Reject => record_reject(Stage::Validate, Some(op), rule),
        })
    }

    /// Step: the table the record's topic routes to; a topic no table routes is skipped or
    /// rejected (`unroutable`) per `unroutable`.
    pub(super) fn routed(&self, topic: &str, op: Op, caches: &mut Caches) -> Result<Arc<TableConfig>, Stop> {
        self.route(topic, caches).ok_or_else(|| match self.config.pipeline.unroutable {
            UnroutablePolicy::Skip => Stop::Skip(SkipReason::Unroutable),
            UnroutablePolicy::Reject => record_reject(Stage::Route, Some(op), Rule::Unroutable),
        })
    }

    /// Step: the key columns (the config's `key`, else the Kafka key's fields), each given a
    /// non-null value in `columns`, from the Kafka key when the row image lacks it. Adds a
    /// reason for a key that cannot be read or a key column without a value; `None` when there
    /// are no key columns at all (a reason says why).
    pub(super) fn key_columns<'b>(
        &self,
        table: &TableConfig,
        key: Payload<'b>,
        columns: &mut Vec<Column<'b>>,
        caches: &mut Caches,
        reasons: &mut Vec<Reason>,
    ) -> Option<Arc<[Arc<str>]>> {
        let kafka_key = match key {
            Payload::Bytes(bytes) => match debezium::decode_key(bytes, &mut caches.schemas) {
                Ok(key) => Some(key),
                Err(_) if table.key.is_some() => None,
                Err(_) => {
                    reasons.push(Reason::record(Rule::KeyJson));
                    return None;
                }
            },
            Payload::Invalid if table.key.is_none() => {
                reasons.push(Reason::record(Rule::KeyBase64));
                return None;
            }
            // An Avro key that could not be read: its rule, whether or not the config names
            // the key columns (the record's key cannot be trusted either way).
            Payload::Rejected(rule) => {
                reasons.push(Reason::record(rule));
                return None;
            }
            _ => None,
        };
        let key_columns: Arc<[Arc<str>]> = match (&table.key, &kafka_key) {
            (Some(key), _) => key.clone(),
            (None, Some(Key::Struct { fields, schema })) if !fields.is_empty() => {
                let row = schema.as_ref().and_then(|s| s.row.as_deref());
                let mut columns = Vec::with_capacity(fields.len());
                for (i, (name, _)) in fields.iter().enumerate() {
                    let source = match row.and_then(|r| r.field(name, i)) {
                        Some(f) => f.column.clone(),
                        None => caches.names.lowercase(name),
                    };
                    // Renamed as the row's columns are. A key field the mapping drops cannot
                    // be left out (a row needs its key) nor kept (it was dropped, perhaps for
                    // what it holds): the record is rejected, `missing_key` on that field.
                    match table.change_schema.target_name(&source) {
                        Some(column) => columns.push(column),
                        None => {
                            reasons.push(Reason::column(source, Rule::MissingKey));
                            return None;
                        }
                    }
                }
                columns.into()
            }
            _ => {
                reasons.push(Reason::record(Rule::MissingKey));
                return None;
            }
        };
        for name in key_columns.iter() {
            if let Some(column) = columns.iter().find(|c| &c.name == name) {
                if column.value.is_null() {
                    reasons.push(Reason::column(name.clone(), Rule::MissingKey));
                } else if column.value.is_unavailable() {
                    reasons.push(Reason::column(name.clone(), Rule::UnavailableValue));
                }
                continue;
            }
            match from_kafka_key(
                name,
                kafka_key.as_ref(),
                table,
                &key_columns,
                self.config.pipeline.nul,
                &mut caches.names,
            ) {
                Some(Ok(value)) if !value.is_null() => columns.push(Column { name: name.clone(), value }),
                Some(Err(rule)) => reasons.push(Reason::column(name.clone(), rule)),
                _ => reasons.push(Reason::column(name.clone(), Rule::MissingKey)),
            }
        }
        Some(key_columns)
    }

    /// Step: apply the table's masks to `columns` (after validation, before anything is
    /// written or shown), and `[tables.detect]`'s mask to the `detected` columns; the masked
    /// column names. A mask that cannot keep keys distinct on a key column (`mask_on_key`), or
    /// that cannot apply to a value (`mask_key`, `mask_year`), is a reason; every column is
    /// still tried, so that the reject lists them all.
    pub(super) fn mask(
        &self,
        table: &TableConfig,
        key_columns: &[Arc<str>],
        columns: &mut [Column<'_>],
        detected: &[(Arc<str>, SensitiveKind)],
    ) -> Result<Vec<Arc<str>>, Vec<Reason>> {
        let mut masked = Vec::new();
        let mut reasons = Vec::new();
        let detect_mask = match &table.detect {
            Some(Detect { policy: DetectPolicy::Mask(mask), .. }) => Some(mask),
            _ => None,
        };
        for column in columns.iter_mut() {
            let configured = table.column(&column.name).and_then(|c| c.mask.as_ref());
            let found = || detected.iter().any(|(name, _)| *name == column.name);
            let Some(mask) = configured.or_else(|| detect_mask.filter(|_| found())) else { continue };
            // Config refuses such a mask on a declared `key`; keys taken from the Kafka key are
            // only known here. Masking one would merge distinct keys (or make it NULL).
            if !mask.keeps_keys_distinct() && key_columns.contains(&column.name) {
                reasons.push(Reason::column(column.name.clone(), Rule::MaskOnKey));
                continue;
            }
            if column.value.is_unavailable() {
                continue;
            }
            let raw = std::mem::replace(&mut column.value, Value::Null);
            match self.masker.apply(mask, raw) {
                Ok(value) => column.value = value,
                Err(e) => reasons.push(Reason::column(column.name.clone(), e.rule())),
            }
            masked.push(column.name.clone());
        }
        if reasons.is_empty() { Ok(masked) } else { Err(reasons) }
    }
}

/// Step: the record's value bytes. A null value is `None` (the tombstone path); one that is
/// not base64 is rejected (`base64`).
pub(super) fn payload(value: Payload<'_>) -> Result<Option<&[u8]>, Stop> {
    match value {
        Payload::Absent => Ok(None),
        Payload::Invalid => Err(record_reject(Stage::Decode, None, Rule::Base64)),
        Payload::Rejected(rule) => Err(record_reject(Stage::Decode, None, rule)),
        Payload::Bytes(bytes) => Ok(Some(bytes)),
    }
}

/// Step: the Debezium message in `bytes`. A change event goes on; schema-change, transaction
/// and heartbeat messages are skipped; anything else is rejected with its `DecodeError` rule.
pub(super) fn decode<'b>(bytes: &'b [u8], schemas: &mut SchemaCache) -> Result<Envelope<'b>, Stop> {
    match debezium::decode_message(bytes, schemas) {
        Ok(Message::Change(envelope)) => Ok(envelope),
        Ok(Message::SchemaChange) => Err(Stop::Skip(SkipReason::SchemaChange)),
        Ok(Message::Transaction) => Err(Stop::Skip(SkipReason::Transaction)),
        Ok(Message::Heartbeat) => Err(Stop::Skip(SkipReason::Heartbeat)),
        Err(e) => Err(record_reject(Stage::Decode, None, e.rule())),
    }
}

/// Step: the event's source position (`debezium::position`); a malformed one is rejected
/// (`source_position`) at its table and op.
pub(super) fn position(envelope: &Envelope<'_>, table: &Arc<TableConfig>, op: Op) -> Result<Position, Stop> {
    debezium::position(envelope.source.as_ref()).map_err(|e| {
        Rejected { stage: Stage::Decode, reasons: vec![Reason::record(e.rule())] }.at(Some(table), Some(op), None)
    })
}

/// Step: decode the op's row image into `columns`: `before` for a delete, `after` otherwise.
/// Every field that fails adds a reason. A delete without `before` still deletes by key (its
/// key comes from the Kafka key); an upsert without `after` has no row (`row_image`).
pub(super) fn decode_image<'b>(
    envelope: &Envelope<'b>,
    table: &TableConfig,
    deleted: bool,
    nul: NulPolicy,
    names: &mut ColumnNames,
    columns: &mut Vec<Column<'b>>,
    reasons: &mut Vec<Reason>,
) {
    match if deleted { envelope.before } else { envelope.after } {
        Some(image) => {
            let row_schema = envelope.schema.as_ref().and_then(|s| s.row.as_deref());
            debezium::decode_row(image, row_schema, table, nul, names, columns, reasons);
        }
        None if deleted => {}
        None => reasons.push(Reason::record(Rule::RowImage)),
    }
}

/// Step, for a delete: keep only its key. A delete writes no values: the target keeps the
/// row's stored values (soft) or removes it (hard). PostgreSQL's default replica identity
/// sends nothing else, and the rest of a `before` image must not block the delete: reasons
/// of other columns, and `row_image` (a `before` that is no object), are dropped.
pub(super) fn keep_the_key(key_columns: Option<&[Arc<str>]>, columns: &mut Vec<Column<'_>>, reasons: &mut Vec<Reason>) {
    let is_key = |name: &Arc<str>| key_columns.is_some_and(|k| k.contains(name));
    columns.retain(|c| is_key(&c.name));
    reasons.retain(|r| r.column.as_ref().is_none_or(is_key) && r.rule != Rule::RowImage);
}

/// Step: a record with reasons after decoding its row and key is rejected, by
/// [`decode_stage`].
pub(super) fn decoded(reasons: Vec<Reason>) -> Result<(), Rejected> {
    if reasons.is_empty() {
        return Ok(());
    }
    Err(Rejected { stage: decode_stage(&reasons), reasons })
}

/// The stage of a record rejected while decoding: `Validate` when every reason is
/// `missing_key` (the row decoded, but lacks the configured key), `Decode` otherwise.
pub(super) fn decode_stage(reasons: &[Reason]) -> Stage {
    if reasons.iter().all(|r| r.rule == Rule::MissingKey) { Stage::Validate } else { Stage::Decode }
}

/// Step, for an upsert: every column the table's config masks must be in the row. A masked
/// column the row does not have is a misspelling until shown otherwise (`unknown_column`): the
/// mask would guard nothing while the real column loads raw. (Debezium sends every column of
/// the row image, nulls included; a column with only rules or a type hint guards nothing, and
/// `required` catches its absence.)
pub(super) fn masked_columns_present(table: &TableConfig, columns: &[Column<'_>]) -> Result<(), Rejected> {
    let mut reasons = Vec::new();
    for (name, column) in &table.columns {
        if column.mask.is_some() && !columns.iter().any(|c| &c.name == name) {
            reasons.push(Reason::column(name.clone(), Rule::UnknownColumn));
        }
    }
    by_column(reasons)
}

/// Step, for an upsert: the column rules of the config (`validate::check`) on the raw values.
/// A column the row lacks is checked as null; one the source did not send
/// ([`Value::Unavailable`]) is not checked: the stored value, checked when it was stored,
/// stays.
pub(super) fn rules(table: &TableConfig, columns: &[Column<'_>], now_micros: i64) -> Result<(), Rejected> {
    let (mut failed, mut reasons) = (Vec::new(), Vec::new());
    for (name, column_config) in &table.columns {
        if column_config.rules.is_empty() {
            continue;
        }
        let value = columns.iter().find(|c| &c.name == name).map_or(&Value::Null, |c| &c.value);
        if value.is_unavailable() {
            continue;
        }
        validate::check(&column_config.rules, value, now_micros, &mut failed);
        reasons.extend(failed.drain(..).map(|rule| Reason::column(name.clone(), rule)));
    }
    by_column(reasons)
}

/// `Validate` rejects with `reasons` sorted by column (the config's columns come in no
/// order; a column's own rules keep theirs), or `Ok` when there are none.
fn by_column(mut reasons: Vec<Reason>) -> Result<(), Rejected> {
    if reasons.is_empty() {
        return Ok(());
    }
    reasons.sort_by(|a, b| a.column.cmp(&b.column));
    Err(Rejected::validate(reasons))
}

/// Step: `[tables.detect]`. Text columns without a configured mask and not exempt that hold a
/// sensitive-looking value, with the kind found (empty when the table does not detect). Under
/// `policy = "reject"` a finding rejects the record (`detected_<kind>`, in column order).
pub(super) fn detect(table: &TableConfig, columns: &[Column<'_>]) -> Result<Vec<(Arc<str>, SensitiveKind)>, Rejected> {
    let Some(detect) = &table.detect else { return Ok(Vec::new()) };
    let detected: Vec<(Arc<str>, SensitiveKind)> = columns
        .iter()
        .filter(|c| !detect.exempt.contains(&c.name) && table.column(&c.name).is_none_or(|cc| cc.mask.is_none()))
        .filter_map(|c| match &c.value {
            Value::Text(text) => detect.scan(text).map(|kind| (c.name.clone(), kind)),
            _ => None,
        })
        .collect();
    if !detected.is_empty() && matches!(detect.policy, DetectPolicy::Reject) {
        let reasons = detected.iter().map(|(column, kind)| Reason::column(column.clone(), kind.rule())).collect();
        return Err(Rejected::validate(reasons));
    }
    Ok(detected)
}

/// A tombstone's reject. When it lacks only key values, the Kafka key does not carry the
/// table's `key`: `Validate` with every reason renamed `tombstone_key` (see
/// `follow_deletes`). Anything else (a key that does not decode, a mask that cannot apply) is
/// `Decode`.
pub(super) fn tombstone_rejected(reasons: Vec<Reason>) -> Rejected {
    if reasons.iter().all(|r| r.rule == Rule::MissingKey) {
        let reasons = reasons.into_iter().map(|r| Reason { rule: Rule::TombstoneKey, ..r }).collect();
        return Rejected::validate(reasons);
    }
    Rejected { stage: Stage::Decode, reasons }
}

/// The values of `key_columns` in key order (a key column is always in `columns` by now).
fn key_values<'b>(key_columns: &[Arc<str>], columns: &[Column<'b>]) -> Vec<Value<'b>> {
    key_columns.iter().map(|k| columns.iter().find(|c| &c.name == k).map_or(Value::Null, |c| c.value.clone())).collect()
}

/// A key column's value from the Kafka key, typed by the key schema or the column hint.
fn from_kafka_key<'b>(
    column: &str,
    key: Option<&Key<'b>>,
    table: &TableConfig,
    key_columns: &[Arc<str>],
    nul: NulPolicy,
    names: &mut ColumnNames,
) -> Option<Result<Value<'b>, Rule>> {
    let hint = || table.column(column).and_then(|c| c.type_hint.clone()).unwrap_or(ColumnType::Untyped);
    // The Kafka key names the column as the source does (before `[tables.change_schema]`).
    let source = table.change_schema.source_name(column);
    let value = match key? {
        Key::Struct { fields, schema } => {
            let row = schema.as_ref().and_then(|s| s.row.as_deref());
            let (i, (name, raw)) =
                fields.iter().enumerate().find(|(_, (name, _))| &*names.lowercase(name) == source)?;
            let ty = row.and_then(|r| r.field(name, i)).map_or_else(hint, |f| f.ty.clone());
            debezium::convert(raw, &ty, nul, None).map_err(|e| e.rule())
        }
        // A bare key can only stand for a single-column key.
        Key::Primitive(raw) if key_columns.len() == 1 => {
            debezium::convert(raw, &hint(), nul, None).map_err(|e| e.rule())
        }
        Key::Primitive(_) => return None,
    };
    Some(value.and_then(|value| match table.change_schema.cast_of(column) {
        Some(to) => crate::cast::cast(value, to).ok_or(Rule::Cast),
        None => Ok(value),
    }))
}
