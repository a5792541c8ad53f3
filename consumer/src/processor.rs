//! The consumer's pure core: one shard's records in, rollups and dead letters out.
//!
//! No I/O and no clock: every decision depends on the records' order alone, so
//! processing the same records from the same state always gives the same commit.
//!
//! Each event whose id and event time are intact is looked up in the shard's remembered ids
//! ([`Dedupe`]) before it touches a rollup: a copy of an event already aggregated or
//! dead-lettered is dropped and counted as a duplicate. So `read = aggregated +
//! dead-lettered + duplicates`, and the remembered ids are committed with the checkpoint.
//!
//! Given the shard's hash-key range, user records of KPL aggregates whose hash key is
//! outside it are counted (and logged at debug level) but processed like any other: unlike
//! the KCL, which drops them.
use inlet_rollup::{Applied, Dedupe, Horizon, Lateness, Seen, ShardRollup};
use inlet_schemas::events::Envelope;
use inlet_schemas::{kpl, validate};
use inlet_seams::{Checkpoint, DeadLetter, DeadLetterKind, HashKeyRange, LeaseToken, Record, ShardCommit, ShardId};
use prost::Message;

/// Counts of one commit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CommitCounts {
    /// User records read (not counting those skipped as already checkpointed).
    pub read: u64,
    /// Events aggregated.
    pub aggregated: u64,
    /// Dead letters by kind, in [`DeadLetterKind::ALL`] order.
    pub dead: [u64; DeadLetterKind::ALL.len()],
    /// Copies of events already counted, dropped.
    pub duplicates: u64,
}

/// Where a user record sits: its stream record, its index inside, its own partition key.
#[derive(Clone, Copy)]
struct At<'a> {
    record: &'a Record,
    sub: u32,
    partition_key: &'a str,
}

/// Why a user record is dead-lettered.
struct Letter {
    kind: DeadLetterKind,
    field: Option<String>,
    reason: String,
}

/// The default retry window of the dedupe horizon (see [`inlet_rollup::dedupe`]).
pub use inlet_rollup::dedupe::DEFAULT_RETRY_WINDOW_MS;

/// Processes one shard's records.
#[derive(Debug)]
pub struct RecordProcessor {
    shard: ShardId,
    rollup: ShardRollup,
    limits: validate::Limits,
    lateness: Lateness,
    checkpoint: Option<Checkpoint>,
    committed: Option<Checkpoint>,
    dead_letters: Vec<DeadLetter>,
    counts: CommitCounts,
    hash_range: Option<HashKeyRange>,
    outside_range: u64,
    dedupe: Option<Dedupe>,
}

impl RecordProcessor {
    /// Resumes a shard from its last commit: its checkpoint and restored rollup state.
    pub fn new(
        shard: ShardId,
        rollup: ShardRollup,
        checkpoint: Option<Checkpoint>,
        limits: validate::Limits,
        lateness: Lateness,
    ) -> Self {
        Self {
            shard,
            rollup,
            limits,
            lateness,
            committed: checkpoint.clone(),
            checkpoint,
            dead_letters: Vec::new(),
            counts: CommitCounts::default(),
            hash_range: None,
            outside_range: 0,
            dedupe: Some(Dedupe::new(Horizon {
                lateness,
                retry_window_ms: DEFAULT_RETRY_WINDOW_MS,
            })),
        }
    }

    /// With this dedupe state (restored from the shard's last commit), or none at all
    /// (every copy counted: only for measuring what dedupe costs).
    pub fn with_dedupe(mut self, dedupe: Option<Dedupe>) -> Self {
        self.dedupe = dedupe;
        self
    }

    /// The dedupe state, if dedupe is on.
    pub fn dedupe(&self) -> Option<&Dedupe> {
        self.dedupe.as_ref()
    }

    /// Checking the user records of KPL aggregates against the shard's hash-key range
    /// (`None`: no check). A user record outside it is processed like any other, and counted
    /// ([`RecordProcessor::outside_range`]): the KCL drops them silently, but the producer can
    /// put a few there when the shard was split or merged while their aggregate was in flight,
    /// and they are real events.
    pub fn with_hash_range(mut self, range: Option<HashKeyRange>) -> Self {
        self.hash_range = range;
        self
    }

    /// User records found outside the shard's hash-key range since this processor was made
    /// (those the checkpoint covered are not looked at).
    pub fn outside_range(&self) -> u64 {
        self.outside_range
    }

    /// The rollup state (for tests and metrics).
    pub fn rollup(&self) -> &ShardRollup {
        &self.rollup
    }

    /// User records handled since the last commit.
    pub fn pending(&self) -> u64 {
        self.counts.read
    }

    /// Whether anything was processed since the last commit.
    pub fn has_pending(&self) -> bool {
        self.checkpoint != self.committed
    }

    /// Handles one stream record: each user record inside is aggregated or dead-lettered,
    /// except those the checkpoint already covers.
    pub fn process(&mut self, record: &Record) {
        let users = match kpl::decode_strict(&record.partition_key, record.explicit_hash_key, &record.data) {
            Ok(users) => users,
            Err(e) => {
                if !self.covered(record, 0) {
                    // A corrupt aggregate counts as one record: what it held is unknowable.
                    self.counts.read += 1;
                    let at = At {
                        record,
                        sub: 0,
                        partition_key: &record.partition_key,
                    };
                    let letter = Letter {
                        kind: DeadLetterKind::CorruptRecord,
                        field: None,
                        reason: e.to_string(),
                    };
                    self.dead(at, letter, None, record.data.clone());
                    self.advance(record, 0);
                }
                return;
            }
        };
        // Plain records are where Kinesis put them by their own key: only aggregates can hold
        // user records of another shard.
        let range = self.hash_range.filter(|_| kpl::is_aggregated(&record.data));
        for (i, user) in users.into_iter().enumerate() {
            let sub = i as u32;
            if self.covered(record, sub) {
                continue;
            }
            self.counts.read += 1;
            if let Some(range) = range {
                let key = user
                    .explicit_hash_key
                    .unwrap_or_else(|| inlet_seams::hash_key(&user.partition_key));
                if !range.contains(key) {
                    self.outside_range += 1;
                    tracing::debug!(
                        shard = %self.shard,
                        sequence = %record.sequence,
                        sub_sequence = sub,
                        hash_key = key,
                        range_start = range.start,
                        range_end = range.end,
                        "user record outside the shard's hash key range; processed all the same"
                    );
                }
            }
            let at = At {
                record,
                sub,
                partition_key: &user.partition_key,
            };
            match Envelope::decode(user.data.as_ref()) {
                Err(e) => {
                    let letter = Letter {
                        kind: DeadLetterKind::Malformed,
                        field: None,
                        reason: format!("not an event: {e}"),
                    };
                    self.dead(at, letter, None, user.data.clone());
                }
                Ok(event) => self.event(at, event, &user.data),
            }
            self.advance(record, sub);
        }
    }

    fn event(&mut self, at: At<'_>, event: Envelope, data: &bytes::Bytes) {
        let app_id = event.emitter.as_ref().map(|e| e.app_id.clone());
        let validated = validate::validate(&event, &self.limits);
        // Only an id with a trusted event time can be remembered: the time places it.
        let identity = match &validated {
            Ok(()) => true,
            Err(invalid) => invalid.identity_intact(),
        };
        if identity && self.is_duplicate(&event) {
            self.counts.duplicates += 1;
            return;
        }
        if let Err(invalid) = validated {
            let field = Some(invalid.first().field.to_owned());
            let letter = Letter {
                kind: DeadLetterKind::Invalid,
                field,
                reason: invalid.to_string(),
            };
            self.dead(at, letter, app_id, data.clone());
            return;
        }
        match self.rollup.apply(&event) {
            Applied::Aggregated => self.counts.aggregated += 1,
            Applied::Late { watermark_ms } => {
                let reason = format!(
                    "event time {} is {} ms behind the shard's watermark {watermark_ms} (allowed lateness {} ms)",
                    event.event_time_ms,
                    watermark_ms - event.event_time_ms,
                    self.lateness.allowed_ms
                );
                let letter = Letter {
                    kind: DeadLetterKind::Late,
                    field: Some("event_time_ms".into()),
                    reason,
                };
                self.dead(at, letter, app_id, data.clone());
            }
            // Validation refuses events without a body; kept for completeness.
            Applied::NoBody => {
                let letter = Letter {
                    kind: DeadLetterKind::Invalid,
                    field: Some("body".into()),
                    reason: "missing".into(),
                };
                self.dead(at, letter, app_id, data.clone());
            }
        }
    }

    /// Looks the event's id up (remembering it when new). The watermark is the one before
    /// the event, as for lateness.
    fn is_duplicate(&mut self, event: &Envelope) -> bool {
        let (Some(dedupe), Some(id)) = (self.dedupe.as_mut(), validate::uuid_v7_bits(&event.event_id)) else {
            return false;
        };
        dedupe.check(id, event.event_time_ms, self.rollup.watermark_ms()) == Seen::Duplicate
    }

    fn covered(&self, record: &Record, sub: u32) -> bool {
        self.checkpoint
            .as_ref()
            .is_some_and(|c| c.covers(&record.sequence, sub))
    }

    fn advance(&mut self, record: &Record, sub: u32) {
        self.checkpoint = Some(Checkpoint {
            sequence: record.sequence.clone(),
            sub_sequence: sub,
        });
    }

    fn dead(&mut self, at: At<'_>, letter: Letter, app_id: Option<String>, data: bytes::Bytes) {
        if let Some(slot) = DeadLetterKind::ALL.iter().position(|k| *k == letter.kind) {
            self.counts.dead[slot] += 1;
        }
        self.dead_letters.push(DeadLetter {
            shard: self.shard.clone(),
            sequence: at.record.sequence.clone(),
            sub_sequence: at.sub,
            kind: letter.kind,
            field: letter.field,
            reason: letter.reason,
            app_id,
            partition_key: at.partition_key.to_owned(),
            data,
        });
    }

    /// What to commit now (if anything was processed since the last commit), and its
    /// counts. Call [`RecordProcessor::committed`] once it is durable.
    pub fn take_commit(&mut self, token: &LeaseToken, shard_end: bool) -> Option<(ShardCommit, CommitCounts)> {
        if !self.has_pending() && !shard_end {
            return None;
        }
        let checkpoint = self.checkpoint.clone();
        let (viewing, games) = self.rollup.take_dirty();
        let watermark_ms = self.rollup.watermark_ms();
        let commit = ShardCommit {
            token: token.clone(),
            checkpoint,
            watermark_ms,
            open_from_minute: watermark_ms.map(|_| self.rollup.first_open_minute()),
            viewing,
            games,
            dead_letters: std::mem::take(&mut self.dead_letters),
            seen: self
                .dedupe
                .as_mut()
                .map(|d| d.take_commit(watermark_ms))
                .unwrap_or_default(),
            shard_end,
        };
        Some((commit, std::mem::take(&mut self.counts)))
    }

    /// Records that the last taken commit is durable: closed windows and ids behind the
    /// horizon can be forgotten.
    pub fn committed(&mut self, commit: &ShardCommit) {
        self.committed = commit.checkpoint.clone();
        self.rollup.evict_closed();
        if let Some(d) = self.dedupe.as_mut() {
            d.committed(&commit.seen);
        }
    }
}
