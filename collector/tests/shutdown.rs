//! Graceful shutdown: the collector stops accepting connections, lets the request it
//! accepted finish (its events confirmed by the stream), closes the producer and exits.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report
mod common;

use common::{Harness, get, stream_events, valid_events};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_drains_accepted_requests_then_exits() {
    let h = Harness::start("").await;
    // Writes wait until released: the request below stays in flight.
    h.faulty.hold.send_replace(true);
    let client = h.client("ios-app");
    let events = valid_events(50, 3);
    let request = tokio::spawn(async move { client.post(&events).await });
    for _ in 0..200 {
        if get(h.addr, "/metrics")
            .await
            .1
            .contains("inlet_collector_in_flight_requests 1")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    h.shutdown.cancel();
    // It stops accepting connections...
    let mut refused = false;
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(h.addr).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(refused, "no new connections during shutdown");
    assert!(
        !request.is_finished(),
        "the accepted request is still waiting for the stream"
    );

    // ...and the accepted request completes once the stream takes its events.
    h.faulty.hold.send_replace(false);
    assert_eq!(request.await.unwrap().unwrap().accepted, 50);
    let (summary, _dir, stream, _) = h.stop().await;
    assert!(summary.drained);
    assert_eq!((summary.producer.accepted, summary.producer.delivered), (50, 50));
    assert_eq!(stream_events(&stream).await.len(), 50);
}
