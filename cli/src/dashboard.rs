//! `inlet dashboard`, and the serving `inlet demo --serve` shares: the analytics page and its
//! JSON API over a warehouse (embedded or PostgreSQL).
use crate::backends::Locations;
use crate::pipeline;
use anyhow::{Context, Result};
use inlet_dashboard::{Dashboard, DashboardConfig, DashboardError};
use inlet_seams::LeasedWarehouse;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// `inlet dashboard`.
#[derive(Debug, clap::Args)]
pub struct DashboardArgs {
    #[command(flatten)]
    pub locations: Locations,
    /// Address to serve the page and the API on (there is no authentication: keep it on
    /// loopback or behind a proxy that has some).
    #[arg(long, default_value = "127.0.0.1:8081")]
    pub listen: SocketAddr,
}

pub async fn run(args: DashboardArgs) -> Result<ExitCode> {
    start(args.locations.warehouse().await?, args.listen)
        .await?
        .until_signal()
        .await?;
    Ok(ExitCode::SUCCESS)
}

/// A dashboard serving in the background.
#[derive(Debug)]
pub struct Serving {
    addr: SocketAddr,
    shutdown: CancellationToken,
    task: JoinHandle<Result<(), DashboardError>>,
}

/// Starts serving the dashboard over `warehouse` on `listen`.
pub async fn start(warehouse: Arc<dyn LeasedWarehouse>, listen: SocketAddr) -> Result<Serving> {
    let dashboard = Dashboard::bind(warehouse, DashboardConfig::new(listen)).await?;
    let addr = dashboard.local_addr();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(dashboard.run(shutdown.clone()));
    Ok(Serving { addr, shutdown, task })
}

impl Serving {
    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Keeps serving until SIGINT/SIGTERM (installing the handler only now, so that a
    /// Ctrl-C before still ends the whole command), then stops.
    pub async fn until_signal(mut self) -> Result<()> {
        println!("dashboard: http://{}/ (Ctrl-C to stop)", self.addr);
        tokio::select! {
            () = pipeline::wait_for_signal() => self.shutdown.cancel(),
            served = &mut self.task => return Ok(served.context("dashboard task")??),
        }
        Ok(self.task.await.context("dashboard task")??)
    }
}
