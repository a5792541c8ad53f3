//! What the consumer's integration tests share.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use inlet_embedded::EmbeddedWarehouse;
use inlet_generator::Expected;
use inlet_seams::Warehouse;
use std::collections::BTreeMap;

/// Compares the warehouse with `expected` as `inlet verify` does.
pub(crate) async fn check(w: &EmbeddedWarehouse, expected: &Expected) {
    let totals = w.totals().await.unwrap();
    assert_eq!(
        totals.read(),
        expected.generated as i64,
        "accounting: generated = aggregated + dead-lettered + duplicates"
    );
    assert_eq!(totals.aggregated, expected.aggregated as i64);
    let got: BTreeMap<(&str, Option<&str>), i64> = totals
        .dead_letters
        .iter()
        .map(|(k, f, n)| ((k.as_str(), f.as_deref()), *n))
        .collect();
    let want: BTreeMap<(&str, Option<&str>), i64> = expected.dead.iter().map(|(k, n)| (*k, *n as i64)).collect();
    assert_eq!(got, want, "dead letters per kind and field");
    let mismatches = expected.compare(
        &w.viewing_rollups(i64::MIN, i64::MAX).await.unwrap(),
        &w.game_rollups(i64::MIN, i64::MAX).await.unwrap(),
    );
    assert!(
        mismatches.is_empty(),
        "{} mismatches: {:?}",
        mismatches.len(),
        &mismatches[..mismatches.len().min(3)]
    );
}
