//! The metrics and health endpoint of a long-running command (`consume`, `produce`,
//! `collector`, `dashboard`, `replay`), when `metrics.listen` is configured.
use anyhow::{Context, Result};
use inlet_config::InletConfig;
use inlet_metric_catalog::Metric;
use inlet_ops::{Exporter, Health, OpsServer};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Every metric any part of the binary records.
pub const CATALOGS: &[&[Metric]] = &[
    inlet_consumer::metrics::CATALOG,
    inlet_producer::metrics::CATALOG,
    inlet_collector::metrics::CATALOG,
    inlet_dashboard::metrics::CATALOG,
    inlet_kinesis::metrics::CATALOG,
    inlet_kafka::metrics::CATALOG,
    inlet_replay::metrics::CATALOG,
];

/// The process's recorder, installed for `role`.
pub fn exporter(role: &str) -> Result<Exporter> {
    Exporter::install(role, CATALOGS).context("installing the metrics recorder")
}

/// A running endpoint; stopped by [`Endpoint::stop`] (or with the process).
#[derive(Debug)]
pub struct Endpoint {
    shutdown: CancellationToken,
    task: JoinHandle<Result<(), inlet_ops::server::ServeError>>,
}

/// Serves `/metrics`, `/healthz` and `/readyz` for `role` if `metrics.listen` is set.
pub async fn serve(config: &InletConfig, role: &str, health: Health) -> Result<Option<Endpoint>> {
    let Some(listen) = config.metrics.listen else {
        return Ok(None);
    };
    let server = OpsServer::bind(listen, Some(exporter(role)?), health).await?;
    tracing::info!("{role}: metrics and health on http://{}/", server.local_addr());
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(server.run(shutdown.clone()));
    Ok(Some(Endpoint { shutdown, task }))
}

impl Endpoint {
    /// Stops serving.
    pub async fn stop(self) -> Result<()> {
        self.shutdown.cancel();
        Ok(self.task.await.context("metrics endpoint task")??)
    }
}
