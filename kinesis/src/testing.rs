//! For tests of this and other crates: fresh streams on the emulator that `infra/servers.sh`
//! started (`INLET_KINESIS_ENDPOINT`), and private emulators for tests that must stop one.
#![allow(clippy::expect_used, clippy::unwrap_used)] // test helpers: a panic is the report

use crate::{KinesisLocation, KinesisStream};
use inlet_testkit::server_var;
pub use inlet_testkit::{LocalServer, infra_dir, unique_name};

/// The shared emulator's endpoint (`INLET_KINESIS_ENDPOINT`, set by `infra/servers.sh`).
pub fn endpoint() -> String {
    server_var("INLET_KINESIS_ENDPOINT", "the Kinesis emulator")
}

/// The location of a new stream name on `endpoint`.
pub fn location(endpoint: &str, prefix: &str) -> KinesisLocation {
    KinesisLocation {
        endpoint: Some(endpoint.to_owned()),
        region: Some("us-east-1".into()),
        ..KinesisLocation::new(unique_name(prefix))
    }
}

/// As [`location`], with a patient call timeout (60 s): the emulator takes about a second per
/// MB of `PutRecords` on a busy machine, and a call that times out may still be written, so
/// its retry would duplicate it.
pub fn patient_location(endpoint: &str, prefix: &str) -> KinesisLocation {
    KinesisLocation {
        call_timeout: std::time::Duration::from_secs(60),
        ..location(endpoint, prefix)
    }
}

/// A new active stream of `shards` shards on the shared emulator (see [`endpoint`]).
pub async fn fresh_stream(prefix: &str, shards: u32) -> KinesisStream {
    stream_on(&endpoint(), prefix, shards).await
}

/// A new active stream of `shards` shards on `endpoint`.
pub async fn stream_on(endpoint: &str, prefix: &str, shards: u32) -> KinesisStream {
    let stream = KinesisStream::connect(location(endpoint, prefix)).await;
    stream.create(shards).await.expect("create stream");
    stream
}

/// An emulator of this test's own (`infra/kinesis-local.sh`): its `address` is the endpoint URL; killed when dropped.
pub type Emulator = LocalServer;

/// Starts a private emulator with `infra/kinesis-local.sh`.
pub fn private_emulator() -> Emulator {
    LocalServer::start("kinesis-local.sh")
}
