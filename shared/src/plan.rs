//! Collapse a batch to the latest change per primary key and target table.
//!
//! "Latest" is the greatest source position; on a tie, the later record in batch order.
//! A delete that is latest wins like any other change. The changes it replaces are kept
//! with it, latest first: they are superseded only if it loads. When the loader has to
//! reject the latest change (a value the target refuses, say), it falls back to the next
//! one, so that the warehouse holds the latest change that *can* be stored.

use std::collections::HashMap;
use std::sync::Arc;

use crate::config::{TableConfig, TableName};
use crate::event::KafkaRecord;
use crate::outcome::{Change, Outcome};
use crate::value::Value;

/// A change and the record it came from.
#[derive(Debug, Clone, Copy)]
pub struct Planned<'r, 'b> {
    pub record: &'r KafkaRecord<'r>,
    pub change: &'r Change<'b>,
}

/// The change to apply for one key, and the earlier changes of that key in the batch.
#[derive(Debug, Clone)]
pub struct PlannedRow<'r, 'b> {
    pub record: &'r KafkaRecord<'r>,
    pub change: &'r Change<'b>,
    /// Earlier changes of the same key, latest first.
    pub earlier: Vec<Planned<'r, 'b>>,
}

impl<'r, 'b> PlannedRow<'r, 'b> {
    /// The row to try when this one cannot be stored: the next-latest change of the key.
    pub fn fall_back(&self) -> Option<PlannedRow<'r, 'b>> {
        let (next, rest) = self.earlier.split_first()?;
        Some(PlannedRow { record: next.record, change: next.change, earlier: rest.to_vec() })
    }
}

#[derive(Debug)]
pub struct TablePlan<'r, 'b> {
    pub table: Arc<TableConfig>,
    /// Every column any change sets, in first-seen order; key columns first.
    pub columns: Vec<Arc<str>>,
    /// One row per key, ordered by the batch position of its change.
    pub rows: Vec<PlannedRow<'r, 'b>>,
}

impl TablePlan<'_, '_> {
    pub fn target(&self) -> &TableName {
        &self.table.target
    }

    /// Changes replaced by a later change of the same key.
    pub fn superseded(&self) -> usize {
        self.rows.iter().map(|r| r.earlier.len()).sum()
    }
}

/// Build one plan per target table, ordered by table name.
pub fn plan<'r, 'b>(records: &[&'r KafkaRecord<'r>], outcomes: &'r [Outcome<'b>]) -> Vec<TablePlan<'r, 'b>> {
    // Per table, per key: the indices (into `outcomes`) of its changes.
    type ChangesByKey<'r, 'b> = HashMap<&'r [Value<'b>], Vec<usize>>;
    let mut tables: HashMap<&TableName, (Arc<TableConfig>, ChangesByKey<'r, 'b>)> = HashMap::new();
    for (i, outcome) in outcomes.iter().enumerate() {
        let Outcome::Change(change) = outcome else { continue };
        let (_, keys) = tables.entry(&change.table.target).or_insert_with(|| (change.table.clone(), HashMap::new()));
        keys.entry(change.key.as_slice()).or_default().push(i);
    }
    let change_at = |i: usize| match &outcomes[i] {
        Outcome::Change(change) => change,
        _ => unreachable!("only changes are planned"),
    };
    let mut plans: Vec<TablePlan<'r, 'b>> = tables
        .into_values()
        .map(|(table, keys)| {
            let mut rows: Vec<(usize, PlannedRow<'r, 'b>)> = keys
                .into_values()
                .map(|mut indices| {
                    // Latest first: greatest position, then latest in the batch.
                    indices.sort_by(|&a, &b| (&change_at(b).position, b).cmp(&(&change_at(a).position, a)));
                    let planned = |i: usize| Planned { record: records[i], change: change_at(i) };
                    let winner = indices[0];
                    let row = PlannedRow {
                        record: records[winner],
                        change: change_at(winner),
                        earlier: indices[1..].iter().map(|&i| planned(i)).collect(),
                    };
                    (winner, row)
                })
                .collect();
            rows.sort_unstable_by_key(|(winner, _)| *winner);
            let rows: Vec<PlannedRow<'r, 'b>> = rows.into_iter().map(|(_, row)| row).collect();
            TablePlan { columns: union_of_columns(&rows), table, rows }
        })
        .collect();
    plans.sort_by(|a, b| a.table.target.cmp(&b.table.target));
    plans
}

/// The columns of every change of the table (fallbacks included), key columns first.
fn union_of_columns(rows: &[PlannedRow<'_, '_>]) -> Vec<Arc<str>> {
    let mut columns: Vec<Arc<str>> = Vec::new();
    let mut seen: std::collections::HashSet<Arc<str>> = std::collections::HashSet::new();
    let key = rows.first().map(|r| r.change.key_columns.iter()).into_iter().flatten();
    let changes = rows.iter().flat_map(|r| std::iter::once(r.change).chain(r.earlier.iter().map(|e| e.change)));
    for name in key.chain(changes.flat_map(|c| c.columns.iter().map(|c| &c.name))) {
        if seen.insert(name.clone()) {
            columns.push(name.clone());
        }
    }
    columns
}
