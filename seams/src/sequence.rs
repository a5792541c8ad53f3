//! Sequence numbers, start positions and checkpoints.
use std::cmp::Ordering;
use std::fmt;

/// A record's position in its shard: decimal digits, ordered by numeric value. Opaque
/// otherwise (Kinesis sequence numbers exceed 128 bits; Kafka offsets and the embedded log
/// are plain integers).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SequenceNumber(String);

/// A sequence number that is not a non-empty string of decimal digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("sequence number {0:?} is not a string of decimal digits")]
pub struct BadSequenceNumber(pub String);

impl SequenceNumber {
    /// Parses decimal digits (leading zeros are dropped so equal numbers are equal).
    pub fn parse(s: &str) -> Result<Self, BadSequenceNumber> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(BadSequenceNumber(s.to_owned()));
        }
        let trimmed = s.trim_start_matches('0');
        Ok(Self(if trimmed.is_empty() { "0".into() } else { trimmed.into() }))
    }
    /// From an integer position (embedded log, Kafka offset).
    pub fn from_u64(n: u64) -> Self {
        Self(n.to_string())
    }
    /// As an integer, when it fits (embedded log, Kafka offsets always do).
    pub fn to_u64(&self) -> Option<u64> {
        self.0.parse().ok()
    }
    /// The digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Ord for SequenceNumber {
    fn cmp(&self, other: &Self) -> Ordering {
        // No leading zeros (see `parse`), so the longer number is the larger.
        self.0.len().cmp(&other.0.len()).then_with(|| self.0.cmp(&other.0))
    }
}

impl PartialOrd for SequenceNumber {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for SequenceNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where to start reading a shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartPosition {
    /// The oldest record still kept.
    TrimHorizon,
    /// Only records written after the reader opens.
    Latest,
    /// The record with this sequence number.
    AtSequence(SequenceNumber),
    /// The record after this sequence number.
    AfterSequence(SequenceNumber),
    /// The first record that arrived at or after this time (ms since the epoch).
    AtTimestamp(i64),
}

/// How far a shard has been processed: every user record up to and including
/// `sub_sequence` of the stream record `sequence` (KPL aggregates hold many user records,
/// so a restart inside one resumes at the right user record).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Checkpoint {
    /// The stream record.
    pub sequence: SequenceNumber,
    /// The index of the last processed user record inside it.
    pub sub_sequence: u32,
}

impl Checkpoint {
    /// From a lease row's columns: both set, or neither (no checkpoint yet).
    pub fn from_stored(sequence: Option<&str>, sub_sequence: Option<u32>) -> Result<Option<Self>, BadSequenceNumber> {
        match (sequence, sub_sequence) {
            (Some(seq), Some(sub)) => Ok(Some(Checkpoint {
                sequence: SequenceNumber::parse(seq)?,
                sub_sequence: sub,
            })),
            _ => Ok(None),
        }
    }

    /// Every user record of the stream record `sequence`: what an operator's skip of an
    /// unreadable range commits (the record itself may be one that cannot be read).
    pub fn whole(sequence: SequenceNumber) -> Self {
        Self {
            sequence,
            sub_sequence: u32::MAX,
        }
    }

    /// Where a reader resumes: at the checkpointed record (its user records up to
    /// `sub_sequence` are skipped by the caller), or after it when it is done whole.
    pub fn resume_position(&self) -> StartPosition {
        if self.sub_sequence == u32::MAX {
            StartPosition::AfterSequence(self.sequence.clone())
        } else {
            StartPosition::AtSequence(self.sequence.clone())
        }
    }
    /// Whether the user record `(sequence, sub)` was already processed.
    pub fn covers(&self, sequence: &SequenceNumber, sub: u32) -> bool {
        (sequence, sub) <= (&self.sequence, self.sub_sequence)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn orders_like_integers(a in any::<u128>(), b in any::<u128>()) {
            let (sa, sb) = (SequenceNumber::parse(&a.to_string()).unwrap(), SequenceNumber::parse(&b.to_string()).unwrap());
            prop_assert_eq!(sa.cmp(&sb), a.cmp(&b));
        }
    }

    #[test]
    fn long_kinesis_numbers_and_zeros() {
        let a = SequenceNumber::parse("49590338271490256608559692538361571095921575989136588898").unwrap();
        let b = SequenceNumber::parse("49590338271490256608559692540925702759324208523137515618").unwrap();
        assert!(a < b);
        assert_eq!(SequenceNumber::parse("007").unwrap(), SequenceNumber::from_u64(7));
        assert!(SequenceNumber::parse("").is_err());
        assert!(SequenceNumber::parse("12a").is_err());
    }

    #[test]
    fn checkpoint_covers() {
        let c = Checkpoint {
            sequence: SequenceNumber::from_u64(10),
            sub_sequence: 2,
        };
        assert!(c.covers(&SequenceNumber::from_u64(9), 100));
        assert!(c.covers(&SequenceNumber::from_u64(10), 2));
        assert!(!c.covers(&SequenceNumber::from_u64(10), 3));
        assert!(!c.covers(&SequenceNumber::from_u64(11), 0));
        assert_eq!(
            c.resume_position(),
            StartPosition::AtSequence(SequenceNumber::from_u64(10))
        );
        let whole = Checkpoint::whole(SequenceNumber::from_u64(10));
        assert!(whole.covers(&SequenceNumber::from_u64(10), u32::MAX - 1));
        assert_eq!(
            whole.resume_position(),
            StartPosition::AfterSequence(SequenceNumber::from_u64(10)),
            "a record done whole is not read again: it may be the one that cannot be read"
        );
    }
}
