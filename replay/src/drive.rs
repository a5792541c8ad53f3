//! `emit`, `ndjson` and dry runs: every shard read at once, merged by arrival time (each
//! shard's order kept, so each partition key's), deaggregated, decoded, filtered, and handed
//! to a sink; `emit` paced at the original arrival pace times a speed factor.
use crate::ReplayError;
use crate::filter::Filter;
use crate::pacing::Pacer;
use crate::progress::{Counters, ProgressFile};
use crate::source::{ShardInput, Source};
use inlet_producer::Producer;
use inlet_schemas::events::Envelope;
use inlet_schemas::{json, kpl};
use inlet_seams::{Record, SequenceNumber, StartPosition};
use prost::Message;
use std::collections::VecDeque;
use std::io::Write;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Where replayed events go.
pub enum Sink<'a> {
    /// Nowhere: count them (`--dry-run`).
    Count,
    /// One proto3-JSON event per line.
    Ndjson(&'a mut (dyn Write + Send)),
    /// To another stream, through a producer, at `speed` times the original pace.
    Emit {
        /// The producer on the target stream.
        producer: &'a Producer,
        /// 10.0 replays ten times faster than the records arrived; 0 or less: as fast as possible.
        speed: f64,
    },
}

impl std::fmt::Debug for Sink<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Sink::Count => f.write_str("Count"),
            Sink::Ndjson(_) => f.write_str("Ndjson"),
            Sink::Emit { speed, .. } => f.debug_struct("Emit").field("speed", speed).finish(),
        }
    }
}

/// What a drive did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Driven {
    /// Stream records read.
    pub records: u64,
    /// User records inside them.
    pub user_records: u64,
    /// Events (or raw user records, without filters) replayed.
    pub replayed: u64,
    /// User records that are not events (skipped by NDJSON and by any filter).
    pub not_events: u64,
}

struct Lane {
    shard: String,
    input: ShardInput,
    buffered: VecDeque<Record>,
    ended: bool,
}

/// Reads `source` from `start` (or where `progress` says each shard was left) to its current
/// end, sending what `filter` keeps to `sink`. Progress is saved every second, after the
/// sink is flushed, so a resumed run repeats at most the last second (at-least-once).
pub async fn drive(
    source: &Source,
    start: &StartPosition,
    filter: &Filter,
    sink: &mut Sink<'_>,
    progress: &mut ProgressFile,
    counters: &Counters,
    cancel: &CancellationToken,
) -> Result<Driven, ReplayError> {
    let mut lanes = Vec::new();
    for shard in source.shards().await? {
        let from = match progress.state.after.get(&shard.0) {
            Some(seq) => {
                StartPosition::AfterSequence(SequenceNumber::parse(seq).map_err(|e| ReplayError::Progress {
                    path: Default::default(),
                    source: std::io::Error::other(e),
                })?)
            }
            None => start.clone(),
        };
        lanes.push(Lane {
            input: source.open(&shard, from).await?,
            shard: shard.0,
            buffered: VecDeque::new(),
            ended: false,
        });
    }
    counters
        .shards
        .store(lanes.len() as u64, std::sync::atomic::Ordering::Relaxed);
    let mut pacer = match sink {
        Sink::Emit { speed, .. } => Pacer::new(*speed),
        _ => Pacer::new(0.0),
    };
    let mut done = Driven::default();
    let mut last_save = Instant::now();
    loop {
        if cancel.is_cancelled() {
            flush_and_save(sink, progress).await?;
            return Err(ReplayError::Interrupted);
        }
        for lane in lanes.iter_mut().filter(|l| l.buffered.is_empty() && !l.ended) {
            let batch = lane.input.next(1_000).await?;
            lane.ended = batch.is_empty();
            lane.buffered.extend(batch);
            counters.set_fraction(&lane.shard, if lane.ended { 1.0 } else { lane.input.fraction_done() });
        }
        // The lane whose next record arrived first.
        let Some(lane) = lanes
            .iter_mut()
            .filter(|l| !l.buffered.is_empty())
            .min_by_key(|l| l.buffered.front().map(|r| r.arrival_ms))
        else {
            break;
        };
        let Some(record) = lane.buffered.pop_front() else { break };
        if let Some(wait) = pacer.wait_for(record.arrival_ms, Instant::now()) {
            tokio::select! {
                () = cancel.cancelled() => continue,
                () = tokio::time::sleep(wait) => {}
            }
        }
        let before = done.replayed;
        replay_record(&record, filter, sink, &mut done).await?;
        done.records += 1;
        counters.add(1, done.replayed - before);
        progress
            .state
            .after
            .insert(lane.shard.clone(), record.sequence.as_str().to_owned());
        if last_save.elapsed() >= Duration::from_secs(1) {
            flush_and_save(sink, progress).await?;
            last_save = Instant::now();
        }
    }
    flush_and_save(sink, progress).await?;
    Ok(done)
}

async fn replay_record(
    record: &Record,
    filter: &Filter,
    sink: &mut Sink<'_>,
    done: &mut Driven,
) -> Result<(), ReplayError> {
    // As the KCL does: a record that is not a valid aggregate is one plain user record.
    let users = kpl::decode(&record.partition_key, record.explicit_hash_key, &record.data).unwrap_or_else(|e| {
        tracing::warn!(sequence = %record.sequence, error = %e, "aggregate without user records; skipped");
        Vec::new()
    });
    for user in users {
        done.user_records += 1;
        let event = Envelope::decode(user.data.as_ref()).ok();
        let keep = match &event {
            Some(e) => filter.matches(e),
            None => {
                done.not_events += 1;
                filter.accepts_non_events()
            }
        };
        if !keep {
            continue;
        }
        match sink {
            Sink::Count => {}
            Sink::Ndjson(out) => {
                let Some(e) = &event else { continue };
                writeln!(out, "{}", json::encode_event(e)).map_err(ReplayError::Output)?;
            }
            Sink::Emit { producer, .. } => producer.send(user.partition_key, user.data).await?,
        }
        done.replayed += 1;
    }
    Ok(())
}

async fn flush_and_save(sink: &mut Sink<'_>, progress: &ProgressFile) -> Result<(), ReplayError> {
    match sink {
        Sink::Count => return Ok(()), // a dry run leaves no progress behind
        Sink::Ndjson(out) => out.flush().map_err(ReplayError::Output)?,
        Sink::Emit { producer, .. } => producer.flush().await?,
    }
    progress.save()
}
