//! The operations endpoint: `GET /metrics` (Prometheus text), `GET /healthz`, `GET /readyz`,
//! on an address of its own so it can stay off the public network.
use crate::exporter::Exporter;
use crate::health::Health;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::net::SocketAddr;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The endpoint could not be served.
#[derive(Debug, thiserror::Error)]
#[error("metrics and health endpoint on {addr}: {source}")]
pub struct ServeError {
    addr: SocketAddr,
    source: std::io::Error,
}

#[derive(Debug, Clone)]
struct Ops {
    exporter: Option<Exporter>,
    health: Health,
}

/// The three routes, for a server of the caller's to merge into its own router.
pub fn routes(exporter: Option<Exporter>, health: Health) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(Ops { exporter, health })
}

async fn metrics(State(ops): State<Ops>) -> Response {
    match &ops.exporter {
        Some(e) => ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], e.render()).into_response(),
        None => (StatusCode::NOT_FOUND, "metrics are not exported by this process\n").into_response(),
    }
}

async fn readyz(State(ops): State<Ops>) -> Response {
    match ops.health.readiness() {
        Ok(()) => "ready\n".into_response(),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {why}\n")).into_response(),
    }
}

/// A bound operations endpoint.
#[derive(Debug)]
pub struct OpsServer {
    listener: TcpListener,
    addr: SocketAddr,
    ops: Ops,
}

impl OpsServer {
    /// Binds `listen` (port 0: any free port).
    pub async fn bind(listen: SocketAddr, exporter: Option<Exporter>, health: Health) -> Result<Self, ServeError> {
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|source| ServeError { addr: listen, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| ServeError { addr: listen, source })?;
        Ok(Self {
            listener,
            addr,
            ops: Ops { exporter, health },
        })
    }

    /// Where it listens.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until `shutdown`, keeping the histograms folded meanwhile.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), ServeError> {
        let Ops { exporter, health } = self.ops;
        if let Some(e) = exporter.clone() {
            tokio::spawn(e.upkeep_until(shutdown.clone()));
        }
        let app = routes(exporter, health);
        let addr = self.addr;
        axum::serve(self.listener, app)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await
            .map_err(|source| ServeError { addr, source })
    }
}
