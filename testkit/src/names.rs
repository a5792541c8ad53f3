//! Names and locations of the servers tests share.
use std::sync::atomic::{AtomicU32, Ordering};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A name no other test uses (process id, a counter, the clock's nanoseconds).
pub fn unique_name(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{prefix}-{}-{}-{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// The value of `var`, which `infra/servers.sh` sets to where `what` runs. Panics when it is
/// not set: the tests that call this are `#[ignore]`d, and run only through `infra/test.sh`.
pub fn server_var(var: &str, what: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is not set: this test needs {what}; run the tests through infra/test.sh, which starts it")
    })
}

/// The database URL `url` (`postgres://user@host:port/db?sslmode=...`) with database `name`
/// instead of its own, the query (TLS settings, say) kept: a fresh database on the shared
/// server, reached as the server's URL says.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url.split_at(url.find('?').unwrap_or(url.len()));
    let host_start = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[host_start..].find('/').map_or(base.len(), |i| host_start + i);
    format!("{}/{name}{query}", &base[..path_start])
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn with_database_swaps_the_path_and_keeps_the_query() {
        let url = "postgres://u:p@127.0.0.1:5432/postgres?sslmode=verify-full&sslrootcert=/tmp/x/ca.pem";
        assert_eq!(
            with_database(url, "t1"),
            "postgres://u:p@127.0.0.1:5432/t1?sslmode=verify-full&sslrootcert=/tmp/x/ca.pem"
        );
        assert_eq!(with_database("postgres://u@h/db", "t2"), "postgres://u@h/t2");
        assert_eq!(with_database("postgres://u@h:1", "t3"), "postgres://u@h:1/t3");
        assert_eq!(
            with_database("postgres://u@h?sslmode=require", "t4"),
            "postgres://u@h/t4?sslmode=require"
        );
    }
}
