//! Decode errors shared by both sketch encodings.
//!
//! Sketch bytes cross process boundaries (Kafka, files), so decoding is strict: every way a
//! byte string can be wrong has its own variant, and nothing non-canonical is accepted (a
//! decoded sketch always re-encodes to the same bytes).

/// Why a byte string is not a valid sketch encoding.
#[non_exhaustive]
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum SketchError {
    /// The input has no bytes at all.
    #[error("empty input: no sketch bytes")]
    Empty,
    /// The first byte names a format version this build does not know.
    #[error("unsupported format version {0}")]
    UnsupportedVersion(u8),
    /// The HyperLogLog precision byte is not 14.
    #[error("unsupported HyperLogLog precision {0} (expected 14)")]
    UnsupportedPrecision(u8),
    /// The HyperLogLog representation tag is neither 0 (sparse) nor 1 (dense).
    #[error("unknown representation tag {0}")]
    UnknownRepresentation(u8),
    /// The input ended while a field was still being read.
    #[error("truncated input while reading {what}")]
    Truncated {
        /// The field being read.
        what: &'static str,
    },
    /// A varint does not fit the integer type of its field.
    #[error("varint overflow while reading {what}")]
    VarintOverflow {
        /// The field being read.
        what: &'static str,
    },
    /// A HyperLogLog register index is not below 16384.
    #[error("register index {index} out of range (must be < 16384)")]
    RegisterIndexOutOfRange {
        /// The decoded index.
        index: u64,
    },
    /// A DDSketch bucket index is outside the range any non-negative i64 maps to.
    #[error("bucket index {index} out of range")]
    BucketIndexOutOfRange {
        /// The decoded index.
        index: i128,
    },
    /// Indices must be strictly increasing (no duplicates, sorted).
    #[error("{what} indices are not strictly increasing")]
    NonIncreasingIndex {
        /// Which kind of index.
        what: &'static str,
    },
    /// A HyperLogLog rank is 0 in sparse form, or above 64 - p + 1 = 51.
    #[error("invalid rank {rank} for register {index}")]
    InvalidRank {
        /// The register index.
        index: u16,
        /// The offending rank.
        rank: u8,
    },
    /// A DDSketch bucket entry carries a zero count (empty buckets are never encoded).
    #[error("bucket {index} has a zero count")]
    EmptyBucket {
        /// The bucket index.
        index: i32,
    },
    /// The DDSketch total count differs from the zero bucket plus all bucket counts.
    #[error("declared count {declared} differs from the sum of bucket counts {actual}")]
    CountMismatch {
        /// The count field.
        declared: u64,
        /// Zero bucket plus bucket counts.
        actual: u128,
    },
    /// Bytes remain after a complete sketch.
    #[error("{count} trailing bytes after the sketch")]
    TrailingBytes {
        /// How many bytes are left over.
        count: usize,
    },
    /// Well-formed, but not the single canonical encoding of its contents.
    #[error("non-canonical encoding: {what}")]
    NonCanonical {
        /// What is not canonical.
        what: &'static str,
    },
    /// Fields contradict each other (e.g. min > max), so no sequence of inserts made them.
    #[error("inconsistent sketch: {what}")]
    Inconsistent {
        /// Which fields disagree.
        what: &'static str,
    },
}
