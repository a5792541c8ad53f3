//! The operator's way past records that cannot be read (`inlet shard skip`): a shard whose
//! reads fail at its checkpoint forever (a corrupt page of the embedded stream, a record the
//! broker cannot serve) would otherwise hold its worker not ready for good.
//!
//! The skip takes the shard's lease (fencing off the worker that holds it, as a steal does),
//! checks that the shard really cannot be read at its checkpoint, finds the last position to
//! skip (given, or probed: the first position after which a read succeeds, for streams whose
//! positions are integers), and commits in one fenced transaction: the checkpoint moved past
//! the range, the watermark and the dedupe state unchanged, and one `corrupt_record` dead
//! letter (field `unreadable`) naming the range, the read error and the operator's reason.
//! Then it releases the lease, so a worker resumes after the range at once. Nothing is
//! skipped silently: the dead letter counts the range as one record read (what it held is
//! unknowable, as for a corrupt aggregate), and the command says what it did.
use crate::worker::now_ms;
use bytes::Bytes;
use inlet_rollup::SeenCommit;
use inlet_seams::{
    Checkpoint, DeadLetter, DeadLetterKind, LeaseError, LeasedWarehouse, SequenceNumber, ShardCommit, ShardId,
    StartPosition, StreamReader, WarehouseError, error_chain,
};

/// The dead letter's field: what tells a skipped range from a corrupt aggregate.
pub const UNREADABLE_FIELD: &str = "unreadable";

/// How many positions a probe tries by default before asking for `--through`.
pub const DEFAULT_MAX_PROBE: u64 = 100_000;

/// What to skip.
#[derive(Debug, Clone)]
pub struct SkipRequest {
    /// The shard.
    pub shard: ShardId,
    /// The last position to skip; `None` probes for it.
    pub through: Option<SequenceNumber>,
    /// Why, in the operator's words (kept in the dead letter).
    pub reason: String,
    /// The name the lease is taken under.
    pub owner: String,
    /// Positions a probe tries at most.
    pub max_probe: u64,
}

/// What was skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The checkpoint before (`None`: the shard had none).
    pub from: Option<Checkpoint>,
    /// The last position skipped: the shard resumes after it.
    pub through: SequenceNumber,
    /// The read error at the checkpoint.
    pub read_error: String,
}

/// Why nothing was skipped.
#[derive(Debug, thiserror::Error)]
pub enum SkipError {
    /// The lease table has no lease for the shard.
    #[error("shard {0} has no lease: no worker has run on it (check the shard id and --warehouse)")]
    NoLease(ShardId),
    /// The shard was read to its end.
    #[error("shard {0} is finished: there is nothing left to read")]
    Finished(ShardId),
    /// Other takers kept moving the lease.
    #[error("could not take the lease of shard {0}: another worker kept taking it; try again")]
    Contended(ShardId),
    /// The shard reads fine where it stands.
    #[error("shard {shard} reads fine at its checkpoint ({at}): nothing to skip")]
    Readable {
        /// The shard.
        shard: ShardId,
        /// Its checkpoint.
        at: String,
    },
    /// `--through` is before the checkpoint.
    #[error("--through {through} is before shard {shard}'s checkpoint {checkpoint}")]
    Behind {
        /// The shard.
        shard: ShardId,
        /// The given position.
        through: SequenceNumber,
        /// The checkpoint.
        checkpoint: SequenceNumber,
    },
    /// The positions cannot be counted through (Kinesis): the operator must say where to stop.
    #[error(
        "shard {shard}'s positions are not consecutive integers ({at}), so the unreadable range cannot be probed: give --through SEQUENCE, the last record to skip"
    )]
    CannotProbe {
        /// The shard.
        shard: ShardId,
        /// Where it stands.
        at: SequenceNumber,
    },
    /// No readable position within the probe's reach.
    #[error(
        "shard {shard}: nothing could be read after any of the {tried} positions from {from}; give --through SEQUENCE, or a larger --max-probe"
    )]
    NothingReadable {
        /// The shard.
        shard: ShardId,
        /// The first position tried.
        from: u64,
        /// Positions tried.
        tried: u64,
    },
    /// The lease store failed.
    #[error(transparent)]
    Lease(#[from] LeaseError),
    /// The commit failed (or was fenced off by a worker taking the lease back).
    #[error(transparent)]
    Warehouse(#[from] WarehouseError),
}

/// Skips the unreadable range of `req.shard` (see the module's doc).
pub async fn skip_unreadable(
    stream: &dyn StreamReader,
    warehouse: &dyn LeasedWarehouse,
    req: &SkipRequest,
) -> Result<Skipped, SkipError> {
    let token = take(warehouse, req).await?;
    let outcome = skip_held(stream, warehouse, req, &token).await;
    // Hand the lease back at once, so a worker resumes (after the range, or where it was).
    if let Err(e) = warehouse.release(&token).await {
        tracing::warn!(shard = %req.shard, error = %e, "releasing the lease failed; it will expire");
    }
    outcome
}

async fn take(warehouse: &dyn LeasedWarehouse, req: &SkipRequest) -> Result<inlet_seams::LeaseToken, SkipError> {
    for _ in 0..5 {
        let lease = warehouse
            .list()
            .await?
            .into_iter()
            .find(|l| l.shard == req.shard)
            .ok_or_else(|| SkipError::NoLease(req.shard.clone()))?;
        if lease.finished {
            return Err(SkipError::Finished(req.shard.clone()));
        }
        if let Some(token) = warehouse
            .take(&req.shard, lease.counter, &req.owner, now_ms() + 60_000)
            .await?
        {
            return Ok(token);
        }
    }
    Err(SkipError::Contended(req.shard.clone()))
}

async fn skip_held(
    stream: &dyn StreamReader,
    warehouse: &dyn LeasedWarehouse,
    req: &SkipRequest,
    token: &inlet_seams::LeaseToken,
) -> Result<Skipped, SkipError> {
    // Read after the take: from now on no worker can move it.
    let lease = warehouse
        .list()
        .await?
        .into_iter()
        .find(|l| l.shard == req.shard)
        .ok_or_else(|| SkipError::NoLease(req.shard.clone()))?;
    let start = lease
        .checkpoint
        .as_ref()
        .map_or(StartPosition::TrimHorizon, Checkpoint::resume_position);
    let Err(read_error) = read_two(stream, &req.shard, start).await else {
        return Err(SkipError::Readable {
            shard: req.shard.clone(),
            at: lease.checkpoint.as_ref().map_or_else(
                || "none yet".to_owned(),
                |c| format!("{}/{}", c.sequence, c.sub_sequence),
            ),
        });
    };
    let at = lease.checkpoint.as_ref().map(|c| c.sequence.clone());
    let through = match &req.through {
        Some(t) => {
            if let Some(at) = at.as_ref().filter(|at| t < *at) {
                return Err(SkipError::Behind {
                    shard: req.shard.clone(),
                    through: t.clone(),
                    checkpoint: at.clone(),
                });
            }
            t.clone()
        }
        None => probe(stream, req, at.as_ref()).await?,
    };
    let from = lease.checkpoint.clone();
    let range = match &from {
        Some(c) => format!("after {}/{} through {through}", c.sequence, c.sub_sequence),
        None => format!("from the start through {through}"),
    };
    let commit = ShardCommit {
        token: token.clone(),
        checkpoint: Some(Checkpoint::whole(through.clone())),
        watermark_ms: lease.watermark_ms,
        open_from_minute: None,
        viewing: Vec::new(),
        games: Vec::new(),
        dead_letters: vec![DeadLetter {
            shard: req.shard.clone(),
            sequence: through.clone(),
            sub_sequence: u32::MAX,
            kind: DeadLetterKind::CorruptRecord,
            field: Some(UNREADABLE_FIELD.to_owned()),
            reason: format!(
                "stream records {range} could not be read ({read_error}); skipped by an operator: {}",
                req.reason
            ),
            app_id: None,
            partition_key: String::new(),
            data: Bytes::new(),
        }],
        seen: SeenCommit::default(),
        shard_end: false,
    };
    warehouse.commit(&commit).await?;
    tracing::warn!(shard = %req.shard, range = %range, error = %read_error, reason = %req.reason,
        "unreadable records skipped by an operator; one corrupt_record dead letter written");
    Ok(Skipped {
        from,
        through,
        read_error,
    })
}

/// Opens `shard` at `from` and reads one record (or learns there is none): the error, if any.
async fn read_one(stream: &dyn StreamReader, shard: &ShardId, from: StartPosition) -> Result<(), String> {
    let mut reader = stream.open(shard, from).await.map_err(|e| error_chain(&e))?;
    reader.next_batch(1).await.map(|_| ()).map_err(|e| error_chain(&e))
}

/// As [`read_one`], then the next record too: a shard resumes at its checkpointed record
/// (read before, so it reads), and the worker stopped at the one after it.
async fn read_two(stream: &dyn StreamReader, shard: &ShardId, from: StartPosition) -> Result<(), String> {
    let mut reader = stream.open(shard, from).await.map_err(|e| error_chain(&e))?;
    for _ in 0..2 {
        reader.next_batch(1).await.map_err(|e| error_chain(&e))?;
    }
    Ok(())
}

/// The first integer position at or after the checkpoint after which a read succeeds: the
/// worker read everything readable up to the checkpoint (it narrows its reads to one record
/// before it gives up), so the records between are the ones that cannot be read.
async fn probe(
    stream: &dyn StreamReader,
    req: &SkipRequest,
    at: Option<&SequenceNumber>,
) -> Result<SequenceNumber, SkipError> {
    let first = match at {
        Some(at) => at.to_u64().ok_or_else(|| SkipError::CannotProbe {
            shard: req.shard.clone(),
            at: at.clone(),
        })?,
        None => 0,
    };
    for n in first..first.saturating_add(req.max_probe) {
        let position = SequenceNumber::from_u64(n);
        if read_one(stream, &req.shard, StartPosition::AfterSequence(position.clone()))
            .await
            .is_ok()
        {
            return Ok(position);
        }
    }
    Err(SkipError::NothingReadable {
        shard: req.shard.clone(),
        from: first,
        tried: req.max_probe,
    })
}
