//! The bad-rows file: rejected events, one NDJSON line each, appended and fsynced before
//! the request that carried them is answered.
//!
//! A line: `{"time", "key_id", "app_id", "index", "field", "reason", "format", "event" |
//! "event_base64"}` — `event` is the event's JSON as sent, `event_base64` its protobuf
//! bytes. One thread owns the file and commits in groups: requests that arrive while a
//! write and fsync are under way share the next one.
use crate::body::RawEvent;
use crate::ingest::Rejected;
use base64::Engine;
use serde_json::value::RawValue;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use tokio::sync::{mpsc, oneshot};

/// The bad-rows file failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BadRowsError {
    /// Opening it failed.
    #[error("opening the bad-rows file {path} failed")]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Appending or syncing failed; nothing of the request was kept.
    #[error("appending to the bad-rows file failed: {0}")]
    Append(String),
    /// The writer thread is gone (the collector is shutting down).
    #[error("the bad-rows writer has stopped")]
    Stopped,
}

/// One line of the file.
#[derive(serde::Serialize)]
struct Line<'a> {
    time: String,
    key_id: &'a str,
    app_id: &'a str,
    index: usize,
    field: &'a str,
    reason: &'a str,
    format: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    event: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    event_base64: Option<String>,
}

/// The lines for a request's rejected events.
pub fn lines(rejected: &[Rejected<'_>], key_id: &str, app_id: &str, time: std::time::SystemTime) -> Vec<u8> {
    let time = humantime::format_rfc3339_millis(time).to_string();
    let mut out = Vec::new();
    for r in rejected {
        let (format, event, event_base64) = match &r.raw {
            RawEvent::Json(raw) => ("json", Some(*raw), None),
            RawEvent::Protobuf(bytes) => (
                "protobuf",
                None,
                Some(base64::engine::general_purpose::STANDARD.encode(bytes)),
            ),
        };
        let line = Line {
            time: time.clone(),
            key_id,
            app_id,
            index: r.index,
            field: &r.field,
            reason: &r.reason,
            format,
            event,
            event_base64,
        };
        // Serializing plain strings, numbers and an already-valid RawValue into a Vec
        // cannot fail.
        let _ = serde_json::to_writer(&mut out, &line);
        out.push(b'\n');
    }
    out
}

struct Job {
    lines: Vec<u8>,
    done: oneshot::Sender<Result<(), String>>,
}

/// The writer of the bad-rows file. `close` it to stop its thread.
#[derive(Debug)]
pub struct BadRows {
    tx: mpsc::Sender<Job>,
    thread: std::thread::JoinHandle<()>,
}

impl BadRows {
    /// Opens (creating) the file for appending, and starts its writer thread.
    pub fn open(path: &Path) -> Result<Self, BadRowsError> {
        let open_error = |source| BadRowsError::Open {
            path: path.to_owned(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(open_error)?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(open_error)?;
        let len = file.metadata().map_err(open_error)?.len();
        let (tx, rx) = mpsc::channel(1024);
        let thread = std::thread::Builder::new()
            .name("inlet-bad-rows".into())
            .spawn(move || write_loop(file, len, rx))
            .map_err(open_error)?;
        Ok(Self { tx, thread })
    }

    /// Appends `lines` and fsyncs; returns once they are on disk.
    pub async fn append(&self, lines: Vec<u8>) -> Result<(), BadRowsError> {
        let (done, result) = oneshot::channel();
        self.tx
            .send(Job { lines, done })
            .await
            .map_err(|_| BadRowsError::Stopped)?;
        result
            .await
            .map_err(|_| BadRowsError::Stopped)?
            .map_err(BadRowsError::Append)
    }

    /// Stops the writer once every pending append is done.
    pub async fn close(self) {
        drop(self.tx);
        let thread = self.thread;
        // Joining blocks: do it on the blocking pool. A panic in the writer was already
        // reported to the appends it failed.
        let _ = tokio::task::spawn_blocking(move || thread.join()).await;
    }
}

fn write_loop(mut file: File, mut len: u64, mut rx: mpsc::Receiver<Job>) {
    while let Some(first) = rx.blocking_recv() {
        let mut group = vec![first];
        while group.len() < 256 {
            match rx.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        let result = group
            .iter()
            .try_for_each(|job| file.write_all(&job.lines))
            .and_then(|()| file.sync_data());
        let result = match result {
            Ok(()) => {
                len += group.iter().map(|j| j.lines.len() as u64).sum::<u64>();
                Ok(())
            }
            Err(e) => {
                // Cut off whatever part of the group did get written, so the file holds
                // whole lines only and nothing that was not acknowledged.
                let _ = file.set_len(len);
                tracing::error!(error = %e, requests = group.len(), "appending to the bad-rows file failed");
                Err(e.to_string())
            }
        };
        for job in group {
            let _ = job.done.send(result.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn lines_carry_the_raw_event() {
        let raw: &RawValue = serde_json::from_str(r#"{"eventId": "x",  "n": [1]}"#).unwrap();
        let rejected = [
            Rejected {
                index: 2,
                field: "event_id".into(),
                reason: "bad".into(),
                raw: RawEvent::Json(raw),
            },
            Rejected {
                index: 5,
                field: ".".into(),
                reason: "not protobuf".into(),
                raw: RawEvent::Protobuf(Bytes::from_static(&[0xFF, 0x00])),
            },
        ];
        let time = std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_500);
        let out = String::from_utf8(lines(&rejected, "k", "app", time)).unwrap();
        let lines: Vec<_> = out.lines().collect();
        assert_eq!(
            lines[0],
            r#"{"time":"1970-01-01T00:00:01.500Z","key_id":"k","app_id":"app","index":2,"field":"event_id","reason":"bad","format":"json","event":{"eventId": "x",  "n": [1]}}"#
        );
        let second: serde_json::Value = serde_json::from_str(lines[1]).unwrap();
        assert_eq!(second["event_base64"], "/wA=");
        assert_eq!(second["format"], "protobuf");
    }

    #[tokio::test]
    async fn appends_and_syncs_whole_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/bad.ndjson");
        let rows = BadRows::open(&path).unwrap();
        rows.append(b"{\"a\":1}\n".to_vec()).await.unwrap();
        rows.append(b"{\"b\":2}\n".to_vec()).await.unwrap();
        rows.close().await;
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"a\":1}\n{\"b\":2}\n");
        // Reopening appends.
        let rows = BadRows::open(&path).unwrap();
        rows.append(b"{\"c\":3}\n".to_vec()).await.unwrap();
        rows.close().await;
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 3);
    }
}
