//! Accuracy, exact aggregates, merge laws, encoding round trips, golden bytes and decode
//! errors for `QuantileSketch`.

// Tests may panic on unexpected values: that is how they fail.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use inlet_sketches::{QuantileSketch, SketchError};
use proptest::prelude::*;

const QS: [f64; 6] = [0.0, 0.5, 0.9, 0.95, 0.99, 1.0];

fn sketch_of(values: &[i64]) -> QuantileSketch {
    let mut s = QuantileSketch::new();
    for &v in values {
        s.insert(v);
    }
    s
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Same rank rule as the sketch: element at floor(q (n - 1)) of the sorted values.
fn true_quantile(sorted: &[i64], q: f64) -> i64 {
    sorted[(q * (sorted.len() - 1) as f64).floor() as usize]
}

fn within_accuracy(estimate: i64, truth: i64) -> bool {
    let err = (estimate - truth).abs() as f64;
    err <= QuantileSketch::RELATIVE_ACCURACY * truth as f64 + 1.0
}

#[test]
fn empty_sketch() {
    let s = QuantileSketch::default();
    assert_eq!(
        (s.count(), s.min(), s.max(), s.sum(), s.mean()),
        (0, None, None, 0, None)
    );
    assert_eq!(s.quantile(0.5), None);
    let golden = hex("01000000000000");
    assert_eq!(s.to_bytes(), golden);
    assert_eq!(QuantileSketch::from_bytes(&golden), Ok(s));
}

#[test]
fn aggregates_are_exact_and_extremes_are_exact_quantiles() {
    let values = [17, 3, 1_000_003, 0, 42, 42, 999];
    let s = sketch_of(&values);
    assert_eq!(s.count(), 7);
    assert_eq!(s.min(), Some(0));
    assert_eq!(s.max(), Some(1_000_003));
    assert_eq!(s.sum(), values.iter().map(|&v| i128::from(v)).sum::<i128>());
    assert_eq!(s.quantile(0.0), Some(0));
    assert_eq!(s.quantile(1.0), Some(1_000_003));
    let one = sketch_of(&[123_457]);
    assert_eq!([0.0, 0.3, 1.0].map(|q| one.quantile(q)), [Some(123_457); 3]);
}

#[test]
fn quantile_rejects_q_outside_unit_interval() {
    let s = sketch_of(&[1, 2, 3]);
    for q in [-0.01, 1.0001, f64::NAN, f64::INFINITY] {
        assert_eq!(s.quantile(q), None, "q={q}");
    }
}

#[test]
fn negative_values_are_clamped_to_zero() {
    assert_eq!(sketch_of(&[-5, 7]), sketch_of(&[0, 7]));
    assert_eq!(sketch_of(&[i64::MIN]).min(), Some(0));
}

#[test]
fn huge_values_keep_exact_sum() {
    let s = sketch_of(&[i64::MAX, i64::MAX, 1]);
    assert_eq!(s.sum(), 2 * i128::from(i64::MAX) + 1);
    assert_eq!(s.quantile(1.0), Some(i64::MAX));
    assert_eq!(QuantileSketch::from_bytes(&s.to_bytes()), Ok(s));
}

/// Frozen encoding of [0, 1, 100, 1000]: a change here is a wire-format change.
#[test]
fn golden_0_1_100_1000() {
    let s = sketch_of(&[0, 1, 100, 1000]);
    let golden = hex("01040100d00f9a11030001ce0301e60101");
    assert_eq!(s.to_bytes(), golden);
    let decoded = QuantileSketch::from_bytes(&golden).unwrap();
    assert_eq!(decoded, s);
    assert_eq!(decoded.to_bytes(), golden);
    assert_eq!(QS.map(|q| s.quantile(q)), [0, 1, 100, 100, 100, 1000].map(Some));
}

#[test]
fn decode_rejects_malformed_input() {
    use SketchError as E;
    // Valid: [5] -> count 1, zero 0, min 5, max 5, sum 5, one bucket at index 81.
    let valid = sketch_of(&[5]).to_bytes();
    assert_eq!(valid, [1, 1, 0, 10, 10, 10, 1, 0xa2, 0x01, 1]);
    let cases: Vec<(Vec<u8>, SketchError)> = vec![
        (vec![], E::Empty),
        (vec![9, 0, 0, 0, 0, 0, 0], E::UnsupportedVersion(9)),
        (vec![1, 0, 0, 0, 0], E::Truncated { what: "sum" }),
        (valid[..8].to_vec(), E::Truncated { what: "bucket index" }),
        (
            valid[..9].to_vec(),
            E::Truncated {
                what: "bucket count value",
            },
        ),
        ([&valid[..], &[0]].concat(), E::TrailingBytes { count: 1 }),
        (
            vec![1, 2, 0, 10, 10, 20, 1, 0xa2, 0x01, 1],
            E::CountMismatch { declared: 2, actual: 1 },
        ),
        (
            vec![1, 1, 0, 10, 10, 10, 1, 0xa2, 0x01, 0],
            E::EmptyBucket { index: 81 },
        ),
        (
            vec![1, 1, 0, 10, 10, 10, 1, 0x01, 1],
            E::BucketIndexOutOfRange { index: -1 },
        ),
        (
            vec![1, 1, 0, 10, 10, 10, 1, 0xa0, 0x22, 1],
            E::BucketIndexOutOfRange { index: 2192 },
        ),
        (
            vec![1, 2, 0, 10, 10, 20, 2, 0xa2, 0x01, 1, 0, 1],
            E::NonIncreasingIndex { what: "bucket" },
        ),
        (
            vec![1, 2, 0, 10, 10, 20, 2, 0xa2, 0x01, 1, 1, 1],
            E::NonIncreasingIndex { what: "bucket" },
        ),
        (
            vec![1, 0, 0, 2, 0, 0, 0],
            E::NonCanonical {
                what: "empty sketch with nonzero min, max or sum",
            },
        ),
        (
            vec![1, 0x80, 0, 0, 0, 0, 0, 0],
            E::NonCanonical {
                what: "over-long varint",
            },
        ),
        (
            [
                &[1u8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f][..],
                &[0; 5],
            ]
            .concat(),
            E::VarintOverflow { what: "count" },
        ),
        (
            vec![1, 1, 0, 12, 10, 10, 1, 0xa2, 0x01, 1],
            E::Inconsistent {
                what: "min is negative or above max",
            },
        ),
        (
            vec![1, 1, 0, 10, 10, 12, 1, 0xa2, 0x01, 1],
            E::Inconsistent {
                what: "sum outside count * [min, max]",
            },
        ),
        (
            vec![1, 1, 0, 8, 10, 10, 1, 0xa2, 0x01, 1],
            E::Inconsistent {
                what: "lowest bucket disagrees with min",
            },
        ),
        (
            vec![1, 1, 0, 10, 12, 10, 1, 0xa2, 0x01, 1],
            E::Inconsistent {
                what: "highest bucket disagrees with max",
            },
        ),
        (
            vec![1, 1, 0, 0, 10, 10, 1, 0xa2, 0x01, 1],
            E::Inconsistent {
                what: "zero bucket disagrees with min",
            },
        ),
    ];
    for (bytes, want) in cases {
        assert_eq!(QuantileSketch::from_bytes(&bytes), Err(want), "input {bytes:02x?}");
    }
}

fn values() -> impl Strategy<Value = Vec<i64>> {
    let value = prop_oneof![0i64..10_000_000, 0i64..20, 0i64..1_000];
    prop::collection::vec(value, 1..2_000)
}

/// Values, a part for each value, and two merge orders over the parts.
fn split_case() -> impl Strategy<Value = (Vec<i64>, Vec<usize>, Vec<usize>, Vec<usize>)> {
    (values(), 1usize..8).prop_flat_map(|(values, k)| {
        let n = values.len();
        let order: Vec<usize> = (0..k).collect();
        (
            Just(values),
            prop::collection::vec(0..k, n),
            Just(order.clone()).prop_shuffle(),
            Just(order).prop_shuffle(),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn quantiles_within_relative_accuracy(mut values in values()) {
        let s = sketch_of(&values);
        values.sort_unstable();
        for q in QS {
            let truth = true_quantile(&values, q);
            let est = s.quantile(q).unwrap();
            prop_assert!(within_accuracy(est, truth), "q={} truth={} estimate={}", q, truth, est);
        }
        prop_assert_eq!(s.quantile(0.0), values.first().copied());
        prop_assert_eq!(s.quantile(1.0), values.last().copied());
    }

    #[test]
    fn merge_is_order_independent_and_equals_single_insertion(
        (values, assignment, order_a, order_b) in split_case()
    ) {
        let k = order_a.len();
        let mut parts = vec![QuantileSketch::new(); k];
        for (&v, &p) in values.iter().zip(&assignment) {
            parts[p].insert(v);
        }
        let mut a = QuantileSketch::new();
        for &i in &order_a {
            a.merge(&parts[i]);
        }
        // Right fold in the other order: a different association as well as order.
        let mut b = QuantileSketch::new();
        for &i in order_b.iter().rev() {
            let mut next = parts[i].clone();
            next.merge(&b);
            b = next;
        }
        prop_assert_eq!(a.to_bytes(), b.to_bytes());
        let single = sketch_of(&values);
        prop_assert_eq!(a.to_bytes(), single.to_bytes());
        prop_assert_eq!(&a, &single);
    }

    #[test]
    fn bytes_round_trip(values in prop::collection::vec(any::<i64>(), 0..500)) {
        let s = sketch_of(&values);
        let bytes = s.to_bytes();
        let decoded = QuantileSketch::from_bytes(&bytes).unwrap();
        prop_assert_eq!(&decoded, &s);
        prop_assert_eq!(decoded.to_bytes(), bytes);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn from_bytes_never_panics_on_arbitrary_bytes(
        bytes in prop::collection::vec(any::<u8>(), 0..64),
        header in prop::bool::ANY,
    ) {
        let bytes = if header { [vec![1], bytes].concat() } else { bytes };
        if let Ok(s) = QuantileSketch::from_bytes(&bytes) {
            prop_assert_eq!(s.to_bytes(), bytes, "accepted bytes must be canonical");
        }
    }

    #[test]
    fn from_bytes_never_panics_on_mutated_encodings(
        values in prop::collection::vec(0i64..10_000_000, 0..50),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
        truncate in prop::bool::weighted(0.3),
    ) {
        let mut bytes = sketch_of(&values).to_bytes();
        for (at, byte) in flips {
            let i = at.index(bytes.len());
            bytes[i] = byte;
        }
        if truncate {
            bytes.truncate(cut.index(bytes.len() + 1));
        }
        if let Ok(s) = QuantileSketch::from_bytes(&bytes) {
            prop_assert_eq!(s.to_bytes(), bytes, "accepted bytes must be canonical");
        }
    }
}
