//! `kinesis://STREAM?region=REGION&endpoint=URL&max_record_bytes=N&read=polling|fanout&consumer=NAME&connect_timeout=10s`:
//! where a Kinesis stream is, and how it is read.
//!
//! `connect_timeout` (default 10 s; `2s`, `500ms`, `1m`…) bounds how long opening the stream
//! ([`crate::KinesisStream::connect_checked`]) looks for credentials and waits for the endpoint
//! to answer before it fails naming what is missing.
use std::fmt;
use std::time::Duration;

/// How shards are read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ReadMode {
    /// `GetShardIterator` + `GetRecords` (shared throughput: 2 MB/s and 5 calls/s per shard,
    /// shared by every polling reader).
    #[default]
    Polling,
    /// Enhanced fan-out: a registered stream consumer and `SubscribeToShard` (2 MB/s per shard
    /// for this consumer alone, records pushed as they arrive).
    Fanout,
}

impl ReadMode {
    /// The setting's value: `polling` or `fanout`.
    pub fn as_str(self) -> &'static str {
        match self {
            ReadMode::Polling => "polling",
            ReadMode::Fanout => "fanout",
        }
    }
}

impl fmt::Display for ReadMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The stream consumer name used for enhanced fan-out unless `consumer=` says otherwise.
pub const DEFAULT_CONSUMER: &str = "inlet";

/// How long opening a stream waits unless `connect_timeout=` says otherwise.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A Kinesis stream's location and client settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KinesisLocation {
    /// The stream's name.
    pub stream: String,
    /// The region; the SDK's usual chain (env, profile) when absent.
    pub region: Option<String>,
    /// An endpoint override, e.g. `http://127.0.0.1:4568` for the local emulator.
    pub endpoint: Option<String>,
    /// Largest record the stream takes (partition key + data), bytes. Kinesis's default
    /// is 1 MiB; streams can be raised to 10 MiB.
    pub max_record_bytes: usize,
    /// Time allowed for one attempt of a call.
    pub call_timeout: Duration,
    /// How long opening the stream may take: finding the credentials, and the endpoint's
    /// first answer (`connect_timeout=`).
    pub connect_timeout: Duration,
    /// How shards are read (`read=polling|fanout`).
    pub read: ReadMode,
    /// The registered stream consumer that enhanced fan-out reads as (`consumer=NAME`);
    /// registered on first use.
    pub consumer: String,
}

/// A location that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad Kinesis location {url:?}: {reason}")]
pub struct BadLocation {
    /// The text given.
    pub url: String,
    /// What is wrong with it.
    pub reason: String,
}

impl KinesisLocation {
    /// A location for `stream` with the defaults.
    pub fn new(stream: impl Into<String>) -> Self {
        Self {
            stream: stream.into(),
            region: None,
            endpoint: None,
            max_record_bytes: 1 << 20,
            call_timeout: Duration::from_secs(10),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            read: ReadMode::Polling,
            consumer: DEFAULT_CONSUMER.to_owned(),
        }
    }

    /// Parses `kinesis://STREAM?region=..&endpoint=..&max_record_bytes=..&call_timeout_ms=..`
    /// `&read=polling|fanout&consumer=..&connect_timeout=..`.
    pub fn parse(url: &str) -> Result<Self, BadLocation> {
        let bad = |reason: &str| BadLocation {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        let rest = url
            .strip_prefix("kinesis://")
            .ok_or_else(|| bad("it must start with kinesis://"))?;
        let (name, query) = rest.split_once('?').unwrap_or((rest, ""));
        let name = name.trim_end_matches('/');
        // Kinesis stream names: 1-128 of [a-zA-Z0-9_.-].
        if name.is_empty()
            || name.len() > 128
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        {
            return Err(bad("the stream name must be 1 to 128 of a-z, A-Z, 0-9, _ . -"));
        }
        let mut loc = Self::new(name);
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair
                .split_once('=')
                .ok_or_else(|| bad(&format!("query part {pair:?} is not key=value")))?;
            match k {
                "region" => loc.region = Some(v.to_owned()),
                "endpoint" => {
                    if !(v.starts_with("http://") || v.starts_with("https://")) {
                        return Err(bad("endpoint must be an http:// or https:// URL"));
                    }
                    loc.endpoint = Some(v.to_owned());
                }
                "max_record_bytes" => {
                    loc.max_record_bytes = v
                        .parse()
                        .ok()
                        .filter(|n| (1..=10 << 20).contains(n))
                        .ok_or_else(|| bad("max_record_bytes must be 1 to 10485760"))?;
                }
                "call_timeout_ms" => {
                    let ms: u64 = v
                        .parse()
                        .ok()
                        .filter(|&n| n > 0)
                        .ok_or_else(|| bad("call_timeout_ms must be a positive integer"))?;
                    loc.call_timeout = Duration::from_millis(ms);
                }
                "connect_timeout" => {
                    loc.connect_timeout = humantime::parse_duration(v)
                        .ok()
                        .filter(|d| !d.is_zero())
                        .ok_or_else(|| bad("connect_timeout must be a positive duration like 10s or 500ms"))?;
                }
                "read" => {
                    loc.read = match v {
                        "polling" => ReadMode::Polling,
                        "fanout" => ReadMode::Fanout,
                        _ => return Err(bad("read must be polling or fanout")),
                    };
                }
                "consumer" => {
                    // Kinesis consumer names: 1-128 of [a-zA-Z0-9_.-].
                    if v.is_empty()
                        || v.len() > 128
                        || !v
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
                    {
                        return Err(bad("the consumer name must be 1 to 128 of a-z, A-Z, 0-9, _ . -"));
                    }
                    loc.consumer = v.to_owned();
                }
                other => return Err(bad(&format!("unknown setting {other:?}"))),
            }
        }
        Ok(loc)
    }

    /// Whether the endpoint is on this machine (the local emulator), where placeholder
    /// credentials are used when none are configured.
    pub fn is_local(&self) -> bool {
        self.endpoint.as_deref().is_some_and(|e| {
            let host = e.split("://").nth(1).unwrap_or("");
            host.starts_with("127.") || host.starts_with("localhost") || host.starts_with("[::1]")
        })
    }

    /// The URL form, which `parse` reads back.
    pub fn to_url(&self) -> String {
        let mut q = Vec::new();
        if let Some(r) = &self.region {
            q.push(format!("region={r}"));
        }
        if let Some(e) = &self.endpoint {
            q.push(format!("endpoint={e}"));
        }
        if self.max_record_bytes != 1 << 20 {
            q.push(format!("max_record_bytes={}", self.max_record_bytes));
        }
        if self.call_timeout != Duration::from_secs(10) {
            q.push(format!("call_timeout_ms={}", self.call_timeout.as_millis()));
        }
        if self.connect_timeout != DEFAULT_CONNECT_TIMEOUT {
            let t = self.connect_timeout;
            if t.subsec_millis() == 0 {
                q.push(format!("connect_timeout={}s", t.as_secs()));
            } else {
                q.push(format!("connect_timeout={}ms", t.as_millis()));
            }
        }
        if self.read != ReadMode::Polling {
            q.push(format!("read={}", self.read));
        }
        if self.consumer != DEFAULT_CONSUMER {
            q.push(format!("consumer={}", self.consumer));
        }
        if q.is_empty() {
            format!("kinesis://{}", self.stream)
        } else {
            format!("kinesis://{}?{}", self.stream, q.join("&"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_back() {
        let url = "kinesis://plays?region=eu-west-1&endpoint=http://127.0.0.1:4568&max_record_bytes=2048";
        let loc = KinesisLocation::parse(url).unwrap();
        assert_eq!(loc.stream, "plays");
        assert_eq!(loc.region.as_deref(), Some("eu-west-1"));
        assert!(loc.is_local());
        assert_eq!(loc.max_record_bytes, 2048);
        assert_eq!(loc.to_url(), url);
        assert_eq!(
            KinesisLocation::parse("kinesis://s").unwrap(),
            KinesisLocation::new("s")
        );
    }

    #[test]
    fn reads_the_connect_timeout() {
        assert_eq!(
            KinesisLocation::parse("kinesis://s").unwrap().connect_timeout,
            Duration::from_secs(10)
        );
        for (given, want, printed) in [
            ("2s", Duration::from_secs(2), "kinesis://s?connect_timeout=2s"),
            ("250ms", Duration::from_millis(250), "kinesis://s?connect_timeout=250ms"),
            ("1m", Duration::from_secs(60), "kinesis://s?connect_timeout=60s"),
            ("10s", Duration::from_secs(10), "kinesis://s"),
        ] {
            let loc = KinesisLocation::parse(&format!("kinesis://s?connect_timeout={given}")).unwrap();
            assert_eq!(loc.connect_timeout, want, "{given}");
            assert_eq!(loc.to_url(), printed);
            assert_eq!(KinesisLocation::parse(&loc.to_url()).unwrap(), loc);
        }
        let url = "kinesis://s?region=eu-west-1&endpoint=http://127.0.0.1:1&connect_timeout=2s";
        assert_eq!(KinesisLocation::parse(url).unwrap().to_url(), url);
    }

    #[test]
    fn reads_the_read_mode_and_consumer() {
        let loc = KinesisLocation::parse("kinesis://s").unwrap();
        assert_eq!(loc.read, ReadMode::Polling);
        assert_eq!(loc.consumer, "inlet");

        let url = "kinesis://plays?endpoint=http://127.0.0.1:4568&read=fanout&consumer=rollup-v2.blue_1";
        let loc = KinesisLocation::parse(url).unwrap();
        assert_eq!(loc.read, ReadMode::Fanout);
        assert_eq!(loc.consumer, "rollup-v2.blue_1");
        assert_eq!(loc.to_url(), url);
        assert_eq!(KinesisLocation::parse(&loc.to_url()).unwrap(), loc);

        // Fan-out with the default consumer, and the defaults spelled out, print short.
        let loc = KinesisLocation::parse("kinesis://s?read=fanout&consumer=inlet").unwrap();
        assert_eq!(loc.to_url(), "kinesis://s?read=fanout");
        let loc = KinesisLocation::parse("kinesis://s?read=polling&consumer=inlet").unwrap();
        assert_eq!(loc, KinesisLocation::new("s"));
        assert_eq!(loc.to_url(), "kinesis://s");

        // A consumer without fan-out is kept (and printed), though only fan-out uses it.
        let loc = KinesisLocation::parse("kinesis://s?consumer=c").unwrap();
        assert_eq!(
            (loc.read, loc.to_url().as_str()),
            (ReadMode::Polling, "kinesis://s?consumer=c")
        );
    }

    #[test]
    fn refuses_what_it_cannot_use() {
        for (url, says) in [
            ("kafka://x", "kinesis://"),
            ("kinesis://", "stream name"),
            ("kinesis://a b", "stream name"),
            ("kinesis://s?endpoint=127.0.0.1:1", "http://"),
            ("kinesis://s?colour=red", "unknown setting \"colour\""),
            ("kinesis://s?max_record_bytes=0", "max_record_bytes"),
            ("kinesis://s?region", "key=value"),
            ("kinesis://s?read=push", "read must be polling or fanout"),
            ("kinesis://s?read=", "read must be polling or fanout"),
            ("kinesis://s?consumer=", "consumer name"),
            ("kinesis://s?consumer=a/b", "consumer name"),
            ("kinesis://s?connect_timeout=", "connect_timeout"),
            ("kinesis://s?connect_timeout=0ms", "connect_timeout"),
            ("kinesis://s?connect_timeout=5", "connect_timeout"),
        ] {
            let e = KinesisLocation::parse(url).unwrap_err();
            assert!(e.to_string().contains(says), "{url}: {e}");
        }
    }
}
