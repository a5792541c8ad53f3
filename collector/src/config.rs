//! The collector's settings: a TOML file (serde, unknown fields refused, every field
//! documented, defaults explicit), checked once into [`Settings`].
pub use crate::auth::KeyConfig;
use crate::auth::KeyTable;
pub use crate::config_error::ConfigError;
pub(crate) use crate::config_error::config_error;
use crate::rate_limit::RateLimit;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The collector's configuration file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectorConfig {
    /// Address to listen on (default `127.0.0.1:8080`).
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Size and count limits of requests.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// Timeouts and the shutdown grace period.
    #[serde(default)]
    pub timeouts: TimeoutsConfig,
    /// The rate limit of keys that set none of their own.
    #[serde(default)]
    pub rate_limit: RateLimit,
    /// What the collector stamps into events.
    #[serde(default)]
    pub stamping: StampingConfig,
    /// Where rejected events go.
    #[serde(default)]
    pub bad_rows: BadRowsConfig,
    /// The producer that writes accepted events to the stream.
    #[serde(default)]
    pub producer: ProducerSection,
    /// The API keys; at least one.
    #[serde(default)]
    pub keys: Vec<KeyConfig>,
}

impl Default for CollectorConfig {
    /// Every default, and no keys (which [`CollectorConfig::check`] refuses).
    fn default() -> Self {
        Self {
            listen: default_listen(),
            limits: LimitsConfig::default(),
            timeouts: TimeoutsConfig::default(),
            rate_limit: RateLimit::default(),
            stamping: StampingConfig::default(),
            bad_rows: BadRowsConfig::default(),
            producer: ProducerSection::default(),
            keys: Vec::new(),
        }
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

/// Limits of requests. A request over any of them is answered 413 naming the limit, and
/// nothing of it is written.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Largest request body as sent (compressed or not), bytes (default 1 MiB).
    pub max_body_bytes: u64,
    /// Largest request body after decompression, bytes (default 4 MiB): the cap that stops
    /// decompression bombs.
    pub max_decompressed_bytes: u64,
    /// Most events in one request (default 1,000).
    pub max_batch_events: usize,
    /// Largest single event as sent (its JSON text or protobuf bytes), bytes (default 64 KiB).
    pub max_event_bytes: u64,
    /// Most open connections; beyond it the collector stops accepting until one closes
    /// (default 1,024).
    pub max_connections: usize,
    /// Most `POST /v1/events` requests handled at once; beyond it they are answered 503 at
    /// once (default 256).
    pub max_in_flight_requests: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 1 << 20,
            max_decompressed_bytes: 4 << 20,
            max_batch_events: 1_000,
            max_event_bytes: 64 << 10,
            max_connections: 1_024,
            max_in_flight_requests: 256,
        }
    }
}

/// Timeouts. Durations are written like `"10s"` or `"250ms"`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TimeoutsConfig {
    /// A connection must deliver a request's complete headers within this long of being
    /// ready for one, or it is closed (slow clients; also closes idle keep-alive
    /// connections). Default 10 s.
    #[serde(with = "humantime_serde")]
    pub header: Duration,
    /// A request's body must arrive whole within this long of its headers, or the request
    /// is answered 408 and the connection closed. Default 10 s.
    #[serde(with = "humantime_serde")]
    pub body: Duration,
    /// How long a request waits for the stream to confirm its events; past it the answer
    /// is 503 (the events may still be written: see the docs on retries). Default 10 s.
    #[serde(with = "humantime_serde")]
    pub ack: Duration,
    /// On shutdown, how long requests already accepted may take to finish. Default 30 s.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
}

impl Default for TimeoutsConfig {
    fn default() -> Self {
        Self {
            header: Duration::from_secs(10),
            body: Duration::from_secs(10),
            ack: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

/// What the collector writes into events besides `receive_time_ms` (always stamped).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StampingConfig {
    /// Request header holding the client's country (ISO 3166-1 alpha-2), set by a trusted
    /// proxy or CDN, e.g. `CloudFront-Viewer-Country` or `CF-IPCountry`; it fills
    /// `emitter.country` of events that have none. Unset: no country is stamped. Only set it
    /// when a proxy in front overwrites the header, since clients can send it too.
    pub country_header: Option<String>,
}

/// Where rejected events ("bad rows") are written.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BadRowsConfig {
    /// The NDJSON file rejected events are appended to, one line each, fsynced before the
    /// response is sent. Unset: `bad-rows.ndjson` in the data directory (`inlet collector`).
    pub path: Option<PathBuf>,
}

/// The producer's knobs that matter to the collector.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProducerSection {
    /// Most bytes of events held between acceptance and the stream's confirmation; when it
    /// is full requests are answered 503 (default: the producer's, 64 MiB). At least four times
    /// `limits.max_decompressed_bytes`.
    pub max_buffered_bytes: usize,
    /// How long an event may wait for company before its aggregate is written: the floor of
    /// the response latency (default 20 ms, on purpose below the producer's 100 ms).
    #[serde(with = "humantime_serde")]
    pub linger: Duration,
    /// Attempts per stream record before the producer gives up on it (default 10, on purpose
    /// below the producer's 64: a request is waiting for its answer).
    pub max_attempts: u32,
}

impl Default for ProducerSection {
    fn default() -> Self {
        Self {
            max_buffered_bytes: inlet_producer::ProducerConfig::default().max_buffered_bytes,
            linger: Duration::from_millis(20),
            max_attempts: 10,
        }
    }
}

impl CollectorConfig {
    /// Parses a TOML document.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| {
            let setting = e.span().map(|s| format!("at bytes {}..{}", s.start, s.end));
            config_error(setting.unwrap_or_else(|| "config".into()), e.message())
        })
    }

    /// Checks the settings against each other and builds the runtime settings.
    /// `default_bad_rows` is used when `bad_rows.path` is unset.
    pub fn check(self, default_bad_rows: PathBuf) -> Result<Settings, ConfigError> {
        let l = &self.limits;
        for (name, value) in [
            ("limits.max_body_bytes", l.max_body_bytes),
            ("limits.max_decompressed_bytes", l.max_decompressed_bytes),
            ("limits.max_batch_events", l.max_batch_events as u64),
            ("limits.max_event_bytes", l.max_event_bytes),
            ("limits.max_connections", l.max_connections as u64),
            ("limits.max_in_flight_requests", l.max_in_flight_requests as u64),
            ("producer.max_attempts", u64::from(self.producer.max_attempts)),
        ] {
            if value == 0 {
                return Err(config_error(name, "must be at least 1"));
            }
        }
        if l.max_decompressed_bytes < l.max_body_bytes {
            return Err(config_error(
                "limits.max_decompressed_bytes",
                format!(
                    "{} is below limits.max_body_bytes ({})",
                    l.max_decompressed_bytes, l.max_body_bytes
                ),
            ));
        }
        // An event travels as one stream record with its partition key (up to 256 bytes);
        // stamping adds a few bytes. Kinesis takes records up to 1 MiB.
        const MAX_EVENT: u64 = (1 << 20) - 4096;
        if l.max_event_bytes > MAX_EVENT {
            return Err(config_error(
                "limits.max_event_bytes",
                format!(
                    "{} is over {MAX_EVENT}, the most a stream record can carry",
                    l.max_event_bytes
                ),
            ));
        }
        if (self.producer.max_buffered_bytes as u64) < 4 * l.max_decompressed_bytes {
            return Err(config_error(
                "producer.max_buffered_bytes",
                format!(
                    "{} is below four times limits.max_decompressed_bytes ({}), so a full request could never be buffered",
                    self.producer.max_buffered_bytes, l.max_decompressed_bytes
                ),
            ));
        }
        if u32::try_from(self.producer.max_buffered_bytes).is_err() {
            return Err(config_error("producer.max_buffered_bytes", "must be below 4 GiB"));
        }
        for (name, d) in [
            ("timeouts.header", self.timeouts.header),
            ("timeouts.body", self.timeouts.body),
            ("timeouts.ack", self.timeouts.ack),
        ] {
            if d.is_zero() {
                return Err(config_error(name, "must be longer than zero"));
            }
        }
        self.rate_limit.check("rate_limit", l.max_batch_events)?;
        if let Some(h) = &self.stamping.country_header {
            http::HeaderName::try_from(h.as_str())
                .map_err(|e| config_error("stamping.country_header", format!("{h:?} is not a header name: {e}")))?;
        }
        let keys = KeyTable::from_config(&self.keys, self.rate_limit, l.max_batch_events)?;
        Ok(Settings {
            listen: self.listen,
            bad_rows_path: self.bad_rows.path.clone().unwrap_or(default_bad_rows),
            country_header: self
                .stamping
                .country_header
                .as_deref()
                .and_then(|h| http::HeaderName::try_from(h).ok()),
            limits: self.limits,
            timeouts: self.timeouts,
            producer: self.producer,
            keys,
        })
    }
}

/// Checked settings, as the server runs with them.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Limits.
    pub limits: LimitsConfig,
    /// Timeouts.
    pub timeouts: TimeoutsConfig,
    /// The header `emitter.country` is filled from.
    pub country_header: Option<http::HeaderName>,
    /// The bad-rows file.
    pub bad_rows_path: PathBuf,
    /// Producer knobs.
    pub producer: ProducerSection,
    /// The API keys.
    pub keys: KeyTable,
}

impl Settings {
    /// The producer configuration these settings ask for.
    pub fn producer_config(&self) -> inlet_producer::ProducerConfig {
        let mut c = inlet_producer::ProducerConfig {
            max_buffered_bytes: self.producer.max_buffered_bytes,
            max_attempts: self.producer.max_attempts,
            ..inlet_producer::ProducerConfig::default()
        };
        c.batch.linger_ms = self.producer.linger.as_millis() as u64;
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_HASH: &str = "4c0d2f2a5f35bdbd0c6d2e2e4b6aa3e4f5a9c9de0b5e1a7ad4f0a3e2c9c8b7a6";

    fn parse(extra: &str) -> Result<Settings, ConfigError> {
        let text = format!("{extra}\n[[keys]]\nid = \"tv\"\napp_id = \"tv-app\"\nsha256 = \"{KEY_HASH}\"\n");
        CollectorConfig::from_toml(&text)?.check("bad.ndjson".into())
    }

    #[test]
    fn defaults_are_consistent() {
        let s = parse("").unwrap();
        assert_eq!(s.listen, default_listen());
        assert_eq!(s.bad_rows_path, PathBuf::from("bad.ndjson"));
        assert_eq!(s.producer_config().batch.linger_ms, 20);
    }

    #[test]
    fn the_example_config_parses_and_matches_the_defaults() {
        // The `[collector]` section of the one configuration file.
        let file: toml::Table = include_str!("../../config/inlet.example.toml").parse().unwrap();
        let example: CollectorConfig = file["collector"].clone().try_into().unwrap();
        let s = example.check("bad.ndjson".into()).unwrap();
        let d = parse("").unwrap();
        assert_eq!((s.listen, s.bad_rows_path.clone()), (d.listen, d.bad_rows_path.clone()));
        assert_eq!(format!("{:?}", s.limits), format!("{:?}", d.limits));
        assert_eq!(format!("{:?}", s.timeouts), format!("{:?}", d.timeouts));
        assert_eq!(format!("{:?}", s.producer), format!("{:?}", d.producer));
        let keys = s.keys.keys();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0].rate_limit, RateLimit::default());
        assert_eq!(keys[1].rate_limit.burst, 50_000);
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::AUTHORIZATION,
            "Bearer change-me-console-game".parse().unwrap(),
        );
        assert_eq!(s.keys.authenticate(&headers), Ok(1));
        assert!(keys[1].kinds.allows("gameplay.kill") && !keys[1].kinds.allows("viewing.stop"));
    }

    #[test]
    fn unknown_fields_and_bad_values_name_the_setting() {
        let e = parse("lisen = \"1.2.3.4:5\"").unwrap_err();
        assert!(e.reason.contains("unknown field `lisen`"), "{e}");
        let e = parse("[limits]\nmax_body_bytes = 0").unwrap_err();
        assert_eq!(e.setting, "limits.max_body_bytes");
        let e = parse("[limits]\nmax_decompressed_bytes = 100").unwrap_err();
        assert_eq!(e.setting, "limits.max_decompressed_bytes");
        let e = parse("[producer]\nmax_buffered_bytes = 1000").unwrap_err();
        assert_eq!(e.setting, "producer.max_buffered_bytes");
        let e = parse("[timeouts]\nack = \"soon\"").unwrap_err();
        assert!(e.to_string().contains("soon") || e.reason.contains("unknown"), "{e}");
        let e = parse("[stamping]\ncountry_header = \"bad header\"").unwrap_err();
        assert_eq!(e.setting, "stamping.country_header");
        let e = CollectorConfig::from_toml("").unwrap().check("x".into()).unwrap_err();
        assert_eq!(e.setting, "keys");
    }
}
