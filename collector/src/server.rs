//! The server: a bounded accept loop, HTTP/1.1 connections with a header deadline, and
//! graceful shutdown (stop accepting, let accepted requests finish, flush the producer and
//! the bad rows, exit).
use crate::bad_rows::{BadRows, BadRowsError};
use crate::config::Settings;
use crate::metrics as m;
use crate::routes::{self, AppState};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use inlet_ops::Exporter;
use inlet_producer::{Producer, ProducerError, ProducerStats};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Largest request head (request line and headers), bytes; larger ones are answered 431.
const MAX_HEAD_BYTES: usize = 64 << 10;

/// The collector's error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CollectorError {
    /// Binding the listen address failed.
    #[error("listening on {addr} failed")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The bad-rows file could not be opened.
    #[error(transparent)]
    BadRows(#[from] BadRowsError),
    /// Flushing or closing the producer failed at shutdown.
    #[error("closing the producer failed")]
    CloseProducer(#[source] ProducerError),
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// The producer's final counters (`accepted = delivered + failed` after a clean close).
    pub producer: ProducerStats,
    /// Whether every accepted request finished within the grace period.
    pub drained: bool,
}

/// A bound collector, ready to [`run`](Collector::run).
#[derive(Debug)]
pub struct Collector {
    listener: TcpListener,
    state: Arc<AppState>,
}

impl Collector {
    /// Opens the bad-rows file and binds the listen address. The producer writes accepted
    /// events; the collector closes it on shutdown. `exporter` serves `GET /metrics`.
    pub async fn bind(
        settings: Settings,
        producer: Producer,
        exporter: Option<Exporter>,
    ) -> Result<Self, CollectorError> {
        let bad_rows = BadRows::open(&settings.bad_rows_path)?;
        let addr = settings.listen;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| CollectorError::Bind { addr, source })?;
        let state = Arc::new(AppState::new(settings, producer, bad_rows, exporter));
        Ok(Self { listener, state })
    }

    /// The address it listens on (the real port when the configuration asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        // A bound listener always has a local address; fall back to the configured one.
        self.listener.local_addr().unwrap_or(self.state.settings.listen)
    }

    /// Serves until `shutdown` is cancelled, then shuts down gracefully.
    pub async fn run(self, shutdown: CancellationToken) -> Result<Summary, CollectorError> {
        let Collector { listener, state } = self;
        let settings = &state.settings;
        tracing::info!(
            addr = %listener.local_addr().map_or_else(|_| settings.listen.to_string(), |a| a.to_string()),
            keys = settings.keys.keys().len(),
            bad_rows = %settings.bad_rows_path.display(),
            "collector listening"
        );
        let connections = TaskTracker::new();
        let slots = Arc::new(Semaphore::new(settings.limits.max_connections));
        let upkeep = state
            .exporter
            .clone()
            .map(|h| tokio::spawn(h.upkeep_until(shutdown.clone())));
        let router = routes::router(Arc::clone(&state));
        loop {
            let slot = tokio::select! {
                () = shutdown.cancelled() => break,
                slot = Arc::clone(&slots).acquire_owned() => match slot {
                    Ok(slot) => slot,
                    Err(_) => break, // never closed
                },
            };
            let stream = tokio::select! {
                () = shutdown.cancelled() => break,
                accepted = accept(&listener) => accepted,
            };
            let service = TowerToHyperService::new(router.clone());
            let header_timeout = settings.timeouts.header;
            let shutdown = shutdown.clone();
            connections.spawn(async move {
                let gauge = metrics::gauge!(m::OPEN_CONNECTIONS);
                gauge.increment(1.0);
                serve_connection(stream, service, header_timeout, shutdown).await;
                gauge.decrement(1.0);
                drop(slot);
            });
        }

        // Stop accepting; let every accepted request finish (connections close once idle).
        drop(listener);
        state.shutting_down.store(true, Relaxed);
        connections.close();
        let grace = settings.timeouts.shutdown_grace;
        tracing::info!(connections = connections.len(), grace = ?grace, "shutting down: draining connections");
        let drained = tokio::time::timeout(grace, connections.wait()).await.is_ok();
        if !drained {
            tracing::warn!(
                connections = connections.len(),
                "shutdown grace period over with requests still running"
            );
        }
        if let Some(upkeep) = upkeep {
            upkeep.abort();
        }
        drop(router);
        let producer = match Arc::try_unwrap(state) {
            Ok(state) => {
                state.bad_rows.close().await;
                state.producer.close().await.map_err(CollectorError::CloseProducer)?
            }
            // Requests still running hold the state: flush what they handed over.
            Err(state) => {
                state.producer.flush().await.map_err(CollectorError::CloseProducer)?;
                state.producer.stats()
            }
        };
        tracing::info!(
            accepted = producer.accepted,
            delivered = producer.delivered,
            failed = producer.failed,
            "collector stopped"
        );
        Ok(Summary { producer, drained })
    }
}

/// Accepts the next connection; errors (out of file descriptors, a connection reset
/// before it was accepted) are logged and waited out, never fatal.
async fn accept(listener: &TcpListener) -> TcpStream {
    let mut backoff = Duration::from_millis(10);
    loop {
        match listener.accept().await {
            Ok((stream, _peer)) => {
                // Responses are written whole; don't hold their last segment back.
                let _ = stream.set_nodelay(true);
                return stream;
            }
            Err(e) => {
                tracing::warn!(error = %e, "accepting a connection failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    }
}

async fn serve_connection(
    stream: TcpStream,
    service: TowerToHyperService<axum::Router>,
    header_timeout: Duration,
    shutdown: CancellationToken,
) {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .max_buf_size(MAX_HEAD_BYTES)
        .keep_alive(true);
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    let mut conn = std::pin::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        () = shutdown.cancelled() => {
            // Finish the request under way, if any, then close.
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        // Clients that vanish, send garbage or are too slow: not the server's problem.
        tracing::debug!(error = %e, "connection ended with an error");
    }
}
