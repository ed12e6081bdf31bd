//! Which of two changes of one key is newer — or that it cannot be known.
//!
//! The loader applies a change only when it is **provably newer** than what the target holds,
//! drops it as stale only when it is **provably older or the same**, and rejects it with rule
//! `position_regressed` otherwise. The same rules pick the latest change of a key within a
//! batch ([`crate::plan`]) and run as SQL in the apply transaction
//! ([`crate::redshift::sql`] renders this function as three predicates; a test checks the two
//! agree on PostgreSQL).
//!
//! The evidence, strongest first:
//!
//! 1. **Source position, within one lineage**, when the source commit times (`source.ts_ms`)
//!    do not contradict it: greater position and commit time not earlier → newer; equal
//!    position → the same change (stale); smaller position and commit time not later → older
//!    (stale). A position that went back while the commit time went forward is a rebuilt source
//!    (a PostgreSQL cluster restored from a dump, a MySQL `RESET MASTER`) or a clock that
//!    stepped: positions alone cannot tell, so they do not decide.
//! 2. **A delete without a position over a stored delete** (a tombstone after its delete): the
//!    key is already deleted; stale — unless, on the same partition, the tombstone lies beyond
//!    the offset right after the stored delete's: records came in between, and it may be all
//!    that is left of a later delete (its event compacted away, after a re-create that was
//!    dead-lettered). Then Kafka order places it, and the row takes its coordinates.
//! 3. **Kafka order within one topic-partition**: Debezium writes the changes of a key to one
//!    partition in the order it reads them, so a later offset is a later change and an equal
//!    offset the same record (a redelivery). Offsets start over when a topic is recreated or
//!    the cluster replaced, so they decide only when the commit times do not contradict them
//!    (a later offset and a commit time not earlier; an earlier or equal offset and a commit
//!    time not later) — except after rule 1's contradiction, where the offset is the tie-break
//!    between a position and a commit time that disagree (a rebuilt source, a clock that
//!    stepped back).
//! 4. **A stored row without Kafka coordinates** (written before they were recorded, when
//!    positions had no lineage): a strictly later commit time is newer, a strictly earlier one
//!    stale — so targets loaded by an older release keep working.
//! 5. Otherwise — different lineages and partitions, signals that contradict each other, or
//!    no evidence at all — **unknown**.
//!
//! A change with neither position nor commit time (a tombstone) rests on Kafka order alone:
//! after a topic is recreated, a tombstone at a low offset is taken for an old one. Its delete
//! event, which comes just before it, has a position.

use super::Position;

/// What the pipeline knows of where a change sits.
#[derive(Debug, Clone, Copy)]
pub struct Evidence<'a> {
    /// The change's source position ([`Position::none`] when unknown: a tombstone, a connector
    /// without a rule).
    pub position: &'a Position,
    /// `source.ts_ms`: the source's commit time, ms since the epoch.
    pub source_ts_ms: Option<i64>,
    /// The Kafka topic, partition and offset of the record that carried the change.
    pub kafka: Option<(&'a str, i64, i64)>,
    /// The change is a delete (a stored row marked deleted, or a delete-ledger entry).
    pub deleted: bool,
    /// A snapshot read (`op` `r`): its `ts_ms` is when the row was read, not when it was
    /// committed, so the state it holds is from that time *or earlier* (MySQL reads each table
    /// after the snapshot's consistent point: a change streamed next can have committed before
    /// the read). Its time is an upper bound, not a commit time.
    pub snapshot: bool,
}

/// The verdict on an incoming change against a stored (or earlier) one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Provably newer: apply it.
    Newer,
    /// Provably older, or the same change again: nothing to do.
    Stale,
    /// Cannot be known: reject it (`position_regressed`).
    Unknown,
}

/// Compare `incoming` with `stored` (see the module docs for the rules).
pub fn compare(incoming: &Evidence<'_>, stored: &Evidence<'_>) -> Order {
    let (s, t) = (incoming, stored);
    let same_lineage = s.position.is_known() && t.position.is_known() && s.position.lineage() == t.position.lineage();
    let times = s.source_ts_ms.zip(t.source_ts_ms);
    // Does the time contradict "s is newer" (s provably earlier: needs t's time to be a commit
    // time) or "s is older or the same" (s provably later: needs s's time to be one)?
    let against_newer = times.is_some_and(|(a, b)| a < b && !t.snapshot);
    let against_stale = times.is_some_and(|(a, b)| a > b && !s.snapshot);
    if same_lineage {
        let (sp, tp) = (s.position.as_str(), t.position.as_str());
        if sp == tp || (sp < tp && !against_stale) {
            return Order::Stale;
        }
        if sp > tp && !against_newer {
            return Order::Newer;
        }
    }
    // Past rule 1 with one lineage, position and commit time contradict each other.
    let contradiction = same_lineage;
    let after_next = match (s.kafka, t.kafka) {
        (Some((s_topic, s_partition, s_offset)), Some((t_topic, t_partition, t_offset))) => {
            s_topic == t_topic && s_partition == t_partition && s_offset > t_offset.saturating_add(1)
        }
        _ => false,
    };
    if !s.position.is_known() && s.deleted && t.deleted && !after_next {
        return Order::Stale;
    }
    match (s.kafka, t.kafka) {
        (Some((s_topic, s_partition, s_offset)), Some((t_topic, t_partition, t_offset)))
            if s_topic == t_topic && s_partition == t_partition =>
        {
            if s_offset > t_offset && (contradiction || !against_newer) {
                Order::Newer
            } else if s_offset <= t_offset && (contradiction || !against_stale) {
                Order::Stale
            } else {
                Order::Unknown
            }
        }
        // 4. A stored row without Kafka coordinates was written before they were recorded
        //    (its position has no lineage either): commit times alone, strictly.
        (_, None) => match times {
            Some((a, b)) if a > b => Order::Newer,
            Some((a, b)) if a < b => Order::Stale,
            _ => Order::Unknown,
        },
        _ => Order::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(lineage: &str, native: &str) -> Position {
        Position::from_stored(format!("{lineage}{native}"))
    }

    fn ev<'a>(position: &'a Position, ts: Option<i64>, kafka: Option<(&'a str, i64, i64)>) -> Evidence<'a> {
        Evidence { position, source_ts_ms: ts, kafka, deleted: false, snapshot: false }
    }

    #[test]
    fn a_snapshot_reads_time_bounds_its_state_from_above() {
        // MySQL: the snapshot row was read at 5,000; a change streamed next committed at 4,000
        // (after the consistent point, before the read) on another lineage.
        let (snap_pos, stream_pos) = (pos(A, "0001"), pos(B, "0024"));
        let snapshot = Evidence { snapshot: true, ..ev(&snap_pos, Some(5_000), Some(("t", 0, 0))) };
        let streamed = ev(&stream_pos, Some(4_000), Some(("t", 0, 1)));
        assert_eq!(compare(&streamed, &snapshot), Order::Newer, "not contradicted: the snapshot's state may be older");
        assert_eq!(compare(&snapshot, &streamed), Order::Stale, "a redelivered snapshot row");
        // A streamed change with a later time still contradicts a smaller position (a restore).
        let lower = pos(A, "0000");
        let restored = ev(&lower, Some(6_000), Some(("t", 0, 2)));
        assert_eq!(compare(&restored, &snapshot), Order::Newer, "by Kafka order, as for any rebuilt source");
    }

    const A: &str = "aaaaaaaa";
    const B: &str = "bbbbbbbb";

    #[test]
    fn one_lineage_positions_decide_when_commit_times_agree() {
        let (p1, p2) = (pos(A, "0001"), pos(A, "0002"));
        assert_eq!(compare(&ev(&p2, Some(10), None), &ev(&p1, Some(9), None)), Order::Newer);
        assert_eq!(compare(&ev(&p2, Some(10), None), &ev(&p1, Some(10), None)), Order::Newer, "same ms");
        assert_eq!(compare(&ev(&p1, Some(9), None), &ev(&p2, Some(10), None)), Order::Stale);
        assert_eq!(compare(&ev(&p1, Some(12), None), &ev(&p1, Some(9), None)), Order::Stale, "same position");
        assert_eq!(compare(&ev(&p2, None, None), &ev(&p1, Some(10), None)), Order::Newer, "no time: position alone");
    }

    #[test]
    fn a_contradiction_falls_to_kafka_order_or_is_unknown() {
        let (low, high) = (pos(A, "0001"), pos(A, "0009"));
        // A rebuilt source: position back, time forward.
        let rebuilt = ev(&low, Some(20), Some(("t", 0, 11)));
        let stored = ev(&high, Some(10), Some(("t", 0, 10)));
        assert_eq!(compare(&rebuilt, &stored), Order::Newer, "later offset on the same partition");
        assert_eq!(compare(&ev(&low, Some(20), None), &stored), Order::Unknown);
        assert_eq!(compare(&ev(&low, Some(20), Some(("t", 1, 11))), &stored), Order::Unknown, "other partition");
        // A late replay of a pre-rebuild change: position ahead, time behind, earlier offset.
        let replayed = ev(&high, Some(10), Some(("t", 0, 10)));
        let stored_after_rebuild = ev(&low, Some(20), Some(("t", 0, 11)));
        assert_eq!(compare(&replayed, &stored_after_rebuild), Order::Stale);
        // A clock that stepped back within one log: the later offset decides.
        let stepped = ev(&high, Some(5), Some(("t", 0, 12)));
        assert_eq!(compare(&stepped, &ev(&low, Some(9), Some(("t", 0, 11)))), Order::Newer);
    }

    #[test]
    fn other_lineages_need_kafka_order() {
        // MySQL after a failover: another server id and binlog (c11).
        let (old, new) = (pos(A, "0000000010000000000000001200"), pos(B, "0000000002000000000000000400"));
        let after = ev(&new, Some(1_718_000_060_000), Some(("customers", 0, 11)));
        let before = ev(&old, Some(1_718_000_000_000), Some(("customers", 0, 10)));
        assert_eq!(compare(&after, &before), Order::Newer);
        assert_eq!(compare(&before, &after), Order::Stale);
        assert_eq!(compare(&ev(&new, Some(1_718_000_060_000), None), &before), Order::Unknown);
    }

    #[test]
    fn rows_stored_before_kafka_coordinates_compare_by_commit_time() {
        let legacy = Position::from_stored("0000002d0000001000000000002d0000000ffffe0000000000000001");
        let new = pos(A, "0001");
        let stored = ev(&legacy, Some(100), None);
        assert_eq!(compare(&ev(&new, Some(101), Some(("t", 0, 5))), &stored), Order::Newer);
        assert_eq!(compare(&ev(&new, Some(99), Some(("t", 0, 5))), &stored), Order::Stale);
        assert_eq!(compare(&ev(&new, Some(100), Some(("t", 0, 5))), &stored), Order::Unknown, "a tie");
        assert_eq!(compare(&ev(&new, None, Some(("t", 0, 5))), &stored), Order::Unknown, "no time");
    }

    #[test]
    fn offsets_that_contradict_commit_times_do_not_decide() {
        // A recreated topic (or a replaced cluster): offsets start over.
        let none = Position::none();
        let stored = ev(&none, Some(1_000), Some(("t", 0, 1_000)));
        let day_later = ev(&none, Some(1_000 + 86_400_000), Some(("t", 0, 3)));
        assert_eq!(compare(&day_later, &stored), Order::Unknown, "not stale: a day newer by its commit time");
        let older_by_time = ev(&none, Some(500), Some(("t", 0, 1_001)));
        assert_eq!(compare(&older_by_time, &stored), Order::Unknown, "not newer: an earlier commit");
        assert_eq!(compare(&ev(&none, Some(1_000), Some(("t", 0, 1_001))), &stored), Order::Newer, "same ms");
        assert_eq!(compare(&ev(&none, Some(1_000), Some(("t", 0, 999))), &stored), Order::Stale);
        assert_eq!(compare(&ev(&none, None, Some(("t", 0, 3))), &stored), Order::Stale, "no time: offsets alone");
        // Other lineages (PostgreSQL transactions without `sequence`): Kafka order with times.
        let (t1, t2) = (pos(A, "0100"), pos(B, "0200"));
        let applied = ev(&t2, Some(7), Some(("t", 0, 0)));
        assert_eq!(compare(&ev(&t1, Some(7), Some(("t", 0, 1))), &applied), Order::Newer);
        assert_eq!(compare(&ev(&t1, Some(6), Some(("t", 0, 1))), &applied), Order::Unknown);
    }

    #[test]
    fn positionless_changes_use_kafka_order_and_tombstones_after_deletes_are_stale() {
        let none = Position::none();
        let p = pos(A, "0005");
        let tombstone =
            Evidence { position: &none, source_ts_ms: None, kafka: Some(("t", 0, 8)), deleted: true, snapshot: false };
        let stored_delete =
            Evidence { position: &p, source_ts_ms: Some(1), kafka: Some(("t", 0, 9)), deleted: true, snapshot: false };
        assert_eq!(compare(&tombstone, &stored_delete), Order::Stale, "the key is already deleted");
        let live = Evidence { deleted: false, ..stored_delete };
        assert_eq!(compare(&tombstone, &live), Order::Stale, "a re-create at a later offset survives");
        let right_after = Evidence { kafka: Some(("t", 0, 10)), ..stored_delete };
        assert_eq!(
            compare(&Evidence { kafka: Some(("t", 0, 10)), ..tombstone }, &stored_delete),
            Order::Stale,
            "its own"
        );
        assert_eq!(
            compare(&Evidence { kafka: Some(("t", 0, 11)), ..tombstone }, &right_after),
            Order::Stale,
            "the next offset"
        );
        assert_eq!(
            compare(&Evidence { kafka: Some(("t", 0, 14)), ..tombstone }, &stored_delete),
            Order::Newer,
            "records in between: maybe a later delete"
        );
        assert_eq!(compare(&Evidence { kafka: Some(("t", 2, 14)), ..tombstone }, &stored_delete), Order::Stale);
        let older_live = Evidence { kafka: Some(("t", 0, 7)), ..live };
        assert_eq!(compare(&tombstone, &older_live), Order::Newer, "the tombstone deletes an older row");
        let elsewhere = Evidence { kafka: Some(("t", 3, 7)), ..live };
        assert_eq!(compare(&tombstone, &elsewhere), Order::Unknown);
        assert_eq!(compare(&ev(&none, Some(1), None), &ev(&none, Some(1), None)), Order::Unknown);
    }
}
