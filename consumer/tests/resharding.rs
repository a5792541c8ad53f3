//! A worker over a stream whose shard splits while it reads: the children are listed and
//! taken as soon as the parent ends (not at the next periodic shard sync), user records of an
//! aggregate outside the child's hash-key range are processed and counted, and the parent's
//! finished lease is cleaned up once its children started, and never made again although the
//! stream still lists the parent (so the parent is read once).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report
use bytes::Bytes;
use inlet_consumer::metrics as m;
use inlet_consumer::{Worker, WorkerConfig};
use inlet_embedded::EmbeddedWarehouse;
use inlet_schemas::kpl::{self, UserRecord};
use inlet_seams::{
    HashKeyRange, LeaseStore, ReadBatch, Record, SequenceNumber, Shard, ShardId, ShardReader, StartPosition,
    StreamError, StreamReader, Warehouse, hash_key,
};
use metrics::{Counter, CounterFn, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

type Boxed<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Not an event: every user record becomes one dead letter, which makes them easy to count.
const GARBAGE: &[u8] = &[0xFF, 0xFF, 0x01, b'x'];

fn parent() -> ShardId {
    ShardId::from_index(0)
}

fn halves() -> (HashKeyRange, HashKeyRange) {
    let h = HashKeyRange::split_evenly(2);
    (h[0], h[1])
}

/// The first partition key `k<i>` whose hash key falls in `range`.
fn key_in(range: HashKeyRange) -> String {
    (0..)
        .map(|i| format!("k{i}"))
        .find(|k| range.contains(hash_key(k)))
        .unwrap()
}

fn plain(seq: u64, pk: &str) -> Record {
    Record {
        sequence: SequenceNumber::from_u64(seq),
        partition_key: pk.into(),
        explicit_hash_key: None,
        data: Bytes::from_static(GARBAGE),
        arrival_ms: 0,
    }
}

/// Shard 0 (the whole key space) with 6 records, split into shards 1 and 2 (halves) once it
/// has been read to its end. Shard 1 holds 3 plain records and an aggregate of 3 user
/// records, 2 of them with keys of shard 2's half (written while the split happened).
#[derive(Debug)]
struct SplittingStream {
    records: BTreeMap<ShardId, Vec<Record>>,
    split: Arc<AtomicBool>,
    opens: Mutex<BTreeMap<ShardId, usize>>,
}

const USER_RECORDS: i64 = 6 + 6 + 3;
const OUTSIDE: u64 = 2;

impl SplittingStream {
    fn new() -> Self {
        let (low, high) = halves();
        let (kl, kh) = (key_in(low), key_in(high));
        let aggregate = kpl::encode(&[&kl, &kh, &kh].map(|pk| UserRecord {
            partition_key: pk.to_string(),
            explicit_hash_key: None,
            data: Bytes::from_static(GARBAGE),
        }));
        let mut in_aggregate = plain(4, &kl);
        in_aggregate.data = aggregate;
        let records = BTreeMap::from([
            (parent(), (1..=6).map(|s| plain(s, &kl)).collect()),
            (
                ShardId::from_index(1),
                vec![plain(1, &kl), plain(2, &kl), plain(3, &kl), in_aggregate],
            ),
            (ShardId::from_index(2), (1..=3).map(|s| plain(s, &kh)).collect()),
        ]);
        Self {
            records,
            split: Arc::new(AtomicBool::new(false)),
            opens: Mutex::new(BTreeMap::new()),
        }
    }

    fn opens(&self, shard: &ShardId) -> usize {
        self.opens.lock().unwrap().get(shard).copied().unwrap_or(0)
    }

    fn shards(&self) -> Vec<Shard> {
        let (low, high) = halves();
        let mut shards = vec![Shard {
            id: parent(),
            hash_range: HashKeyRange::ALL,
            parent: None,
            adjacent_parent: None,
            closed: false,
        }];
        if self.split.load(Ordering::SeqCst) {
            shards[0].closed = true;
            for (i, range) in [(1, low), (2, high)] {
                shards.push(Shard {
                    id: ShardId::from_index(i),
                    hash_range: range,
                    parent: Some(parent()),
                    adjacent_parent: None,
                    closed: false,
                });
            }
        }
        shards
    }
}

impl StreamReader for SplittingStream {
    fn list_shards<'life0, 'async_trait>(&'life0 self) -> Boxed<'async_trait, Result<Vec<Shard>, StreamError>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async move { Ok(self.shards()) })
    }

    fn open<'life0, 'life1, 'async_trait>(
        &'life0 self,
        shard: &'life1 ShardId,
        from: StartPosition,
    ) -> Boxed<'async_trait, Result<Box<dyn ShardReader>, StreamError>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async move {
            *self.opens.lock().unwrap().entry(shard.clone()).or_default() += 1;
            let records = self.records[shard].clone();
            let at = match from {
                StartPosition::TrimHorizon => 0,
                StartPosition::AtSequence(s) => records.iter().position(|r| r.sequence == s).unwrap(),
                other => panic!("the worker opened {shard} at {other:?}"),
            };
            Ok(Box::new(Reader {
                split: Arc::clone(&self.split),
                shard: shard.clone(),
                records,
                at,
            }) as Box<dyn ShardReader>)
        })
    }
}

#[derive(Debug)]
struct Reader {
    split: Arc<AtomicBool>,
    shard: ShardId,
    records: Vec<Record>,
    at: usize,
}

impl ShardReader for Reader {
    fn next_batch<'life0, 'async_trait>(
        &'life0 mut self,
        max: usize,
    ) -> Boxed<'async_trait, Result<ReadBatch, StreamError>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async move {
            let end = (self.at + max).min(self.records.len());
            let records = self.records[self.at..end].to_vec();
            self.at = end;
            let mut batch = ReadBatch {
                records,
                ..Default::default()
            };
            if batch.records.is_empty() && self.shard == parent() {
                // The split happens: the parent is closed, read to its end.
                self.split.store(true, Ordering::SeqCst);
                batch.shard_end = Some(vec![ShardId::from_index(1), ShardId::from_index(2)]);
            }
            Ok(batch)
        })
    }
}

/// Counters by `name{label=value,...}`.
#[derive(Debug, Default, Clone)]
struct Counts(Arc<Mutex<BTreeMap<String, u64>>>);

impl Counts {
    fn get(&self, key: &str) -> u64 {
        self.0.lock().unwrap().get(key).copied().unwrap_or(0)
    }
}

struct Handle(String, Counts);

impl CounterFn for Handle {
    fn increment(&self, value: u64) {
        *self.1.0.lock().unwrap().entry(self.0.clone()).or_default() += value;
    }
    fn absolute(&self, value: u64) {
        let mut map = self.1.0.lock().unwrap();
        let slot = map.entry(self.0.clone()).or_default();
        *slot = (*slot).max(value);
    }
}

impl Recorder for Counts {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        let labels: Vec<String> = key.labels().map(|l| format!("{}={}", l.key(), l.value())).collect();
        let name = if labels.is_empty() {
            key.name().to_owned()
        } else {
            format!("{}{{{}}}", key.name(), labels.join(","))
        };
        Counter::from_arc(Arc::new(Handle(name, self.clone())))
    }
    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }
    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}

fn worker(stream: &Arc<SplittingStream>, w: EmbeddedWarehouse, name: &str, sync: Duration) -> Worker {
    let w = Arc::new(w);
    let mut cfg = WorkerConfig::new(name).with_failover(Duration::from_secs(3));
    cfg.commit_interval = Duration::from_millis(100);
    cfg.shard_sync_interval = sync;
    Worker::new(stream.clone(), w.clone(), w, cfg)
}

async fn wait_for(what: &str, within: Duration, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done().await {
        assert!(Instant::now() < deadline, "not within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_split_is_followed_at_once_and_the_parent_lease_cleaned_up() {
    let counts = Counts::default();
    metrics::set_global_recorder(counts.clone()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.db");
    let stream = Arc::new(SplittingStream::new());
    let warehouse = EmbeddedWarehouse::open(&path).await.unwrap();
    let handled = async || warehouse.totals().await.unwrap().dead_lettered();

    // The periodic shard sync is a minute away: only the sync after the parent's end can
    // bring the children in time (rounds are a second apart).
    let shutdown = CancellationToken::new();
    let w1 = worker(
        &stream,
        EmbeddedWarehouse::open(&path).await.unwrap(),
        "w1",
        Duration::from_secs(60),
    );
    let task = tokio::spawn(w1.run(shutdown.clone()));
    wait_for(
        "every record of parent and children handled",
        Duration::from_secs(15),
        async || handled().await >= USER_RECORDS,
    )
    .await;
    shutdown.cancel();
    task.await.unwrap().unwrap();
    assert_eq!(handled().await, USER_RECORDS);
    let leases = warehouse.list().await.unwrap();
    assert_eq!(leases.len(), 3);
    assert!(leases[0].finished && leases[0].owner.is_none(), "{:?}", leases[0]);
    assert!(leases[1..].iter().all(|l| l.checkpoint.is_some() && !l.finished));
    assert_eq!(
        counts.get(&format!(
            "{}{{shard={}}}",
            m::RECORDS_OUTSIDE_SHARD_RANGE_TOTAL,
            ShardId::from_index(1)
        )),
        OUTSIDE,
        "user records outside the child's range are counted"
    );
    assert_eq!(
        counts.get(&format!("{}{{reason=shard_end}}", m::LEASES_RELEASED_TOTAL)),
        1
    );
    assert_eq!(
        counts.get(&format!("{}{{reason=shutdown}}", m::LEASES_RELEASED_TOTAL)),
        2
    );
    assert_eq!(
        counts.get(m::LEASES_CLEANED_UP_TOTAL),
        0,
        "children had not started at any sync"
    );

    // A worker syncing every round: its first sync deletes the parent's lease (finished,
    // released, both children started); the later ones must not make it again.
    let shutdown = CancellationToken::new();
    let w2 = worker(
        &stream,
        EmbeddedWarehouse::open(&path).await.unwrap(),
        "w2",
        Duration::from_millis(100),
    );
    let task = tokio::spawn(w2.run(shutdown.clone()));
    wait_for("the parent's lease cleaned up", Duration::from_secs(10), async || {
        warehouse.list().await.unwrap().iter().all(|l| l.shard != parent())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(3_500)).await; // three more rounds, each syncing
    shutdown.cancel();
    task.await.unwrap().unwrap();
    let left: Vec<ShardId> = warehouse.list().await.unwrap().into_iter().map(|l| l.shard).collect();
    assert_eq!(left, vec![ShardId::from_index(1), ShardId::from_index(2)]);
    assert_eq!(counts.get(m::LEASES_CLEANED_UP_TOTAL), 1);
    assert_eq!(stream.opens(&parent()), 1, "the parent was read again");
    assert_eq!(handled().await, USER_RECORDS);
    assert!(
        stream.opens(&ShardId::from_index(1)) >= 2,
        "the children were resumed by w2"
    );
}
