//! Retrying: which faults are transient, the backoff, and the runner that retries an
//! operation's attempts (`PgWarehouse::run`).
use crate::tls::TlsError;
use crate::warehouse::PgWarehouse;
use deadpool_postgres::{Object, Pool};
use inlet_seams::WarehouseError;
use std::time::{Duration, Instant};
use tokio_postgres::error::SqlState;

/// Whether an attempt that failed with `e` may succeed if tried again.
pub fn is_transient(e: &tokio_postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    match e.code() {
        Some(code) => [
            SqlState::T_R_SERIALIZATION_FAILURE,
            SqlState::T_R_DEADLOCK_DETECTED,
            SqlState::ADMIN_SHUTDOWN,
            SqlState::CRASH_SHUTDOWN,
            SqlState::CANNOT_CONNECT_NOW,
            SqlState::CONNECTION_EXCEPTION,
            SqlState::CONNECTION_FAILURE,
            SqlState::CONNECTION_DOES_NOT_EXIST,
            SqlState::TOO_MANY_CONNECTIONS,
            SqlState::LOCK_NOT_AVAILABLE,
        ]
        .contains(code),
        // No SQLSTATE: the failure happened below SQL (I/O, connect, TLS), and may pass,
        // unless the server's certificate was refused: it will be again.
        None => !certificate_refused(e),
    }
}

/// Whether `e` was caused by a refused server certificate (or a host it cannot name).
fn certificate_refused(e: &tokio_postgres::Error) -> bool {
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        if c.downcast_ref::<TlsError>().is_some_and(TlsError::is_permanent) {
            return true;
        }
        cause = c.source();
    }
    false
}

/// Whether a pool error may go away (the server is restarting or unreachable).
pub fn is_transient_pool(e: &deadpool_postgres::PoolError) -> bool {
    match e {
        deadpool_postgres::PoolError::Backend(e) => is_transient(e),
        deadpool_postgres::PoolError::Timeout(_) => true,
        deadpool_postgres::PoolError::Closed
        | deadpool_postgres::PoolError::NoRuntimeSpecified
        | deadpool_postgres::PoolError::PostCreateHook(_) => false,
    }
}

/// Delay before attempt `attempt` (1-based): 50 ms doubling to 2 s.
pub fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(50u64.saturating_mul(1 << attempt.min(6))).min(Duration::from_secs(2))
}

/// Why one attempt failed.
#[derive(Debug)]
pub(crate) enum Attempt {
    Pool(deadpool_postgres::PoolError),
    Sql(tokio_postgres::Error),
}

/// A connection from the pool, for [`PgWarehouse::run`]'s operations.
pub(crate) async fn connect(pool: &Pool) -> Result<Object, Attempt> {
    pool.get().await.map_err(Attempt::Pool)
}

impl From<tokio_postgres::Error> for Attempt {
    fn from(e: tokio_postgres::Error) -> Self {
        Attempt::Sql(e)
    }
}

impl Attempt {
    fn transient(&self) -> bool {
        match self {
            Attempt::Pool(e) => is_transient_pool(e),
            Attempt::Sql(e) => is_transient(e),
        }
    }
    fn into_source(self) -> Box<dyn std::error::Error + Send + Sync> {
        match self {
            Attempt::Pool(e) => Box::new(e),
            Attempt::Sql(e) => Box::new(e),
        }
    }
}

pub(crate) fn database(
    operation: &'static str,
    retryable: bool,
    source: Box<dyn std::error::Error + Send + Sync>,
) -> WarehouseError {
    WarehouseError::Database {
        operation,
        retryable,
        source,
    }
}

impl PgWarehouse {
    /// Runs `op` (which takes a connection from the pool it is given), retrying transient
    /// faults for `retry_for`.
    pub(crate) async fn run<T, F, Fut>(&self, operation: &'static str, op: F) -> Result<T, WarehouseError>
    where
        F: Fn(Pool) -> Fut,
        Fut: std::future::Future<Output = Result<T, Attempt>>,
    {
        self.run_for(operation, self.config.retry_for, op).await
    }

    /// [`PgWarehouse::run`], retrying transient faults for `budget`.
    pub(crate) async fn run_for<T, F, Fut>(
        &self,
        operation: &'static str,
        budget: Duration,
        op: F,
    ) -> Result<T, WarehouseError>
    where
        F: Fn(Pool) -> Fut,
        Fut: std::future::Future<Output = Result<T, Attempt>>,
    {
        let started = Instant::now();
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let result = op(self.pool.clone()).await;
            match result {
                Ok(v) => return Ok(v),
                Err(e) if e.transient() && started.elapsed() < budget => {
                    tracing::warn!(operation, attempt, error = %DisplayAttempt(&e), "transient database fault; retrying");
                    tokio::time::sleep(backoff(attempt)).await;
                }
                Err(e) => {
                    let retryable = e.transient();
                    return Err(database(operation, retryable, e.into_source()));
                }
            }
        }
    }
}

struct DisplayAttempt<'a>(&'a Attempt);

impl std::fmt::Display for DisplayAttempt<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Attempt::Pool(e) => write!(f, "{e}"),
            Attempt::Sql(e) => match e.as_db_error() {
                Some(db) => write!(f, "{}: {}", db.code().code(), db.message()),
                None => write!(f, "{e}"),
            },
        }
    }
}
