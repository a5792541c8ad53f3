//! A worker's commits, grouped: its shard tasks hand their commits here, and whatever has
//! queued while the previous group was being written goes to the warehouse as one group
//! ([`Warehouse::commit_many`]: one transaction where the backend can). A worker holding
//! hundreds of shards then makes a handful of transactions a second instead of one per shard
//! per commit interval. Nothing waits to fill a group, so a lone commit is written at once;
//! each commit is still fenced by its own lease and answered on its own.
use inlet_seams::{ShardCommit, Warehouse, WarehouseError};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Commits written in one group at most.
const MAX_GROUP: usize = 512;

/// Commits waiting at most: a shard task commits one at a time, so this is a bound on a
/// worker's shards committing at once, not a limit anyone reaches in practice.
const QUEUE: usize = 4_096;

/// A commit, and where to send it back with its answer.
type Done = oneshot::Sender<(ShardCommit, Result<(), WarehouseError>)>;

struct Job {
    commit: ShardCommit,
    done: Done,
}

/// The handle shard tasks commit through. The writer task ends when every handle is gone.
#[derive(Clone)]
pub struct Committer {
    jobs: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Committer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Committer").finish_non_exhaustive()
    }
}

impl Committer {
    /// Starts the writer task on `warehouse`.
    pub fn start(warehouse: Arc<dyn Warehouse>) -> Self {
        let (jobs, rx) = mpsc::channel(QUEUE);
        tokio::spawn(write_groups(warehouse, rx));
        Self { jobs }
    }

    /// Commits `commit` with whatever else is waiting: the commit back once it is written,
    /// or why it was not (its own answer, fenced by its own lease).
    pub async fn commit(&self, commit: ShardCommit) -> Result<ShardCommit, WarehouseError> {
        let (done, answer) = oneshot::channel();
        let stopped = || WarehouseError::Database {
            operation: "commit",
            retryable: true,
            source: "the worker's committer has stopped".into(),
        };
        self.jobs.send(Job { commit, done }).await.map_err(|_| stopped())?;
        let (commit, outcome) = answer.await.map_err(|_| stopped())?;
        outcome.map(|()| commit)
    }
}

async fn write_groups(warehouse: Arc<dyn Warehouse>, mut rx: mpsc::Receiver<Job>) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    while rx.recv_many(&mut group, MAX_GROUP).await > 0 {
        let (commits, answers): (Vec<ShardCommit>, Vec<_>) = group.drain(..).map(|j| (j.commit, j.done)).unzip();
        metrics::histogram!(crate::metrics::COMMIT_GROUP_SIZE).record(commits.len() as f64);
        let outcomes = warehouse.commit_many(&commits).await;
        for ((done, commit), outcome) in answers.into_iter().zip(commits).zip(outcomes) {
            // A shard task that stopped waiting has nothing to be told.
            let _ = done.send((commit, outcome));
        }
    }
}
