//! The shared seam scenarios, run against the Kinesis emulator.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report
use inlet_kinesis::testing::fresh_stream;
use inlet_seams::scenarios;

#[tokio::test]
async fn stream_round_trip() {
    let Some(stream) = fresh_stream("round-trip", 4).await else {
        return;
    };
    scenarios::stream_round_trip(&stream, &stream).await;
}

#[tokio::test]
async fn stream_explicit_hash_key() {
    let Some(stream) = fresh_stream("ehk", 3).await else {
        return;
    };
    scenarios::stream_explicit_hash_key(&stream).await;
}
