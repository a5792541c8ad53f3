//! Progress: live counters for the command's bars, and the progress file that makes a replay
//! resumable.
use crate::ReplayError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Counters a replay updates as it goes (read them from another task to draw progress).
#[derive(Debug, Default)]
pub struct Counters {
    /// Stream records read.
    pub records: AtomicU64,
    /// Events (user records) that passed the filters and were replayed (or counted).
    pub events: AtomicU64,
    /// Shards to read.
    pub shards: AtomicU64,
    done_per_shard: Mutex<BTreeMap<String, f64>>,
}

impl Counters {
    /// Records how much of `shard` has been read (0 to 1).
    pub fn set_fraction(&self, shard: &str, fraction: f64) {
        if let Ok(mut m) = self.done_per_shard.lock() {
            m.insert(shard.to_owned(), fraction.clamp(0.0, 1.0));
            let done = m.values().filter(|f| **f >= 1.0).count();
            metrics::gauge!(crate::metrics::SHARDS_DONE).set(done as f64);
        }
    }

    /// The share of the whole replay done, in thousandths.
    pub fn permille(&self) -> u64 {
        let shards = self.shards.load(Relaxed).max(1) as f64;
        let done: f64 = self.done_per_shard.lock().map(|m| m.values().sum()).unwrap_or(0.0);
        (done / shards * 1000.0).round() as u64
    }

    pub(crate) fn add(&self, records: u64, events: u64) {
        self.records.fetch_add(records, Relaxed);
        self.events.fetch_add(events, Relaxed);
        metrics::counter!(crate::metrics::RECORDS_READ_TOTAL).increment(records);
        metrics::counter!(crate::metrics::EVENTS_REPLAYED_TOTAL).increment(events);
    }
}

/// What a progress file holds. It is only reused by a run with the same `fingerprint` (the
/// same source, range, filters and target).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProgressState {
    /// What the run does, as text.
    pub fingerprint: String,
    /// Shards finished.
    pub done: Vec<String>,
    /// Per shard, the last sequence number fully replayed (emit and NDJSON).
    pub after: BTreeMap<String, String>,
}

/// A progress file, written atomically (temporary file, fsync, rename).
#[derive(Debug)]
pub struct ProgressFile {
    path: Option<PathBuf>,
    /// The state.
    pub state: ProgressState,
}

impl ProgressFile {
    /// The fingerprint of a replay: every setting that decides what it does, so that a
    /// progress file is only resumed by the same replay.
    pub fn fingerprint(settings: &[&dyn std::fmt::Debug]) -> String {
        settings.iter().map(|s| format!("{s:?}")).collect::<Vec<_>>().join(" ")
    }

    /// Loads `path` if it exists and has the same fingerprint; otherwise starts afresh.
    /// `None` keeps progress in memory only.
    pub fn load(path: Option<&Path>, fingerprint: &str) -> Result<Self, ReplayError> {
        let fresh = ProgressState {
            fingerprint: fingerprint.to_owned(),
            ..Default::default()
        };
        let state = match path.map(std::fs::read) {
            Some(Ok(bytes)) => {
                let state: ProgressState = serde_json::from_slice(&bytes).map_err(|e| ReplayError::Progress {
                    path: path.map(Path::to_owned).unwrap_or_default(),
                    source: e.into(),
                })?;
                if state.fingerprint == fingerprint {
                    tracing::info!(done = state.done.len(), "resuming from the progress file");
                    state
                } else {
                    tracing::warn!("the progress file is for another replay; starting afresh");
                    fresh
                }
            }
            Some(Err(e)) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(ReplayError::Progress {
                    path: path.map(Path::to_owned).unwrap_or_default(),
                    source: e,
                });
            }
            _ => fresh,
        };
        Ok(Self {
            path: path.map(Path::to_owned),
            state,
        })
    }

    /// Whether `shard` was finished by an earlier run.
    pub fn is_done(&self, shard: &str) -> bool {
        self.state.done.iter().any(|d| d == shard)
    }

    /// Saves the state.
    pub fn save(&self) -> Result<(), ReplayError> {
        let Some(path) = &self.path else { return Ok(()) };
        let err = |source| ReplayError::Progress {
            path: path.clone(),
            source,
        };
        let tmp = path.with_extension("tmp");
        let json = serde_json::to_vec_pretty(&self.state).map_err(|e| err(e.into()))?;
        let mut f = std::fs::File::create(&tmp).map_err(err)?;
        f.write_all(&json).map_err(err)?;
        f.sync_all().map_err(err)?;
        std::fs::rename(&tmp, path).map_err(err)
    }

    /// Removes the file: the run is complete, and running it again redoes it.
    pub fn remove(&self) -> Result<(), ReplayError> {
        match &self.path {
            Some(p) => match std::fs::remove_file(p) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(ReplayError::Progress {
                    path: p.clone(),
                    source: e,
                }),
                _ => Ok(()),
            },
            None => Ok(()),
        }
    }
}
