//! When and how the writer task uses the on-disk [`Spool`]: it starts spooling once every
//! write has failed for `SpoolConfig::after` with records waiting (sealed records then follow
//! them to disk while it holds anything, to keep each shard's order), fsyncs once per round
//! of the task, keeps up to [`READ_BACK_BYTES`] of spooled records in memory to send like any
//! other, and advances the spool's offset file past a record only once every record before
//! it is settled (written or given up on).
use crate::batcher::Ready;
use crate::config::SpoolConfig;
use crate::delivery::Ack;
use crate::shard_map::ShardMap;
use crate::spool::Spool;
use std::collections::{BTreeMap, VecDeque};
use std::io;

/// Most bytes of spooled records read back into memory at once.
pub(crate) const READ_BACK_BYTES: usize = 4 << 20;

/// The spool and the writer task's bookkeeping around it.
#[derive(Debug)]
pub(crate) struct SpoolDriver {
    /// The files.
    spool: Spool,
    /// How long every write must have failed before waiting records are spooled, ms
    /// (`SpoolConfig::after`).
    after_ms: u64,
    /// How long the stream has been failing.
    failing: Failing,
    /// Acks of spooled records not yet read back, by the spool offset just past each, in
    /// offset order. Records without any have no entry.
    acks: VecDeque<(u64, Vec<(u32, Ack)>)>,
    /// Records read back and not yet settled.
    read_back: ReadBack,
    /// Records appended since the spool's last fsync.
    dirty: bool,
}

/// What became of a record offered to the spool.
#[derive(Debug)]
pub(crate) enum Offer {
    /// It is on disk (durable at the next [`SpoolDriver::sync`]); the buffer permits it held
    /// are to be freed.
    Spooled {
        /// Its buffer permits.
        permits: usize,
    },
    /// The spool is full or could not be written: the record stays in memory.
    Kept(Ready<Ack>),
}

impl SpoolDriver {
    /// Opens the spool in `config.dir`; what an earlier producer left there is read back
    /// (and so sent) first.
    pub(crate) fn open(config: &SpoolConfig) -> io::Result<Self> {
        Ok(Self {
            spool: Spool::open(&config.dir, config.max_bytes)?,
            after_ms: config.after.as_millis() as u64,
            failing: Failing::default(),
            acks: VecDeque::new(),
            read_back: ReadBack::default(),
            dirty: false,
        })
    }

    /// User records an earlier producer left in the spool: accepted by it, sent by this one.
    pub(crate) fn inherited_user_records(&self) -> u64 {
        self.spool.inherited_user_records()
    }

    /// Whether nothing spooled is left to settle. While something is, records sealed later
    /// go to the spool behind it rather than overtake it.
    pub(crate) fn is_empty(&self) -> bool {
        self.spool.is_empty()
    }

    /// The outcome of a call at `now` (ms): whether the stream failed in a way worth
    /// retrying (unavailable, throttling) rather than taking every record.
    pub(crate) fn writes_done(&mut self, now: u64, unavailable: bool) {
        self.failing.writes_done(now, unavailable);
    }

    /// Whether the records waiting in memory should go to the spool at `now` (ms): every
    /// write has failed for `after`, records are waiting, and the spool is not already in
    /// use (then new records reach it on their own).
    pub(crate) fn should_spool(&self, now: u64, records_waiting: bool) -> bool {
        records_waiting && self.is_empty() && self.failing.for_at_least(now, self.after_ms)
    }

    /// Whether `ready` came from the spool: it settles by its offset, so it is never spooled
    /// again, never taken apart, and never expires.
    pub(crate) fn was_read_back(ready: &Ready<Ack>) -> bool {
        ready.spool_offset != 0
    }

    /// Appends a record to the spool; keeps it in memory when the spool is full or fails.
    pub(crate) fn offer(&mut self, ready: Ready<Ack>) -> Offer {
        if !self
            .spool
            .has_room(ready.record.data.len() + ready.record.partition_key.len())
        {
            return Offer::Kept(ready);
        }
        match self.spool.append(&ready.record, ready.user_records) {
            Ok(offset) => {
                self.dirty = true;
                if !ready.acks.is_empty() {
                    self.acks.push_back((offset, ready.acks));
                }
                Offer::Spooled { permits: ready.permits }
            }
            Err(e) => {
                tracing::error!(error = %e, "writing the spool failed; keeping the record in memory");
                Offer::Kept(ready)
            }
        }
    }

    /// Makes what was spooled durable: once per round of the task, not per record.
    pub(crate) fn sync(&mut self) {
        if std::mem::take(&mut self.dirty)
            && let Err(e) = self.spool.sync()
        {
            tracing::error!(error = %e, "syncing the spool failed");
        }
    }

    /// Reads spooled records back, in order, up to [`READ_BACK_BYTES`] in memory: they are
    /// sent (and retried) like any record, which is also how the spool finds the stream back.
    /// Each is placed by `map`, carries its acks, holds no buffer permits, and is stamped
    /// with the time `now` gives (ms) once the records are read.
    pub(crate) fn read_back(&mut self, map: &ShardMap, now: impl FnOnce() -> u64) -> Vec<Ready<Ack>> {
        let Some(budget) = read_back_budget(self.spool.pending_bytes(), self.read_back.bytes) else {
            return Vec::new();
        };
        let records = match self.spool.read_back(budget) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "reading the spool back failed");
                return Vec::new();
            }
        };
        let now = now();
        let mut ready = Vec::with_capacity(records.len());
        for (spooled, offset) in records {
            let acks = match self.acks.front() {
                Some((o, _)) if *o == offset => self.acks.pop_front().map(|(_, a)| a).unwrap_or_default(),
                _ => Vec::new(),
            };
            let size = spooled.record.partition_key.len() + spooled.record.data.len();
            self.read_back.read(offset, size);
            let shard = map.index_of(spooled.record.hash_key());
            ready.push(Ready {
                record: spooled.record,
                shard,
                user_records: spooled.user_records,
                permits: 0,
                attempts: 0,
                first_ms: now,
                not_before_ms: 0,
                spool_offset: offset,
                acks,
            });
        }
        ready
    }

    /// `ready` was written or given up on: if it came from the spool, the spool's offset
    /// advances past every record settled without a gap before it.
    pub(crate) fn settled(&mut self, ready: &Ready<Ack>) {
        if !Self::was_read_back(ready) {
            return;
        }
        let size = ready.record.partition_key.len() + ready.record.data.len();
        if let Some(offset) = self.read_back.settled(ready.spool_offset, size)
            && let Err(e) = self.spool.settle(offset)
        {
            tracing::error!(error = %e, "saving the spool's offset failed");
        }
    }
}

/// How long every write has been failing.
#[derive(Debug, Default)]
struct Failing {
    /// Since when (ms) every write has failed retryably; `None` after a success.
    since: Option<u64>,
}

impl Failing {
    /// A call's outcome at `now`: a retryable failure starts (or continues) the failing
    /// time, anything else ends it.
    fn writes_done(&mut self, now: u64, unavailable: bool) {
        self.since = if unavailable { self.since.or(Some(now)) } else { None };
    }

    /// Whether every write has failed for at least `ms` at `now`.
    fn for_at_least(&self, now: u64, ms: u64) -> bool {
        self.since.is_some_and(|since| now.saturating_sub(since) >= ms)
    }
}

/// Bytes that may be read back now, given the spool's unread bytes and the bytes of
/// read-back records already in memory: `None` when there is nothing to read or memory holds
/// [`READ_BACK_BYTES`] already.
fn read_back_budget(pending: u64, in_memory: usize) -> Option<usize> {
    (pending != 0 && in_memory < READ_BACK_BYTES).then(|| READ_BACK_BYTES - in_memory)
}

/// Records read back from the spool and not yet settled.
#[derive(Debug, Default)]
struct ReadBack {
    /// By the spool offset just past each: whether it is settled (written or given up on).
    settled: BTreeMap<u64, bool>,
    /// Bytes (partition key and data) of read-back records in memory.
    bytes: usize,
}

impl ReadBack {
    /// A record of `size` bytes ending at `offset` was read back.
    fn read(&mut self, offset: u64, size: usize) {
        self.bytes += size;
        self.settled.insert(offset, false);
    }

    /// The record ending at `offset` is settled: the offset the spool is now settled up to
    /// (past every record settled without a gap before it), if that advanced.
    fn settled(&mut self, offset: u64, size: usize) -> Option<u64> {
        self.bytes = self.bytes.saturating_sub(size);
        self.settled.insert(offset, true);
        let mut upto = None;
        while let Some(entry) = self.settled.first_entry() {
            if !*entry.get() {
                break;
            }
            upto = Some(*entry.key());
            entry.remove();
        }
        upto
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::Delivery;
    use bytes::Bytes;
    use inlet_seams::PutRecord;
    use std::path::Path;
    use std::time::Duration;

    fn driver(dir: &Path, max_bytes: u64) -> SpoolDriver {
        SpoolDriver::open(&SpoolConfig {
            dir: dir.to_owned(),
            max_bytes,
            after: Duration::from_secs(5),
        })
        .unwrap()
    }

    fn ready(i: u8, data_len: usize) -> Ready<Ack> {
        Ready {
            record: PutRecord {
                partition_key: format!("key-{i}"),
                explicit_hash_key: Some(u128::from(i) << 126),
                data: Bytes::from(vec![i; data_len]),
            },
            shard: 0,
            user_records: u32::from(i) + 1,
            permits: 1_000 + usize::from(i),
            attempts: 3,
            first_ms: 7,
            not_before_ms: 9,
            spool_offset: 0,
            acks: Vec::new(),
        }
    }

    fn spool(d: &mut SpoolDriver, r: Ready<Ack>) {
        assert!(matches!(d.offer(r), Offer::Spooled { .. }));
    }

    fn map(n: u32) -> ShardMap {
        ShardMap::new(&crate::shard_map::tests::shards(n)).unwrap()
    }

    fn offset_file(dir: &Path) -> Option<u64> {
        let b = std::fs::read(dir.join("spool.offset")).ok()?;
        Some(u64::from_le_bytes(b.try_into().unwrap()))
    }

    #[test]
    fn failing_time_counts_from_the_first_failure_and_a_success_ends_it() {
        let mut f = Failing::default();
        assert!(!f.for_at_least(10_000, 0), "no failure yet");
        f.writes_done(1_000, true);
        f.writes_done(4_000, true);
        assert!(!f.for_at_least(5_999, 5_000));
        assert!(
            f.for_at_least(6_000, 5_000),
            "measured from the first failure, not the last"
        );
        f.writes_done(6_500, false);
        assert!(!f.for_at_least(60_000, 5_000), "a success ends it");
        f.writes_done(70_000, true);
        assert!(!f.for_at_least(74_999, 5_000) && f.for_at_least(75_000, 5_000));
    }

    #[test]
    fn spools_only_after_the_configured_time_of_failed_writes_with_records_waiting() {
        let dir = tempfile::tempdir().unwrap();
        let mut d = driver(dir.path(), 1 << 20);
        assert!(!d.should_spool(60_000, true), "the stream never failed");
        d.writes_done(1_000, true);
        d.writes_done(3_000, true);
        assert!(!d.should_spool(5_999, true), "failing for less than 5 s");
        assert!(d.should_spool(6_000, true), "failing for 5 s with records waiting");
        assert!(!d.should_spool(6_000, false), "nothing waiting to spool");
        d.writes_done(6_000, false);
        assert!(!d.should_spool(20_000, true), "a write succeeded since");
        d.writes_done(20_000, true);
        assert!(d.should_spool(25_000, true));
        spool(&mut d, ready(1, 10));
        assert!(!d.is_empty());
        assert!(
            !d.should_spool(25_000, true),
            "already spooling: sealed records follow on their own"
        );
    }

    #[test]
    fn a_spooled_record_frees_its_permits_and_one_that_does_not_fit_stays_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let mut d = driver(dir.path(), 1_000);
        assert!(d.is_empty());
        match d.offer(ready(1, 2_000)) {
            Offer::Kept(r) => assert_eq!((r.permits, r.record.data.len()), (1_001, 2_000)),
            Offer::Spooled { .. } => panic!("a record larger than the spool was spooled"),
        }
        assert!(d.is_empty(), "nothing was spooled");
        assert!(matches!(d.offer(ready(2, 100)), Offer::Spooled { permits: 1_002 }));
        assert!(!d.is_empty());
    }

    #[tokio::test]
    async fn read_back_records_carry_their_acks_by_offset_are_placed_by_the_map_and_hold_no_permits() {
        let dir = tempfile::tempdir().unwrap();
        let mut d = driver(dir.path(), 1 << 20);
        let mut deliveries = Vec::new();
        for i in [0u8, 1, 2, 3] {
            let mut r = ready(i, 10);
            // Records 1 and 3 are confirmed (two user records each); 0 and 2 are not.
            if i % 2 == 1 {
                for sub in [0, 1] {
                    let (ack, delivery) = Delivery::channel();
                    r.acks.push((sub, ack));
                    deliveries.push((i, sub, delivery));
                }
            }
            spool(&mut d, r);
        }
        d.sync();
        let map = map(4);
        let back = d.read_back(&map, || 42);
        assert_eq!(back.len(), 4);
        let mut offsets = Vec::new();
        for (i, r) in (0u8..).zip(&back) {
            assert_eq!(r.record, ready(i, 10).record, "in order");
            assert_eq!(r.user_records, u32::from(i) + 1);
            assert_eq!(r.shard, usize::from(i), "placed by the current map");
            assert_eq!((r.permits, r.attempts, r.first_ms, r.not_before_ms), (0, 0, 42, 0));
            assert!(SpoolDriver::was_read_back(r));
            let subs: Vec<u32> = r.acks.iter().map(|(s, _)| *s).collect();
            assert_eq!(subs, if i % 2 == 1 { vec![0, 1] } else { vec![] }, "record {i}'s acks");
            offsets.push(r.spool_offset);
        }
        assert!(offsets.is_sorted() && offsets[0] > 0);
        // Each ack is the one its sender holds the Delivery of.
        for r in back {
            let i = r.record.data[0];
            for (sub, ack) in r.acks {
                ack.send(Err(crate::DeliveryError::new(&format!("{i}/{sub}"), "", 0, false)))
                    .unwrap();
            }
        }
        for (i, sub, delivery) in deliveries {
            let got = delivery.await.unwrap_err();
            assert_eq!(got.code, format!("{i}/{sub}"));
        }
    }

    #[test]
    fn read_back_budget_fills_memory_up_to_4_mib() {
        assert_eq!(read_back_budget(0, 0), None, "nothing spooled");
        assert_eq!(read_back_budget(10, 0), Some(4 << 20));
        assert_eq!(read_back_budget(10, 3 << 20), Some(1 << 20));
        assert_eq!(read_back_budget(10, 4 << 20), None, "memory full");
        assert_eq!(read_back_budget(10, 5 << 20), None);
    }

    #[test]
    fn reads_back_at_most_4_mib_until_some_of_it_settles() {
        let dir = tempfile::tempdir().unwrap();
        let mut d = driver(dir.path(), 1 << 30);
        for i in 0..6 {
            spool(&mut d, ready(i, 1 << 20));
        }
        let map = map(1);
        let first = d.read_back(&map, || 0);
        assert_eq!(first.len(), 4, "4 MiB of 1 MiB records");
        assert!(d.read_back(&map, || 0).is_empty(), "memory holds 4 MiB already");
        d.settled(&first[1]);
        assert_eq!(
            d.read_back(&map, || 0).len(),
            1,
            "one record settled, one more read back"
        );
        assert!(d.read_back(&map, || 0).is_empty());
    }

    #[test]
    fn the_offset_advances_only_past_records_settled_without_a_gap() {
        let mut r = ReadBack::default();
        for offset in [10, 20, 30, 40] {
            r.read(offset, 5);
        }
        assert_eq!(r.bytes, 20);
        assert_eq!(r.settled(20, 5), None, "10 is still open");
        assert_eq!(r.settled(40, 5), None);
        assert_eq!(r.settled(10, 5), Some(20), "10 and 20 settled; 30 still open");
        assert_eq!(r.settled(30, 5), Some(40));
        assert_eq!(r.bytes, 0);
        assert!(r.settled.is_empty());
    }

    #[test]
    fn the_offset_file_moves_only_once_everything_before_is_settled() {
        let dir = tempfile::tempdir().unwrap();
        let mut d = driver(dir.path(), 1 << 20);
        for i in 0..3 {
            spool(&mut d, ready(i, 10));
        }
        d.sync();
        let back = d.read_back(&map(1), || 0);
        assert_eq!(back.len(), 3);
        // A record not from the spool settles nothing.
        d.settled(&ready(9, 10));
        d.settled(&back[1]);
        assert_eq!(offset_file(dir.path()), None, "record 0 is not settled yet");
        d.settled(&back[0]);
        assert_eq!(offset_file(dir.path()), Some(back[1].spool_offset));
        assert!(!d.is_empty(), "record 2 is not settled yet");
        d.settled(&back[2]);
        assert!(d.is_empty(), "everything settled");
        assert_eq!(
            offset_file(dir.path()),
            Some(crate::spool::MAGIC.len() as u64),
            "and the spool started over (just past its header)"
        );
    }
}
