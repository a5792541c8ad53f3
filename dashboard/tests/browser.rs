//! End to end in a real browser: a generator workload through the embedded pipeline, the
//! dashboard served over its warehouse on 127.0.0.1 port 0, headless Chromium (Debian's
//! package, driven by playwright-core) opens the page, and what the page shows (every
//! metric's top-10 table, the overall values, the health tiles, dead letters and shards) must
//! equal the generator's exact totals; every chart must have drawn its series. A
//! full-page screenshot is saved under the target directory (the path is printed).
//!
//! Needs `INLET_CHROMIUM` and `INLET_NODE_MODULES` (`infra/servers.sh` sets them): ignored
//! by plain `cargo test`, run by `infra/test.sh`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod support;

use inlet_dashboard::Metric;
use serde_json::Value;
use std::process::Command;
use support::{SHARDS, data_range, expected_ranking, serve};

/// Chromium and the `node_modules` holding playwright-core; a missing one fails the test.
fn browser() -> (String, String) {
    match (std::env::var("INLET_CHROMIUM"), std::env::var("INLET_NODE_MODULES")) {
        (Ok(chromium), Ok(modules)) => (chromium, modules),
        _ => panic!(
            "INLET_CHROMIUM / INLET_NODE_MODULES are not set: this test needs Chromium and \
             playwright-core; run the tests through infra/test.sh, which installs them"
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Chromium and playwright-core: run infra/test.sh"]
async fn the_page_shows_the_generators_numbers_in_chromium() {
    let (chromium, node_modules) = browser();
    let p = support::pipeline(20_000, 11).await;
    let served = serve(p.warehouse.clone()).await;
    let (from, to) = data_range(&p.expected);
    let url = format!("http://{}/?from={from}&to={to}&top=10&refresh=1", served.addr);
    let screenshot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard-e2e.png");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser/read_page.cjs");
    let (shot, url2) = (screenshot.clone(), url.clone());
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(script)
            .arg(&url2)
            .arg(&shot)
            .env("NODE_PATH", node_modules)
            .env("INLET_CHROMIUM", chromium)
            .output()
            .expect("run node")
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "the browser script failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: Value = serde_json::from_slice(&out.stdout).unwrap();
    println!("screenshot of {url}: {}", screenshot.display());
    assert!(std::fs::metadata(&screenshot).unwrap().len() > 10_000);

    assert_eq!(seen["state"], "ready", "{}", seen["error"]);
    assert_eq!(seen["console_errors"], serde_json::json!([]));
    assert_eq!(
        (seen["from_ms"].as_i64(), seen["to_ms"].as_i64()),
        (Some(from), Some(to))
    );
    let panels = seen["metrics"].as_array().unwrap();
    assert_eq!(panels.len(), Metric::ALL.len());
    for (metric, panel) in Metric::ALL.into_iter().zip(panels) {
        let name = metric.name();
        assert_eq!(panel["metric"], name);
        assert_eq!(panel["label"], metric.label());
        let want = expected_ranking(&p.expected, metric);
        assert_eq!(panel["groups"].as_u64().unwrap() as usize, want.len(), "{name}");
        let rows: Vec<(String, Option<f64>)> = panel["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r[0].as_str().unwrap().to_string(), r[1].as_f64()))
            .collect();
        assert_eq!(rows, want[..10], "{name}: the page's top 10");
        assert!(
            panel["series_pixels"].as_u64().unwrap() > 100,
            "{name}: the chart drew no series: {panel}"
        );
    }
    // Overall values and how they are shown.
    let by_name = |name: &str| panels.iter().find(|p| p["metric"] == name).unwrap();
    let plays: i64 = p.expected.viewing.values().map(|a| a.plays).sum();
    assert_eq!(by_name("plays")["overall"].as_i64(), Some(plays));
    let revenue: i64 = p.expected.games.values().map(|a| a.revenue_cents).sum();
    assert_eq!(by_name("revenue")["overall"].as_i64(), Some(revenue));
    let top_revenue = expected_ranking(&p.expected, Metric::Revenue)[0].1.unwrap() as i64;
    assert_eq!(
        by_name("revenue")["shown"][0],
        format!("${}.{:02}", thousands(top_revenue / 100), top_revenue % 100)
    );
    assert!(by_name("hit_rate")["shown"][0].as_str().unwrap().ends_with(" %"));

    // Health.
    let tiles = &seen["tiles"];
    assert_eq!(tiles["tile-aggregated"].as_u64(), Some(p.expected.aggregated));
    assert_eq!(tiles["tile-dead-lettered"].as_u64(), Some(p.expected.dead_lettered()));
    assert_eq!(tiles["tile-duplicates"].as_u64(), Some(p.expected.duplicates));
    let dead: Vec<(String, Option<String>, u64)> = seen["dead_letters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d[0].as_str().unwrap().into(),
                d[1].as_str().map(String::from),
                d[2].as_u64().unwrap(),
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
    let shards = seen["shards"].as_array().unwrap();
    assert_eq!(shards.len(), SHARDS as usize);
    assert!(
        shards
            .iter()
            .all(|s| s["checkpoint"].as_str().is_some_and(|c| !c.is_empty()))
    );
    served.stop().await;
}

fn thousands(n: i64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
