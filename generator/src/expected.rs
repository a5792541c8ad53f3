//! The exact totals a correct pipeline reaches for a workload.
//!
//! Written apart from the consumer's rollup code on purpose: it reads the events the
//! generator made and adds up what each rollup column means (the contract in
//! `docs/architecture.md`), so the two can disagree when one of them is wrong. Lateness
//! depends on each shard's record order, so the caller says which shard each event goes to.
//!
//! Copies ([`Truth::Copy`]) follow the dedupe contract: a copy whose minute is not before
//! `minute(watermark - lateness - retry window)` of its shard is a duplicate (its original,
//! on the same shard and earlier, was remembered then); an older one is late.
use crate::workload::{GenEvent, Truth};
use inlet_rollup::row::{GameAgg, GameRow, ViewingAgg, ViewingRow};
use inlet_schemas::events::{envelope::Body, gameplay, viewing};
use std::collections::BTreeMap;

/// Expected results.
#[derive(Debug, Clone)]
pub struct Expected {
    lateness_ms: i64,
    retry_window_ms: i64,
    watermarks: Vec<Option<i64>>,
    /// Records generated (copies included).
    pub generated: u64,
    /// Copies that must be dropped as duplicates.
    pub duplicates: u64,
    /// Events that must be aggregated.
    pub aggregated: u64,
    /// Dead letters that must be filed, by kind name and field.
    pub dead: BTreeMap<(&'static str, Option<&'static str>), u64>,
    /// Viewing rows by (minute, title).
    pub viewing: BTreeMap<(i64, String), ViewingAgg>,
    /// Game rows by (minute, game).
    pub games: BTreeMap<(i64, String), GameAgg>,
}

/// One difference between expected and actual rollups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// Which row (`viewing 29454120 title-0001`).
    pub key: String,
    /// What differs.
    pub detail: String,
}

impl Expected {
    /// Expectations for a stream of `shards` shards and the given allowed lateness.
    pub fn new(shards: usize, lateness_ms: i64) -> Self {
        Self {
            lateness_ms,
            retry_window_ms: inlet_rollup::dedupe::DEFAULT_RETRY_WINDOW_MS,
            watermarks: vec![None; shards],
            generated: 0,
            duplicates: 0,
            aggregated: 0,
            dead: BTreeMap::new(),
            viewing: BTreeMap::new(),
            games: BTreeMap::new(),
        }
    }

    /// With the consumer's dedupe retry window (default 5 minutes).
    pub fn with_retry_window_ms(mut self, ms: i64) -> Self {
        self.retry_window_ms = ms;
        self
    }

    /// Distinct events generated (copies not counted).
    pub fn unique(&self) -> u64 {
        self.generated - self.duplicates
    }

    /// All dead letters.
    pub fn dead_lettered(&self) -> u64 {
        self.dead.values().sum()
    }

    /// Accounts for one event, sent in generation order to shard `shard`.
    pub fn observe(&mut self, event: &GenEvent, shard: usize) {
        self.generated += 1;
        let e = match &event.truth {
            Truth::Malformed => return *self.dead.entry(("malformed", None)).or_default() += 1,
            Truth::Invalid { field } => return *self.dead.entry(("invalid", Some(field))).or_default() += 1,
            Truth::Valid(e) => e,
            Truth::Copy(e) => return self.observe_copy(e.event_time_ms, shard),
        };
        let t = e.event_time_ms;
        let watermark = &mut self.watermarks[shard];
        if watermark.is_some_and(|w| t < w - self.lateness_ms) {
            *self.dead.entry(("late", Some("event_time_ms"))).or_default() += 1;
            return;
        }
        *watermark = Some(watermark.map_or(t, |w| w.max(t)));
        self.aggregated += 1;
        let minute = t.div_euclid(60_000);
        match &e.body {
            Some(Body::Viewing(v)) => {
                let a = self.viewing.entry((minute, v.title_id.clone())).or_default();
                a.events += 1;
                a.viewers.insert(v.profile_id.as_bytes());
                match &v.kind {
                    Some(viewing::Kind::PlayStart(p)) => {
                        a.plays += 1;
                        a.startup_ms.insert(p.startup_ms);
                    }
                    Some(viewing::Kind::Heartbeat(h)) => {
                        a.watch_ms += h.watched_ms;
                        a.bitrate_sum_kbps += h.bitrate_kbps;
                        a.bitrate_samples += 1;
                    }
                    Some(viewing::Kind::RebufferEnd(r)) => {
                        a.rebuffers += 1;
                        a.rebuffer_ms += r.duration_ms;
                    }
                    Some(viewing::Kind::Error(_)) => a.errors += 1,
                    _ => {}
                }
            }
            Some(Body::Gameplay(g)) => {
                let a = self.games.entry((minute, g.game_id.clone())).or_default();
                a.events += 1;
                a.players.insert(g.player_id.as_bytes());
                match &g.kind {
                    Some(gameplay::Kind::SessionStart(_)) => a.sessions += 1,
                    Some(gameplay::Kind::Shot(_)) => a.shots += 1,
                    Some(gameplay::Kind::Hit(h)) => {
                        a.hits += 1;
                        a.damage += h.damage;
                    }
                    Some(gameplay::Kind::Kill(_)) => a.kills += 1,
                    Some(gameplay::Kind::Death(_)) => a.deaths += 1,
                    Some(gameplay::Kind::Purchase(p)) => {
                        a.purchases += 1;
                        a.revenue_cents += p.amount_cents;
                    }
                    _ => {}
                }
            }
            None => {}
        }
    }

    fn observe_copy(&mut self, t: i64, shard: usize) {
        let remembered_from = self.watermarks[shard].map_or(i64::MIN, |w| {
            (w - self.lateness_ms - self.retry_window_ms).div_euclid(60_000)
        });
        if t.div_euclid(60_000) >= remembered_from {
            self.duplicates += 1;
        } else {
            *self.dead.entry(("late", Some("event_time_ms"))).or_default() += 1;
        }
    }

    /// Compares final (merged) rollups with the expectation, every column of every row,
    /// sketches included (their merges are exact, so they must be bit-identical).
    pub fn compare(&self, viewing: &[ViewingRow], games: &[GameRow]) -> Vec<Mismatch> {
        let mut out = Vec::new();
        let actual_v: BTreeMap<(i64, String), &ViewingAgg> = viewing
            .iter()
            .map(|r| ((r.minute, r.title_id.clone()), &r.agg))
            .collect();
        let actual_g: BTreeMap<(i64, String), &GameAgg> =
            games.iter().map(|r| ((r.minute, r.game_id.clone()), &r.agg)).collect();
        diff("viewing", &self.viewing, &actual_v, &mut out);
        diff("game", &self.games, &actual_g, &mut out);
        out
    }
}

fn diff<A: PartialEq + std::fmt::Debug>(
    what: &str,
    expected: &BTreeMap<(i64, String), A>,
    actual: &BTreeMap<(i64, String), &A>,
    out: &mut Vec<Mismatch>,
) {
    for (k, e) in expected {
        let key = format!("{what} minute {} {}", k.0, k.1);
        match actual.get(k) {
            None => out.push(Mismatch {
                key,
                detail: "missing".into(),
            }),
            Some(a) if *a != e => out.push(Mismatch {
                key,
                detail: format!("expected {e:?}, got {a:?}"),
            }),
            Some(_) => {}
        }
    }
    for k in actual.keys().filter(|k| !expected.contains_key(*k)) {
        out.push(Mismatch {
            key: format!("{what} minute {} {}", k.0, k.1),
            detail: "unexpected row".into(),
        });
    }
}
