//! The collector's refusals, each answered with its status and reason, and none writing
//! anything (no stream record, no bad row): no or wrong key (401), oversized body,
//! decompressed body, batch or event (413 naming the limit), not a batch (400 with field and
//! reason), unsupported format (415), slow clients cut off (header and body timeouts). Plus
//! the rate limit: 429 with `Retry-After`, which the client honours.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report
mod common;

use bytes::Bytes;
use common::{Harness, bad_rows, get, stream_events, valid_events};
use inlet_emitter::{ClientConfig, ClientError};
use inlet_schemas::json;
use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TABLES: &str = r#"
[limits]
max_body_bytes = 20000
max_decompressed_bytes = 60000
max_batch_events = 50
max_event_bytes = 2000
[timeouts]
header = "300ms"
body = "300ms"
"#;

const JSON: &str = "application/json";

/// A JSON batch of `events` valid events and one invalid one (which would be a bad row if
/// the request got that far).
fn mixed_json(events: u64) -> Bytes {
    let mut items: Vec<String> = valid_events(events, 5).iter().map(json::encode_event).collect();
    items.push(r#"{"schemaVersion": 1}"#.into());
    Bytes::from(format!("{{\"events\": [{}]}}", items.join(",")))
}

fn gzip(data: &[u8]) -> Bytes {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(data).unwrap();
    Bytes::from(e.finish().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_answer_why_and_write_nothing() {
    let h = Harness::start(TABLES).await;
    let client = h.client("ios-app");

    // 401: no key, an unknown key.
    let a = client.post_raw(mixed_json(3), JSON, None, false).await.unwrap();
    assert_eq!(a.status, 401);
    assert_eq!(a.headers["www-authenticate"], "Bearer");
    assert_eq!(a.json()["error"], "unauthorized");
    let stranger = h.client_with(ClientConfig::new(h.endpoint(), "not-a-key"));
    let a = stranger.post_raw(mixed_json(3), JSON, None, true).await.unwrap();
    assert_eq!(
        (a.status.as_u16(), a.json()["message"].as_str()),
        (401, Some("unknown API key"))
    );

    // 413: each limit, named.
    let too_large = |body: Bytes, encoding: Option<&'static str>| {
        let client = client.clone();
        async move {
            let a = client.post_raw(body, JSON, encoding, true).await.unwrap();
            assert_eq!(a.status, 413, "{:?}", a.json());
            (
                a.json()["limit"].as_str().unwrap().to_owned(),
                a.json()["message"].as_str().unwrap().to_owned(),
            )
        }
    };
    let big = Bytes::from(format!("[{}]", " ".repeat(20_000)));
    assert_eq!(too_large(big, None).await.0, "limits.max_body_bytes");
    // 10 MB of blanks gzip to about 10 KB: under the body limit, refused while decompressing.
    let bomb = gzip(format!("[{}]", " ".repeat(10_000_000)).as_bytes());
    assert!(bomb.len() < 20_000);
    assert_eq!(too_large(bomb, Some("gzip")).await.0, "limits.max_decompressed_bytes");
    assert_eq!(too_large(mixed_json(50), None).await.0, "limits.max_batch_events");
    let mut huge = valid_events(2, 6);
    if let Some(inlet_schemas::events::envelope::Body::Viewing(v)) = &mut huge[1].body {
        v.title_id = "t".repeat(3_000);
    } else if let Some(inlet_schemas::events::envelope::Body::Gameplay(g)) = &mut huge[1].body {
        g.game_id = "g".repeat(3_000);
    }
    let body = Bytes::from(format!(
        "[{}]",
        huge.iter().map(json::encode_event).collect::<Vec<_>>().join(",")
    ));
    let (limit, message) = too_large(body, None).await;
    assert_eq!(limit, "limits.max_event_bytes");
    assert!(message.starts_with("event [1] of "), "{message}");

    // 400: not a batch, with where and why.
    let bad = |body: &'static str, content_type: &'static str| {
        let client = client.clone();
        async move {
            let a = client
                .post_raw(Bytes::from_static(body.as_bytes()), content_type, None, true)
                .await
                .unwrap();
            assert_eq!(a.status, 400, "{body}: {:?}", a.json());
            let j = a.json();
            (
                j["field"].as_str().unwrap().to_owned(),
                j["reason"].as_str().unwrap().to_owned(),
            )
        }
    };
    let (field, reason) = bad(r#"{"events": [{"eventId": "#, JSON).await;
    assert_eq!(field, "events[0]");
    assert!(reason.contains("EOF while parsing"), "{reason}");
    let (field, reason) = bad(r#"{"events": {"eventId": "x"}}"#, JSON).await;
    assert_eq!(field, "events");
    assert!(reason.contains("invalid type: map, expected a sequence"), "{reason}");
    let (field, reason) = bad("\u{FF}\u{FF}", "application/x-protobuf").await;
    assert_eq!(field, ".");
    assert!(reason.starts_with("not a protobuf EventBatch"), "{reason}");

    // 415: formats it does not read.
    let a = client.post_raw(mixed_json(1), "text/plain", None, true).await.unwrap();
    assert_eq!(a.status, 415);
    let a = client.post_raw(mixed_json(1), JSON, Some("br"), true).await.unwrap();
    assert_eq!(a.status, 415);

    // A body without a Content-Length that grows past the limit is cut off at it.
    let head = "POST /v1/events HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer key-ios-app\r\n\
                Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
    let chunk = format!("4000\r\n{}\r\n", " ".repeat(0x4000));
    let mut s = tokio::net::TcpStream::connect(h.addr).await.unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    for _ in 0..2 {
        s.write_all(chunk.as_bytes()).await.unwrap();
    }
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer).await;
    assert!(
        answer.starts_with(b"HTTP/1.1 413"),
        "{}",
        String::from_utf8_lossy(&answer)
    );

    let (status, metrics) = get(h.addr, "/metrics").await;
    assert_eq!(status, 200);
    assert!(
        metrics.contains("inlet_collector_requests_total{outcome=\"unauthorized\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("inlet_collector_requests_total{outcome=\"too_large\"}"),
        "{metrics}"
    );

    let (summary, _dir, stream, bad_rows_path) = h.stop().await;
    assert_eq!(summary.producer.accepted, 0);
    assert!(stream_events(&stream).await.is_empty(), "nothing reached the stream");
    assert!(bad_rows(&bad_rows_path).is_empty(), "nothing reached the bad rows");
}

/// Sends `head`, then `drip` every 100 ms up to `max` times or until the server hangs up;
/// returns what the server answered and how many drips went out.
async fn drip(addr: SocketAddr, head: &str, drip: &[u8], max: usize) -> (String, usize) {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut rd, mut wr) = stream.into_split();
    let reader = tokio::spawn(async move {
        let mut answer = Vec::new();
        let _ = rd.read_to_end(&mut answer).await;
        answer
    });
    wr.write_all(head.as_bytes()).await.unwrap();
    let mut sent = 0;
    while sent < max && !reader.is_finished() {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if wr.write_all(drip).await.is_err() {
            break;
        }
        sent += 1;
    }
    let answer = tokio::time::timeout(Duration::from_secs(30), reader)
        .await
        .expect("the server hangs up on a slow client")
        .unwrap();
    (String::from_utf8_lossy(&answer).into_owned(), sent)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_cut_off_and_write_nothing() {
    let h = Harness::start(TABLES).await;
    // Headers that never end.
    let (answer, sent) = drip(h.addr, "POST /v1/events HTTP/1.1\r\nHost: t\r\n", b"X-Slow: 1\r\n", 300).await;
    assert!(sent < 300, "cut off before the client gave up");
    assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 408"), "{answer}");

    // A body that trickles in.
    let body = mixed_json(2);
    let head = format!(
        "POST /v1/events HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer key-ios-app\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let (answer, sent) = drip(h.addr, &head, &body[..1], body.len() - 1).await;
    assert!(sent < body.len() - 1, "cut off before the body was complete");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("did not arrive within"), "{answer}");

    let (summary, _dir, stream, bad_rows_path) = h.stop().await;
    assert_eq!(summary.producer.accepted, 0);
    assert!(stream_events(&stream).await.is_empty());
    assert!(bad_rows(&bad_rows_path).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_over_its_rate_limit_gets_429_and_the_client_waits_it_out() {
    let h = Harness::start(&format!(
        "{TABLES}\n[rate_limit]\nevents_per_second = 0.5\nburst = 50\n"
    ))
    .await;
    let client = h.client("pc-game");
    let events = valid_events(50, 8);
    assert_eq!(client.post(&events[..30]).await.unwrap().accepted, 30);
    assert_eq!(client.post(&events[30..45]).await.unwrap().accepted, 15);
    // 5 tokens left (and a trickle more): 6 events need about 2 s of refill.
    match client.post(&events[44..]).await {
        Err(ClientError::Refused {
            status,
            retry_after: Some(wait),
            ..
        }) => {
            assert_eq!(status, 429);
            assert!((1..=2).contains(&wait.as_secs()), "{wait:?}");
        }
        other => panic!("{other:?}"),
    }
    // Other keys have buckets of their own.
    assert_eq!(h.client("console-game").post(&events[..1]).await.unwrap().accepted, 1);
    // The client waits as told, then gets through.
    let result = client.post_with_retries(&events[44..]).await.unwrap();
    assert_eq!(result.accepted, 6);
    let (summary, _dir, stream, _) = h.stop().await;
    assert_eq!(summary.producer.delivered, 52);
    assert_eq!(stream_events(&stream).await.len(), 52);
}
