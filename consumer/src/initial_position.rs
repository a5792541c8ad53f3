//! Where a consumer starts reading a shard that has no checkpoint yet: the KCL's
//! `initialPositionInStream`.
use inlet_seams::{Lease, ShardId, StartPosition, StreamError, StreamReader};
use std::fmt;
use std::str::FromStr;
use std::time::{Duration, UNIX_EPOCH};

/// Where a worker starts a shard that has no checkpoint (a shard with one always resumes at
/// it). Written `trim_horizon`, `latest` or `at_timestamp:<RFC 3339 time in UTC>` (e.g.
/// `at_timestamp:2026-12-04T13:00:00Z`), in settings and through serde alike.
///
/// - **Resharding.** A child shard whose parent this consumer read (the parent is still in the
///   stream's shard list, so it has a lease and is finished before the child is taken) always
///   starts at [`InitialPosition::TrimHorizon`], whatever this says, as the KCL does: records
///   written to the child between the parent's end and the child's first read are not lost.
///   A child whose parents are gone from the stream (aged out) is a root for this consumer and
///   starts here. So on a stream resharded within its retention, a new consumer at `latest`
///   reads the children of still-listed parents from their trim horizon.
/// - **`latest` before the first checkpoint.** `latest` is the shard's end when its reader
///   opens. Until a shard has a checkpoint, a restart or a lease moving to another worker opens
///   it at the (new) latest again, so records written in between that were not committed yet
///   are skipped: the same as the KCL. To keep that window short, a shard started at `latest`
///   commits right after its first records are read (not a commit interval later); from then
///   on it resumes from its checkpoint like any other.
/// - **`at_timestamp`** starts at the first record whose arrival time at the stream is at or
///   after the time (Kinesis: its approximate arrival timestamp; Kafka: the record's
///   timestamp), and the end of the shard when there is none yet. Restarts before the first
///   checkpoint start at the same place again, so nothing is skipped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum InitialPosition {
    /// The oldest record the stream still keeps.
    #[default]
    TrimHorizon,
    /// Only records written after the shard's reader opens.
    Latest,
    /// The first record that arrived at or after this time, ms since the epoch.
    AtTimestamp(i64),
}

/// What [`InitialPosition::from_str`] refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "initial position {given:?} is not one of trim_horizon, latest or at_timestamp:<RFC 3339 time in UTC> \
     (e.g. at_timestamp:2026-12-04T13:00:00Z){}",
    reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default()
)]
pub struct BadInitialPosition {
    /// The text given.
    pub given: String,
    /// Why its time did not parse, for `at_timestamp:`.
    pub reason: Option<String>,
}

const AT_TIMESTAMP: &str = "at_timestamp:";
/// The largest time RFC 3339 text (and humantime) can write: the last ms of year 9999.
const MAX_MS: i64 = 253_402_300_800_000 - 1;

impl InitialPosition {
    /// Where to read `lease`'s shard from: its checkpoint; without one, the trim horizon for a
    /// child of a shard this consumer read (`parent_read` says which are: those the stream
    /// still lists), and this position otherwise. See the type's doc for why.
    pub fn start_of(self, lease: &Lease, parent_read: impl Fn(&ShardId) -> bool) -> StartPosition {
        match &lease.checkpoint {
            Some(c) => c.resume_position(),
            None if lease.parents.iter().any(parent_read) => StartPosition::TrimHorizon,
            None => self.into(),
        }
    }
}

impl From<InitialPosition> for StartPosition {
    fn from(p: InitialPosition) -> Self {
        match p {
            InitialPosition::TrimHorizon => StartPosition::TrimHorizon,
            InitialPosition::Latest => StartPosition::Latest,
            InitialPosition::AtTimestamp(ms) => StartPosition::AtTimestamp(ms),
        }
    }
}

/// [`InitialPosition::start_of`] with the parents looked up in the stream's shard list, only
/// when it can matter (no checkpoint, parents, and a position other than the trim horizon).
pub(crate) async fn start_of(
    initial: InitialPosition,
    lease: &Lease,
    stream: &dyn StreamReader,
) -> Result<StartPosition, StreamError> {
    if lease.checkpoint.is_some() || lease.parents.is_empty() || initial == InitialPosition::TrimHorizon {
        return Ok(initial.start_of(lease, |_| false));
    }
    let listed = stream.list_shards().await?;
    Ok(initial.start_of(lease, |p| listed.iter().any(|s| &s.id == p)))
}

impl FromStr for InitialPosition {
    type Err = BadInitialPosition;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |reason: Option<String>| BadInitialPosition {
            given: s.to_owned(),
            reason,
        };
        match s {
            "trim_horizon" => Ok(Self::TrimHorizon),
            "latest" => Ok(Self::Latest),
            _ => {
                let time = s.strip_prefix(AT_TIMESTAMP).ok_or_else(|| bad(None))?;
                let at = humantime::parse_rfc3339(time).map_err(|e| bad(Some(e.to_string())))?;
                let ms = at
                    .duration_since(UNIX_EPOCH)
                    .map_err(|e| bad(Some(e.to_string())))?
                    .as_millis();
                // parse_rfc3339 stops at year 9999, well within i64 ms.
                Ok(Self::AtTimestamp(
                    i64::try_from(ms).map_err(|e| bad(Some(e.to_string())))?,
                ))
            }
        }
    }
}

impl fmt::Display for InitialPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TrimHorizon => f.write_str("trim_horizon"),
            Self::Latest => f.write_str("latest"),
            Self::AtTimestamp(ms) => {
                // RFC 3339 text spans 1970 to 9999: a time outside is written as the nearest end,
                // which reads the same records (none arrived before 1970 or after 9999).
                let ms = (*ms).clamp(0, MAX_MS);
                let at = UNIX_EPOCH + Duration::from_millis(ms.unsigned_abs());
                let time = if ms % 1000 == 0 {
                    humantime::format_rfc3339_seconds(at)
                } else {
                    humantime::format_rfc3339_millis(at)
                };
                write!(f, "{AT_TIMESTAMP}{time}")
            }
        }
    }
}

impl serde::Serialize for InitialPosition {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for InitialPosition {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use inlet_seams::{Checkpoint, SequenceNumber};

    #[test]
    fn parses_the_three_forms() {
        assert_eq!("trim_horizon".parse(), Ok(InitialPosition::TrimHorizon));
        assert_eq!("latest".parse(), Ok(InitialPosition::Latest));
        assert_eq!(
            "at_timestamp:2026-12-04T13:00:00Z".parse(),
            Ok(InitialPosition::AtTimestamp(1_796_389_200_000))
        );
        assert_eq!(
            "at_timestamp:1970-01-01T00:00:01.250Z".parse(),
            Ok(InitialPosition::AtTimestamp(1_250))
        );
        assert_eq!(InitialPosition::default(), InitialPosition::TrimHorizon);
    }

    #[test]
    fn the_error_says_what_is_accepted() {
        for bad in [
            "LATEST",
            "",
            "at_timestamp:",
            "at_timestamp:yesterday",
            "at_timestamp:2026-12-04T13:00:00+01:00",
        ] {
            let e = bad.parse::<InitialPosition>().unwrap_err().to_string();
            assert!(
                e.contains("trim_horizon, latest or at_timestamp:<RFC 3339 time in UTC>"),
                "{bad:?}: {e}"
            );
        }
        let e = "at_timestamp:2026-13-04T13:00:00Z"
            .parse::<InitialPosition>()
            .unwrap_err();
        assert!(e.reason.is_some(), "a bad time says why: {e}");
    }

    #[test]
    fn display_round_trips() {
        for text in [
            "trim_horizon",
            "latest",
            "at_timestamp:2026-12-04T13:00:00Z",
            "at_timestamp:2026-12-04T13:00:00.042Z",
            "at_timestamp:1970-01-01T00:00:00Z",
        ] {
            let p: InitialPosition = text.parse().unwrap();
            assert_eq!(p.to_string(), text);
            assert_eq!(p.to_string().parse::<InitialPosition>().unwrap(), p);
        }
        // Out of RFC 3339's range: written as the nearest end, which reads the same records.
        assert_eq!(
            InitialPosition::AtTimestamp(-5).to_string(),
            "at_timestamp:1970-01-01T00:00:00Z"
        );
        assert_eq!(
            InitialPosition::AtTimestamp(i64::MAX).to_string(),
            "at_timestamp:9999-12-31T23:59:59.999Z"
        );
    }

    #[test]
    fn serde_goes_through_the_text() {
        let p = InitialPosition::AtTimestamp(1_796_389_200_000);
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(json, r#""at_timestamp:2026-12-04T13:00:00Z""#);
        assert_eq!(serde_json::from_str::<InitialPosition>(&json).unwrap(), p);
        assert_eq!(
            serde_json::from_str::<InitialPosition>(r#""latest""#).unwrap(),
            InitialPosition::Latest
        );
        let e = serde_json::from_str::<InitialPosition>(r#""newest""#).unwrap_err();
        assert!(e.to_string().contains("trim_horizon, latest or at_timestamp"), "{e}");
    }

    fn lease(parents: &[u32], checkpoint: Option<u64>) -> Lease {
        Lease {
            shard: ShardId::from_index(9),
            owner: None,
            counter: 0,
            expires_at_ms: 0,
            checkpoint: checkpoint.map(|n| Checkpoint {
                sequence: SequenceNumber::from_u64(n),
                sub_sequence: 0,
            }),
            watermark_ms: None,
            folded_before_minute: None,
            parents: parents.iter().map(|i| ShardId::from_index(*i)).collect(),
            finished: false,
        }
    }

    #[test]
    fn a_checkpoint_wins_then_a_read_parent_then_the_setting() {
        let latest = InitialPosition::Latest;
        let at = InitialPosition::AtTimestamp(7);
        let listed = |p: &ShardId| p == &ShardId::from_index(1);
        assert_eq!(
            latest.start_of(&lease(&[1], Some(5)), listed),
            StartPosition::AtSequence(SequenceNumber::from_u64(5))
        );
        // A child of a shard read here: the trim horizon, whatever the setting.
        for p in [latest, at, InitialPosition::TrimHorizon] {
            assert_eq!(p.start_of(&lease(&[1], None), listed), StartPosition::TrimHorizon);
            // A merge with one parent gone and one read counts as a child too.
            assert_eq!(p.start_of(&lease(&[0, 1], None), listed), StartPosition::TrimHorizon);
        }
        // A root, or a child whose parents aged out: the setting.
        assert_eq!(latest.start_of(&lease(&[], None), listed), StartPosition::Latest);
        assert_eq!(latest.start_of(&lease(&[0], None), listed), StartPosition::Latest);
        assert_eq!(at.start_of(&lease(&[0], None), listed), StartPosition::AtTimestamp(7));
    }
}
