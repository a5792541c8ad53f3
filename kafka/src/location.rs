//! `kafka://HOST:PORT[,HOST:PORT…]/TOPIC?group=NAME&connect_timeout=10s&<librdkafka setting>=<value>…`:
//! where a Kafka topic is, and how its clients are set up.
//!
//! `connect_timeout` (default 10 s; `2s`, `500ms`, `1m`…) bounds how long the stream's
//! opening waits for a broker to answer before it fails naming the brokers
//! ([`crate::KafkaStream::reach`]).
//!
//! Settings whose key has a dot (`compression.type=zstd`, `linger.ms=20`,
//! `security.protocol=ssl`, …) are librdkafka's own, passed to every client this location makes
//! and taking precedence over Inlet's defaults (see [`KafkaLocation::producer_config`] and
//! [`KafkaLocation::consumer_config`]).
use rdkafka::ClientConfig;
use std::collections::BTreeMap;
use std::time::Duration;

/// The consumer group workers join unless `group=` says otherwise.
pub const DEFAULT_GROUP: &str = "inlet";

/// How long opening a stream waits for a broker unless `connect_timeout=` says otherwise.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A Kafka topic's location and client settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaLocation {
    /// `bootstrap.servers`: `host:port` pairs, comma-separated.
    pub bootstrap: String,
    /// The topic.
    pub topic: String,
    /// The consumer group of the workers (`group=`).
    pub group: String,
    /// How long opening the stream waits for a broker to answer (`connect_timeout=`).
    pub connect_timeout: Duration,
    /// librdkafka settings given in the URL, applied last.
    pub settings: BTreeMap<String, String>,
}

/// A location that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad Kafka location {url:?}: {reason}")]
pub struct BadLocation {
    /// The text given.
    pub url: String,
    /// What is wrong with it.
    pub reason: String,
}

fn is_name(s: &str) -> bool {
    // Kafka topic and group names: 1-249 of [a-zA-Z0-9._-].
    !s.is_empty()
        && s.len() <= 249
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

impl KafkaLocation {
    /// A location for `topic` on `bootstrap` with the defaults.
    pub fn new(bootstrap: impl Into<String>, topic: impl Into<String>) -> Self {
        Self {
            bootstrap: bootstrap.into(),
            topic: topic.into(),
            group: DEFAULT_GROUP.to_owned(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            settings: BTreeMap::new(),
        }
    }

    /// Parses `kafka://HOST:PORT[,HOST:PORT…]/TOPIC?group=..&connect_timeout=..&key.with.dots=value…`.
    pub fn parse(url: &str) -> Result<Self, BadLocation> {
        let bad = |reason: &str| BadLocation {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        let rest = url
            .strip_prefix("kafka://")
            .ok_or_else(|| bad("it must start with kafka://"))?;
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (bootstrap, topic) = path
            .split_once('/')
            .ok_or_else(|| bad("it must name a topic: kafka://HOST:PORT/TOPIC"))?;
        if bootstrap.is_empty()
            || !bootstrap.split(',').all(|hp| {
                hp.rsplit_once(':')
                    .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok())
            })
        {
            return Err(bad("the brokers must be HOST:PORT pairs, comma-separated"));
        }
        let topic = topic.trim_end_matches('/');
        if !is_name(topic) {
            return Err(bad("the topic name must be 1 to 249 of a-z, A-Z, 0-9, _ . -"));
        }
        let mut loc = Self::new(bootstrap, topic);
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair
                .split_once('=')
                .ok_or_else(|| bad(&format!("query part {pair:?} is not key=value")))?;
            match k {
                "group" if is_name(v) => loc.group = v.to_owned(),
                "group" => return Err(bad("the group name must be 1 to 249 of a-z, A-Z, 0-9, _ . -")),
                "connect_timeout" => {
                    loc.connect_timeout = humantime::parse_duration(v)
                        .ok()
                        .filter(|d| !d.is_zero())
                        .ok_or_else(|| bad("connect_timeout must be a positive duration like 10s or 500ms"))?;
                }
                "bootstrap.servers" | "group.id" => {
                    return Err(bad(&format!("{k} comes from the URL itself, not a setting")));
                }
                k if k.contains('.') => {
                    loc.settings.insert(k.to_owned(), v.to_owned());
                }
                other => {
                    return Err(bad(&format!(
                        "unknown setting {other:?} (Inlet's are group and connect_timeout; librdkafka's \
                         have dots, e.g. linger.ms)"
                    )));
                }
            }
        }
        Ok(loc)
    }

    /// Whether every broker is on this machine (a test or development broker, where a
    /// missing topic may be created on the fly).
    pub fn is_local(&self) -> bool {
        self.bootstrap.split(',').all(|hp| {
            let host = hp.rsplit_once(':').map_or(hp, |(h, _)| h);
            host.starts_with("127.") || host == "localhost" || host == "[::1]"
        })
    }

    /// The URL form, which `parse` reads back.
    pub fn to_url(&self) -> String {
        let mut q = Vec::new();
        if self.group != DEFAULT_GROUP {
            q.push(format!("group={}", self.group));
        }
        if self.connect_timeout != DEFAULT_CONNECT_TIMEOUT {
            q.push(format!("connect_timeout={}", duration_setting(self.connect_timeout)));
        }
        q.extend(self.settings.iter().map(|(k, v)| format!("{k}={v}")));
        let base = format!("kafka://{}/{}", self.bootstrap, self.topic);
        if q.is_empty() {
            base
        } else {
            format!("{base}?{}", q.join("&"))
        }
    }

    fn config(&self, defaults: &[(&str, &str)]) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.bootstrap);
        for (k, v) in defaults {
            c.set(*k, *v);
        }
        for (k, v) in &self.settings {
            c.set(k, v);
        }
        c
    }

    /// The producer's settings: idempotent (no duplicates or reordering from librdkafka's own
    /// retries), lz4-compressed batches that linger 5 ms, and a delivery timeout after which
    /// a record comes back failed (Inlet's producer retries it until its own time-to-live).
    pub fn producer_config(&self) -> ClientConfig {
        self.config(&[
            ("enable.idempotence", "true"),
            ("compression.type", "lz4"),
            ("linger.ms", "5"),
            ("batch.size", "1000000"),
            ("message.timeout.ms", "30000"),
            ("queue.buffering.max.kbytes", "1048576"),
            ("queue.buffering.max.messages", "1000000"),
        ])
    }

    /// A consumer's settings. Offsets are never committed automatically: the warehouse holds
    /// the real ones (committed with the rollups), and workers commit them to Kafka
    /// afterwards for lag tools. `fetch.wait.max.ms` is kept short so an idle partition
    /// answers quickly.
    pub fn consumer_config(&self, group: &str) -> ClientConfig {
        self.config(&[
            ("group.id", group),
            ("enable.auto.commit", "false"),
            ("enable.auto.offset.store", "false"),
            ("auto.offset.reset", "earliest"),
            ("enable.partition.eof", "false"),
            ("fetch.wait.max.ms", "100"),
            ("partition.assignment.strategy", "cooperative-sticky"),
            ("session.timeout.ms", "10000"),
            ("heartbeat.interval.ms", "1000"),
            // Also the rebalance timeout: how long a rebalance waits for a member that does
            // not rejoin (one paused, say) before going on without it. The member's own
            // thread polls all the time, so only a rebalance callback waiting for the worker
            // (`group.rs`, at most 20 s) counts against it.
            ("max.poll.interval.ms", "30000"),
        ])
    }

    /// An admin client's settings.
    pub fn admin_config(&self) -> ClientConfig {
        self.config(&[])
    }
}

/// A duration as `parse` reads it back, with no space (humantime's own format has some):
/// whole seconds as `2s`, anything else as `1500ms`.
fn duration_setting(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_back() {
        let url = "kafka://127.0.0.1:9092,10.0.0.2:9093/plays?group=rollups&compression.type=zstd&linger.ms=20";
        let loc = KafkaLocation::parse(url).unwrap();
        assert_eq!(loc.bootstrap, "127.0.0.1:9092,10.0.0.2:9093");
        assert_eq!(loc.topic, "plays");
        assert_eq!(loc.group, "rollups");
        assert_eq!(loc.settings["compression.type"], "zstd");
        assert_eq!(loc.to_url(), url);
        assert!(!loc.is_local());
        assert!(
            KafkaLocation::parse("kafka://localhost:1,127.0.0.1:2/t")
                .unwrap()
                .is_local()
        );
        assert_eq!(
            KafkaLocation::parse("kafka://h:1/t").unwrap(),
            KafkaLocation::new("h:1", "t")
        );
        assert_eq!(
            KafkaLocation::parse("kafka://h:1/t?group=inlet").unwrap().to_url(),
            "kafka://h:1/t"
        );
    }

    #[test]
    fn reads_the_connect_timeout() {
        let loc = KafkaLocation::parse("kafka://h:1/t").unwrap();
        assert_eq!(loc.connect_timeout, Duration::from_secs(10));
        for (given, want, printed) in [
            ("2s", Duration::from_secs(2), "kafka://h:1/t?connect_timeout=2s"),
            (
                "1500ms",
                Duration::from_millis(1500),
                "kafka://h:1/t?connect_timeout=1500ms",
            ),
            ("1m", Duration::from_secs(60), "kafka://h:1/t?connect_timeout=60s"),
            ("10s", Duration::from_secs(10), "kafka://h:1/t"),
        ] {
            let loc = KafkaLocation::parse(&format!("kafka://h:1/t?connect_timeout={given}")).unwrap();
            assert_eq!(loc.connect_timeout, want, "{given}");
            assert_eq!(loc.to_url(), printed);
            assert_eq!(KafkaLocation::parse(&loc.to_url()).unwrap(), loc);
        }
        // Not a librdkafka setting: it stays out of the clients' configuration.
        let loc = KafkaLocation::parse("kafka://h:1/t?connect_timeout=2s").unwrap();
        assert!(loc.settings.is_empty());
        assert_eq!(loc.admin_config().get("connect_timeout"), None);
    }

    #[test]
    fn url_settings_override_the_defaults() {
        let loc = KafkaLocation::parse("kafka://h:1/t?compression.type=zstd").unwrap();
        assert_eq!(loc.producer_config().get("compression.type"), Some("zstd"));
        assert_eq!(loc.producer_config().get("enable.idempotence"), Some("true"));
        assert_eq!(loc.consumer_config("g").get("group.id"), Some("g"));
    }

    #[test]
    fn refuses_what_it_cannot_use() {
        for (url, says) in [
            ("kinesis://x", "kafka://"),
            ("kafka://h:1", "name a topic"),
            ("kafka://h/t", "HOST:PORT"),
            ("kafka://h:1,/t", "HOST:PORT"),
            ("kafka://h:1/", "topic name"),
            ("kafka://h:1/a b", "topic name"),
            ("kafka://h:1/t?colour=red", "unknown setting \"colour\""),
            ("kafka://h:1/t?linger.ms", "key=value"),
            ("kafka://h:1/t?group=", "group name"),
            ("kafka://h:1/t?group.id=x", "from the URL itself"),
            ("kafka://h:1/t?connect_timeout=", "connect_timeout"),
            ("kafka://h:1/t?connect_timeout=0s", "connect_timeout"),
            ("kafka://h:1/t?connect_timeout=10", "connect_timeout"),
            ("kafka://h:1/t?connect_timeout=soon", "connect_timeout"),
        ] {
            let e = KafkaLocation::parse(url).unwrap_err();
            assert!(e.to_string().contains(says), "{url}: {e}");
        }
    }
}
