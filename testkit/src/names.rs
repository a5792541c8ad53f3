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
