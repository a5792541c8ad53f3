//! `inlet streams create|describe|split|merge|scale|delete`: Kinesis stream administration,
//! for local use and tests (each change waits until the stream is active again), and Kafka
//! topic administration (create with N partitions, describe, delete; a topic's partitions are
//! neither split, merged nor rescaled here).
use crate::human::{count, signed};
use crate::stdout::say;
use anyhow::{Context, Result, bail};
use inlet_kafka::{KafkaLocation, KafkaStream};
use inlet_kinesis::{KinesisLocation, KinesisStream};
use inlet_seams::ShardId;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct StreamsArgs {
    /// The stream: `kinesis://STREAM?region=..&endpoint=..&connect_timeout=10s` or
    /// `kafka://HOST:PORT/TOPIC?connect_timeout=10s`.
    #[arg(long)]
    pub stream: String,
    #[command(subcommand)]
    pub action: Action,
}

#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// Create the stream with N shards (Kafka: a topic with N partitions).
    Create {
        /// How many shards (Kafka: partitions).
        #[arg(long)]
        shards: u32,
    },
    /// Print the stream's status and shards (open and closed, with lineage).
    Describe,
    /// Split an open shard (at the middle of its hash-key range unless `--at` is given).
    Split {
        /// The open shard to split, e.g. `shardId-000000000000`.
        #[arg(long)]
        shard: String,
        /// The first hash key of the upper child (decimal).
        #[arg(long)]
        at: Option<u128>,
    },
    /// Merge two open shards with adjacent hash-key ranges.
    Merge {
        /// One of the two open shards.
        #[arg(long)]
        shard: String,
        /// The other: its hash-key range must touch the first one's.
        #[arg(long)]
        adjacent: String,
    },
    /// Rescale to N open shards (uniform scaling).
    Scale {
        /// How many open shards to end with.
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
    let location = KinesisLocation::parse(&args.stream)?;
    let name = location.stream.clone();
    let stream = KinesisStream::connect_checked(location)
        .await
        .with_context(|| format!("connecting to Kinesis stream {name}"))?;
    match args.action {
        Action::Create { shards } => {
            stream
                .create(shards)
                .await
                .with_context(|| format!("creating {name}"))?;
            say!("created {name} with {} shards", count(shards.into()));
        }
        Action::Describe => {
            let d = stream.describe().await.with_context(|| format!("describing {name}"))?;
            say!(
                "{}: {}, {} open shards, {} listed, retention {} h",
                d.name,
                d.status,
                count(d.open_shards as u64),
                count(d.shards.len() as u64),
                d.retention_hours
            );
            for s in &d.shards {
                let parents = s.parents().iter().map(ShardId::to_string).collect::<Vec<_>>().join("+");
                say!(
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
            say!("split {shard} into {lo} and {hi}");
        }
        Action::Merge { shard, adjacent } => {
            let child = stream
                .merge(&ShardId(shard.clone()), &ShardId(adjacent.clone()))
                .await
                .with_context(|| format!("merging {shard} and {adjacent}"))?;
            say!("merged {shard} and {adjacent} into {child}");
        }
        Action::Scale { shards } => {
            stream
                .set_shard_count(shards)
                .await
                .with_context(|| format!("rescaling {name}"))?;
            say!("{name} now has {} open shards", count(shards.into()));
        }
        Action::Delete => {
            stream.delete().await.with_context(|| format!("deleting {name}"))?;
            say!("deleted {name}");
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
            say!("created {topic} with {} partitions", count(shards.into()));
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
            say!(
                "{}: {} partitions, {} records kept",
                d.topic,
                count(d.partitions.len() as u64),
                signed(records)
            );
            for p in &d.partitions {
                say!(
                    "  {:14} offsets {:>12}..{:<12} {:>12} records",
                    p.shard.as_str(),
                    p.low,
                    p.high,
                    signed(p.high - p.low)
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
            say!("deleted {topic}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Args;

    /// Every flag and subcommand of `inlet streams` says what it is for in `--help`.
    #[test]
    fn every_flag_and_subcommand_has_help() {
        let cmd = StreamsArgs::augment_args(clap::Command::new("streams"));
        let undocumented = |path: &str, c: &clap::Command| {
            c.get_arguments()
                .filter(|a| a.get_help().is_none() && !["help", "version"].contains(&a.get_id().as_str()))
                .map(|a| format!("{path} --{}", a.get_id()))
                .collect::<Vec<_>>()
        };
        let mut missing = undocumented("streams", &cmd);
        for sub in cmd.get_subcommands() {
            if sub.get_about().is_none() {
                missing.push(format!("streams {}", sub.get_name()));
            }
            missing.extend(undocumented(&format!("streams {}", sub.get_name()), sub));
        }
        assert!(missing.is_empty(), "no help text: {missing:?}");
    }
}
