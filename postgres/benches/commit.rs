//! Commit throughput and latency of the PostgreSQL warehouse: rollup rows per second and
//! per-commit latency for commits of realistic partial rows (HyperLogLog of ~60 viewers,
//! startup sketches), fenced and COPY-staged as workers do it.
//!
//! Needs `INLET_PG_URL` (e.g. from `infra/servers.sh`); prints a table.
//! `cargo bench -p inlet-postgres --bench commit`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use inlet_postgres::{PgConfig, PgWarehouse};
use inlet_rollup::{GameAgg, GameRow, ViewingAgg, ViewingRow};
use inlet_seams::{Checkpoint, LeaseStore, SequenceNumber, Shard, ShardCommit, ShardId, Warehouse};
use std::time::{Duration, Instant};

fn viewing(minute: i64, title: usize, seed: usize) -> ViewingRow {
    let mut agg = ViewingAgg {
        events: 300,
        plays: 20,
        watch_ms: 2_000_000,
        bitrate_samples: 200,
        ..Default::default()
    };
    for v in 0..60 {
        agg.viewers
            .insert(format!("profile-{}", seed * 7 + v * 13 + title).as_bytes());
    }
    for s in 0..20 {
        agg.startup_ms.insert(200 + ((seed + s * 37) % 4000) as i64);
    }
    ViewingRow {
        minute,
        title_id: format!("title-{title:04}"),
        agg,
    }
}

fn game(minute: i64, g: usize) -> GameRow {
    let mut agg = GameAgg {
        events: 500,
        shots: 250,
        hits: 120,
        revenue_cents: 4_990,
        ..Default::default()
    };
    for p in 0..40 {
        agg.players.insert(format!("player-{}", p * 31 + g).as_bytes());
    }
    GameRow {
        minute,
        game_id: format!("game-{g:03}"),
        agg,
    }
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

#[tokio::main]
async fn main() {
    let Ok(admin) = std::env::var("INLET_PG_URL") else {
        eprintln!("INLET_PG_URL is not set: source infra/servers.sh and start_servers first");
        return;
    };
    let client = inlet_postgres::connect_client(&admin).await.unwrap();
    let db = format!("inlet_bench_{}", std::process::id());
    client
        .batch_execute(&format!("DROP DATABASE IF EXISTS {db}"))
        .await
        .unwrap();
    client.batch_execute(&format!("CREATE DATABASE {db}")).await.unwrap();
    let url = inlet_testkit::with_database(&admin, &db);
    let w = PgWarehouse::connect(PgConfig::new(url)).await.unwrap();
    let shard = Shard {
        id: ShardId::from_index(0),
        hash_range: inlet_seams::HashKeyRange::ALL,
        parent: None,
        adjacent_parent: None,
        closed: false,
    };
    w.ensure_leases(std::slice::from_ref(&shard)).await.unwrap();
    let token = w.take(&shard.id, 0, "bench", i64::MAX).await.unwrap().unwrap();

    println!("| rows per commit (viewing + game) | commits | rows/s | commit p50 | commit p99 | max |");
    println!("|---|---|---|---|---|---|");
    for (titles, games) in [(50, 10), (200, 40), (800, 100)] {
        let commits = 40;
        let mut latencies = Vec::with_capacity(commits);
        let started = Instant::now();
        for i in 0..commits {
            // Cumulative rows of the two open minutes, rewritten each commit, as workers do.
            let minute = 29_000_000 + (i / 20) as i64;
            let commit = ShardCommit {
                token: token.clone(),
                checkpoint: Some(Checkpoint {
                    sequence: SequenceNumber::from_u64(i as u64 + 1),
                    sub_sequence: 0,
                }),
                watermark_ms: Some(minute * 60_000),
                open_from_minute: None,
                viewing: (0..titles).map(|t| viewing(minute, t, i)).collect(),
                games: (0..games).map(|g| game(minute, g)).collect(),
                dead_letters: vec![],
                seen: Default::default(),
                shard_end: false,
            };
            let t = Instant::now();
            w.commit(&commit).await.unwrap();
            latencies.push(t.elapsed());
        }
        let total = started.elapsed();
        latencies.sort();
        let rows = (titles + games) * commits;
        println!(
            "| {} | {commits} | {:.0} | {:.1} ms | {:.1} ms | {:.1} ms |",
            titles + games,
            rows as f64 / total.as_secs_f64(),
            percentile(&latencies, 0.5).as_secs_f64() * 1e3,
            percentile(&latencies, 0.99).as_secs_f64() * 1e3,
            latencies.last().unwrap().as_secs_f64() * 1e3,
        );
    }
    drop(w);
    let _ = client
        .batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
        .await;
}
