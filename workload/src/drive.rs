//! Drives a generated workload through a producer, building its expectation on the way.
use crate::error::WorkloadError;
use crate::expect::expectation;
use inlet_generator::{Expected, GenEvent, Generator, GeneratorConfig};
use inlet_producer::{Producer, ShardMap};
use std::time::Duration;
use tokio::time::Instant;

/// Events handed to the producer at once: one buffer reservation and one message each.
const CHUNK: usize = 1_000;

/// Sends the workload `config` generates through `producer`, as fast as it takes them; the
/// expectation on the stream whose shards `map` describes.
pub async fn send_workload(
    producer: &Producer,
    map: &ShardMap,
    config: &GeneratorConfig,
) -> Result<Expected, WorkloadError> {
    send_paced(producer, map, config, None, |_, _| {}).await
}

/// [`send_workload`], at most `rate` events per second if set (paced per chunk of 1,000);
/// calls `after_chunk(events, payload bytes)` with the totals handed to the producer so far:
/// `(0, 0)` before the first chunk, then after each chunk.
pub async fn send_paced(
    producer: &Producer,
    map: &ShardMap,
    config: &GeneratorConfig,
    rate: Option<u64>,
    mut after_chunk: impl FnMut(u64, u64),
) -> Result<Expected, WorkloadError> {
    let mut expected = expectation(map.len());
    let started = Instant::now();
    let (mut events, mut bytes, mut chunk_bytes) = (0u64, 0u64, 0u64);
    after_chunk(0, 0);
    let mut chunk = Vec::with_capacity(CHUNK);
    for ev in Generator::new(config.clone()) {
        expected.observe(&ev, map.index_of_key(&ev.partition_key));
        let GenEvent {
            partition_key, data, ..
        } = ev;
        chunk_bytes += data.len() as u64;
        chunk.push((partition_key, data));
        if chunk.len() == CHUNK {
            let n = chunk.len() as u64;
            pace(started, events, rate).await;
            send(producer, std::mem::take(&mut chunk), events).await?;
            (events, bytes, chunk_bytes) = (events + n, bytes + chunk_bytes, 0);
            after_chunk(events, bytes);
        }
    }
    let n = chunk.len() as u64;
    pace(started, events, rate).await;
    send(producer, chunk, events).await?;
    after_chunk(events + n, bytes + chunk_bytes);
    Ok(expected)
}

async fn send(producer: &Producer, chunk: Vec<(String, bytes::Bytes)>, sent: u64) -> Result<(), WorkloadError> {
    producer
        .send_all(chunk)
        .await
        .map_err(|source| WorkloadError::SendEvents { sent, source })
}

/// Waits until the `events`-th event is due at `rate` events per second from `started`.
async fn pace(started: Instant, events: u64, rate: Option<u64>) {
    if let Some(rate) = rate.filter(|r| *r > 0) {
        tokio::time::sleep_until(started + Duration::from_secs_f64(events as f64 / rate as f64)).await;
    }
}
