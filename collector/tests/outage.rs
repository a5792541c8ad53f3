//! The stream unavailable (injected in front of the real embedded stream): the collector
//! answers 503 with `Retry-After`, never 200, and `/readyz` turns unready; an emitter keeps
//! its events buffered and retries; when the stream returns everything goes through, and
//! every acknowledged event is in the stream.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report
mod common;

use common::{Harness, get, stream_events, valid_events};
use inlet_emitter::{ClientError, Emitter, EmitterConfig};
use std::collections::HashMap;
use std::sync::atomic::Ordering::SeqCst;
use std::time::Duration;

/// Polls `/readyz` until it answers `status` (bounded).
async fn readyz_becomes(h: &Harness, status: u16) {
    for _ in 0..200 {
        if get(h.addr, "/readyz").await.0 == status {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("/readyz never answered {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unavailable_stream_gets_503_then_recovers_with_no_acknowledged_event_lost() {
    let h = Harness::start("[producer]\nmax_attempts = 2\n[timeouts]\nack = \"5s\"\n").await;
    let client = h.client("ios-app");
    let events = valid_events(600, 21);
    let ids = |range: std::ops::Range<usize>| events[range].iter().map(|e| e.event_id.clone()).collect::<Vec<_>>();

    assert_eq!(client.post(&events[..100]).await.unwrap().accepted, 100);
    assert_eq!(get(h.addr, "/readyz").await.0, 200);

    // The stream goes away: 503, never 200.
    h.faulty.down.store(true, SeqCst);
    match client.post(&events[100..200]).await {
        Err(ClientError::Refused {
            status,
            retry_after,
            message,
        }) => {
            assert_eq!((status.as_u16(), retry_after), (503, Some(Duration::from_secs(1))));
            assert!(message.contains("stream unavailable (injected)"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    readyz_becomes(&h, 503).await;

    // An emitter tracks through the outage: its buffer holds the events while it retries.
    let emitter = Emitter::start(
        h.client("android-app"),
        EmitterConfig {
            max_batch_events: 50,
            flush_interval: Duration::from_millis(50),
            ..EmitterConfig::default()
        },
    );
    for e in &events[200..400] {
        emitter.track(e.clone()).unwrap();
    }
    for _ in 0..200 {
        if emitter.stats().retries > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(emitter.stats().retries > 0, "the emitter met the outage");
    assert_eq!(emitter.stats().accepted, 0);

    // The stream returns.
    h.faulty.down.store(false, SeqCst);
    emitter.flush().await;
    let stats = emitter.close().await;
    assert_eq!(
        (stats.tracked, stats.accepted, stats.dropped, stats.unsent),
        (200, 200, 0, 0)
    );
    assert_eq!(client.post_with_retries(&events[400..]).await.unwrap().accepted, 200);
    readyz_becomes(&h, 200).await;

    let (summary, _dir, stream, _) = h.stop().await;
    let mut in_stream: HashMap<String, usize> = HashMap::new();
    for e in stream_events(&stream).await {
        *in_stream.entry(e.event_id).or_default() += 1;
    }
    let acknowledged: Vec<_> = [ids(0..100), ids(200..400), ids(400..600)].concat();
    let lost: Vec<_> = acknowledged.iter().filter(|id| !in_stream.contains_key(*id)).collect();
    assert!(lost.is_empty(), "{} acknowledged events lost", lost.len());
    // The refused batch was given up on by the producer: none of it was written.
    assert!(ids(100..200).iter().all(|id| !in_stream.contains_key(id)));
    assert_eq!(summary.producer.delivered as usize, in_stream.values().sum::<usize>());
}
