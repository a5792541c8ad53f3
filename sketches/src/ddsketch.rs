//! DDSketch quantile sketch with 1 % relative accuracy for non-negative integer values
//! (latencies in milliseconds), plus exact count, min, max and sum.
//!
//! A value v >= 1 goes to bucket i = ceil(log_gamma(v)), gamma = (1 + a) / (1 - a), a = 0.01;
//! 0 has its own bucket. Bucket counts add on merge, so merges are exact, commutative and
//! associative. Bucket boundaries gamma^i come from a compile-time table built by repeated
//! IEEE multiplication rather than from `ln` at run time, so the bucket a value lands in
//! does not depend on the platform's libm.

use std::collections::BTreeMap;

use crate::error::SketchError;
use crate::varint::{self, Reader};

const ALPHA: f64 = 0.01;
const GAMMA: f64 = (1.0 + ALPHA) / (1.0 - ALPHA);
const FORMAT_VERSION: u8 = 1;

/// Smallest i with gamma^i >= i64::MAX: the largest bucket index any value maps to.
const MAX_INDEX: usize = {
    let mut upper = 1.0;
    let mut i = 0;
    while upper < i64::MAX as f64 {
        upper *= GAMMA;
        i += 1;
    }
    i
};

/// `UPPER[i]` = gamma^i, the inclusive upper bound of bucket i.
static UPPER: [f64; MAX_INDEX + 1] = {
    let mut table = [0.0; MAX_INDEX + 1];
    let mut upper = 1.0;
    let mut i = 0;
    while i <= MAX_INDEX {
        table[i] = upper;
        upper *= GAMMA;
        i += 1;
    }
    table
};

/// Bucket of a value v >= 1: the smallest i with gamma^i >= v, i.e. ceil(ln v / ln gamma).
fn bucket_index(v: i64) -> i32 {
    let v = v as f64;
    // At most MAX_INDEX (~2.2k), so the cast is lossless.
    UPPER.partition_point(|&upper| upper < v) as i32
}

/// Value reported for bucket i: 2 gamma^i / (gamma + 1), within a relative `ALPHA` of every
/// value in (gamma^(i-1), gamma^i].
fn representative(index: i32) -> f64 {
    let upper = usize::try_from(index)
        .ok()
        .and_then(|i| UPPER.get(i))
        .copied()
        .unwrap_or(f64::MAX);
    2.0 * upper / (GAMMA + 1.0)
}

/// Quantiles of non-negative integer values within 1 % relative error (DDSketch).
///
/// Negative inputs are clamped to 0: callers validate values before inserting, and the
/// clamp keeps the sketch well-defined if one slips through. Equality is structural, which
/// is also logical equality because empty buckets are never stored.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QuantileSketch {
    count: u64,
    zero_count: u64,
    /// Only nonzero counts.
    buckets: BTreeMap<i32, u64>,
    /// Meaningful only when `count > 0`; 0 otherwise so equality stays structural.
    min: i64,
    max: i64,
    sum: i128,
}

impl QuantileSketch {
    /// Count of the zero bucket (values 0).
    pub fn zero_count(&self) -> u64 {
        self.zero_count
    }

    /// The nonzero buckets as `(index, count)`, by index: for stores that keep buckets as
    /// rows and merge them with `SUM(count) GROUP BY index`.
    pub fn buckets(&self) -> impl Iterator<Item = (i32, u64)> + '_ {
        self.buckets.iter().map(|(&i, &c)| (i, c))
    }

    /// Every bucket index with the value [`QuantileSketch::quantile`] reports for it (before
    /// clamping to min/max), so a SQL store can compute the same quantiles.
    pub fn bucket_values() -> impl Iterator<Item = (i32, f64)> {
        (0..=MAX_INDEX as i32).map(|i| (i, representative(i)))
    }

    /// Guaranteed relative accuracy of [`QuantileSketch::quantile`] (before integer rounding).
    pub const RELATIVE_ACCURACY: f64 = ALPHA;

    /// An empty sketch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one value; negative values are clamped to 0.
    pub fn insert(&mut self, value: i64) {
        let v = value.max(0);
        if self.count == 0 {
            self.min = v;
            self.max = v;
        } else {
            self.min = self.min.min(v);
            self.max = self.max.max(v);
        }
        self.count = self.count.saturating_add(1);
        self.sum = self.sum.saturating_add(i128::from(v));
        if v == 0 {
            self.zero_count = self.zero_count.saturating_add(1);
        } else {
            let c = self.buckets.entry(bucket_index(v)).or_insert(0);
            *c = c.saturating_add(1);
        }
    }

    /// Folds `other` into `self`: the sketch of both value multisets together.
    pub fn merge(&mut self, other: &QuantileSketch) {
        if other.count == 0 {
            return;
        }
        if self.count == 0 {
            self.clone_from(other);
            return;
        }
        self.count = self.count.saturating_add(other.count);
        self.zero_count = self.zero_count.saturating_add(other.zero_count);
        for (&i, &c) in &other.buckets {
            let slot = self.buckets.entry(i).or_insert(0);
            *slot = slot.saturating_add(c);
        }
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.sum = self.sum.saturating_add(other.sum);
    }

    /// Number of values recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Exact smallest value, `None` when empty.
    pub fn min(&self) -> Option<i64> {
        (self.count > 0).then_some(self.min)
    }

    /// Exact largest value, `None` when empty.
    pub fn max(&self) -> Option<i64> {
        (self.count > 0).then_some(self.max)
    }

    /// Exact sum of all values (i128 so it cannot overflow: count <= u64::MAX, values
    /// <= i64::MAX).
    pub fn sum(&self) -> i128 {
        self.sum
    }

    /// Mean of the values, `None` when empty.
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum as f64 / self.count as f64)
    }

    /// The q-quantile, within 1 % relative error (+-1 from rounding to an integer).
    ///
    /// `None` when empty or when q is outside [0, 1] (or NaN). Rank rule: the element at
    /// sorted position floor(q (count - 1)). Ranks 0 and count - 1 return the exact min and
    /// max (so q = 0 gives min and q = 1 gives max); other results are clamped into
    /// [min, max].
    pub fn quantile(&self, q: f64) -> Option<i64> {
        if self.count == 0 || !(0.0..=1.0).contains(&q) {
            return None;
        }
        let rank = q * (self.count - 1) as f64;
        // The first and last ranked elements are known exactly; the clamp below alone would
        // not give them when the bucket representative falls inside (min, max).
        if rank < 1.0 {
            return Some(self.min);
        }
        if rank >= (self.count - 1) as f64 {
            return Some(self.max);
        }
        let mut cumulative = self.zero_count;
        if cumulative as f64 > rank {
            return Some(0.clamp(self.min, self.max));
        }
        for (&i, &c) in &self.buckets {
            cumulative = cumulative.saturating_add(c);
            if cumulative as f64 > rank {
                let value = representative(i).round() as i64;
                return Some(value.clamp(self.min, self.max));
            }
        }
        Some(self.max)
    }

    /// Canonical encoding: equal sketches give identical bytes.
    ///
    /// Layout: version (1); LEB128 count; LEB128 zero-bucket count; zigzag LEB128 min, max
    /// (0 when empty) and sum (128-bit); LEB128 bucket count; then per bucket, ascending,
    /// zigzag LEB128 index delta (first from 0) and LEB128 count.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = vec![FORMAT_VERSION];
        varint::put_u64(&mut out, self.count);
        varint::put_u64(&mut out, self.zero_count);
        varint::put_u64(&mut out, varint::zigzag64(self.min));
        varint::put_u64(&mut out, varint::zigzag64(self.max));
        varint::put_u128(&mut out, varint::zigzag128(self.sum));
        varint::put_u64(&mut out, self.buckets.len() as u64);
        let mut prev = 0i64;
        for (&i, &c) in &self.buckets {
            let i = i64::from(i);
            varint::put_u64(&mut out, varint::zigzag64(i - prev));
            varint::put_u64(&mut out, c);
            prev = i;
        }
        out
    }

    /// Decodes [`QuantileSketch::to_bytes`] output, rejecting anything malformed,
    /// non-canonical or self-contradictory.
    pub fn from_bytes(bytes: &[u8]) -> Result<QuantileSketch, SketchError> {
        if bytes.is_empty() {
            return Err(SketchError::Empty);
        }
        let mut r = Reader::new(bytes);
        let version = r.u8("version")?;
        if version != FORMAT_VERSION {
            return Err(SketchError::UnsupportedVersion(version));
        }
        let count = r.u64("count")?;
        let zero_count = r.u64("zero bucket count")?;
        let min = r.i64("min")?;
        let max = r.i64("max")?;
        let sum = r.i128("sum")?;
        let n_buckets = r.u64("bucket count")?;
        if n_buckets > (MAX_INDEX + 1) as u64 {
            return Err(SketchError::Inconsistent {
                what: "more buckets than bucket indices",
            });
        }
        let mut buckets = BTreeMap::new();
        let mut prev: Option<i128> = None;
        let mut total = u128::from(zero_count);
        for _ in 0..n_buckets {
            let delta = i128::from(r.i64("bucket index")?);
            let index = match prev {
                None => delta,
                Some(_) if delta <= 0 => {
                    return Err(SketchError::NonIncreasingIndex { what: "bucket" });
                }
                Some(p) => p + delta,
            };
            let index32 = match i32::try_from(index) {
                Ok(i) if (0..=MAX_INDEX as i128).contains(&index) => i,
                _ => return Err(SketchError::BucketIndexOutOfRange { index }),
            };
            let c = r.u64("bucket count value")?;
            if c == 0 {
                return Err(SketchError::EmptyBucket { index: index32 });
            }
            total += u128::from(c);
            buckets.insert(index32, c);
            prev = Some(index);
        }
        r.finish()?;
        if total != u128::from(count) {
            return Err(SketchError::CountMismatch {
                declared: count,
                actual: total,
            });
        }
        let sketch = QuantileSketch {
            count,
            zero_count,
            buckets,
            min,
            max,
            sum,
        };
        sketch.check_consistent()?;
        Ok(sketch)
    }

    /// Checks that min/max/sum agree with the buckets, as they do after any inserts/merges.
    fn check_consistent(&self) -> Result<(), SketchError> {
        let fail = |what| Err(SketchError::Inconsistent { what });
        if self.count == 0 {
            if (self.min, self.max, self.sum) != (0, 0, 0) {
                return Err(SketchError::NonCanonical {
                    what: "empty sketch with nonzero min, max or sum",
                });
            }
            return Ok(());
        }
        if self.min < 0 || self.min > self.max {
            return fail("min is negative or above max");
        }
        if (self.zero_count > 0) != (self.min == 0) {
            return fail("zero bucket disagrees with min");
        }
        let first = self.buckets.keys().next().copied();
        let last = self.buckets.keys().next_back().copied();
        if self.zero_count == 0 && first != Some(bucket_index(self.min)) {
            return fail("lowest bucket disagrees with min");
        }
        let max_bucket = (self.max > 0).then(|| bucket_index(self.max));
        if last != max_bucket {
            return fail("highest bucket disagrees with max");
        }
        let n = i128::from(self.count);
        if self.sum < n * i128::from(self.min) || self.sum > n * i128::from(self.max) {
            return fail("sum outside count * [min, max]");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_covers_all_i64_and_matches_ln() {
        assert!(UPPER[MAX_INDEX] >= i64::MAX as f64);
        assert!(UPPER[MAX_INDEX - 1] < i64::MAX as f64);
        assert_eq!(bucket_index(i64::MAX) as usize, MAX_INDEX);
        assert_eq!(bucket_index(1), 0);
        assert_eq!(bucket_index(2), 35); // ceil(ln 2 / ln gamma) = ceil(34.66)
        let ln_gamma = GAMMA.ln();
        for v in (1i64..100_000).chain([1 << 40, i64::MAX / 3]) {
            let by_ln = ((v as f64).ln() / ln_gamma).ceil() as i32;
            assert_eq!(bucket_index(v), by_ln, "v={v}");
        }
    }

    #[test]
    fn representative_is_within_alpha_of_bucket_members() {
        for v in (1i64..20_000).chain([1 << 30, 1 << 50, i64::MAX]) {
            let rep = representative(bucket_index(v));
            let err = (rep - v as f64).abs() / v as f64;
            assert!(err <= ALPHA + 1e-9, "v={v} rep={rep} err={err}");
        }
    }
}
