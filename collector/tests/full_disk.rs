//! The bad-rows file on a full disk (`/dev/full`: every write fails with "No space left on
//! device"): a request whose rejected events cannot be recorded is answered 503 with
//! `Retry-After`, never 200, so the emitter keeps the batch and sends it again; its accepted
//! events are already on the stream, and their copies are duplicates the consumer drops (same
//! event ids). A batch with nothing to reject does not need the file and is taken.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report
mod common;

use common::{Harness, stream_events, valid_events};
use inlet_emitter::ClientError;
use std::collections::BTreeSet;
use std::path::PathBuf;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_events_that_cannot_be_recorded_make_the_request_503() {
    let full = PathBuf::from("/dev/full");
    assert!(full.exists(), "this test needs /dev/full");
    let h = Harness::start_with_bad_rows("", Some(full)).await;
    let client = h.client("ios-app");

    let mut mixed = valid_events(20, 7);
    mixed[3].event_id = "not-a-uuid".into();
    let err = client.post(&mixed).await.unwrap_err();
    match &err {
        ClientError::Refused {
            status,
            retry_after,
            message,
        } => {
            assert_eq!(status.as_u16(), 503, "{err}");
            assert!(retry_after.is_some(), "{err}");
            assert!(
                message.contains("rejected events could not be recorded") && message.contains("No space left"),
                "{err}"
            );
        }
        other => panic!("expected a 503, got {other}"),
    }
    assert!(err.is_retryable(), "an emitter sends the batch again");
    // Sent again, it is refused again: nothing is reported handled while the file is full.
    assert!(client.post(&mixed).await.is_err());

    let clean = valid_events(20, 8);
    assert_eq!(client.post(&clean).await.unwrap().accepted, 20);

    let (_summary, _dir, stream, _) = h.stop().await;
    let ids: Vec<String> = stream_events(&stream).await.into_iter().map(|e| e.event_id).collect();
    let distinct: BTreeSet<&String> = ids.iter().collect();
    // The mixed batch's 19 valid events, written at each attempt (copies with the same id),
    // and the clean batch once.
    assert_eq!(distinct.len(), 19 + 20, "{ids:?}");
    assert!(!distinct.contains(&"not-a-uuid".to_owned()));
    assert_eq!(ids.len(), 19 * 2 + 20);
}
