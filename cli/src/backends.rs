//! Where the stream and the warehouse are. The one place that parses locations.
//!
//! Today: the embedded backends, in a data directory (`stream.db`, `warehouse.db`), or by
//! URL: `embedded:///path/stream.db` and `sqlite:///path/warehouse.db`.
use anyhow::{Context, Result, bail};
use inlet_embedded::{EmbeddedStream, EmbeddedWarehouse};
use std::path::{Path, PathBuf};

/// Where things are, as given on the command line.
#[derive(Debug, Clone, clap::Args)]
pub struct Locations {
    /// Directory of the embedded stream and warehouse (created if missing).
    #[arg(long, default_value = "inlet-data")]
    pub data_dir: PathBuf,
    /// Stream URL (default: `embedded://<data-dir>/stream.db`).
    #[arg(long)]
    pub stream: Option<String>,
    /// Warehouse URL (default: `sqlite://<data-dir>/warehouse.db`).
    #[arg(long)]
    pub warehouse: Option<String>,
}

fn file_url(url: &str, scheme: &str) -> Result<PathBuf> {
    match url.split_once("://") {
        Some((s, path)) if s == scheme && !path.is_empty() => Ok(PathBuf::from(path)),
        Some((s, _)) => bail!("unsupported {scheme} location scheme {s:?} in {url:?} (this build knows {scheme}://)"),
        None => bail!("{url:?} is not a URL like {scheme}:///path"),
    }
}

impl Locations {
    /// The stream file.
    pub fn stream_path(&self) -> Result<PathBuf> {
        match &self.stream {
            Some(url) => file_url(url, "embedded"),
            None => Ok(self.data_dir.join("stream.db")),
        }
    }

    /// The warehouse file.
    pub fn warehouse_path(&self) -> Result<PathBuf> {
        match &self.warehouse {
            Some(url) => file_url(url, "sqlite"),
            None => Ok(self.data_dir.join("warehouse.db")),
        }
    }

    fn ensure_parent(path: &Path) -> Result<()> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        Ok(())
    }

    /// Opens the stream, creating it with `shards` shards if it does not exist.
    pub async fn stream(&self, shards: u32) -> Result<EmbeddedStream> {
        let path = self.stream_path()?;
        Self::ensure_parent(&path)?;
        EmbeddedStream::open_or_create(&path, shards)
            .await
            .with_context(|| format!("opening stream {}", path.display()))
    }

    /// Opens the warehouse (and lease store), creating it if needed.
    pub async fn warehouse(&self) -> Result<EmbeddedWarehouse> {
        let path = self.warehouse_path()?;
        Self::ensure_parent(&path)?;
        EmbeddedWarehouse::open(&path)
            .await
            .with_context(|| format!("opening warehouse {}", path.display()))
    }
}
