//! The shared seam scenarios, run against the Kafka broker (`INLET_KAFKA_BOOTSTRAP`): the
//! topic writer and the partition reader are one `StreamWriter` and `StreamReader`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report
use inlet_kafka::testing::fresh_topic;
use inlet_seams::scenarios;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_round_trip() {
    let Some(topic) = fresh_topic("round-trip", 4).await else {
        return;
    };
    scenarios::stream_round_trip(&topic, &topic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_explicit_hash_key() {
    let Some(topic) = fresh_topic("ehk", 3).await else {
        return;
    };
    scenarios::stream_explicit_hash_key(&topic).await;
}
