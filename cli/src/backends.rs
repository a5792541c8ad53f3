//! Where the stream and the warehouse are. The one place that parses locations.
//!
//! The stream: `embedded:///path/stream.db` (default `<data-dir>/stream.db`).
//! The warehouse: `sqlite:///path/warehouse.db` (default `<data-dir>/warehouse.db`) or
//! `postgres://user@host:port/db`.
use anyhow::{Context, Result, bail};
use inlet_embedded::{EmbeddedStream, EmbeddedWarehouse};
use inlet_postgres::{PgConfig, PgWarehouse};
use inlet_seams::LeasedWarehouse;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where things are, as given on the command line.
#[derive(Debug, Clone, clap::Args)]
pub struct Locations {
    /// Directory of the embedded stream and warehouse (created if missing).
    #[arg(long, default_value = "inlet-data")]
    pub data_dir: PathBuf,
    /// Stream URL (default: `embedded://<data-dir>/stream.db`).
    #[arg(long)]
    pub stream: Option<String>,
    /// Warehouse URL: `sqlite:///path` or `postgres://user@host:port/db` (default:
    /// `sqlite://<data-dir>/warehouse.db`).
    #[arg(long)]
    pub warehouse: Option<String>,
}

fn file_url(url: &str, scheme: &str) -> Result<PathBuf> {
    match url.split_once("://") {
        Some((s, path)) if s == scheme && !path.is_empty() => Ok(PathBuf::from(path)),
        Some((s, _)) => bail!("unsupported location scheme {s:?} in {url:?} (expected {scheme}://)"),
        None => bail!("{url:?} is not a URL like {scheme}:///path"),
    }
}

fn ensure_parent(path: &Path) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    Ok(())
}

impl Locations {
    /// The embedded stream's file.
    pub fn stream_path(&self) -> Result<PathBuf> {
        match &self.stream {
            Some(url) => file_url(url, "embedded"),
            None => Ok(self.data_dir.join("stream.db")),
        }
    }

    /// Opens the stream, creating it with `shards` shards if it does not exist.
    pub async fn stream(&self, shards: u32) -> Result<EmbeddedStream> {
        let path = self.stream_path()?;
        ensure_parent(&path)?;
        EmbeddedStream::open_or_create(&path, shards)
            .await
            .with_context(|| format!("opening stream {}", path.display()))
    }

    /// Opens the warehouse and its lease store, creating (or migrating) it if needed.
    pub async fn warehouse(&self) -> Result<Arc<dyn LeasedWarehouse>> {
        match self.warehouse.as_deref() {
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                let w = PgWarehouse::connect(PgConfig::new(url))
                    .await
                    .context("opening the PostgreSQL warehouse")?;
                Ok(Arc::new(w))
            }
            Some(url) => Ok(Arc::new(self.sqlite(file_url(url, "sqlite")?).await?)),
            None => Ok(Arc::new(self.sqlite(self.data_dir.join("warehouse.db")).await?)),
        }
    }

    /// The PostgreSQL warehouse, for commands that only make sense there.
    pub async fn postgres(&self, migrate: bool) -> Result<PgWarehouse> {
        match self.warehouse.as_deref() {
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                let config = PgConfig {
                    migrate,
                    ..PgConfig::new(url)
                };
                Ok(PgWarehouse::connect(config)
                    .await
                    .context("opening the PostgreSQL warehouse")?)
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
