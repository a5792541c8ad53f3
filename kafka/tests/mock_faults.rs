#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report
//! Produce faults injected by librdkafka's mock cluster (in process, no broker needed), with
//! Inlet's real producer on top of the Kafka writer:
//!
//! - retriable errors (not leader, request timed out, not enough replicas, a dropped
//!   connection), a broker down and back, and leadership moving to other brokers: every
//!   event is in the topic exactly once, each key's in the order sent (librdkafka retries
//!   within the idempotent producer, draining a partition before it resends);
//!
//!   The mock checks sequence numbers for transactional producers only, so a batch it
//!   appended but whose answer was lost (a response slower than `socket.timeout.ms`) is
//!   appended again when resent: the deduplication itself is a real broker's job, and is
//!   not tested here. Every error injected here is answered before anything is appended.
//! - a record over `message.max.bytes` is refused at send; one the broker refuses as too
//!   large comes back failed through its `Delivery`, with the broker's code, and goes to the
//!   dead-letter file; the records around it are written.
mod common;

use base64::Engine;
use bytes::Bytes;
use common::{events, read_topic};
use inlet_kafka::{KafkaLocation, KafkaStream};
use inlet_producer::{Producer, ProducerConfig};
use rdkafka::mocking::MockCluster;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

const PARTITIONS: i32 = 4;

/// A mock cluster of 3 brokers with `topic` of [`PARTITIONS`] partitions, partition `p` led
/// by broker `p % 3 + 1`.
pub(crate) fn mock_cluster(topic: &str) -> MockCluster<'static, rdkafka::producer::DefaultProducerContext> {
    let mock = MockCluster::new(3).unwrap();
    mock.create_topic(topic, PARTITIONS, 3).unwrap();
    for p in 0..PARTITIONS {
        mock.partition_leader(topic, p, Some(p % 3 + 1)).unwrap();
    }
    mock
}

fn per_key<'a>(records: impl Iterator<Item = (&'a str, &'a [u8])>) -> HashMap<&'a str, Vec<&'a [u8]>> {
    let mut m: HashMap<&str, Vec<&[u8]>> = HashMap::new();
    for (k, d) in records {
        m.entry(k).or_default().push(d);
    }
    m
}

fn producer_config() -> ProducerConfig {
    ProducerConfig {
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(500),
        ..ProducerConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retriable_produce_errors_lose_nothing_and_duplicate_nothing() {
    use RDKafkaRespErr::*;
    let topic = "mock-faults";
    let mock = mock_cluster(topic);
    let location = KafkaLocation::new(mock.bootstrap_servers(), topic);
    let stream = Arc::new(KafkaStream::connect(location).unwrap());

    let n = 5_000u64;
    let sent = events(n, 21);
    let started = Instant::now();
    let producer = Producer::start(stream.clone(), producer_config()).await.unwrap();
    for (i, chunk) in sent.chunks(100).enumerate() {
        match i {
            5 => mock.request_errors(
                RDKafkaApiKey::Produce,
                &[
                    RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
                    RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
                    RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
                    RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE,
                    RD_KAFKA_RESP_ERR__TRANSPORT,
                    RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND,
                    RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
                    RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
                ],
            ),
            15 => mock.broker_down(1).unwrap(),
            25 => mock.broker_up(1).unwrap(),
            30 => {
                // Leadership moves (a failover): the old leaders answer "not leader".
                for p in 0..PARTITIONS {
                    mock.partition_leader(topic, p, Some((p + 1) % 3 + 1)).unwrap();
                }
            }
            _ => {}
        }
        producer.send_all(chunk.to_vec()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let stats = producer.close().await.unwrap();
    eprintln!(
        "produced {n} events through the faults in {:.1} s: {stats:?}",
        started.elapsed().as_secs_f64()
    );
    assert_eq!((stats.delivered, stats.failed), (n, 0));

    let read = read_topic(&mock.bootstrap_servers(), topic, PARTITIONS, n as usize);
    assert_eq!(read.len() as u64, n, "events lost or written twice");
    let want = per_key(sent.iter().map(|(k, d)| (k.as_str(), &d[..])));
    let got = per_key(read.iter().map(|(_, k, d)| (k.as_str(), &d[..])));
    assert_eq!(got.len(), want.len());
    for (k, w) in &want {
        assert!(got.get(k) == Some(w), "key {k}: payloads or their order differ");
    }
    let mut partition_of: HashMap<&str, i32> = HashMap::new();
    for (p, k, _) in &read {
        assert_eq!(*partition_of.entry(k).or_insert(*p), *p, "key {k} on two partitions");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_over_the_message_size_limit_is_refused_or_dead_lettered_with_its_code() {
    let topic = "mock-too-large";
    let mock = mock_cluster(topic);
    let mut location = KafkaLocation::new(mock.bootstrap_servers(), topic);
    location.settings.insert("message.max.bytes".into(), "100000".into());
    let stream = Arc::new(KafkaStream::connect(location).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let dead_letter = dir.path().join("dead-letters.ndjson");
    let config = ProducerConfig {
        dead_letter: Some(dead_letter.clone()),
        ..producer_config()
    };
    let producer = Producer::start(stream.clone(), config).await.unwrap();

    // Over the client's limit (message.max.bytes less librdkafka's framing): refused at once.
    let refused = producer
        .send_confirmed("too-large".into(), Bytes::from(vec![7u8; 99_990]))
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("limit of 99964 bytes"), "{refused}");

    // Within it, but refused by the broker (its own limit is lower): failed with the
    // broker's code, not retried, dead-lettered; the records around it are written.
    let big_key = "too-large".to_owned();
    let big = Bytes::from(vec![7u8; 50_000]);
    let small = events(200, 22);
    let mut deliveries = Vec::new();
    for (key, data) in &small[..100] {
        deliveries.push(producer.send_confirmed(key.clone(), data.clone()).await.unwrap());
    }
    producer.flush().await.unwrap();
    mock.request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE],
    );
    deliveries.push(producer.send_confirmed(big_key.clone(), big.clone()).await.unwrap());
    producer.flush().await.unwrap();
    for (key, data) in &small[100..] {
        deliveries.push(producer.send_confirmed(key.clone(), data.clone()).await.unwrap());
    }
    let mut outcomes = Vec::new();
    for d in deliveries {
        outcomes.push(d.await);
    }
    let stats = producer.close().await.unwrap();
    assert_eq!((stats.delivered, stats.failed), (200, 1), "{stats:?}");

    let failure = outcomes.remove(100).unwrap_err();
    eprintln!("the record the broker refused: {failure}");
    assert_eq!(failure.code, "MessageSizeTooLarge");
    assert!(!failure.retryable);
    assert_eq!(failure.attempts, 1, "a refused record is not retried");
    assert!(outcomes.iter().all(Result::is_ok), "the records around it are written");

    let lines = std::fs::read_to_string(&dead_letter).unwrap();
    let lines: Vec<serde_json::Value> = lines.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    let line = &lines[0];
    assert_eq!(line["code"], "MessageSizeTooLarge");
    assert_eq!(line["reason"], "rejected");
    assert_eq!(line["partition_key"], "too-large");
    let data = base64::engine::general_purpose::STANDARD
        .decode(line["data_base64"].as_str().unwrap())
        .unwrap();
    assert_eq!(data, big);

    let read = read_topic(&mock.bootstrap_servers(), topic, PARTITIONS, 200);
    assert_eq!(read.len(), 200);
    assert!(read.iter().all(|(_, k, _)| k != "too-large"));
}
