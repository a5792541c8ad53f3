//! SQLite connections shared by several processes, used from async code.
use rusqlite::{Connection, OpenFlags};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

/// How long a writer waits for another process's transaction before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Opens (creating if asked) a database file for concurrent multi-process use.
pub fn open(path: &Path, create: bool) -> rusqlite::Result<Connection> {
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if create {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    }
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(conn)
}

/// Opens a file and creates its tables (`schema`, idempotent DDL), retrying for a while
/// when another process holds a lock that SQLite does not wait for with its busy handler
/// (switching a new file to WAL, or creating its schema, while another process opens it).
pub fn open_with_schema(path: &Path, schema: &str) -> rusqlite::Result<Connection> {
    let mut attempt = 0;
    loop {
        let result = open(path, true).and_then(|conn| conn.execute_batch(schema).map(|()| conn));
        match result {
            Err(e) if is_retryable(&e) && attempt < 200 => {
                attempt += 1;
                std::thread::sleep(Duration::from_millis(50));
            }
            other => return other,
        }
    }
}

/// One connection, used from async code by running each call on the blocking pool.
#[derive(Debug, Clone)]
pub struct Shared {
    conn: Arc<Mutex<Connection>>,
}

impl Shared {
    /// Wraps a connection.
    pub fn new(conn: Connection) -> Self {
        Self {
            conn: Arc::new(Mutex::new(conn)),
        }
    }

    /// Runs `f` with the connection on tokio's blocking pool. The connection is waited for
    /// here, not on a blocking thread: a worker's hundred shard readers sharing a few
    /// connections would otherwise park a hundred threads on a lock.
    pub async fn call<T, F>(&self, f: F) -> rusqlite::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let mut guard = Arc::clone(&self.conn).lock_owned().await;
        // A panic in `f` leaves the connection consistent (SQLite rolls back an open
        // transaction), so the next call keeps using it.
        tokio::task::spawn_blocking(move || f(&mut guard))
            .await
            .unwrap_or_else(|join| match join.try_into_panic() {
                Ok(panic) => std::panic::resume_unwind(panic),
                // Cancelled: the runtime is shutting down.
                Err(_) => Err(rusqlite::Error::SqliteFailure(
                    rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_INTERRUPT),
                    Some("runtime shutting down".into()),
                )),
            })
    }
}

/// Whether an error is worth a retry: another process held the lock too long, or a local
/// fault that can pass (a full disk gets room, an I/O error was the device's moment). Those
/// are backpressure, like a stream's throttling, not a reason to give records up.
pub fn is_retryable(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(
            rusqlite::ErrorCode::DatabaseBusy
                | rusqlite::ErrorCode::DatabaseLocked
                | rusqlite::ErrorCode::DiskFull
                | rusqlite::ErrorCode::SystemIoFailure
        )
    )
}

/// Boxes an error for a seam error's `source`.
pub(crate) fn boxed(e: rusqlite::Error) -> Box<dyn std::error::Error + Send + Sync> {
    Box::new(e)
}

/// u128 hash keys as 16 big-endian bytes, so that byte order is numeric order.
pub(crate) fn key_bytes(k: u128) -> [u8; 16] {
    k.to_be_bytes()
}

/// Inverse of [`key_bytes`]; `None` for a blob of the wrong length.
pub(crate) fn key_from_bytes(b: &[u8]) -> Option<u128> {
    Some(u128::from_be_bytes(b.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::ffi;

    fn failure(code: std::ffi::c_int) -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(ffi::Error::new(code), None)
    }

    #[test]
    fn a_full_disk_and_io_errors_are_backpressure_and_a_bad_file_is_not() {
        for code in [
            ffi::SQLITE_FULL,
            ffi::SQLITE_IOERR,
            ffi::SQLITE_BUSY,
            ffi::SQLITE_LOCKED,
        ] {
            assert!(is_retryable(&failure(code)), "{code}");
        }
        for code in [
            ffi::SQLITE_CORRUPT,
            ffi::SQLITE_NOTADB,
            ffi::SQLITE_READONLY,
            ffi::SQLITE_CONSTRAINT,
        ] {
            assert!(!is_retryable(&failure(code)), "{code}");
        }
    }
}
