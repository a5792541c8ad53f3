//! The opening's check that a broker answers: without it, an unreachable broker left every
//! call waiting on librdkafka's own retries (a topic creation, a minute) while it reported
//! each failed connection.
use crate::client::KafkaStream;
use rdkafka::consumer::Consumer;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Between two metadata requests, when librdkafka fails one before the timeout.
const RETRY_PAUSE: Duration = Duration::from_millis(200);

/// No broker answered within the location's `connect_timeout`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "Kafka {} {brokers} unreachable for {}{}",
    if brokers.contains(',') { "brokers" } else { "broker" },
    seconds(*waited),
    last_error.as_ref().map(|e| format!(" (last error: {e})")).unwrap_or_default()
)]
pub struct Unreachable {
    /// `bootstrap.servers`.
    pub brokers: String,
    /// How long it was tried: the connect timeout.
    pub waited: Duration,
    /// What librdkafka last reported (which broker, and why), if anything.
    pub last_error: Option<String>,
}

/// `2 s`, `1.5 s`.
fn seconds(d: Duration) -> String {
    format!("{} s", d.as_secs_f64())
}

impl KafkaStream {
    /// Checks that a broker answers: a metadata request for the topic, tried until the
    /// location's `connect_timeout` has passed. Once one has answered, returns at once. The
    /// admin calls ([`KafkaStream::create`], [`KafkaStream::ensure`],
    /// [`KafkaStream::wait_exists`], [`KafkaStream::describe`], [`KafkaStream::delete`])
    /// start with it, so that opening a stream on an unreachable broker ends in this error.
    pub async fn reach(&self) -> Result<(), Unreachable> {
        if self.reached.load(Ordering::Relaxed) {
            return Ok(());
        }
        let timeout = self.location.connect_timeout;
        let started = Instant::now();
        loop {
            let left = timeout.saturating_sub(started.elapsed());
            if left.is_zero() {
                return Err(Unreachable {
                    brokers: self.location.bootstrap.clone(),
                    waited: timeout,
                    last_error: self.noise.last_error(),
                });
            }
            let (meta, topic) = (Arc::clone(&self.meta), self.location.topic.clone());
            let answered = tokio::task::spawn_blocking(move || meta.fetch_metadata(Some(&topic), left).is_ok())
                .await
                .unwrap_or(false);
            if answered {
                self.noise.opened();
                self.reached.store(true, Ordering::Relaxed);
                return Ok(());
            }
            tokio::time::sleep(RETRY_PAUSE.min(timeout.saturating_sub(started.elapsed()))).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::KafkaLocation;

    #[test]
    fn the_error_names_the_brokers_and_the_time() {
        let e = Unreachable {
            brokers: "127.0.0.1:1".into(),
            waited: Duration::from_secs(2),
            last_error: Some("Connect to ipv4#127.0.0.1:1 failed: Connection refused".into()),
        };
        assert_eq!(
            e.to_string(),
            "Kafka broker 127.0.0.1:1 unreachable for 2 s (last error: Connect to ipv4#127.0.0.1:1 failed: \
             Connection refused)"
        );
        let e = Unreachable {
            brokers: "a:1,b:2".into(),
            waited: Duration::from_millis(1500),
            last_error: None,
        };
        assert_eq!(e.to_string(), "Kafka brokers a:1,b:2 unreachable for 1.5 s");
    }

    /// Nothing listens on port 1: the check gives up after the connect timeout, not before,
    /// and not much later, with what librdkafka said.
    #[tokio::test]
    async fn an_unreachable_broker_fails_after_the_connect_timeout() {
        let location = KafkaLocation::parse("kafka://127.0.0.1:1/t?connect_timeout=1s").unwrap();
        let stream = KafkaStream::connect(location).unwrap();
        let started = Instant::now();
        let e = stream.reach().await.unwrap_err();
        let took = started.elapsed();
        assert!(
            took >= Duration::from_secs(1) && took < Duration::from_secs(20),
            "{took:?}"
        );
        assert_eq!((e.brokers.as_str(), e.waited), ("127.0.0.1:1", Duration::from_secs(1)));
        assert!(
            e.last_error.as_deref().is_some_and(|m| m.contains("127.0.0.1:1")),
            "{e}"
        );
    }
}
