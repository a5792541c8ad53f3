//! `inlet dashboard`, and the serving `inlet demo --serve` shares: the analytics page and its
//! JSON API over a warehouse (embedded or PostgreSQL).
use crate::backends::Locations;
use crate::settings::Overrides;
use crate::stdout::say;
use crate::{ops, pipeline};
use anyhow::{Context, Result};
use inlet_config::InletConfig;
use inlet_config::model::DashboardSection;
use inlet_dashboard::Access;
use inlet_dashboard::{Dashboard, DashboardConfig, DashboardError};
use inlet_ops::Health;
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
    /// Address to serve the page and the API on [default: 127.0.0.1:8081; config:
    /// dashboard.listen]. Revenue is business data: set `dashboard.access_token` or
    /// `dashboard.basic_auth` in the configuration, or keep it on loopback.
    #[arg(long)]
    pub listen: Option<SocketAddr>,
}

impl Overrides for DashboardArgs {
    fn apply(&self, c: &mut InletConfig) {
        self.locations.apply(c);
        if let Some(listen) = self.listen {
            c.dashboard.listen = listen;
        }
    }

    fn resolve(&mut self, c: &InletConfig) {
        self.locations.resolve(c);
    }
}

pub async fn run(args: DashboardArgs, config: &InletConfig) -> Result<ExitCode> {
    let endpoint = ops::serve(config, "dashboard", Health::always_ready()).await?;
    let mut settings = DashboardConfig::new(config.dashboard.listen);
    settings.access = access(&config.dashboard);
    serve(args.locations.existing_warehouse().await?, settings)
        .await?
        .until_signal()
        .await?;
    if let Some(e) = endpoint {
        e.stop().await?;
    }
    Ok(ExitCode::SUCCESS)
}

fn access(d: &DashboardSection) -> Access {
    match (&d.access_token, &d.basic_auth) {
        (Some(token), _) => Access::Token(token.clone()),
        (None, Some(basic)) => match basic.split_once(':') {
            Some((user, password)) => Access::Basic {
                user: user.to_owned(),
                password: password.to_owned(),
            },
            None => Access::Open, // refused by the configuration's check
        },
        (None, None) => Access::Open,
    }
}

/// A dashboard serving in the background.
#[derive(Debug)]
pub struct Serving {
    addr: SocketAddr,
    shutdown: CancellationToken,
    task: JoinHandle<Result<(), DashboardError>>,
}

/// Starts serving the dashboard over `warehouse` on `listen`, open to anyone who reaches it
/// (the demo's, on loopback).
pub async fn start(warehouse: Arc<dyn LeasedWarehouse>, listen: SocketAddr) -> Result<Serving> {
    serve(warehouse, DashboardConfig::new(listen)).await
}

async fn serve(warehouse: Arc<dyn LeasedWarehouse>, settings: DashboardConfig) -> Result<Serving> {
    let dashboard = Dashboard::bind(warehouse, settings).await?;
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
        say!("dashboard: http://{}/ (Ctrl-C to stop)", self.addr);
        tokio::select! {
            () = pipeline::wait_for_signal() => self.shutdown.cancel(),
            served = &mut self.task => return Ok(served.context("dashboard task")??),
        }
        Ok(self.task.await.context("dashboard task")??)
    }
}
