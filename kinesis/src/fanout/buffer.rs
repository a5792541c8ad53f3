//! Events received on a subscription, in our types, and the pure buffer that hands their
//! records out in batches (none dropped, none repeated) with the shard's end after the last.
use aws_sdk_kinesis::types::SubscribeToShardEvent;
use bytes::Bytes;
use inlet_seams::sequence::BadSequenceNumber;
use inlet_seams::{ReadBatch, Record, SequenceNumber, ShardId};
use std::collections::VecDeque;

/// One `SubscribeToShardEvent` in our types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedEvent {
    /// Its records, in shard order.
    pub records: Vec<Record>,
    /// Where a new subscription continues; `None` at the shard's end.
    pub continuation: Option<SequenceNumber>,
    /// How far behind the newest record the event is.
    pub millis_behind_latest: i64,
    /// At the shard's end (no continuation sequence number): the children to read next.
    pub shard_end: Option<Vec<ShardId>>,
}

impl ReceivedEvent {
    /// Converts the SDK's event. A missing continuation sequence number (the SDK reads it
    /// as empty) means the shard is closed and every record has been sent.
    pub fn from_sdk(ev: &SubscribeToShardEvent) -> Result<Self, BadSequenceNumber> {
        let records = ev.records().iter().map(to_record).collect::<Result<Vec<_>, _>>()?;
        let continuation = match ev.continuation_sequence_number() {
            "" => None,
            s => Some(SequenceNumber::parse(s)?),
        };
        let shard_end = continuation.is_none().then(|| {
            ev.child_shards()
                .iter()
                .map(|c| ShardId(c.shard_id().to_owned()))
                .collect()
        });
        Ok(Self {
            records,
            continuation,
            millis_behind_latest: ev.millis_behind_latest(),
            shard_end,
        })
    }
}

fn to_record(r: &aws_sdk_kinesis::types::Record) -> Result<Record, BadSequenceNumber> {
    Ok(Record {
        sequence: SequenceNumber::parse(r.sequence_number())?,
        partition_key: r.partition_key().unwrap_or_default().to_owned(),
        // Not sent; deaggregation uses the inner records' own.
        explicit_hash_key: None,
        data: Bytes::copy_from_slice(r.data().as_ref()),
        arrival_ms: r
            .approximate_arrival_timestamp()
            .and_then(|t| t.to_millis().ok())
            .unwrap_or(0),
    })
}

/// Records received and not yet handed out, and the shard's end once an event said so.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventBuffer {
    records: VecDeque<Record>,
    millis_behind_latest: Option<i64>,
    shard_end: Option<Vec<ShardId>>,
    ended: bool,
}

impl EventBuffer {
    /// Adds an event's records (and its shard end).
    pub fn push(&mut self, event: ReceivedEvent) {
        self.records.extend(event.records);
        self.millis_behind_latest = Some(event.millis_behind_latest);
        if event.shard_end.is_some() {
            self.shard_end = event.shard_end;
        }
    }

    /// Whether records or the shard's end wait to be handed out.
    pub fn pending(&self) -> bool {
        !self.records.is_empty() || self.shard_end.is_some()
    }

    /// Records waiting.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether no record waits.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Whether the shard's end has been handed out.
    pub fn ended(&self) -> bool {
        self.ended
    }

    /// The next batch: up to `max` (at least 1) records, oldest first, with the shard's end
    /// once the last of them goes out. Empty when nothing waits.
    pub fn take(&mut self, max: usize) -> ReadBatch {
        let n = max.max(1).min(self.records.len());
        let records: Vec<Record> = self.records.drain(..n).collect();
        let shard_end = if self.records.is_empty() {
            self.shard_end.take()
        } else {
            None
        };
        self.ended |= shard_end.is_some();
        ReadBatch {
            records,
            millis_behind_latest: self.millis_behind_latest,
            shard_end,
        }
    }
}
