//! A private server for tests that must stop or freeze one (the shared ones come from
//! `infra/servers.sh`): started by an `infra/` script that prints `ADDRESS PID` once it
//! answers, killed when dropped.
use std::path::{Path, PathBuf};
use std::process::Command;

/// A server of this test's own.
#[derive(Debug)]
pub struct LocalServer {
    /// Where it answers: an endpoint URL or `host:port`, as its script prints it.
    pub address: String,
    /// Its process id (to stop it with SIGSTOP, say).
    pub pid: u32,
    _dir: tempfile::TempDir,
}

impl LocalServer {
    /// Runs `infra/<script> RUN_DIR` and waits for its `ADDRESS PID` line.
    pub fn start(script: &str) -> LocalServer {
        let dir = tempfile::tempdir().unwrap();
        let path = infra_dir().join(script);
        let out = Command::new(&path)
            .arg(dir.path())
            .output()
            .unwrap_or_else(|e| panic!("run {}: {e}", path.display()));
        assert!(
            out.status.success(),
            "infra/{script} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let line = String::from_utf8(out.stdout).unwrap();
        let (address, pid) = line
            .trim()
            .split_once(' ')
            .unwrap_or_else(|| panic!("infra/{script} printed {line:?}, not ADDRESS PID"));
        LocalServer {
            address: address.to_owned(),
            pid: pid.parse().unwrap(),
            _dir: dir,
        }
    }

    /// Sends a signal (`STOP`, `CONT`, `KILL`) to the server.
    pub fn signal(&self, signal: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{signal}"), &self.pid.to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{signal} {}", self.pid);
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-KILL", &self.pid.to_string()]).status();
    }
}

/// The repository's `infra/` directory.
pub fn infra_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra")
}
