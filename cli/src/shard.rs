//! `inlet shard skip`: the operator's way past stream records that cannot be read.
use crate::backends::Locations;
use crate::settings::Overrides;
use crate::stdout::say;
use anyhow::{Context, Result};
use inlet_config::InletConfig;
use inlet_consumer::skip::{self, SkipRequest};
use inlet_seams::{SequenceNumber, ShardId};
use std::process::ExitCode;

/// `inlet shard`.
#[derive(Debug, clap::Args)]
pub struct ShardArgs {
    #[command(subcommand)]
    pub action: Action,
}

impl Overrides for ShardArgs {
    fn apply(&self, c: &mut InletConfig) {
        match &self.action {
            Action::Skip { locations, .. } => locations.apply(c),
        }
    }
    fn resolve(&mut self, c: &InletConfig) {
        match &mut self.action {
            Action::Skip { locations, .. } => locations.resolve(c),
        }
    }
}

#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// Move a shard past records that cannot be read (its worker reports it not ready, and
    /// `/api/health` names it): they are dead-lettered as one `corrupt_record` (field
    /// `unreadable`) with the read error and your reason, in the same fenced commit that moves
    /// the checkpoint past them. Safe while workers run: the lease is taken for the commit,
    /// then handed back.
    Skip {
        #[command(flatten)]
        locations: Locations,
        /// The shard, as `/readyz` and `/api/health` name it.
        shard: String,
        /// Why (kept in the dead letter).
        #[arg(long)]
        reason: String,
        /// The last sequence number to skip. Without it, the range is probed (embedded and
        /// Kafka, whose positions are integers): up to the first position after which a read
        /// succeeds. Kinesis needs it.
        #[arg(long, value_name = "SEQUENCE")]
        through: Option<String>,
        /// Positions the probe tries at most.
        #[arg(long, default_value_t = skip::DEFAULT_MAX_PROBE, value_parser = clap::value_parser!(u64).range(1..))]
        max_probe: u64,
    },
}

pub async fn run(args: ShardArgs) -> Result<ExitCode> {
    match args.action {
        Action::Skip {
            locations,
            shard,
            reason,
            through,
            max_probe,
        } => {
            let through = through
                .map(|t| SequenceNumber::parse(&t))
                .transpose()
                .context("--through")?;
            let stream = locations.existing_stream().await?;
            let warehouse = locations.existing_warehouse().await?;
            let req = SkipRequest {
                shard: ShardId(shard),
                through,
                reason,
                owner: format!("inlet-shard-skip-{}", std::process::id()),
                max_probe,
            };
            let done = skip::skip_unreadable(&*stream, &*warehouse, &req).await?;
            let from = done.from.map_or_else(
                || "the start".to_owned(),
                |c| format!("checkpoint {}/{}", c.sequence, c.sub_sequence),
            );
            say!(
                "shard {}: skipped the records after {from} through {} (one corrupt_record dead letter, field unreadable); workers resume after it",
                req.shard,
                done.through
            );
            say!("read error was: {}", done.read_error);
        }
    }
    Ok(ExitCode::SUCCESS)
}
