//! Group workers on librdkafka's mock cluster (three brokers in this process, with broker
//! errors injected on request): events produced through the Inlet producer are consumed by
//! two group workers while fetches, offset commits and heartbeats fail now and then, and
//! while the group rebalances; the rollups equal the generator's exactly, and the offsets
//! the workers commit to Kafka after the warehouse reach the end of every partition.
//!
//! The mock cluster is for injected errors; the real broker (`infra/kafka-broker.sh`) runs
//! the pipeline tests (`cli/tests/kafka_workers.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod common;

use inlet_consumer::{GroupWorker, WorkerConfig};
use inlet_embedded::EmbeddedWarehouse;
use inlet_kafka::testing::unique_name;
use inlet_kafka::{KafkaLocation, KafkaStream};
use inlet_seams::{LeaseStore, Warehouse};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use rdkafka::{Offset, TopicPartitionList};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const PARTITIONS: i32 = 4;
const EVENTS: u64 = 10_000;

fn group_worker(stream: &Arc<KafkaStream>, warehouse: Arc<EmbeddedWarehouse>, id: &str) -> GroupWorker {
    let member = stream.join_group(id).unwrap();
    let mut cfg = WorkerConfig::new(id).with_failover(Duration::from_secs(6));
    cfg.commit_interval = Duration::from_millis(100);
    cfg.commit_every_records = 500;
    GroupWorker::new(Arc::new(member), warehouse.clone(), warehouse, cfg)
}

async fn handled(w: &EmbeddedWarehouse) -> i64 {
    let t = w.totals().await.unwrap();
    t.read()
}

/// Waits until the offsets the group committed to Kafka (after the warehouse, for lag tools)
/// are each partition's end.
async fn wait_for_kafka_offsets_at_the_end(location: &KafkaLocation, partitions: i32) {
    let topic = location.topic.clone();
    let probe = Arc::new(
        location
            .consumer_config(&location.group)
            .create::<BaseConsumer>()
            .unwrap(),
    );
    let lag_deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (probe, topic) = (probe.clone(), topic.clone());
        let offsets = tokio::task::spawn_blocking(move || {
            let mut tpl = TopicPartitionList::new();
            for p in 0..partitions {
                tpl.add_partition(&topic, p);
            }
            let c = probe.committed_offsets(tpl, Duration::from_secs(10)).unwrap();
            (0..partitions)
                .map(|p| {
                    let (_, high) = probe.fetch_watermarks(&topic, p, Duration::from_secs(10)).unwrap();
                    (c.find_partition(&topic, p).unwrap().offset(), Offset::Offset(high))
                })
                .collect::<Vec<_>>()
        })
        .await
        .unwrap();
        if offsets.iter().all(|(committed, end)| committed == end) {
            return;
        }
        assert!(Instant::now() < lag_deadline, "committed offsets, ends: {offsets:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until the warehouse has handled `events` events.
async fn wait_until_handled(w: &EmbeddedWarehouse, events: u64) {
    inlet_testkit::wait_until_read(w, events, Duration::from_secs(120)).await;
    // Commits after completion would show double counting.
    tokio::time::sleep(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_errors_on_fetch_commit_and_heartbeat_change_nothing_in_the_rollups() {
    let mock = MockCluster::new(3).unwrap();
    let topic = unique_name("mock");
    mock.create_topic(&topic, PARTITIONS, 3).unwrap();
    let location = KafkaLocation {
        group: format!("{topic}-group"),
        ..KafkaLocation::new(mock.bootstrap_servers(), topic.clone())
    };
    let stream = Arc::new(KafkaStream::connect(location.clone()).unwrap());
    let expected = common::produce(&stream, EVENTS, 41).await;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("warehouse.db");
    let warehouse = Arc::new(EmbeddedWarehouse::open(&path).await.unwrap());
    // Errors before anything is read: every fetch partition's first fetches, offset commits
    // and heartbeats (which make the members rejoin) fail.
    use RDKafkaRespErr::*;
    let fetch_errors = [
        RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
        RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
        RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE,
        RD_KAFKA_RESP_ERR_NETWORK_EXCEPTION,
    ];
    mock.request_errors(RDKafkaApiKey::Fetch, &fetch_errors.repeat(5));
    mock.request_errors(
        RDKafkaApiKey::OffsetCommit,
        &[RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT, RD_KAFKA_RESP_ERR_NOT_COORDINATOR].repeat(3),
    );
    let shutdown = CancellationToken::new();
    let first = tokio::spawn(group_worker(&stream, warehouse.clone(), "a").run(shutdown.clone()));

    // Mid-run: more fetch errors, a heartbeat that says the group is rebalancing, and a
    // second member joining (a cooperative rebalance moves half of the partitions).
    let deadline = Instant::now() + Duration::from_secs(120);
    while handled(&warehouse).await == 0 {
        assert!(Instant::now() < deadline, "nothing consumed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    mock.request_errors(RDKafkaApiKey::Fetch, &fetch_errors.repeat(5));
    mock.request_errors(RDKafkaApiKey::Heartbeat, &[RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS]);
    let second = tokio::spawn(group_worker(&stream, warehouse.clone(), "b").run(shutdown.clone()));

    wait_until_handled(&warehouse, EVENTS).await;
    shutdown.cancel();
    first.await.unwrap().unwrap();
    second.await.unwrap().unwrap();
    common::check(&warehouse, &expected).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Kafka broker: run infra/test.sh"]
async fn a_member_hands_its_partitions_over_on_the_real_broker_and_lag_tools_see_the_offsets() {
    let bootstrap = inlet_kafka::testing::bootstrap();
    let location = inlet_kafka::testing::location(&bootstrap, "handover");
    let stream = Arc::new(inlet_kafka::testing::topic_on(location.clone(), PARTITIONS as usize).await);
    let expected = common::produce(&stream, EVENTS, 41).await;
    let dir = tempfile::tempdir().unwrap();
    let warehouse = Arc::new(EmbeddedWarehouse::open(&dir.path().join("warehouse.db")).await.unwrap());

    // `a` starts alone; `b` joins once something is committed; then `a` stops: its partitions
    // are revoked, committed and released before `b` gets them.
    let stop_a = CancellationToken::new();
    let stop_b = CancellationToken::new();
    let a = tokio::spawn(group_worker(&stream, warehouse.clone(), "a").run(stop_a.clone()));
    let deadline = Instant::now() + Duration::from_secs(60);
    while handled(&warehouse).await == 0 {
        assert!(Instant::now() < deadline, "nothing consumed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let b = tokio::spawn(group_worker(&stream, warehouse.clone(), "b").run(stop_b.clone()));
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop_a.cancel();
    a.await.unwrap().unwrap();
    wait_until_handled(&warehouse, EVENTS).await;
    wait_for_kafka_offsets_at_the_end(&location, PARTITIONS).await;
    stop_b.cancel();
    b.await.unwrap().unwrap();
    common::check(&warehouse, &expected).await;
    let leases = warehouse.list().await.unwrap();
    assert!(
        leases.iter().all(|l| l.owner.is_none()),
        "every lease released: {leases:?}"
    );
}
