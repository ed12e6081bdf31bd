//! Source position: a fixed-width string that sorts in source commit order.
//!
//! The target stores it in `_cdc_position` and a change applies only if its position is
//! greater, which makes redelivery and replay idempotent. Every form is at most 64 bytes.
//!
//! | connector  | form (hex or zero-padded decimal digits)                          | width |
//! |------------|--------------------------------------------------------------------|-------|
//! | sqlserver  | commit_lsn (20 hex) · change_lsn (20 hex, zeros if null) · serial (16 hex) | 56 |
//! | postgresql | lsn (16 hex)                                                        | 16    |
//! | mysql      | binlog file number (10) · pos (20) · row (10)                       | 40    |
//! | other      | ts_ms (20) · kafka partition (10) · kafka offset (20)               | 50    |
//!
//! Snapshot rows of SQL Server have a null `change_lsn` and serial number, so they sort
//! before the streamed changes that share their `commit_lsn`.

use crate::digits::{push_decimal, push_hex};

use super::envelope::Source;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PositionError {
    #[error("source.commit_lsn or source.change_lsn is not a SQL Server LSN (8:8:4 hex digits)")]
    SqlServerLsn,
    #[error("source.file is not a binlog file name ending in a number")]
    MySqlFile,
    #[error("a source position field is negative")]
    Negative,
}

impl PositionError {
    pub fn rule(self) -> &'static str {
        "source_position"
    }
}

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

fn non_negative(v: i64) -> Result<u64, PositionError> {
    u64::try_from(v).map_err(|_| PositionError::Negative)
}

/// The position of a change. `fallback` (timestamp, Kafka partition, offset) is used for
/// connectors we do not know, or when the source block lacks its position fields.
pub fn position(source: Option<&Source<'_>>, fallback: (i64, i64, i64)) -> Result<String, PositionError> {
    let mut out = String::with_capacity(56);
    if let Some(source) = source {
        match source.connector.as_deref() {
            Some("sqlserver") if source.commit_lsn.is_some() => {
                push_lsn(&mut out, source.commit_lsn.as_deref().unwrap_or_default())?;
                match source.change_lsn.as_deref() {
                    Some(lsn) => push_lsn(&mut out, lsn)?,
                    None => out.push_str("00000000000000000000"),
                }
                let serial = non_negative(source.event_serial_no.unwrap_or(0))?;
                push_hex(&mut out, serial, 16);
                return Ok(out);
            }
            Some("postgresql") if source.lsn.is_some() => {
                push_hex(&mut out, non_negative(source.lsn.unwrap_or(0))?, 16);
                return Ok(out);
            }
            Some("mysql" | "mariadb") if source.file.is_some() && source.pos.is_some() => {
                let file = source.file.as_deref().unwrap_or_default();
                let number: u64 =
                    file.rsplit('.').next().and_then(|n| n.parse().ok()).ok_or(PositionError::MySqlFile)?;
                let pos = non_negative(source.pos.unwrap_or(0))?;
                let row = non_negative(source.row.unwrap_or(0))?;
                push_decimal(&mut out, number, 10);
                push_decimal(&mut out, pos, 20);
                push_decimal(&mut out, row, 10);
                return Ok(out);
            }
            _ => {}
        }
    }
    let (ts_ms, partition, offset) = fallback;
    let ts = source.and_then(|s| s.ts_ms).unwrap_or(ts_ms).max(0);
    // Clamped to zero above, so the casts are exact.
    push_decimal(&mut out, ts as u64, 20);
    push_decimal(&mut out, partition.max(0) as u64, 10);
    push_decimal(&mut out, offset.max(0) as u64, 20);
    Ok(out)
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
    fn sqlserver_form() {
        let p =
            position(Some(&sqlserver("0000002C:000010c8:0006", Some("0000002c:000010c8:0003"), Some(2))), (0, 0, 0))
                .unwrap();
        assert_eq!(p, "0000002c000010c800060000002c000010c800030000000000000002");
        assert_eq!(p.len(), 56);
        let snapshot = position(Some(&sqlserver("0000002c:000010c8:0006", None, None)), (0, 0, 0)).unwrap();
        assert!(snapshot < p, "snapshot rows sort before streamed changes of the same commit");
        for bad in [
            "garbage",
            "0000002c:000010c8:006",
            "0000002c-000010c8-0006",
            "0000002g:000010c8:0006",
            "0000002c:000010c8:0006:",
        ] {
            assert_eq!(
                position(Some(&sqlserver(bad, None, None)), (0, 0, 0)),
                Err(PositionError::SqlServerLsn),
                "{bad}"
            );
        }
    }

    #[test]
    fn other_connectors() {
        let pg = Source { connector: Some("postgresql".into()), lsn: Some(0x1_0000_0000), ..Source::default() };
        assert_eq!(position(Some(&pg), (0, 0, 0)).unwrap(), "0000000100000000");
        let my = Source {
            connector: Some("mysql".into()),
            file: Some("mysql-bin.000003".into()),
            pos: Some(154),
            row: Some(1),
            ..Source::default()
        };
        assert_eq!(position(Some(&my), (0, 0, 0)).unwrap(), "0000000003000000000000000001540000000001");
        let unknown = Source { connector: Some("oracle".into()), ts_ms: Some(5), ..Source::default() };
        assert_eq!(position(Some(&unknown), (9, 2, 77)).unwrap().len(), 50);
        assert_eq!(position(None, (9, 2, 77)).unwrap(), format!("{:020}{:010}{:020}", 9, 2, 77));
    }

    proptest! {
        /// Sorting positions as strings gives the order of (commit, change, serial) with a
        /// null change LSN first: the source commit order.
        #[test]
        fn sqlserver_positions_sort_in_source_order(
            mut changes in proptest::collection::vec(
                (0u128..(1u128 << 80), proptest::option::of(0u128..(1u128 << 80)), proptest::option::of(0i64..i64::MAX)),
                1..40,
            )
        ) {
            let mut by_position: Vec<_> = changes
                .iter()
                .map(|(c, ch, s)| {
                    let src = sqlserver(&lsn(*c), ch.map(lsn).as_deref(), *s);
                    (position(Some(&src), (0, 0, 0)).unwrap(), (*c, *ch, s.unwrap_or(0)))
                })
                .collect();
            by_position.sort();
            changes.sort_by_key(|(c, ch, s)| (*c, *ch, s.unwrap_or(0)));
            let expected: Vec<_> = changes.iter().map(|(c, ch, s)| (*c, *ch, s.unwrap_or(0))).collect();
            let got: Vec<_> = by_position.into_iter().map(|(_, t)| t).collect();
            prop_assert_eq!(got, expected);
        }

        #[test]
        fn mysql_and_fallback_positions_sort_in_source_order(
            mut items in proptest::collection::vec((0u32..1_000_000, 0i64..i64::MAX, 0i64..1_000_000), 1..40)
        ) {
            let mut mysql: Vec<_> = items.iter().map(|(f, p, r)| {
                let src = Source {
                    connector: Some("mysql".into()),
                    file: Some(format!("binlog.{f:06}").into()),
                    pos: Some(*p),
                    row: Some(*r),
                    ..Source::default()
                };
                (position(Some(&src), (0, 0, 0)).unwrap(), (*f, *p, *r))
            }).collect();
            mysql.sort();
            let mut fallback: Vec<_> = items.iter().map(|(f, p, r)| {
                (position(None, (*p, i64::from(*f), *r)).unwrap(), (i64::from(*f), *p, *r))
            }).collect();
            fallback.sort();
            items.sort();
            prop_assert_eq!(mysql.into_iter().map(|(_, t)| t).collect::<Vec<_>>(), items.clone());
            let mut expected_fallback: Vec<_> = items.iter().map(|(f, p, r)| (i64::from(*f), *p, *r)).collect();
            expected_fallback.sort_by_key(|(f, p, r)| (*p, *f, *r));
            prop_assert_eq!(fallback.into_iter().map(|(_, t)| t).collect::<Vec<_>>(), expected_fallback);
        }
    }
}
