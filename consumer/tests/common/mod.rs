//! What the consumer's integration tests share.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use inlet_embedded::EmbeddedWarehouse;
use inlet_generator::Expected;
use inlet_seams::Warehouse;
use inlet_workload::Verdict;

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
