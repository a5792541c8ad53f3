//! The whole pipeline into PostgreSQL: exact totals with two workers, through a server
//! restart; the SQL views give the numbers the embedded warehouse gives; compaction changes
//! no result.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod support;

use inlet_consumer::{Worker, WorkerConfig};
use inlet_embedded::{EmbeddedStream, EmbeddedWarehouse};
use inlet_generator::{Expected, GeneratorConfig};
use inlet_postgres::{PgConfig, PgWarehouse};
use inlet_producer::{Producer, ProducerConfig, ShardMap};
use inlet_rollup::row::{merge_games, merge_viewing};
use inlet_rollup::{GameRow, ViewingRow};
use inlet_seams::{LeaseStore, StreamWriter, Warehouse};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const SHARDS: u32 = 4;
const ALL: (i64, i64) = (i64::MIN, i64::MAX);

/// `events` events over about `events * gap_us` microseconds of event time.
async fn produce(stream: &Arc<EmbeddedStream>, events: u64, seed: u64, gap_us: u64) -> Expected {
    let map = ShardMap::new(&stream.open_shards().await.unwrap()).unwrap();
    let producer = Producer::start(stream.clone(), ProducerConfig::default())
        .await
        .unwrap();
    let cfg = GeneratorConfig {
        events,
        seed,
        late_share: 0.01,
        invalid_share: 0.01,
        mean_gap_us: gap_us,
        ..Default::default()
    };
    let expected = inlet_workload::send_workload(&producer, &map, &cfg).await.unwrap();
    assert_eq!(producer.close().await.unwrap().delivered, events);
    expected
}

struct Workers {
    shutdown: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<Result<(), inlet_consumer::WorkerError>>>,
}

fn start_workers<W: LeaseStore + Warehouse + 'static>(stream: &Arc<EmbeddedStream>, w: Arc<W>, n: usize) -> Workers {
    let shutdown = CancellationToken::new();
    let tasks = (0..n)
        .map(|i| {
            let mut cfg = WorkerConfig::new(format!("w{i}")).with_failover(Duration::from_secs(3));
            // Many small commits, so a restart can land between them.
            cfg.commit_interval = Duration::from_millis(200);
            cfg.commit_every_records = 2_000;
            cfg.read_batch = 5;
            let worker = Worker::new(stream.clone(), w.clone(), w.clone(), cfg);
            tokio::spawn(worker.run(shutdown.clone()))
        })
        .collect();
    Workers { shutdown, tasks }
}

async fn handled(w: &dyn Warehouse) -> i64 {
    let t = w.totals().await.unwrap();
    t.read()
}

async fn finish(workers: Workers, w: &dyn Warehouse, events: u64) {
    for _ in 0..1200 {
        if handled(w).await >= events as i64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    workers.shutdown.cancel();
    for t in workers.tasks {
        t.await.unwrap().unwrap();
    }
}

fn assert_exact(expected: &Expected, viewing: &[ViewingRow], games: &[GameRow]) {
    let mismatches = expected.compare(viewing, games);
    assert!(
        mismatches.is_empty(),
        "{} mismatches, first: {:?}",
        mismatches.len(),
        mismatches.first()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: run infra/test.sh"]
async fn two_workers_through_a_server_restart_reach_exact_totals() {
    let url = support::fresh_database().await;
    let restart = std::env::var("INLET_PG_RESTART")
        .expect("INLET_PG_RESTART is not set: run the tests through infra/test.sh, which sets it");
    let dir = tempfile::tempdir().unwrap();
    let stream = Arc::new(
        EmbeddedStream::open_or_create(&dir.path().join("s.db"), SHARDS)
            .await
            .unwrap(),
    );
    let events = 40_000;
    let expected = produce(&stream, events, 21, 1_000).await;
    let pg = Arc::new(PgWarehouse::connect(PgConfig::new(url)).await.unwrap());
    let workers = start_workers(&stream, pg.clone(), 2);
    // Restart the server once work is under way and not yet done.
    for _ in 0..600 {
        if handled(pg.as_ref()).await > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let before = handled(pg.as_ref()).await;
    let status = tokio::process::Command::new(&restart).status().await.unwrap();
    assert!(status.success(), "restarting PostgreSQL failed");
    assert!(
        before < events as i64,
        "the restart must land mid-run ({before} of {events} handled)"
    );
    finish(workers, pg.as_ref(), events).await;

    let totals = pg.totals().await.unwrap();
    assert_eq!(totals.aggregated as u64, expected.aggregated);
    assert_eq!(totals.dead_lettered() as u64, expected.dead_lettered());
    assert_exact(
        &expected,
        &pg.viewing_rollups(ALL.0, ALL.1).await.unwrap(),
        &pg.game_rollups(ALL.0, ALL.1).await.unwrap(),
    );
}

/// Final-rollup views (minute, hour, day) against the embedded warehouse's merge of the same
/// input, and compaction leaving every result unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: run infra/test.sh"]
async fn views_match_the_embedded_warehouse_and_survive_compaction() {
    let url = support::fresh_database().await;
    let dir = tempfile::tempdir().unwrap();
    let stream = Arc::new(
        EmbeddedStream::open_or_create(&dir.path().join("s.db"), SHARDS)
            .await
            .unwrap(),
    );
    let events = 30_000;
    // 30,000 events over 15 minutes: the early minutes close and can be compacted.
    let expected = produce(&stream, events, 5, 30_000).await;
    let pg = Arc::new(PgWarehouse::connect(PgConfig::new(url.clone())).await.unwrap());
    let embedded = Arc::new(EmbeddedWarehouse::open(&dir.path().join("w.db")).await.unwrap());
    finish(start_workers(&stream, pg.clone(), 2), pg.as_ref(), events).await;
    finish(start_workers(&stream, embedded.clone(), 1), embedded.as_ref(), events).await;

    let viewing = embedded.viewing_rollups(ALL.0, ALL.1).await.unwrap();
    let games = embedded.game_rollups(ALL.0, ALL.1).await.unwrap();
    assert_exact(&expected, &viewing, &games);
    let client = inlet_postgres::connect_client(&url).await.unwrap();
    check_views(&client, &viewing, &games).await;

    // Fold everything that is closed into final rows: results must not move.
    let before = pg.viewing_rollups(ALL.0, ALL.1).await.unwrap();
    let partials_before: i64 = client
        .query_one("SELECT COUNT(*) FROM inlet_viewing_partials", &[])
        .await
        .unwrap()
        .get(0);
    let done = pg.compact(0).await.unwrap();
    assert!(done.partials > done.folded && done.folded > 0, "{done:?}");
    let partials_after: i64 = client
        .query_one("SELECT COUNT(*) FROM inlet_viewing_partials", &[])
        .await
        .unwrap()
        .get(0);
    assert!(partials_after < partials_before);
    assert_eq!(pg.viewing_rollups(ALL.0, ALL.1).await.unwrap(), before);
    assert_exact(
        &expected,
        &pg.viewing_rollups(ALL.0, ALL.1).await.unwrap(),
        &pg.game_rollups(ALL.0, ALL.1).await.unwrap(),
    );
    check_views(&client, &viewing, &games).await;
    // Open windows were left alone: each shard can still resume its own partials.
    let open: i64 = client
        .query_one("SELECT COUNT(*) FROM inlet_viewing_partials WHERE shard_id <> '*'", &[])
        .await
        .unwrap()
        .get(0);
    assert!(
        open > 0,
        "the last minutes of each shard are still open and must stay per shard"
    );
}

fn by_period<R: Clone>(rows: &[R], div: i64, minute: impl Fn(&R) -> i64, set: impl Fn(&mut R, i64)) -> Vec<R> {
    rows.iter()
        .map(|r| {
            let mut r = r.clone();
            let m = minute(&r);
            set(&mut r, m / div * div);
            r
        })
        .collect()
}

async fn check_views(client: &tokio_postgres::Client, viewing: &[ViewingRow], games: &[GameRow]) {
    for (name, div) in inlet_postgres::views::RESOLUTIONS {
        let want = merge_viewing(by_period(viewing, div, |r| r.minute, |r, m| r.minute = m));
        let rows = client
            .query(
                &format!(
                    "SELECT minute, title_id, events, plays, viewers, watch_ms, rebuffers, rebuffer_ms, bitrate_sum_kbps,
                            bitrate_samples, errors, startup_count, startup_p50_ms, startup_p95_ms, startup_p99_ms
                       FROM inlet_viewing_per_{name} ORDER BY minute, title_id"
                ),
                &[],
            )
            .await
            .unwrap();
        assert_eq!(rows.len(), want.len(), "viewing per {name}: row count");
        for (r, w) in rows.iter().zip(&want) {
            let a = &w.agg;
            let got: (i64, String, [i64; 10]) = (
                r.get(0),
                r.get(1),
                [
                    r.get(2),
                    r.get(3),
                    r.get(4),
                    r.get(5),
                    r.get(6),
                    r.get(7),
                    r.get(8),
                    r.get(9),
                    r.get(10),
                    r.get(11),
                ],
            );
            let expect = (
                w.minute,
                w.title_id.clone(),
                [
                    a.events,
                    a.plays,
                    a.viewers.estimate() as i64,
                    a.watch_ms,
                    a.rebuffers,
                    a.rebuffer_ms,
                    a.bitrate_sum_kbps,
                    a.bitrate_samples,
                    a.errors,
                    a.startup_ms.count() as i64,
                ],
            );
            assert_eq!(got, expect, "viewing per {name}");
            let quantiles: [Option<i64>; 3] = [r.get(12), r.get(13), r.get(14)];
            let want_q = [
                a.startup_ms.quantile(0.5),
                a.startup_ms.quantile(0.95),
                a.startup_ms.quantile(0.99),
            ];
            assert_eq!(
                quantiles, want_q,
                "startup percentiles per {name} at {} {}",
                w.minute, w.title_id
            );
        }
        let want = merge_games(by_period(games, div, |r| r.minute, |r, m| r.minute = m));
        let rows = client
            .query(
                &format!(
                    "SELECT minute, game_id, events, sessions, players, shots, hits, kills, deaths, purchases, damage,
                            revenue_cents FROM inlet_games_per_{name} ORDER BY minute, game_id"
                ),
                &[],
            )
            .await
            .unwrap();
        assert_eq!(rows.len(), want.len(), "games per {name}: row count");
        for (r, w) in rows.iter().zip(&want) {
            let a = &w.agg;
            let got: Vec<i64> = (2..12).map(|i| r.get(i)).collect();
            let expect = vec![
                a.events,
                a.sessions,
                a.players.estimate() as i64,
                a.shots,
                a.hits,
                a.kills,
                a.deaths,
                a.purchases,
                a.damage,
                a.revenue_cents,
            ];
            assert_eq!(
                (r.get::<_, i64>(0), r.get::<_, String>(1), got),
                (w.minute, w.game_id.clone(), expect),
                "games per {name}"
            );
        }
    }
}
