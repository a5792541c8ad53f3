//! The dashboard's HTTP API on 127.0.0.1 port 0 over a warehouse the real pipeline filled
//! (embedded, and PostgreSQL under `infra/test.sh`): every metric's ranking and values
//! equal the generator's exact totals, bad parameters get 400 with the field, health shows
//! the warehouse's accounting and every shard.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod support;

use inlet_dashboard::Metric;
use inlet_postgres::{PgConfig, PgWarehouse};
use serde_json::Value;
use std::sync::Arc;
use support::{Pipeline, SHARDS, data_range, expected_ranking, get, get_json, serve};

/// Asks for every metric over the whole data and compares each series' key and total, in
/// order, and the overall value, with the generator's.
async fn every_metric_matches_the_generator(addr: std::net::SocketAddr, p: &Pipeline) {
    let (from, to) = data_range(&p.expected);
    for metric in Metric::ALL {
        let name = metric.name();
        let (status, body) = get_json(addr, &format!("/api/query?metric={name}&from={from}&to={to}&top=100")).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["buckets"].as_array().unwrap().len() as i64, (to - from) / 60_000);
        let m = &body["metrics"][0];
        assert_eq!(m["metric"], name);
        let want = expected_ranking(&p.expected, metric);
        assert_eq!(m["groups"].as_u64().unwrap() as usize, want.len(), "{name}");
        let got: Vec<(String, Option<f64>)> = m["series"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| (s["key"].as_str().unwrap().to_string(), s["total"].as_f64()))
            .collect();
        assert_eq!(got, want[..want.len().min(100)], "{name}");
        if metric == Metric::Plays {
            // Per-minute sums add up to each total and to the overall.
            for s in m["series"].as_array().unwrap() {
                let sum: i64 = s["values"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_i64().unwrap())
                    .sum();
                assert_eq!(sum, s["total"].as_i64().unwrap());
            }
            let plays: i64 = p.expected.viewing.values().map(|a| a.plays).sum();
            assert_eq!(m["overall"].as_i64(), Some(plays));
        }
    }
    // The same data per hour: fewer buckets, the same totals.
    let (_, hourly) = get_json(
        addr,
        &format!("/api/query?metric=revenue&from={from}&to={to}&resolution=hour&top=3"),
    )
    .await;
    let revenue: i64 = p.expected.games.values().map(|a| a.revenue_cents).sum();
    assert_eq!(hourly["metrics"][0]["overall"].as_i64(), Some(revenue));
    let want = expected_ranking(&p.expected, Metric::Revenue);
    assert_eq!(hourly["metrics"][0]["series"][0]["total"].as_f64(), want[0].1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_api_equals_the_generators_totals_embedded() {
    let p = support::pipeline(20_000, 5).await;
    let served = serve(p.warehouse.clone()).await;
    every_metric_matches_the_generator(served.addr, &p).await;
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: run infra/test.sh"]
async fn query_api_equals_the_generators_totals_postgres() {
    let url = support::fresh_postgres().await;
    let warehouse = Arc::new(PgWarehouse::connect(PgConfig::new(&url)).await.unwrap());
    let p = support::pipeline_into(tempfile::tempdir().unwrap(), warehouse, 8_000, 6).await;
    let served = serve(p.warehouse.clone()).await;
    every_metric_matches_the_generator(served.addr, &p).await;
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_parameters_are_answered_400_with_the_field() {
    let p = support::pipeline(2_000, 7).await;
    let served = serve(p.warehouse.clone()).await;
    let cases = [
        ("/api/query", "metric"),
        ("/api/query?metric=likes", "metric"),
        ("/api/query?metric=plays,kills", "metric"),
        ("/api/query?metric=plays&group=country", "group"),
        ("/api/query?metric=sessions&group=device_type", "group"),
        ("/api/query?metric=plays&group=game", "group"),
        ("/api/query?metric=plays&resolution=second", "resolution"),
        ("/api/query?metric=plays&top=0", "top"),
        ("/api/query?metric=plays&top=1000", "top"),
        ("/api/query?metric=plays&from=latest&to=latest-1h", "to"),
        ("/api/query?metric=plays&from=now-2days&to=now", "to"),
        ("/api/query?metric=plays&resolution=day&from=now-60days&to=now", "to"),
        ("/api/query?metric=plays&from=yesterday", "from"),
        ("/api/query?metric=plays&colour=red", "colour"),
    ];
    for (path, field) in cases {
        let (status, body) = get_json(served.addr, path).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(body["field"], field, "{path}: {body}");
        assert!(!body["error"].as_str().unwrap().is_empty());
    }
    let (_, body) = get_json(served.addr, "/api/query?metric=plays&group=country").await;
    assert!(body["error"].as_str().unwrap().contains("country"), "{body}");
    let (status, body) = get_json(served.addr, "/api/nothing").await;
    assert_eq!((status, body["error"].is_string()), (404, true));
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_shows_the_warehouse_accounting_and_every_shard() {
    let p = support::pipeline(10_000, 8).await;
    let served = serve(p.warehouse.clone()).await;
    let mut health = Value::Null;
    // The sampler's first sample is taken at start; wait for it (a condition, not a time).
    for _ in 0..100 {
        health = get_json(served.addr, "/api/health").await.1;
        if !health["sampled_at_ms"].is_null() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(health["aggregated"].as_u64(), Some(p.expected.aggregated));
    assert_eq!(health["dead_lettered"].as_u64(), Some(p.expected.dead_lettered()));
    assert!(p.expected.duplicates > 0);
    assert_eq!(health["duplicates"].as_u64(), Some(p.expected.duplicates));
    assert_eq!(health["read"].as_u64(), Some(p.expected.generated));
    let dead: Vec<(String, Option<String>, u64)> = health["dead_letters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["kind"].as_str().unwrap().into(),
                d["field"].as_str().map(String::from),
                d["count"].as_u64().unwrap(),
            )
        })
        .collect();
    let want: Vec<(String, Option<String>, u64)> = p
        .expected
        .dead
        .iter()
        .map(|((k, f), n)| (k.to_string(), f.map(String::from), *n))
        .collect();
    assert_eq!(dead, want);
    let shards = health["shards"].as_array().unwrap();
    assert_eq!(shards.len(), SHARDS as usize);
    // The worker stopped and released its leases; each shard has its checkpoint and watermark.
    for s in shards {
        assert_eq!(s["state"], "free", "{s}");
        assert!(s["checkpoint"].is_string() && s["watermark_ms"].is_i64(), "{s}");
    }
    let newest = shards.iter().map(|s| s["watermark_ms"].as_i64().unwrap()).max();
    assert_eq!(health["latest_event_ms"].as_i64(), newest);
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_and_its_assets_are_served() {
    let p = support::pipeline(1_000, 9).await;
    let served = serve(p.warehouse.clone()).await;
    let (status, content_type, page) = get(served.addr, "/").await;
    assert_eq!((status, content_type.as_str()), (200, "text/html; charset=utf-8"));
    assert!(page.contains(r#"<script src="/assets/uPlot.iife.min.js">"#));
    let (status, content_type, js) = get(served.addr, "/assets/uPlot.iife.min.js").await;
    assert_eq!((status, content_type.as_str()), (200, "text/javascript; charset=utf-8"));
    assert!(js.starts_with("/*! https://github.com/leeoniya/uPlot (v1.6.32) */"));
    let (status, content_type, _) = get(served.addr, "/assets/uPlot.min.css").await;
    assert_eq!((status, content_type.as_str()), (200, "text/css; charset=utf-8"));
    served.stop().await;
}
