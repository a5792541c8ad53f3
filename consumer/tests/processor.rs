//! `RecordProcessor` on hand-built stream records (KPL aggregates of encoded events):
//! aggregation, each kind of dead letter, counts, checkpoints, resuming inside an aggregate,
//! and when there is something to commit.

// Tests may panic on unexpected values: that is how they fail.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use inlet_consumer::RecordProcessor;
use inlet_consumer::processor::CommitCounts;
use inlet_rollup::{Lateness, ShardRollup, ViewingRow};
use inlet_schemas::events::{
    DeviceType, Emitter, Envelope, Platform, PlayStart, RebufferEnd, Viewing, envelope::Body, viewing,
};
use inlet_schemas::kpl::{self, UserRecord};
use inlet_schemas::validate::Limits;
use inlet_seams::{
    Checkpoint, DeadLetter, DeadLetterKind, HashKeyRange, LeaseToken, Record, SequenceNumber, ShardCommit, ShardId,
    hash_key,
};
use prost::Message;
use std::sync::atomic::{AtomicU64, Ordering};

/// 2026-01-01T00:00:00Z.
const T0: i64 = 1_767_225_600_000;
const GARBAGE: &[u8] = &[0xFF, 0xFF, 0x01, b'x'];

fn shard() -> ShardId {
    ShardId::from_index(0)
}

fn token() -> LeaseToken {
    LeaseToken {
        shard: shard(),
        owner: "worker-1".into(),
        counter: 7,
    }
}

fn processor() -> RecordProcessor {
    restored(None)
}

fn restored(checkpoint: Option<Checkpoint>) -> RecordProcessor {
    RecordProcessor::new(
        shard(),
        ShardRollup::new(Lateness::default()),
        checkpoint,
        Limits::default(),
        Lateness::default(),
    )
}

fn checkpoint(sequence: u64, sub_sequence: u32) -> Checkpoint {
    Checkpoint {
        sequence: SequenceNumber::from_u64(sequence),
        sub_sequence,
    }
}

/// A fresh UUIDv7 (distinct within the test binary).
fn new_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!("01890a5d-ac96-774b-bcce-{:012x}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// A valid PLAY_START of `title` at `t`, with an id of its own.
fn event(title: &str, t: i64) -> Envelope {
    Envelope {
        event_id: new_id(),
        event_time_ms: t,
        receive_time_ms: t,
        emitter: Some(Emitter {
            app_id: "tv-app".into(),
            app_version: "5.1.0".into(),
            device_type: DeviceType::Tv as i32,
            platform: Platform::AndroidTv as i32,
            country: "US".into(),
        }),
        schema_version: 1,
        body: Some(Body::Viewing(Viewing {
            profile_id: "profile-1".into(),
            playback_session_id: format!("play-{title}"),
            title_id: title.into(),
            kind: Some(viewing::Kind::PlayStart(PlayStart { startup_ms: 500 })),
        })),
    }
}

fn enc(event: &Envelope) -> Bytes {
    Bytes::from(event.encode_to_vec())
}

/// A stream record holding a KPL aggregate of `users` (data), all with partition key `pk`.
fn aggregate(sequence: u64, users: &[Bytes]) -> Record {
    let keyed: Vec<(&str, Bytes)> = users.iter().map(|data| ("pk", data.clone())).collect();
    aggregate_keyed(sequence, &keyed)
}

/// A stream record holding a KPL aggregate of `(partition key, data)` user records; its outer
/// partition key is the first user record's, as the producer writes it.
fn aggregate_keyed(sequence: u64, users: &[(&str, Bytes)]) -> Record {
    let users: Vec<UserRecord> = users
        .iter()
        .map(|(pk, data)| UserRecord {
            partition_key: (*pk).into(),
            explicit_hash_key: None,
            data: data.clone(),
        })
        .collect();
    Record {
        sequence: SequenceNumber::from_u64(sequence),
        partition_key: users[0].partition_key.clone(),
        explicit_hash_key: None,
        data: kpl::encode(&users),
        arrival_ms: T0,
    }
}

/// A stream record that is not an aggregate.
fn plain(sequence: u64, data: Bytes) -> Record {
    Record {
        sequence: SequenceNumber::from_u64(sequence),
        partition_key: "plain-pk".into(),
        explicit_hash_key: None,
        data,
        arrival_ms: T0,
    }
}

/// `record` with one byte of its MD5 digest flipped.
fn corrupt(mut record: Record) -> Record {
    let mut data = record.data.to_vec();
    let last = data.len() - 1;
    data[last] ^= 0x01;
    record.data = Bytes::from(data);
    record
}

fn dead(counts: &CommitCounts, kind: DeadLetterKind) -> u64 {
    counts.dead[DeadLetterKind::ALL.iter().position(|k| *k == kind).unwrap()]
}

fn total_dead(counts: &CommitCounts) -> u64 {
    counts.dead.iter().sum()
}

/// Events per title in the commit's viewing rows.
fn events_by_title(rows: &[ViewingRow]) -> Vec<(String, i64)> {
    let mut out: Vec<(String, i64)> = Vec::new();
    for r in rows {
        match out.iter_mut().find(|(t, _)| *t == r.title_id) {
            Some(entry) => entry.1 += r.agg.events,
            None => out.push((r.title_id.clone(), r.agg.events)),
        }
    }
    out.sort();
    out
}

fn take(p: &mut RecordProcessor) -> (ShardCommit, CommitCounts) {
    p.take_commit(&token(), false).expect("something to commit")
}

// ---------------------------------------------------------------------------------------------

#[test]
fn valid_events_are_aggregated() {
    let mut p = processor();
    p.process(&aggregate(
        1,
        &[
            enc(&event("t1", T0)),
            enc(&event("t2", T0 + 1)),
            enc(&event("t1", T0 + 2)),
        ],
    ));
    p.process(&plain(2, enc(&event("t3", T0 + 60_000))));
    assert_eq!(p.pending(), 4);
    assert!(p.has_pending());
    let (commit, counts) = take(&mut p);
    assert_eq!(
        counts,
        CommitCounts {
            read: 4,
            aggregated: 4,
            dead: [0; 4],
            duplicates: 0,
        }
    );
    assert_eq!(
        events_by_title(&commit.viewing),
        vec![("t1".into(), 2), ("t2".into(), 1), ("t3".into(), 1)]
    );
    let plays: i64 = commit.viewing.iter().map(|r| r.agg.plays).sum();
    assert_eq!(plays, 4);
    // t1, t2 in minute m, t3 in minute m + 1.
    let minute = T0 / 60_000;
    let mut keys: Vec<_> = commit.viewing.iter().map(|r| (r.minute, r.title_id.clone())).collect();
    keys.sort();
    assert_eq!(
        keys,
        vec![(minute, "t1".into()), (minute, "t2".into()), (minute + 1, "t3".into())]
    );
    assert!(commit.games.is_empty());
    assert!(commit.dead_letters.is_empty());
    assert_eq!(commit.checkpoint, Some(checkpoint(2, 0)));
    assert_eq!(commit.watermark_ms, Some(T0 + 60_000));
    assert_eq!(commit.token, token());
    assert!(!commit.shard_end);
    // Counts were handed out with the commit.
    assert_eq!(p.pending(), 0);
}

#[test]
fn corrupt_aggregate_is_one_dead_letter_and_processing_goes_on() {
    let mut p = processor();
    let bad = corrupt(aggregate(1, &[enc(&event("t1", T0)), enc(&event("t1", T0 + 1))]));
    p.process(&bad);
    p.process(&aggregate(2, &[enc(&event("t2", T0 + 2)), enc(&event("t2", T0 + 3))]));
    let (commit, counts) = take(&mut p);
    assert_eq!(
        commit.dead_letters,
        vec![DeadLetter {
            shard: shard(),
            sequence: SequenceNumber::from_u64(1),
            sub_sequence: 0,
            kind: DeadLetterKind::CorruptRecord,
            field: None,
            reason: "KPL aggregated record's MD5 digest does not match its protobuf message".into(),
            app_id: None,
            partition_key: "pk".into(),
            data: bad.data.clone(),
        }]
    );
    // The corrupt record counts as one record read; its events are not counted.
    assert_eq!(counts.read, 3);
    assert_eq!(counts.aggregated, 2);
    assert_eq!(dead(&counts, DeadLetterKind::CorruptRecord), 1);
    assert_eq!(events_by_title(&commit.viewing), vec![("t2".into(), 2)]);
    assert_eq!(commit.checkpoint, Some(checkpoint(2, 1)));
}

#[test]
fn truncated_and_empty_aggregates_are_corrupt_records() {
    let mut p = processor();
    // The magic and a few bytes: shorter than magic + digest.
    let mut short = kpl::MAGIC.to_vec();
    short.extend_from_slice(&[1, 2, 3]);
    p.process(&plain(1, Bytes::from(short)));
    // A valid aggregate that holds nothing: the 20 bytes an empty aggregator gives.
    p.process(&plain(2, kpl::Aggregator::new().finish()));
    let (commit, counts) = take(&mut p);
    let got: Vec<_> = commit
        .dead_letters
        .iter()
        .map(|d| (d.sequence.to_u64(), d.kind, d.reason.clone()))
        .collect();
    assert_eq!(
        got,
        vec![
            (
                Some(1),
                DeadLetterKind::CorruptRecord,
                "KPL aggregated record of 7 bytes is shorter than magic + MD5 digest (20)".into()
            ),
            (
                Some(2),
                DeadLetterKind::CorruptRecord,
                "KPL aggregated record holds no user records".into()
            ),
        ]
    );
    assert_eq!(
        counts,
        CommitCounts {
            read: 2,
            aggregated: 0,
            dead: [2, 0, 0, 0],
            duplicates: 0,
        }
    );
    assert_eq!(commit.checkpoint, Some(checkpoint(2, 0)));
}

#[test]
fn garbage_user_record_is_malformed() {
    let mut p = processor();
    p.process(&aggregate(
        5,
        &[
            enc(&event("t1", T0)),
            Bytes::from_static(GARBAGE),
            enc(&event("t1", T0 + 1)),
        ],
    ));
    let (commit, counts) = take(&mut p);
    assert_eq!(commit.dead_letters.len(), 1);
    let d = &commit.dead_letters[0];
    assert_eq!(d.kind, DeadLetterKind::Malformed);
    assert_eq!((d.sequence.clone(), d.sub_sequence), (SequenceNumber::from_u64(5), 1));
    assert_eq!(d.field, None);
    assert!(d.reason.starts_with("not an event: "), "{}", d.reason);
    assert_eq!(d.app_id, None);
    assert_eq!(d.data, Bytes::from_static(GARBAGE));
    assert_eq!(d.shard, shard());
    assert_eq!(
        counts,
        CommitCounts {
            read: 3,
            aggregated: 2,
            dead: [0, 1, 0, 0],
            duplicates: 0,
        }
    );
    assert_eq!(commit.checkpoint, Some(checkpoint(5, 2)));
}

#[test]
fn a_plain_record_of_garbage_is_malformed() {
    let mut p = processor();
    p.process(&plain(1, Bytes::from_static(GARBAGE)));
    let (commit, _) = take(&mut p);
    let d = &commit.dead_letters[0];
    assert_eq!(
        (d.kind, d.sub_sequence, d.partition_key.as_str()),
        (DeadLetterKind::Malformed, 0, "plain-pk")
    );
}

#[test]
fn dead_letter_inside_an_aggregate_has_its_own_partition_key() {
    let mut p = processor();
    // The malformed user record is the second one, with partition key pk-1; the aggregate's
    // outer partition key is the first user record's (pk-0).
    p.process(&aggregate_keyed(
        5,
        &[("pk-0", enc(&event("t1", T0))), ("pk-1", Bytes::from_static(GARBAGE))],
    ));
    let (commit, _) = take(&mut p);
    assert_eq!(commit.dead_letters[0].sub_sequence, 1);
    assert_eq!(commit.dead_letters[0].partition_key, "pk-1");
}

#[test]
fn invalid_event_is_filed_under_its_first_field() {
    let mut p = processor();
    let mut bad = event("", T0);
    if let Some(Body::Viewing(v)) = &mut bad.body {
        v.kind = Some(viewing::Kind::RebufferEnd(RebufferEnd {
            position_ms: 0,
            duration_ms: -5,
        }));
    }
    p.process(&aggregate(3, &[enc(&event("t1", T0)), enc(&bad)]));
    let (commit, counts) = take(&mut p);
    assert_eq!(
        commit.dead_letters,
        vec![DeadLetter {
            shard: shard(),
            sequence: SequenceNumber::from_u64(3),
            sub_sequence: 1,
            kind: DeadLetterKind::Invalid,
            field: Some("viewing.title_id".into()),
            reason: "invalid event: viewing.title_id: missing; viewing.rebuffer_end.duration_ms: -5 is negative".into(),
            app_id: Some("tv-app".into()),
            partition_key: "pk".into(),
            data: enc(&bad),
        }]
    );
    assert_eq!(
        counts,
        CommitCounts {
            read: 2,
            aggregated: 1,
            dead: [0, 0, 1, 0],
            duplicates: 0,
        }
    );
}

#[test]
fn late_event_is_filed_under_event_time() {
    let mut p = processor();
    let late = event("t1", T0);
    p.process(&aggregate(
        1,
        &[
            enc(&event("t1", T0 + 600_000)),
            enc(&late),
            // Exactly the allowed lateness behind: still counted.
            enc(&event("t1", T0 + 300_000)),
        ],
    ));
    let (commit, counts) = take(&mut p);
    assert_eq!(
        commit.dead_letters,
        vec![DeadLetter {
            shard: shard(),
            sequence: SequenceNumber::from_u64(1),
            sub_sequence: 1,
            kind: DeadLetterKind::Late,
            field: Some("event_time_ms".into()),
            reason: format!(
                "event time {T0} is 600000 ms behind the shard's watermark {} (allowed lateness 300000 ms)",
                T0 + 600_000
            ),
            app_id: Some("tv-app".into()),
            partition_key: "pk".into(),
            data: enc(&late),
        }]
    );
    assert_eq!(
        counts,
        CommitCounts {
            read: 3,
            aggregated: 2,
            dead: [0, 0, 0, 1],
            duplicates: 0,
        }
    );
    assert_eq!(commit.watermark_ms, Some(T0 + 600_000));
}

#[test]
fn every_record_read_is_aggregated_or_dead_lettered() {
    let mut p = processor();
    let mut invalid = event("t1", T0);
    invalid.emitter = None;
    p.process(&aggregate(
        1,
        &[enc(&event("t1", T0 + 600_000)), enc(&event("t2", T0 + 600_001))],
    ));
    p.process(&corrupt(aggregate(2, &[enc(&event("t1", T0)), enc(&event("t1", T0))])));
    p.process(&aggregate(
        3,
        &[
            Bytes::from_static(GARBAGE),
            enc(&invalid),
            enc(&event("t1", T0)),
            enc(&event("t3", T0 + 600_002)),
        ],
    ));
    p.process(&plain(4, enc(&event("t4", T0 + 600_003))));
    let (commit, counts) = take(&mut p);
    assert_eq!(counts.read, 8);
    assert_eq!(counts.aggregated, 4);
    assert_eq!(counts.dead, [1, 1, 1, 1]);
    assert_eq!(counts.read, counts.aggregated + total_dead(&counts));
    assert_eq!(commit.dead_letters.len() as u64, total_dead(&counts));
    let rows_events: i64 = commit.viewing.iter().map(|r| r.agg.events).sum();
    assert_eq!(rows_events as u64, counts.aggregated);
    let kinds: Vec<_> = commit
        .dead_letters
        .iter()
        .map(|d| (d.kind, d.sequence.to_u64().unwrap(), d.sub_sequence))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (DeadLetterKind::CorruptRecord, 2, 0),
            (DeadLetterKind::Malformed, 3, 0),
            (DeadLetterKind::Invalid, 3, 1),
            (DeadLetterKind::Late, 3, 2),
        ]
    );
    assert_eq!(commit.dead_letters[2].field.as_deref(), Some("emitter"));
}

#[test]
fn checkpoint_after_each_record_is_its_last_user_record() {
    let mut p = processor();
    let records = [
        (
            aggregate(
                10,
                &[enc(&event("t1", T0)), enc(&event("t1", T0)), enc(&event("t1", T0))],
            ),
            2,
        ),
        (plain(11, enc(&event("t1", T0))), 0),
        (
            corrupt(aggregate(12, &[enc(&event("t1", T0)), enc(&event("t1", T0))])),
            0,
        ),
        (aggregate(13, &[enc(&event("t1", T0)), Bytes::from_static(GARBAGE)]), 1),
        (aggregate(14, &[enc(&event("t1", T0))]), 0),
    ];
    for (record, last_sub) in &records {
        p.process(record);
        let (commit, _) = take(&mut p);
        assert_eq!(
            commit.checkpoint,
            Some(Checkpoint {
                sequence: record.sequence.clone(),
                sub_sequence: *last_sub
            })
        );
        p.committed(&commit);
        assert!(!p.has_pending());
    }
}

#[test]
fn restored_processor_skips_what_the_checkpoint_covers() {
    let mut p = restored(Some(checkpoint(2, 1)));
    assert!(!p.has_pending());
    // Before the checkpoint: skipped whole, even a corrupt one.
    p.process(&corrupt(aggregate(1, &[enc(&event("a", T0)), enc(&event("a", T0))])));
    assert_eq!(p.pending(), 0);
    assert!(!p.has_pending());
    assert!(p.take_commit(&token(), false).is_none());
    // The checkpointed record: sub-records 0 and 1 were processed before, 2 is new.
    p.process(&aggregate(
        2,
        &[enc(&event("b0", T0)), enc(&event("b1", T0)), enc(&event("b2", T0))],
    ));
    assert_eq!(p.pending(), 1);
    p.process(&aggregate(3, &[enc(&event("c0", T0)), enc(&event("c1", T0))]));
    assert_eq!(p.pending(), 3);
    let (commit, counts) = take(&mut p);
    assert_eq!(
        counts,
        CommitCounts {
            read: 3,
            aggregated: 3,
            dead: [0; 4],
            duplicates: 0,
        }
    );
    assert_eq!(
        events_by_title(&commit.viewing),
        vec![("b2".into(), 1), ("c0".into(), 1), ("c1".into(), 1)]
    );
    assert_eq!(commit.checkpoint, Some(checkpoint(3, 1)));
    assert!(commit.dead_letters.is_empty());
}

#[test]
fn records_read_again_after_a_commit_are_skipped() {
    let mut p = processor();
    let r1 = aggregate(1, &[enc(&event("a", T0)), enc(&event("b", T0))]);
    p.process(&r1);
    let (commit, _) = take(&mut p);
    p.committed(&commit);
    // A reader resuming at the checkpoint hands the same record again.
    p.process(&r1);
    assert_eq!(p.pending(), 0);
    assert!(p.take_commit(&token(), false).is_none());
}

#[test]
fn take_commit_is_none_when_nothing_is_new() {
    // Nothing ever processed.
    let mut p = processor();
    assert!(!p.has_pending());
    assert!(p.take_commit(&token(), false).is_none());
    // Restored, nothing processed since.
    let mut p = restored(Some(checkpoint(9, 0)));
    assert!(p.take_commit(&token(), false).is_none());
    // But the end of the shard is committed even with nothing new.
    let (commit, counts) = p.take_commit(&token(), true).expect("shard end");
    assert!(commit.shard_end);
    assert_eq!(commit.checkpoint, Some(checkpoint(9, 0)));
    assert_eq!(counts, CommitCounts::default());
}

#[test]
fn committed_then_take_commit_is_none() {
    let mut p = processor();
    p.process(&aggregate(1, &[enc(&event("a", T0))]));
    let (commit, _) = take(&mut p);
    p.committed(&commit);
    assert!(!p.has_pending());
    assert!(p.take_commit(&token(), false).is_none());
    // New records after the commit make a new one, with only their rows and counts.
    p.process(&aggregate(2, &[enc(&event("b", T0))]));
    let (commit, counts) = take(&mut p);
    assert_eq!(events_by_title(&commit.viewing), vec![("b".into(), 1)]);
    assert_eq!(counts.read, 1);
    assert_eq!(commit.checkpoint, Some(checkpoint(2, 0)));
}

#[test]
fn rows_are_cumulative_across_commits() {
    let mut p = processor();
    p.process(&aggregate(1, &[enc(&event("a", T0)), enc(&event("a", T0 + 1))]));
    let (commit, _) = take(&mut p);
    p.committed(&commit);
    p.process(&aggregate(2, &[enc(&event("a", T0 + 2))]));
    let (commit, counts) = take(&mut p);
    // The whole partial row of the touched window, not just the new event.
    assert_eq!(events_by_title(&commit.viewing), vec![("a".into(), 3)]);
    assert_eq!(counts.aggregated, 1);
}

#[test]
fn shard_end_of_an_empty_shard_is_committed() {
    // A closed shard with no records (or all trimmed): the reader reports shard end at once.
    // Its lease must still be marked finished so that its children can start.
    let mut p = processor();
    let commit = p.take_commit(&token(), true);
    assert!(commit.is_some_and(|(c, _)| c.shard_end));
}

// ---------------------------------------------------------------------------------------------
// The shard's hash-key range.

/// The shard's range in these tests: the second quarter of the key space.
fn range() -> HashKeyRange {
    HashKeyRange::split_evenly(4)[1]
}

/// The first partition key `k<i>` whose hash key satisfies `want`.
fn key_where(want: impl Fn(u128) -> bool) -> String {
    (0..).map(|i| format!("k{i}")).find(|k| want(hash_key(k))).unwrap()
}

/// A stream record holding a KPL aggregate of `users` (partition key, explicit hash key,
/// data); its outer keys are the first user record's, as the producer writes it.
fn aggregate_hashed(sequence: u64, users: &[(&str, Option<u128>, Bytes)]) -> Record {
    let users: Vec<UserRecord> = users
        .iter()
        .map(|(pk, ehk, data)| UserRecord {
            partition_key: (*pk).into(),
            explicit_hash_key: *ehk,
            data: data.clone(),
        })
        .collect();
    Record {
        sequence: SequenceNumber::from_u64(sequence),
        partition_key: users[0].partition_key.clone(),
        explicit_hash_key: users[0].explicit_hash_key,
        data: kpl::encode(&users),
        arrival_ms: T0,
    }
}

#[test]
fn user_records_outside_the_shard_range_are_processed_and_counted() {
    let r = range();
    let inside = key_where(|k| r.contains(k));
    let below = key_where(|k| k < r.start);
    let above = key_where(|k| k > r.end);
    let mut p = processor().with_hash_range(Some(r));
    p.process(&aggregate_hashed(
        1,
        &[
            (&inside, None, enc(&event("t1", T0))),
            (&below, None, enc(&event("t2", T0))),
            (&above, None, enc(&event("t3", T0))),
            // The explicit hash key decides, not the partition key; the range is inclusive.
            (&below, Some(r.start), enc(&event("t4", T0))),
            (&above, Some(r.end), enc(&event("t5", T0))),
            (&above, Some(r.start + 1), enc(&event("t6", T0))),
            (&inside, Some(r.start - 1), Bytes::from_static(GARBAGE)),
            (&inside, Some(r.end + 1), enc(&event("t7", T0))),
        ],
    ));
    // A plain record is where the stream put it by its own key: not checked.
    let mut lone = plain(2, enc(&event("t8", T0)));
    lone.partition_key = above.clone();
    p.process(&lone);
    assert_eq!(
        p.outside_range(),
        4,
        "keys below and above the range, by partition key (t2, t3) or explicit hash key (garbage, t7)"
    );
    let (commit, counts) = take(&mut p);
    assert_eq!(
        counts,
        CommitCounts {
            read: 9,
            aggregated: 8,
            dead: [0, 1, 0, 0],
            duplicates: 0,
        },
        "records outside the range are not dropped"
    );
    assert_eq!(
        events_by_title(&commit.viewing),
        ["t1", "t2", "t3", "t4", "t5", "t6", "t7", "t8"]
            .map(|t| (t.to_owned(), 1))
            .to_vec()
    );
    assert_eq!(commit.dead_letters[0].partition_key, inside);
    assert_eq!(commit.checkpoint, Some(checkpoint(2, 0)));
    // The count is cumulative: not reset by a commit.
    p.committed(&commit);
    assert_eq!(p.outside_range(), 4);
}

#[test]
fn without_a_range_nothing_is_checked() {
    let r = range();
    let mut p = processor();
    p.process(&aggregate_hashed(
        1,
        &[
            (&key_where(|k| r.contains(k)), None, enc(&event("t1", T0))),
            (&key_where(|k| !r.contains(k)), None, enc(&event("t2", T0))),
        ],
    ));
    assert_eq!(p.outside_range(), 0);
    assert_eq!(take(&mut p).1.aggregated, 2);
}

#[test]
fn user_records_the_checkpoint_covers_are_not_counted_again() {
    let out = key_where(|k| !range().contains(k));
    let record = aggregate_hashed(
        7,
        &[
            (&out, None, enc(&event("t1", T0))),
            (&out, None, enc(&event("t2", T0))),
            (&out, None, enc(&event("t3", T0))),
        ],
    );
    // Resumed inside the aggregate, after its first two user records.
    let mut p = restored(Some(checkpoint(7, 1))).with_hash_range(Some(range()));
    p.process(&record);
    assert_eq!(p.outside_range(), 1);
    assert_eq!(take(&mut p).1.read, 1);
}

/// A copy of an event already aggregated is dropped before it touches a rollup, and counted:
/// read = aggregated + dead-lettered + duplicates. An invalid event is remembered too (its copy
/// is a duplicate, not a second dead letter) unless its id or time is what is wrong.
#[test]
fn copies_are_duplicates_and_counted() {
    let mut p = processor();
    let play = event("t1", T0);
    let mut invalid = event("t1", T0);
    if let Some(Body::Viewing(v)) = invalid.body.as_mut() {
        v.title_id.clear();
    }
    let mut bad_id = event("t1", T0);
    bad_id.event_id = "not-a-uuid".into();
    let users = [
        enc(&play),
        enc(&invalid),
        enc(&bad_id),
        enc(&play),
        enc(&invalid),
        enc(&bad_id),
    ];
    p.process(&aggregate(1, &users));
    p.process(&aggregate(2, &[enc(&play)]));
    let (commit, counts) = p.take_commit(&token(), false).unwrap();
    assert_eq!(counts.read, 7);
    assert_eq!(counts.aggregated, 1);
    assert_eq!(counts.duplicates, 3);
    assert_eq!(
        counts.dead[2], 3,
        "the invalid event once, the two with a bad id each time"
    );
    assert_eq!(commit.viewing.len(), 1);
    assert_eq!(commit.viewing[0].agg.plays, 1);
    assert_eq!(commit.seen.duplicates, Some(3));
    let remembered: usize = commit.seen.added.iter().map(|s| s.ids.len()).sum();
    assert_eq!(remembered, 2, "the play and the invalid event");
}

/// The dedupe state travels with the commit: a new owner restored from it drops a copy of an
/// event its predecessor counted (the copy arriving after a crash, a steal or a retry).
#[test]
fn a_restored_shard_still_knows_its_ids() {
    use inlet_rollup::{Dedupe, Horizon};
    let horizon = Horizon {
        lateness: Lateness::default(),
        retry_window_ms: 5 * 60_000,
    };
    let play = event("t1", T0);
    let mut p = processor();
    p.process(&aggregate(1, &[enc(&play)]));
    let (commit, _) = p.take_commit(&token(), false).unwrap();
    let dedupe = Dedupe::restore(horizon, commit.watermark_ms, commit.seen.added.clone(), [], 0);
    let rollup = ShardRollup::restore(Lateness::default(), commit.watermark_ms, commit.viewing.clone(), []);
    let mut next = RecordProcessor::new(
        shard(),
        rollup,
        commit.checkpoint.clone(),
        Limits::default(),
        Lateness::default(),
    )
    .with_dedupe(Some(dedupe));
    next.process(&aggregate(2, &[enc(&play), enc(&event("t1", T0 + 1))]));
    let (commit, counts) = next.take_commit(&token(), false).unwrap();
    assert_eq!((counts.aggregated, counts.duplicates), (1, 1));
    assert_eq!(commit.viewing[0].agg.plays, 2);
}

/// A copy read once the watermark has moved past its minute by more than lateness + retry
/// window is not remembered any more: it is dead-lettered as late, never aggregated twice.
#[test]
fn a_copy_beyond_the_horizon_is_late() {
    let play = event("t1", T0);
    let mut p = processor();
    p.process(&aggregate(1, &[enc(&play), enc(&event("t2", T0 + 11 * 60_000))]));
    p.process(&aggregate(2, &[enc(&play)]));
    let (_, counts) = p.take_commit(&token(), false).unwrap();
    assert_eq!((counts.aggregated, counts.duplicates), (2, 0));
    assert_eq!(counts.dead[3], 1, "late");
}

/// With dedupe off (only for measuring its cost), every copy counts.
#[test]
fn without_dedupe_every_copy_counts() {
    let play = event("t1", T0);
    let mut p = processor().with_dedupe(None);
    p.process(&aggregate(1, &[enc(&play), enc(&play)]));
    let (_, counts) = p.take_commit(&token(), false).unwrap();
    assert_eq!((counts.aggregated, counts.duplicates), (2, 0));
}
