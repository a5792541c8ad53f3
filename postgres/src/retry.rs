//! Transient faults and the backoff between attempts.
use std::time::Duration;
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
        // No SQLSTATE: the failure happened below SQL (I/O, connect, TLS).
        None => true,
    }
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
