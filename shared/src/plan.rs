//! Collapse a batch to the latest change per primary key and target table.
//!
//! "Latest" is the greatest source position; on a tie, the later record in batch order.
//! A delete that is latest wins like any other change. The changes it replaces are counted
//! as superseded: their effect is contained in the change that is kept.

use std::collections::HashMap;
use std::sync::Arc;

use crate::config::{TableConfig, TableName};
use crate::event::KafkaRecord;
use crate::outcome::{Change, Outcome};
use crate::value::Value;

/// One change to apply, with the record it came from.
#[derive(Debug, Clone, Copy)]
pub struct PlannedRow<'r, 'b> {
    pub record: &'r KafkaRecord<'r>,
    pub change: &'r Change<'b>,
}

#[derive(Debug)]
pub struct TablePlan<'r, 'b> {
    pub table: Arc<TableConfig>,
    /// Every column any row sets, in first-seen order; key columns first.
    pub columns: Vec<Arc<str>>,
    /// One row per key, ordered by position of the record in the batch.
    pub rows: Vec<PlannedRow<'r, 'b>>,
    /// Records whose change a later change of the same key replaced.
    pub superseded: Vec<&'r KafkaRecord<'r>>,
}

impl TablePlan<'_, '_> {
    pub fn target(&self) -> &TableName {
        &self.table.target
    }
}

/// Build one plan per target table, ordered by table name.
pub fn plan<'r, 'b>(records: &[&'r KafkaRecord<'r>], outcomes: &'r [Outcome<'b>]) -> Vec<TablePlan<'r, 'b>> {
    struct Building<'r, 'b> {
        table: Arc<TableConfig>,
        // Winning change per key, as an index into `outcomes`.
        latest: HashMap<&'r [Value<'b>], usize>,
        superseded: Vec<usize>,
    }
    let mut tables: HashMap<&TableName, Building<'r, 'b>> = HashMap::new();
    for (i, outcome) in outcomes.iter().enumerate() {
        let Outcome::Change(change) = outcome else { continue };
        let building = tables.entry(&change.table.target).or_insert_with(|| Building {
            table: change.table.clone(),
            latest: HashMap::new(),
            superseded: Vec::new(),
        });
        match building.latest.get_mut(change.key.as_slice()) {
            None => {
                building.latest.insert(change.key.as_slice(), i);
            }
            Some(kept) => {
                let Outcome::Change(current) = &outcomes[*kept] else { unreachable!("only changes are kept") };
                if change.position >= current.position {
                    building.superseded.push(*kept);
                    *kept = i;
                } else {
                    building.superseded.push(i);
                }
            }
        }
    }
    let mut plans: Vec<TablePlan<'r, 'b>> = tables
        .into_values()
        .map(|building| {
            let mut winners: Vec<usize> = building.latest.into_values().collect();
            winners.sort_unstable();
            let rows: Vec<PlannedRow<'r, 'b>> = winners
                .into_iter()
                .map(|i| match &outcomes[i] {
                    Outcome::Change(change) => PlannedRow { record: records[i], change },
                    _ => unreachable!("only changes are kept"),
                })
                .collect();
            let mut superseded = building.superseded;
            superseded.sort_unstable();
            TablePlan {
                columns: union_of_columns(&rows),
                table: building.table,
                rows,
                superseded: superseded.into_iter().map(|i| records[i]).collect(),
            }
        })
        .collect();
    plans.sort_by(|a, b| a.table.target.cmp(&b.table.target));
    plans
}

fn union_of_columns(rows: &[PlannedRow<'_, '_>]) -> Vec<Arc<str>> {
    let mut columns: Vec<Arc<str>> = Vec::new();
    let mut seen: std::collections::HashSet<Arc<str>> = std::collections::HashSet::new();
    let key = rows.first().map(|r| r.change.key_columns.iter()).into_iter().flatten();
    for name in key.chain(rows.iter().flat_map(|r| r.change.columns.iter().map(|c| &c.name))) {
        if seen.insert(name.clone()) {
            columns.push(name.clone());
        }
    }
    columns
}
