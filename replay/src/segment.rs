//! One archive segment file: the records of one shard, one arrival hour, one writer.
//!
//! ```text
//! file   := MAGIC block+
//! MAGIC  := "INLETSEG1\n"
//! block  := len:u32le  xxh3_64(payload):u64le  payload[len]
//! first block payload: a SegmentHeader (protobuf)
//! other block payloads: zstd( (varint length, ArchivedRecord protobuf)* )
//! ```
//!
//! A writer appends one block per sync and fsyncs, so a crash can only tear the last block:
//! the reader stops there and reports it ([`SegmentReader::torn`]). A block that fails its
//! checksum anywhere else is corruption and an error, never skipped.
use bytes::Bytes;
use inlet_seams::{Record, SequenceNumber, ShardId};
use prost::Message;
use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};

/// The first bytes of every segment file.
pub const MAGIC: &[u8; 10] = b"INLETSEG1\n";
const BLOCK_HEADER: usize = 12;
/// Largest block a reader accepts (a sync holds at most one commit's worth of records).
const MAX_BLOCK: u32 = 1 << 30;

/// What a segment starts with.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SegmentHeader {
    /// The shard.
    #[prost(string, tag = "1")]
    pub shard: String,
    /// The sequence number of its first record.
    #[prost(string, tag = "2")]
    pub first_sequence: String,
    /// The shard's watermark before the consumer processed the first record, if it had one.
    #[prost(int64, optional, tag = "3")]
    pub watermark_before_ms: Option<i64>,
    /// The hour partition, ms since the epoch.
    #[prost(int64, tag = "4")]
    pub hour_ms: i64,
}

/// A stream record as archived (the shard is in the header).
#[derive(Clone, PartialEq, prost::Message)]
struct ArchivedRecord {
    #[prost(string, tag = "1")]
    sequence: String,
    #[prost(string, tag = "2")]
    partition_key: String,
    /// 16 bytes, big-endian, when the record was written with one.
    #[prost(bytes = "vec", optional, tag = "3")]
    explicit_hash_key: Option<Vec<u8>>,
    #[prost(int64, tag = "4")]
    arrival_ms: i64,
    #[prost(bytes = "bytes", tag = "5")]
    data: Bytes,
}

/// Appends `record` to a block under construction.
pub fn encode_record(record: &Record, buf: &mut Vec<u8>) {
    let r = ArchivedRecord {
        sequence: record.sequence.as_str().to_owned(),
        partition_key: record.partition_key.clone(),
        explicit_hash_key: record.explicit_hash_key.map(|k| k.to_be_bytes().to_vec()),
        arrival_ms: record.arrival_ms,
        data: record.data.clone(),
    };
    // Encoding into a Vec cannot fail: it grows as needed.
    let _ = r.encode_length_delimited(buf);
}

fn write_block(file: &mut File, payload: &[u8]) -> io::Result<()> {
    let len = u32::try_from(payload.len())
        .ok()
        .filter(|l| *l <= MAX_BLOCK)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "archive block over 1 GiB"))?;
    let mut out = Vec::with_capacity(BLOCK_HEADER + payload.len());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&xxhash_rust::xxh3::xxh3_64(payload).to_le_bytes());
    out.extend_from_slice(payload);
    file.write_all(&out)
}

/// Creates a segment file with its header (not yet fsynced).
pub fn create(path: &Path, header: &SegmentHeader) -> io::Result<File> {
    let mut file = File::options().create_new(true).append(true).open(path)?;
    file.write_all(MAGIC)?;
    write_block(&mut file, &header.encode_to_vec())?;
    Ok(file)
}

/// Appends one block of encoded records (from [`encode_record`]), compressed.
pub fn append_block(file: &mut File, records: &[u8]) -> io::Result<()> {
    let compressed = zstd::bulk::compress(records, 3)?;
    write_block(file, &compressed)
}

fn invalid(path: &Path, what: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("{}: {what}", path.display()))
}

/// Reads a segment's records in order.
#[derive(Debug)]
pub struct SegmentReader {
    path: PathBuf,
    file: BufReader<File>,
    len: u64,
    offset: u64,
    shard: ShardId,
    header: SegmentHeader,
    pending: VecDeque<Record>,
    torn: Option<u64>,
    done: bool,
}

enum Block {
    Payload(Vec<u8>),
    End,
    Torn,
}

impl SegmentReader {
    /// Opens a segment and reads its header. `Ok(None)` when even the header is torn (a crash
    /// right after the file was created: it holds no record).
    pub fn open(path: &Path) -> io::Result<Option<Self>> {
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        let mut r = Self {
            path: path.to_owned(),
            file: BufReader::new(file),
            len,
            offset: 0,
            shard: ShardId(String::new()),
            header: SegmentHeader::default(),
            pending: VecDeque::new(),
            torn: None,
            done: false,
        };
        let mut magic = [0u8; MAGIC.len()];
        if len < MAGIC.len() as u64 {
            return Ok(None);
        }
        r.file.read_exact(&mut magic)?;
        if &magic != MAGIC {
            return Err(invalid(path, "not an Inlet archive segment"));
        }
        r.offset = MAGIC.len() as u64;
        match r.block()? {
            Block::Payload(p) => {
                r.header = SegmentHeader::decode(p.as_slice()).map_err(|e| invalid(path, e))?;
                r.shard = ShardId(r.header.shard.clone());
                Ok(Some(r))
            }
            Block::End | Block::Torn => Ok(None),
        }
    }

    /// The header.
    pub fn header(&self) -> &SegmentHeader {
        &self.header
    }

    /// Bytes of the file.
    pub fn file_len(&self) -> u64 {
        self.len
    }

    /// Bytes consumed so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Where a torn last block starts, once the reader reached it.
    pub fn torn(&self) -> Option<u64> {
        self.torn
    }

    /// The path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn block(&mut self) -> io::Result<Block> {
        let start = self.offset;
        let left = self.len - start;
        if left == 0 {
            return Ok(Block::End);
        }
        if left < BLOCK_HEADER as u64 {
            self.torn = Some(start);
            return Ok(Block::Torn);
        }
        let mut head = [0u8; BLOCK_HEADER];
        self.file.read_exact(&mut head)?;
        let [l0, l1, l2, l3, s @ ..] = head;
        let len = u32::from_le_bytes([l0, l1, l2, l3]);
        let sum = u64::from_le_bytes(s);
        let end = start + BLOCK_HEADER as u64 + u64::from(len);
        if end > self.len {
            self.torn = Some(start);
            return Ok(Block::Torn);
        }
        let mut payload = vec![0u8; len as usize];
        self.file.read_exact(&mut payload)?;
        self.offset = end;
        if xxhash_rust::xxh3::xxh3_64(&payload) != sum {
            if end == self.len {
                // The last block, half written when the writer died.
                self.torn = Some(start);
                return Ok(Block::Torn);
            }
            return Err(invalid(
                &self.path,
                format!("block at offset {start} fails its checksum and is not the last one"),
            ));
        }
        Ok(Block::Payload(payload))
    }

    /// The next record, `None` at the end (or at a torn last block: see [`Self::torn`]).
    pub fn next_record(&mut self) -> io::Result<Option<Record>> {
        while self.pending.is_empty() && !self.done {
            match self.block()? {
                Block::Payload(p) => self.decode_block(&p)?,
                Block::End | Block::Torn => self.done = true,
            }
        }
        Ok(self.pending.pop_front())
    }

    /// The sequence number of the next record, without consuming it.
    pub fn peek_sequence(&mut self) -> io::Result<Option<SequenceNumber>> {
        if let Some(r) = self.next_record()? {
            let seq = r.sequence.clone();
            self.pending.push_front(r);
            return Ok(Some(seq));
        }
        Ok(None)
    }

    fn decode_block(&mut self, compressed: &[u8]) -> io::Result<()> {
        let raw = zstd::stream::decode_all(compressed).map_err(|e| invalid(&self.path, e))?;
        let mut buf = raw.as_slice();
        while !buf.is_empty() {
            let r = ArchivedRecord::decode_length_delimited(&mut buf).map_err(|e| invalid(&self.path, e))?;
            let sequence = SequenceNumber::parse(&r.sequence).map_err(|e| invalid(&self.path, e))?;
            let explicit_hash_key = match r.explicit_hash_key {
                None => None,
                Some(k) => Some(u128::from_be_bytes(
                    k.as_slice()
                        .try_into()
                        .map_err(|_| invalid(&self.path, "explicit hash key is not 16 bytes"))?,
                )),
            };
            self.pending.push_back(Record {
                sequence,
                partition_key: r.partition_key,
                explicit_hash_key,
                data: r.data,
                arrival_ms: r.arrival_ms,
            });
        }
        Ok(())
    }
}

/// Fsyncs a directory, so a file created in it survives a crash.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}
