//! Property tests of the pure batcher: random pushes, seals and drains under small random
//! limits; every batch and aggregate respects its limits, and per-shard order, routing and
//! permits are kept with nothing lost or duplicated. Plus linger and retry examples.

// Tests may panic on unexpected values: that is how they fail.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use inlet_producer::batcher::{BatchLimits, Batcher, Ready};
use inlet_schemas::kpl::{self, UserRecord};
use proptest::prelude::*;

const SHARDS: usize = 4;
const KEYS: [&str; 5] = [
    "a",
    "session-1",
    "session-22",
    "k",
    "a-much-longer-partition-key-0123456789",
];

#[derive(Debug, Clone)]
enum Op {
    /// Push a user record for `shard`, `dt` ms after the previous operation.
    Push {
        shard: usize,
        key: usize,
        len: usize,
        permits: usize,
        dt: u64,
    },
    /// `seal_due` at `dt` ms after the previous operation.
    SealDue { dt: u64 },
    /// Drain what is ready, as the producer does between pushes.
    Take { force: bool },
}

fn arb_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..SHARDS, 0..KEYS.len(), 0usize..3000, 0usize..5000, 0u64..50)
            .prop_map(|(shard, key, len, permits, dt)| Op::Push { shard, key, len, permits, dt }),
        1 => (0u64..200).prop_map(|dt| Op::SealDue { dt }),
        1 => any::<bool>().prop_map(|force| Op::Take { force }),
    ]
}

fn arb_limits() -> impl Strategy<Value = BatchLimits> {
    (200usize..5000, 1usize..20, 1usize..10, 1000usize..20000, 0u64..150).prop_map(
        |(max_aggregate_bytes, max_aggregate_records, max_put_records, max_put_bytes, linger_ms)| BatchLimits {
            max_aggregate_bytes,
            max_aggregate_records,
            max_put_records,
            max_put_bytes,
            linger_ms,
        },
    )
}

/// `len` bytes that identify record `id` as far as `len` allows. ASCII, so never the KPL magic.
fn data(id: usize, len: usize) -> Bytes {
    let tag = format!("{id:06}|");
    Bytes::from(tag.bytes().cycle().take(len).collect::<Vec<u8>>())
}

/// A pushed user record, remembered for the checks.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pushed {
    partition_key: String,
    data: Bytes,
    permits: usize,
}

/// What the batches handed out, checked one by one.
struct Checker {
    limits: BatchLimits,
    pushed: Vec<Vec<Pushed>>,
    /// Per shard, how many user records came out so far.
    out: Vec<usize>,
    batches: usize,
}

impl Checker {
    fn batch(&mut self, batch: &[Ready]) -> Result<(), TestCaseError> {
        let l = self.limits;
        self.batches += 1;
        prop_assert!(!batch.is_empty(), "an empty batch");
        prop_assert!(
            batch.len() <= l.max_put_records,
            "{} records > {}",
            batch.len(),
            l.max_put_records
        );
        let bytes: usize = batch
            .iter()
            .map(|r| r.record.partition_key.len() + r.record.data.len())
            .sum();
        prop_assert!(
            bytes <= l.max_put_bytes || batch.len() == 1,
            "batch of {} records, {bytes} bytes > {}",
            batch.len(),
            l.max_put_bytes
        );
        for ready in batch {
            self.ready(ready)?;
        }
        Ok(())
    }

    fn ready(&mut self, ready: &Ready) -> Result<(), TestCaseError> {
        let l = self.limits;
        let r = &ready.record;
        prop_assert!(ready.shard < SHARDS);
        prop_assert_eq!(ready.attempts, 0);
        prop_assert_eq!(r.explicit_hash_key, None);
        let users: Vec<UserRecord> = if kpl::is_aggregated(&r.data) {
            let users = kpl::decode_strict(&r.partition_key, r.explicit_hash_key, &r.data);
            prop_assert!(users.is_ok(), "undecodable aggregate: {users:?}");
            let users = users.unwrap();
            prop_assert!(users.len() > 1, "an aggregate of {} user records", users.len());
            prop_assert!(
                r.data.len() <= l.max_aggregate_bytes,
                "aggregate of {} records is {} bytes > {}",
                users.len(),
                r.data.len(),
                l.max_aggregate_bytes
            );
            users
        } else {
            vec![UserRecord {
                partition_key: r.partition_key.clone(),
                explicit_hash_key: None,
                data: r.data.clone(),
            }]
        };
        prop_assert!(
            users.len() <= l.max_aggregate_records,
            "{} > {}",
            users.len(),
            l.max_aggregate_records
        );
        prop_assert_eq!(ready.user_records as usize, users.len());
        // The outer partition key is the first user record's, so the record routes with it.
        prop_assert_eq!(&r.partition_key, &users[0].partition_key);

        // The user records are the next ones pushed for this shard, in order.
        let shard = ready.shard;
        let start = self.out[shard];
        let expected = self.pushed[shard].get(start..start + users.len());
        prop_assert!(
            expected.is_some(),
            "shard {shard}: {} user records out, only {} pushed",
            start + users.len(),
            self.pushed[shard].len()
        );
        let expected = expected.unwrap();
        for (i, (got, want)) in users.iter().zip(expected).enumerate() {
            prop_assert_eq!(
                &got.partition_key,
                &want.partition_key,
                "shard {} record {}",
                shard,
                start + i
            );
            prop_assert_eq!(&got.data, &want.data, "shard {} record {}", shard, start + i);
            prop_assert_eq!(got.explicit_hash_key, None);
        }
        let permits: usize = expected.iter().map(|p| p.permits).sum();
        prop_assert_eq!(ready.permits, permits, "permits of shard {} records {}..", shard, start);
        self.out[shard] += users.len();
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn batches_respect_limits_and_keep_every_record_in_order(
        limits in arb_limits(),
        ops in prop::collection::vec(arb_op(), 0..150),
    ) {
        let mut batcher = Batcher::new(limits, SHARDS);
        let mut checker = Checker { limits, pushed: vec![Vec::new(); SHARDS], out: vec![0; SHARDS], batches: 0 };
        let mut now = 1_000u64;
        let mut id = 0;
        prop_assert!(batcher.is_empty());
        for op in ops {
            match op {
                Op::Push { shard, key, len, permits, dt } => {
                    now += dt;
                    let record = UserRecord {
                        partition_key: KEYS[key].to_owned(),
                        explicit_hash_key: None,
                        data: data(id, len),
                    };
                    id += 1;
                    checker.pushed[shard].push(Pushed {
                        partition_key: record.partition_key.clone(),
                        data: record.data.clone(),
                        permits,
                    });
                    batcher.push(shard, record, permits, now);
                    prop_assert!(!batcher.is_empty());
                }
                Op::SealDue { dt } => {
                    now += dt;
                    batcher.seal_due(now);
                    // Nothing open is due any more.
                    if let Some(deadline) = batcher.next_deadline() {
                        prop_assert!(deadline > now, "deadline {deadline} <= now {now} after seal_due");
                    }
                }
                Op::Take { force } => {
                    while let Some(batch) = batcher.take_batch(force) {
                        checker.batch(&batch)?;
                    }
                    // Without force, what stays is not a full batch.
                    prop_assert!(!batcher.has_full_batch());
                }
            }
        }
        batcher.seal_all();
        prop_assert_eq!(batcher.next_deadline(), None);
        while let Some(batch) = batcher.take_batch(true) {
            checker.batch(&batch)?;
        }
        prop_assert!(batcher.is_empty());
        prop_assert!(!batcher.has_full_batch());
        prop_assert_eq!(batcher.take_batch(true), None);
        // Nothing lost (nothing duplicated: `ready` refuses more than was pushed).
        for shard in 0..SHARDS {
            prop_assert_eq!(checker.out[shard], checker.pushed[shard].len(), "shard {}", shard);
        }
        prop_assert_eq!(checker.out.iter().sum::<usize>(), id);
    }
}

fn limits(linger_ms: u64) -> BatchLimits {
    BatchLimits {
        max_aggregate_bytes: 10_000,
        max_aggregate_records: 100,
        max_put_records: 10,
        max_put_bytes: 100_000,
        linger_ms,
    }
}

fn record(key: &str, data: &str) -> UserRecord {
    UserRecord {
        partition_key: key.into(),
        explicit_hash_key: None,
        data: Bytes::copy_from_slice(data.as_bytes()),
    }
}

#[test]
fn linger_deadline_is_first_push_plus_linger() {
    let mut b = Batcher::new(limits(100), 2);
    assert_eq!(b.next_deadline(), None);
    b.push(0, record("k", "one"), 3, 1_000);
    assert_eq!(b.next_deadline(), Some(1_100));
    // Later pushes to the same open aggregate do not move its deadline.
    b.push(0, record("k", "two"), 3, 1_050);
    assert_eq!(b.next_deadline(), Some(1_100));
    // Another shard's later aggregate: the earliest deadline wins.
    b.push(1, record("j", "three"), 5, 1_020);
    assert_eq!(b.next_deadline(), Some(1_100));

    b.seal_due(1_099);
    assert_eq!(b.take_batch(true), None, "nothing is due before the deadline");
    assert_eq!(b.next_deadline(), Some(1_100));

    b.seal_due(1_100);
    let batch = b.take_batch(true).expect("shard 0 sealed at its deadline");
    assert_eq!(batch.len(), 1);
    assert_eq!(batch[0].shard, 0);
    assert_eq!(batch[0].user_records, 2);
    assert_eq!(batch[0].permits, 6);
    let users = kpl::decode_strict(&batch[0].record.partition_key, None, &batch[0].record.data).unwrap();
    assert_eq!(users, vec![record("k", "one"), record("k", "two")]);
    // Shard 1 is next, 100 ms after its first push.
    assert_eq!(b.next_deadline(), Some(1_120));
    b.seal_due(1_119);
    assert_eq!(b.take_batch(true), None);
    b.seal_due(5_000);
    let batch = b.take_batch(true).unwrap();
    assert_eq!(batch.len(), 1);
    assert_eq!(batch[0].shard, 1);
    // A lone user record travels as a plain record.
    assert_eq!(batch[0].record.data, Bytes::from_static(b"three"));
    assert_eq!(batch[0].record.partition_key, "j");
    assert_eq!(batch[0].user_records, 1);
    assert_eq!(b.next_deadline(), None);
    assert!(b.is_empty());
}

#[test]
fn a_push_after_a_seal_starts_a_new_deadline() {
    let mut b = Batcher::new(limits(100), 1);
    b.push(0, record("k", "one"), 1, 1_000);
    b.seal_due(1_100);
    b.push(0, record("k", "two"), 1, 1_150);
    assert_eq!(b.next_deadline(), Some(1_250));
}

#[test]
fn take_batch_without_force_waits_for_a_full_batch() {
    let mut l = limits(100);
    l.max_aggregate_records = 1; // every push seals
    l.max_put_records = 3;
    let mut b = Batcher::new(l, 1);
    b.push(0, record("k", "1"), 1, 0);
    b.push(0, record("k", "2"), 1, 0);
    assert!(!b.has_full_batch());
    assert_eq!(b.take_batch(false), None);
    b.push(0, record("k", "3"), 1, 0);
    assert!(b.has_full_batch());
    let batch = b.take_batch(false).unwrap();
    assert_eq!(
        batch.iter().map(|r| r.record.data.clone()).collect::<Vec<_>>(),
        ["1", "2", "3"].map(Bytes::from)
    );
}

#[test]
fn retry_front_puts_failed_records_back_ahead_of_newer_ones() {
    let mut l = limits(100);
    l.max_aggregate_records = 1; // every push seals: one stream record per user record
    l.max_put_records = 2;
    let mut b = Batcher::new(l, 2);
    b.push(0, record("k", "a"), 1, 0);
    b.push(1, record("j", "b"), 2, 0);
    let first = b.take_batch(true).unwrap();
    assert_eq!(
        first.iter().map(|r| r.record.data.clone()).collect::<Vec<_>>(),
        ["a", "b"].map(Bytes::from)
    );

    // Newer records arrive while the first batch is in flight; then it fails.
    b.push(0, record("k", "c"), 1, 1);
    b.push(1, record("j", "d"), 1, 1);
    b.push(0, record("k", "e"), 1, 1);
    let failed: Vec<Ready> = first
        .into_iter()
        .map(|mut r| {
            r.attempts += 1;
            r
        })
        .collect();
    b.retry_front(failed.clone());

    let mut out = Vec::new();
    while let Some(batch) = b.take_batch(true) {
        assert!(batch.len() <= 2);
        out.extend(batch);
    }
    assert_eq!(
        out.iter().map(|r| (r.shard, r.record.data.clone())).collect::<Vec<_>>(),
        vec![
            (0, Bytes::from("a")),
            (1, Bytes::from("b")),
            (0, Bytes::from("c")),
            (1, Bytes::from("d")),
            (0, Bytes::from("e")),
        ]
    );
    // The retried records are given back as they were (attempts, permits).
    assert_eq!(out[..2], failed[..]);
    assert_eq!(out[1].permits, 2);
    assert!(b.is_empty());
}

#[test]
fn retried_records_count_towards_a_full_batch() {
    let mut l = limits(100);
    l.max_aggregate_records = 1;
    l.max_put_records = 100;
    l.max_put_bytes = 10; // "k" + 4 bytes = 5 bytes a record
    let mut b = Batcher::new(l, 1);
    b.push(0, record("k", "aaaa"), 1, 0);
    b.push(0, record("k", "bbbb"), 1, 0);
    assert!(b.has_full_batch());
    let batch = b.take_batch(false).unwrap();
    assert_eq!(batch.len(), 2);
    assert!(!b.has_full_batch());
    b.retry_front(batch);
    assert!(b.has_full_batch(), "the bytes of retried records are counted again");
    assert_eq!(b.take_batch(false).unwrap().len(), 2);
    assert!(!b.has_full_batch());
    assert_eq!(b.take_batch(true), None);
}

#[test]
fn ack_tokens_come_back_with_their_sub_sequence_and_survive_a_retry() {
    let mut l = limits(100);
    l.max_aggregate_records = 3;
    let mut b: Batcher<&str> = Batcher::with_acks(l, 2);
    b.push_with_ack(0, record("k", "a"), Some("a"), 1, 0);
    b.push(0, record("k", "b"), 1, 0); // fire and forget: no token
    b.push_with_ack(0, record("k", "c"), Some("c"), 1, 0); // third record: seals
    b.push_with_ack(0, record("k", "d"), Some("d"), 1, 0);
    b.push(1, record("j", "e"), 1, 0);
    b.seal_all();
    let batch = b.take_batch(true).unwrap();
    let acks: Vec<_> = batch.iter().map(|r| (r.shard, r.acks.clone())).collect();
    assert_eq!(
        acks,
        vec![
            (0, vec![(0, "a"), (2, "c")]),
            (0, vec![(0, "d")]), // alone, so a plain record: index 0
            (1, vec![]),
        ]
    );
    b.retry_front(batch);
    let again = b.take_batch(true).unwrap();
    assert_eq!(
        again.iter().map(|r| r.acks.clone()).collect::<Vec<_>>(),
        acks.into_iter().map(|a| a.1).collect::<Vec<_>>()
    );
}
