//! HyperLogLog distinct counter, p = 14 (16384 registers, ~0.81 % standard error).
//!
//! Values are hashed with unseeded `xxh3_64`, so the same inputs give the same registers on
//! every machine and every run; that is what makes shard rollups byte-identical. Tens of
//! thousands of these live at once (one per minute per title), so an HLL starts as a sorted
//! sparse list and becomes a dense register array only once the list would exceed a quarter
//! of the dense size.

use std::fmt;

use crate::error::SketchError;
use crate::varint::{self, Reader};

const P: u32 = 14;
const M: usize = 1 << P;
/// Highest rank: 64 - p bits remain after the index, + 1.
const MAX_RANK: u8 = (64 - P + 1) as u8;
/// Sparse entries cost 4 bytes each; above this many the dense array (M bytes) is smaller
/// than 4x the list, so we switch.
const SPARSE_MAX: usize = M / 16;
const FORMAT_VERSION: u8 = 1;
const TAG_SPARSE: u8 = 0;
const TAG_DENSE: u8 = 1;
/// `2^-rank` is summed exactly as `2^(MAX_RANK - rank)` in integers.
const SCALE: f64 = (1u64 << MAX_RANK) as f64;

#[derive(Clone)]
enum Repr {
    /// Sorted by index, one entry per nonzero register, rank in 1..=MAX_RANK.
    Sparse(Vec<(u16, u8)>),
    /// Exactly M registers.
    Dense(Box<[u8]>),
}

/// A HyperLogLog sketch of a set of byte strings.
///
/// Merging is register-wise max, hence exact, commutative and associative; equality compares
/// logical register contents, whatever the in-memory representation.
#[derive(Clone)]
pub struct Hll {
    repr: Repr,
}

impl Hll {
    /// Precision p: the number of hash bits that pick a register.
    pub const PRECISION: u8 = P as u8;
    /// Number of registers, 2^p.
    pub const REGISTERS: usize = M;

    /// An empty sketch; allocates nothing until the first insert.
    pub fn new() -> Self {
        Hll {
            repr: Repr::Sparse(Vec::new()),
        }
    }

    /// The hash [`Hll::insert`] uses, for callers that hash a value once and feed it to
    /// several sketches via [`Hll::insert_hash`].
    pub fn hash(value: &[u8]) -> u64 {
        xxhash_rust::xxh3::xxh3_64(value)
    }

    /// True if nothing was ever inserted (or merged in).
    pub fn is_empty(&self) -> bool {
        self.nonzero_registers() == 0
    }

    /// Adds a value to the set.
    pub fn insert(&mut self, value: &[u8]) {
        self.insert_hash(Self::hash(value));
    }

    /// Adds an already hashed value; the hash must be [`Hll::hash`] of the value for the
    /// result to agree with [`Hll::insert`].
    pub fn insert_hash(&mut self, hash: u64) {
        // Top p bits pick the register; rank = leading zeros of the other 64 - p bits + 1,
        // capped at 64 - p + 1 when those bits are all zero.
        let index = (hash >> (64 - P)) as u16;
        let rest = hash << P;
        let rank = (rest.leading_zeros() + 1).min(u32::from(MAX_RANK)) as u8;
        self.set(index, rank);
    }

    /// Folds `other` into `self` (register-wise max): the sketch of the union of both sets.
    /// The nonzero registers as `(index, rank)`, by index: for stores that keep registers as
    /// rows and union them with `MAX(rank) GROUP BY index`.
    pub fn registers(&self) -> Vec<(u16, u8)> {
        match &self.repr {
            Repr::Sparse(s) => s.clone(),
            Repr::Dense(d) => d
                .iter()
                .enumerate()
                .filter(|(_, r)| **r != 0)
                .map(|(i, r)| (i as u16, *r))
                .collect(),
        }
    }

    pub fn merge(&mut self, other: &Hll) {
        let replacement = match (&mut self.repr, &other.repr) {
            (_, Repr::Sparse(o)) if o.is_empty() => None,
            (Repr::Dense(d), Repr::Sparse(o)) => {
                for &(i, r) in o {
                    raise(&mut d[usize::from(i)], r);
                }
                None
            }
            (Repr::Dense(d), Repr::Dense(o)) => {
                for (slot, &r) in d.iter_mut().zip(o.iter()) {
                    raise(slot, r);
                }
                None
            }
            (Repr::Sparse(s), Repr::Dense(o)) => {
                let mut d = o.clone();
                for &(i, r) in s.iter() {
                    raise(&mut d[usize::from(i)], r);
                }
                Some(Repr::Dense(d))
            }
            (Repr::Sparse(s), Repr::Sparse(o)) => {
                let merged = merge_sorted(s, o);
                if merged.len() > SPARSE_MAX {
                    Some(Repr::Dense(to_dense(&merged)))
                } else {
                    *s = merged;
                    None
                }
            }
        };
        if let Some(repr) = replacement {
            self.repr = repr;
        }
    }

    /// Estimated number of distinct values, rounded to the nearest integer.
    ///
    /// Linear counting (m ln(m/V), V = zero registers) while the raw estimate is at most
    /// 2.5 m; the raw HLL estimate `alpha_m m^2 / sum(2^-M[j])` above. With 64-bit hashes no
    /// large-range correction is needed.
    pub fn estimate(&self) -> u64 {
        let (zeros, total) = match &self.repr {
            Repr::Sparse(s) => {
                let zeros = M - s.len();
                let filled: u128 = s.iter().map(|&(_, r)| weight(r)).sum();
                (zeros, zeros as u128 * weight(0) + filled)
            }
            Repr::Dense(d) => {
                let zeros = d.iter().filter(|&&r| r == 0).count();
                (zeros, d.iter().map(|&r| weight(r)).sum())
            }
        };
        let m = M as f64;
        let alpha = 0.7213 / (1.0 + 1.079 / m);
        let raw = alpha * m * m / (total as f64 / SCALE);
        let estimate = if raw <= 2.5 * m && zeros > 0 {
            m * (m / zeros as f64).ln()
        } else {
            raw
        };
        estimate.round() as u64
    }

    /// Canonical encoding: logically equal sketches give identical bytes. The representation
    /// tag follows the number of nonzero registers, not the in-memory form.
    ///
    /// Layout: version (1), precision (14), tag; sparse: LEB128 entry count, then per entry
    /// LEB128 index delta (first delta from 0) and a rank byte; dense: 16384 register bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = vec![FORMAT_VERSION, Self::PRECISION];
        if self.nonzero_registers() > SPARSE_MAX {
            out.push(TAG_DENSE);
            match &self.repr {
                Repr::Dense(d) => out.extend_from_slice(d),
                Repr::Sparse(s) => out.extend_from_slice(&to_dense(s)),
            }
            return out;
        }
        out.push(TAG_SPARSE);
        let entries = self.sparse_entries();
        varint::put_u64(&mut out, entries.len() as u64);
        let mut prev = 0u16;
        for (i, r) in entries {
            varint::put_u64(&mut out, u64::from(i - prev));
            out.push(r);
            prev = i;
        }
        out
    }

    /// Decodes [`Hll::to_bytes`] output, rejecting anything malformed or non-canonical.
    pub fn from_bytes(bytes: &[u8]) -> Result<Hll, SketchError> {
        if bytes.is_empty() {
            return Err(SketchError::Empty);
        }
        let mut r = Reader::new(bytes);
        let version = r.u8("version")?;
        if version != FORMAT_VERSION {
            return Err(SketchError::UnsupportedVersion(version));
        }
        let precision = r.u8("precision")?;
        if precision != Self::PRECISION {
            return Err(SketchError::UnsupportedPrecision(precision));
        }
        let repr = match r.u8("representation tag")? {
            TAG_SPARSE => Repr::Sparse(decode_sparse(&mut r)?),
            TAG_DENSE => Repr::Dense(decode_dense(&mut r)?),
            tag => return Err(SketchError::UnknownRepresentation(tag)),
        };
        r.finish()?;
        Ok(Hll { repr })
    }

    fn set(&mut self, index: u16, rank: u8) {
        match &mut self.repr {
            Repr::Dense(d) => raise(&mut d[usize::from(index)], rank),
            Repr::Sparse(s) => match s.binary_search_by_key(&index, |&(i, _)| i) {
                Ok(pos) => raise(&mut s[pos].1, rank),
                Err(pos) => {
                    s.insert(pos, (index, rank));
                    if s.len() > SPARSE_MAX {
                        self.repr = Repr::Dense(to_dense(s));
                    }
                }
            },
        }
    }

    fn nonzero_registers(&self) -> usize {
        match &self.repr {
            Repr::Sparse(s) => s.len(),
            Repr::Dense(d) => d.iter().filter(|&&r| r != 0).count(),
        }
    }

    fn sparse_entries(&self) -> Vec<(u16, u8)> {
        match &self.repr {
            Repr::Sparse(s) => s.clone(),
            Repr::Dense(d) => (0u16..)
                .zip(d.iter())
                .filter(|&(_, &r)| r != 0)
                .map(|(i, &r)| (i, r))
                .collect(),
        }
    }
}

impl Default for Hll {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Hll {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.repr {
            Repr::Sparse(_) => "sparse",
            Repr::Dense(_) => "dense",
        };
        f.debug_struct("Hll")
            .field("repr", &kind)
            .field("nonzero_registers", &self.nonzero_registers())
            .finish()
    }
}

impl PartialEq for Hll {
    fn eq(&self, other: &Self) -> bool {
        match (&self.repr, &other.repr) {
            (Repr::Sparse(a), Repr::Sparse(b)) => a == b,
            (Repr::Dense(a), Repr::Dense(b)) => a == b,
            (Repr::Sparse(s), Repr::Dense(d)) | (Repr::Dense(d), Repr::Sparse(s)) => {
                d.iter().filter(|&&r| r != 0).count() == s.len() && s.iter().all(|&(i, r)| d[usize::from(i)] == r)
            }
        }
    }
}

impl Eq for Hll {}

/// `2^-rank` scaled by `2^MAX_RANK`, exact in integers so sums do not depend on order.
fn weight(rank: u8) -> u128 {
    1u128 << (MAX_RANK - rank.min(MAX_RANK))
}

fn raise(slot: &mut u8, rank: u8) {
    if rank > *slot {
        *slot = rank;
    }
}

fn to_dense(entries: &[(u16, u8)]) -> Box<[u8]> {
    let mut d = vec![0u8; M].into_boxed_slice();
    for &(i, r) in entries {
        raise(&mut d[usize::from(i)], r);
    }
    d
}

fn merge_sorted(a: &[(u16, u8)], b: &[(u16, u8)]) -> Vec<(u16, u8)> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        let (ia, ra) = a[i];
        let (ib, rb) = b[j];
        match ia.cmp(&ib) {
            std::cmp::Ordering::Less => {
                out.push(a[i]);
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                out.push(b[j]);
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                out.push((ia, ra.max(rb)));
                i += 1;
                j += 1;
            }
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    out
}

fn decode_sparse(r: &mut Reader<'_>) -> Result<Vec<(u16, u8)>, SketchError> {
    let count = r.u64("sparse entry count")?;
    if count > SPARSE_MAX as u64 {
        return Err(SketchError::NonCanonical {
            what: "sparse form with more entries than the dense threshold",
        });
    }
    let mut entries: Vec<(u16, u8)> = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let delta = r.u64("sparse register index")?;
        let index = match entries.last() {
            None => delta,
            Some(_) if delta == 0 => {
                return Err(SketchError::NonIncreasingIndex { what: "register" });
            }
            Some(&(prev, _)) => u64::from(prev).saturating_add(delta),
        };
        if index >= M as u64 {
            return Err(SketchError::RegisterIndexOutOfRange { index });
        }
        let index = index as u16;
        let rank = r.u8("sparse register rank")?;
        if rank == 0 || rank > MAX_RANK {
            return Err(SketchError::InvalidRank { index, rank });
        }
        entries.push((index, rank));
    }
    Ok(entries)
}

fn decode_dense(r: &mut Reader<'_>) -> Result<Box<[u8]>, SketchError> {
    let registers = r.take(M, "dense registers")?;
    if let Some((index, &rank)) = (0u16..).zip(registers).find(|&(_, &rank)| rank > MAX_RANK) {
        return Err(SketchError::InvalidRank { index, rank });
    }
    if registers.iter().filter(|&&rank| rank != 0).count() <= SPARSE_MAX {
        return Err(SketchError::NonCanonical {
            what: "dense form with few enough registers for the sparse form",
        });
    }
    Ok(registers.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn densified(h: &Hll) -> Hll {
        match &h.repr {
            Repr::Sparse(s) => Hll {
                repr: Repr::Dense(to_dense(s)),
            },
            Repr::Dense(_) => h.clone(),
        }
    }

    fn is_sparse(h: &Hll) -> bool {
        matches!(h.repr, Repr::Sparse(_))
    }

    #[test]
    fn rank_takes_leading_zeros_after_index_and_caps() {
        let mut h = Hll::new();
        h.insert_hash(u64::MAX); // index 16383, rest starts with a 1 bit -> rank 1
        h.insert_hash(0); // index 0, rest all zero -> capped rank 51
        h.insert_hash((1 << 50) | 1); // index 1, rank 50
        assert_eq!(h.sparse_entries(), vec![(0, 51), (1, 50), (16383, 1)]);
    }

    #[test]
    fn stays_sparse_until_quarter_of_dense_size() {
        let mut h = Hll::new();
        let mut v = 0u64;
        while h.nonzero_registers() < SPARSE_MAX {
            h.insert(&v.to_le_bytes());
            v += 1;
            assert!(is_sparse(&h), "went dense at {} registers", h.nonzero_registers());
        }
        while h.nonzero_registers() == SPARSE_MAX {
            h.insert(&v.to_le_bytes());
            v += 1;
        }
        assert!(!is_sparse(&h));
    }

    #[test]
    fn sparse_to_dense_transition_matches_dense_built_directly() {
        let mut incremental = Hll::new();
        let mut dense = densified(&Hll::new());
        for v in 0u64..5_000 {
            incremental.insert(&v.to_le_bytes());
            dense.insert(&v.to_le_bytes());
            if v % 97 == 0 || v == 1_100 {
                assert_eq!(incremental.estimate(), dense.estimate(), "after {v}");
                assert_eq!(incremental, dense);
                assert_eq!(incremental.to_bytes(), dense.to_bytes());
            }
        }
        assert!(!is_sparse(&incremental));
    }

    #[test]
    fn equality_and_bytes_ignore_representation() {
        let mut h = Hll::new();
        for v in 0u64..300 {
            h.insert(&v.to_le_bytes());
        }
        let d = densified(&h);
        assert!(!is_sparse(&d));
        assert_eq!(h, d);
        assert_eq!(d, h);
        assert_eq!(h.to_bytes(), d.to_bytes());
        assert_eq!(h.to_bytes()[2], TAG_SPARSE);
        let mut other = d.clone();
        other.insert(b"one more");
        assert_ne!(h, other);
        assert_ne!(other, h);
        // Merging in every representation combination gives the same sketch.
        let mut extra = Hll::new();
        extra.insert(b"x");
        let mut expected = h.clone();
        expected.insert(b"x");
        for a in [&h, &d] {
            for b in [extra.clone(), densified(&extra)] {
                let mut m = a.clone();
                m.merge(&b);
                assert_eq!(m, expected);
                assert_eq!(m.to_bytes(), expected.to_bytes());
            }
        }
    }

    #[test]
    fn debug_is_short() {
        let mut h = Hll::new();
        for v in 0u64..20_000 {
            h.insert(&v.to_le_bytes());
        }
        let s = format!("{h:?}");
        assert!(s.contains("dense") && s.len() < 80, "{s}");
        assert_eq!(
            format!("{:?}", Hll::new()),
            "Hll { repr: \"sparse\", nonzero_registers: 0 }"
        );
    }
}
