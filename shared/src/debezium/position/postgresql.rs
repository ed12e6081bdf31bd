//! PostgreSQL: `sequence` = `[last committed LSN, LSN]`, else `lsn`.
//!
//! `source.lsn` alone is not in commit order: logical decoding emits transactions in commit
//! order, but a transaction that committed later can hold changes at lower LSNs than one that
//! committed before it. Debezium added `source.sequence` for exactly this (DBZ-2911: "to allow
//! downstream systems to deduplicate PostgreSQL records"): a JSON array of two decimal strings,
//! "The first value is always the last committed LSN, the second value is always the current
//! LSN. Either value may be `null`" (postgresql.adoc). Compared as a pair they follow the order
//! the connector emitted. Without `sequence` (before Debezium 1.4, or a null part) the LSN
//! orders the changes of one transaction only: the lineage is then the transaction
//! (`source.txId`), and changes of different transactions are ordered by commit time and Kafka
//! order ([`super::order`]). Without a transaction id either, there is no position.

use serde::Deserialize;

use super::{LINEAGE_WIDTH, PositionError, non_negative, start};
use crate::debezium::envelope::Source;
use crate::digits::push_hex;

/// The position's width: lineage, last committed LSN (16 hex, zeros without one), LSN (16 hex).
pub(super) const WIDTH: usize = LINEAGE_WIDTH + 16 + 16;

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

/// `None` without an LSN or a sequence, or with an LSN alone and no transaction id.
pub(super) fn position(source: &Source<'_>) -> Result<Option<String>, PositionError> {
    let lsn = source.lsn.map(non_negative).transpose()?;
    let (committed, current) = match source.sequence.as_deref() {
        Some(sequence) => parse_sequence(sequence)?,
        None => (None, None),
    };
    let Some(current) = current.or(lsn) else { return Ok(None) };
    let mut out = match committed {
        Some(committed) => {
            let mut out = start(b"postgresql", WIDTH);
            push_hex(&mut out, committed, 16);
            out
        }
        None => {
            let Some(tx_id) = source.tx_id else { return Ok(None) };
            let mut out = start(format!("postgresql-tx:{tx_id}").as_bytes(), WIDTH);
            push_hex(&mut out, 0, 16);
            out
        }
    };
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
    fn without_a_committed_lsn_the_lsn_orders_one_transaction_only() {
        let in_tx = |tx: Option<i64>, lsn: i64, sequence: Option<&str>| {
            position(&Source { tx_id: tx, ..pg(Some(lsn), sequence) }).unwrap()
        };
        let (a1, a2) = (in_tx(Some(555), 100, None).unwrap(), in_tx(Some(555), 200, None).unwrap());
        assert_eq!(a1[..8], a2[..8], "one transaction, one lineage");
        assert!(a2 > a1);
        assert_eq!(&a1[8..], format!("{:016x}{:016x}", 0, 100));
        let b = in_tx(Some(556), 50, None).unwrap();
        assert_ne!(a1[..8], b[..8], "another transaction: the LSNs do not say which committed first");
        let null_first = in_tx(Some(555), 300, Some(r#"[null,"300"]"#)).unwrap();
        assert_eq!(null_first[..8], a1[..8], "a null committed LSN is no sequence");
        let with_sequence = in_tx(Some(555), 300, Some(r#"["90","300"]"#)).unwrap();
        assert_ne!(with_sequence[..8], a1[..8]);
        assert_eq!(in_tx(None, 5, None), None, "an LSN alone orders nothing");
        assert_eq!(position(&pg(None, None)), Ok(None));
        assert_eq!(position(&pg(Some(5), Some("not json"))), Err(PositionError::PostgresSequence));
        assert_eq!(position(&pg(Some(5), Some(r#"["x","5"]"#))), Err(PositionError::PostgresSequence));
        assert_eq!(position(&pg(Some(-5), None)), Err(PositionError::Negative));
    }
}
