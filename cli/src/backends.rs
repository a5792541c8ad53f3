//! Where the stream and the warehouse are. The one place that parses locations.
//!
//! The stream: `embedded:///path/stream.db` (default `<data-dir>/stream.db`) or
//! `kinesis://STREAM?region=..&endpoint=..` (Amazon Kinesis Data Streams, or the local
//! emulator with `endpoint=http://127.0.0.1:PORT`) or `kafka://HOST:PORT/TOPIC?group=..` (a
//! Kafka topic; its workers join the consumer group).
//! The warehouse: `sqlite:///path/warehouse.db` (default `<data-dir>/warehouse.db`) or
//! `postgres://user@host:port/db`.
use anyhow::{Context, Result, bail};
use inlet_embedded::{EmbeddedStream, EmbeddedWarehouse};
use inlet_kafka::group::KafkaMember;
use inlet_kafka::{KafkaLocation, KafkaStream};
use inlet_kinesis::{KinesisLocation, KinesisStream};
use inlet_postgres::{PgConfig, PgWarehouse};
use inlet_seams::{LeasedWarehouse, StreamReader, StreamWriter};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A stream that is written and read: every backend is both.
pub trait Stream: StreamWriter + StreamReader {}
impl<T: StreamWriter + StreamReader> Stream for T {}

/// A parsed stream location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamUrl {
    /// The embedded sharded log in a file.
    Embedded(PathBuf),
    /// A Kinesis data stream.
    Kinesis(KinesisLocation),
    /// A Kafka topic.
    Kafka(KafkaLocation),
}

/// Where things are, as given on the command line.
#[derive(Debug, Clone, clap::Args)]
pub struct Locations {
    /// Directory of the embedded stream and warehouse (created if missing).
    /// [default: inlet-data; config: data_dir]
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Stream URL (default: `embedded://<data-dir>/stream.db`) [config: stream.location].
    #[arg(long)]
    pub stream: Option<String>,
    /// Warehouse URL: `sqlite:///path` or `postgres://user@host:port/db` (default:
    /// `sqlite://<data-dir>/warehouse.db`) [config: warehouse.location].
    #[arg(long)]
    pub warehouse: Option<String>,
}

fn file_url(url: &str, scheme: &str) -> Result<PathBuf> {
    match url.split_once("://") {
        Some((s, path)) if s == scheme && !path.is_empty() => Ok(PathBuf::from(path)),
        Some((s, _)) if s == scheme => bail!("{url:?} names no file: write {scheme}:///path/to/file"),
        Some((s, _)) => bail!("unsupported location scheme {s:?} in {url:?} (expected {scheme}://)"),
        None => bail!("{url:?} is not a URL like {scheme}:///path"),
    }
}

/// Connects to a Kinesis stream: a missing region or credentials, or an endpoint that does
/// not answer, is refused here, before any other call.
async fn kinesis(location: KinesisLocation) -> Result<KinesisStream> {
    let name = location.stream.clone();
    KinesisStream::connect_checked(location)
        .await
        .with_context(|| format!("opening Kinesis stream {name}"))
}

fn ensure_parent(path: &Path) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    Ok(())
}

impl Locations {
    /// The data directory (resolved from the configuration by `settings`).
    pub fn dir(&self) -> &Path {
        self.data_dir
            .as_deref()
            .unwrap_or(Path::new(inlet_config::model::DEFAULT_DATA_DIR))
    }

    /// Where the stream is.
    pub fn stream_url(&self) -> Result<StreamUrl> {
        match &self.stream {
            Some(url) if url.starts_with("kinesis://") => Ok(StreamUrl::Kinesis(KinesisLocation::parse(url)?)),
            Some(url) if url.starts_with("kafka://") => Ok(StreamUrl::Kafka(KafkaLocation::parse(url)?)),
            Some(url) => Ok(StreamUrl::Embedded(file_url(url, "embedded")?)),
            None => Ok(StreamUrl::Embedded(self.dir().join("stream.db"))),
        }
    }

    /// Opens the stream, creating it with `shards` shards if it does not exist (a Kinesis
    /// stream only on a local emulator: in AWS, streams cost money and are made on purpose,
    /// with `inlet streams create`).
    pub async fn stream(&self, shards: u32) -> Result<Arc<dyn Stream>> {
        match self.stream_url()? {
            StreamUrl::Embedded(path) => {
                ensure_parent(&path)?;
                let s = EmbeddedStream::open_or_create(&path, shards)
                    .await
                    .with_context(|| format!("opening stream {}", path.display()))?;
                Ok(Arc::new(s))
            }
            StreamUrl::Kinesis(location) => {
                let local = location.is_local();
                let s = kinesis(location).await?;
                if local {
                    s.ensure(shards).await
                } else {
                    s.wait_active().await
                }
                .with_context(|| format!("opening Kinesis stream {}", s.name()))?;
                Ok(Arc::new(s))
            }
            StreamUrl::Kafka(location) => Ok(self.kafka(location, Some(shards)).await?),
        }
    }

    /// Opens a Kafka topic; with `partitions`, creates it if it is missing on a broker on this
    /// machine (elsewhere topics are made on purpose, with `inlet streams create`).
    async fn kafka(&self, location: KafkaLocation, partitions: Option<u32>) -> Result<Arc<KafkaStream>> {
        let local = location.is_local();
        let topic = location.topic.clone();
        let s = KafkaStream::connect(location)?;
        match partitions {
            Some(n) if local => s.ensure(n as usize).await,
            _ => s.wait_exists().await,
        }
        .with_context(|| format!("opening Kafka topic {topic}"))?;
        Ok(Arc::new(s))
    }

    /// The consumer-group member a worker reads a Kafka topic as, if the stream is one.
    pub async fn kafka_member(&self, member: &str, partitions: u32) -> Result<Option<KafkaMember>> {
        match self.stream_url()? {
            StreamUrl::Kafka(location) => {
                let s = self.kafka(location, Some(partitions)).await?;
                Ok(Some(s.join_group(member)?))
            }
            _ => Ok(None),
        }
    }

    /// Opens a stream that must exist already.
    pub async fn existing_stream(&self) -> Result<Arc<dyn Stream>> {
        if let StreamUrl::Embedded(path) = self.stream_url()?
            && !path.exists()
        {
            bail!(
                "no stream at {}: run `inlet produce` or `inlet demo` first, or check {}",
                path.display(),
                if self.stream.is_some() {
                    "--stream"
                } else {
                    "--data-dir"
                }
            );
        }
        match self.stream_url()? {
            StreamUrl::Kinesis(location) => {
                let s = kinesis(location).await?;
                s.wait_active()
                    .await
                    .with_context(|| format!("opening Kinesis stream {}", s.name()))?;
                Ok(Arc::new(s))
            }
            StreamUrl::Kafka(location) => Ok(self.kafka(location, None).await?),
            StreamUrl::Embedded(_) => self.stream(1).await,
        }
    }

    /// Opens the warehouse and its lease store, creating (or migrating) it if needed.
    pub async fn warehouse(&self) -> Result<Arc<dyn LeasedWarehouse>> {
        match self.warehouse.as_deref() {
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Ok(Arc::new(self.postgres(true).await?))
            }
            Some(url) => Ok(Arc::new(self.sqlite(file_url(url, "sqlite")?).await?)),
            None => Ok(Arc::new(self.sqlite(self.dir().join("warehouse.db")).await?)),
        }
    }

    /// Opens a warehouse that must exist already, for commands that only read it: a missing
    /// embedded one is an error naming its path, not a new empty one (which would make a
    /// mistyped `--data-dir` look like an empty pipeline).
    pub async fn existing_warehouse(&self) -> Result<Arc<dyn LeasedWarehouse>> {
        let path = match self.warehouse.as_deref() {
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                return self.warehouse().await;
            }
            Some(url) => file_url(url, "sqlite")?,
            None => self.dir().join("warehouse.db"),
        };
        if !path.is_file() {
            bail!(
                "no warehouse at {}: run `inlet consume` or `inlet demo` first, or check {}",
                path.display(),
                if self.warehouse.is_some() {
                    "--warehouse"
                } else {
                    "--data-dir"
                }
            );
        }
        Ok(Arc::new(self.sqlite(path).await?))
    }

    /// The PostgreSQL warehouse, for commands that only make sense there.
    pub async fn postgres(&self, migrate: bool) -> Result<PgWarehouse> {
        match self.warehouse.as_deref() {
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                let config = PgConfig {
                    migrate,
                    ..PgConfig::new(url)
                };
                Ok(PgWarehouse::connect(config).await.with_context(|| {
                    format!(
                        "opening the PostgreSQL warehouse {}",
                        inlet_config::redact::redact_url(url)
                    )
                })?)
            }
            _ => bail!("this needs --warehouse postgres://..."),
        }
    }

    async fn sqlite(&self, path: PathBuf) -> Result<EmbeddedWarehouse> {
        ensure_parent(&path)?;
        EmbeddedWarehouse::open(&path)
            .await
            .with_context(|| format!("opening warehouse {}", path.display()))
    }
}
