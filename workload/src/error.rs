//! What can fail while driving a workload.
use inlet_producer::SendError;

/// An operation of this crate that failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkloadError {
    /// Handing a chunk of events to the producer failed.
    #[error("sending events to the producer ({sent} sent before)")]
    SendEvents {
        /// Events handed over before the failing chunk.
        sent: u64,
        /// Why the producer refused them.
        #[source]
        source: SendError,
    },
}

impl WorkloadError {
    /// Whether trying again could help: a full buffer can drain; a closed producer stays
    /// closed and a record too large stays too large.
    pub fn is_retryable(&self) -> bool {
        match self {
            WorkloadError::SendEvents { source, .. } => matches!(source, SendError::Full),
        }
    }
}
