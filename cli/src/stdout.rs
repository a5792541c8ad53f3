//! What commands print on stdout. When its reader goes away (`inlet report | head -1`) the
//! process ends quietly with 141, as a Unix tool killed by SIGPIPE does: Rust ignores
//! SIGPIPE, so `println!` would panic instead. Messages on stderr go through `tell!`, which
//! drops what a closed stderr cannot take (`eprintln!` would panic there too).
use std::io::{ErrorKind, Write};

/// The exit status of a process whose stdout reader went away (128 + SIGPIPE).
pub const CLOSED: u8 = 141;

/// `println!` for stdout that ends the process quietly on a closed pipe.
macro_rules! say {
    () => { $crate::stdout::write(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::stdout::write(format_args!("{}\n", format_args!($($arg)*))) };
}
pub(crate) use say;

/// `eprintln!` that does not panic on a closed stderr (`inlet consume 2>&1 | head`).
macro_rules! tell {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}
pub(crate) use tell;

/// Writes `text` to stdout; see the module.
pub fn write(text: std::fmt::Arguments<'_>) {
    if let Err(e) = std::io::stdout().lock().write_fmt(text) {
        if e.kind() == ErrorKind::BrokenPipe {
            std::process::exit(CLOSED.into());
        }
        tell!("error: cannot write to stdout: {e}");
        std::process::exit(1);
    }
}

/// Whether `error` is stdout's reader having gone away under `inlet replay ndjson` (which
/// writes through a buffer of its own). Only that: a closed socket is a real error.
pub fn is_closed_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|e| {
        matches!(e.downcast_ref(), Some(inlet_replay::ReplayError::Output(io)) if io.kind() == ErrorKind::BrokenPipe)
    })
}
