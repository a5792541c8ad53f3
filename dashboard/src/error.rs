//! The dashboard's error.
use std::net::SocketAddr;

/// What stops the dashboard (bad requests and warehouse failures are answered, not raised).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DashboardError {
    /// The listening socket could not be opened.
    #[error("cannot listen on {addr}")]
    Bind {
        /// Where.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The server failed while serving.
    #[error("serving HTTP failed")]
    Serve(#[source] std::io::Error),
}
