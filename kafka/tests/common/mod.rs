//! What the Kafka integration tests share: generated events, and a plain rdkafka reader of a
//! whole topic.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // each test file uses a part

use bytes::Bytes;
use inlet_generator::{Generator, GeneratorConfig};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use std::time::{Duration, Instant};

/// `n` generated events (partition key, payload), in send order.
pub(crate) fn events(n: u64, seed: u64) -> Vec<(String, Bytes)> {
    Generator::new(GeneratorConfig {
        seed,
        events: n,
        ..GeneratorConfig::default()
    })
    .map(|e| (e.partition_key, e.data))
    .collect()
}

/// Every message of the topic, partition by partition in offset order, as (partition, key,
/// payload): a plain rdkafka consumer, assigned every partition from the beginning, until
/// `count` messages, then 2 s more to catch any extra one.
pub(crate) fn read_topic(bootstrap: &str, topic: &str, partitions: i32, count: usize) -> Vec<(i32, String, Bytes)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "inlet-tests-reader")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning).unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let mut read: Vec<(i32, i64, String, Bytes)> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut quiet_until: Option<Instant> = None;
    while Instant::now() < deadline && quiet_until.is_none_or(|t| Instant::now() < t) {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => read.push((
                m.partition(),
                m.offset(),
                String::from_utf8(m.key().unwrap().to_vec()).unwrap(),
                Bytes::copy_from_slice(m.payload().unwrap_or_default()),
            )),
            Some(Err(e)) => panic!("reading the topic back: {e}"),
            None => {}
        }
        if read.len() >= count && quiet_until.is_none() {
            quiet_until = Some(Instant::now() + Duration::from_secs(2));
        }
    }
    read.sort_by_key(|m| (m.0, m.1));
    read.into_iter().map(|(p, _, k, d)| (p, k, d)).collect()
}
