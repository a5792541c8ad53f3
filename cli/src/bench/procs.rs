//! The processes `inlet bench` starts: each with the path of the report it writes as it exits.
use crate::bench_report;
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A process started by the bench.
#[derive(Debug)]
pub(super) struct Proc {
    pub(super) name: String,
    child: Child,
    /// Where it writes its [`bench_report::Report`].
    pub(super) report: PathBuf,
    exited: Option<ExitStatus>,
}

impl Proc {
    fn poll(&mut self) -> Result<Option<ExitStatus>> {
        if self.exited.is_none() {
            self.exited = self
                .child
                .try_wait()
                .with_context(|| format!("waiting for {}", self.name))?;
        }
        Ok(self.exited)
    }

    pub(super) async fn wait(&mut self, limit: Duration) -> Result<ExitStatus> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.poll()? {
                return Ok(status);
            }
            if started.elapsed() > limit {
                bail!("{} (pid {}) did not exit within {limit:?}", self.name, self.child.id());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Asks the process to stop (SIGTERM: a worker commits, releases its leases, reports).
    pub(super) fn terminate(&mut self) -> Result<()> {
        #[cfg(unix)]
        {
            let status = Command::new("kill")
                .arg("-TERM")
                .arg(self.child.id().to_string())
                .status()
                .context("running kill")?;
            if !status.success() {
                bail!("kill -TERM {} ({}) failed: {status}", self.child.id(), self.name);
            }
            Ok(())
        }
        #[cfg(not(unix))]
        {
            self.child.kill().with_context(|| format!("stopping {}", self.name))
        }
    }
}

/// The processes, in the order they were started; whatever still runs when this is dropped (the
/// bench failed) is killed.
#[derive(Debug, Default)]
pub(super) struct Procs(pub(super) Vec<Proc>);

impl Procs {
    /// Starts `command` as `name`, its stdout discarded, asking it for its report in
    /// `reports/<name>.json`.
    pub(super) fn spawn(&mut self, name: String, mut command: Command, reports: &Path) -> Result<()> {
        let report = reports.join(format!("{name}.json"));
        let child = command
            .env(bench_report::ENV, &report)
            .stdout(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        self.0.push(Proc {
            name,
            child,
            report,
            exited: None,
        });
        Ok(())
    }

    /// Fails if a process has ended before its time (a worker at all, the producer unsuccessfully).
    pub(super) fn check(&mut self) -> Result<()> {
        for p in &mut self.0 {
            if let Some(status) = p.poll()?
                && !(p.name == "produce" && status.success())
            {
                bail!(
                    "{} (pid {}) exited before the bench was over: {status}",
                    p.name,
                    p.child.id()
                );
            }
        }
        Ok(())
    }
}

impl Drop for Procs {
    fn drop(&mut self) {
        for p in &mut self.0 {
            if matches!(p.poll(), Ok(None)) {
                let _ = p.child.kill();
                let _ = p.child.wait();
            }
        }
    }
}
