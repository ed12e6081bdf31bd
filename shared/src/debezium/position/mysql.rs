//! MySQL and MariaDB: binlog file number · position · row, within one server's binlog.
//!
//! A binlog position means something only on the server that wrote it: "The connector records
//! its position in the server's binlog, which is different on each server in the cluster"
//! (Debezium's MySQL docs, "Supported topologies"). After a failover or a restore the file names
//! and positions start over on another server. The lineage is therefore the server id and the
//! binlog base name (`mysql-bin` of `mysql-bin.000003`): positions compare only within it.

use super::{PositionError, non_negative, start};
use crate::debezium::envelope::Source;
use crate::digits::push_decimal;

/// `None` without a binlog file and position.
pub(super) fn position(source: &Source<'_>) -> Result<Option<String>, PositionError> {
    let (Some(file), Some(pos)) = (source.file.as_deref(), source.pos) else { return Ok(None) };
    let (base, number) = file.rsplit_once('.').ok_or(PositionError::MySqlFile)?;
    let number: u64 = number.parse().map_err(|_| PositionError::MySqlFile)?;
    let mut lineage = String::with_capacity(32);
    lineage.push_str("mysql:");
    if let Some(server_id) = source.server_id {
        lineage.push_str(itoa::Buffer::new().format(server_id));
    }
    lineage.push(':');
    lineage.push_str(base);
    let mut out = start(lineage.as_bytes(), 48);
    push_decimal(&mut out, number, 10);
    push_decimal(&mut out, non_negative(pos)?, 20);
    push_decimal(&mut out, non_negative(source.row.unwrap_or(0))?, 10);
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn mysql(server_id: i64, file: &str, pos: i64, row: i64) -> Source<'static> {
        Source {
            connector: Some("mysql".into()),
            server_id: Some(server_id),
            file: Some(file.to_string().into()),
            pos: Some(pos),
            row: Some(row),
            ..Source::default()
        }
    }

    #[test]
    fn form_and_lineage() {
        let p = position(&mysql(223344, "mysql-bin.000003", 154, 1)).unwrap().unwrap();
        assert_eq!(&p[8..], "0000000003000000000000000001540000000001");
        let after_failover = position(&mysql(223355, "binlog.000002", 400, 0)).unwrap().unwrap();
        assert_ne!(p[..8], after_failover[..8], "another server's binlog is another lineage");
        let same_server_new_name = position(&mysql(223344, "binlog.000002", 400, 0)).unwrap().unwrap();
        assert_ne!(p[..8], same_server_new_name[..8], "a renamed binlog is another lineage");
        let rotated = position(&mysql(223344, "mysql-bin.000004", 4, 0)).unwrap().unwrap();
        assert_eq!(p[..8], rotated[..8], "rotation keeps the lineage");
        assert!(rotated > p);
        assert_eq!(position(&mysql(1, "binlog", 4, 0)), Err(PositionError::MySqlFile));
        assert_eq!(position(&mysql(1, "binlog.x", 4, 0)), Err(PositionError::MySqlFile));
        assert_eq!(position(&mysql(1, "binlog.000001", -4, 0)), Err(PositionError::Negative));
    }

    proptest! {
        #[test]
        fn positions_sort_in_binlog_order(
            mut items in proptest::collection::vec((0u32..1_000_000, 0i64..i64::MAX, 0i64..1_000_000), 1..40)
        ) {
            let mut by_position: Vec<_> = items
                .iter()
                .map(|(f, p, r)| (position(&mysql(7, &format!("binlog.{f:06}"), *p, *r)).unwrap().unwrap(), (*f, *p, *r)))
                .collect();
            by_position.sort();
            items.sort();
            prop_assert_eq!(by_position.into_iter().map(|(_, t)| t).collect::<Vec<_>>(), items);
        }
    }
}
