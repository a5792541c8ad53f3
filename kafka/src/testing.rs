//! For tests of this and other crates: fresh topics on the broker that `infra/servers.sh`
//! started (`INLET_KAFKA_BOOTSTRAP`), and private brokers for tests that must stop one.
#![allow(clippy::expect_used, clippy::unwrap_used)] // test helpers: a panic is the report

use crate::{KafkaLocation, KafkaStream};
use inlet_testkit::server_var;
pub use inlet_testkit::{LocalServer, infra_dir, unique_name};

/// The shared broker's `host:port` (`INLET_KAFKA_BOOTSTRAP`, set by `infra/servers.sh`).
pub fn bootstrap() -> String {
    server_var("INLET_KAFKA_BOOTSTRAP", "the Kafka broker")
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
