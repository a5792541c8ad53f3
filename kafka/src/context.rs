//! What librdkafka says, kept to what an operator can use. librdkafka retries a broker it
//! cannot reach on every backoff and reports each failure (a log line and an error callback);
//! an unreachable broker made hundreds of error lines a minute and never an answer. Here:
//! - its log lines go to `tracing` at debug level (target `librdkafka`);
//! - its error callbacks are remembered (the last one names the broker and why, for the error
//!   [`crate::KafkaStream::reach`] ends with), logged at debug level while the stream is being
//!   opened (the opening reports them itself: until a broker has answered `reach`, or for
//!   twice the `connect_timeout` for a stream never asked to), and after that as a warning at
//!   most once a minute, saying how many were left at debug level.
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::KafkaError;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// At most one warning per this long.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// The error callbacks of one stream's clients.
#[derive(Debug)]
pub(crate) struct Noise {
    /// Until then, or until [`Noise::opened`], the stream is being opened: errors stay at
    /// debug level.
    opening_until: Instant,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    opened: bool,
    last_error: Option<String>,
    last_warned: Option<Instant>,
    unwarned: u64,
}

impl Noise {
    /// For a stream made now that opens within `connect_timeout`. The quiet period outlasts
    /// the opening, so an error reported as it gives up is not warned about either.
    pub(crate) fn new(connect_timeout: Duration) -> Arc<Self> {
        Arc::new(Self {
            opening_until: Instant::now() + 2 * connect_timeout,
            state: Mutex::default(),
        })
    }

    /// An error callback.
    fn error(&self, error: &KafkaError, reason: &str) {
        tracing::debug!(target: "librdkafka", "{error}: {reason}");
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        // "1/1 brokers are down" follows the failure that says which and why: keep that one.
        if s.last_error.is_none() || !reason.contains("brokers are down") {
            s.last_error = Some(if reason.is_empty() {
                error.to_string()
            } else {
                reason.to_owned()
            });
        }
        let now = Instant::now();
        let opening = !s.opened && now < self.opening_until;
        if opening || s.last_warned.is_some_and(|t| now - t < WARN_EVERY) {
            s.unwarned += 1;
            return;
        }
        let unwarned = std::mem::take(&mut s.unwarned);
        s.last_warned = Some(now);
        drop(s);
        tracing::warn!(
            target: "librdkafka",
            "Kafka client error: {error}: {reason} ({unwarned} more since the last warning; \
             those of the next minute are logged at debug level)"
        );
    }

    /// A broker has answered: errors from now on are news.
    pub(crate) fn opened(&self) {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        s.opened = true;
        s.last_error = None;
    }

    /// The last error librdkafka reported (which broker, and why), if any.
    pub(crate) fn last_error(&self) -> Option<String> {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .last_error
            .clone()
    }
}

/// librdkafka's logging as above, for the plain clients (producer, metadata, readers, admin).
#[derive(Debug, Clone)]
pub(crate) struct Quiet(pub(crate) Arc<Noise>);

impl ClientContext for Quiet {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        log(level, fac, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.0.error(&error, reason);
    }
}

impl ConsumerContext for Quiet {}

/// A librdkafka log line, at debug level whatever its own.
pub(crate) fn log(level: RDKafkaLogLevel, fac: &str, message: &str) {
    tracing::debug!(target: "librdkafka", ?level, "{fac} {message}");
}

/// An error callback of a client whose context is not [`Quiet`] (the group member's).
pub(crate) fn error(noise: &Noise, error: &KafkaError, reason: &str) {
    noise.error(error, reason);
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::types::RDKafkaErrorCode;

    #[test]
    fn the_failure_that_names_the_broker_is_kept() {
        let noise = Noise::new(Duration::from_secs(10));
        assert_eq!(noise.last_error(), None);
        let e = KafkaError::Global(RDKafkaErrorCode::BrokerTransportFailure);
        noise.error(
            &e,
            "127.0.0.1:1/bootstrap: Connect to ipv4#127.0.0.1:1 failed: Connection refused",
        );
        noise.error(
            &KafkaError::Global(RDKafkaErrorCode::AllBrokersDown),
            "1/1 brokers are down",
        );
        assert_eq!(
            noise.last_error().as_deref(),
            Some("127.0.0.1:1/bootstrap: Connect to ipv4#127.0.0.1:1 failed: Connection refused")
        );
        noise.error(&e, "");
        assert_eq!(noise.last_error(), Some(e.to_string()));
    }

    #[test]
    fn errors_while_opening_are_not_warned_about_and_later_ones_once_a_minute() {
        let e = KafkaError::Global(RDKafkaErrorCode::BrokerTransportFailure);
        let opening = Noise::new(Duration::from_secs(60));
        for _ in 0..100 {
            opening.error(&e, "down");
        }
        let s = opening.state.lock().unwrap_or_else(PoisonError::into_inner);
        assert_eq!((s.last_warned, s.unwarned), (None, 100));
        drop(s);

        let open = Noise::new(Duration::from_secs(60));
        open.opened();
        for _ in 0..100 {
            open.error(&e, "down");
        }
        let s = open.state.lock().unwrap_or_else(PoisonError::into_inner);
        assert!(s.last_warned.is_some());
        assert_eq!(s.unwarned, 99, "one warning, the rest at debug level");
    }
}
