//! Shared by the producer's integration tests: a fresh embedded stream, a writer that holds
//! every call until the test lets it through, and one that refuses records or is down
//! (fault injection on top of the real embedded stream).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use async_trait::async_trait;
use inlet_embedded::EmbeddedStream;
use inlet_seams::{PutOutcome, PutRecord, Shard, StreamError, StreamWriter, WriteLimits};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use tokio::sync::Semaphore;

/// A new embedded stream of `shards` shards in a temp dir (kept alive by the returned guard).
pub(crate) async fn stream(shards: u32) -> (tempfile::TempDir, Arc<EmbeddedStream>) {
    let dir = tempfile::tempdir().unwrap();
    let s = EmbeddedStream::open_or_create(&dir.path().join("s.db"), shards)
        .await
        .unwrap();
    (dir, Arc::new(s))
}

/// Holds every `put_records` call until `gate` has a permit for it.
#[derive(Debug)]
pub(crate) struct Gated {
    pub(crate) inner: Arc<EmbeddedStream>,
    pub(crate) gate: Arc<Semaphore>,
}

#[async_trait]
impl StreamWriter for Gated {
    async fn open_shards(&self) -> Result<Vec<Shard>, StreamError> {
        self.inner.open_shards().await
    }
    async fn put_records(&self, records: &[PutRecord]) -> Result<Vec<PutOutcome>, StreamError> {
        self.gate.acquire().await.unwrap().forget();
        self.inner.put_records(records).await
    }
    fn limits(&self) -> WriteLimits {
        self.inner.limits()
    }
}

/// A writer in front of the real stream that refuses every record as the stream would refuse
/// a malformed one (not retryable), or fails whole calls as an unavailable stream does
/// (retryable) while `down` is set.
#[derive(Debug)]
pub(crate) struct Faulty {
    pub(crate) inner: Arc<EmbeddedStream>,
    pub(crate) refuse: bool,
    pub(crate) down: AtomicBool,
}

#[async_trait]
impl StreamWriter for Faulty {
    async fn open_shards(&self) -> Result<Vec<Shard>, StreamError> {
        self.inner.open_shards().await
    }
    async fn put_records(&self, records: &[PutRecord]) -> Result<Vec<PutOutcome>, StreamError> {
        if self.refuse {
            return Ok(records
                .iter()
                .map(|_| PutOutcome::Failed {
                    code: "ValidationException".into(),
                    message: "refused by the test".into(),
                    retryable: false,
                })
                .collect());
        }
        if self.down.load(SeqCst) {
            return Err(StreamError::PutRecords {
                stream: "test".into(),
                records: records.len(),
                retryable: true,
                source: "stream unavailable (injected)".into(),
            });
        }
        self.inner.put_records(records).await
    }
    fn limits(&self) -> WriteLimits {
        self.inner.limits()
    }
}
