//! What the consumer's integration tests share.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use inlet_embedded::EmbeddedWarehouse;
use inlet_generator::{Expected, GeneratorConfig};
use inlet_producer::{Producer, ProducerConfig, ShardMap};
use inlet_seams::{StreamWriter, Warehouse};
use inlet_workload::Verdict;
use std::sync::Arc;

/// Sends `events` events generated from `seed` (1 % late, 1 % invalid) through a producer on
/// `stream`; every one must be delivered.
pub(crate) async fn produce<W: StreamWriter + 'static>(stream: &Arc<W>, events: u64, seed: u64) -> Expected {
    let map = ShardMap::new(&stream.open_shards().await.unwrap()).unwrap();
    let producer = Producer::start(stream.clone(), ProducerConfig::default())
        .await
        .unwrap();
    let cfg = GeneratorConfig {
        events,
        seed,
        late_share: 0.01,
        invalid_share: 0.01,
        ..Default::default()
    };
    let expected = inlet_workload::send_workload(&producer, &map, &cfg).await.unwrap();
    let stats = producer.close().await.unwrap();
    assert_eq!((stats.delivered, stats.failed), (events, 0));
    expected
}

/// Compares the warehouse with `expected` as `inlet verify` does, and more strictly: no
/// duplicates beyond the generator's copies (nothing here sends a record twice).
pub(crate) async fn check(w: &EmbeddedWarehouse, expected: &Expected) {
    let totals = w.totals().await.unwrap();
    assert_eq!(
        totals.read(),
        expected.generated as i64,
        "accounting: generated = aggregated + dead-lettered + duplicates"
    );
    let verdict = Verdict::new(
        &totals,
        &w.viewing_rollups(i64::MIN, i64::MAX).await.unwrap(),
        &w.game_rollups(i64::MIN, i64::MAX).await.unwrap(),
        expected,
    );
    assert_eq!(verdict.aggregated.got, verdict.aggregated.expected, "aggregated");
    let wrong: Vec<_> = verdict.wrong_dead_letters().collect();
    assert!(wrong.is_empty(), "dead letters per kind and field: {wrong:?}");
    let mismatches = &verdict.mismatches;
    assert!(
        mismatches.is_empty(),
        "{} mismatches: {:?}",
        mismatches.len(),
        &mismatches[..mismatches.len().min(3)]
    );
    assert!(verdict.is_exact(), "{verdict:?}");
}
