//! `inlet streams create|describe|split|merge|scale|delete`: Kinesis stream administration,
//! for local use and tests (each change waits until the stream is active again), and Kafka
//! topic administration (create with N partitions, describe, delete; a topic's partitions are
//! neither split, merged nor rescaled here).
use anyhow::{Context, Result, bail};
use inlet_kafka::{KafkaLocation, KafkaStream};
use inlet_kinesis::{KinesisLocation, KinesisStream};
use inlet_seams::ShardId;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct StreamsArgs {
    /// The stream: `kinesis://STREAM?region=..&endpoint=..` or `kafka://HOST:PORT/TOPIC`.
    #[arg(long)]
    pub stream: String,
    #[command(subcommand)]
    pub action: Action,
}

#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// Create the stream with N shards (Kafka: a topic with N partitions).
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
    if args.stream.starts_with("kafka://") {
        return kafka(KafkaLocation::parse(&args.stream)?, args.action).await;
    }
    if !args.stream.starts_with("kinesis://") {
        bail!(
            "inlet streams manages Kinesis streams and Kafka topics: --stream kinesis://STREAM?... or kafka://HOST:PORT/TOPIC"
        );
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

/// Kafka topic administration. Partitions are shards `partition-N`; their count is fixed at
/// creation: Kafka can only add partitions, which would move keys to other partitions (the
/// producer routes by even slices of the hash-key space), and never split or merge them.
async fn kafka(location: KafkaLocation, action: Action) -> Result<ExitCode> {
    let topic = location.topic.clone();
    let stream = KafkaStream::connect(location)?;
    let fixed = |what: &str| {
        anyhow::anyhow!(
            "{what}: Kafka partitions cannot be split, merged or rescaled here (topic {topic} keeps the \
             partition count it was created with); create a new topic with `create --shards N` instead"
        )
    };
    match action {
        Action::Create { shards } => {
            stream
                .create(shards as usize)
                .await
                .with_context(|| format!("creating topic {topic}"))?;
            println!("created {topic} with {shards} partitions");
        }
        Action::Describe => {
            let d = stream
                .describe()
                .await
                .with_context(|| format!("describing topic {topic}"))?;
            if d.partitions.is_empty() {
                bail!("topic {topic} does not exist (or has no partitions)");
            }
            let records: i64 = d.partitions.iter().map(|p| p.high - p.low).sum();
            println!("{}: {} partitions, {records} records kept", d.topic, d.partitions.len());
            for p in &d.partitions {
                println!(
                    "  {:14} offsets {:>12}..{:<12} {:>12} records",
                    p.shard.as_str(),
                    p.low,
                    p.high,
                    p.high - p.low
                );
            }
        }
        Action::Split { shard, .. } => return Err(fixed(&format!("cannot split {shard}"))),
        Action::Merge { shard, adjacent } => return Err(fixed(&format!("cannot merge {shard} and {adjacent}"))),
        Action::Scale { shards } => return Err(fixed(&format!("cannot rescale to {shards} partitions"))),
        Action::Delete => {
            stream
                .delete()
                .await
                .with_context(|| format!("deleting topic {topic}"))?;
            println!("deleted {topic}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
