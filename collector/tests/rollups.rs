//! Mixed batches (valid, invalid and malformed events, JSON and protobuf, gzip or not)
//! through the collector, the real embedded stream and real consumer workers into the
//! embedded warehouse: every accepted event is counted in the rollups, every rejected one
//! is in the bad-rows file with the field and reason the answer gave, and the counts add
//! up: posted = accepted + rejected, accepted = aggregated, rejected = bad rows.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report
mod common;

use bytes::Bytes;
use common::{APPS, Harness, app_of, bad_rows, generate, key_of};
use inlet_collector::body::Format;
use inlet_consumer::{Worker, WorkerConfig};
use inlet_embedded::EmbeddedWarehouse;
use inlet_emitter::ClientConfig;
use inlet_generator::Truth;
use inlet_schemas::events::{Envelope, envelope::Body};
use inlet_seams::Warehouse;
use prost::Message;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// What an event posted is expected to become.
#[derive(Debug, Clone)]
struct Posted {
    data: Bytes,
    /// `None` for a valid event; the field a rejection must name otherwise.
    reject_field: Option<&'static str>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valid_events_reach_the_rollups_and_invalid_ones_the_bad_rows() {
    let h = Harness::start("").await;

    // Group generated events by the app that sent them: each app posts with its own key.
    let mut by_app: BTreeMap<String, Vec<Posted>> = BTreeMap::new();
    for ev in generate(4_000, 17, 0.05) {
        let reject_field = match ev.truth {
            Truth::Valid(_) | Truth::Copy(_) => None,
            Truth::Invalid { field } => Some(field),
            Truth::Malformed => Some("."),
        };
        // An app id the generator made too long names no key's app: the tv key posts it
        // and the collector refuses it as another app's event.
        let app = app_of(&ev.data).filter(|a| APPS.contains(&a.as_str()));
        let app = app.unwrap_or_else(|| "tv-app".into());
        // Events only the tv key may not post (gameplay) stay with their own app.
        by_app.entry(app).or_default().push(Posted {
            data: ev.data,
            reject_field,
        });
    }
    // Two more refusals: a gameplay event under the viewing-only tv key, and an event
    // claiming another app.
    let gameplay = by_app["console-game"]
        .iter()
        .find(|p| p.reject_field.is_none())
        .unwrap();
    let mut gameplay = Envelope::decode(gameplay.data.clone()).unwrap();
    gameplay.emitter.as_mut().unwrap().app_id.clear(); // the tv key's app is stamped in
    by_app.get_mut("tv-app").unwrap().push(Posted {
        data: Bytes::from(gameplay.encode_to_vec()),
        reject_field: Some("body"),
    });
    let viewing = by_app["ios-app"]
        .iter()
        .find(|p| p.reject_field.is_none())
        .unwrap()
        .clone();
    by_app.get_mut("web-player").unwrap().push(Posted {
        data: viewing.data,
        reject_field: Some("emitter.app_id"),
    });

    let mut expected_rows: BTreeMap<(i64, String), i64> = BTreeMap::new();
    let (mut posted, mut accepted, mut rejected) = (0usize, 0usize, 0usize);
    let mut answered_rejections = BTreeSet::new();
    for (i, (app, events)) in by_app.iter().enumerate() {
        for (j, batch) in events.chunks(300).enumerate() {
            // Batches alternate between JSON and protobuf, and some are gzipped.
            let client = |format| {
                h.client_with(ClientConfig {
                    format,
                    gzip: (i + j) % 3 == 0,
                    ..ClientConfig::new(h.endpoint(), key_of(app))
                })
            };
            let mut format = if (i + j) % 2 == 0 {
                Format::Protobuf
            } else {
                Format::Json
            };
            let decoded: Vec<_> = batch.iter().map(|p| Envelope::decode(p.data.clone())).collect();
            // An unknown enum value has no proto3 JSON form: such a batch goes as protobuf.
            if decoded
                .iter()
                .flatten()
                .any(|e| client(Format::Json).encode_event(e).is_err())
            {
                format = Format::Protobuf;
            }
            let client = client(format);
            let encoded: Vec<Bytes> = batch
                .iter()
                .zip(decoded)
                .map(|(p, decoded)| match decoded {
                    Ok(e) => client.encode_event(&e).unwrap(),
                    // Malformed bytes cannot be JSON: they go as the JSON string they are not.
                    Err(_) if format == Format::Json => Bytes::from(format!("\"{}\"", hex::encode(&p.data))),
                    Err(_) => p.data.clone(),
                })
                .collect();
            let result = client.post_encoded(client.encode_batch(&encoded)).await.unwrap();
            posted += batch.len();
            accepted += result.accepted;
            rejected += result.rejected.len();
            let refused: BTreeMap<usize, String> = result.rejected.iter().map(|r| (r.index, r.field.clone())).collect();
            for (index, p) in batch.iter().enumerate() {
                match (p.reject_field, refused.get(&index)) {
                    (None, None) => {
                        let e = Envelope::decode(p.data.clone()).unwrap();
                        let id = match e.body.unwrap() {
                            Body::Viewing(v) => format!("title:{}", v.title_id),
                            Body::Gameplay(g) => format!("game:{}", g.game_id),
                        };
                        *expected_rows
                            .entry((e.event_time_ms.div_euclid(60_000), id))
                            .or_default() += 1;
                    }
                    (Some(want), Some(got)) => {
                        assert_eq!(got, want, "{app} event {index}");
                        answered_rejections.insert((format!("{app}-key"), index, got.clone()));
                    }
                    (want, got) => panic!("{app} event {index}: expected {want:?}, answered {got:?}"),
                }
            }
        }
    }
    assert_eq!(posted, accepted + rejected);
    assert!(rejected > 100, "a mixed workload: {rejected} of {posted} rejected");

    // Every rejection answered is a bad row with its key, field and reason, and nothing
    // else is.
    let rows = bad_rows(&h.bad_rows);
    assert_eq!(rows.len(), rejected);
    for row in &rows {
        assert!(!row["reason"].as_str().unwrap().is_empty());
        assert!(row["event"].is_object() || row["event"].is_string() || row["event_base64"].is_string());
        let key = (
            row["key_id"].as_str().unwrap().to_owned(),
            row["index"].as_u64().unwrap() as usize,
            row["field"].as_str().unwrap().to_owned(),
        );
        assert!(answered_rejections.contains(&key), "{row}");
    }

    // Real consumer workers read the stream into the warehouse.
    let (summary, dir, stream, _) = h.stop().await;
    assert_eq!(
        (summary.producer.delivered, summary.producer.failed),
        (accepted as u64, 0)
    );
    let warehouse_path = dir.path().join("warehouse.db");
    let shutdown = CancellationToken::new();
    let mut workers = Vec::new();
    for i in 0..2 {
        let w = Arc::new(EmbeddedWarehouse::open(&warehouse_path).await.unwrap());
        let mut cfg = WorkerConfig::new(format!("w{i}")).with_failover(Duration::from_secs(3));
        cfg.commit_interval = Duration::from_millis(100);
        workers.push(tokio::spawn(
            Worker::new(stream.clone(), w.clone(), w, cfg).run(shutdown.clone()),
        ));
    }
    let warehouse = EmbeddedWarehouse::open(&warehouse_path).await.unwrap();
    inlet_testkit::wait_until_read(&warehouse, accepted as u64, Duration::from_secs(60)).await;
    shutdown.cancel();
    for w in workers {
        w.await.unwrap().unwrap();
    }
    let totals = warehouse.totals().await.unwrap();
    assert_eq!(totals.aggregated, accepted as i64, "every accepted event is aggregated");
    assert_eq!(totals.dead_lettered(), 0, "{:?}", totals.dead_letters);

    let mut got_rows: BTreeMap<(i64, String), i64> = BTreeMap::new();
    for r in warehouse.viewing_rollups(i64::MIN, i64::MAX).await.unwrap() {
        got_rows.insert((r.minute, format!("title:{}", r.title_id)), r.agg.events);
    }
    for r in warehouse.game_rollups(i64::MIN, i64::MAX).await.unwrap() {
        got_rows.insert((r.minute, format!("game:{}", r.game_id)), r.agg.events);
    }
    assert_eq!(
        got_rows, expected_rows,
        "per minute and title/game, the rollups count exactly the accepted events"
    );
}
