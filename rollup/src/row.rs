//! Rollup rows: one per (minute, title) and (minute, game), per shard while partial.
//! Sums are integers so they are exact; distinct counts and percentiles are mergeable
//! sketches. Merging partials is commutative and associative.
use inlet_sketches::{Hll, QuantileSketch};

/// Viewing aggregates of one title in one minute.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ViewingAgg {
    /// Viewing events aggregated (of any kind).
    pub events: i64,
    /// PLAY_START count.
    pub plays: i64,
    /// Distinct profile ids over all viewing events.
    pub viewers: Hll,
    /// Sum of the watched interval each HEARTBEAT carries.
    pub watch_ms: i64,
    /// REBUFFER_END count.
    pub rebuffers: i64,
    /// Sum of REBUFFER_END durations.
    pub rebuffer_ms: i64,
    /// Sum of HEARTBEAT bitrates; mean = sum / samples.
    pub bitrate_sum_kbps: i64,
    /// HEARTBEATs with a bitrate.
    pub bitrate_samples: i64,
    /// PLAY_START startup times.
    pub startup_ms: QuantileSketch,
    /// ERROR count.
    pub errors: i64,
}

impl ViewingAgg {
    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &ViewingAgg) {
        self.events += other.events;
        self.plays += other.plays;
        self.viewers.merge(&other.viewers);
        self.watch_ms += other.watch_ms;
        self.rebuffers += other.rebuffers;
        self.rebuffer_ms += other.rebuffer_ms;
        self.bitrate_sum_kbps += other.bitrate_sum_kbps;
        self.bitrate_samples += other.bitrate_samples;
        self.startup_ms.merge(&other.startup_ms);
        self.errors += other.errors;
    }
}

/// Gameplay aggregates of one game in one minute.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GameAgg {
    /// Gameplay events aggregated (of any kind).
    pub events: i64,
    /// SESSION_START count.
    pub sessions: i64,
    /// Distinct player ids over all gameplay events.
    pub players: Hll,
    /// SHOT count.
    pub shots: i64,
    /// HIT count.
    pub hits: i64,
    /// KILL count.
    pub kills: i64,
    /// DEATH count.
    pub deaths: i64,
    /// PURCHASE count.
    pub purchases: i64,
    /// Sum of HIT damage.
    pub damage: i64,
    /// Sum of PURCHASE amounts, in cents.
    pub revenue_cents: i64,
}

impl GameAgg {
    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &GameAgg) {
        self.events += other.events;
        self.sessions += other.sessions;
        self.players.merge(&other.players);
        self.shots += other.shots;
        self.hits += other.hits;
        self.kills += other.kills;
        self.deaths += other.deaths;
        self.purchases += other.purchases;
        self.damage += other.damage;
        self.revenue_cents += other.revenue_cents;
    }
}

/// A viewing row: key and aggregates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewingRow {
    /// UTC minute since the epoch.
    pub minute: i64,
    /// Title id.
    pub title_id: String,
    /// Aggregates.
    pub agg: ViewingAgg,
}

/// A gameplay row: key and aggregates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GameRow {
    /// UTC minute since the epoch.
    pub minute: i64,
    /// Game id.
    pub game_id: String,
    /// Aggregates.
    pub agg: GameAgg,
}

/// Merges rows with the same key (e.g. the per-shard partials of one minute) into one
/// row per key, sorted by key.
pub fn merge_viewing(rows: impl IntoIterator<Item = ViewingRow>) -> Vec<ViewingRow> {
    let mut map = std::collections::BTreeMap::<(i64, String), ViewingAgg>::new();
    for r in rows {
        map.entry((r.minute, r.title_id)).or_default().merge(&r.agg);
    }
    map.into_iter()
        .map(|((minute, title_id), agg)| ViewingRow { minute, title_id, agg })
        .collect()
}

/// Merges rows with the same key into one row per key, sorted by key.
pub fn merge_games(rows: impl IntoIterator<Item = GameRow>) -> Vec<GameRow> {
    let mut map = std::collections::BTreeMap::<(i64, String), GameAgg>::new();
    for r in rows {
        map.entry((r.minute, r.game_id)).or_default().merge(&r.agg);
    }
    map.into_iter()
        .map(|((minute, game_id), agg)| GameRow { minute, game_id, agg })
        .collect()
}
