//! The on-disk spool: where sealed stream records go while the stream is unreachable, so
//! senders keep going (memory stays within the buffer) and nothing is lost; read back in
//! order once the stream answers again.
//!
//! One append-only file, `spool.bin`: an 8-byte header ([`MAGIC`]), then per record a
//! little-endian `u32` length, a `u32` CRC-32 of the record, and the record (`u16`
//! partition-key length, key, `u8` explicit-hash-key flag and 16 bytes if set, `u32`
//! user-record count, data). `spool.offset` holds how far records have been written to the
//! stream (`u64`), saved once all records before it are settled, so a restarted producer
//! sends again at most what was in flight (at least once, never lost). When everything is
//! read back and settled, the file is emptied back to its header.
//!
//! Integrity: a crash mid-append leaves a torn last record, which opening cuts off (logged,
//! with its size: it was never synced, so no sender was told it was kept). Anything else that
//! does not check (a bad checksum, a length no record has, a foreign file) is corruption:
//! opening refuses it naming the byte, and [`inspect`] / [`repair`] (`inlet spool`) show
//! it and move the damaged part aside, never dropping it unseen.
use bytes::Bytes;
use inlet_seams::PutRecord;
use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// The first bytes of a spool file (the last two: the format's version).
pub const MAGIC: [u8; 8] = *b"INLSPL\x00\x02";
const HEADER: u64 = MAGIC.len() as u64;
/// A record's length and checksum.
const FRAME: u64 = 8;
/// No record is longer: the stream's largest record with its key and counts. A longer
/// length is corruption, not a record.
const MAX_RECORD: u64 = (1 << 20) + (1 << 16) + 32;

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

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// What is wrong with a spool file, at which byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Damage {
    /// The last record is cut short (a crash while appending): `bytes` from `at` to the end.
    Torn {
        /// Where the torn record starts.
        at: u64,
        /// Its bytes on disk.
        bytes: u64,
    },
    /// A record that does not check, or a file that is not a spool.
    Corrupt {
        /// Where it starts.
        at: u64,
        /// Bytes from there to the end of the file.
        bytes: u64,
        /// What is wrong.
        reason: String,
    },
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Damage::Torn { at, bytes } => write!(f, "a torn last record at byte {at} ({bytes} bytes)"),
            Damage::Corrupt { at, bytes, reason } => {
                write!(
                    f,
                    "corrupt at byte {at}: {reason} ({bytes} bytes from there to the end)"
                )
            }
        }
    }
}

/// A spool's state, read without changing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspection {
    /// The spool file.
    pub path: PathBuf,
    /// Its size.
    pub file_bytes: u64,
    /// How far records are written to the stream.
    pub settled: u64,
    /// Whole, checked records after `settled`, still to be sent.
    pub pending_records: u64,
    /// Their user records (events).
    pub pending_user_records: u64,
    /// Where checking stopped, if it did before the end.
    pub damage: Option<Damage>,
}

/// What [`repair`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repair {
    /// The damage found; `None`: the spool was whole and nothing was changed.
    pub damage: Option<Damage>,
    /// Where the bytes from the damage on were moved (they are gone from the spool).
    pub moved_to: Option<PathBuf>,
    /// Whole records still in the spool after `settled`, to be sent.
    pub pending_records: u64,
}

/// Records of `file` from `from` on, checked; stops at the end or the first damage.
struct Scan {
    records: u64,
    user_records: u64,
    /// Just past the last whole record.
    end: u64,
    damage: Option<Damage>,
}

fn scan(path: &Path, from: u64) -> io::Result<Scan> {
    let mut file = File::open(path)?;
    let size = file.metadata()?.len();
    let mut header = Vec::with_capacity(MAGIC.len());
    (&mut file).take(HEADER).read_to_end(&mut header)?;
    if header != MAGIC {
        // A header cut short by a crash while creating the file is torn; any other is not ours.
        let damage = if !MAGIC.starts_with(&header) || size >= HEADER {
            Damage::Corrupt {
                at: 0,
                bytes: size,
                reason: "not a spool file of this version (its header is wrong)".into(),
            }
        } else {
            Damage::Torn { at: 0, bytes: size }
        };
        return Ok(Scan {
            records: 0,
            user_records: 0,
            end: 0,
            damage: (size > 0).then_some(damage),
        });
    }
    let mut file = BufReader::new(file);
    let mut at = from.clamp(HEADER, size);
    file.seek(SeekFrom::Start(at))?;
    let (mut records, mut user_records) = (0, 0);
    let damage = loop {
        if at == size {
            break None;
        }
        let corrupt = |reason: String| Damage::Corrupt {
            at,
            bytes: size - at,
            reason,
        };
        // A record cut short can only be the last one, and no longer than a record.
        let torn = (size - at <= FRAME + MAX_RECORD).then_some(Damage::Torn { at, bytes: size - at });
        if size - at < FRAME {
            break torn;
        }
        let mut frame = [0u8; FRAME as usize];
        file.read_exact(&mut frame)?;
        let (len, crc) = parse_frame(frame);
        if len > MAX_RECORD {
            break Some(corrupt(format!(
                "a record length of {len} bytes (at most {MAX_RECORD})"
            )));
        }
        if size - at - FRAME < len {
            break torn.or_else(|| Some(corrupt("a record runs past the end of the file".into())));
        }
        let mut buf = vec![0u8; len as usize];
        file.read_exact(&mut buf)?;
        if crc32fast::hash(&buf) != crc {
            break Some(corrupt("its checksum does not match".into()));
        }
        match decode(&buf) {
            Ok(r) => user_records += u64::from(r.user_records),
            Err(e) => break Some(corrupt(e.to_string())),
        }
        records += 1;
        at += FRAME + len;
    };
    Ok(Scan {
        records,
        user_records,
        end: at,
        damage,
    })
}

/// A record's frame: its length and its CRC-32.
fn parse_frame(frame: [u8; FRAME as usize]) -> (u64, u32) {
    let [l0, l1, l2, l3, c0, c1, c2, c3] = frame;
    (
        u64::from(u32::from_le_bytes([l0, l1, l2, l3])),
        u32::from_le_bytes([c0, c1, c2, c3]),
    )
}

fn read_settled(dir: &Path) -> u64 {
    match std::fs::read(dir.join("spool.offset")) {
        Ok(b) => b.try_into().map(u64::from_le_bytes).unwrap_or(0),
        Err(_) => 0,
    }
}

/// The spool in `dir`, checked, without changing it (a producer may be using it).
pub fn inspect(dir: &Path) -> io::Result<Inspection> {
    let path = dir.join("spool.bin");
    let file_bytes = std::fs::metadata(&path)?.len();
    let settled = read_settled(dir).clamp(HEADER.min(file_bytes), file_bytes);
    let s = scan(&path, settled)?;
    Ok(Inspection {
        path,
        file_bytes,
        settled,
        pending_records: s.records,
        pending_user_records: s.user_records,
        damage: s.damage,
    })
}

/// Cuts the spool in `dir` at its first damage, moving the bytes from there on to
/// `spool.bin.damaged-<byte>` beside it, so a producer can open it again. Refused while a
/// producer holds the spool.
pub fn repair(dir: &Path) -> io::Result<Repair> {
    let _lock = lock(dir)?;
    let path = dir.join("spool.bin");
    let settled = read_settled(dir);
    let s = scan(&path, settled)?;
    let Some(damage) = s.damage else {
        return Ok(Repair {
            damage: None,
            moved_to: None,
            pending_records: s.records,
        });
    };
    let at = match damage {
        Damage::Torn { at, .. } | Damage::Corrupt { at, .. } => at,
    };
    let moved_to = dir.join(format!("spool.bin.damaged-{at}"));
    let mut from = File::open(&path)?;
    from.seek(SeekFrom::Start(at))?;
    let mut to = File::create(&moved_to)?;
    io::copy(&mut from, &mut to)?;
    to.sync_all()?;
    let file = OpenOptions::new().write(true).open(&path)?;
    if at < HEADER {
        // Not a spool at all: start an empty one (its bytes are all in the moved file).
        file.set_len(0)?;
        (&file).write_all(&MAGIC)?;
    } else {
        file.set_len(at)?;
    }
    file.sync_all()?;
    if settled > at {
        save_settled(dir, at.max(HEADER))?;
    }
    Ok(Repair {
        damage: Some(damage),
        moved_to: Some(moved_to),
        pending_records: s.records,
    })
}

fn lock(dir: &Path) -> io::Result<File> {
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
    Ok(lock)
}

fn save_settled(dir: &Path, offset: u64) -> io::Result<()> {
    let tmp = dir.join("spool.offset.tmp");
    std::fs::write(&tmp, offset.to_le_bytes())?;
    std::fs::rename(tmp, dir.join("spool.offset"))
}

impl Spool {
    /// Opens (or creates) the spool in `dir`; records left by an earlier process after its
    /// last settled offset are read back first. A torn last record is cut off; corruption
    /// is refused (see the module).
    pub(crate) fn open(dir: &Path, max_bytes: u64) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let lock = lock(dir)?;
        let path = dir.join("spool.bin");
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        if file.metadata()?.len() == 0 {
            (&file).write_all(&MAGIC)?;
            file.sync_data()?;
        }
        let settled = read_settled(dir).max(HEADER);
        let scanned = scan(&path, settled)?;
        match scanned.damage {
            None => {}
            Some(Damage::Torn { at, bytes }) if at >= HEADER => {
                tracing::warn!(
                    spool = %path.display(),
                    at,
                    bytes,
                    "the spool ends in a torn record (a crash while appending, never synced); cut off"
                );
                file.set_len(at)?;
                file.sync_data()?;
            }
            Some(damage) => {
                return Err(bad(format!(
                    "{} is {damage}; `inlet spool inspect {dir}` shows it, `inlet spool repair {dir}` \
                     moves the damaged part aside",
                    path.display(),
                    dir = dir.display()
                )));
            }
        }
        let written = scanned.end.max(HEADER);
        let settled = settled.min(written);
        let mut reader = File::open(&path)?;
        reader.seek(SeekFrom::Start(settled))?;
        Ok(Self {
            inherited_user_records: scanned.user_records,
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
        let pk_len = u16::try_from(pk.len()).map_err(|_| bad("partition key too long"))?;
        let mut buf = Vec::with_capacity(2 + pk.len() + 17 + 4 + record.data.len());
        buf.extend_from_slice(&pk_len.to_le_bytes());
        buf.extend_from_slice(pk);
        match record.explicit_hash_key {
            Some(k) => {
                buf.push(1);
                buf.extend_from_slice(&k.to_le_bytes());
            }
            None => buf.push(0),
        }
        buf.extend_from_slice(&user_records.to_le_bytes());
        buf.extend_from_slice(&record.data);
        let len = u32::try_from(buf.len())
            .ok()
            .filter(|&l| u64::from(l) <= MAX_RECORD)
            .ok_or_else(|| bad("record too large to spool"))?;
        self.out.write_all(&len.to_le_bytes())?;
        self.out.write_all(&crc32fast::hash(&buf).to_le_bytes())?;
        self.out.write_all(&buf)?;
        self.written += FRAME + buf.len() as u64;
        Ok(self.written)
    }

    /// Flushes and fsyncs what was appended.
    pub(crate) fn sync(&mut self) -> io::Result<()> {
        self.out.flush()?;
        self.out.get_ref().sync_data()
    }

    /// Reads back records in order, up to about `max_bytes` of them; each comes with the
    /// file offset just past it (to settle). A record that does not check is an error
    /// naming its byte.
    pub(crate) fn read_back(&mut self, max_bytes: usize) -> io::Result<Vec<(Spooled, u64)>> {
        self.out.flush()?;
        let mut out = Vec::new();
        let mut taken = 0usize;
        while self.read < self.written && (out.is_empty() || taken < max_bytes) {
            let mut frame = [0u8; FRAME as usize];
            self.reader.read_exact(&mut frame)?;
            let (len, crc) = parse_frame(frame);
            let mut buf = vec![0u8; len as usize];
            self.reader.read_exact(&mut buf)?;
            if crc32fast::hash(&buf) != crc {
                return Err(bad(format!(
                    "{}: the record at byte {} changed on disk (its checksum does not match)",
                    self.dir.join("spool.bin").display(),
                    self.read
                )));
            }
            self.read += FRAME + len;
            taken += buf.len();
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
            self.out.get_ref().set_len(HEADER)?;
            self.reader.seek(SeekFrom::Start(HEADER))?;
            self.written = HEADER;
            self.read = HEADER;
            self.settled = HEADER;
        }
        save_settled(&self.dir, self.settled)
    }
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
        1 => Some(u128::from_le_bytes(
            take(&mut at, 16)?.try_into().map_err(|_| bad("hash key"))?,
        )),
        other => return Err(bad(format!("explicit hash key flag {other}"))),
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
        assert_eq!(std::fs::metadata(dir.path().join("spool.bin")).unwrap().len(), HEADER);
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

    /// Spools `rec(0..n)`; where the file ends.
    fn spool_with(dir: &Path, n: u32) -> u64 {
        spool_with_more(dir, 0..n)
    }

    fn spool_with_more(dir: &Path, records: std::ops::Range<u32>) -> u64 {
        let mut s = Spool::open(dir, 1 << 20).unwrap();
        for i in records {
            s.append(&rec(i), 1).unwrap();
        }
        s.sync().unwrap();
        s.written
    }

    fn file(dir: &Path) -> Vec<u8> {
        std::fs::read(dir.join("spool.bin")).unwrap()
    }

    #[test]
    fn a_torn_last_record_is_cut_off_at_open_and_the_rest_is_sent() {
        let dir = tempfile::tempdir().unwrap();
        let end = spool_with(dir.path(), 5);
        let mut bytes = file(dir.path());
        let whole = bytes.len();
        // A crash while appending a sixth record: its frame and half its bytes.
        bytes.extend_from_slice(&40u32.to_le_bytes());
        bytes.extend_from_slice(&[7; 24]);
        std::fs::write(dir.path().join("spool.bin"), &bytes).unwrap();
        assert_eq!(
            inspect(dir.path()).unwrap().damage,
            Some(Damage::Torn { at: end, bytes: 28 })
        );
        let mut s = Spool::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(s.inherited_user_records(), 5);
        assert_eq!(file(dir.path()).len(), whole);
        let back = s.read_back(usize::MAX).unwrap();
        assert_eq!(
            back.iter().map(|(r, _)| r.record.clone()).collect::<Vec<_>>(),
            (0..5).map(rec).collect::<Vec<_>>()
        );
    }

    #[test]
    fn corruption_is_refused_naming_the_byte_and_repair_moves_it_aside() {
        let dir = tempfile::tempdir().unwrap();
        let fourth = spool_with(dir.path(), 3);
        spool_with_more(dir.path(), 3..6);
        let mut bytes = file(dir.path());
        // Flip a bit in the data of the fourth record.
        bytes[fourth as usize + FRAME as usize + 3] ^= 0x10;
        std::fs::write(dir.path().join("spool.bin"), &bytes).unwrap();

        let i = inspect(dir.path()).unwrap();
        assert_eq!(i.pending_records, 3);
        assert!(
            matches!(&i.damage, Some(Damage::Corrupt { at, reason, .. }) if *at == fourth && reason.contains("checksum")),
            "{:?}",
            i.damage
        );
        let e = Spool::open(dir.path(), 1 << 20).unwrap_err();
        assert!(e.to_string().contains(&format!("corrupt at byte {fourth}")), "{e}");
        assert!(e.to_string().contains("inlet spool repair"), "{e}");

        let r = repair(dir.path()).unwrap();
        let moved = r.moved_to.unwrap();
        assert_eq!(std::fs::read(&moved).unwrap(), bytes[fourth as usize..]);
        assert_eq!(r.pending_records, 3);
        let mut s = Spool::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(s.read_back(usize::MAX).unwrap().len(), 3);
        // Repairing a whole spool changes nothing.
        drop(s);
        assert_eq!(repair(dir.path()).unwrap().damage, None);
    }

    #[test]
    fn a_file_that_is_not_a_spool_is_refused_and_a_torn_header_is_started_over() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("spool.bin"), b"something else entirely").unwrap();
        let e = Spool::open(dir.path(), 1 << 20).unwrap_err();
        assert!(e.to_string().contains("not a spool file"), "{e}");
        let r = repair(dir.path()).unwrap();
        assert_eq!(std::fs::read(r.moved_to.unwrap()).unwrap(), b"something else entirely");
        assert_eq!(file(dir.path()), MAGIC);
        Spool::open(dir.path(), 1 << 20).unwrap();

        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("spool.bin"), &MAGIC[..3]).unwrap();
        assert!(matches!(
            inspect(dir.path()).unwrap().damage,
            Some(Damage::Torn { at: 0, .. })
        ));
    }

    #[test]
    fn a_length_no_record_has_is_corruption_not_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let end = spool_with(dir.path(), 2);
        let mut bytes = file(dir.path());
        bytes.extend_from_slice(&u32::MAX.to_le_bytes());
        bytes.extend_from_slice(&[0; 12]);
        std::fs::write(dir.path().join("spool.bin"), &bytes).unwrap();
        assert!(matches!(inspect(dir.path()).unwrap().damage, Some(Damage::Corrupt { at, .. }) if at == end));
    }
}
