//! `inlet warehouse migrate|compact`: operations on a PostgreSQL warehouse.
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
    /// Apply pending schema migrations (workers also do this at start).
    Migrate,
    /// Fold per-shard partials older than the horizon, in windows closed for their shard,
    /// into one final row per key.
    Compact {
        /// Compact minutes older than this.
        #[arg(long, default_value = "1day", value_parser = humantime::parse_duration)]
        older_than: Duration,
    },
}

pub async fn run(args: WarehouseArgs) -> Result<ExitCode> {
    match args.action {
        Action::Migrate => {
            let applied = args.locations.postgres(false).await?.migrate().await?;
            say!("migrations applied: {applied:?}");
        }
        Action::Compact { older_than } => {
            let now_minute = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_secs() as i64
                / 60;
            let before = now_minute - (older_than.as_secs() / 60) as i64;
            let lateness = inlet_rollup::Lateness::default().allowed_ms;
            let done = args.locations.postgres(true).await?.compact(before, lateness).await?;
            say!(
                "compacted {} partial rows into {} final rows",
                done.partials,
                done.finals
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
