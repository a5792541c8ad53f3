//! An emitter retrying a batch the collector answered 503 after some of its events were
//! written: the collector in front of a Kinesis stream (the emulator) behind the fault
//! proxy, which leaves some `PutRecords` calls unanswered although it wrote them. The
//! producer times out and writes them again, the request's acknowledgement times out (503),
//! the client posts the whole batch again; the stream holds copies, and real consumer
//! workers count every event once.
//!
//! Needs the emulator: ignored by plain `cargo test`; `infra/test.sh` runs it (and a missing
//! emulator fails it).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report
mod common;

use common::{key_of, valid_events};
use inlet_collector::{Collector, CollectorConfig, hash_key};
use inlet_consumer::{Worker, WorkerConfig};
use inlet_embedded::EmbeddedWarehouse;
use inlet_emitter::{Client, ClientConfig};
use inlet_kinesis::fault_proxy::{FaultProxy, Faults};
use inlet_kinesis::testing::patient_location;
use inlet_kinesis::{KinesisLocation, KinesisStream};
use inlet_producer::Producer;
use inlet_schemas::events::{Envelope, envelope::Body};
use inlet_seams::Warehouse;
use prost::Message;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// The shared emulator's endpoint; a missing one fails the test.
fn kinesis_endpoint() -> String {
    std::env::var("INLET_KINESIS_ENDPOINT").unwrap_or_else(|_| {
        panic!(
            "INLET_KINESIS_ENDPOINT is not set: this test needs the Kinesis emulator; \
             run the tests through infra/test.sh, which starts it"
        )
    })
}

/// Each event id in the stream and how many times it is there (user records of every
/// shard, aggregates taken apart).
async fn ids_in_stream(stream: &KinesisStream) -> HashMap<String, u64> {
    let mut ids = HashMap::new();
    for (_, _, _, u) in inlet_testkit::user_records(&inlet_testkit::read_stream(stream).await) {
        *ids.entry(Envelope::decode(u.data).unwrap().event_id).or_default() += 1;
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Kinesis emulator: run infra/test.sh"]
async fn an_emitter_retrying_after_a_503_duplicates_nothing_in_the_rollups() {
    let endpoint = kinesis_endpoint();
    let started = Instant::now();
    let direct = KinesisStream::connect(patient_location(&endpoint, "collector-retries")).await;
    direct.create(2).await.unwrap();
    // Some calls written but never answered (seed 3: the first, and about one in ten).
    let faults = Faults {
        unanswered_call_rate: 0.1,
        ..Faults::default()
    };
    let proxy = FaultProxy::start(&endpoint, faults, 3).await.unwrap();
    // The collector's producer gives an unanswered call up after a second, and a request
    // waits half of that for its events: a request whose call got no answer gets 503
    // although its events were written.
    let via_proxy = KinesisStream::connect(KinesisLocation {
        endpoint: Some(proxy.endpoint()),
        call_timeout: Duration::from_secs(1),
        ..direct.location().clone()
    })
    .await;

    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "listen = \"127.0.0.1:0\"\n[timeouts]\nack = \"500ms\"\n\
         [[keys]]\nid = \"ios-key\"\napp_id = \"ios-app\"\nsha256 = \"{}\"\n",
        hash_key(&key_of("ios-app"))
    );
    let settings = CollectorConfig::from_toml(&toml)
        .unwrap()
        .check(dir.path().join("bad-rows.ndjson"))
        .unwrap();
    let producer = Producer::start(Arc::new(via_proxy), settings.producer_config())
        .await
        .unwrap();
    let collector = Collector::bind(settings, producer, None).await.unwrap();
    let endpoint_url = format!("http://{}", collector.local_addr());
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(collector.run(shutdown.clone()));

    let client = Client::new(ClientConfig {
        initial_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(500),
        ..ClientConfig::new(endpoint_url, key_of("ios-app"))
    })
    .unwrap();
    let events = valid_events(3_000, 51);
    let (mut refused, mut accepted) = (0u64, 0usize);
    for batch in events.chunks(100) {
        // Once, to see the 503s; then as an emitter does, until it is taken.
        match client.post(batch).await {
            Ok(r) => accepted += r.accepted,
            Err(e) => {
                assert!(e.is_retryable(), "{e}");
                refused += 1;
                accepted += client.post_with_retries(batch).await.unwrap().accepted;
            }
        }
    }
    shutdown.cancel();
    let summary = task.await.unwrap().unwrap();
    let injected = proxy.stats();
    eprintln!(
        "{refused} of {} batches refused and posted again; {injected:?}\n{:?}",
        events.len() / 100,
        summary.producer
    );
    assert_eq!(accepted, events.len(), "every event accepted in the end");
    assert!(injected.unanswered_calls > 0, "{injected:?}");
    assert!(refused > 0, "no request got 503: the retry path was not exercised");
    assert_eq!(summary.producer.failed, 0);
    drop(proxy);

    let in_stream = ids_in_stream(&direct).await;
    let user_records: u64 = in_stream.values().sum();
    let posted: HashSet<&str> = events.iter().map(|e| e.event_id.as_str()).collect();
    assert_eq!(posted.len(), events.len());
    assert!(
        posted.iter().all(|id| in_stream.contains_key(*id)) && in_stream.len() == posted.len(),
        "the stream holds exactly the posted events"
    );
    let distinct = posted.len() as u64;
    eprintln!("{user_records} user records in the stream for {distinct} events");

    // Real workers read the stream into an embedded warehouse.
    let warehouse_path = dir.path().join("warehouse.db");
    let stop = CancellationToken::new();
    let mut workers = Vec::new();
    for i in 0..2 {
        let w = Arc::new(EmbeddedWarehouse::open(&warehouse_path).await.unwrap());
        let mut cfg = WorkerConfig::new(format!("w{i}")).with_failover(Duration::from_secs(3));
        cfg.commit_interval = Duration::from_millis(100);
        let stream = Arc::new(KinesisStream::connect(direct.location().clone()).await);
        workers.push(tokio::spawn(Worker::new(stream, w.clone(), w, cfg).run(stop.clone())));
    }
    let warehouse = EmbeddedWarehouse::open(&warehouse_path).await.unwrap();
    inlet_testkit::wait_until_read(&warehouse, user_records as u64, Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.cancel();
    for w in workers {
        w.await.unwrap().unwrap();
    }
    let totals = warehouse.totals().await.unwrap();
    eprintln!(
        "{totals:?}: {} unanswered calls, {refused} batches posted twice, {} duplicates; {:.1} s",
        injected.unanswered_calls,
        totals.duplicates,
        started.elapsed().as_secs_f64()
    );
    assert_eq!(totals.read(), user_records as i64, "every user record read once");
    assert_eq!(totals.aggregated, distinct as i64, "every event aggregated once");
    assert_eq!(totals.dead_lettered(), 0, "{:?}", totals.dead_letters);
    assert_eq!(
        totals.duplicates,
        (user_records - distinct) as i64,
        "every copy dropped"
    );
    assert!(totals.duplicates > 0, "the stream held copies");

    // Row by row: each event counted once in its minute's title or game row.
    let mut expected: BTreeMap<(i64, String), i64> = BTreeMap::new();
    for e in &events {
        let id = match e.body.as_ref().unwrap() {
            Body::Viewing(v) => format!("title:{}", v.title_id),
            Body::Gameplay(g) => format!("game:{}", g.game_id),
        };
        *expected.entry((e.event_time_ms.div_euclid(60_000), id)).or_default() += 1;
    }
    let mut got: BTreeMap<(i64, String), i64> = BTreeMap::new();
    for r in warehouse.viewing_rollups(i64::MIN, i64::MAX).await.unwrap() {
        *got.entry((r.minute, format!("title:{}", r.title_id))).or_default() += r.agg.events;
    }
    for r in warehouse.game_rollups(i64::MIN, i64::MAX).await.unwrap() {
        *got.entry((r.minute, format!("game:{}", r.game_id))).or_default() += r.agg.events;
    }
    assert_eq!(got, expected, "rollup rows count each event once");
    direct.delete().await.unwrap();
}
