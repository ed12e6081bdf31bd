//! Collapse a batch to the latest change per primary key and target table. Pure (no I/O),
//! and it drops no change: each ends latest, superseded, rejected or skipped.
//!
//! A key's changes are taken in batch order (topic, partition, offset) and each is compared
//! with the latest so far by [`compare`]: a provably newer change takes its place, a provably
//! older (or repeated) one is superseded, and one whose order cannot be known is rejected
//! (`position_regressed`), exactly as the loader treats a change against the stored row. A
//! tombstone after its own delete adds nothing and is skipped.
//!
//! The superseded changes are kept with the latest, latest first: they are superseded only if
//! it loads. When the loader has to reject the latest change (a value the target refuses, say),
//! it falls back to the next one, so that the warehouse holds the latest change that *can* be
//! stored. An earlier change the target would refuse is rejected on its own, never counted as
//! superseded. A column the latest change could not send (Debezium's unavailable-value
//! placeholder) takes the value of the latest earlier change of the batch that sent it, and a
//! soft delete keeps the values the batch's stored changes left (see `filled`); the columns
//! no change of the batch sent keep the target's value.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::config::{DeleteMode, TableConfig, TableName};
use crate::debezium::{Order, compare};
use crate::outcome::{Change, FillSource, Outcome};
use crate::value::Value;

/// A change and the record it came from.
#[derive(Debug, Clone, Copy)]
pub struct Planned<'r, 'b> {
    /// The record's index in the batch: its position in `MskEvent::records_in_order` and
    /// `DecodedBatch::records`, the same as its outcome's in the outcomes given to [`plan`].
    pub index: usize,
    /// The change the record carried.
    pub change: &'r Change<'b>,
}

/// The change to apply for one key, and the earlier changes of that key in the batch.
#[derive(Debug, Clone)]
pub struct PlannedRow<'r, 'b> {
    /// The batch index of the record of the latest change (see [`Planned::index`]).
    pub index: usize,
    /// The change as the batch leaves it: see `filled`.
    pub change: Cow<'r, Change<'b>>,
    /// The change sent a placeholder for a column whose value an earlier delete of its batch
    /// makes unknown: it cannot be stored (`unavailable_value`).
    pub unknown: bool,
    /// The change as its record carried it.
    pub received: &'r Change<'b>,
    /// Earlier changes of the same key, latest first.
    pub earlier: Vec<Planned<'r, 'b>>,
}

impl<'r, 'b> PlannedRow<'r, 'b> {
    fn new(latest: Planned<'r, 'b>, earlier: Vec<Planned<'r, 'b>>) -> PlannedRow<'r, 'b> {
        PlannedRow {
            index: latest.index,
            change: Cow::Borrowed(latest.change),
            unknown: false,
            received: latest.change,
            earlier,
        }
        .prepared(&|_| true)
    }

    /// This row filled from the earlier changes of its batch that `storable` accepts (the
    /// loader's checks against the target); see `filled`.
    pub fn prepared(&self, storable: &dyn Fn(&Change<'_>) -> bool) -> PlannedRow<'r, 'b> {
        let (change, unknown) = match filled(self.received, &self.earlier, storable) {
            Ok(change) => (change, false),
            Err(Unknown) => (Cow::Borrowed(self.received), true),
        };
        PlannedRow { change, unknown, ..self.clone() }
    }

    /// The row to try when this one cannot be stored: the next-latest change of the key that
    /// `storable` accepts (the others are rejected on their own).
    pub fn fall_back(&self, storable: &dyn Fn(&Change<'_>) -> bool) -> Option<PlannedRow<'r, 'b>> {
        let at = self.earlier.iter().position(|e| storable(e.change))?;
        Some(PlannedRow::new(self.earlier[at], self.earlier[at + 1..].to_vec()))
    }
}

/// `change` as the batch leaves it, as if its earlier changes (`earlier`, latest first) had
/// been applied one by one. Linear in the changes times the columns.
///
/// - An upsert's unavailable column takes the value of the latest earlier change that sent
///   one — the column's true value, even when the target refuses that change for another
///   column (which is then rejected on its own). The row is checked as a whole afterwards: a
///   value that does not fit rejects it naming the column, never is it given an older value.
///   A delete in between makes the value unknown (`Err`): the stored row predates it.
/// - A soft delete keeps the row's values as the stored changes left them: each non-key column
///   takes the latest value an earlier change `storable` accepts sent (a placeholder keeps the
///   stored value). A create and its delete in one batch leave a deleted row with the create's
///   values. A hard delete removes the row and needs no values.
fn filled<'r, 'b>(
    change: &'r Change<'b>,
    earlier: &[Planned<'r, 'b>],
    storable: &dyn Fn(&Change<'_>) -> bool,
) -> Result<Cow<'r, Change<'b>>, Unknown> {
    let wants_values = if change.deleted {
        change.table.delete_mode == DeleteMode::Soft && !earlier.is_empty()
    } else {
        change.columns.iter().any(|c| c.value.is_unavailable())
    };
    if !wants_values {
        return Ok(Cow::Borrowed(change));
    }
    let mut owned = change.clone();
    if change.deleted {
        // A change the target refuses does not land; nor does an upsert whose placeholder
        // follows a delete of the batch with no value sent in between (it is unknown).
        let mut stored: Vec<bool> = earlier.iter().map(|e| storable(e.change)).collect();
        let mut sent_since_delete: Option<HashSet<&Arc<str>>> = None;
        for (e, stored) in earlier.iter().zip(stored.iter_mut()).rev() {
            if e.change.deleted {
                sent_since_delete = Some(HashSet::new());
                continue;
            }
            if let Some(sent) = sent_since_delete.as_mut() {
                if e.change.columns.iter().any(|c| c.value.is_unavailable() && !sent.contains(&c.name)) {
                    *stored = false;
                }
                sent.extend(e.change.columns.iter().filter(|c| !c.value.is_unavailable()).map(|c| &c.name));
            }
        }
        let mut seen: HashSet<&Arc<str>> = change.columns.iter().map(|c| &c.name).collect();
        // Latest first: the first value met for a column is the row's last one, unless it is
        // a placeholder and an earlier change sent the value.
        let mut placeholders: HashMap<&Arc<str>, usize> = HashMap::new();
        let mut oldest = None;
        for (k, e) in earlier.iter().enumerate().filter(|(k, e)| stored[*k] && !e.change.deleted) {
            for column in &e.change.columns {
                if seen.contains(&column.name) {
                    continue;
                }
                if column.value.is_unavailable() {
                    placeholders.entry(&column.name).or_insert_with(|| {
                        owned.columns.push(column.clone());
                        owned.columns.len() - 1
                    });
                    continue;
                }
                if let Some(at) = placeholders.remove(&column.name) {
                    owned.columns[at].value = column.value.clone();
                } else {
                    owned.columns.push(column.clone());
                }
                seen.insert(&column.name);
                oldest = Some(k);
            }
        }
        owned.filled_from = oldest.map(|k| fill_source(earlier[k].change));
        return Ok(Cow::Owned(owned));
    }
    let mut oldest = None;
    for column in owned.columns.iter_mut().filter(|c| c.value.is_unavailable()) {
        for (k, e) in earlier.iter().enumerate() {
            if e.change.deleted {
                return Err(Unknown);
            }
            if let Some(sent) = e.change.columns.iter().find(|c| c.name == column.name && !c.value.is_unavailable()) {
                column.value = sent.value.clone();
                oldest = oldest.max(Some(k));
                break;
            }
        }
    }
    owned.filled_from = oldest.map(|k| fill_source(earlier[k].change));
    Ok(Cow::Owned(owned))
}

/// The evidence of `change`, as the source of values filled into a later one.
fn fill_source(change: &Change<'_>) -> FillSource {
    FillSource { position: change.position.clone(), source_ts_ms: change.source_ts_ms, kafka: change.kafka.clone() }
}

/// A value the change did not send and no change before it can give: the change cannot be
/// stored (rule `unavailable_value`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unknown;

/// The changes of one batch for one target table: one row per key to apply, and the changes
/// the plan itself rejected or skipped.
#[derive(Debug)]
pub struct TablePlan<'r, 'b> {
    /// The table's configuration (target name, key, delete mode, drift policy, lock).
    pub table: Arc<TableConfig>,
    /// Every column any change sets, in first-seen order; key columns first.
    pub columns: Vec<Arc<str>>,
    /// One row per key, ordered by the batch position of its change.
    pub rows: Vec<PlannedRow<'r, 'b>>,
    /// Changes whose order against the latest of their key cannot be known: rejected with rule
    /// `position_regressed`.
    pub regressed: Vec<Planned<'r, 'b>>,
    /// Tombstones after their key's delete in the batch: skipped (reason `tombstone`).
    pub redundant_tombstones: Vec<Planned<'r, 'b>>,
}

impl TablePlan<'_, '_> {
    /// The target table (`schema.table`).
    pub fn target(&self) -> &TableName {
        &self.table.target
    }

    /// Changes replaced by a later change of the same key.
    pub fn superseded(&self) -> usize {
        self.rows.iter().map(|r| r.earlier.len()).sum()
    }
}

/// The latest change of one key and the others, from its changes in batch order.
struct KeyHistory<'r, 'b> {
    latest: Planned<'r, 'b>,
    /// Latest first.
    earlier: Vec<Planned<'r, 'b>>,
}

impl<'r, 'b> KeyHistory<'r, 'b> {
    /// Take `next` (later in the batch) into account: `Ok(true)` when it is the latest now.
    /// Fails when it cannot be ordered (`Unknown`) or is a redundant tombstone (`Stale`).
    fn push(&mut self, next: Planned<'r, 'b>) -> Result<bool, Order> {
        let evidence = next.change.evidence();
        match compare(&evidence, &self.latest.change.evidence()) {
            Order::Newer => {
                self.earlier.insert(0, std::mem::replace(&mut self.latest, next));
                Ok(true)
            }
            Order::Stale if next.change.tombstone && self.latest.change.deleted => Err(Order::Stale),
            Order::Stale => {
                // Keep `earlier` latest first: before the first change it is newer than.
                let at = self
                    .earlier
                    .iter()
                    .position(|e| compare(&evidence, &e.change.evidence()) == Order::Newer)
                    .unwrap_or(self.earlier.len());
                self.earlier.insert(at, next);
                Ok(false)
            }
            Order::Unknown => Err(Order::Unknown),
        }
    }
}

/// Build one plan per target table, ordered by table name, from the outcomes of a batch in
/// batch order (one per record, as `Pipeline::transform` returns them): every planned change
/// names its record by its index in that order ([`Planned::index`]).
pub fn plan<'r, 'b>(outcomes: &'r [Outcome<'b>]) -> Vec<TablePlan<'r, 'b>> {
    struct Building<'r, 'b> {
        table: Arc<TableConfig>,
        keys: HashMap<Cow<'r, [Value<'b>]>, (usize, KeyHistory<'r, 'b>)>,
        regressed: Vec<Planned<'r, 'b>>,
        redundant: Vec<Planned<'r, 'b>>,
    }
    let mut tables: HashMap<&TableName, Building<'r, 'b>> = HashMap::new();
    for (i, outcome) in outcomes.iter().enumerate() {
        let Outcome::Change(change) = outcome else { continue };
        let planned = Planned { index: i, change };
        let building = tables.entry(&change.table.target).or_insert_with(|| Building {
            table: change.table.clone(),
            keys: HashMap::new(),
            regressed: Vec::new(),
            redundant: Vec::new(),
        });
        let key = redshift_key(&change.key);
        match building.keys.get_mut(&key) {
            None => {
                building.keys.insert(key, (i, KeyHistory { latest: planned, earlier: Vec::new() }));
            }
            Some((at, history)) => match history.push(planned) {
                Ok(latest) => {
                    if latest {
                        *at = i;
                    }
                }
                Err(Order::Unknown) => building.regressed.push(planned),
                Err(_) => building.redundant.push(planned),
            },
        }
    }
    let mut plans: Vec<TablePlan<'r, 'b>> = tables
        .into_values()
        .map(|building| {
            let mut rows: Vec<(usize, PlannedRow<'r, 'b>)> = building
                .keys
                .into_values()
                .map(|(at, history)| (at, PlannedRow::new(history.latest, history.earlier)))
                .collect();
            rows.sort_unstable_by_key(|(at, _)| *at);
            let rows: Vec<PlannedRow<'r, 'b>> = rows.into_iter().map(|(_, row)| row).collect();
            TablePlan {
                columns: union_of_columns(&rows),
                table: building.table,
                rows,
                regressed: building.regressed,
                redundant_tombstones: building.redundant,
            }
        })
        .collect();
    plans.sort_by(|a, b| a.table.target.cmp(&b.table.target));
    plans
}

/// The key as Redshift compares it: "Trailing spaces in VARCHAR and CHAR values are treated as
/// semantically insignificant when values are compared" (Redshift Database Developer Guide,
/// "Character types"), so `'AB'` and `'AB  '` are one key in the target and must be one key in
/// the plan — else one batch would stage two rows for the row the target holds once.
fn redshift_key<'r, 'b>(key: &'r [Value<'b>]) -> Cow<'r, [Value<'b>]> {
    let padded = |v: &Value<'_>| matches!(v, Value::Text(t) if t.ends_with(' '));
    if !key.iter().any(padded) {
        return Cow::Borrowed(key);
    }
    Cow::Owned(
        key.iter()
            .map(|v| match v {
                Value::Text(t) if t.ends_with(' ') => Value::Text(Cow::Owned(t.trim_end_matches(' ').to_string())),
                v => v.clone(),
            })
            .collect(),
    )
}

/// The columns of every change of the table (fallbacks included), key columns first.
fn union_of_columns(rows: &[PlannedRow<'_, '_>]) -> Vec<Arc<str>> {
    let mut columns: Vec<Arc<str>> = Vec::new();
    let mut seen: std::collections::HashSet<Arc<str>> = std::collections::HashSet::new();
    let key = rows.first().map(|r| r.change.key_columns.iter()).into_iter().flatten();
    let changes =
        rows.iter().flat_map(|r| std::iter::once(r.change.as_ref()).chain(r.earlier.iter().map(|e| e.change)));
    for name in key.chain(changes.flat_map(|c| c.columns.iter().map(|c| &c.name))) {
        if seen.insert(name.clone()) {
            columns.push(name.clone());
        }
    }
    columns
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::debezium::{Op, Position};
    use crate::outcome::{Column, KafkaOrigin};

    /// Key 1 at `offset`: a delete (`cols` empty), or an upsert of `(column, value)` pairs
    /// (`None` is the placeholder).
    fn change(offset: i64, mode: DeleteMode, cols: &[(&str, Option<&str>)]) -> Change<'static> {
        let mut table = TableConfig::default_for_topic("x.t").unwrap();
        table.delete_mode = mode;
        let deleted = cols.is_empty();
        let mut columns = vec![Column { name: "id".into(), value: Value::Int(1) }];
        columns.extend(cols.iter().map(|(name, value)| Column {
            name: (*name).into(),
            value: value.map_or(Value::Unavailable, |v| Value::Text(Cow::Owned(v.into()))),
        }));
        Change {
            table: Arc::new(table),
            op: if deleted { Op::Delete } else { Op::Update },
            deleted,
            tombstone: false,
            position: Position::from_stored(format!("aaaaaaaa{offset:04}")),
            source_ts_ms: Some(offset),
            kafka: KafkaOrigin { topic: "x.t".into(), partition: 0, offset },
            key: vec![Value::Int(1)],
            key_columns: Arc::from(vec![Arc::from("id")]),
            columns,
            masked: Vec::new(),
            detected: Vec::new(),
            row_schema: None,
            filled_from: None,
        }
    }

    fn value<'a>(change: &'a Change<'_>, name: &str) -> Option<&'a Value<'a>> {
        change.columns.iter().find(|c| c.name.as_ref() == name).map(|c| &c.value)
    }

    /// The key's row for `changes` (oldest first), `refused` being the target's verdict.
    fn row_of<'r>(changes: &'r [Change<'static>], refused: &[i64]) -> (PlannedRow<'r, 'static>, Vec<i64>) {
        let planned: Vec<Planned<'r, 'static>> =
            changes.iter().enumerate().map(|(index, change)| Planned { index, change }).collect();
        let (latest, earlier) = planned.split_last().unwrap();
        let row = PlannedRow::new(*latest, earlier.iter().rev().copied().collect());
        (row, refused.to_vec())
    }

    #[test]
    fn a_placeholder_takes_the_latest_value_sent_even_by_a_refused_change() {
        let changes = [
            change(1, DeleteMode::Soft, &[("notes", Some("N0")), ("amount", Some("1"))]),
            change(2, DeleteMode::Soft, &[("notes", Some("N1")), ("amount", Some("too precise"))]),
            change(3, DeleteMode::Soft, &[("notes", None), ("amount", Some("2"))]),
        ];
        let (row, refused) = row_of(&changes, &[2]);
        let storable = |c: &Change<'_>| !refused.contains(&c.kafka.offset);
        let row = row.prepared(&storable);
        assert!(!row.unknown);
        assert_eq!(value(&row.change, "notes"), Some(&Value::Text("N1".into())), "never N0");
        // Falling back skips the refused change.
        let back = row.fall_back(&storable).unwrap();
        assert_eq!(back.received.kafka.offset, 1);
    }

    #[test]
    fn a_placeholder_after_a_delete_of_its_batch_is_unknown() {
        let changes = [
            change(1, DeleteMode::Soft, &[("notes", Some("N0"))]),
            change(2, DeleteMode::Soft, &[]),
            change(3, DeleteMode::Soft, &[("notes", None)]),
        ];
        let (row, _) = row_of(&changes, &[]);
        assert!(row.prepared(&|_| true).unknown);
    }

    #[test]
    fn a_soft_delete_keeps_what_landed_and_a_hard_one_needs_nothing() {
        let soft = [
            change(1, DeleteMode::Soft, &[("notes", Some("N0")), ("name", Some("A"))]),
            change(2, DeleteMode::Soft, &[]),
            // Unknown (a placeholder after the delete): does not land.
            change(3, DeleteMode::Soft, &[("notes", None), ("name", Some("B"))]),
            // Refused: does not land.
            change(4, DeleteMode::Soft, &[("notes", Some("N4")), ("name", Some("C"))]),
            change(5, DeleteMode::Soft, &[]),
        ];
        let (row, refused) = row_of(&soft, &[4]);
        let row = row.prepared(&|c: &Change<'_>| !refused.contains(&c.kafka.offset));
        assert_eq!(value(&row.change, "name"), Some(&Value::Text("A".into())));
        assert_eq!(value(&row.change, "notes"), Some(&Value::Text("N0".into())));
        let hard: Vec<Change<'static>> = soft
            .iter()
            .map(|c| {
                let mut c = c.clone();
                Arc::make_mut(&mut c.table).delete_mode = DeleteMode::Hard;
                c
            })
            .collect();
        let (row, _) = row_of(&hard, &[]);
        assert_eq!(row.change.columns.len(), 1, "the key alone");
    }

    #[test]
    fn filling_is_linear_in_the_changes() {
        // 2,000 alternating creates and deletes of one key, every change refused: the fill of
        // the last delete visits each earlier change once (this finishes in milliseconds; the
        // recursive fill it replaces took minutes at 50).
        let changes: Vec<Change<'static>> = (1..=2_000)
            .map(|i| {
                if i % 2 == 0 {
                    change(i, DeleteMode::Soft, &[])
                } else {
                    change(i, DeleteMode::Soft, &[("n", Some("x"))])
                }
            })
            .collect();
        let (row, _) = row_of(&changes, &[]);
        let calls = std::cell::Cell::new(0usize);
        let row = row.prepared(&|_| {
            calls.set(calls.get() + 1);
            false
        });
        assert_eq!(calls.get(), 1_999, "one verdict per earlier change");
        assert_eq!(row.change.columns.len(), 1);
    }
}
