//! `inlet warehouse migrate|compact`: operations on a warehouse.
use crate::backends::Locations;
use crate::stdout::say;
use anyhow::Result;
use std::process::ExitCode;
use std::time::Duration;

/// `inlet warehouse`.
#[derive(Debug, clap::Args)]
pub struct WarehouseArgs {
    #[command(flatten)]
    pub locations: Locations,
    #[command(subcommand)]
    pub action: Action,
}

#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// Apply pending schema migrations of a PostgreSQL warehouse (workers also do this at
    /// start).
    Migrate,
    /// Fold every shard's final minutes into one row per minute and key, as workers do every
    /// `consumer.compact_every`.
    Compact {
        /// Final minutes each shard keeps unfolded behind its open ones (event time): the
        /// span `inlet replay rebuild` can still replace.
        #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
        keep: Duration,
    },
}

pub async fn run(args: WarehouseArgs) -> Result<ExitCode> {
    match args.action {
        Action::Migrate => {
            let applied = args.locations.postgres(false).await?.migrate().await?;
            say!("migrations applied: {applied:?}");
        }
        Action::Compact { keep } => {
            let keep_minutes = i64::try_from(keep.as_secs() / 60)?;
            let done = args.locations.existing_warehouse().await?.compact(keep_minutes).await?;
            say!(
                "folded {} per-shard rows into {} rows",
                crate::human::count(done.partials),
                crate::human::count(done.folded)
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
