//! Accuracy, merge laws, encoding round trips, golden bytes and decode errors for `Hll`.

// Tests may panic on unexpected values: that is how they fail.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use inlet_sketches::{Hll, SketchError};
use proptest::prelude::*;

fn hll_of(values: impl IntoIterator<Item = u64>) -> Hll {
    let mut h = Hll::new();
    for v in values {
        h.insert(&v.to_le_bytes());
    }
    h
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn estimate_within_three_standard_errors() {
    let std_err = 1.04 / (Hll::REGISTERS as f64).sqrt();
    for n in [1_000u64, 10_000, 100_000, 200_000] {
        let est = hll_of(0..n).estimate() as f64;
        let rel = (est - n as f64).abs() / n as f64;
        assert!(rel <= 3.0 * std_err, "n={n} estimate={est} rel_err={rel}");
    }
}

#[test]
fn small_sets_are_exact_within_one() {
    let mut h = Hll::new();
    assert_eq!(h.estimate(), 0);
    for n in 1u64..=100 {
        h.insert(format!("user-{n}").as_bytes());
        assert!(h.estimate().abs_diff(n) <= 1, "n={n} estimate={}", h.estimate());
    }
}

#[test]
fn duplicates_do_not_change_the_sketch() {
    for n in [50u64, 5_000] {
        let once = hll_of(0..n);
        let thrice = hll_of((0..3).flat_map(|_| 0..n));
        assert_eq!(once.estimate(), thrice.estimate());
        assert_eq!(once.to_bytes(), thrice.to_bytes());
    }
}

#[test]
fn insert_hash_matches_insert() {
    let mut a = Hll::new();
    let mut b = Hll::new();
    for v in 0u64..2_000 {
        a.insert(&v.to_le_bytes());
        b.insert_hash(Hll::hash(&v.to_le_bytes()));
    }
    assert_eq!(a, b);
    assert_eq!(Hll::hash(b"a"), xxhash_rust::xxh3::xxh3_64(b"a"));
}

#[test]
fn empty_sketch() {
    let h = Hll::default();
    assert!(h.is_empty());
    assert_eq!(h.estimate(), 0);
    assert_eq!(h.to_bytes(), [1, 14, 0, 0]);
    assert_eq!(Hll::from_bytes(&[1, 14, 0, 0]), Ok(Hll::new()));
}

/// Frozen encoding of {"a", "b", "c"}: a change here is a wire-format change.
#[test]
fn golden_sparse_abc() {
    let mut h = Hll::new();
    for v in [b"a", b"b", b"c"] {
        h.insert(v);
    }
    let golden = hex("010e0003d62b01ba1a05a12d01");
    assert_eq!(h.to_bytes(), golden);
    let decoded = Hll::from_bytes(&golden).unwrap();
    assert_eq!(decoded, h);
    assert_eq!(decoded.to_bytes(), golden);
    assert_eq!(decoded.estimate(), 3);
}

/// Frozen digest of the dense encoding of 0..5000 (16 KiB is too long to inline).
#[test]
fn golden_dense_digest() {
    let h = hll_of(0..5_000);
    let bytes = h.to_bytes();
    assert_eq!(bytes.len(), 3 + Hll::REGISTERS);
    assert_eq!(&bytes[..3], [1, 14, 1]);
    assert_eq!(xxhash_rust::xxh3::xxh3_64(&bytes), 0x72e4_39ee_936d_d320);
    assert_eq!(h.estimate(), 5_001);
    assert_eq!(Hll::from_bytes(&bytes).unwrap().to_bytes(), bytes);
}

#[test]
fn decode_rejects_malformed_input() {
    use SketchError as E;
    let dense_with = |registers: &[(usize, u8)]| {
        let mut b = vec![1, 14, 1];
        b.extend(std::iter::repeat_n(1u8, Hll::REGISTERS));
        for &(i, r) in registers {
            b[3 + i] = r;
        }
        b
    };
    let cases: Vec<(Vec<u8>, SketchError)> = vec![
        (vec![], E::Empty),
        (vec![2, 14, 0, 0], E::UnsupportedVersion(2)),
        (vec![1, 12, 0, 0], E::UnsupportedPrecision(12)),
        (vec![1, 14, 7, 0], E::UnknownRepresentation(7)),
        (vec![1], E::Truncated { what: "precision" }),
        (
            vec![1, 14],
            E::Truncated {
                what: "representation tag",
            },
        ),
        (
            vec![1, 14, 0],
            E::Truncated {
                what: "sparse entry count",
            },
        ),
        (
            vec![1, 14, 0, 2, 5, 3],
            E::Truncated {
                what: "sparse register index",
            },
        ),
        (
            vec![1, 14, 0, 1, 5],
            E::Truncated {
                what: "sparse register rank",
            },
        ),
        (
            vec![1, 14, 1, 0, 0],
            E::Truncated {
                what: "dense registers",
            },
        ),
        (
            vec![1, 14, 0, 1, 0x80, 0x80, 0x01, 1],
            E::RegisterIndexOutOfRange { index: 16_384 },
        ),
        (
            vec![1, 14, 0, 2, 5, 1, 0x80, 0x80, 0x01, 1],
            E::RegisterIndexOutOfRange { index: 16_389 },
        ),
        (
            vec![1, 14, 0, 2, 5, 1, 0, 2],
            E::NonIncreasingIndex { what: "register" },
        ),
        (vec![1, 14, 0, 1, 5, 0], E::InvalidRank { index: 5, rank: 0 }),
        (vec![1, 14, 0, 1, 5, 52], E::InvalidRank { index: 5, rank: 52 }),
        (vec![1, 14, 0, 1, 5, 51, 9, 9], E::TrailingBytes { count: 2 }),
        (
            vec![1, 14, 0, 0x80, 0x00],
            E::NonCanonical {
                what: "over-long varint",
            },
        ),
        (
            vec![1, 14, 0, 0x81, 0x08],
            E::NonCanonical {
                what: "sparse form with more entries than the dense threshold",
            },
        ),
        (dense_with(&[(7, 52)]), E::InvalidRank { index: 7, rank: 52 }),
        (
            vec![1, 14, 1]
                .into_iter()
                .chain(std::iter::repeat_n(0, Hll::REGISTERS))
                .collect(),
            E::NonCanonical {
                what: "dense form with few enough registers for the sparse form",
            },
        ),
    ];
    for (bytes, want) in cases {
        assert_eq!(Hll::from_bytes(&bytes), Err(want), "input {bytes:02x?}");
    }
    let mut trailing = dense_with(&[]);
    trailing.push(0);
    assert_eq!(Hll::from_bytes(&trailing), Err(E::TrailingBytes { count: 1 }));
    // 51 = 64 - p + 1 is the largest valid rank.
    assert!(Hll::from_bytes(&[1, 14, 0, 1, 5, 51]).is_ok());
    assert!(Hll::from_bytes(&dense_with(&[(0, 51)])).is_ok());
}

/// Values, a part (shard) for each value, and two merge orders over the parts.
fn split_case() -> impl Strategy<Value = (Vec<u64>, Vec<usize>, Vec<usize>, Vec<usize>)> {
    let value = prop_oneof![any::<u64>(), 0u64..400];
    (prop::collection::vec(value, 0..3_000), 1usize..8).prop_flat_map(|(values, k)| {
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

/// Left fold in `order`.
fn merge_linear(parts: &[Hll], order: &[usize]) -> Hll {
    let mut acc = Hll::new();
    for &i in order {
        acc.merge(&parts[i]);
    }
    acc
}

/// Balanced tree of pairwise merges in `order`: a different association than the fold.
fn merge_tree(parts: &[Hll], order: &[usize]) -> Hll {
    let mut level: Vec<Hll> = order.iter().map(|&i| parts[i].clone()).collect();
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|pair| {
                let mut m = pair[0].clone();
                if let Some(b) = pair.get(1) {
                    m.merge(b);
                }
                m
            })
            .collect();
    }
    level.pop().unwrap_or_default()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn merge_is_order_independent_and_equals_single_insertion(
        (values, assignment, order_a, order_b) in split_case()
    ) {
        let k = order_a.len();
        let mut parts = vec![Hll::new(); k];
        for (v, &p) in values.iter().zip(&assignment) {
            parts[p].insert(&v.to_le_bytes());
        }
        let a = merge_linear(&parts, &order_a);
        let b = merge_tree(&parts, &order_b);
        prop_assert_eq!(a.to_bytes(), b.to_bytes());
        prop_assert_eq!(&a, &b);
        let single = hll_of(values.iter().copied());
        prop_assert_eq!(a.to_bytes(), single.to_bytes());
        prop_assert_eq!(a.estimate(), single.estimate());
    }

    #[test]
    fn bytes_round_trip(values in prop::collection::vec(any::<u64>(), 0..3_000)) {
        let h = hll_of(values);
        let bytes = h.to_bytes();
        let decoded = Hll::from_bytes(&bytes).unwrap();
        prop_assert_eq!(&decoded, &h);
        prop_assert_eq!(decoded.to_bytes(), bytes);
        prop_assert_eq!(decoded.estimate(), h.estimate());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn from_bytes_never_panics_on_arbitrary_bytes(
        bytes in prop::collection::vec(any::<u8>(), 0..64),
        header in prop::bool::ANY,
    ) {
        let bytes = if header { [vec![1, 14, 0], bytes].concat() } else { bytes };
        if let Ok(h) = Hll::from_bytes(&bytes) {
            prop_assert_eq!(h.to_bytes(), bytes, "accepted bytes must be canonical");
        }
    }

    #[test]
    fn from_bytes_never_panics_on_mutated_encodings(
        n in prop_oneof![0u64..50, 1_000u64..1_100, 2_000u64..3_000],
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
        truncate in prop::bool::weighted(0.3),
    ) {
        let mut bytes = hll_of(0..n).to_bytes();
        for (at, byte) in flips {
            let i = at.index(bytes.len());
            bytes[i] = byte;
        }
        if truncate {
            bytes.truncate(cut.index(bytes.len() + 1));
        }
        if let Ok(h) = Hll::from_bytes(&bytes) {
            prop_assert_eq!(h.to_bytes(), bytes, "accepted bytes must be canonical");
        }
    }
}
