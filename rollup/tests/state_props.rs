//! Property tests of `ShardRollup` on realistic generated events:
//!
//! (a) exactly once under restarts: commits and crashes at random points (restoring from
//!     what was committed and replaying from the last commit) give the same warehouse rows
//!     and the same Late/Aggregated decisions as one uninterrupted run;
//! (b) memory is bounded: after `evict_closed` only open windows stay in memory;
//! (c) the lateness decision is `Lateness::is_late` of the watermark before the event.

// Tests may panic on unexpected values: that is how they fail.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use inlet_generator::{Generator, GeneratorConfig, Truth};
use inlet_rollup::{Applied, GameAgg, GameRow, Lateness, ShardRollup, ViewingAgg, ViewingRow, minute_of};
use inlet_schemas::events::Envelope;
use proptest::prelude::*;
use std::collections::{BTreeMap, HashSet};

type Key = (i64, String);

/// What the warehouse holds: a commit's rows replace the stored ones of the same key.
#[derive(Debug, Default, Clone, PartialEq)]
struct Warehouse {
    viewing: BTreeMap<Key, ViewingAgg>,
    games: BTreeMap<Key, GameAgg>,
}

impl Warehouse {
    fn write(&mut self, (viewing, games): (Vec<ViewingRow>, Vec<GameRow>)) {
        for r in viewing {
            self.viewing.insert((r.minute, r.title_id), r.agg);
        }
        for r in games {
            self.games.insert((r.minute, r.game_id), r.agg);
        }
    }

    /// A shard's partial rows from `from_minute` on, as `Warehouse::shard_partials` gives them.
    fn partials(&self, from_minute: i64) -> (Vec<ViewingRow>, Vec<GameRow>) {
        let viewing = self
            .viewing
            .iter()
            .filter(|(k, _)| k.0 >= from_minute)
            .map(|(k, agg)| ViewingRow {
                minute: k.0,
                title_id: k.1.clone(),
                agg: agg.clone(),
            })
            .collect();
        let games = self
            .games
            .iter()
            .filter(|(k, _)| k.0 >= from_minute)
            .map(|(k, agg)| GameRow {
                minute: k.0,
                game_id: k.1.clone(),
                agg: agg.clone(),
            })
            .collect();
        (viewing, games)
    }

    /// Rows of minutes from `from_minute` on: (viewing, games).
    fn open_rows(&self, from_minute: i64) -> (usize, usize) {
        (
            self.viewing.keys().filter(|k| k.0 >= from_minute).count(),
            self.games.keys().filter(|k| k.0 >= from_minute).count(),
        )
    }
}

fn events(n: u64, seed: u64, mean_gap_us: u64) -> Vec<Envelope> {
    Generator::new(GeneratorConfig {
        events: n,
        seed,
        late_share: 0.05,
        mean_gap_us,
        titles: 12,
        games: 4,
        viewing_sessions: 40,
        game_sessions: 10,
        ..Default::default()
    })
    .filter_map(|e| match e.truth {
        Truth::Valid(event) => Some(*event),
        Truth::Invalid { .. } | Truth::Malformed | Truth::Copy(_) => None,
    })
    .collect()
}

/// Applies one event, checking (c) against the watermark before it. Returns the decision.
fn apply_checked(state: &mut ShardRollup, event: &Envelope, lateness: Lateness) -> Result<Applied, TestCaseError> {
    let before = state.watermark_ms();
    let t = event.event_time_ms;
    let applied = state.apply(event);
    if lateness.is_late(t, before) {
        prop_assert_eq!(
            applied,
            Applied::Late {
                watermark_ms: before.unwrap()
            },
            "t={} watermark={:?}",
            t,
            before
        );
        prop_assert_eq!(state.watermark_ms(), before, "a late event moved the watermark");
    } else {
        prop_assert_eq!(applied, Applied::Aggregated, "t={} watermark={:?}", t, before);
        prop_assert_eq!(state.watermark_ms(), Some(before.map_or(t, |w| w.max(t))));
        // An event that is not late falls in an open window.
        prop_assert!(minute_of(t) >= lateness.first_open_minute(before));
    }
    Ok(applied)
}

/// One uninterrupted run: the warehouse rows and every decision.
fn uninterrupted(events: &[Envelope], lateness: Lateness) -> Result<(Warehouse, Vec<Applied>), TestCaseError> {
    let mut state = ShardRollup::new(lateness);
    let mut decisions = Vec::with_capacity(events.len());
    for e in events {
        decisions.push(apply_checked(&mut state, e, lateness)?);
    }
    let mut warehouse = Warehouse::default();
    warehouse.write(state.take_dirty());
    Ok((warehouse, decisions))
}

/// What happens after event `i` has been applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Continue,
    Commit,
    /// The worker dies: everything since the last commit is lost and replayed.
    Crash,
    CommitThenCrash,
}

fn arb_step() -> impl Strategy<Value = Step> {
    prop_oneof![
        12 => Just(Step::Continue),
        3 => Just(Step::Commit),
        1 => Just(Step::Crash),
        1 => Just(Step::CommitThenCrash),
    ]
}

fn arb_lateness() -> impl Strategy<Value = Lateness> {
    prop_oneof![Just(0i64), Just(1_000), Just(60_000), Just(300_000), 0i64..900_000]
        .prop_map(|allowed_ms| Lateness { allowed_ms })
}

fn arb_gap() -> impl Strategy<Value = u64> {
    // From 1 ms (everything in a minute or two) to 1 s (windows close all the time).
    prop_oneof![Just(1_000u64), Just(50_000), Just(300_000), Just(1_000_000)]
}

/// Commit: the dirty rows go to the warehouse, then closed windows are evicted; checks (b).
fn commit(state: &mut ShardRollup, warehouse: &mut Warehouse) -> Result<(), TestCaseError> {
    warehouse.write(state.take_dirty());
    state.evict_closed();
    let open = state.first_open_minute();
    // Only rows of open windows stay in memory: exactly the stored rows from the first open
    // minute on (every key ever touched was committed, so it is in the warehouse).
    prop_assert_eq!(
        state.open_rows(),
        warehouse.open_rows(open),
        "first open minute {}",
        open
    );
    // Nothing is dirty any more.
    let (v, g) = state.take_dirty();
    prop_assert!(v.is_empty() && g.is_empty());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn exactly_once_under_commits_and_crashes(
        n in 50u64..500,
        seed in any::<u64>(),
        gap in arb_gap(),
        lateness in arb_lateness(),
        steps in prop::collection::vec(arb_step(), 500),
    ) {
        let events = events(n, seed, gap);
        let (expected, expected_decisions) = uninterrupted(&events, lateness)?;

        let mut warehouse = Warehouse::default();
        let mut state = ShardRollup::new(lateness);
        // The last commit: events before `committed_at` are in it, with this watermark.
        let mut committed_at = 0;
        let mut committed_watermark = None;
        let mut decisions = vec![None; events.len()];
        let mut crashed = HashSet::new();
        let mut i = 0;
        while i < events.len() {
            let applied = apply_checked(&mut state, &events[i], lateness)?;
            // Replays decide as the first pass did, and as the uninterrupted run.
            prop_assert_eq!(applied, expected_decisions[i], "event {}", i);
            decisions[i] = Some(applied);
            i += 1;
            let step = steps[(i - 1) % steps.len()];
            if matches!(step, Step::Commit | Step::CommitThenCrash) {
                commit(&mut state, &mut warehouse)?;
                committed_at = i;
                committed_watermark = state.watermark_ms();
            }
            // Each crash point fires once, so the replay moves past it.
            if matches!(step, Step::Crash | Step::CommitThenCrash) && crashed.insert(i) {
                let from = lateness.first_open_minute(committed_watermark);
                let (viewing, games) = warehouse.partials(from);
                state = ShardRollup::restore(lateness, committed_watermark, viewing, games);
                prop_assert_eq!(state.watermark_ms(), committed_watermark);
                prop_assert_eq!(state.first_open_minute(), from);
                // Restored memory holds the open windows only, as after the commit.
                prop_assert_eq!(state.open_rows(), warehouse.open_rows(from));
                i = committed_at;
            }
        }
        commit(&mut state, &mut warehouse)?;
        prop_assert_eq!(decisions, expected_decisions.into_iter().map(Some).collect::<Vec<_>>());
        prop_assert_eq!(&warehouse.viewing, &expected.viewing);
        prop_assert_eq!(&warehouse.games, &expected.games);
    }

    /// Restoring from rows that include closed windows keeps only the open ones.
    #[test]
    fn restore_ignores_closed_windows(
        n in 50u64..400,
        seed in any::<u64>(),
        lateness in arb_lateness(),
    ) {
        let events = events(n, seed, 300_000);
        let (all, _) = uninterrupted(&events, lateness)?;
        let mut state = ShardRollup::new(lateness);
        for e in &events {
            state.apply(e);
        }
        let watermark = state.watermark_ms();
        let (viewing, games) = all.partials(i64::MIN);
        let restored = ShardRollup::restore(lateness, watermark, viewing, games);
        let open = lateness.first_open_minute(watermark);
        prop_assert_eq!(restored.open_rows(), all.open_rows(open));
        // And the state that was never evicted holds every row.
        prop_assert_eq!(state.open_rows(), (all.viewing.len(), all.games.len()));
    }
}

/// The properties above are not vacuous: the workload has late events, several windows,
/// and evictions that free memory.
#[test]
fn workload_exercises_lateness_and_eviction() {
    let lateness = Lateness::default();
    let events = events(3_000, 7, 300_000);
    let (all, decisions) = uninterrupted(&events, lateness).unwrap();
    let late = decisions.iter().filter(|d| matches!(d, Applied::Late { .. })).count();
    let aggregated = decisions.iter().filter(|d| **d == Applied::Aggregated).count();
    assert!(late > 20, "late {late}");
    assert_eq!(late + aggregated, events.len());
    let minutes: HashSet<i64> = all.viewing.keys().map(|k| k.0).collect();
    assert!(minutes.len() > 10, "{} minutes", minutes.len());

    let mut state = ShardRollup::new(lateness);
    let mut warehouse = Warehouse::default();
    let mut max_open = (0, 0);
    for (i, e) in events.iter().enumerate() {
        state.apply(e);
        if i % 100 == 99 {
            commit(&mut state, &mut warehouse).unwrap();
            let (v, g) = state.open_rows();
            max_open = (max_open.0.max(v), max_open.1.max(g));
        }
    }
    commit(&mut state, &mut warehouse).unwrap();
    assert_eq!(warehouse, all);
    // Memory held a small fraction of all rows at any commit.
    assert!(
        max_open.0 * 2 < all.viewing.len(),
        "{max_open:?} of {}",
        all.viewing.len()
    );
    assert!(max_open.1 * 2 < all.games.len(), "{max_open:?} of {}", all.games.len());
}
