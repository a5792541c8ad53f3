//! The rollups' sketches: HyperLogLog (distinct viewers / players) and the DDSketch
//! quantile sketch (startup times): insert, merge, and their byte encodings.
use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use inlet_sketches::{Hll, QuantileSketch};

/// Distinct values in a "big" sketch (dense HLL).
const BIG: usize = 10_000;
/// Distinct values in a "small" sketch (sparse HLL: one title's viewers in one minute).
const SMALL: usize = 50;

/// Profile ids as the generator writes them, `offset..offset + n`.
fn ids(offset: usize, n: usize) -> Vec<String> {
    (offset..offset + n).map(|i| format!("profile-{i}")).collect()
}

fn hll_of(values: &[String]) -> Hll {
    let mut h = Hll::new();
    for v in values {
        h.insert(v.as_bytes());
    }
    h
}

/// Deterministic startup times in 1..=20_000 ms (xorshift64*).
fn millis(n: usize, seed: u64) -> Vec<i64> {
    let mut x = seed.max(1);
    (0..n)
        .map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            (x.wrapping_mul(0x2545_F491_4F6C_DD1D) % 20_000) as i64 + 1
        })
        .collect()
}

fn quantile_of(values: &[i64]) -> QuantileSketch {
    let mut q = QuantileSketch::new();
    for &v in values {
        q.insert(v);
    }
    q
}

fn hll(c: &mut Criterion) {
    let big_a = ids(0, BIG);
    let big_b = ids(BIG / 2, BIG);
    let small_a = ids(0, SMALL);
    let small_b = ids(SMALL / 2, SMALL);
    let mut g = c.benchmark_group("hll");

    g.throughput(Throughput::Elements(BIG as u64));
    g.bench_function("insert_10k_distinct_from_empty", |b| {
        b.iter(|| hll_of(black_box(&big_a)))
    });
    g.throughput(Throughput::Elements(SMALL as u64));
    g.bench_function("insert_50_distinct_from_empty", |b| {
        b.iter(|| hll_of(black_box(&small_a)))
    });

    // One merge per iteration.
    g.throughput(Throughput::Elements(1));
    let (dense_a, dense_b) = (hll_of(&big_a), hll_of(&big_b));
    g.bench_function("merge_dense_10k+10k", |b| {
        b.iter_batched_ref(
            || dense_a.clone(),
            |a| a.merge(black_box(&dense_b)),
            BatchSize::SmallInput,
        );
    });
    let (sparse_a, sparse_b) = (hll_of(&small_a), hll_of(&small_b));
    g.bench_function("merge_sparse_50+50", |b| {
        b.iter_batched_ref(
            || sparse_a.clone(),
            |a| a.merge(black_box(&sparse_b)),
            BatchSize::SmallInput,
        );
    });

    for (name, sketch) in [("dense_10k", &dense_a), ("sparse_50", &sparse_a)] {
        let bytes = sketch.to_bytes();
        g.throughput(Throughput::Bytes(bytes.len() as u64));
        g.bench_function(format!("to_bytes_{name}"), |b| b.iter(|| black_box(sketch).to_bytes()));
        g.bench_function(format!("from_bytes_{name}"), |b| {
            b.iter(|| Hll::from_bytes(black_box(&bytes)).is_ok())
        });
    }
    g.finish();
}

fn quantile(c: &mut Criterion) {
    let values_a = millis(BIG, 1);
    let values_b = millis(BIG, 2);
    let mut g = c.benchmark_group("quantile_sketch");

    g.throughput(Throughput::Elements(BIG as u64));
    g.bench_function("insert_10k", |b| b.iter(|| quantile_of(black_box(&values_a))));

    g.throughput(Throughput::Elements(1));
    let (a, q_b) = (quantile_of(&values_a), quantile_of(&values_b));
    g.bench_function("merge_10k+10k", |b| {
        b.iter_batched_ref(|| a.clone(), |s| s.merge(black_box(&q_b)), BatchSize::SmallInput);
    });

    let bytes = a.to_bytes();
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.bench_function("to_bytes_10k", |b| b.iter(|| black_box(&a).to_bytes()));
    g.bench_function("from_bytes_10k", |b| {
        b.iter(|| QuantileSketch::from_bytes(black_box(&bytes)).is_ok())
    });
    g.finish();
}

criterion_group! {
    name = sketches;
    config = inlet_benches::criterion();
    targets = hll, quantile
}
criterion_main!(sketches);
