//! Source position: where a change sits in its source database's commit order, as a
//! fixed-width string stored in `_cdc_position`.
//!
//! A position is a **lineage** tag (8 lowercase hex digits naming the log the position belongs
//! to) followed by the connector's **native** position (hex or zero-padded decimal digits).
//! Two positions of one lineage compare as strings in source commit order; positions of
//! different lineages (a MySQL failover to a server with its own binlog) do not compare at all.
//! A change without a known position (a tombstone, a connector we have no rule for) has the
//! empty position. How positions, commit times and Kafka order decide which of two changes is
//! newer is [`order`].
//!
//! | connector | lineage | native form | width |
//! |---|---|---|---|
//! | `sqlserver` | `sqlserver` | commit_lsn (20 hex) · change_lsn (20 hex, zeros when null) · event_serial_no (16 hex) | 8 + 56 = 64 |
//! | `postgresql` | `postgresql` | sequence\[0\] last committed LSN (16 hex) · sequence\[1\] LSN (16 hex) | 8 + 32 = 40 |
//! | `postgresql` without a committed LSN | `postgresql-tx:<txId>` | zeros (16) · `lsn` (16 hex) | 8 + 32 = 40 |
//! | `mysql`, `mariadb` with a GTID | `mysql-gtid:<uuid[:tag]>`, `mariadb-gtid:<domain>` | transaction number (20) · pos (20) · row (10) | 8 + 50 = 58 |
//! | `mysql`, `mariadb` without | `mysql:<server_id>:<binlog base name>` | binlog file number (10) · pos (20) · row (10) | 8 + 40 = 48 |
//! | anything else | — | — (empty: Kafka order decides) | 0 |
//!
//! All of them fit `_cdc_position VARCHAR(64)`: each connector file states its width, and a
//! compile-time assertion here holds them to [`MAX_WIDTH`].
//!
//! **A new connector** is one file and one match arm: `<connector>.rs` with `pub(super) const
//! WIDTH` (lineage tag included) and `pub(super) fn position(source: &Source<'_>) ->
//! Result<Option<String>, PositionError>` that starts its text with [`start`] and appends
//! fixed-width digits (`None` when the fields it needs are absent, an error when they are
//! malformed); its `mod` line, its arm in [`position`] and its `WIDTH` in the assertion below;
//! its row in the table above. The `source` fields it reads go on [`Source`]
//! (`debezium/envelope.rs`). Ordering rules never go in a connector file: they are [`order`]'s.

mod mysql;
pub mod order;
mod postgresql;
mod sqlserver;

use std::fmt;

use super::envelope::Source;
use crate::rule::Rule;

/// Width of the lineage tag at the start of every non-empty position.
pub const LINEAGE_WIDTH: usize = 8;
/// The widest position (SQL Server): what `_cdc_position VARCHAR(64)` must hold.
pub const MAX_WIDTH: usize = LINEAGE_WIDTH + 56;

// Every connector's widest position fits the column.
const _: () = assert!(sqlserver::WIDTH <= MAX_WIDTH && postgresql::WIDTH <= MAX_WIDTH && mysql::WIDTH <= MAX_WIDTH);

/// A change's source position, as stored in `_cdc_position VARCHAR(64)`: empty when the source
/// gives none, else [`LINEAGE_WIDTH`] (8) lowercase hex digits of the lineage tag (32-bit
/// FNV-1a of the lineage's name) followed by the connector's native position in fixed-width
/// lowercase hex or zero-padded decimal digits; at most [`MAX_WIDTH`] (64) ASCII characters
/// (the forms: module docs). Two positions of one lineage compare as strings in source commit
/// order. The type has no `Ord` on purpose: only [`order::compare`] orders changes, with commit
/// times and Kafka coordinates besides.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Position(String);

impl Position {
    /// No source position: only Kafka order can place the change.
    pub fn none() -> Position {
        Position(String::new())
    }

    /// A position from its stored text (e.g. `_cdc_position` read back); not validated.
    pub fn from_stored(text: impl Into<String>) -> Position {
        Position(text.into())
    }

    /// The stored text (empty for [`Position::none`]).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether there is a position (the text is not empty).
    pub fn is_known(&self) -> bool {
        !self.0.is_empty()
    }

    /// The lineage tag, when the position is known.
    pub fn lineage(&self) -> Option<&str> {
        self.0.get(..LINEAGE_WIDTH).filter(|_| self.is_known())
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A `source` block whose position fields are present but malformed: the record is rejected
/// (rule `source_position`), never ordered by a guess. The message names the field, never its
/// value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PositionError {
    /// SQL Server: `commit_lsn` or `change_lsn` is not `xxxxxxxx:xxxxxxxx:xxxx` (hex).
    #[error("source.commit_lsn or source.change_lsn is not a SQL Server LSN (8:8:4 hex digits)")]
    SqlServerLsn,
    /// MySQL, MariaDB: `file` does not end in `.<number>` (as `mysql-bin.000003` does).
    #[error("source.file is not a binlog file name ending in a number")]
    MySqlFile,
    /// MySQL, MariaDB: `gtid` is neither `uuid[:tag]:number` nor `domain-server-seq`.
    #[error("source.gtid is neither a MySQL GTID (uuid:number) nor a MariaDB GTID (domain-server-seq)")]
    MySqlGtid,
    /// PostgreSQL: `sequence` is not a JSON array of two LSNs (decimal strings, numbers or
    /// null).
    #[error("source.sequence is not a JSON array of two LSNs")]
    PostgresSequence,
    /// A numeric position field (`lsn`, `event_serial_no`, `pos`, `row`) is below zero.
    #[error("a source position field is negative")]
    Negative,
}

impl PositionError {
    /// The reject rule of every position error: `source_position`.
    pub fn rule(self) -> Rule {
        Rule::SourcePosition
    }
}

/// 32-bit FNV-1a: a cheap, stable hash for lineage tags (a collision only makes two lineages
/// compare by their native positions, as if they were one).
const fn fnv1a(bytes: &[u8]) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u32;
        hash = hash.wrapping_mul(0x0100_0193);
        i += 1;
    }
    hash
}

/// Start a position with the lineage tag of `lineage`; `capacity`: the connector's width.
fn start(lineage: &[u8], capacity: usize) -> String {
    let mut out = String::with_capacity(capacity);
    crate::digits::push_hex(&mut out, u64::from(fnv1a(lineage)), LINEAGE_WIDTH);
    out
}

fn non_negative(v: i64) -> Result<u64, PositionError> {
    u64::try_from(v).map_err(|_| PositionError::Negative)
}

/// The position of a change from its `source` block: empty when there is no block or the
/// connector (or its position fields) is not one we order by; an error when the fields are
/// there but malformed (the record is rejected rather than guessed).
pub fn position(source: Option<&Source<'_>>) -> Result<Position, PositionError> {
    let Some(source) = source else { return Ok(Position::none()) };
    let text = match source.connector.as_deref() {
        Some("sqlserver") => sqlserver::position(source)?,
        Some("postgresql") => postgresql::position(source)?,
        Some("mysql" | "mariadb") => mysql::position(source)?,
        _ => None,
    };
    debug_assert!(text.as_ref().is_none_or(|t| t.len() <= MAX_WIDTH), "a position wider than _cdc_position");
    Ok(text.map_or_else(Position::none, Position))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    #[test]
    fn every_form_fits_the_column_and_starts_with_its_lineage() {
        let sqlserver = Source {
            connector: Some(Cow::Borrowed("sqlserver")),
            commit_lsn: Some(Cow::Borrowed("0000002c:000010c8:0006")),
            change_lsn: Some(Cow::Borrowed("0000002c:000010c8:0003")),
            event_serial_no: Some(2),
            ..Source::default()
        };
        let pg = Source {
            connector: Some("postgresql".into()),
            lsn: Some(0x1_0000_0000),
            tx_id: Some(9),
            ..Source::default()
        };
        let my = Source {
            connector: Some("mysql".into()),
            server_id: Some(223344),
            file: Some("mysql-bin.000003".into()),
            pos: Some(154),
            row: Some(1),
            ..Source::default()
        };
        let gtid = Source { gtid: Some("3e11fa47-71ca-11e1-9e33-c80aa9429562:23".into()), ..my.clone() };
        for (source, width) in [(sqlserver, 64), (pg, 40), (my, 48), (gtid, 58)] {
            let p = position(Some(&source)).unwrap();
            assert_eq!(p.as_str().len(), width, "{p}");
            assert!(p.as_str().len() <= MAX_WIDTH);
            assert!(p.as_str().bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)), "{p}");
            assert!(p.lineage().is_some());
        }
        let oracle = Source { connector: Some("oracle".into()), ts_ms: Some(5), ..Source::default() };
        assert_eq!(position(Some(&oracle)).unwrap(), Position::none());
        assert_eq!(position(None).unwrap(), Position::none());
        assert_eq!(Position::none().lineage(), None);
    }

    #[test]
    fn the_widest_position_is_the_stored_column_s_width() {
        // `_cdc_position VARCHAR(64)` in `redshift/ddl.rs` and `_cdc_src_position` in
        // `redshift/sql.rs` (FILL_SOURCE_COLUMNS) hold MAX_WIDTH characters: widen them together.
        assert_eq!(MAX_WIDTH, 64);
        assert_eq!(sqlserver::WIDTH, MAX_WIDTH, "the widest connector defines the width");
    }

    #[test]
    fn lineage_tags_are_stable() {
        // Stored positions must compare with new ones across releases: the tag is part of the
        // data contract (FNV-1a 32, lowercase hex).
        assert_eq!(start(b"sqlserver", 8), format!("{:08x}", fnv1a(b"sqlserver")));
        assert_eq!(fnv1a(b""), 0x811c_9dc5);
        assert_eq!(fnv1a(b"a"), 0xe40c_292c);
    }
}
