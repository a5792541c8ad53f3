//! Liveness and readiness, as Kubernetes probes ask: `/healthz` answers while the process
//! serves at all; `/readyz` asks the process's own check (a worker: its lease rounds succeed;
//! a producer: the stream takes writes).
use std::fmt;
use std::sync::Arc;

/// Whether the process is ready, and if not, why (said in the 503's body).
pub type Readiness = Result<(), String>;

/// The readiness check, evaluated at each `/readyz`; cheap to clone.
#[derive(Clone)]
pub struct Health {
    check: Arc<dyn Fn() -> Readiness + Send + Sync>,
}

impl Health {
    /// Readiness decided by `check`.
    pub fn new(check: impl Fn() -> Readiness + Send + Sync + 'static) -> Self {
        Self { check: Arc::new(check) }
    }

    /// Ready as soon as it serves (a process with nothing to wait for).
    pub fn always_ready() -> Self {
        Self::new(|| Ok(()))
    }

    /// Asks now.
    pub fn readiness(&self) -> Readiness {
        (self.check)()
    }
}

impl fmt::Debug for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Health")
            .field("ready", &self.readiness().is_ok())
            .finish()
    }
}
