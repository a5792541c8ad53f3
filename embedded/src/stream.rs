//! A durable sharded log in one SQLite file: shards with hash-key ranges, per-shard
//! sequence numbers starting at 1, arrival times. Several processes may write and read it.
use crate::db::{self, Shared, boxed, key_bytes, key_from_bytes};
use async_trait::async_trait;
use bytes::Bytes;
use inlet_seams::{
    HashKeyRange, PutOutcome, PutRecord, ReadBatch, Record, SequenceNumber, Shard, ShardId, ShardReader, StartPosition,
    StreamError, StreamReader, StreamWriter, WriteLimits,
};
use rusqlite::{OptionalExtension, params};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS shards (
    idx INTEGER PRIMARY KEY,
    shard_id TEXT NOT NULL UNIQUE,
    start_key BLOB NOT NULL,
    end_key BLOB NOT NULL,
    parent TEXT,
    adjacent_parent TEXT,
    closed INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS records (
    shard_idx INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    partition_key TEXT NOT NULL,
    explicit_hash_key BLOB,
    data BLOB NOT NULL,
    arrival_ms INTEGER NOT NULL,
    PRIMARY KEY (shard_idx, seq)
) WITHOUT ROWID;
";

/// Most bytes of record data one read returns (as Kinesis `GetRecords` caps a call at 10 MB).
const MAX_BATCH_BYTES: usize = 4 << 20;

/// Read connections a stream value (and its clones) shares among all its shard readers: a
/// worker holding 128 shards reads through these instead of 128 connections, each with its
/// own page cache (up to 2 MiB) and its own thread waiting in a read.
const READ_CONNECTIONS: usize = 4;

/// The embedded stream. Cloning shares the writer connection and the read connections.
#[derive(Debug, Clone)]
pub struct EmbeddedStream {
    path: PathBuf,
    name: String,
    writer: Shared,
    /// Opened at the first shard reader; handed out in turn.
    readers: Arc<tokio::sync::OnceCell<Vec<Shared>>>,
    next_reader: Arc<AtomicUsize>,
    /// Open shards sorted by range start, with their row index: the write routing table.
    open: Arc<Vec<(Shard, i64)>>,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn list_error(name: &str, e: rusqlite::Error) -> StreamError {
    StreamError::ListShards {
        stream: name.to_owned(),
        source: boxed(e),
    }
}

impl EmbeddedStream {
    /// Opens the stream at `path`, creating it with `shards` evenly split shards if the file
    /// does not exist yet. An existing stream keeps its shards.
    pub async fn open_or_create(path: &Path, shards: u32) -> Result<Self, StreamError> {
        let name = path.display().to_string();
        let p = path.to_owned();
        let conn = tokio::task::spawn_blocking(move || -> rusqlite::Result<_> {
            let mut conn = db::open_with_schema(&p, SCHEMA)?;
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let existing: i64 = tx.query_row("SELECT COUNT(*) FROM shards", [], |r| r.get(0))?;
            if existing == 0 {
                for (i, range) in HashKeyRange::split_evenly(shards).into_iter().enumerate() {
                    tx.execute(
                        "INSERT INTO shards (idx, shard_id, start_key, end_key) VALUES (?1, ?2, ?3, ?4)",
                        params![
                            i as i64,
                            ShardId::from_index(i as u32).0,
                            key_bytes(range.start),
                            key_bytes(range.end)
                        ],
                    )?;
                }
            }
            tx.commit()?;
            Ok(conn)
        })
        .await
        .map_err(|e| StreamError::ListShards {
            stream: name.clone(),
            source: Box::new(e),
        })?
        .map_err(|e| list_error(&name, e))?;
        let writer = Shared::new(conn);
        let all = load_shards(&writer, &name).await?;
        let mut open: Vec<(Shard, i64)> = all.into_iter().filter(|(s, _)| !s.closed).collect();
        open.sort_by_key(|(s, _)| s.hash_range.start);
        Ok(Self {
            path: path.to_owned(),
            name,
            writer,
            readers: Arc::default(),
            next_reader: Arc::default(),
            open: Arc::new(open),
        })
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn route(&self, hash_key: u128) -> Option<&(Shard, i64)> {
        // Open ranges tile the key space, so the last range starting at or before the key
        // holds it.
        let i = self.open.partition_point(|(s, _)| s.hash_range.start <= hash_key);
        self.open.get(i.checked_sub(1)?)
    }
}

async fn load_shards(conn: &Shared, name: &str) -> Result<Vec<(Shard, i64)>, StreamError> {
    let rows = conn
        .call(|c| {
            let mut st = c.prepare_cached(
                "SELECT idx, shard_id, start_key, end_key, parent, adjacent_parent, closed FROM shards ORDER BY idx",
            )?;
            let rows = st
                .query_map([], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, Vec<u8>>(2)?,
                        r.get::<_, Vec<u8>>(3)?,
                        r.get::<_, Option<String>>(4)?,
                        r.get::<_, Option<String>>(5)?,
                        r.get::<_, bool>(6)?,
                    ))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
        .await
        .map_err(|e| list_error(name, e))?;
    rows.into_iter()
        .map(|(idx, id, start, end, parent, adjacent, closed)| {
            let (Some(start), Some(end)) = (key_from_bytes(&start), key_from_bytes(&end)) else {
                return Err(StreamError::ListShards {
                    stream: name.to_owned(),
                    source: format!("shard {id} has a malformed hash key range").into(),
                });
            };
            let shard = Shard {
                id: ShardId(id),
                hash_range: HashKeyRange { start, end },
                parent: parent.map(ShardId),
                adjacent_parent: adjacent.map(ShardId),
                closed,
            };
            Ok((shard, idx))
        })
        .collect()
}

#[async_trait]
impl StreamWriter for EmbeddedStream {
    async fn open_shards(&self) -> Result<Vec<Shard>, StreamError> {
        Ok(self.open.iter().map(|(s, _)| s.clone()).collect())
    }

    async fn put_records(&self, records: &[PutRecord]) -> Result<Vec<PutOutcome>, StreamError> {
        let limits = self.limits();
        let mut rows = Vec::with_capacity(records.len());
        let mut outcomes: Vec<Option<PutOutcome>> = vec![None; records.len()];
        for (i, r) in records.iter().enumerate() {
            let size = r.partition_key.len() + r.data.len();
            if size > limits.max_record_bytes || r.partition_key.is_empty() {
                outcomes[i] = Some(PutOutcome::Failed {
                    code: "ValidationException".into(),
                    message: format!(
                        "record {i}: {size} bytes (limit {}) or empty partition key",
                        limits.max_record_bytes
                    ),
                    retryable: false,
                });
                continue;
            }
            let Some((shard, idx)) = self.route(r.hash_key()) else {
                return Err(StreamError::PutRecords {
                    stream: self.name.clone(),
                    records: records.len(),
                    retryable: false,
                    source: "no open shard covers the hash key".into(),
                });
            };
            rows.push((i, *idx, shard.id.clone(), r.clone()));
        }
        let arrival = now_ms();
        let written = self
            .writer
            .call(move |c| {
                let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                let mut next: std::collections::HashMap<i64, i64> = std::collections::HashMap::new();
                let mut out = Vec::with_capacity(rows.len());
                {
                    let mut max_seq =
                        tx.prepare_cached("SELECT COALESCE(MAX(seq), 0) FROM records WHERE shard_idx = ?1")?;
                    let mut insert = tx.prepare_cached(
                        "INSERT INTO records (shard_idx, seq, partition_key, explicit_hash_key, data, arrival_ms)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    )?;
                    for (i, idx, shard, r) in rows {
                        let seq = match next.get_mut(&idx) {
                            Some(s) => {
                                *s += 1;
                                *s
                            }
                            None => {
                                let s = max_seq.query_row([idx], |row| row.get::<_, i64>(0))? + 1;
                                next.insert(idx, s);
                                s
                            }
                        };
                        let ehk = r.explicit_hash_key.map(key_bytes);
                        insert.execute(params![idx, seq, r.partition_key, ehk, &r.data[..], arrival])?;
                        out.push((i, shard, seq));
                    }
                }
                tx.commit()?;
                Ok(out)
            })
            .await
            .map_err(|e| StreamError::PutRecords {
                stream: self.name.clone(),
                records: records.len(),
                retryable: db::is_retryable(&e),
                source: boxed(e),
            })?;
        for (i, shard, seq) in written {
            outcomes[i] = Some(PutOutcome::Written {
                shard,
                sequence: SequenceNumber::from_u64(seq as u64),
            });
        }
        // Every slot was filled: refused above or written in the transaction.
        Ok(outcomes.into_iter().flatten().collect())
    }

    fn limits(&self) -> WriteLimits {
        // Kinesis's record and call sizes, without its per-shard rate: a local file has none.
        WriteLimits {
            shard_rate: None,
            ..WriteLimits::KINESIS
        }
    }
}

#[async_trait]
impl StreamReader for EmbeddedStream {
    async fn list_shards(&self) -> Result<Vec<Shard>, StreamError> {
        Ok(load_shards(&self.writer, &self.name)
            .await?
            .into_iter()
            .map(|(s, _)| s)
            .collect())
    }

    async fn open(&self, shard: &ShardId, from: StartPosition) -> Result<Box<dyn ShardReader>, StreamError> {
        let name = self.name.clone();
        let path = self.path.clone();
        let id = shard.clone();
        let read_err = {
            let (name, id) = (name.clone(), id.clone());
            move |e: rusqlite::Error| StreamError::Read {
                stream: name.clone(),
                shard: id.clone(),
                retryable: db::is_retryable(&e),
                source: boxed(e),
            }
        };
        let readers = self
            .readers
            .get_or_try_init(|| async {
                let mut conns = Vec::with_capacity(READ_CONNECTIONS);
                for _ in 0..READ_CONNECTIONS {
                    let path = path.clone();
                    let conn = tokio::task::spawn_blocking(move || db::open(&path, false))
                        .await
                        .map_err(|e| StreamError::Read {
                            stream: name.clone(),
                            shard: id.clone(),
                            retryable: true,
                            source: Box::new(e),
                        })?
                        .map_err(&read_err)?;
                    conns.push(Shared::new(conn));
                }
                Ok::<_, StreamError>(conns)
            })
            .await?;
        let conn = readers[self.next_reader.fetch_add(1, Ordering::Relaxed) % readers.len()].clone();
        let sid = id.0.clone();
        let found = conn
            .call(move |c| {
                let idx: Option<i64> =
                    c.query_row("SELECT idx FROM shards WHERE shard_id = ?1", [&sid], |r| r.get(0)).optional()?;
                let Some(idx) = idx else { return Ok(None) };
                let after = match from {
                    StartPosition::TrimHorizon => 0,
                    StartPosition::Latest => c.query_row(
                        "SELECT COALESCE(MAX(seq), 0) FROM records WHERE shard_idx = ?1",
                        [idx],
                        |r| r.get(0),
                    )?,
                    StartPosition::AtSequence(s) => s.to_u64().map_or(i64::MAX, |n| n as i64 - 1),
                    StartPosition::AfterSequence(s) => s.to_u64().map_or(i64::MAX, |n| n as i64),
                    StartPosition::AtTimestamp(t) => c.query_row(
                        "SELECT COALESCE(MIN(seq), (SELECT COALESCE(MAX(seq), 0) + 1 FROM records WHERE shard_idx = ?1)) - 1
                         FROM records WHERE shard_idx = ?1 AND arrival_ms >= ?2",
                        params![idx, t],
                        |r| r.get(0),
                    )?,
                };
                Ok(Some((idx, after)))
            })
            .await
            .map_err(&read_err)?;
        let Some((idx, after)) = found else {
            return Err(StreamError::NoSuchShard {
                stream: name,
                shard: id,
            });
        };
        Ok(Box::new(EmbeddedShardReader {
            conn,
            idx,
            after,
            stream: name,
            shard: id,
        }))
    }
}

/// Reads one shard of the embedded stream, through one of the stream's read connections.
#[derive(Debug)]
struct EmbeddedShardReader {
    conn: Shared,
    idx: i64,
    /// The last sequence number returned.
    after: i64,
    stream: String,
    shard: ShardId,
}

#[async_trait]
impl ShardReader for EmbeddedShardReader {
    async fn next_batch(&mut self, max: usize) -> Result<ReadBatch, StreamError> {
        let (idx, after, max) = (self.idx, self.after, max.max(1) as i64);
        let (records, latest) = self
            .conn
            .call(move |c| {
                let mut st = c.prepare_cached(
                    "SELECT seq, partition_key, explicit_hash_key, data, arrival_ms FROM records
                     WHERE shard_idx = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
                )?;
                let mut rows = Vec::new();
                let mut bytes = 0usize;
                let mut q = st.query(params![idx, after, max])?;
                // Bounded in bytes too: a batch of large aggregates would otherwise hold
                // `max` times 50 KiB or more in memory per shard.
                while bytes < MAX_BATCH_BYTES {
                    let Some(r) = q.next()? else { break };
                    let data: Vec<u8> = r.get(3)?;
                    bytes += data.len();
                    rows.push((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, Option<Vec<u8>>>(2)?,
                        data,
                        r.get::<_, i64>(4)?,
                    ));
                }
                let full = rows.len() as i64 == max || bytes >= MAX_BATCH_BYTES;
                drop(q);
                let latest: Option<i64> = if full {
                    c.prepare_cached("SELECT arrival_ms FROM records WHERE shard_idx = ?1 ORDER BY seq DESC LIMIT 1")?
                        .query_row([idx], |r| r.get(0))
                        .optional()?
                } else {
                    None
                };
                Ok((rows, latest))
            })
            .await
            .map_err(|e| StreamError::Read {
                stream: self.stream.clone(),
                shard: self.shard.clone(),
                retryable: db::is_retryable(&e),
                source: boxed(e),
            })?;
        let millis_behind_latest = match (latest, records.last()) {
            (Some(latest), Some(last)) => Some((latest - last.4).max(0)),
            _ => Some(0),
        };
        if let Some(last) = records.last() {
            self.after = last.0;
        }
        let records = records
            .into_iter()
            .map(|(seq, partition_key, ehk, data, arrival_ms)| Record {
                sequence: SequenceNumber::from_u64(seq as u64),
                partition_key,
                explicit_hash_key: ehk.as_deref().and_then(key_from_bytes),
                data: Bytes::from(data),
                arrival_ms,
            })
            .collect();
        // Embedded shards are never closed (no resharding yet), so there is no shard end.
        Ok(ReadBatch {
            records,
            millis_behind_latest,
            shard_end: None,
        })
    }
}
