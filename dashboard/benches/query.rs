//! The query API answering "top 10 titles by plays, per minute, over a day": 1,440 minutes ×
//! 300 titles = 432,000 final viewing rows (every title in every minute, the worst case),
//! each with a HyperLogLog of 3 viewers and a startup sketch of 2 values.
//!
//! - `aggregate_rows`: the pure core alone ([`Aggregation`] over rows already in memory);
//! - `embedded_warehouse`: parse + read through the `Warehouse` seam from an embedded
//!   warehouse file (one shard) + aggregate + JSON, as the handler does;
//! - `http`: `GET /api/query` on a running dashboard over loopback, end to end.
//!
//! `cargo bench -p inlet-dashboard --bench query`; figures in BENCHMARKS.md.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a bench: a panic is the failure report

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use inlet_dashboard::query::{self, Anchors, Limits};
use inlet_dashboard::{Aggregation, Dashboard, DashboardConfig, compute};
use inlet_embedded::EmbeddedWarehouse;
use inlet_rollup::{ViewingAgg, ViewingRow};
use inlet_seams::{HashKeyRange, LeaseStore, Shard, ShardCommit, ShardId, Warehouse};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

const MINUTES: i64 = 1_440;
const TITLES: usize = 300;
/// 2026-01-01T00:00Z in minutes.
const START: i64 = 29_453_760;

fn rows_for_minute(minute: i64) -> Vec<ViewingRow> {
    let mut state = (minute as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move |n: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % n
    };
    (0..TITLES)
        .map(|t| {
            let plays = next(40) as i64;
            let mut agg = ViewingAgg {
                events: plays * 10,
                plays,
                watch_ms: plays * 55_000,
                rebuffers: plays / 10,
                rebuffer_ms: plays * 400,
                ..ViewingAgg::default()
            };
            for _ in 0..3 {
                agg.viewers.insert(format!("profile-{}", next(200_000)).as_bytes());
            }
            for _ in 0..2 {
                agg.startup_ms.insert(200 + next(5_000) as i64);
            }
            ViewingRow {
                minute,
                title_id: format!("title-{t:04}"),
                agg,
            }
        })
        .collect()
}

fn params() -> Vec<(String, String)> {
    [
        ("metric", "plays".to_string()),
        ("group", "title".into()),
        ("from", (START * 60_000).to_string()),
        ("to", ((START + MINUTES) * 60_000).to_string()),
        ("resolution", "minute".into()),
        ("top", "10".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

fn anchors() -> Anchors {
    Anchors {
        now_ms: (START + MINUTES) * 60_000,
        latest_event_ms: None,
    }
}

/// Commits the day into an embedded warehouse as one shard's rows, an hour per commit.
async fn warehouse(dir: &std::path::Path) -> Arc<EmbeddedWarehouse> {
    let w = Arc::new(EmbeddedWarehouse::open(&dir.join("warehouse.db")).await.unwrap());
    let shard = Shard {
        id: ShardId::from_index(0),
        hash_range: HashKeyRange::ALL,
        parent: None,
        adjacent_parent: None,
        closed: false,
    };
    w.ensure_leases(std::slice::from_ref(&shard)).await.unwrap();
    let token = w.take(&shard.id, 0, "bench", i64::MAX).await.unwrap().unwrap();
    for hour in 0..MINUTES / 60 {
        let viewing = (0..60).flat_map(|m| rows_for_minute(START + hour * 60 + m)).collect();
        w.commit(&ShardCommit {
            token: token.clone(),
            checkpoint: None,
            watermark_ms: None,
            open_from_minute: None,
            viewing,
            games: vec![],
            dead_letters: vec![],
            seen: Default::default(),
            shard_end: false,
        })
        .await
        .unwrap();
    }
    w
}

async fn http_get(addr: std::net::SocketAddr, path: &str) -> usize {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut body = Vec::new();
    s.read_to_end(&mut body).await.unwrap();
    assert!(body.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&body));
    body.len()
}

fn bench(c: &mut Criterion) {
    let query = query::parse(&params(), anchors(), Limits::default()).unwrap();
    let rows: Vec<ViewingRow> = (START..START + MINUTES).flat_map(rows_for_minute).collect();
    let mut g = c.benchmark_group("dashboard_query");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(10))
        .throughput(Throughput::Elements(rows.len() as u64));

    g.bench_function("aggregate_rows", |b| {
        b.iter(|| {
            let mut agg = Aggregation::new(&query);
            agg.add_viewing(&rows);
            agg.finish()
        })
    });
    drop(rows);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let w = rt.block_on(warehouse(dir.path()));
    g.bench_function("embedded_warehouse", |b| {
        b.iter(|| {
            rt.block_on(async {
                let q = query::parse(&params(), anchors(), Limits::default()).unwrap();
                let result = compute::run(w.as_ref(), &q).await.unwrap();
                serde_json::to_vec(&result).unwrap()
            })
        })
    });

    let shutdown = CancellationToken::new();
    let dashboard = rt
        .block_on(Dashboard::bind(w, DashboardConfig::new("127.0.0.1:0".parse().unwrap())))
        .unwrap();
    let addr = dashboard.local_addr();
    let server = rt.spawn(dashboard.run(shutdown.clone()));
    let path = format!(
        "/api/query?{}",
        params()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&")
    );
    g.bench_function("http", |b| b.iter(|| rt.block_on(http_get(addr, &path))));
    g.finish();
    shutdown.cancel();
    rt.block_on(server).unwrap().unwrap();
}

criterion_group!(benches, bench);
criterion_main!(benches);
