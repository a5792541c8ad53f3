//! The archive on a local directory: hourly partitions of per-shard segment files.
//!
//! ```text
//! <dir>/<YYYY-MM-DDTHH>/<shard-id>/<first-sequence>.<writer>.seg
//! ```
//!
//! The hour is the records' arrival hour (UTC), so retention is `rm -r` of old hours. Each
//! shard task writes its own segments (a new one per hour and per task), so writers never
//! share a file. A shard read after a crash is archived again from its checkpoint, so
//! segments may overlap; [`ArchiveReader`] merges a shard's segments by sequence number and
//! drops the repeats.
use crate::segment::{self, SegmentHeader, SegmentReader};
use inlet_seams::{Archive, ShardArchive};
use inlet_seams::{Record, SequenceNumber, ShardId, StartPosition, StreamError};
use std::collections::{BTreeSet, BinaryHeap};
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

const HOUR_MS: i64 = 3_600_000;

/// The name of an hour partition: `2026-01-01T00`.
pub fn hour_name(hour_ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(hour_ms.max(0) as u64);
    let s = humantime::format_rfc3339_seconds(t).to_string();
    s.get(..13).unwrap_or(&s).to_owned()
}

fn hour_of(ms: i64) -> i64 {
    ms.div_euclid(HOUR_MS) * HOUR_MS
}

/// An archive in a local directory.
#[derive(Debug, Clone)]
pub struct LocalArchive {
    dir: PathBuf,
}

impl LocalArchive {
    /// An archive rooted at `dir` (created on first write).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// Its directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

static WRITERS: AtomicU64 = AtomicU64::new(0);

impl Archive for LocalArchive {
    fn open_shard(&self, shard: &ShardId) -> io::Result<Box<dyn ShardArchive>> {
        // Unique per process and writer, and across restarts of the same pid.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let tag = format!("{}-{nanos:x}-{}", std::process::id(), WRITERS.fetch_add(1, Relaxed));
        Ok(Box::new(SegmentWriter {
            dir: self.dir.clone(),
            shard: shard.clone(),
            tag,
            file: None,
            hour_ms: None,
            chunks: Vec::new(),
        }))
    }
}

/// Records buffered for one segment; `start` is set when they open a new one.
#[derive(Debug)]
struct Chunk {
    start: Option<SegmentHeader>,
    records: Vec<u8>,
}

/// One shard task's writer: buffers in `append`, writes one block per segment touched and
/// fsyncs in `sync`.
#[derive(Debug)]
struct SegmentWriter {
    dir: PathBuf,
    shard: ShardId,
    tag: String,
    file: Option<File>,
    hour_ms: Option<i64>,
    chunks: Vec<Chunk>,
}

impl ShardArchive for SegmentWriter {
    fn append(&mut self, record: &Record, watermark_before: Option<i64>) -> io::Result<()> {
        let hour = hour_of(record.arrival_ms);
        if self.hour_ms != Some(hour) {
            self.hour_ms = Some(hour);
            self.chunks.push(Chunk {
                start: Some(SegmentHeader {
                    shard: self.shard.0.clone(),
                    first_sequence: record.sequence.as_str().to_owned(),
                    watermark_before_ms: watermark_before,
                    hour_ms: hour,
                }),
                records: Vec::new(),
            });
        }
        if self.chunks.is_empty() {
            self.chunks.push(Chunk {
                start: None,
                records: Vec::new(),
            });
        }
        if let Some(c) = self.chunks.last_mut() {
            segment::encode_record(record, &mut c.records);
        }
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        for chunk in std::mem::take(&mut self.chunks) {
            if let Some(header) = &chunk.start {
                if let Some(old) = self.file.take() {
                    old.sync_all()?;
                }
                let hour_dir = self.dir.join(hour_name(header.hour_ms));
                let shard_dir = hour_dir.join(&self.shard.0);
                std::fs::create_dir_all(&shard_dir)?;
                let path = shard_dir.join(format!("{}.{}.seg", header.first_sequence, self.tag));
                self.file = Some(segment::create(&path, header)?);
                for d in [&shard_dir, &hour_dir, &self.dir] {
                    segment::sync_dir(d)?;
                }
            }
            if let Some(f) = self.file.as_mut()
                && !chunk.records.is_empty()
            {
                segment::append_block(f, &chunk.records)?;
            }
        }
        if let Some(f) = &self.file {
            f.sync_all()?;
        }
        Ok(())
    }
}

/// One segment file found on disk.
#[derive(Debug, Clone)]
struct SegmentFile {
    path: PathBuf,
    first: SequenceNumber,
    hour_ms: i64,
    len: u64,
}

/// A segment that ended in a torn block (a crash while writing it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    /// The file.
    pub path: PathBuf,
    /// Where the torn block starts; the records before it were read.
    pub offset: u64,
}

/// Reads an archive, shard by shard, in sequence order.
#[derive(Debug, Clone)]
pub struct ArchiveReader {
    dir: PathBuf,
    torn: Arc<Mutex<Vec<TornTail>>>,
}

fn read_error(shard: &ShardId, e: io::Error) -> StreamError {
    StreamError::Read {
        stream: "archive".into(),
        shard: shard.clone(),
        retryable: false,
        source: Box::new(e),
    }
}

fn sorted_dir(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    match std::fs::read_dir(dir) {
        Ok(entries) => {
            for e in entries {
                out.push(e?.path());
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    out.sort();
    Ok(out)
}

impl ArchiveReader {
    /// Reads the archive at `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            torn: Arc::default(),
        }
    }

    /// Torn last blocks met so far (each reported once per read).
    pub fn torn_tails(&self) -> Vec<TornTail> {
        self.torn.lock().map(|t| t.clone()).unwrap_or_default()
    }

    /// The shards with at least one segment.
    pub fn shards(&self) -> io::Result<Vec<ShardId>> {
        let mut shards = BTreeSet::new();
        for hour in sorted_dir(&self.dir)?.into_iter().filter(|p| p.is_dir()) {
            for shard in sorted_dir(&hour)?.into_iter().filter(|p| p.is_dir()) {
                if let Some(name) = shard.file_name().and_then(|n| n.to_str()) {
                    shards.insert(name.to_owned());
                }
            }
        }
        Ok(shards.into_iter().map(ShardId).collect())
    }

    fn segments(&self, shard: &ShardId) -> io::Result<Vec<SegmentFile>> {
        let mut out = Vec::new();
        for hour in sorted_dir(&self.dir)?.into_iter().filter(|p| p.is_dir()) {
            for path in sorted_dir(&hour.join(&shard.0))? {
                let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
                let Some(first) = name
                    .strip_suffix(".seg")
                    .and_then(|n| n.split('.').next())
                    .and_then(|s| SequenceNumber::parse(s).ok())
                else {
                    continue; // not a segment (e.g. an editor's backup)
                };
                let len = std::fs::metadata(&path)?.len();
                let hour_ms = SegmentReader::open(&path)?.map_or(0, |r| r.header().hour_ms);
                out.push(SegmentFile {
                    path,
                    first,
                    hour_ms,
                    len,
                });
            }
        }
        out.sort_by(|a, b| a.first.cmp(&b.first).then_with(|| a.path.cmp(&b.path)));
        Ok(out)
    }

    /// Where a rebuild of event times from `from_ms` on must start reading `shard` to get
    /// exactly the live path's rows: the latest segment whose starting watermark is before
    /// `from_ms` (no record before it can reach a window from `from_ms` on, and its watermark
    /// makes every later lateness decision the live one). `None` if the archive starts later
    /// than that (its first segment began with a watermark at or past `from_ms`).
    pub fn rebuild_start(&self, shard: &ShardId, from_ms: i64) -> io::Result<Option<(SequenceNumber, Option<i64>)>> {
        let mut best = None;
        for s in self.segments(shard)? {
            let Some(r) = SegmentReader::open(&s.path)? else {
                continue;
            };
            let w = r.header().watermark_before_ms;
            if w.is_none_or(|w| w < from_ms) {
                best = Some((s.first.clone(), w));
            }
        }
        Ok(best)
    }

    /// Opens a shard for reading from `from` (`Latest` reads nothing). `AtTimestamp` skips
    /// hour partitions wholly before it, which assumes a shard's arrival times do not go
    /// back across an hour (Kinesis's do not).
    pub fn open(&self, shard: &ShardId, from: StartPosition) -> Result<ArchiveShardReader, StreamError> {
        let mut files = self.segments(shard).map_err(|e| read_error(shard, e))?;
        if let StartPosition::AtTimestamp(t) = from {
            // Hours wholly before `t` cannot hold its first record.
            files.retain(|f| f.hour_ms + HOUR_MS > t);
        }
        if from == StartPosition::Latest {
            files.clear();
        }
        let total_bytes = files.iter().map(|f| f.len).sum();
        files.reverse(); // popped from the end, smallest first sequence first
        Ok(ArchiveShardReader {
            shard: shard.clone(),
            from,
            started: false,
            files,
            open: BinaryHeap::new(),
            last: None,
            total_bytes,
            done_bytes: 0,
            torn: Arc::clone(&self.torn),
        })
    }
}

/// An open segment in the merge, ordered by its next sequence number (smallest first).
#[derive(Debug)]
struct Cursor {
    next: SequenceNumber,
    reader: SegmentReader,
}

impl PartialEq for Cursor {
    fn eq(&self, other: &Self) -> bool {
        self.next == other.next && self.reader.path() == other.reader.path()
    }
}
impl Eq for Cursor {}
impl PartialOrd for Cursor {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Cursor {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // Reversed: BinaryHeap is a max-heap.
        other
            .next
            .cmp(&self.next)
            .then_with(|| other.reader.path().cmp(self.reader.path()))
    }
}

/// One shard of the archive: its segments merged by sequence number, repeats dropped.
#[derive(Debug)]
pub struct ArchiveShardReader {
    shard: ShardId,
    from: StartPosition,
    started: bool,
    /// Segments not opened yet, largest first sequence first.
    files: Vec<SegmentFile>,
    open: BinaryHeap<Cursor>,
    last: Option<SequenceNumber>,
    total_bytes: u64,
    done_bytes: u64,
    torn: Arc<Mutex<Vec<TornTail>>>,
}

impl ArchiveShardReader {
    /// The share of the shard's archived bytes read so far.
    pub fn fraction_done(&self) -> f64 {
        let open: u64 = self.open.iter().map(|c| c.reader.offset()).sum();
        if self.total_bytes == 0 {
            1.0
        } else {
            ((self.done_bytes + open) as f64 / self.total_bytes as f64).min(1.0)
        }
    }

    /// Opens the segments that may hold the next record: every one whose first sequence is
    /// not past the smallest sequence the open ones hold.
    fn open_due(&mut self) -> io::Result<()> {
        loop {
            let due = match (self.files.last(), self.open.peek()) {
                (None, _) => false,
                (Some(_), None) => true,
                (Some(f), Some(c)) => f.first <= c.next,
            };
            if !due {
                return Ok(());
            }
            let Some(f) = self.files.pop() else { return Ok(()) };
            match SegmentReader::open(&f.path)? {
                Some(mut r) => match r.peek_sequence()? {
                    Some(next) => self.open.push(Cursor { next, reader: r }),
                    None => self.finish(r),
                },
                None => {
                    self.note_torn(&f.path, 0);
                    self.done_bytes += f.len;
                }
            }
        }
    }

    fn note_torn(&self, path: &Path, offset: u64) {
        tracing::warn!(path = %path.display(), offset, "archive segment ends in a torn block (a crash while writing); read up to it");
        if let Ok(mut t) = self.torn.lock() {
            t.push(TornTail {
                path: path.to_owned(),
                offset,
            });
        }
    }

    fn finish(&mut self, r: SegmentReader) {
        if let Some(offset) = r.torn() {
            self.note_torn(r.path(), offset);
        }
        self.done_bytes += r.file_len();
    }

    fn next_record(&mut self) -> io::Result<Option<Record>> {
        loop {
            self.open_due()?;
            let Some(mut c) = self.open.pop() else { return Ok(None) };
            let record = c.reader.next_record()?;
            match c.reader.peek_sequence()? {
                Some(next) => {
                    c.next = next;
                    self.open.push(c);
                }
                None => self.finish(c.reader),
            }
            let Some(record) = record else { continue };
            if self.last.as_ref().is_some_and(|l| record.sequence <= *l) {
                continue; // archived twice (a re-read after a crash)
            }
            self.last = Some(record.sequence.clone());
            if !self.started {
                self.started = match &self.from {
                    StartPosition::TrimHorizon => true,
                    StartPosition::AtSequence(s) => record.sequence >= *s,
                    StartPosition::AfterSequence(s) => record.sequence > *s,
                    StartPosition::AtTimestamp(t) => record.arrival_ms >= *t,
                    StartPosition::Latest => false,
                };
                if !self.started {
                    continue;
                }
            }
            return Ok(Some(record));
        }
    }

    /// The next records (at most `max`); empty at the end.
    pub fn next_records(&mut self, max: usize) -> Result<Vec<Record>, StreamError> {
        let mut out = Vec::with_capacity(max.min(4096));
        while out.len() < max {
            match self.next_record().map_err(|e| read_error(&self.shard, e))? {
                Some(r) => out.push(r),
                None => break,
            }
        }
        Ok(out)
    }
}
