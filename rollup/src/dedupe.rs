//! One shard's memory of the event ids it has counted: the exactly-once-per-event core.
//!
//! An id is remembered under its event's minute, for as long as a copy of the event could
//! still be aggregated or is likely still to arrive: while the minute is not before
//! `minute_of(watermark - lateness - retry_window)` (the *horizon*). Decisions depend on the
//! watermark alone, never on when memory was freed or on the wall clock, so a replay of the
//! same records from the same commit decides the same.
//!
//! Why this catches every copy that could be counted twice: a copy can only be aggregated if
//! its event time is at least `watermark - lateness`, so its minute is at or after the horizon,
//! and the first copy was remembered then (the watermark only grows, so the horizon did not
//! pass it since). A copy from before the horizon is dead-lettered as late, never aggregated.
//! The retry window only decides how long such late copies are still called duplicates.
//!
//! The set is exact (no probabilistic structure can call a first copy a duplicate); ids
//! added since the last commit are handed out with it ([`Dedupe::take_commit`]), so the
//! stored state is the committed state.
use crate::id_set::IdSet;
use crate::window::{Lateness, minute_of};
use std::collections::BTreeMap;

/// Event ids first seen in one minute of event time: what a commit stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenIds {
    /// The minute of the events' time.
    pub minute: i64,
    /// The ids (UUIDv7 bits), in the order they were first seen.
    pub ids: Vec<u128>,
}

impl SeenIds {
    /// The ids as stored: 16 big-endian bytes each.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.ids.iter().flat_map(|id| id.to_be_bytes()).collect()
    }

    /// Inverse of [`SeenIds::to_bytes`]; `None` if the length is not a multiple of 16.
    pub fn from_bytes(minute: i64, bytes: &[u8]) -> Option<Self> {
        if !bytes.len().is_multiple_of(16) {
            return None;
        }
        let ids = bytes
            .chunks_exact(16)
            .map(|c| {
                let mut b = [0u8; 16];
                b.copy_from_slice(c);
                u128::from_be_bytes(b)
            })
            .collect();
        Some(Self { minute, ids })
    }
}

/// The dedupe part of one shard commit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeenCommit {
    /// Ids first seen since the last commit (or inherited from parent shards), by minute.
    pub added: Vec<SeenIds>,
    /// Stored ids of minutes before this one may be deleted (the horizon moved).
    pub forget_before_minute: Option<i64>,
    /// The shard's count of duplicates so far, when it changed (it replaces the stored one).
    pub duplicates: Option<u64>,
}

/// What [`Dedupe::check`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// Not seen before: now remembered.
    First,
    /// A copy of an event already counted: drop it.
    Duplicate,
    /// Before the horizon: not remembered (any copy that old is late).
    BeyondHorizon,
}

/// How long, in ms of event time beyond the allowed lateness, ids are remembered by
/// default: covers the producer's record TTL (2 minutes) and an emitter client's retries
/// (8 attempts, backoff up to 30 s).
pub const DEFAULT_RETRY_WINDOW_MS: i64 = 5 * 60_000;

/// How long ids are remembered beyond the allowed lateness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Horizon {
    /// The allowed lateness (copies within it could be aggregated: always covered).
    pub lateness: Lateness,
    /// How much longer, in ms of event time, to recognise copies that would otherwise be
    /// dead-lettered as late (covers producer retries and emitter resends).
    pub retry_window_ms: i64,
}

impl Default for Horizon {
    fn default() -> Self {
        Self {
            lateness: Lateness::default(),
            retry_window_ms: DEFAULT_RETRY_WINDOW_MS,
        }
    }
}

impl Horizon {
    /// The first minute still remembered under `watermark_ms`.
    pub fn first_minute(&self, watermark_ms: Option<i64>) -> i64 {
        match watermark_ms {
            None => i64::MIN,
            Some(w) => minute_of(
                w.saturating_sub(self.lateness.allowed_ms)
                    .saturating_sub(self.retry_window_ms),
            ),
        }
    }
}

/// One shard's remembered ids.
#[derive(Debug, Clone)]
pub struct Dedupe {
    horizon: Horizon,
    minutes: BTreeMap<i64, IdSet>,
    fresh: BTreeMap<i64, Vec<u128>>,
    /// The horizon already persisted (stored minutes before it are gone or going).
    forgotten_before: i64,
    duplicates: u64,
    duplicates_changed: bool,
}

impl Dedupe {
    /// A shard with no history.
    pub fn new(horizon: Horizon) -> Self {
        Self {
            horizon,
            minutes: BTreeMap::new(),
            fresh: BTreeMap::new(),
            forgotten_before: i64::MIN,
            duplicates: 0,
            duplicates_changed: false,
        }
    }

    /// A shard resumed from its last commit: its stored ids and count, and (when it starts
    /// for the first time after a split or merge) its parents' ids, which become its own at
    /// its first commit. Ids before the horizon are left out.
    pub fn restore(
        horizon: Horizon,
        watermark_ms: Option<i64>,
        own: impl IntoIterator<Item = SeenIds>,
        inherited: impl IntoIterator<Item = SeenIds>,
        duplicates: u64,
    ) -> Self {
        let mut s = Self::new(horizon);
        s.duplicates = duplicates;
        let first = horizon.first_minute(watermark_ms);
        s.forgotten_before = first;
        for part in own.into_iter().filter(|p| p.minute >= first) {
            let set = s.minutes.entry(part.minute).or_default();
            for id in part.ids {
                set.insert(id);
            }
        }
        for part in inherited.into_iter().filter(|p| p.minute >= first) {
            let set = s.minutes.entry(part.minute).or_default();
            let fresh = s.fresh.entry(part.minute).or_default();
            for id in part.ids {
                if set.insert(id) {
                    fresh.push(id);
                }
            }
        }
        s
    }

    /// Looks `id` up for an event at `event_time_ms`, read when the shard's watermark was
    /// `watermark_ms`, and remembers it if it is new.
    pub fn check(&mut self, id: u128, event_time_ms: i64, watermark_ms: Option<i64>) -> Seen {
        let minute = minute_of(event_time_ms);
        if minute < self.horizon.first_minute(watermark_ms) {
            return Seen::BeyondHorizon;
        }
        if self.minutes.entry(minute).or_default().insert(id) {
            self.fresh.entry(minute).or_default().push(id);
            Seen::First
        } else {
            self.duplicates += 1;
            self.duplicates_changed = true;
            Seen::Duplicate
        }
    }

    /// What the next commit stores, given the shard's watermark then.
    pub fn take_commit(&mut self, watermark_ms: Option<i64>) -> SeenCommit {
        let first = self.horizon.first_minute(watermark_ms);
        let added = std::mem::take(&mut self.fresh)
            .into_iter()
            .filter(|(minute, _)| *minute >= first)
            .map(|(minute, ids)| SeenIds { minute, ids })
            .collect();
        let forget_before_minute = (first > self.forgotten_before).then_some(first);
        SeenCommit {
            added,
            forget_before_minute,
            duplicates: std::mem::take(&mut self.duplicates_changed).then_some(self.duplicates),
        }
    }

    /// Records that the last taken commit is durable: minutes before its horizon are freed.
    pub fn committed(&mut self, seen: &SeenCommit) {
        if let Some(first) = seen.forget_before_minute {
            self.forgotten_before = first;
            self.minutes = self.minutes.split_off(&first);
        }
    }

    /// Duplicates found in this shard so far (including before the last restore).
    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }

    /// Ids held in memory.
    pub fn remembered(&self) -> usize {
        self.minutes.values().map(IdSet::len).sum()
    }

    /// Heap bytes of the id sets (the uncommitted list adds 16 bytes per id until the next
    /// commit).
    pub fn heap_bytes(&self) -> usize {
        self.minutes.values().map(IdSet::heap_bytes).sum::<usize>()
            + self.fresh.values().map(|v| v.capacity() * 16).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MIN: i64 = 60_000;

    fn horizon(retry_minutes: i64) -> Horizon {
        Horizon {
            lateness: Lateness { allowed_ms: 5 * MIN },
            retry_window_ms: retry_minutes * MIN,
        }
    }

    #[test]
    fn a_copy_is_a_duplicate_and_counted() {
        let mut d = Dedupe::new(horizon(5));
        assert_eq!(d.check(7, 10 * MIN, None), Seen::First);
        assert_eq!(d.check(7, 10 * MIN, Some(10 * MIN)), Seen::Duplicate);
        assert_eq!(d.check(8, 10 * MIN, Some(10 * MIN)), Seen::First);
        assert_eq!(d.duplicates(), 1);
    }

    #[test]
    fn before_the_horizon_nothing_is_remembered() {
        let mut d = Dedupe::new(horizon(5));
        // Watermark 30 min: the horizon is minute 20.
        assert_eq!(d.check(1, 19 * MIN + 59_999, Some(30 * MIN)), Seen::BeyondHorizon);
        assert_eq!(d.check(1, 19 * MIN + 59_999, Some(30 * MIN)), Seen::BeyondHorizon);
        assert_eq!(d.check(2, 20 * MIN, Some(30 * MIN)), Seen::First);
        assert_eq!(d.remembered(), 1);
    }

    #[test]
    fn commits_hand_out_new_ids_once_and_forget_behind_the_horizon() {
        let mut d = Dedupe::new(horizon(0));
        d.check(1, MIN, None);
        d.check(2, 2 * MIN, Some(MIN));
        d.check(2, 2 * MIN, Some(2 * MIN));
        let c = d.take_commit(Some(2 * MIN));
        assert_eq!(
            c.added,
            vec![
                SeenIds {
                    minute: 1,
                    ids: vec![1]
                },
                SeenIds {
                    minute: 2,
                    ids: vec![2]
                }
            ]
        );
        assert_eq!(c.duplicates, Some(1));
        d.committed(&c);
        let c = d.take_commit(Some(2 * MIN));
        assert!(c.added.is_empty() && c.duplicates.is_none() && c.forget_before_minute.is_none());
        d.check(3, 8 * MIN, Some(2 * MIN));
        let c = d.take_commit(Some(8 * MIN));
        assert_eq!(c.forget_before_minute, Some(3));
        d.committed(&c);
        assert_eq!(d.remembered(), 1);
    }

    #[test]
    fn inherited_ids_are_recognised_and_stored_at_the_first_commit() {
        let parent = vec![SeenIds {
            minute: 4,
            ids: vec![9, 10],
        }];
        let mut d = Dedupe::restore(horizon(5), None, [], parent.clone(), 0);
        assert_eq!(d.check(9, 4 * MIN, None), Seen::Duplicate);
        assert_eq!(d.take_commit(None).added, parent);
    }

    #[test]
    fn ids_round_trip_through_bytes() {
        let s = SeenIds {
            minute: -3,
            ids: vec![1, u128::MAX, 0x0190_0000_0000_7000_8000_0000_0000_0001],
        };
        assert_eq!(SeenIds::from_bytes(-3, &s.to_bytes()), Some(s));
        assert_eq!(SeenIds::from_bytes(0, &[0; 15]), None);
    }

    /// The model: a copy is a duplicate exactly when an earlier copy of the same id with the
    /// same minute was not beyond the horizon when read.
    fn model(events: &[(u128, i64)], h: Horizon) -> Vec<Seen> {
        let mut watermark: Option<i64> = None;
        let mut seen: Vec<(u128, i64)> = Vec::new();
        let mut out = Vec::new();
        for &(id, t) in events {
            let minute = minute_of(t);
            let answer = if minute < h.first_minute(watermark) {
                Seen::BeyondHorizon
            } else if seen.contains(&(id, minute)) {
                Seen::Duplicate
            } else {
                seen.push((id, minute));
                Seen::First
            };
            out.push(answer);
            watermark = Some(watermark.map_or(t, |w| w.max(t)));
        }
        out
    }

    proptest! {
        /// Whatever the commit points and restores, the answers are the model's: memory
        /// freed at a commit, or reloaded from the commits, never changes a decision.
        #[test]
        fn commits_and_restores_never_change_an_answer(
            events in proptest::collection::vec((1u128..40, 0i64..40 * MIN), 1..300),
            cuts in proptest::collection::vec(0usize..300, 0..8),
            retry in 0i64..6,
        ) {
            let h = horizon(retry);
            let expected = model(&events, h);
            let mut stored: Vec<SeenIds> = Vec::new();
            let mut stored_dups = 0u64;
            let mut d = Dedupe::new(h);
            let mut watermark: Option<i64> = None;
            for (i, &(id, t)) in events.iter().enumerate() {
                prop_assert_eq!(d.check(id, t, watermark), expected[i], "event {}", i);
                watermark = Some(watermark.map_or(t, |w| w.max(t)));
                if cuts.contains(&i) {
                    let c = d.take_commit(watermark);
                    if let Some(f) = c.forget_before_minute {
                        stored.retain(|p| p.minute >= f);
                    }
                    stored.extend(c.added.iter().cloned());
                    if let Some(n) = c.duplicates {
                        stored_dups = n;
                    }
                    d.committed(&c);
                    // Every other commit, a new owner takes over from the stored state.
                    if i % 2 == 0 {
                        d = Dedupe::restore(h, watermark, stored.clone(), [], stored_dups);
                    }
                }
            }
            let dups = expected.iter().filter(|s| **s == Seen::Duplicate).count() as u64;
            prop_assert_eq!(d.duplicates(), dups);
        }
    }
}
