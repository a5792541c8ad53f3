//! For tests of this and other crates: fresh topics on the broker that `infra/servers.sh`
//! started (`INLET_KAFKA_BOOTSTRAP`), and private brokers for tests that must stop one.
#![allow(clippy::expect_used, clippy::unwrap_used)] // test helpers: a panic is the report

use crate::{KafkaLocation, KafkaStream};
pub use inlet_testkit::{LocalServer, infra_dir};
use std::sync::atomic::{AtomicU32, Ordering};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// The shared broker's `host:port`. Panics when `INLET_KAFKA_BOOTSTRAP` is not set: the tests
/// that call this are `#[ignore]`d, and run only through `infra/test.sh`, which starts it.
pub fn bootstrap() -> String {
    std::env::var("INLET_KAFKA_BOOTSTRAP").unwrap_or_else(|_| {
        panic!(
            "INLET_KAFKA_BOOTSTRAP is not set: this test needs the Kafka broker; \
             run the tests through infra/test.sh, which starts it"
        )
    })
}

/// A name no other test uses.
pub fn unique_name(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}-{}-{}-{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// The location of a new topic (and group) name on `bootstrap`.
pub fn location(bootstrap: &str, prefix: &str) -> KafkaLocation {
    let name = unique_name(prefix);
    KafkaLocation {
        group: format!("{name}-group"),
        ..KafkaLocation::new(bootstrap, name)
    }
}

/// A new topic of `partitions` partitions on the shared broker (see [`bootstrap`]).
pub async fn fresh_topic(prefix: &str, partitions: usize) -> KafkaStream {
    topic_on(location(&bootstrap(), prefix), partitions).await
}

/// Creates the topic at `location` with `partitions` partitions.
pub async fn topic_on(location: KafkaLocation, partitions: usize) -> KafkaStream {
    let stream = KafkaStream::connect(location).expect("client settings");
    stream.create(partitions).await.expect("create topic");
    stream
}

/// A broker of this test's own (`infra/kafka-broker.sh`): its `address` is `host:port`; killed when dropped.
pub type Broker = LocalServer;

/// Starts a private broker with `infra/kafka-broker.sh`.
pub fn private_broker() -> Broker {
    LocalServer::start("kafka-broker.sh")
}
