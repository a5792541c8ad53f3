//! `inlet collector`: the HTTP collector in front of the stream, and `inlet collector
//! hash-key`, which prints what a key's `sha256` setting must be.
use crate::backends::Locations;
use crate::settings::Overrides;
use crate::stdout::{say, tell};
use crate::{ops, pipeline};
use anyhow::{Context, Result, bail};
use inlet_collector::Collector;
use inlet_config::InletConfig;
use inlet_ops::Health;
use inlet_producer::Producer;
use std::io::BufRead;
use std::net::SocketAddr;
use std::process::ExitCode;
use tokio_util::sync::CancellationToken;

/// `inlet collector`: its settings are the configuration file's `[collector]` section.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct CollectorArgs {
    #[command(subcommand)]
    pub action: Option<Action>,
    /// Listen here instead of the configuration's `collector.listen`.
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    #[command(flatten)]
    pub locations: Locations,
    /// Shards of the stream, if it has to be created [default: 4; config: stream.shards].
    #[arg(long)]
    pub shards: Option<u32>,
}

impl Overrides for CollectorArgs {
    fn apply(&self, c: &mut InletConfig) {
        self.locations.apply(c);
        if let Some(listen) = self.listen {
            c.collector.listen = listen;
        }
        if let Some(n) = self.shards {
            c.stream.shards = n;
        }
    }

    fn resolve(&mut self, c: &InletConfig) {
        self.locations.resolve(c);
    }
}

/// What else `inlet collector` does.
#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// Print the SHA-256 of an API key (read from stdin) for a `[[collector.keys]]` entry's
    /// `sha256`.
    HashKey {
        /// Make a new random key instead, and print it with its hash.
        #[arg(long)]
        generate: bool,
    },
}

pub async fn run(args: CollectorArgs, config: InletConfig) -> Result<ExitCode> {
    if let Some(Action::HashKey { generate }) = args.action {
        return hash_key(generate);
    }
    let settings = config
        .collector
        .clone()
        .check(args.locations.dir().join("bad-rows.ndjson"))
        .map_err(|e| inlet_config::ConfigError::key(format!("collector.{}", e.setting), e.reason))?;
    let stream = args.locations.stream(config.stream.shards).await?;
    let producer = Producer::start(stream, settings.producer_config()).await?;
    let exporter = ops::exporter("collector")?;
    // The collector serves /metrics, /healthz and /readyz on its own port too; a separate
    // address keeps them off the public one.
    let endpoint = ops::serve(&config, "collector", Health::always_ready()).await?;
    let collector = Collector::bind(settings, producer, Some(exporter)).await?;
    let shutdown = CancellationToken::new();
    let signal = shutdown.clone();
    tokio::spawn(async move {
        pipeline::wait_for_signal().await;
        signal.cancel();
    });
    let summary = collector.run(shutdown).await?;
    if let Some(e) = endpoint {
        e.stop().await?;
    }
    let p = summary.producer;
    if p.failed > 0 || p.delivered != p.accepted || !summary.drained {
        tell!(
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
        say!("key:    {key}");
        say!("sha256: {}", inlet_collector::hash_key(&key));
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
    say!("{}", inlet_collector::hash_key(key));
    Ok(ExitCode::SUCCESS)
}
