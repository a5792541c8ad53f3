//! `inlet spool inspect|repair DIR`: a producer's on-disk spool, checked and mended.
use crate::human::count;
use crate::stdout::say;
use anyhow::{Context, Result};
use inlet_producer::spool;
use std::path::PathBuf;
use std::process::ExitCode;

/// `inlet spool`.
#[derive(Debug, clap::Args)]
pub struct SpoolArgs {
    #[command(subcommand)]
    pub action: Action,
}

#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// Check every record still to be sent (read only; safe while a producer runs). Exits 1
    /// if the spool is damaged.
    Inspect {
        /// The spool directory (`--spool` / producer.spool).
        dir: PathBuf,
    },
    /// Cut the spool at its first damage, moving the bytes from there on to
    /// `spool.bin.damaged-<byte>` beside it, so a producer can start on it again. Refused
    /// while a producer holds the spool.
    Repair {
        /// The spool directory (`--spool` / producer.spool).
        dir: PathBuf,
    },
}

pub fn run(args: SpoolArgs) -> Result<ExitCode> {
    match args.action {
        Action::Inspect { dir } => {
            let i = spool::inspect(&dir).with_context(|| format!("inspecting the spool in {}", dir.display()))?;
            say!("spool          {}", i.path.display());
            say!(
                "file           {} bytes, sent up to byte {}",
                count(i.file_bytes),
                count(i.settled)
            );
            say!(
                "to send        {} stream records, {} events",
                count(i.pending_records),
                count(i.pending_user_records)
            );
            match i.damage {
                None => {
                    say!("damage         none");
                    Ok(ExitCode::SUCCESS)
                }
                Some(d) => {
                    say!("damage         {d}");
                    say!("               (inlet spool repair {} moves it aside)", dir.display());
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        Action::Repair { dir } => {
            let r = spool::repair(&dir).with_context(|| format!("repairing the spool in {}", dir.display()))?;
            match (r.damage, r.moved_to) {
                (Some(d), Some(to)) => say!(
                    "found {d}; moved it to {}; {} stream records remain to send",
                    to.display(),
                    count(r.pending_records)
                ),
                _ => say!(
                    "the spool is whole; {} stream records to send; nothing changed",
                    count(r.pending_records)
                ),
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
