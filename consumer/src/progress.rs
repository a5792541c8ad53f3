//! The periodic progress line of a worker: what an operator tailing its log wants to see
//! (events/s handled, totals, leases held, lag) without turning on debug.
use crate::stats::ConsumerStats;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Logs `stats` every `every` until `shutdown`.
pub async fn log_progress(worker_id: String, stats: Arc<ConsumerStats>, every: Duration, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    let (mut last, mut last_at) = (stats.snapshot().handled(), Instant::now());
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now = stats.snapshot();
        let secs = last_at.elapsed().as_secs_f64().max(1e-3);
        let rate = (now.handled().saturating_sub(last) as f64 / secs).round() as u64;
        tracing::info!(
            worker = %worker_id,
            events_per_s = rate,
            aggregated = now.aggregated,
            dead_lettered = now.dead_lettered.iter().sum::<u64>(),
            duplicates = now.duplicates,
            commits = now.commits,
            leases = stats.leases_held(),
            max_lag_ms = stats.take_max_lag_ms(),
            "progress"
        );
        (last, last_at) = (now.handled(), Instant::now());
    }
}
