//! Lease balance at scale: 256 shards of the embedded stream over four in-process workers
//! settle at 64 leases each; a fifth worker joining takes its share (51 or 52 each), and no
//! shard is ever committed by two workers.
//!
//! The proof of the last point, with everything committed at the end:
//! - the warehouse equals the generator's `Expected` exactly, as `inlet verify` checks it
//!   (rows, dead letters per kind and field, totals): nothing lost;
//! - the workers' committed counts add up to the workload exactly, and the dead letters of
//!   all successful commits are the expected ones, each once: nothing processed twice. (The
//!   warehouse replaces a shard's cumulative rows and dead letters by key, so a double commit
//!   of the same records would not show in its totals.)
//! - each shard's successful commits, in the order they applied, form one chain: fencing
//!   counters never go back and checkpoints only move forward.
//!
//! Some events are produced while the fifth worker joins, so leases move while shards have
//! work in flight. Convergence times are printed; the only timing assertion is a generous
//! bound on each phase.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod common;

use common::check;
use inlet_consumer::{ConsumerStats, Worker, WorkerConfig, WorkerError};
use inlet_embedded::{EmbeddedStream, EmbeddedWarehouse};
use inlet_generator::{Expected, GenEvent, Generator, GeneratorConfig};
use inlet_producer::{Producer, ProducerConfig, ShardMap};
use inlet_rollup::{GameRow, ViewingRow};
use inlet_seams::{
    Checkpoint, DeadLetter, LeaseStore, ShardCommit, ShardId, StoredSeen, StreamWriter, Totals, Warehouse,
    WarehouseError,
};
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const SHARDS: u32 = 256;
/// Events in the stream before any worker starts.
const BEFORE: u64 = 30_000;
/// Events produced while the fifth worker joins.
const DURING: u64 = 10_000;
const FAILOVER: Duration = Duration::from_secs(2);
/// A lease assignment unchanged for this long (several renew rounds of every worker, more
/// than a failover) is taken as settled.
const STABLE_FOR: Duration = Duration::from_secs(4);
const POLL: Duration = Duration::from_millis(250);
/// Generous bound on each phase.
const CONVERGE_WITHIN: Duration = Duration::from_secs(180);

/// One successful commit, as the warehouse applied it.
#[derive(Debug, Clone)]
struct Applied {
    shard: ShardId,
    owner: String,
    counter: u64,
    checkpoint: Option<Checkpoint>,
    dead_letters: Vec<(ShardId, String, u32)>,
}

/// Commits as the warehouse saw them.
#[derive(Debug, Default)]
struct CommitLog {
    /// Those that applied, in the order they did.
    applied: Vec<Applied>,
    /// Those refused because the lease had moved on.
    fenced: u64,
}

/// The workers' warehouse, recording every commit that applied. One lock across all workers
/// keeps the record in the order the commits applied (SQLite serializes them anyway).
#[derive(Debug)]
struct Recording {
    inner: EmbeddedWarehouse,
    log: Arc<tokio::sync::Mutex<CommitLog>>,
}

type Fut<'a, T> = Pin<Box<dyn Future<Output = Result<T, WarehouseError>> + Send + 'a>>;

// `Warehouse` is an `async_trait`; written out by hand to do without the macro crate.
impl Warehouse for Recording {
    fn commit<'life0, 'life1, 'async_trait>(&'life0 self, commit: &'life1 ShardCommit) -> Fut<'async_trait, ()>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async move {
            let mut log = self.log.lock().await;
            if let Err(e) = self.inner.commit(commit).await {
                if matches!(e, WarehouseError::LeaseLost { .. }) {
                    log.fenced += 1;
                }
                return Err(e);
            }
            log.applied.push(Applied {
                shard: commit.token.shard.clone(),
                owner: commit.token.owner.clone(),
                counter: commit.token.counter,
                checkpoint: commit.checkpoint.clone(),
                dead_letters: commit
                    .dead_letters
                    .iter()
                    .map(|d| (d.shard.clone(), d.sequence.to_string(), d.sub_sequence))
                    .collect(),
            });
            Ok(())
        })
    }

    fn shard_partials<'life0, 'life1, 'async_trait>(
        &'life0 self,
        shard: &'life1 ShardId,
        from_minute: i64,
    ) -> Fut<'async_trait, (Vec<ViewingRow>, Vec<GameRow>)>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        self.inner.shard_partials(shard, from_minute)
    }

    fn shard_seen<'life0, 'life1, 'async_trait>(
        &'life0 self,
        shard: &'life1 ShardId,
        from_minute: i64,
    ) -> Fut<'async_trait, StoredSeen>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        self.inner.shard_seen(shard, from_minute)
    }

    fn viewing_rollups<'life0, 'async_trait>(&'life0 self, from: i64, to: i64) -> Fut<'async_trait, Vec<ViewingRow>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        self.inner.viewing_rollups(from, to)
    }

    fn game_rollups<'life0, 'async_trait>(&'life0 self, from: i64, to: i64) -> Fut<'async_trait, Vec<GameRow>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        self.inner.game_rollups(from, to)
    }

    fn totals<'life0, 'async_trait>(&'life0 self) -> Fut<'async_trait, Totals>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        self.inner.totals()
    }

    fn dead_letters<'life0, 'async_trait>(&'life0 self, limit: usize) -> Fut<'async_trait, Vec<DeadLetter>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        self.inner.dead_letters(limit)
    }

    fn compact<'life0, 'async_trait>(&'life0 self, keep_minutes: i64) -> Fut<'async_trait, inlet_seams::Compacted>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        self.inner.compact(keep_minutes)
    }
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

/// Workers running in this process.
struct Pool {
    stream: Arc<EmbeddedStream>,
    warehouse_path: std::path::PathBuf,
    log: Arc<tokio::sync::Mutex<CommitLog>>,
    shutdown: CancellationToken,
    names: Vec<String>,
    stats: Vec<Arc<ConsumerStats>>,
    tasks: Vec<JoinHandle<Result<(), WorkerError>>>,
}

impl Pool {
    async fn spawn(&mut self) {
        let name = format!("w{}", self.names.len());
        let db = EmbeddedWarehouse::open(&self.warehouse_path).await.unwrap();
        let warehouse = Arc::new(Recording {
            inner: db.clone(),
            log: self.log.clone(),
        });
        let mut cfg = WorkerConfig::new(name.clone()).with_failover(FAILOVER);
        cfg.commit_interval = Duration::from_millis(250);
        let worker = Worker::new(self.stream.clone(), Arc::new(db), warehouse, cfg);
        self.stats.push(worker.stats());
        self.tasks.push(tokio::spawn(worker.run(self.shutdown.clone())));
        self.names.push(name);
    }

    fn assert_running(&self) {
        for (name, t) in self.names.iter().zip(&self.tasks) {
            assert!(!t.is_finished(), "worker {name} stopped on its own");
        }
    }

    async fn stop(self) -> Vec<inlet_consumer::StatsSnapshot> {
        self.shutdown.cancel();
        for t in self.tasks {
            t.await.unwrap().unwrap();
        }
        self.stats.iter().map(|s| s.snapshot()).collect()
    }
}

/// A settled lease assignment.
#[derive(Debug)]
struct Settled {
    /// Leases per worker (every worker of the pool listed).
    shares: BTreeMap<String, usize>,
    /// From the phase's start to the first poll of the settled assignment.
    converged_after: Duration,
    /// Lease takes since the stream was new (each take bumps a counter by one).
    takes: u64,
    /// Polls that saw the assignment change.
    changes: u32,
}

/// Polls the lease table until every lease is held and the assignment (owner and counter of
/// each lease) stays the same for [`STABLE_FOR`].
async fn settle(leases: &EmbeddedWarehouse, pool: &Pool, started: Instant) -> Settled {
    let mut last: Option<Vec<(ShardId, String, u64)>> = None;
    let mut since = Instant::now();
    let mut changes = 0;
    loop {
        pool.assert_running();
        let now = now_ms();
        let list = leases.list().await.unwrap();
        // Empty until the first worker has listed the shards.
        assert!(list.len() <= SHARDS as usize);
        let held: Vec<(ShardId, String, u64)> = list
            .iter()
            .filter(|l| l.expires_at_ms > now)
            .filter_map(|l| Some((l.shard.clone(), l.owner.clone()?, l.counter)))
            .collect();
        let mut shares: BTreeMap<String, usize> = pool.names.iter().map(|n| (n.clone(), 0)).collect();
        for (_, owner, _) in &held {
            *shares.entry(owner.clone()).or_default() += 1;
        }
        let polled = Instant::now();
        if last.as_ref() != Some(&held) {
            changes += 1;
            since = polled;
            last = Some(held);
        } else if last.as_ref().is_some_and(|h| h.len() == SHARDS as usize) && polled - since >= STABLE_FOR {
            return Settled {
                shares,
                converged_after: since - started,
                takes: list.iter().map(|l| l.counter).sum(),
                changes,
            };
        }
        assert!(
            started.elapsed() < CONVERGE_WITHIN,
            "no settled assignment within {CONVERGE_WITHIN:?}: {} of {SHARDS} leases held, shares now {shares:?}",
            last.as_ref().map_or(0, Vec::len)
        );
        tokio::time::sleep(POLL).await;
    }
}

fn assert_shares(settled: &Settled, allowed: &[usize]) {
    let total: usize = settled.shares.values().sum();
    assert_eq!(total, SHARDS as usize, "{settled:?}");
    for (worker, n) in &settled.shares {
        assert!(
            allowed.contains(n),
            "worker {worker} holds {n} leases, not one of {allowed:?}: {settled:?}"
        );
    }
}

/// Each shard's applied commits form one chain; every dead letter was committed once.
/// Returns (commits, shards committed by more than one worker).
fn check_chains(log: &[Applied], expected: &Expected) -> (usize, usize) {
    let mut last: BTreeMap<&ShardId, &Applied> = BTreeMap::new();
    let mut owners: BTreeMap<&ShardId, BTreeSet<&str>> = BTreeMap::new();
    for c in log {
        if let Some(prev) = last.get(&c.shard) {
            assert!(
                c.counter > prev.counter || (c.counter == prev.counter && c.owner == prev.owner),
                "shard {} committed by {} with counter {} after {} with counter {}",
                c.shard,
                c.owner,
                c.counter,
                prev.owner,
                prev.counter
            );
            if let (Some(a), Some(b)) = (&prev.checkpoint, &c.checkpoint) {
                assert!(
                    b > a,
                    "shard {}: checkpoint {b:?} of {} (counter {}) does not move past {a:?} of {} (counter {})",
                    c.shard,
                    c.owner,
                    c.counter,
                    prev.owner,
                    prev.counter
                );
            }
        }
        last.insert(&c.shard, c);
        owners.entry(&c.shard).or_default().insert(&c.owner);
    }
    let letters: Vec<&(ShardId, String, u32)> = log.iter().flat_map(|c| &c.dead_letters).collect();
    let unique: BTreeSet<_> = letters.iter().collect();
    assert_eq!(unique.len(), letters.len(), "a dead letter was committed twice");
    assert_eq!(letters.len() as u64, expected.dead_lettered());
    (log.len(), owners.values().filter(|o| o.len() > 1).count())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_balance_over_256_shards_and_a_joining_worker_takes_its_share() {
    let dir = tempfile::tempdir().unwrap();
    let stream = Arc::new(
        EmbeddedStream::open_or_create(&dir.path().join("s.db"), SHARDS)
            .await
            .unwrap(),
    );
    let map = ShardMap::new(&stream.open_shards().await.unwrap()).unwrap();
    let mut expected = Expected::new(map.len(), inlet_rollup::Lateness::default().allowed_ms);
    let cfg = GeneratorConfig {
        events: BEFORE + DURING,
        seed: 256,
        late_share: 0.01,
        invalid_share: 0.01,
        ..GeneratorConfig::default()
    };
    let mut events: Vec<GenEvent> = Generator::new(cfg)
        .inspect(|ev| expected.observe(ev, map.index_of_key(&ev.partition_key)))
        .collect();
    assert!(expected.dead.keys().any(|k| k.0 == "late") && expected.dead.keys().any(|k| k.0 == "invalid"));
    let later = events.split_off(BEFORE as usize);
    let producer = Producer::start(stream.clone(), ProducerConfig::default())
        .await
        .unwrap();
    for ev in events {
        producer.send(ev.partition_key, ev.data).await.unwrap();
    }
    producer.flush().await.unwrap();

    let warehouse_path = dir.path().join("w.db");
    let observer = EmbeddedWarehouse::open(&warehouse_path).await.unwrap();
    let mut pool = Pool {
        stream: stream.clone(),
        warehouse_path: warehouse_path.clone(),
        log: Arc::new(tokio::sync::Mutex::new(CommitLog::default())),
        shutdown: CancellationToken::new(),
        names: Vec::new(),
        stats: Vec::new(),
        tasks: Vec::new(),
    };

    // Phase 1: four workers start together on 256 free leases.
    let started = Instant::now();
    for _ in 0..4 {
        pool.spawn().await;
    }
    let first = settle(&observer, &pool, started).await;
    eprintln!(
        "4 workers: settled at {:?} after {:.1} s ({} lease takes, {} assignment changes seen, {} commits fenced off so far)",
        first.shares,
        first.converged_after.as_secs_f64(),
        first.takes,
        first.changes,
        pool.log.lock().await.fenced
    );
    assert_shares(&first, &[63, 64, 65]);

    // Phase 2: a fifth worker joins while events keep coming.
    let feeder = tokio::spawn(async move {
        for chunk in later.chunks(250) {
            for ev in chunk {
                producer.send(ev.partition_key.clone(), ev.data.clone()).await.unwrap();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        producer.close().await.unwrap()
    });
    let joined = Instant::now();
    pool.spawn().await;
    let second = settle(&observer, &pool, joined).await;
    eprintln!(
        "5 workers: settled at {:?} after {:.1} s ({} lease takes in this phase, {} assignment changes seen, {} commits fenced off so far)",
        second.shares,
        second.converged_after.as_secs_f64(),
        second.takes - first.takes,
        second.changes,
        pool.log.lock().await.fenced
    );
    assert_shares(&second, &[51, 52]);

    // Everything committed, then stopped.
    let stats = feeder.await.unwrap();
    assert_eq!((stats.delivered, stats.failed), (BEFORE + DURING, 0));
    let total = BEFORE + DURING;
    let drained = Instant::now();
    loop {
        pool.assert_running();
        let t = observer.totals().await.unwrap();
        let handled = t.read();
        if handled >= total as i64 {
            break;
        }
        assert!(
            drained.elapsed() < CONVERGE_WITHIN,
            "only {handled} of {total} events handled"
        );
        tokio::time::sleep(POLL).await;
    }
    let log = pool.log.clone();
    let snapshots = pool.stop().await;
    eprintln!(
        "all {total} events committed {:.1} s after the feeder finished; {:.1} s in all",
        drained.elapsed().as_secs_f64(),
        started.elapsed().as_secs_f64()
    );

    check(&observer, &expected).await;
    let handled: u64 = snapshots.iter().map(|s| s.handled()).sum();
    assert_eq!(handled, total, "events committed by the workers: {snapshots:?}");
    let log = log.lock().await;
    let (commits, moved) = check_chains(&log.applied, &expected);
    eprintln!(
        "exact: {} aggregated, {} dead-lettered; {commits} commits applied, {} fenced off; \
         {moved} shards committed by more than one worker over time (one at a time)",
        expected.aggregated,
        expected.dead_lettered(),
        log.fenced
    );
}
