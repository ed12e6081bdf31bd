//! PostgreSQL: `sequence` = `[last committed LSN, LSN]`, else `lsn`.
//!
//! `source.lsn` alone is not in commit order: logical decoding emits transactions in commit
//! order, but a transaction that committed later can hold changes at lower LSNs than one that
//! committed before it. Debezium added `source.sequence` for exactly this (DBZ-2911: "to allow
//! downstream systems to deduplicate PostgreSQL records"): a JSON array of two decimal strings,
//! "The first value is always the last committed LSN, the second value is always the current
//! LSN. Either value may be `null`" (postgresql.adoc). Compared as a pair they follow the order
//! the connector emitted. Without `sequence` (before Debezium 1.4, or a null part) the LSN
//! stands in.

use serde::Deserialize;

use super::{PositionError, non_negative, start};
use crate::debezium::envelope::Source;
use crate::digits::push_hex;

/// `["24023119","24023128"]` → (24023119, 24023128); `null` parts are `None`.
fn parse_sequence(text: &str) -> Result<(Option<u64>, Option<u64>), PositionError> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Part<'a> {
        Text(&'a str),
        Number(u64),
    }
    let parts: [Option<Part<'_>>; 2] = serde_json::from_str(text).map_err(|_| PositionError::PostgresSequence)?;
    let number = |part: &Option<Part<'_>>| -> Result<Option<u64>, PositionError> {
        match part {
            None => Ok(None),
            Some(Part::Number(n)) => Ok(Some(*n)),
            Some(Part::Text(t)) => t.parse().map(Some).map_err(|_| PositionError::PostgresSequence),
        }
    };
    Ok((number(&parts[0])?, number(&parts[1])?))
}

/// `None` without an LSN or a sequence.
pub(super) fn position(source: &Source<'_>) -> Result<Option<String>, PositionError> {
    let lsn = source.lsn.map(non_negative).transpose()?;
    let (committed, current) = match source.sequence.as_deref() {
        Some(sequence) => parse_sequence(sequence)?,
        None => (None, None),
    };
    let current = current.or(lsn);
    let Some(current) = current else { return Ok(None) };
    let mut out = start(b"postgresql", 40);
    push_hex(&mut out, committed.unwrap_or(current), 16);
    push_hex(&mut out, current, 16);
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    fn pg(lsn: Option<i64>, sequence: Option<&str>) -> Source<'static> {
        Source {
            connector: Some(Cow::Borrowed("postgresql")),
            lsn,
            sequence: sequence.map(|s| Cow::Owned(s.to_string())),
            ..Source::default()
        }
    }

    #[test]
    fn sequence_orders_interleaved_transactions_by_commit() {
        // T2 commits first with a change at LSN 200 (last commit before it: 50); T1 commits
        // after it with a change at LSN 100. Emitted order T2, T1: the sequence keeps it, the
        // LSN alone would not.
        let t2 = position(&pg(Some(200), Some(r#"["50","200"]"#))).unwrap().unwrap();
        let t1 = position(&pg(Some(100), Some(r#"["250","100"]"#))).unwrap().unwrap();
        assert!(t1 > t2);
        // postgresql.adoc's example.
        let doc = position(&pg(Some(24_023_128), Some(r#"["24023119","24023128"]"#))).unwrap().unwrap();
        assert_eq!(&doc[8..], format!("{:016x}{:016x}", 24_023_119, 24_023_128));
    }

    #[test]
    fn null_parts_and_missing_sequence_fall_back_to_the_lsn() {
        let no_sequence = position(&pg(Some(0x1_0000_0000), None)).unwrap().unwrap();
        assert_eq!(&no_sequence[8..], "00000001000000000000000100000000");
        let null_first = position(&pg(Some(7), Some(r#"[null,"7"]"#))).unwrap().unwrap();
        assert_eq!(null_first, no_sequence.replace("0000000100000000", "0000000000000007"));
        assert_eq!(position(&pg(None, None)), Ok(None));
        assert_eq!(position(&pg(Some(5), Some("not json"))), Err(PositionError::PostgresSequence));
        assert_eq!(position(&pg(Some(5), Some(r#"["x","5"]"#))), Err(PositionError::PostgresSequence));
        assert_eq!(position(&pg(Some(-5), None)), Err(PositionError::Negative));
    }
}
