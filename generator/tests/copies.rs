//! The generator's copies (`duplicate_share`): same key, bytes and id as an earlier valid
//! event, within the delay, counted towards `events`; none unless asked for; and the
//! expectation's model of which copies are duplicates and which are late.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report
use inlet_generator::{Expected, GenEvent, Generator, GeneratorConfig, Truth};
use std::collections::HashMap;

fn config(duplicate_share: f64) -> GeneratorConfig {
    GeneratorConfig {
        seed: 5,
        events: 50_000,
        late_share: 0.0,
        // 25 minutes of event time: long enough for copies delayed up to 20.
        mean_gap_us: 30_000,
        duplicate_share,
        ..GeneratorConfig::default()
    }
}

#[test]
fn copies_repeat_an_earlier_valid_event_within_the_delay() {
    let cfg = config(0.05);
    let events: Vec<GenEvent> = Generator::new(cfg.clone()).collect();
    assert_eq!(events.len() as u64, cfg.events, "copies count towards events");
    let mut originals: HashMap<String, (usize, &GenEvent)> = HashMap::new();
    let mut copies = 0;
    for (i, ev) in events.iter().enumerate() {
        match &ev.truth {
            Truth::Valid(e) => {
                assert!(
                    originals.insert(e.event_id.clone(), (i, ev)).is_none(),
                    "ids are unique"
                );
            }
            Truth::Copy(e) => {
                copies += 1;
                let (at, original) = originals.get(&e.event_id).expect("a copy follows its original");
                assert!(*at < i);
                assert_eq!((&original.partition_key, &original.data), (&ev.partition_key, &ev.data));
            }
            Truth::Invalid { .. } | Truth::Malformed => {}
        }
    }
    // About 5 % of the valid events, less those whose delay ran past the end (up to 10 of the
    // run's 25 minutes).
    assert!((1_500..3_000).contains(&copies), "{copies} copies");
}

#[test]
fn no_copies_unless_asked_and_the_rest_of_the_workload_unchanged() {
    let plain: Vec<GenEvent> = Generator::new(config(0.0)).collect();
    assert!(plain.iter().all(|e| !matches!(e.truth, Truth::Copy(_))));
    // The first copy is drawn only after the first valid event: the events before it and the
    // first event itself are the same with or without copies.
    let with: Vec<GenEvent> = Generator::new(config(0.05)).take(1).collect();
    assert_eq!(with[0].data, plain[0].data);
}

#[test]
fn the_expectation_counts_copies_inside_the_horizon_as_duplicates() {
    let lateness = 5 * 60_000;
    for (retry, max_delay) in [(5 * 60_000, 9 * 60_000), (0, 20 * 60_000)] {
        let cfg = GeneratorConfig {
            duplicate_max_delay_ms: max_delay,
            ..config(0.05)
        };
        let mut one_shard = Expected::new(1, lateness).with_retry_window_ms(retry);
        let mut copies = 0;
        for ev in Generator::new(cfg) {
            copies += u64::from(matches!(ev.truth, Truth::Copy(_)));
            one_shard.observe(&ev, 0);
        }
        let late = one_shard
            .dead
            .get(&("late", Some("event_time_ms")))
            .copied()
            .unwrap_or(0);
        assert!(one_shard.duplicates > 0 && one_shard.duplicates <= copies);
        assert_eq!(one_shard.generated, 50_000);
        assert_eq!(
            one_shard.unique(),
            one_shard.aggregated + one_shard.dead_lettered(),
            "every distinct event is aggregated or dead-lettered once"
        );
        if retry == 0 {
            // Delays up to 20 min against a 5 min horizon: many copies arrive too late.
            assert!(one_shard.duplicates < copies && late > 0);
        } else {
            assert_eq!(one_shard.duplicates, copies, "every copy within the horizon");
        }
    }
}
