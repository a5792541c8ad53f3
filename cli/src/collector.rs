//! `inlet collector`: the HTTP collector in front of the stream, and `inlet collector
//! hash-key`, which prints what a key's `sha256` setting must be.
use crate::backends::Locations;
use crate::pipeline;
use anyhow::{Context, Result, bail};
use inlet_collector::{Collector, CollectorConfig};
use inlet_producer::Producer;
use std::io::BufRead;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use tokio_util::sync::CancellationToken;

/// `inlet collector`.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct CollectorArgs {
    #[command(subcommand)]
    pub action: Option<Action>,
    /// The configuration file (TOML; see `collector/collector.example.toml`).
    #[arg(long, required = true)]
    pub config: Option<PathBuf>,
    /// Listen here instead of the configuration's `listen`.
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    #[command(flatten)]
    pub locations: Locations,
    /// Shards of the stream, if it has to be created.
    #[arg(long, default_value_t = 4)]
    pub shards: u32,
}

/// What else `inlet collector` does.
#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// Print the SHA-256 of an API key (read from stdin) for a `[[keys]]` entry's `sha256`.
    HashKey {
        /// Make a new random key instead, and print it with its hash.
        #[arg(long)]
        generate: bool,
    },
}

pub async fn run(args: CollectorArgs) -> Result<ExitCode> {
    if let Some(Action::HashKey { generate }) = args.action {
        return hash_key(generate);
    }
    let Some(path) = args.config else {
        bail!("--config is required");
    };
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let mut config = CollectorConfig::from_toml(&text).with_context(|| format!("in {}", path.display()))?;
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    let settings = config
        .check(args.locations.data_dir.join("bad-rows.ndjson"))
        .with_context(|| format!("in {}", path.display()))?;
    let stream = args.locations.stream(args.shards).await?;
    let producer = Producer::start(stream, settings.producer_config()).await?;
    let prometheus = inlet_collector::metrics::install_prometheus();
    let collector = Collector::bind(settings, producer, prometheus).await?;
    let shutdown = CancellationToken::new();
    let signal = shutdown.clone();
    tokio::spawn(async move {
        pipeline::wait_for_signal().await;
        signal.cancel();
    });
    let summary = collector.run(shutdown).await?;
    let p = summary.producer;
    if p.failed > 0 || p.delivered != p.accepted || !summary.drained {
        eprintln!(
            "error: {} of {} accepted events not delivered; requests drained: {}",
            p.accepted - p.delivered,
            p.accepted,
            summary.drained
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

fn hash_key(generate: bool) -> Result<ExitCode> {
    if generate {
        let mut bytes = [0u8; 24];
        getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness from the OS: {e}"))?;
        let key: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        println!("key:    {key}");
        println!("sha256: {}", inlet_collector::hash_key(&key));
        return Ok(ExitCode::SUCCESS);
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the key from stdin")?;
    let key = line.trim_end_matches(['\r', '\n']);
    if key.is_empty() {
        bail!("no key on stdin (or use --generate)");
    }
    println!("{}", inlet_collector::hash_key(key));
    Ok(ExitCode::SUCCESS)
}
