//! What the multi-process worker tests share: a data directory with a stream URL and a
//! workload, the `inlet` commands run on them, and waits on the shared warehouse.
#![allow(dead_code)] // each test file uses a part
use inlet_embedded::EmbeddedWarehouse;
use inlet_seams::{Lease, Warehouse};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub(crate) const FAILOVER: Duration = Duration::from_secs(4);

pub(crate) struct Setup {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) url: String,
    pub(crate) events: u64,
    pub(crate) seed: &'static str,
    /// More workload flags (`--invalid-share 0`...), given to produce and verify alike.
    pub(crate) flags: Vec<String>,
}

impl Setup {
    pub(crate) fn new(url: String, events: u64, seed: &'static str) -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            url,
            events,
            seed,
            flags: Vec::new(),
        }
    }

    /// A setup on the embedded stream of its own data directory.
    pub(crate) fn embedded(events: u64, seed: &'static str) -> Self {
        let mut s = Self::new(String::new(), events, seed);
        s.url = format!("embedded://{}", s.d().join("stream.db").display());
        s
    }

    /// The same setup with more workload flags.
    pub(crate) fn with_flags(mut self, flags: &[&str]) -> Self {
        self.flags.extend(flags.iter().map(|f| (*f).to_owned()));
        self
    }

    pub(crate) fn d(&self) -> &Path {
        self.dir.path()
    }

    pub(crate) fn inlet(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_inlet"));
        c.args(args).env("RUST_LOG", "warn");
        c
    }

    pub(crate) fn workload(&self) -> Vec<String> {
        vec![
            "--events".into(),
            self.events.to_string(),
            "--seed".into(),
            self.seed.into(),
            "--late-share".into(),
            "0".into(),
            "--stream".into(),
            self.url.clone(),
            "--data-dir".into(),
            self.d().display().to_string(),
        ]
        .into_iter()
        .chain(self.flags.iter().cloned())
        .collect()
    }

    pub(crate) fn streams(&self, args: &[&str]) {
        let out = self
            .inlet(&[&["streams", "--stream", &self.url][..], args].concat())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "inlet streams {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub(crate) fn produce(&self) -> Child {
        self.produce_at(None)
    }

    /// `inlet produce` of the workload, at most `rate` events per second if set: a run long
    /// enough for what a test does in the middle of it, however fast the machine.
    pub(crate) fn produce_at(&self, rate: Option<u64>) -> Child {
        let mut args = vec!["produce".to_owned()];
        args.extend(self.workload());
        if let Some(r) = rate {
            args.extend(["--rate".to_owned(), r.to_string()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.inlet(&args).stdout(Stdio::piped()).spawn().unwrap()
    }

    pub(crate) fn consumer(&self, id: &str) -> Child {
        self.consumer_logging(id, "warn")
    }

    /// A worker whose log (at `level`) is kept on its stderr pipe.
    pub(crate) fn consumer_logging(&self, id: &str, level: &str) -> Child {
        self.consume_command(id, &[])
            .env("RUST_LOG", level)
            .stderr(if level == "warn" {
                Stdio::inherit()
            } else {
                Stdio::piped()
            })
            .spawn()
            .unwrap()
    }

    /// A worker with more `inlet consume` flags (`--archive DIR`...).
    pub(crate) fn consumer_with(&self, id: &str, extra: &[&str]) -> Child {
        self.consume_command(id, extra).spawn().unwrap()
    }

    fn consume_command(&self, id: &str, extra: &[&str]) -> Command {
        let failover = format!("{}s", FAILOVER.as_secs());
        let d = self.d().display().to_string();
        let base = [
            "consume",
            "--worker-id",
            id,
            "--failover",
            &failover,
            "--stream",
            &self.url,
            "--data-dir",
            &d,
        ];
        let mut c = self.inlet(&[&base[..], extra].concat());
        c.stdout(Stdio::null());
        c
    }

    pub(crate) async fn warehouse(&self) -> EmbeddedWarehouse {
        open_warehouse(self.d()).await
    }

    pub(crate) fn verify(&self) {
        let w = self.workload();
        let args: Vec<&str> = std::iter::once("verify").chain(w.iter().map(String::as_str)).collect();
        let out = self.inlet(&args).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("rollups equal the generator's totals exactly: yes"),
            "verify failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The warehouse in data directory `d`, once a worker has made it (60 s at most).
pub(crate) async fn open_warehouse(d: &Path) -> EmbeddedWarehouse {
    let path = d.join("warehouse.db");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !path.exists() {
        assert!(Instant::now() < deadline, "no warehouse");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    EmbeddedWarehouse::open(&path).await.unwrap()
}

pub(crate) fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{sig}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

pub(crate) fn wait_output(mut child: Child, limit: Duration) -> Output {
    let started = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("process {} did not exit within {limit:?}", child.id());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits for `inlet produce` to end (5 minutes at most); it must have succeeded.
pub(crate) fn wait_produced(producer: Child) {
    let out = wait_output(producer, Duration::from_secs(300));
    assert!(
        out.status.success(),
        "inlet produce failed:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// Stops a worker with SIGTERM; it must exit cleanly within a minute.
pub(crate) fn stop(worker: Child) {
    signal(&worker, "TERM");
    let out = wait_output(worker, Duration::from_secs(60));
    assert!(out.status.success(), "a worker exited with {:?}", out.status);
}

/// Polls `done` every 100 ms until it holds; fails with `what` after `limit`.
pub(crate) async fn wait_for(limit: Duration, what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done().await {
        assert!(Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub(crate) async fn handled(w: &EmbeddedWarehouse) -> i64 {
    let t = w.totals().await.unwrap();
    t.read()
}

pub(crate) fn held_by<'a>(leases: &'a [Lease], owner: &str) -> Vec<&'a Lease> {
    leases.iter().filter(|l| l.owner.as_deref() == Some(owner)).collect()
}

pub(crate) async fn wait_until_handled(w: &EmbeddedWarehouse, events: u64, limit: Duration) {
    inlet_testkit::wait_until_read(w, events, limit).await;
    // A commit or two more: nothing may be counted twice after completion either.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(handled(w).await, events as i64, "nothing counted twice");
}
