//! Where a subscription starts: our start positions as enhanced fan-out starting positions,
//! and the cursor that resumes just after the newest position received.
use aws_sdk_kinesis::primitives::DateTime;
use aws_sdk_kinesis::types::{ShardIteratorType, StartingPosition};
use inlet_seams::{SequenceNumber, StartPosition};

/// Our start position as an enhanced fan-out starting position.
pub fn starting_position(from: &StartPosition) -> StartingPosition {
    let b = StartingPosition::builder();
    let b = match from {
        StartPosition::TrimHorizon => b.r#type(ShardIteratorType::TrimHorizon),
        StartPosition::Latest => b.r#type(ShardIteratorType::Latest),
        StartPosition::AtSequence(s) => b
            .r#type(ShardIteratorType::AtSequenceNumber)
            .sequence_number(s.as_str()),
        StartPosition::AfterSequence(s) => b
            .r#type(ShardIteratorType::AfterSequenceNumber)
            .sequence_number(s.as_str()),
        StartPosition::AtTimestamp(ms) => b
            .r#type(ShardIteratorType::AtTimestamp)
            .timestamp(DateTime::from_millis(*ms)),
    };
    b.build()
        .unwrap_or_else(|e| unreachable!("every arm sets the type, all that `build` checks: {e}"))
}

/// Where the next subscription of a shard starts: the position the reader was opened at
/// until an event arrives, then just after the newest position received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResumeCursor {
    start: StartPosition,
    newest: Option<SequenceNumber>,
}

impl ResumeCursor {
    /// A cursor at the reader's open position.
    pub fn new(start: StartPosition) -> Self {
        Self { start, newest: None }
    }

    /// Records what an event carried: its last record and its continuation sequence number
    /// (either may be absent). The cursor never moves back.
    pub fn received(&mut self, last_record: Option<&SequenceNumber>, continuation: Option<&SequenceNumber>) {
        for s in [last_record, continuation].into_iter().flatten() {
            if self.newest.as_ref().is_none_or(|n| s > n) {
                self.newest = Some(s.clone());
            }
        }
    }

    /// Where a new subscription starts.
    pub fn position(&self) -> StartPosition {
        match &self.newest {
            Some(s) => StartPosition::AfterSequence(s.clone()),
            None => self.start.clone(),
        }
    }
}
