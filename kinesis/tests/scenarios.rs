//! The shared seam scenarios, run against the Kinesis emulator.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report
use inlet_kinesis::testing::fresh_stream;
use inlet_kinesis::{KinesisLocation, KinesisStream, ReadMode};
use inlet_seams::scenarios;

#[tokio::test]
#[ignore = "needs the Kinesis emulator: run infra/test.sh"]
async fn stream_round_trip() {
    let stream = fresh_stream("round-trip", 4).await;
    scenarios::stream_round_trip(&stream, &stream).await;
}

#[tokio::test]
#[ignore = "needs the Kinesis emulator: run infra/test.sh"]
async fn start_positions() {
    let stream = fresh_stream("start-positions", 2).await;
    scenarios::start_positions(&stream, &stream).await;
}

#[tokio::test]
#[ignore = "needs the Kinesis emulator: run infra/test.sh"]
async fn stream_explicit_hash_key() {
    let stream = fresh_stream("ehk", 3).await;
    scenarios::stream_explicit_hash_key(&stream).await;
}

/// The same suite with the shards read by enhanced fan-out (`SubscribeToShard`) instead of
/// polling: another `StreamReader` on the same stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Kinesis emulator: run infra/test.sh"]
async fn stream_round_trip_read_by_enhanced_fan_out() {
    let stream = fresh_stream("fanout-round-trip", 3).await;
    let fanout = KinesisStream::connect(KinesisLocation {
        read: ReadMode::Fanout,
        consumer: "scenarios".into(),
        ..stream.location().clone()
    })
    .await;
    scenarios::stream_round_trip(&stream, &fanout).await;
}

/// Start positions read by enhanced fan-out: LATEST is where the stream's end was when the
/// reader opened, not when its first read subscribed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Kinesis emulator: run infra/test.sh"]
async fn start_positions_read_by_enhanced_fan_out() {
    let stream = fresh_stream("fanout-start-positions", 2).await;
    let fanout = KinesisStream::connect(KinesisLocation {
        read: ReadMode::Fanout,
        consumer: "scenarios".into(),
        ..stream.location().clone()
    })
    .await;
    scenarios::start_positions(&stream, &fanout).await;
}
