//! The one scenario suite every implementation of the seams must pass. Each backend's tests
//! call these with a fresh stream (at least two shards) or a fresh database.
//!
//! Panics with a message naming the broken rule: these are test helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use crate::*;
use bytes::Bytes;
use inlet_rollup::{GameAgg, GameRow, SeenCommit, SeenIds, ViewingAgg, ViewingRow};
use std::collections::{BTreeMap, BTreeSet};

fn record(i: usize) -> PutRecord {
    PutRecord {
        partition_key: format!("key-{}", i % 37),
        explicit_hash_key: None,
        data: Bytes::from(format!("payload-{i}")),
    }
}

/// Reads `shard` from `from` until `expected` records came (or 20 s passed), then once more
/// to see that nothing else follows. An empty batch only means "nothing yet" (a Kafka fetch
/// may not have arrived), so an empty read alone never ends it early.
async fn read_expecting(
    reader: &dyn StreamReader,
    shard: &ShardId,
    from: StartPosition,
    expected: usize,
) -> Vec<Record> {
    let mut r = reader.open(shard, from).await.unwrap();
    read_on(&mut *r, expected).await
}

/// [`read_expecting`] on a reader already open.
async fn read_on(r: &mut dyn ShardReader, expected: usize) -> Vec<Record> {
    let mut out = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while out.len() < expected && std::time::Instant::now() < deadline {
        let batch = r.next_batch(7).await.unwrap();
        if batch.records.is_empty() {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        out.extend(batch.records);
    }
    out.extend(r.next_batch(7).await.unwrap().records);
    out
}

/// Writes `n` records with one partition key (so to one shard) in one call; their shard and
/// sequence numbers.
async fn put_one_key(writer: &dyn StreamWriter, tag: &str, n: usize) -> (ShardId, Vec<SequenceNumber>) {
    let records: Vec<PutRecord> = (0..n)
        .map(|i| PutRecord {
            partition_key: "start-positions".into(),
            explicit_hash_key: None,
            data: Bytes::from(format!("{tag}-{i}")),
        })
        .collect();
    let mut shard = None;
    let mut sequences = Vec::new();
    for o in writer.put_records(&records).await.unwrap() {
        let PutOutcome::Written { shard: s, sequence } = o else {
            panic!("put failed: {o:?}")
        };
        assert!(
            shard.get_or_insert_with(|| s.clone()) == &s,
            "one partition key, one shard"
        );
        sequences.push(sequence);
    }
    (shard.unwrap(), sequences)
}

fn sequences(records: &[Record]) -> Vec<SequenceNumber> {
    records.iter().map(|r| r.sequence.clone()).collect()
}

/// Where a reader starts, for a shard written in two rounds a moment apart: TRIM_HORIZON sees
/// every record; AT_TIMESTAMP(t) starts at the first record that arrived at or after t (t
/// taken from the records' own arrival times, so the stream's clock and its granularity do not
/// matter), and a time after every record waits for new ones; LATEST sees only records written
/// after the reader opened. Needs a fresh stream.
pub async fn start_positions(writer: &dyn StreamWriter, reader: &dyn StreamReader) {
    use std::time::Duration;
    // Apart by more than any arrival clock's granularity here (Kinesis keeps ms).
    let gap = Duration::from_millis(100);
    let (shard, before) = put_one_key(writer, "before", 5).await;
    tokio::time::sleep(gap).await;
    let (again, after) = put_one_key(writer, "after", 5).await;
    assert_eq!(shard, again);

    let all = read_expecting(reader, &shard, StartPosition::TrimHorizon, 10).await;
    assert_eq!(
        sequences(&all),
        [before.clone(), after.clone()].concat(),
        "TRIM_HORIZON reads every record"
    );
    let last_before = all[before.len() - 1].arrival_ms;
    let first_after = all[before.len()].arrival_ms;
    assert!(
        last_before < first_after,
        "records written {gap:?} apart arrived at {last_before} and {first_after} ms"
    );
    for t in [first_after, last_before + 1] {
        let got = read_expecting(reader, &shard, StartPosition::AtTimestamp(t), after.len()).await;
        assert_eq!(
            sequences(&got),
            after,
            "AT_TIMESTAMP({t}) starts at the first record that arrived at or after it \
             (arrivals {last_before} and {first_after})"
        );
    }
    assert_eq!(
        sequences(&read_expecting(reader, &shard, StartPosition::AtTimestamp(all[0].arrival_ms), 10).await),
        sequences(&all),
        "AT_TIMESTAMP of the first arrival reads everything"
    );

    // A time after every record: nothing of what is there, then what comes.
    let later = all[all.len() - 1].arrival_ms + 1;
    let mut r = reader.open(&shard, StartPosition::AtTimestamp(later)).await.unwrap();
    tokio::time::sleep(gap).await;
    let (_, newer) = put_one_key(writer, "newer", 2).await;
    assert_eq!(
        sequences(&read_on(&mut *r, newer.len()).await),
        newer,
        "AT_TIMESTAMP after every record reads the records written after it"
    );
    // One reader of a shard at a time (enhanced fan-out allows one subscription per consumer).
    drop(r);

    // LATEST: only what is written after the open, even before the first read.
    let mut r = reader.open(&shard, StartPosition::Latest).await.unwrap();
    let (_, newest) = put_one_key(writer, "newest", 3).await;
    assert_eq!(
        sequences(&read_on(&mut *r, newest.len()).await),
        newest,
        "LATEST reads exactly the records written after the reader opened"
    );
}

/// Records land on the shard owning their hash key, in put order per shard, and read back
/// intact from every kind of start position.
pub async fn stream_round_trip(writer: &dyn StreamWriter, reader: &dyn StreamReader) {
    let shards = writer.open_shards().await.unwrap();
    assert!(shards.len() >= 2, "the scenario needs a stream of at least two shards");
    let records: Vec<PutRecord> = (0..120).map(record).collect();
    let mut outcomes = Vec::new();
    for chunk in records.chunks(50) {
        outcomes.extend(writer.put_records(chunk).await.unwrap());
    }
    let mut per_shard: BTreeMap<ShardId, Vec<(SequenceNumber, &PutRecord)>> = BTreeMap::new();
    for (r, o) in records.iter().zip(&outcomes) {
        let PutOutcome::Written { shard, sequence } = o else {
            panic!("put failed: {o:?}")
        };
        let owner = shards
            .iter()
            .find(|s| &s.id == shard)
            .expect("landed on an unknown shard");
        assert!(
            owner.hash_range.contains(r.hash_key()),
            "record landed outside its shard's hash key range"
        );
        per_shard.entry(shard.clone()).or_default().push((sequence.clone(), r));
    }
    assert!(
        per_shard.len() >= 2,
        "37 partition keys should spread over several shards"
    );
    for (shard, written) in &per_shard {
        assert!(
            written.windows(2).all(|w| w[0].0 < w[1].0),
            "sequence numbers must grow in put order"
        );
        let n = written.len();
        let read = read_expecting(reader, shard, StartPosition::TrimHorizon, n).await;
        assert_eq!(
            read.len(),
            written.len(),
            "shard {shard}: read back a different number of records"
        );
        for (got, (seq, sent)) in read.iter().zip(written) {
            assert_eq!(&got.sequence, seq);
            assert_eq!(got.partition_key, sent.partition_key);
            assert_eq!(got.data, sent.data);
        }
        let third = &written[written.len() / 3].0;
        let at = read_expecting(reader, shard, StartPosition::AtSequence(third.clone()), n - n / 3).await;
        assert_eq!(&at[0].sequence, third, "AT_SEQUENCE_NUMBER starts at that record");
        let after = read_expecting(
            reader,
            shard,
            StartPosition::AfterSequence(third.clone()),
            n - n / 3 - 1,
        )
        .await;
        assert_eq!(
            after.len() + 1,
            at.len(),
            "AFTER_SEQUENCE_NUMBER skips exactly that record"
        );
        let ts = read_expecting(reader, shard, StartPosition::AtTimestamp(read[0].arrival_ms), n).await;
        assert_eq!(
            ts.len(),
            read.len(),
            "AT_TIMESTAMP of the first arrival reads everything"
        );
        assert!(
            read_expecting(reader, shard, StartPosition::Latest, 0).await.is_empty(),
            "LATEST reads only new records"
        );
    }
}

/// An explicit hash key overrides the partition key's.
pub async fn stream_explicit_hash_key(writer: &dyn StreamWriter) {
    let shards = writer.open_shards().await.unwrap();
    let last = shards.iter().max_by_key(|s| s.hash_range.start).unwrap();
    let r = PutRecord {
        partition_key: "a".into(),
        explicit_hash_key: Some(last.hash_range.end),
        data: Bytes::from_static(b"x"),
    };
    let out = writer.put_records(&[r]).await.unwrap();
    assert!(
        matches!(&out[0], PutOutcome::Written { shard, .. } if shard == &last.id),
        "{out:?}"
    );
}

fn shard(i: u32) -> Shard {
    Shard {
        id: ShardId::from_index(i),
        hash_range: HashKeyRange::ALL,
        parent: None,
        adjacent_parent: None,
        closed: false,
    }
}

fn viewing(minute: i64, title: &str, events: i64, viewer: &str) -> ViewingRow {
    let mut agg = ViewingAgg {
        events,
        plays: events,
        watch_ms: 10 * events,
        ..Default::default()
    };
    agg.viewers.insert(viewer.as_bytes());
    agg.startup_ms.insert(100 * events);
    ViewingRow {
        minute,
        title_id: title.into(),
        agg,
    }
}

fn game(minute: i64, game: &str, events: i64) -> GameRow {
    let mut agg = GameAgg {
        events,
        shots: events,
        revenue_cents: 99 * events,
        ..Default::default()
    };
    agg.players.insert(b"p1");
    GameRow {
        minute,
        game_id: game.into(),
        agg,
    }
}

fn commit(token: &LeaseToken, seq: u64, rows: Vec<ViewingRow>) -> ShardCommit {
    ShardCommit {
        token: token.clone(),
        checkpoint: Some(Checkpoint {
            sequence: SequenceNumber::from_u64(seq),
            sub_sequence: 3,
        }),
        watermark_ms: Some(seq as i64 * 1000),
        open_from_minute: None,
        viewing: rows,
        games: vec![game(10, "g", 2)],
        dead_letters: vec![DeadLetter {
            shard: token.shard.clone(),
            sequence: SequenceNumber::from_u64(seq),
            sub_sequence: 1,
            kind: DeadLetterKind::Invalid,
            field: Some("viewing.title_id".into()),
            reason: "missing".into(),
            app_id: Some("app".into()),
            partition_key: "pk".into(),
            data: Bytes::from_static(b"raw"),
        }],
        seen: SeenCommit::default(),
        shard_end: false,
    }
}

/// Leases: created once, taken by compare-and-set on the counter, renewed and released
/// only by their holder; parents recorded.
pub async fn lease_lifecycle(store: &dyn LeaseStore) {
    let mut child = shard(2);
    child.parent = Some(ShardId::from_index(0));
    store.ensure_leases(&[shard(0), shard(1), child]).await.unwrap();
    store.ensure_leases(&[shard(0)]).await.unwrap();
    let leases = store.list().await.unwrap();
    assert_eq!(leases.len(), 3, "ensure_leases creates each lease once");
    assert_eq!(leases[2].parents, vec![ShardId::from_index(0)]);
    let l0 = &leases[0];
    assert!(l0.owner.is_none() && l0.checkpoint.is_none() && l0.is_available(0));

    let a = store
        .take(&l0.shard, l0.counter, "a", 1_000)
        .await
        .unwrap()
        .expect("free lease is taken");
    assert!(
        store.take(&l0.shard, l0.counter, "b", 1_000).await.unwrap().is_none(),
        "a stale counter cannot take"
    );
    assert!(store.renew(&a, 2_000).await.unwrap());
    let b = store
        .take(&l0.shard, a.counter, "b", 3_000)
        .await
        .unwrap()
        .expect("b takes with the current counter");
    assert!(b.counter > a.counter, "taking bumps the counter");
    assert!(!store.renew(&a, 4_000).await.unwrap(), "the old holder cannot renew");
    store.release(&a).await.unwrap();
    let now = store.list().await.unwrap();
    assert_eq!(now[0].owner.as_deref(), Some("b"), "a stale release changes nothing");
    store.release(&b).await.unwrap();
    let now = store.list().await.unwrap();
    assert!(now[0].owner.is_none() && now[0].is_available(0));

    // A round's renewals at once: each answered on its own, a lost one refused alone.
    let mut tokens = Vec::new();
    for l in &now[..2] {
        tokens.push(
            store
                .take(&l.shard, l.counter, "c", 1_000)
                .await
                .unwrap()
                .expect("free lease"),
        );
    }
    let stolen = store
        .take(&tokens[0].shard, tokens[0].counter, "d", 1_000)
        .await
        .unwrap()
        .expect("taken with the current counter");
    assert_eq!(store.renew_many(&tokens, 5_000).await.unwrap(), [false, true]);
    assert_eq!(store.renew_many(&[], 5_000).await.unwrap(), Vec::<bool>::new());
    let now = store.list().await.unwrap();
    assert_eq!(
        (now[0].owner.as_deref(), now[0].expires_at_ms),
        (Some("d"), 1_000),
        "a lost lease is not renewed"
    );
    assert_eq!((now[1].owner.as_deref(), now[1].expires_at_ms), (Some("c"), 5_000));
    store.release(&stolen).await.unwrap();
    store.release(&tokens[1]).await.unwrap();
}

/// Commits are atomic, cumulative (a rewrite replaces) and fenced by the lease counter.
pub async fn warehouse_commits<W: LeaseStore + Warehouse + ?Sized>(w: &W) {
    w.ensure_leases(&[shard(0), shard(1)]).await.unwrap();
    let t0 = w
        .take(&ShardId::from_index(0), 0, "a", i64::MAX)
        .await
        .unwrap()
        .unwrap();
    let t1 = w
        .take(&ShardId::from_index(1), 0, "a", i64::MAX)
        .await
        .unwrap()
        .unwrap();

    w.commit(&commit(&t0, 5, vec![viewing(10, "t", 1, "v1")]))
        .await
        .unwrap();
    // The same windows again, cumulative: they replace the stored rows.
    w.commit(&commit(&t0, 6, vec![viewing(10, "t", 3, "v1")]))
        .await
        .unwrap();
    w.commit(&commit(
        &t1,
        9,
        vec![viewing(10, "t", 2, "v2"), viewing(11, "t", 1, "v3")],
    ))
    .await
    .unwrap();

    let lease = w
        .list()
        .await
        .unwrap()
        .into_iter()
        .find(|l| l.shard == t0.shard)
        .unwrap();
    assert_eq!(
        lease.checkpoint,
        Some(Checkpoint {
            sequence: SequenceNumber::from_u64(6),
            sub_sequence: 3
        })
    );
    assert_eq!(lease.watermark_ms, Some(6000));

    let merged = w.viewing_rollups(0, 100).await.unwrap();
    assert_eq!(merged.len(), 2);
    assert_eq!(
        merged[0].agg.events, 5,
        "partials of two shards merge; a rewrite replaced, not added"
    );
    assert_eq!(merged[0].agg.viewers.estimate(), 2);
    assert_eq!(merged[0].agg.startup_ms.count(), 2);
    assert_eq!(
        w.viewing_rollups(11, 12).await.unwrap().len(),
        1,
        "minute ranges are half-open"
    );
    let games = w.game_rollups(0, 100).await.unwrap();
    assert_eq!(games[0].agg.events, 4);
    assert_eq!(games[0].agg.revenue_cents, 4 * 99);

    let (v, g) = w.shard_partials(&t0.shard, 10).await.unwrap();
    assert_eq!((v.len(), g.len()), (1, 1));
    assert_eq!(v[0].agg.events, 3);
    assert!(w.shard_partials(&t0.shard, 11).await.unwrap().0.is_empty());

    // A zombie: b takes shard 0; a's commit must fail and change nothing.
    let before = (w.viewing_rollups(0, 100).await.unwrap(), w.totals().await.unwrap());
    let _b = w.take(&t0.shard, t0.counter, "b", i64::MAX).await.unwrap().unwrap();
    let err = w
        .commit(&commit(&t0, 7, vec![viewing(10, "t", 100, "zombie")]))
        .await
        .unwrap_err();
    assert!(matches!(err, WarehouseError::LeaseLost { .. }), "{err:?}");
    let after = (w.viewing_rollups(0, 100).await.unwrap(), w.totals().await.unwrap());
    assert_eq!(before, after, "a fenced-off commit changes nothing");
    let lease = w
        .list()
        .await
        .unwrap()
        .into_iter()
        .find(|l| l.shard == t0.shard)
        .unwrap();
    assert_eq!(lease.checkpoint.unwrap().sequence, SequenceNumber::from_u64(6));

    let totals = w.totals().await.unwrap();
    assert_eq!(totals.aggregated, 3 + 2 + 1 + 2 + 2);
    // Dead letters are keyed by position: the rewrite of shard 0 at seq 5 and 6 gave two.
    assert_eq!(
        totals.dead_letters,
        vec![(DeadLetterKind::Invalid, Some("viewing.title_id".into()), 3)]
    );
    let dl = w.dead_letters(10).await.unwrap();
    assert_eq!(dl.len(), 3);
    assert_eq!(dl[0].data, Bytes::from_static(b"raw"));

    // Shard end marks the lease finished.
    let mut end = commit(&t1, 10, vec![]);
    end.shard_end = true;
    w.commit(&end).await.unwrap();
    let lease = w
        .list()
        .await
        .unwrap()
        .into_iter()
        .find(|l| l.shard == t1.shard)
        .unwrap();
    assert!(lease.finished && !lease.is_available(0));
}

/// Several shards' commits at once: each applies as it would alone, and one fenced off
/// (its lease taken by another worker) writes nothing and holds the others back in nothing.
pub async fn warehouse_group_commit<W: LeaseStore + Warehouse + ?Sized>(w: &W) {
    w.ensure_leases(&[shard(0), shard(1), shard(2)]).await.unwrap();
    let mut tokens = Vec::new();
    for i in 0..3 {
        tokens.push(
            w.take(&ShardId::from_index(i), 0, "a", i64::MAX)
                .await
                .unwrap()
                .unwrap(),
        );
    }
    // Shard 1's lease is taken by b: a's commit of it is a zombie's.
    w.take(&tokens[1].shard, tokens[1].counter, "b", i64::MAX)
        .await
        .unwrap()
        .unwrap();
    let commits: Vec<ShardCommit> = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| commit(t, 10 + i as u64, vec![viewing(7, "t", 1 + i as i64, &format!("v{i}"))]))
        .collect();
    let answers = w.commit_many(&commits).await;
    assert_eq!(answers.len(), 3);
    assert!(answers[0].is_ok() && answers[2].is_ok(), "{answers:?}");
    assert!(
        matches!(answers[1], Err(WarehouseError::LeaseLost { .. })),
        "{answers:?}"
    );
    let rows = w.viewing_rollups(7, 8).await.unwrap();
    assert_eq!(
        rows[0].agg.events,
        1 + 3,
        "shards 0 and 2 applied, the fenced-off one did not"
    );
    let leases = w.list().await.unwrap();
    let checkpoint = |i: usize| leases[i].checkpoint.as_ref().map(|c| c.sequence.clone());
    assert_eq!(checkpoint(0), Some(SequenceNumber::from_u64(10)));
    assert_eq!(checkpoint(1), None, "the fenced-off commit moved nothing");
    assert_eq!(checkpoint(2), Some(SequenceNumber::from_u64(12)));
    assert_eq!(
        w.totals().await.unwrap().dead_letters[0].2,
        2,
        "only the applied commits' dead letters"
    );
    assert!(w.commit_many(&[]).await.is_empty());
}

/// Compaction: each shard's final minutes (before its committed open minute, less what it
/// keeps) folded into one row per minute and key, no result moving; folding again merges
/// into the stored folded rows; a commit carrying a row of a folded minute is refused and
/// changes nothing, while the live ones (open minutes) go on.
pub async fn warehouse_compaction<W: LeaseStore + Warehouse + ?Sized>(w: &W) {
    w.ensure_leases(&[shard(0), shard(1)]).await.unwrap();
    let t0 = w
        .take(&ShardId::from_index(0), 0, "a", i64::MAX)
        .await
        .unwrap()
        .unwrap();
    let t1 = w
        .take(&ShardId::from_index(1), 0, "a", i64::MAX)
        .await
        .unwrap()
        .unwrap();
    let live = |t: &LeaseToken, seq: u64, rows: Vec<ViewingRow>, open_from: i64| ShardCommit {
        open_from_minute: Some(open_from),
        ..commit(t, seq, rows)
    };
    let rows = [(10, "v1"), (11, "v2"), (20, "v3")];
    w.commit(&live(
        &t0,
        1,
        rows.iter().map(|(m, v)| viewing(*m, "t", 2, v)).collect(),
        15,
    ))
    .await
    .unwrap();
    w.commit(&live(
        &t1,
        1,
        vec![viewing(10, "t", 3, "v1"), viewing(20, "t", 1, "v4")],
        21,
    ))
    .await
    .unwrap();
    let results = async || {
        (
            w.viewing_rollups(0, 100).await.unwrap(),
            w.game_rollups(0, 100).await.unwrap(),
            w.totals().await.unwrap(),
        )
    };
    let before = results().await;

    assert_eq!(
        w.compact(60).await.unwrap(),
        Compacted::default(),
        "kept: nothing is that old"
    );
    let done = w.compact(0).await.unwrap();
    // Shard 0: minutes 10 and 11 (15 is open); shard 1: 10 and 20; a game row each at 10.
    assert_eq!(done, Compacted { partials: 6, folded: 4 });
    assert_eq!(results().await, before, "folding moves no result");
    let (v, g) = w.shard_partials(&t0.shard, i64::MIN).await.unwrap();
    assert_eq!(
        (v.iter().map(|r| r.minute).collect::<Vec<_>>(), g.len()),
        (vec![20], 0),
        "shard 0 keeps its open minute only"
    );
    let folded = |l: &[crate::Lease], i: usize| l[i].folded_before_minute;
    let leases = w.list().await.unwrap();
    assert_eq!((folded(&leases, 0), folded(&leases, 1)), (Some(15), Some(21)));
    assert_eq!(w.compact(0).await.unwrap(), Compacted::default(), "nothing left");

    // A rebuild-like commit (no checkpoint) of a folded minute: refused, nothing changes.
    let mut late = commit(&t0, 2, vec![viewing(12, "t", 9, "v9")]);
    late.checkpoint = None;
    late.dead_letters.clear();
    let err = w.commit(&late).await.unwrap_err();
    assert!(matches!(err, WarehouseError::LeaseLost { .. }), "{err:?}");
    assert_eq!(results().await, before);

    // Shard 0 goes on in its open minutes, then they close and fold into the stored rows.
    let next = ShardCommit {
        games: vec![game(20, "g", 2)],
        ..live(&t0, 3, vec![viewing(20, "t", 5, "v5"), viewing(22, "t", 1, "v6")], 23)
    };
    w.commit(&next).await.unwrap();
    let before = results().await;
    let done = w.compact(0).await.unwrap();
    assert_eq!(
        done,
        Compacted { partials: 3, folded: 3 },
        "20 and 22, and a game row at 20"
    );
    assert_eq!(results().await, before, "merged into the folded row of minute 20");
    let twenty = w.viewing_rollups(20, 21).await.unwrap();
    assert_eq!((twenty[0].agg.events, twenty[0].agg.viewers.estimate()), (5 + 1, 2));
}

/// A shard's failures: counted per report of its holder only, listed with the last error,
/// and cleared by the next commit of the shard (by whoever holds it then).
pub async fn shard_failures<W: LeaseStore + Warehouse + ?Sized>(w: &W) {
    w.ensure_leases(&[shard(0), shard(1)]).await.unwrap();
    assert!(w.failures().await.unwrap().is_empty());
    let a = w
        .take(&ShardId::from_index(0), 0, "a", i64::MAX)
        .await
        .unwrap()
        .unwrap();
    w.report_failure(&a, "page 7 is malformed", 1_000).await.unwrap();
    w.report_failure(&a, "page 7 is malformed again", 2_000).await.unwrap();
    let failures = w.failures().await.unwrap();
    assert_eq!(
        failures,
        vec![ShardFailure {
            shard: a.shard.clone(),
            failures: 2,
            error: "page 7 is malformed again".into(),
            since_ms: 1_000,
            last_ms: 2_000,
        }]
    );
    // Another worker takes the lease; the old holder's report is a zombie's.
    let b = w.take(&a.shard, a.counter, "b", i64::MAX).await.unwrap().unwrap();
    w.report_failure(&a, "zombie", 3_000).await.unwrap();
    w.report_failure(&b, "still malformed", 4_000).await.unwrap();
    let failures = w.failures().await.unwrap();
    assert_eq!(
        (failures[0].failures, failures[0].error.as_str()),
        (3, "still malformed")
    );
    assert_eq!((failures[0].since_ms, failures[0].last_ms), (1_000, 4_000));
    // A commit of another shard clears nothing; the shard's own commit clears it.
    let other = w
        .take(&ShardId::from_index(1), 0, "b", i64::MAX)
        .await
        .unwrap()
        .unwrap();
    w.commit(&commit(&other, 1, vec![])).await.unwrap();
    assert_eq!(w.failures().await.unwrap().len(), 1);
    w.commit(&commit(&b, 5, vec![])).await.unwrap();
    assert!(w.failures().await.unwrap().is_empty(), "a commit moves the shard on");
}

fn child_of(i: u32, parents: &[u32]) -> Shard {
    Shard {
        parent: parents.first().map(|p| ShardId::from_index(*p)),
        adjacent_parent: parents.get(1).map(|p| ShardId::from_index(*p)),
        closed: false,
        ..shard(i)
    }
}

async fn lease_of<W: LeaseStore + ?Sized>(w: &W, shard: &ShardId) -> Option<Lease> {
    w.list().await.unwrap().into_iter().find(|l| &l.shard == shard)
}

/// Takes `shard`'s lease as `owner` (expiring at `expires`) and commits a checkpoint, or the
/// shard's end (with no checkpoint when `checkpoint` is `None`: an empty shard).
async fn process<W: LeaseStore + Warehouse + ?Sized>(
    w: &W,
    shard: &ShardId,
    owner: &str,
    expires: i64,
    checkpoint: Option<u64>,
    shard_end: bool,
) -> LeaseToken {
    let seen = lease_of(w, shard).await.unwrap();
    let token = w.take(shard, seen.counter, owner, expires).await.unwrap().unwrap();
    let mut c = commit(&token, checkpoint.unwrap_or(1), vec![]);
    c.checkpoint = c.checkpoint.filter(|_| checkpoint.is_some());
    c.dead_letters.clear();
    c.games.clear();
    c.shard_end = shard_end;
    w.commit(&c).await.unwrap();
    token
}

/// Cleanup of finished leases (the KCL's `cleanupLeasesUponShardCompletion`): a finished,
/// unheld lease is deleted once every lease naming it as a parent has started (checkpoint or
/// finished), and `ensure_leases` never creates it again while the stream still lists it.
pub async fn lease_cleanup<W: LeaseStore + Warehouse + ?Sized>(w: &W) {
    // A split (0 -> 2, 3), a merge (4 + 5 -> 6), and an unrelated shard 1.
    let (p, c2, c3) = (ShardId::from_index(0), ShardId::from_index(2), ShardId::from_index(3));
    let (m4, m5, m6) = (ShardId::from_index(4), ShardId::from_index(5), ShardId::from_index(6));
    // Children listed before their parents: leases are still made parents first.
    let listed = vec![
        child_of(6, &[4, 5]),
        child_of(2, &[0]),
        child_of(3, &[0]),
        shard(0),
        shard(1),
        shard(4),
        shard(5),
    ];
    w.ensure_leases(&listed).await.unwrap();
    assert_eq!(w.list().await.unwrap().len(), 7);
    assert!(!w.delete_finished(&p, 0).await.unwrap(), "an unfinished lease is kept");
    assert!(
        !w.delete_finished(&ShardId::from_index(1), 0).await.unwrap(),
        "an unfinished lease without children is kept"
    );

    // The parent ends; its holder crashed before releasing it (it expires at 5,000).
    process(w, &p, "a", 5_000, Some(10), true).await;
    assert!(lease_of(w, &p).await.unwrap().finished);
    assert!(
        !w.delete_finished(&p, 0).await.unwrap(),
        "a finished lease is kept while no child has started"
    );
    // One child started: not yet, the other has not.
    let t2 = process(w, &c2, "b", i64::MAX, Some(3), false).await;
    assert!(
        !w.delete_finished(&p, 6_000).await.unwrap(),
        "a finished lease is kept until every child has started"
    );
    w.ensure_leases(&listed).await.unwrap();
    assert!(lease_of(w, &p).await.is_some());
    // The other child is empty and ended at once (finished without a checkpoint): started.
    process(w, &c3, "b", i64::MAX, None, true).await;
    assert!(
        !w.delete_finished(&p, 4_999).await.unwrap(),
        "a finished lease still held (not expired) is kept"
    );
    assert!(
        w.delete_finished(&p, 5_000).await.unwrap(),
        "deleted once its holder's expiry passed"
    );
    assert!(lease_of(w, &p).await.is_none());
    assert!(!w.delete_finished(&p, 5_000).await.unwrap(), "already gone");

    // The stream still lists the parent: its lease must not come back.
    w.ensure_leases(&listed).await.unwrap();
    w.ensure_leases(&[shard(0)]).await.unwrap();
    assert!(
        lease_of(w, &p).await.is_none(),
        "ensure_leases re-created a cleaned-up lease: the parent would be read twice"
    );
    assert_eq!(w.list().await.unwrap().len(), 6);
    // The children are untouched and still usable.
    assert!(w.renew(&t2, i64::MAX).await.unwrap());
    assert!(lease_of(w, &c3).await.unwrap().finished);

    // A merge: both parents end, released; the child starts; both parents go.
    for m in [&m4, &m5] {
        let t = process(w, m, "a", i64::MAX, Some(7), true).await;
        w.release(&t).await.unwrap();
    }
    assert!(
        !w.delete_finished(&m4, 0).await.unwrap(),
        "the merged child has not started"
    );
    process(w, &m6, "c", i64::MAX, Some(1), false).await;
    assert!(w.delete_finished(&m4, 0).await.unwrap());
    assert!(w.delete_finished(&m5, 0).await.unwrap());
    w.ensure_leases(&listed).await.unwrap();
    let left: Vec<ShardId> = w.list().await.unwrap().into_iter().map(|l| l.shard).collect();
    assert_eq!(
        left,
        vec![ShardId::from_index(1), c2, c3, m6],
        "cleaned-up parents stay gone, the rest stay"
    );

    // A lease whose parent was never listed (aged out) and has not started does not stop the
    // parent's lease from being made when the parent is listed after all; only whole ids in
    // a lease's parents count (shard 9's parent id merely starts with shard 10's).
    let (s8, s10) = (ShardId::from_index(8), ShardId::from_index(10));
    let orphan = child_of(7, &[8]);
    let mut suffix = shard(9);
    suffix.parent = Some(ShardId(format!("{s10}0")));
    w.ensure_leases(&[orphan.clone(), suffix.clone()]).await.unwrap();
    process(w, &suffix.id, "c", i64::MAX, Some(1), false).await;
    w.ensure_leases(&[shard(8), orphan.clone(), shard(10)]).await.unwrap();
    assert!(
        lease_of(w, &s8).await.is_some(),
        "a parent none of whose children started is not taken for cleaned up"
    );
    assert!(
        lease_of(w, &s10).await.is_some(),
        "a lease naming a longer id as its parent is not a child"
    );
    for s in [&s8, &s10] {
        let t = process(w, s, "c", i64::MAX, Some(2), true).await;
        w.release(&t).await.unwrap();
    }
    assert!(!w.delete_finished(&s8, 0).await.unwrap(), "its child has not started");
    assert!(
        !w.delete_finished(&s10, 0).await.unwrap(),
        "a lease naming a longer id as its parent is not a child"
    );
    process(w, &orphan.id, "c", i64::MAX, Some(1), false).await;
    assert!(w.delete_finished(&s8, 0).await.unwrap());
    assert!(lease_of(w, &s10).await.is_some());
}

fn ids(minute: i64, ids: &[u128]) -> SeenIds {
    SeenIds {
        minute,
        ids: ids.to_vec(),
    }
}

/// The stored ids of `shard` from `from`, sorted per minute (parts merged).
async fn stored_ids<W: Warehouse + ?Sized>(w: &W, shard: &ShardId, from: i64) -> (Vec<(i64, u128)>, u64) {
    let s = w.shard_seen(shard, from).await.unwrap();
    let mut all: Vec<(i64, u128)> = s
        .ids
        .iter()
        .flat_map(|p| p.ids.iter().map(|id| (p.minute, *id)))
        .collect();
    all.sort_unstable();
    (all, s.duplicates)
}

/// The dedupe state is committed with the checkpoint: ids added by a commit are stored once
/// (a rewrite of the same commit replaces), a fenced-off commit stores none, the horizon
/// forgets old minutes, the duplicates count replaces the stored one and is in the totals,
/// and cleaning up a finished parent's lease deletes its ids too.
pub async fn warehouse_dedupe_state<W: LeaseStore + Warehouse + ?Sized>(w: &W) {
    let (s0, s1) = (ShardId::from_index(0), ShardId::from_index(1));
    w.ensure_leases(&[shard(0), child_of(1, &[0])]).await.unwrap();
    let t0 = w.take(&s0, 0, "a", i64::MAX).await.unwrap().unwrap();
    assert_eq!(w.shard_seen(&s0, i64::MIN).await.unwrap(), StoredSeen::default());

    let mut c = commit(&t0, 5, vec![]);
    c.seen = SeenCommit {
        added: vec![ids(10, &[1, 2]), ids(11, &[u128::MAX])],
        forget_before_minute: None,
        duplicates: Some(4),
    };
    w.commit(&c).await.unwrap();
    // Retried with an unknown outcome: the same commit again stores nothing twice.
    w.commit(&c).await.unwrap();
    let mut c = commit(&t0, 6, vec![]);
    c.seen = SeenCommit {
        added: vec![ids(10, &[3])],
        forget_before_minute: None,
        duplicates: None,
    };
    w.commit(&c).await.unwrap();
    assert_eq!(
        stored_ids(w, &s0, i64::MIN).await,
        (vec![(10, 1), (10, 2), (10, 3), (11, u128::MAX)], 4)
    );
    assert_eq!(stored_ids(w, &s0, 11).await, (vec![(11, u128::MAX)], 4));
    assert_eq!(w.totals().await.unwrap().duplicates, 4);

    // A zombie's commit stores no id and no count.
    let b = w.take(&s0, t0.counter, "b", i64::MAX).await.unwrap().unwrap();
    let mut zombie = commit(&t0, 7, vec![]);
    zombie.seen = SeenCommit {
        added: vec![ids(12, &[9])],
        forget_before_minute: Some(11),
        duplicates: Some(100),
    };
    assert!(w.commit(&zombie).await.is_err());
    assert_eq!(stored_ids(w, &s0, i64::MIN).await.0.len(), 4);
    assert_eq!(w.totals().await.unwrap().duplicates, 4);

    // The horizon moved past minute 10: it is forgotten, 11 stays.
    let mut c = commit(&b, 8, vec![]);
    c.seen = SeenCommit {
        added: vec![ids(12, &[5])],
        forget_before_minute: Some(11),
        duplicates: Some(6),
    };
    w.commit(&c).await.unwrap();
    assert_eq!(stored_ids(w, &s0, i64::MIN).await, (vec![(11, u128::MAX), (12, 5)], 6));
    assert_eq!(w.totals().await.unwrap().duplicates, 6);

    // The shard ends; its child takes the ids over at its first commit; the parent's lease
    // and ids are then cleaned up, and the child's stay.
    let mut end = commit(&b, 9, vec![]);
    end.shard_end = true;
    w.commit(&end).await.unwrap();
    w.release(&b).await.unwrap();
    let child = w.take(&s1, 0, "c", i64::MAX).await.unwrap().unwrap();
    let mut c = commit(&child, 1, vec![]);
    c.seen.added = vec![ids(11, &[u128::MAX]), ids(12, &[5])];
    w.commit(&c).await.unwrap();
    assert!(w.delete_finished(&s0, 0).await.unwrap());
    assert_eq!(stored_ids(w, &s0, i64::MIN).await.0, vec![]);
    assert_eq!(stored_ids(w, &s1, i64::MIN).await.0, vec![(11, u128::MAX), (12, 5)]);
    assert_eq!(
        w.totals().await.unwrap().duplicates,
        6,
        "a cleaned-up shard's duplicates still count"
    );
}

fn archived(seq: u64) -> Record {
    Record {
        sequence: SequenceNumber::from_u64(seq),
        partition_key: format!("pk-{}", seq % 5),
        explicit_hash_key: None,
        data: Bytes::from(format!("record {seq}").into_bytes()),
        // Ten seconds apart from 23:59:00 on: the records cross an hour.
        arrival_ms: 1_767_311_940_000 + seq as i64 * 10_000,
    }
}

/// The archive keeps every record appended and synced, in shard order, and reads each back
/// once: a writer that crashed before its sync and a new one that re-reads from the
/// checkpoint leave no gap and no repeat; reads start where they are asked; shards stay
/// apart. `read_back` reads a shard of the same archive from a position to its end.
pub fn archive_round_trip(archive: &dyn Archive, read_back: &dyn Fn(&ShardId, StartPosition) -> Vec<Record>) {
    let (s0, s1) = (ShardId::from_index(0), ShardId::from_index(1));
    let mut first = archive.open_shard(&s0).unwrap();
    for seq in 1..=40 {
        first.append(&archived(seq), Some(seq as i64)).unwrap();
    }
    first.sync().unwrap();
    // Appended but never synced: the writer dies before its commit.
    for seq in 41..=45 {
        first.append(&archived(seq), Some(seq as i64)).unwrap();
    }
    drop(first);
    // The next owner resumes after the checkpoint (29) and reads 30.. again.
    let mut second = archive.open_shard(&s0).unwrap();
    for seq in 30..=60 {
        second.append(&archived(seq), Some(seq as i64)).unwrap();
    }
    second.sync().unwrap();
    let mut other = archive.open_shard(&s1).unwrap();
    for seq in 1..=3 {
        other.append(&archived(seq), None).unwrap();
    }
    other.sync().unwrap();

    let all = read_back(&s0, StartPosition::TrimHorizon);
    let seqs: Vec<u64> = all.iter().map(|r| r.sequence.as_str().parse().unwrap()).collect();
    assert_eq!(seqs, (1..=60).collect::<Vec<u64>>(), "every record once, in order");
    assert_eq!(all[6], archived(7), "records read back intact");
    let at = read_back(&s0, StartPosition::AtSequence(SequenceNumber::from_u64(50)));
    assert_eq!(
        at.first().map(|r| r.sequence.clone()),
        Some(SequenceNumber::from_u64(50))
    );
    assert_eq!(at.len(), 11);
    let after = read_back(&s0, StartPosition::AfterSequence(SequenceNumber::from_u64(50)));
    assert_eq!(after.len(), 10, "AFTER_SEQUENCE_NUMBER skips exactly that record");
    assert_eq!(read_back(&s1, StartPosition::TrimHorizon).len(), 3, "shards stay apart");
}

/// Answers one group event for a member holding `held`: an assignment adds its shards (read
/// from the trim horizon), a revocation removes them and says done. Panics if a shard is
/// assigned while `other` holds it: a group hands a shard over only once its holder gave it
/// up (the holder's revocation is answered before the other's assignment starts).
fn answer(event: GroupEvent, held: &mut BTreeSet<ShardId>, other: &BTreeSet<ShardId>) {
    match event {
        GroupEvent::Assigned { shards, reply } => {
            for s in &shards {
                assert!(!other.contains(s), "{s} assigned while the other member still holds it");
                held.insert(s.clone());
            }
            reply.send(Ok(shards
                .into_iter()
                .map(|s| (s, StartPosition::TrimHorizon))
                .collect()));
        }
        GroupEvent::Revoked { shards, done, .. } => {
            for s in &shards {
                held.remove(s);
            }
            done.done();
        }
    }
}

/// A consumer group shares its shards between its members through their answers: the first
/// member gets every shard; a second one joining gets some of them, each only after the first
/// gave it up, and together they hold every shard once; when the second leaves, the first
/// holds everything again. `join_second` makes the second member; `shards` is how many the
/// stream has.
pub async fn group_hand_over<F, Fut>(first: std::sync::Arc<dyn GroupMember>, join_second: F, shards: usize)
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = std::sync::Arc<dyn GroupMember>>,
{
    use std::time::{Duration, Instant};
    let limit = Duration::from_secs(90);
    let (mut a, mut b) = (BTreeSet::new(), BTreeSet::new());
    let deadline = Instant::now() + limit;
    while a.len() < shards {
        assert!(
            Instant::now() < deadline,
            "the first member never got every shard: {a:?}"
        );
        let event = tokio::time::timeout(limit, first.next_event()).await.unwrap();
        answer(event.expect("the first member left"), &mut a, &b);
    }
    assert!(first.reader().list_shards().await.unwrap().len() == shards);

    let second = join_second().await;
    let deadline = Instant::now() + limit;
    while b.is_empty() || a.len() + b.len() < shards {
        assert!(
            Instant::now() < deadline,
            "no hand-over to the second member: first {a:?}, second {b:?}"
        );
        tokio::select! {
            e = first.next_event() => answer(e.expect("the first member left"), &mut a, &b),
            e = second.next_event() => answer(e.expect("the second member left"), &mut b, &a),
            () = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
    }
    assert!(
        a.is_disjoint(&b) && a.len() + b.len() == shards,
        "first {a:?}, second {b:?}"
    );
    assert!(
        !a.is_empty(),
        "the first member kept some shards (sticky, shared fairly)"
    );

    // The second leaves: its shards come back to the first.
    let leaving = tokio::spawn({
        let second = std::sync::Arc::clone(&second);
        async move { second.leave().await }
    });
    let deadline = Instant::now() + limit;
    while a.len() < shards {
        assert!(
            Instant::now() < deadline,
            "the first member did not get the shards back: {a:?}"
        );
        let e = tokio::time::timeout(limit, first.next_event()).await.unwrap();
        answer(e.expect("the first member left"), &mut a, &BTreeSet::new());
    }
    leaving.await.unwrap();
    first.leave().await;
}
