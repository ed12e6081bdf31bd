//! MySQL and MariaDB: the GTID when there is one, else the binlog file number · position ·
//! row within one server's binlog.
//!
//! A binlog position means something only on the server that wrote it: "The connector records
//! its position in the server's binlog, which is different on each server in the cluster"
//! (Debezium's MySQL docs, "Supported topologies"). After a failover or a restore the file names
//! and positions start over on another server. `source.server_id` does not name that server:
//! Debezium copies it from the binlog event header, which carries the id of the server where
//! the change *originated* (the primary, when the connector reads a replica). Positions are
//! therefore ordered by:
//!
//! - **GTID** (`server_uuid:transaction_id`, tagged `server_uuid:tag:transaction_id`; MariaDB
//!   `domain-server-seq`): transaction numbers of one origin (uuid and tag; MariaDB domain)
//!   follow its commit order on every server that replays them, which is what lets Debezium
//!   "fail over to different … replicas" with GTIDs (same docs). The lineage is the origin;
//!   within one transaction, changes follow their binlog position and row. (A transaction read
//!   again from another server after a failover is ordered by that server's positions: its
//!   changes are then applied once more, in order, ending where they ended before.)
//! - Without a GTID (GTID mode off, snapshots): the binlog, named by the originating server id
//!   and the binlog base name (`mysql-bin` of `mysql-bin.000003`). Debezium supports no failover
//!   without GTIDs ("If that server fails, that server must be restarted or recovered before
//!   the connector can continue"); pointing a connector at another server whose binlog has the
//!   same base name, without GTIDs, is the one case these positions would mistake.

use super::{LINEAGE_WIDTH, PositionError, non_negative, start};
use crate::debezium::envelope::Source;
use crate::digits::push_decimal;

/// With a GTID: lineage, transaction number (20 digits), binlog position (20), row (10).
const GTID_WIDTH: usize = LINEAGE_WIDTH + 20 + 20 + 10;
/// Without: lineage, binlog file number (10 digits), binlog position (20), row (10).
const BINLOG_WIDTH: usize = LINEAGE_WIDTH + 10 + 20 + 10;
/// The widest of the two forms.
pub(super) const WIDTH: usize = if GTID_WIDTH > BINLOG_WIDTH { GTID_WIDTH } else { BINLOG_WIDTH };

/// (origin, transaction number) of a MySQL or MariaDB GTID.
fn parse_gtid(gtid: &str) -> Result<(String, u64), PositionError> {
    let number = |n: &str| n.parse::<u64>().map_err(|_| PositionError::MySqlGtid);
    if let Some((origin, n)) = gtid.rsplit_once(':') {
        // MySQL: the origin is the server uuid (and tag).
        if origin.is_empty() {
            return Err(PositionError::MySqlGtid);
        }
        return Ok((format!("mysql-gtid:{}", origin.to_ascii_lowercase()), number(n)?));
    }
    // MariaDB: domain-server-seq; sequence numbers are per domain.
    let mut parts = gtid.split('-');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(domain), Some(server), Some(seq), None) => {
            number(domain)?;
            number(server)?;
            Ok((format!("mariadb-gtid:{domain}"), number(seq)?))
        }
        _ => Err(PositionError::MySqlGtid),
    }
}

/// `None` without a binlog file and position.
pub(super) fn position(source: &Source<'_>) -> Result<Option<String>, PositionError> {
    let (Some(file), Some(pos)) = (source.file.as_deref(), source.pos) else { return Ok(None) };
    let (base, number) = file.rsplit_once('.').ok_or(PositionError::MySqlFile)?;
    let number: u64 = number.parse().map_err(|_| PositionError::MySqlFile)?;
    let pos = non_negative(pos)?;
    let row = non_negative(source.row.unwrap_or(0))?;
    if let Some(gtid) = source.gtid.as_deref().filter(|g| !g.is_empty()) {
        let (origin, transaction) = parse_gtid(gtid)?;
        let mut out = start(origin.as_bytes(), GTID_WIDTH);
        push_decimal(&mut out, transaction, 20);
        push_decimal(&mut out, pos, 20);
        push_decimal(&mut out, row, 10);
        return Ok(Some(out));
    }
    let mut lineage = String::with_capacity(32);
    lineage.push_str("mysql:");
    if let Some(server_id) = source.server_id {
        lineage.push_str(itoa::Buffer::new().format(server_id));
    }
    lineage.push(':');
    lineage.push_str(base);
    let mut out = start(lineage.as_bytes(), BINLOG_WIDTH);
    push_decimal(&mut out, number, 10);
    push_decimal(&mut out, pos, 20);
    push_decimal(&mut out, row, 10);
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

    #[test]
    fn gtids_order_across_the_servers_that_replay_them() {
        let with_gtid = |file: &str, pos: i64, gtid: &str| {
            position(&Source { gtid: Some(gtid.to_string().into()), ..mysql(1, file, pos, 0) }).unwrap().unwrap()
        };
        // The connector moved from replica R1 to R2: the binlog went back, the GTID forward.
        let uuid = "3E11FA47-71CA-11E1-9E33-C80AA9429562";
        let on_r1 = with_gtid("mysql-bin.000100", 5000, &format!("{uuid}:41"));
        let on_r2 = with_gtid("mysql-bin.000007", 300, &format!("{uuid}:42"));
        assert_eq!(on_r1[..8], on_r2[..8], "one origin, one lineage");
        assert!(on_r2 > on_r1, "transaction 42 follows 41 wherever it is read");
        assert_eq!(on_r1.len(), 58);
        // Within one transaction: binlog position and row.
        assert!(with_gtid("mysql-bin.000100", 5100, &format!("{uuid}:41")) > on_r1);
        // Another origin (multi-primary) is another lineage; so is a tag.
        assert_ne!(with_gtid("b.1", 4, "6aafb3ca-9b99-11ee-a237-4201f300802c:187141265")[..8], on_r1[..8]);
        assert_ne!(with_gtid("b.1", 4, &format!("{uuid}:etl:43"))[..8], on_r1[..8]);
        assert_eq!(with_gtid("b.1", 4, &format!("{}:41", uuid.to_lowercase()))[..8], on_r1[..8], "uuid case");
        // MariaDB: per domain.
        let (m1, m2) = (with_gtid("m.1", 900, "0-1-3"), with_gtid("m.1", 100, "0-2-4"));
        assert_eq!(m1[..8], m2[..8], "the originating server does not split a domain");
        assert!(m2 > m1);
        assert_ne!(with_gtid("m.1", 100, "1-1-4")[..8], m1[..8]);
        for bad in [":5", "uuid:x", "0-1", "0-1-2-3", "a-1-2"] {
            let source = Source { gtid: Some(bad.into()), ..mysql(1, "b.1", 4, 0) };
            assert_eq!(position(&source), Err(PositionError::MySqlGtid), "{bad}");
        }
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
