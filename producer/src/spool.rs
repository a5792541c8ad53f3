//! The on-disk spool: where sealed stream records go while the stream is unreachable, so
//! senders keep going (memory stays within the buffer) and nothing is lost; read back in
//! order once the stream answers again.
//!
//! One append-only file, `spool.bin`: per record a little-endian `u32` length, then the
//! record (`u16` partition-key length, key, `u8` explicit-hash-key flag and 16 bytes if set,
//! `u32` user-record count, data). `spool.offset` holds how far records have been written to
//! the stream (`u64`), saved once all records before it are settled, so a restarted producer
//! sends again at most what was in flight (at least once, never lost). When everything is
//! read back and settled, both files are emptied.
use bytes::Bytes;
use inlet_seams::PutRecord;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// A spooled stream record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Spooled {
    pub(crate) record: PutRecord,
    pub(crate) user_records: u32,
}

#[derive(Debug)]
pub(crate) struct Spool {
    /// Held (locked) for the spool's life: two producers on one spool would send its
    /// records twice.
    _lock: File,
    dir: PathBuf,
    out: BufWriter<File>,
    reader: File,
    /// Bytes in the file.
    written: u64,
    /// Bytes read back so far.
    read: u64,
    /// Bytes known written to the stream (persisted in `spool.offset`).
    settled: u64,
    max_bytes: u64,
    /// User records left unsettled by an earlier process, found at open.
    inherited_user_records: u64,
}

fn bad(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_owned())
}

impl Spool {
    /// Opens (or creates) the spool in `dir`; records left by an earlier process after its
    /// last settled offset are read back first.
    pub(crate) fn open(dir: &Path, max_bytes: u64) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("spool.lock"))?;
        lock.try_lock().map_err(|_| {
            io::Error::new(
                io::ErrorKind::WouldBlock,
                format!("the spool in {} is in use by another producer", dir.display()),
            )
        })?;
        let path = dir.join("spool.bin");
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        let written = file.metadata()?.len();
        let settled = match std::fs::read(dir.join("spool.offset")) {
            Ok(b) if b.len() == 8 => u64::from_le_bytes(b.try_into().map_err(|_| bad("offset"))?).min(written),
            _ => 0,
        };
        let mut reader = File::open(&path)?;
        reader.seek(SeekFrom::Start(settled))?;
        let inherited_user_records = count_user_records(&path, settled, written)?;
        Ok(Self {
            inherited_user_records,
            _lock: lock,
            dir: dir.to_owned(),
            out: BufWriter::new(file),
            reader,
            written,
            read: settled,
            settled,
            max_bytes,
        })
    }

    /// User records an earlier process left unsettled (accepted by it, sent by this one).
    pub(crate) fn inherited_user_records(&self) -> u64 {
        self.inherited_user_records
    }

    /// Records spooled and not yet read back.
    pub(crate) fn pending_bytes(&self) -> u64 {
        self.written - self.read
    }

    /// Whether anything is spooled that is not yet settled.
    pub(crate) fn is_empty(&self) -> bool {
        self.written == self.settled
    }

    /// Whether `size` more bytes fit.
    pub(crate) fn has_room(&self, size: usize) -> bool {
        self.written - self.settled + size as u64 + 64 <= self.max_bytes
    }

    /// Appends a record (buffered; [`Spool::sync`] makes it durable).
    pub(crate) fn append(&mut self, record: &PutRecord, user_records: u32) -> io::Result<u64> {
        let pk = record.partition_key.as_bytes();
        let ehk_len = if record.explicit_hash_key.is_some() { 17 } else { 1 };
        let len = 2 + pk.len() + ehk_len + 4 + record.data.len();
        let len32 = u32::try_from(len).map_err(|_| bad("record too large to spool"))?;
        let pk_len = u16::try_from(pk.len()).map_err(|_| bad("partition key too long"))?;
        self.out.write_all(&len32.to_le_bytes())?;
        self.out.write_all(&pk_len.to_le_bytes())?;
        self.out.write_all(pk)?;
        match record.explicit_hash_key {
            Some(k) => {
                self.out.write_all(&[1])?;
                self.out.write_all(&k.to_le_bytes())?;
            }
            None => self.out.write_all(&[0])?,
        }
        self.out.write_all(&user_records.to_le_bytes())?;
        self.out.write_all(&record.data)?;
        self.written += 4 + len as u64;
        Ok(self.written)
    }

    /// Flushes and fsyncs what was appended.
    pub(crate) fn sync(&mut self) -> io::Result<()> {
        self.out.flush()?;
        self.out.get_ref().sync_data()
    }

    /// Reads back records in order, up to about `max_bytes` of them; each comes with the
    /// file offset just past it (to settle).
    pub(crate) fn read_back(&mut self, max_bytes: usize) -> io::Result<Vec<(Spooled, u64)>> {
        self.out.flush()?;
        let mut out = Vec::new();
        let mut taken = 0usize;
        while self.read < self.written && (out.is_empty() || taken < max_bytes) {
            let mut len = [0u8; 4];
            self.reader.read_exact(&mut len)?;
            let len = u32::from_le_bytes(len) as usize;
            let mut buf = vec![0u8; len];
            self.reader.read_exact(&mut buf)?;
            self.read += 4 + len as u64;
            taken += len;
            out.push((decode(&buf)?, self.read));
        }
        Ok(out)
    }

    /// Everything up to `offset` is written to the stream.
    pub(crate) fn settle(&mut self, offset: u64) -> io::Result<()> {
        if offset <= self.settled {
            return Ok(());
        }
        self.settled = offset;
        if self.settled == self.written {
            // All sent: start over with an empty file.
            self.out.flush()?;
            self.out.get_ref().set_len(0)?;
            self.reader.seek(SeekFrom::Start(0))?;
            self.written = 0;
            self.read = 0;
            self.settled = 0;
        }
        let tmp = self.dir.join("spool.offset.tmp");
        std::fs::write(&tmp, self.settled.to_le_bytes())?;
        std::fs::rename(tmp, self.dir.join("spool.offset"))
    }
}

/// The user records of the spooled records in `[from, to)` of the file at `path`.
fn count_user_records(path: &Path, from: u64, to: u64) -> io::Result<u64> {
    let mut file = std::io::BufReader::new(File::open(path)?);
    file.seek(SeekFrom::Start(from))?;
    let (mut at, mut n) = (from, 0u64);
    while at < to {
        let mut len = [0u8; 4];
        file.read_exact(&mut len)?;
        let len = u32::from_le_bytes(len) as usize;
        let mut buf = vec![0u8; len];
        file.read_exact(&mut buf)?;
        n += u64::from(decode(&buf)?.user_records);
        at += 4 + len as u64;
    }
    Ok(n)
}

fn decode(buf: &[u8]) -> io::Result<Spooled> {
    let take = |at: &mut usize, n: usize| -> io::Result<&[u8]> {
        let s = buf.get(*at..*at + n).ok_or_else(|| bad("truncated spool record"))?;
        *at += n;
        Ok(s)
    };
    let mut at = 0;
    let pk_len = u16::from_le_bytes(take(&mut at, 2)?.try_into().map_err(|_| bad("key length"))?) as usize;
    let partition_key = String::from_utf8(take(&mut at, pk_len)?.to_vec()).map_err(|_| bad("partition key"))?;
    let explicit_hash_key = match take(&mut at, 1)?[0] {
        0 => None,
        _ => Some(u128::from_le_bytes(
            take(&mut at, 16)?.try_into().map_err(|_| bad("hash key"))?,
        )),
    };
    let user_records = u32::from_le_bytes(take(&mut at, 4)?.try_into().map_err(|_| bad("count"))?);
    let data = Bytes::copy_from_slice(&buf[at..]);
    Ok(Spooled {
        record: PutRecord {
            partition_key,
            explicit_hash_key,
            data,
        },
        user_records,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(i: u32) -> PutRecord {
        PutRecord {
            partition_key: format!("key-{i}"),
            explicit_hash_key: i.is_multiple_of(2).then_some(u128::from(i) << 100),
            data: Bytes::from(vec![i as u8; i as usize * 10]),
        }
    }

    #[test]
    fn records_come_back_in_order_and_a_restart_resumes_after_the_settled_offset() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(dir.path(), 1 << 20).unwrap();
        for i in 0..10 {
            s.append(&rec(i), i + 1).unwrap();
        }
        s.sync().unwrap();
        let first = s.read_back(100).unwrap();
        assert!(!first.is_empty() && first.len() < 10);
        for (i, (r, _)) in first.iter().enumerate() {
            assert_eq!((&r.record, r.user_records), (&rec(i as u32), i as u32 + 1));
        }
        s.settle(first.last().unwrap().1).unwrap();
        drop(s);
        // A new process reads on from the settled offset.
        let mut s = Spool::open(dir.path(), 1 << 20).unwrap();
        let rest = s.read_back(usize::MAX).unwrap();
        assert_eq!(rest.len() + first.len(), 10);
        assert_eq!(rest[0].0.record, rec(first.len() as u32));
        s.settle(rest.last().unwrap().1).unwrap();
        assert!(s.is_empty());
        assert_eq!(std::fs::metadata(dir.path().join("spool.bin")).unwrap().len(), 0);
        // And it is usable again.
        s.append(&rec(3), 1).unwrap();
        assert_eq!(s.read_back(usize::MAX).unwrap()[0].0.record, rec(3));
    }

    #[test]
    fn one_producer_per_spool() {
        let dir = tempfile::tempdir().unwrap();
        let first = Spool::open(dir.path(), 1 << 20).unwrap();
        let e = Spool::open(dir.path(), 1 << 20).unwrap_err();
        assert!(e.to_string().contains("in use by another producer"), "{e}");
        drop(first);
        Spool::open(dir.path(), 1 << 20).unwrap();
    }

    #[test]
    fn room_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(dir.path(), 1_000).unwrap();
        assert!(s.has_room(500));
        s.append(&rec(50), 1).unwrap();
        assert!(!s.has_room(500));
    }
}
