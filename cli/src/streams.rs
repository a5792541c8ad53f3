//! `inlet streams create|describe|split|merge|scale|delete`: Kinesis stream administration,
//! for local use and tests (each change waits until the stream is active again).
use anyhow::{Context, Result, bail};
use inlet_kinesis::{KinesisLocation, KinesisStream};
use inlet_seams::ShardId;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct StreamsArgs {
    /// The stream: `kinesis://STREAM?region=..&endpoint=..`.
    #[arg(long)]
    pub stream: String,
    #[command(subcommand)]
    pub action: Action,
}

#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// Create the stream with N shards.
    Create {
        #[arg(long)]
        shards: u32,
    },
    /// Print the stream's status and shards (open and closed, with lineage).
    Describe,
    /// Split an open shard (at the middle of its hash-key range unless `--at` is given).
    Split {
        #[arg(long)]
        shard: String,
        /// The first hash key of the upper child (decimal).
        #[arg(long)]
        at: Option<u128>,
    },
    /// Merge two open shards with adjacent hash-key ranges.
    Merge {
        #[arg(long)]
        shard: String,
        #[arg(long)]
        adjacent: String,
    },
    /// Rescale to N open shards (uniform scaling).
    Scale {
        #[arg(long)]
        shards: u32,
    },
    /// Delete the stream.
    Delete,
}

pub async fn run(args: StreamsArgs) -> Result<ExitCode> {
    if !args.stream.starts_with("kinesis://") {
        bail!("inlet streams manages Kinesis streams: --stream kinesis://STREAM?...");
    }
    let stream = KinesisStream::connect(KinesisLocation::parse(&args.stream)?).await;
    let name = stream.name().to_owned();
    match args.action {
        Action::Create { shards } => {
            stream
                .create(shards)
                .await
                .with_context(|| format!("creating {name}"))?;
            println!("created {name} with {shards} shards");
        }
        Action::Describe => {
            let d = stream.describe().await.with_context(|| format!("describing {name}"))?;
            println!(
                "{}: {}, {} open shards, {} listed, retention {} h",
                d.name,
                d.status,
                d.open_shards,
                d.shards.len(),
                d.retention_hours
            );
            for s in &d.shards {
                let parents = s.parents().iter().map(ShardId::to_string).collect::<Vec<_>>().join("+");
                println!(
                    "  {} {:6} {:>39}..={:<39} {}",
                    s.id,
                    if s.closed { "closed" } else { "open" },
                    s.hash_range.start,
                    s.hash_range.end,
                    if parents.is_empty() {
                        String::new()
                    } else {
                        format!("from {parents}")
                    }
                );
            }
        }
        Action::Split { shard, at } => {
            let (lo, hi) = stream
                .split(&ShardId(shard.clone()), at)
                .await
                .with_context(|| format!("splitting {shard}"))?;
            println!("split {shard} into {lo} and {hi}");
        }
        Action::Merge { shard, adjacent } => {
            let child = stream
                .merge(&ShardId(shard.clone()), &ShardId(adjacent.clone()))
                .await
                .with_context(|| format!("merging {shard} and {adjacent}"))?;
            println!("merged {shard} and {adjacent} into {child}");
        }
        Action::Scale { shards } => {
            stream
                .set_shard_count(shards)
                .await
                .with_context(|| format!("rescaling {name}"))?;
            println!("{name} now has {shards} open shards");
        }
        Action::Delete => {
            stream.delete().await.with_context(|| format!("deleting {name}"))?;
            println!("deleted {name}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
