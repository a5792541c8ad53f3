//! The shared seam scenarios, run against the Kafka broker (`INLET_KAFKA_BOOTSTRAP`): the
//! topic writer and the partition reader are one `StreamWriter` and `StreamReader`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report
use inlet_kafka::testing::fresh_topic;
use inlet_seams::{GroupMember, scenarios};
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Kafka broker: run infra/test.sh"]
async fn stream_round_trip() {
    let topic = fresh_topic("round-trip", 4).await;
    scenarios::stream_round_trip(&topic, &topic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Kafka broker: run infra/test.sh"]
async fn start_positions() {
    let topic = fresh_topic("start-positions", 2).await;
    scenarios::start_positions(&topic, &topic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Kafka broker: run infra/test.sh"]
async fn stream_explicit_hash_key() {
    let topic = fresh_topic("ehk", 3).await;
    scenarios::stream_explicit_hash_key(&topic).await;
}

/// The group scenario: the consumer-group member of one topic, and a second joining and
/// leaving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Kafka broker: run infra/test.sh"]
async fn group_hand_over() {
    let topic = Arc::new(fresh_topic("group", 4).await);
    let first: Arc<dyn GroupMember> = Arc::new(topic.join_group("first").unwrap());
    let join = {
        let topic = Arc::clone(&topic);
        move || async move { Arc::new(topic.join_group("second").unwrap()) as Arc<dyn GroupMember> }
    };
    scenarios::group_hand_over(first, join, 4).await;
}
