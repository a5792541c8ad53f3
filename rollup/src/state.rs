//! One shard's rollup state: the open windows, the watermark, and which rows changed since
//! the last commit.
//!
//! Rows are cumulative per shard: a commit rewrites the whole partial row of each window
//! touched since the last commit, so writing the same commit twice is harmless.
use crate::row::{GameAgg, GameRow, ViewingAgg, ViewingRow};
use crate::window::{Lateness, minute_of};
use inlet_schemas::events::{Envelope, envelope::Body, gameplay, viewing};
use std::collections::{BTreeMap, BTreeSet};

/// What [`ShardRollup::apply`] did with an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Counted in its window.
    Aggregated,
    /// Older than the watermark minus the allowed lateness: not counted.
    Late {
        /// The shard's watermark when the event was read.
        watermark_ms: i64,
    },
    /// No body: nothing to aggregate (validation refuses these before).
    NoBody,
}

type Key = (i64, String);

/// The open windows of one shard.
#[derive(Debug, Clone, Default)]
pub struct ShardRollup {
    lateness: Lateness,
    watermark_ms: Option<i64>,
    viewing: BTreeMap<Key, ViewingAgg>,
    games: BTreeMap<Key, GameAgg>,
    dirty_viewing: BTreeSet<Key>,
    dirty_games: BTreeSet<Key>,
}

impl ShardRollup {
    /// A shard with no history.
    pub fn new(lateness: Lateness) -> Self {
        Self {
            lateness,
            ..Self::default()
        }
    }

    /// Restores a shard's state from its last commit: the watermark and the partial rows of
    /// its open windows (rows of closed windows are ignored).
    pub fn restore(
        lateness: Lateness,
        watermark_ms: Option<i64>,
        viewing: impl IntoIterator<Item = ViewingRow>,
        games: impl IntoIterator<Item = GameRow>,
    ) -> Self {
        let mut s = Self {
            lateness,
            watermark_ms,
            ..Self::default()
        };
        let open = s.first_open_minute();
        s.viewing = viewing
            .into_iter()
            .filter(|r| r.minute >= open)
            .map(|r| ((r.minute, r.title_id), r.agg))
            .collect();
        s.games = games
            .into_iter()
            .filter(|r| r.minute >= open)
            .map(|r| ((r.minute, r.game_id), r.agg))
            .collect();
        s
    }

    /// The largest event time aggregated so far.
    pub fn watermark_ms(&self) -> Option<i64> {
        self.watermark_ms
    }

    /// The first minute still open; rows before it never change again.
    pub fn first_open_minute(&self) -> i64 {
        self.lateness.first_open_minute(self.watermark_ms)
    }

    /// Aggregates one (valid) event, or says it is late.
    pub fn apply(&mut self, event: &Envelope) -> Applied {
        let t = event.event_time_ms;
        if let Some(watermark_ms) = self
            .watermark_ms
            .filter(|_| self.lateness.is_late(t, self.watermark_ms))
        {
            return Applied::Late { watermark_ms };
        }
        let minute = minute_of(t);
        match &event.body {
            None => return Applied::NoBody,
            Some(Body::Viewing(v)) => {
                let key = (minute, v.title_id.clone());
                let agg = self.viewing.entry(key.clone()).or_default();
                apply_viewing(agg, v);
                self.dirty_viewing.insert(key);
            }
            Some(Body::Gameplay(g)) => {
                let key = (minute, g.game_id.clone());
                let agg = self.games.entry(key.clone()).or_default();
                apply_gameplay(agg, g);
                self.dirty_games.insert(key);
            }
        }
        self.watermark_ms = Some(self.watermark_ms.map_or(t, |w| w.max(t)));
        Applied::Aggregated
    }

    /// The rows changed since the last call (whole cumulative partials), sorted by key.
    pub fn take_dirty(&mut self) -> (Vec<ViewingRow>, Vec<GameRow>) {
        let viewing = std::mem::take(&mut self.dirty_viewing)
            .into_iter()
            .filter_map(|k| {
                let agg = self.viewing.get(&k)?.clone();
                Some(ViewingRow {
                    minute: k.0,
                    title_id: k.1,
                    agg,
                })
            })
            .collect();
        let games = std::mem::take(&mut self.dirty_games)
            .into_iter()
            .filter_map(|k| {
                let agg = self.games.get(&k)?.clone();
                Some(GameRow {
                    minute: k.0,
                    game_id: k.1,
                    agg,
                })
            })
            .collect();
        (viewing, games)
    }

    /// Forgets closed windows that have no uncommitted change, bounding memory to the open
    /// windows. Call after a successful commit.
    pub fn evict_closed(&mut self) {
        let open = self.first_open_minute();
        let (dv, dg) = (&self.dirty_viewing, &self.dirty_games);
        self.viewing.retain(|k, _| k.0 >= open || dv.contains(k));
        self.games.retain(|k, _| k.0 >= open || dg.contains(k));
    }

    /// Open rows held in memory (viewing, games).
    pub fn open_rows(&self) -> (usize, usize) {
        (self.viewing.len(), self.games.len())
    }
}

fn apply_viewing(agg: &mut ViewingAgg, v: &inlet_schemas::events::Viewing) {
    use viewing::Kind as K;
    agg.events += 1;
    agg.viewers.insert(v.profile_id.as_bytes());
    match &v.kind {
        Some(K::PlayStart(p)) => {
            agg.plays += 1;
            agg.startup_ms.insert(p.startup_ms);
        }
        Some(K::Heartbeat(h)) => {
            agg.watch_ms += h.watched_ms;
            agg.bitrate_sum_kbps += h.bitrate_kbps;
            agg.bitrate_samples += 1;
        }
        Some(K::RebufferEnd(r)) => {
            agg.rebuffers += 1;
            agg.rebuffer_ms += r.duration_ms;
        }
        Some(K::Error(_)) => agg.errors += 1,
        Some(K::Pause(_) | K::Resume(_) | K::Seek(_) | K::RebufferStart(_) | K::BitrateChange(_) | K::Stop(_))
        | None => {}
    }
}

fn apply_gameplay(agg: &mut GameAgg, g: &inlet_schemas::events::Gameplay) {
    use gameplay::Kind as K;
    agg.events += 1;
    agg.players.insert(g.player_id.as_bytes());
    match &g.kind {
        Some(K::SessionStart(_)) => agg.sessions += 1,
        Some(K::Shot(_)) => agg.shots += 1,
        Some(K::Hit(h)) => {
            agg.hits += 1;
            agg.damage += h.damage;
        }
        Some(K::Kill(_)) => agg.kills += 1,
        Some(K::Death(_)) => agg.deaths += 1,
        Some(K::Purchase(p)) => {
            agg.purchases += 1;
            agg.revenue_cents += p.amount_cents;
        }
        Some(K::SessionEnd(_) | K::LevelUp(_)) | None => {}
    }
}
