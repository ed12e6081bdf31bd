//! SQL Server: `commit_lsn` · `change_lsn` · `event_serial_no`.
//!
//! Debezium orders SQL Server changes by commit LSN, then change LSN (LSNs grow within a
//! transaction but not across transactions), then the serial number that tells apart the
//! events of one change (2 for an update's new image, 1 and 2 for a key change's delete and
//! create). Snapshot rows carry the snapshot's commit LSN and no change LSN or serial, so they
//! sort before the streamed changes of that commit. LSNs are fixed-width hex
//! (`0000002c:000010c8:0006`), so their text compares in LSN order.

use super::{LINEAGE_WIDTH, PositionError, non_negative, start};
use crate::debezium::envelope::Source;
use crate::digits::push_hex;

/// The position's width: lineage, commit LSN (20 hex), change LSN (20 hex), serial (16 hex).
pub(super) const WIDTH: usize = LINEAGE_WIDTH + 20 + 20 + 16;

/// Append a SQL Server LSN `0000002c:000010c8:0006` as 20 lowercase hex digits.
fn push_lsn(out: &mut String, lsn: &str) -> Result<(), PositionError> {
    const SEPARATORS: [usize; 2] = [8, 17];
    let bytes = lsn.as_bytes();
    let well_formed = bytes.len() == 22
        && bytes
            .iter()
            .enumerate()
            .all(|(i, b)| if SEPARATORS.contains(&i) { *b == b':' } else { b.is_ascii_hexdigit() });
    if !well_formed {
        return Err(PositionError::SqlServerLsn);
    }
    out.extend(bytes.iter().filter(|b| **b != b':').map(|b| char::from(b.to_ascii_lowercase())));
    Ok(())
}

/// `None` without a commit LSN.
pub(super) fn position(source: &Source<'_>) -> Result<Option<String>, PositionError> {
    let Some(commit) = source.commit_lsn.as_deref() else { return Ok(None) };
    let mut out = start(b"sqlserver", WIDTH);
    push_lsn(&mut out, commit)?;
    match source.change_lsn.as_deref() {
        Some(lsn) => push_lsn(&mut out, lsn)?,
        None => out.push_str("00000000000000000000"),
    }
    push_hex(&mut out, non_negative(source.event_serial_no.unwrap_or(0))?, 16);
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::borrow::Cow;

    fn sqlserver(commit: &str, change: Option<&str>, serial: Option<i64>) -> Source<'static> {
        Source {
            connector: Some(Cow::Borrowed("sqlserver")),
            commit_lsn: Some(Cow::Owned(commit.to_string())),
            change_lsn: change.map(|c| Cow::Owned(c.to_string())),
            event_serial_no: serial,
            ..Source::default()
        }
    }

    fn lsn(n: u128) -> String {
        let hex = format!("{n:020x}");
        format!("{}:{}:{}", &hex[..8], &hex[8..16], &hex[16..])
    }

    #[test]
    fn form() {
        let p =
            position(&sqlserver("0000002C:000010c8:0006", Some("0000002c:000010c8:0003"), Some(2))).unwrap().unwrap();
        assert_eq!(&p[8..], "0000002c000010c800060000002c000010c800030000000000000002");
        let snapshot = position(&sqlserver("0000002c:000010c8:0006", None, None)).unwrap().unwrap();
        assert!(snapshot < p, "snapshot rows sort before streamed changes of the same commit");
        for bad in [
            "garbage",
            "0000002c:000010c8:006",
            "0000002c-000010c8-0006",
            "0000002g:000010c8:0006",
            "0000002c:000010c8:0006:",
        ] {
            assert_eq!(position(&sqlserver(bad, None, None)), Err(PositionError::SqlServerLsn), "{bad}");
        }
        assert_eq!(position(&sqlserver("0000002c:000010c8:0006", None, Some(-1))), Err(PositionError::Negative));
        let no_commit = Source { connector: Some("sqlserver".into()), ..Source::default() };
        assert_eq!(position(&no_commit), Ok(None));
    }

    proptest! {
        /// Sorting positions as strings gives the order of (commit, change, serial) with a
        /// null change LSN first: the source commit order.
        #[test]
        fn positions_sort_in_source_order(
            mut changes in proptest::collection::vec(
                (0u128..(1u128 << 80), proptest::option::of(0u128..(1u128 << 80)), proptest::option::of(0i64..i64::MAX)),
                1..40,
            )
        ) {
            let mut by_position: Vec<_> = changes
                .iter()
                .map(|(c, ch, s)| {
                    let src = sqlserver(&lsn(*c), ch.map(lsn).as_deref(), *s);
                    (position(&src).unwrap().unwrap(), (*c, *ch, s.unwrap_or(0)))
                })
                .collect();
            by_position.sort();
            changes.sort_by_key(|(c, ch, s)| (*c, *ch, s.unwrap_or(0)));
            let expected: Vec<_> = changes.iter().map(|(c, ch, s)| (*c, *ch, s.unwrap_or(0))).collect();
            let got: Vec<_> = by_position.into_iter().map(|(_, t)| t).collect();
            prop_assert_eq!(got, expected);
        }
    }
}
