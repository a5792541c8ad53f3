//! The replay tool against a live pipeline on the embedded backends: rebuilds from the archive
//! and from the stream equal the live rows, the archive survives a torn write, NDJSON of a
//! filtered range is the generator's events for that filter, a 10x re-emit keeps per-key
//! order and the pace, and compaction beside live consumers and rebuilds ends exact.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report
use bytes::Bytes;
use inlet_consumer::{Archive, Worker, WorkerConfig};
use inlet_embedded::{EmbeddedStream, EmbeddedWarehouse};
use inlet_generator::{Generator, GeneratorConfig, Truth};
use inlet_producer::{BatchLimits, Producer, ProducerConfig};
use inlet_replay::{ArchiveReader, Counters, Filter, LocalArchive, ProgressFile, RebuildConfig, Sink, Source};
use inlet_rollup::{GameRow, Lateness, ViewingRow};
use inlet_schemas::events::{Envelope, envelope::Body};
use inlet_seams::{
    LeaseStore, PutRecord, Record, SequenceNumber, ShardCommit, ShardId, StartPosition, StreamReader, StreamWriter,
    Warehouse,
};
use prost::Message;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const SHARDS: u32 = 4;
const START_MS: i64 = 1_767_225_600_000;

fn workload(events: u64) -> GeneratorConfig {
    GeneratorConfig {
        events,
        seed: 5,
        late_share: 0.01,
        invalid_share: 0.01,
        // 10 ms of event time per event: 80,000 events span 13 minutes, the first 8 close.
        mean_gap_us: 10_000,
        ..Default::default()
    }
}

/// The workload with copies of 5 % of the valid events, up to 3 minutes of event time after
/// their originals (as retries would put them on the stream).
fn workload_with_copies(events: u64) -> GeneratorConfig {
    GeneratorConfig {
        duplicate_share: 0.05,
        duplicate_max_delay_ms: 3 * 60_000,
        ..workload(events)
    }
}

async fn produce(stream: &Arc<EmbeddedStream>, events: u64) {
    produce_workload(stream, workload(events)).await;
}

async fn produce_workload(stream: &Arc<EmbeddedStream>, cfg: GeneratorConfig) {
    let events = cfg.events;
    let producer = Producer::start(stream.clone(), ProducerConfig::default())
        .await
        .unwrap();
    for ev in Generator::new(cfg) {
        producer.send(ev.partition_key, ev.data).await.unwrap();
    }
    assert_eq!(producer.close().await.unwrap().delivered, events);
}

async fn open_stream(dir: &Path) -> Arc<EmbeddedStream> {
    Arc::new(EmbeddedStream::open_or_create(&dir.join("s.db"), SHARDS).await.unwrap())
}

type Workers = (
    CancellationToken,
    Vec<tokio::task::JoinHandle<Result<(), inlet_consumer::WorkerError>>>,
);

/// Two workers on `warehouse`, each with its own handle (as two processes would have), small
/// commits, and `tune` applied to their settings.
async fn start_workers(
    stream: &Arc<EmbeddedStream>,
    warehouse: &Path,
    tune: impl Fn(WorkerConfig) -> WorkerConfig,
) -> Workers {
    let shutdown = CancellationToken::new();
    let mut tasks = Vec::new();
    for i in 0..2 {
        let w = Arc::new(EmbeddedWarehouse::open(warehouse).await.unwrap());
        let mut cfg = WorkerConfig::new(format!("w{i}")).with_failover(Duration::from_secs(3));
        cfg.commit_interval = Duration::from_millis(100);
        cfg.commit_every_records = 2_000;
        tasks.push(tokio::spawn(
            Worker::new(stream.clone(), w.clone(), w, tune(cfg)).run(shutdown.clone()),
        ));
    }
    (shutdown, tasks)
}

async fn stop_workers((shutdown, tasks): Workers) {
    shutdown.cancel();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
}

/// The live path: two workers with the archive on, until every event is handled.
async fn consume(stream: &Arc<EmbeddedStream>, warehouse: &Path, archive: &Path, events: u64) -> EmbeddedWarehouse {
    let workers = start_workers(stream, warehouse, |c| {
        c.with_archive(Arc::new(LocalArchive::new(archive)))
    })
    .await;
    let w = EmbeddedWarehouse::open(warehouse).await.unwrap();
    inlet_testkit::wait_until_read(&w, events, Duration::from_secs(120)).await;
    stop_workers(workers).await;
    w
}

type Snapshot = (Vec<ViewingRow>, Vec<GameRow>, Vec<(Vec<ViewingRow>, Vec<GameRow>)>);

async fn snapshot(w: &EmbeddedWarehouse) -> Snapshot {
    let mut partials = Vec::new();
    for i in 0..SHARDS {
        partials.push(w.shard_partials(&ShardId::from_index(i), i64::MIN).await.unwrap());
    }
    (
        w.viewing_rollups(i64::MIN, i64::MAX).await.unwrap(),
        w.game_rollups(i64::MIN, i64::MAX).await.unwrap(),
        partials,
    )
}

/// Breaks the stored rows of minutes [from, to) of every shard (as a buggy aggregation
/// would have), through a lease like any writer.
async fn tamper(w: &EmbeddedWarehouse, from: i64, to: i64) -> usize {
    let mut n = 0;
    for lease in w.list().await.unwrap() {
        let token = w
            .take(&lease.shard, lease.counter, "tamper", i64::MAX)
            .await
            .unwrap()
            .unwrap();
        let (mut viewing, mut games) = w.shard_partials(&lease.shard, from).await.unwrap();
        viewing.retain(|r| r.minute < to);
        games.retain(|r| r.minute < to);
        viewing.iter_mut().for_each(|r| r.agg.events += 1_000);
        games.iter_mut().for_each(|r| r.agg.kills += 7);
        n += viewing.len() + games.len();
        let commit = ShardCommit {
            token: token.clone(),
            checkpoint: None,
            watermark_ms: None,
            open_from_minute: None,
            viewing,
            games,
            dead_letters: Vec::new(),
            seen: Default::default(),
            shard_end: false,
        };
        w.commit(&commit).await.unwrap();
        w.release(&token).await.unwrap();
    }
    n
}

fn rebuild_config(from: i64, to: i64) -> RebuildConfig {
    RebuildConfig {
        from_minute: from,
        to_minute: to,
        read_from: None,
        lateness: Lateness::default(),
        limits: Default::default(),
        dry_run: false,
        owner: "test-rebuild".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuilds_from_the_archive_and_the_stream_equal_the_live_rows_copies_dropped_alike() {
    let dir = tempfile::tempdir().unwrap();
    let stream = open_stream(dir.path()).await;
    let events = 80_000;
    // With copies: the rebuild must drop the same ones the live workers dropped.
    produce_workload(&stream, workload_with_copies(events)).await;
    let archive_dir = dir.path().join("archive");
    let w = consume(&stream, &dir.path().join("w.db"), &archive_dir, events).await;
    assert!(
        w.totals().await.unwrap().duplicates > 1_000,
        "the live workers dropped the copies"
    );
    let live = snapshot(&w).await;
    let first = START_MS / 60_000;
    // A range in the middle: windows at its start got events read before it, so starting
    // at the right place with the right watermark matters.
    let (from, to) = (first + 2, first + 5);
    let cancel = CancellationToken::new();
    for source in [
        Source::Archive(ArchiveReader::new(&archive_dir)),
        Source::Stream(stream.clone()),
    ] {
        assert!(tamper(&w, from, to).await > 100);
        assert_ne!(snapshot(&w).await, live, "tampering changed the rows");
        let mut progress = ProgressFile::load(None, "test").unwrap();
        let done = inlet_replay::rebuild(
            &source,
            &w,
            &rebuild_config(from, to),
            &mut progress,
            &Counters::default(),
            &cancel,
        )
        .await
        .unwrap();
        assert_eq!(done.len(), SHARDS as usize);
        for s in &done {
            assert!(s.exact_start && s.replaced_to_minute == to && s.zeroed == 0, "{s:?}");
        }
        let rebuilt = snapshot(&w).await;
        assert_eq!(rebuilt.0, live.0, "viewing rows, {source:?}");
        assert_eq!(rebuilt.1, live.1, "game rows, {source:?}");
        assert_eq!(rebuilt.2, live.2, "per-shard partials, {source:?}");
    }
    // A row the rebuild does not produce is zeroed.
    let shard = ShardId::from_index(0);
    let lease = w.list().await.unwrap().into_iter().find(|l| l.shard == shard).unwrap();
    let token = w
        .take(&shard, lease.counter, "tamper", i64::MAX)
        .await
        .unwrap()
        .unwrap();
    let mut bogus = live.0[0].clone();
    (bogus.minute, bogus.title_id) = (from, "title-bogus".into());
    let commit = ShardCommit {
        token: token.clone(),
        checkpoint: None,
        watermark_ms: None,
        open_from_minute: None,
        viewing: vec![bogus],
        games: Vec::new(),
        dead_letters: Vec::new(),
        seen: Default::default(),
        shard_end: false,
    };
    w.commit(&commit).await.unwrap();
    w.release(&token).await.unwrap();
    let mut progress = ProgressFile::load(None, "test").unwrap();
    let source = Source::Archive(ArchiveReader::new(&archive_dir));
    let done = inlet_replay::rebuild(
        &source,
        &w,
        &rebuild_config(from, to),
        &mut progress,
        &Counters::default(),
        &cancel,
    )
    .await
    .unwrap();
    assert_eq!(done.iter().map(|s| s.zeroed).sum::<usize>(), 1);
    let row = w.viewing_rollups(from, from + 1).await.unwrap();
    let bogus = row.iter().find(|r| r.title_id == "title-bogus").unwrap();
    assert_eq!(bogus.agg.events, 0);
}

/// Compaction, live consumers and rebuilds at once: two workers compacting every 100 ms
/// (keeping 2 minutes per shard), a third compactor and a loop of rebuilds from the stream run
/// together until every event is handled; the rollups and totals then equal an undisturbed
/// run's, and each shard's own rows are only its last minutes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_while_consumers_and_rebuilds_run_ends_exact() {
    let dir = tempfile::tempdir().unwrap();
    let stream = open_stream(dir.path()).await;
    let events = 80_000;
    produce_workload(&stream, workload_with_copies(events)).await;
    let reference = consume(&stream, &dir.path().join("ref.db"), &dir.path().join("a"), events).await;

    let path = dir.path().join("w.db");
    let workers = start_workers(&stream, &path, |mut c| {
        c.read_batch = 5;
        c.compact_every = Some(Duration::from_millis(100));
        c.compact_keep = Duration::from_secs(120);
        c
    })
    .await;
    let w = EmbeddedWarehouse::open(&path).await.unwrap();
    let first = START_MS / 60_000;
    let (mut rebuilds, mut replaced, mut kept_folded) = (0, 0, 0);
    let cancel = CancellationToken::new();
    while w.totals().await.unwrap().read() < events as i64 {
        w.compact(2).await.unwrap();
        let mut progress = ProgressFile::load(None, "test").unwrap();
        let done = inlet_replay::rebuild(
            &Source::Stream(stream.clone()),
            &w,
            &rebuild_config(first, first + 20),
            &mut progress,
            &Counters::default(),
            &cancel,
        )
        .await
        .unwrap();
        rebuilds += 1;
        replaced += done.iter().filter(|s| s.rows > 0).count();
        kept_folded += done.iter().filter(|s| s.replaced_from_minute > first).count();
    }
    stop_workers(workers).await;
    assert!(
        rebuilds > 1 && replaced > 0 && kept_folded > 0,
        "the rebuilds ran among the compactions: {rebuilds} runs, {replaced} shards with rows replaced, \
         {kept_folded} that kept folded minutes"
    );

    assert_eq!(w.totals().await.unwrap(), reference.totals().await.unwrap());
    let all = (i64::MIN, i64::MAX);
    assert_eq!(
        w.viewing_rollups(all.0, all.1).await.unwrap(),
        reference.viewing_rollups(all.0, all.1).await.unwrap(),
        "viewing rows: nothing counted twice, nothing lost"
    );
    assert_eq!(
        w.game_rollups(all.0, all.1).await.unwrap(),
        reference.game_rollups(all.0, all.1).await.unwrap()
    );
    for lease in w.list().await.unwrap() {
        let folded = lease.folded_before_minute.expect("every shard had minutes folded");
        let (v, g) = w.shard_partials(&lease.shard, i64::MIN).await.unwrap();
        let minutes: Vec<i64> = v.iter().map(|r| r.minute).chain(g.iter().map(|r| r.minute)).collect();
        assert!(
            minutes.iter().all(|m| *m >= folded) && minutes.iter().all(|m| *m >= first + 13 - 8),
            "{}: own rows only in its last minutes (folded before {folded}): {minutes:?}",
            lease.shard
        );
    }
}

fn record(seq: u64, arrival_ms: i64, data: &'static [u8]) -> Record {
    Record {
        sequence: SequenceNumber::from_u64(seq),
        partition_key: "k".into(),
        explicit_hash_key: Some(7),
        data: Bytes::from_static(data),
        arrival_ms,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_torn_last_block_is_reported_and_corruption_before_it_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let archive = LocalArchive::new(dir.path());
    let shard = ShardId::from_index(0);
    // Two writers, overlapping (a re-read after a crash), one record in a later hour.
    let mut a = archive.open_shard(&shard).unwrap();
    for i in 1..=3 {
        a.append(&record(i, START_MS + i as i64, b"one"), None).unwrap();
    }
    a.sync().unwrap();
    a.append(&record(4, START_MS + 4, b"two"), Some(1)).unwrap();
    a.sync().unwrap();
    let mut b = archive.open_shard(&shard).unwrap();
    b.append(&record(3, START_MS + 3, b"one"), Some(2)).unwrap();
    b.append(&record(4, START_MS + 4, b"two"), Some(2)).unwrap();
    b.append(&record(5, START_MS + 3_600_000, b"later"), Some(2)).unwrap();
    b.sync().unwrap();
    let read = |from| {
        let reader = ArchiveReader::new(dir.path());
        let got = reader
            .open(&shard, from)
            .and_then(|mut r| r.next_records(100))
            .map(|v| v.iter().map(|r| r.sequence.to_u64().unwrap()).collect::<Vec<_>>())
            .map_err(|e| format!("{:?}", std::error::Error::source(&e)));
        (got, reader.torn_tails())
    };
    assert_eq!(read(StartPosition::TrimHorizon), (Ok_(vec![1, 2, 3, 4, 5]), vec![]));
    assert_eq!(
        read(StartPosition::AfterSequence(SequenceNumber::from_u64(3))).0,
        Ok_(vec![4, 5])
    );
    assert_eq!(read(StartPosition::AtTimestamp(START_MS + 3_600_000)).0, Ok_(vec![5]));
    let first = {
        let mut files: Vec<_> = std::fs::read_dir(dir.path().join("2026-01-01T00").join(&shard.0))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        files.into_iter().find(|p| p.to_string_lossy().contains("/1.")).unwrap()
    };
    let len = std::fs::metadata(&first).unwrap().len();
    // A crash halfway through the second block of writer a: records 1-3 stay, 4 comes from b.
    let f = std::fs::File::options().write(true).open(&first).unwrap();
    f.set_len(len - 5).unwrap();
    let (got, torn) = read(StartPosition::TrimHorizon);
    assert_eq!(got, Ok_(vec![1, 2, 3, 4, 5]));
    assert_eq!(torn.len(), 1, "the torn block is reported");
    // A flipped byte in the first (not last) block is corruption: an error, not a skip.
    let mut bytes = std::fs::read(&first).unwrap();
    bytes[40] ^= 0xFF;
    std::fs::write(&first, bytes).unwrap();
    let (got, _) = read(StartPosition::TrimHorizon);
    assert!(got.is_err(), "{got:?}");
}

#[allow(non_snake_case)]
fn Ok_(t: Vec<u64>) -> Result<Vec<u64>, String> {
    Ok(t)
}

fn matches(e: &Envelope, title: &str, from: i64, to: i64) -> bool {
    let heartbeat = matches!(&e.body, Some(Body::Viewing(v))
        if v.title_id == title && matches!(v.kind, Some(inlet_schemas::events::viewing::Kind::Heartbeat(_))));
    heartbeat && e.event_time_ms >= from && e.event_time_ms < to
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ndjson_of_a_filtered_range_is_the_generators_events_for_that_filter() {
    let dir = tempfile::tempdir().unwrap();
    let stream = open_stream(dir.path()).await;
    let events = 20_000;
    produce(&stream, events).await;
    let (title, from, to) = ("title-0001", START_MS + 30_000, START_MS + 120_000);
    let mut expected: Vec<Envelope> = Generator::new(workload(events))
        .filter_map(|ev| Envelope::decode(ev.data.as_ref()).ok())
        .filter(|e| matches(e, title, from, to))
        .collect();
    assert!(
        expected.len() > 50,
        "the filter keeps a fair sample ({})",
        expected.len()
    );
    let filter = Filter {
        from_ms: Some(from),
        to_ms: Some(to),
        kinds: vec!["heartbeat".into()],
        titles: vec![title.into()],
        ..Default::default()
    };
    let mut out = Vec::new();
    let mut progress = ProgressFile::load(None, "ndjson").unwrap();
    let driven = inlet_replay::drive(
        &Source::Stream(stream.clone()),
        &StartPosition::TrimHorizon,
        &filter,
        &mut Sink::Ndjson(&mut out),
        &mut progress,
        &Counters::default(),
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(driven.user_records, events);
    let got: Vec<Envelope> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| inlet_schemas::json::decode_event(l.as_bytes()).unwrap())
        .collect();
    // Per session, the generator's order; across sessions, any.
    let by_session = |v: &[Envelope]| {
        let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for e in v {
            m.entry(inlet_schemas::kind::partition_key(e).to_owned())
                .or_default()
                .push(e.event_id.clone());
        }
        m
    };
    assert_eq!(by_session(&got), by_session(&expected));
    let key = |e: &Envelope| e.event_id.clone();
    let mut got = got;
    got.sort_by_key(key);
    expected.sort_by_key(key);
    assert_eq!(got, expected, "every field of every event");
    let truth_valid = Generator::new(workload(events))
        .filter(|ev| matches!(&ev.truth, Truth::Valid(e) if matches(e, title, from, to)))
        .count();
    assert!(truth_valid <= got.len());
}

/// Writes `batches` batches of `per_batch` events, `gap` apart, round-robin over sessions.
async fn paced_source(stream: &EmbeddedStream, batches: usize, per_batch: usize, gap: Duration) -> Vec<PutRecord> {
    let mut all = Vec::new();
    let mut generator = Generator::new(GeneratorConfig {
        events: (batches * per_batch) as u64,
        invalid_share: 0.0,
        ..Default::default()
    });
    for _ in 0..batches {
        let records: Vec<PutRecord> = generator
            .by_ref()
            .take(per_batch)
            .map(|ev| PutRecord {
                partition_key: ev.partition_key,
                explicit_hash_key: None,
                data: ev.data,
            })
            .collect();
        stream.put_records(&records).await.unwrap();
        all.extend(records);
        tokio::time::sleep(gap).await;
    }
    all
}

async fn read_all(stream: &EmbeddedStream) -> Vec<(ShardId, Record)> {
    let mut out = Vec::new();
    for shard in stream.list_shards().await.unwrap() {
        let mut r = stream.open(&shard.id, StartPosition::TrimHorizon).await.unwrap();
        loop {
            let b = r.next_batch(1_000).await.unwrap();
            if b.records.is_empty() {
                break;
            }
            out.extend(b.records.into_iter().map(|r| (shard.id.clone(), r)));
        }
    }
    out
}

/// Event id → (partition key, arrival time) of every user record, in each shard's order.
fn events_of(records: &[(ShardId, Record)]) -> Vec<(String, String, i64)> {
    let mut out = Vec::new();
    for (_, r) in records {
        for u in inlet_schemas::kpl::decode(&r.partition_key, r.explicit_hash_key, &r.data).unwrap() {
            let e = Envelope::decode(u.data.as_ref()).unwrap();
            out.push((u.partition_key, e.event_id, r.arrival_ms));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn re_emit_at_10x_keeps_per_key_order_and_the_pace() {
    let dir = tempfile::tempdir().unwrap();
    let source = Arc::new(
        EmbeddedStream::open_or_create(&dir.path().join("a.db"), SHARDS)
            .await
            .unwrap(),
    );
    let target = Arc::new(
        EmbeddedStream::open_or_create(&dir.path().join("b.db"), 3)
            .await
            .unwrap(),
    );
    let (batches, per_batch, gap) = (50, 40, Duration::from_millis(100));
    paced_source(&source, batches, per_batch, gap).await;
    let original = events_of(&read_all(&source).await);
    let producer = Producer::start(
        target.clone(),
        ProducerConfig {
            batch: BatchLimits {
                linger_ms: 5,
                ..Default::default()
            },
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let speed = 10.0;
    let mut progress = ProgressFile::load(None, "emit").unwrap();
    let started = std::time::Instant::now();
    let driven = inlet_replay::drive(
        &Source::Stream(source.clone()),
        &StartPosition::TrimHorizon,
        &Filter::default(),
        &mut Sink::Emit {
            producer: &producer,
            speed,
        },
        &mut progress,
        &Counters::default(),
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    let wall = started.elapsed();
    producer.close().await.unwrap();
    assert_eq!(driven.replayed as usize, batches * per_batch);
    let emitted = events_of(&read_all(&target).await);
    assert_eq!(emitted.len(), original.len());

    // Per-key order: each key's event ids in the same order on both streams.
    fn per_key(v: &[(String, String, i64)]) -> BTreeMap<&str, Vec<&str>> {
        let mut m: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (k, id, _) in v {
            m.entry(k).or_default().push(id);
        }
        m
    }
    assert_eq!(per_key(&emitted), per_key(&original));

    // Pace: every event's offset from the first, original / speed against re-emitted.
    let arrival = |v: &[(String, String, i64)]| v.iter().map(|(_, id, t)| (id.clone(), *t)).collect::<BTreeMap<_, _>>();
    let (a, b) = (arrival(&original), arrival(&emitted));
    let (a0, b0) = (*a.values().min().unwrap(), *b.values().min().unwrap());
    let original_span = (a.values().max().unwrap() - a0) as f64;
    let emitted_span = (b.values().max().unwrap() - b0) as f64;
    let errors: Vec<f64> = a
        .iter()
        .map(|(id, t)| ((b[id] - b0) as f64 - (t - a0) as f64 / speed).abs())
        .collect();
    let max_err = errors.iter().cloned().fold(0.0, f64::max);
    let mean_err = errors.iter().sum::<f64>() / errors.len() as f64;
    let ratio = original_span / emitted_span;
    println!(
        "re-emit at {speed}x: original span {original_span:.0} ms, re-emitted span {emitted_span:.0} ms \
         (measured speed {ratio:.2}x), per-event offset error mean {mean_err:.1} ms max {max_err:.1} ms, \
         wall {:.0} ms",
        wall.as_secs_f64() * 1_000.0
    );
    // Generous: the pace is the point, not the scheduler's jitter.
    assert!((7.0..=13.0).contains(&ratio), "measured speed {ratio:.2}x");
    assert!(max_err < 150.0, "max offset error {max_err:.1} ms");
}
