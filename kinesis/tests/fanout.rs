//! Enhanced fan-out (`read=fanout`) against the local emulator, and its pure parts without one.
//!
//! # What the emulator serves and what it does not
//!
//! Probed on `kinesis-local` 0.6.2 (the Scala.js build of kinesis-mock, as
//! `infra/kinesis-local.sh` starts it) with the AWS CLI, raw HTTP and this crate. The
//! README's "only supports polling consumers" is out of date: fan-out is served, with gaps.
//!
//! Served:
//! - `RegisterStreamConsumer`: the consumer comes back `CREATING`; `DescribeStreamConsumer`
//!   says `ACTIVE` after `REGISTER_STREAM_CONSUMER_DURATION` (100 ms here). ARNs look like
//!   `arn:aws:kinesis:us-east-1:000000000000:stream/S/consumer/C:EPOCH_SECONDS`. Registering a
//!   name again: `ResourceInUseException: Consumer C exists`. `ListStreamConsumers` and
//!   `DeregisterStreamConsumer` answer as documented.
//! - `SubscribeToShard`, over HTTP/1.1 (chunked `application/vnd.amazon.eventstream`: what the
//!   SDK speaks to an `http://` endpoint) and over h2c alike: HTTP 200, then one
//!   `SubscribeToShardEvent` a second, the first after about a second (the SDK's `send`
//!   returns only then), each with the records since the last (up to 10,000),
//!   `ContinuationSequenceNumber` (the last record's, or the newest position) and
//!   `MillisBehindLatest` 0. The stream ends cleanly after exactly 5 minutes (299 events).
//!   `TRIM_HORIZON`, `LATEST`, `AT_SEQUENCE_NUMBER`, `AFTER_SEQUENCE_NUMBER` and
//!   `AT_TIMESTAMP` are honoured.
//! - Errors as an HTTP 200 whose only message is an `exception` event (Kinesis answers HTTP
//!   400): `ResourceInUseException: Another active subscription exists for consumer ARN on
//!   shard ID` while another subscription of the consumer to the shard is open;
//!   `ResourceNotFoundException: ConsumerARN ARN not found` for an unknown or deregistered
//!   consumer. `send` succeeds and the first `recv` returns the error. The exception's type
//!   is only in its `:exception-type` header (the JSON payload is just `{"message":..}`), so
//!   the SDK builds the right variant but reports no error code: the reader takes the code
//!   from the variant. A malformed ARN gets HTTP 400 `SerializationException`.
//! - A subscription whose client went away keeps its (consumer, shard) slot until the
//!   emulator's next event write fails: about a second of `ResourceInUseException`.
//!
//! Not served, or not like Kinesis:
//! - The end of a shard. Events always carry a continuation sequence number and
//!   `"ChildShards": null`, also on a closed (split) parent after its last record, so a
//!   fan-out reader never sees `shard_end` there (polling `GetRecords` does). Tested on the
//!   pure parts only.
//! - Shards are not checked: subscribing to one the stream does not have streams empty
//!   events with continuation `"0"` instead of `ResourceNotFoundException`.
//! - Deregistering does not end the consumer's open subscriptions (they go on streaming
//!   records), and a consumer still `DELETING` can subscribe.
//! - Deregistration mixes up streams: with consumers of one name on two streams,
//!   deregistering it on stream B removes the one on stream A and leaves B's `DELETING` for
//!   good. Tests that deregister use consumer names no other stream has.
//!
//! The tests below cover what it serves: registration, reading from every start position,
//! buffering, renewal, `ResourceInUseException` retried, a stalled (SIGSTOPped) emulator, a
//! deregistered consumer, and errors that must come back as a clear `StreamError` within a
//! bounded time.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

use aws_sdk_kinesis::primitives::{Blob, DateTime};
use aws_sdk_kinesis::types::{ChildShard, HashKeyRange, ShardIteratorType, SubscribeToShardEvent};
use bytes::Bytes;
use inlet_kinesis::fanout::{
    EventBuffer, FanoutShardReader, FanoutTimings, ReceivedEvent, ResumeCursor, starting_position,
};
use inlet_kinesis::testing::{fresh_stream, private_emulator, stream_on, unique_name};
use inlet_kinesis::{KinesisLocation, KinesisStream, ReadMode};
use inlet_seams::{
    PutOutcome, PutRecord, ReadBatch, Record, SequenceNumber, ShardId, ShardReader, StartPosition, StreamError,
    StreamReader, StreamWriter,
};
use std::time::Duration;
use tokio::time::{Instant, timeout};

// ---------------------------------------------------------------------------------------
// Pure parts: no server.

fn seq(n: u64) -> SequenceNumber {
    SequenceNumber::from_u64(n)
}

fn rec(n: u64) -> Record {
    Record {
        sequence: seq(n),
        partition_key: "k".into(),
        explicit_hash_key: None,
        data: Bytes::from(format!("r{n}")),
        arrival_ms: 0,
    }
}

fn event(records: std::ops::Range<u64>, continuation: Option<u64>, children: Option<&[&str]>) -> ReceivedEvent {
    ReceivedEvent {
        records: records.map(rec).collect(),
        continuation: continuation.map(seq),
        millis_behind_latest: 7,
        shard_end: children.map(|c| c.iter().map(|s| ShardId((*s).to_owned())).collect()),
    }
}

fn seqs(batch: &ReadBatch) -> Vec<u64> {
    batch.records.iter().map(|r| r.sequence.to_u64().unwrap()).collect()
}

#[test]
fn start_positions_map_to_fanout_starting_positions() {
    let s = SequenceNumber::parse("49680503197470802672185439539053971857442906805800796162").unwrap();
    let cases = [
        (StartPosition::TrimHorizon, ShardIteratorType::TrimHorizon, None, None),
        (StartPosition::Latest, ShardIteratorType::Latest, None, None),
        (
            StartPosition::AtSequence(s.clone()),
            ShardIteratorType::AtSequenceNumber,
            Some(s.as_str()),
            None,
        ),
        (
            StartPosition::AfterSequence(s.clone()),
            ShardIteratorType::AfterSequenceNumber,
            Some(s.as_str()),
            None,
        ),
        (
            StartPosition::AtTimestamp(1_795_472_219_357),
            ShardIteratorType::AtTimestamp,
            None,
            Some(DateTime::from_millis(1_795_472_219_357)),
        ),
    ];
    for (from, kind, sequence, at) in cases {
        let p = starting_position(&from);
        assert_eq!(p.r#type(), &kind, "{from:?}");
        assert_eq!(p.sequence_number(), sequence, "{from:?}");
        assert_eq!(p.timestamp(), at.as_ref(), "{from:?}");
    }
}

#[test]
fn resume_position_is_the_open_position_until_an_event_then_after_the_newest() {
    let mut c = ResumeCursor::new(StartPosition::AtSequence(seq(5)));
    assert_eq!(c.position(), StartPosition::AtSequence(seq(5)));
    // An event without records (nothing new yet) still moves the continuation on.
    c.received(None, Some(&seq(4)));
    assert_eq!(c.position(), StartPosition::AfterSequence(seq(4)));
    // Records: after the last one (the continuation is the same there).
    c.received(Some(&seq(9)), Some(&seq(9)));
    assert_eq!(c.position(), StartPosition::AfterSequence(seq(9)));
    // A continuation past the last record (aggregated or filtered records): after it.
    c.received(Some(&seq(11)), Some(&seq(15)));
    assert_eq!(c.position(), StartPosition::AfterSequence(seq(15)));
    // Never back: neither a stale continuation nor an older record moves it.
    c.received(Some(&seq(12)), Some(&seq(3)));
    assert_eq!(c.position(), StartPosition::AfterSequence(seq(15)));
    // The shard's end has no continuation: after its last record.
    c.received(Some(&seq(20)), None);
    assert_eq!(c.position(), StartPosition::AfterSequence(seq(20)));

    for open in [
        StartPosition::TrimHorizon,
        StartPosition::Latest,
        StartPosition::AtTimestamp(42),
        StartPosition::AfterSequence(seq(1)),
    ] {
        let mut c = ResumeCursor::new(open.clone());
        assert_eq!(c.position(), open);
        c.received(None, None);
        assert_eq!(c.position(), open, "an event with nothing in it leaves it");
    }
}

#[test]
fn buffer_hands_out_at_most_max_in_order_and_drops_nothing() {
    let mut b = EventBuffer::default();
    assert!(!b.pending());
    assert_eq!(b.take(10), ReadBatch::default());

    b.push(event(0..5, Some(4), None));
    assert!(b.pending());
    assert_eq!(b.len(), 5);
    let first = b.take(2);
    assert_eq!(
        (seqs(&first), first.millis_behind_latest, &first.shard_end),
        (vec![0, 1], Some(7), &None)
    );
    // A second event arrives before the first is handed out: appended behind it.
    b.push(event(5..8, Some(7), None));
    let mut got = seqs(&first);
    while b.pending() {
        let batch = b.take(2);
        assert!(batch.records.len() <= 2 && !batch.records.is_empty());
        got.extend(seqs(&batch));
    }
    assert_eq!(got, (0..8).collect::<Vec<_>>());
    assert!(b.is_empty() && !b.ended());

    // `max` 0 still makes progress, one record at a time.
    b.push(event(8..10, Some(9), None));
    assert_eq!(seqs(&b.take(0)), vec![8]);
    assert_eq!(seqs(&b.take(0)), vec![9]);
    assert!(!b.pending());
}

#[test]
fn shard_end_goes_out_with_the_last_buffered_record() {
    let mut b = EventBuffer::default();
    b.push(event(0..3, Some(2), None));
    b.push(event(
        3..6,
        None,
        Some(&["shardId-000000000001", "shardId-000000000002"]),
    ));
    let a = b.take(4);
    assert_eq!((seqs(&a), a.shard_end), (vec![0, 1, 2, 3], None));
    assert!(!b.ended());
    let last = b.take(4);
    assert_eq!(seqs(&last), vec![4, 5]);
    assert_eq!(
        last.shard_end,
        Some(vec![
            ShardId("shardId-000000000001".into()),
            ShardId("shardId-000000000002".into())
        ])
    );
    assert!(b.ended() && !b.pending());

    // An end without records (all read before) is a batch of its own.
    let mut b = EventBuffer::default();
    b.push(event(0..0, None, Some(&["shardId-000000000003"])));
    assert!(b.pending());
    let end = b.take(10);
    assert!(end.records.is_empty());
    assert_eq!(end.shard_end, Some(vec![ShardId("shardId-000000000003".into())]));
}

fn sdk_record(n: &str) -> aws_sdk_kinesis::types::Record {
    aws_sdk_kinesis::types::Record::builder()
        .sequence_number(n)
        .data(Blob::new(format!("data-{n}")))
        .partition_key("pk")
        .approximate_arrival_timestamp(DateTime::from_millis(1_000))
        .build()
        .unwrap()
}

fn child(id: &str) -> ChildShard {
    ChildShard::builder()
        .shard_id(id)
        .parent_shards("shardId-000000000000")
        .hash_key_range(
            HashKeyRange::builder()
                .starting_hash_key("0")
                .ending_hash_key("1")
                .build()
                .unwrap(),
        )
        .build()
        .unwrap()
}

#[test]
fn sdk_events_convert_and_only_a_missing_continuation_ends_the_shard() {
    let ev = SubscribeToShardEvent::builder()
        .records(sdk_record("10"))
        .records(sdk_record("11"))
        .continuation_sequence_number("11")
        .millis_behind_latest(250)
        .build()
        .unwrap();
    let got = ReceivedEvent::from_sdk(&ev).unwrap();
    assert_eq!(got.records.len(), 2);
    assert_eq!(got.records[1].sequence, seq(11));
    assert_eq!(got.records[1].data, Bytes::from("data-11"));
    assert_eq!(
        (got.records[1].partition_key.as_str(), got.records[1].arrival_ms),
        ("pk", 1_000)
    );
    assert_eq!(
        (got.continuation, got.millis_behind_latest, got.shard_end),
        (Some(seq(11)), 250, None)
    );

    // The shard's end: no continuation (the SDK reads the missing member as ""), children.
    let end = SubscribeToShardEvent::builder()
        .set_records(Some(Vec::new()))
        .continuation_sequence_number("")
        .millis_behind_latest(0)
        .child_shards(child("shardId-000000000001"))
        .child_shards(child("shardId-000000000002"))
        .build()
        .unwrap();
    let got = ReceivedEvent::from_sdk(&end).unwrap();
    assert_eq!(got.continuation, None);
    assert_eq!(
        got.shard_end,
        Some(vec![
            ShardId("shardId-000000000001".into()),
            ShardId("shardId-000000000002".into())
        ])
    );

    // A sequence number that is not one is refused, not skipped.
    let bad = SubscribeToShardEvent::builder()
        .records(sdk_record("x1"))
        .continuation_sequence_number("1")
        .millis_behind_latest(0)
        .build()
        .unwrap();
    assert!(ReceivedEvent::from_sdk(&bad).is_err());
}

// ---------------------------------------------------------------------------------------
// Against the emulator.

/// The same stream, read by enhanced fan-out as `consumer`.
async fn fanout(stream: &KinesisStream, consumer: &str) -> KinesisStream {
    KinesisStream::connect(KinesisLocation {
        read: ReadMode::Fanout,
        consumer: consumer.to_owned(),
        ..stream.location().clone()
    })
    .await
}

/// Writes `n` records with the given prefix; their sequence numbers, in order.
async fn put(stream: &KinesisStream, prefix: &str, n: usize) -> Vec<SequenceNumber> {
    let records: Vec<PutRecord> = (0..n)
        .map(|i| PutRecord {
            partition_key: "one-key".into(),
            explicit_hash_key: None,
            data: Bytes::from(format!("{prefix}-{i}")),
        })
        .collect();
    let mut out = Vec::new();
    for chunk in records.chunks(500) {
        for o in stream.put_records(chunk).await.unwrap() {
            let PutOutcome::Written { sequence, .. } = o else {
                panic!("put failed: {o:?}")
            };
            out.push(sequence);
        }
    }
    out
}

fn shard0() -> ShardId {
    ShardId("shardId-000000000000".into())
}

/// Reads until `n` records came (or `within` passed), checking every batch's size.
async fn read_n(r: &mut dyn ShardReader, n: usize, max: usize, within: Duration) -> Vec<Record> {
    let deadline = Instant::now() + within;
    let mut out = Vec::new();
    while out.len() < n {
        assert!(
            Instant::now() < deadline,
            "only {} of {n} records within {within:?}",
            out.len()
        );
        let batch = r.next_batch(max).await.unwrap();
        assert!(
            batch.records.len() <= max,
            "{} records for max {max}",
            batch.records.len()
        );
        assert_eq!(batch.shard_end, None);
        out.extend(batch.records);
    }
    out
}

#[tokio::test]
#[ignore = "needs the Kinesis emulator: run infra/test.sh"]
async fn registers_the_consumer_once_and_lists_it() {
    let stream = fresh_stream("efo-register", 1).await;
    assert_eq!(stream.list_consumers().await.unwrap(), Vec::new());
    let s = fanout(&stream, "inlet").await;
    let c = s.ensure_consumer().await.unwrap();
    assert_eq!((c.name.as_str(), c.status.as_str()), ("inlet", "ACTIVE"));
    assert!(
        c.arn.contains(&format!("stream/{}/consumer/inlet:", stream.name())),
        "{}",
        c.arn
    );
    // Idempotent: the same consumer, not a second one.
    assert_eq!(s.ensure_consumer().await.unwrap(), c);
    assert_eq!(stream.list_consumers().await.unwrap(), vec![c]);

    // Readers of many shards opening at once register a new consumer once.
    let many = unique_name("many");
    let s = fanout(&stream, &many).await;
    let opens = (0..8).map(|_| {
        let s = s.clone();
        tokio::spawn(async move {
            s.open_fanout(&shard0(), StartPosition::Latest, FanoutTimings::default())
                .await
        })
    });
    for o in opens {
        o.await.unwrap().unwrap();
    }
    let mut names: Vec<String> = stream
        .list_consumers()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .collect();
    names.sort();
    assert_eq!(names, ["inlet".to_owned(), many]);

    s.deregister_consumer().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while stream.list_consumers().await.unwrap().len() > 1 {
        assert!(Instant::now() < deadline, "the deregistered consumer is still listed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
#[ignore = "needs the Kinesis emulator: run infra/test.sh"]
async fn read_fanout_opens_a_fanout_reader_that_buffers_and_keeps_order() {
    let stream = fresh_stream("efo-read", 1).await;
    let written = put(&stream, "a", 25).await;
    let s = fanout(&stream, "inlet").await;
    // Through the seam: `read=fanout` is all it takes.
    let mut r = StreamReader::open(&s, &shard0(), StartPosition::TrimHorizon)
        .await
        .unwrap();
    // The first event holds all 25; 4 at a time hands them out from the buffer.
    let got = read_n(r.as_mut(), 25, 4, Duration::from_secs(20)).await;
    let data: Vec<Bytes> = got.iter().map(|r| r.data.clone()).collect();
    assert_eq!(data, (0..25).map(|i| Bytes::from(format!("a-{i}"))).collect::<Vec<_>>());
    assert_eq!(got.iter().map(|r| r.sequence.clone()).collect::<Vec<_>>(), written);
    assert!(got.iter().all(|r| r.partition_key == "one-key" && r.arrival_ms > 0));

    // Records written later are pushed on the same subscription.
    let later = put(&stream, "b", 3).await;
    let got = read_n(r.as_mut(), 3, 100, Duration::from_secs(20)).await;
    assert_eq!(got.iter().map(|r| r.sequence.clone()).collect::<Vec<_>>(), later);

    // Nothing new: an empty batch within about `MAX_WAIT`, no error, no hang.
    let started = Instant::now();
    let batch = r.next_batch(100).await.unwrap();
    assert!(batch.records.is_empty() && batch.shard_end.is_none());
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
}

#[tokio::test]
#[ignore = "needs the Kinesis emulator: run infra/test.sh"]
async fn every_start_position_reads_from_the_right_record() {
    let stream = fresh_stream("efo-start", 1).await;
    let first = put(&stream, "old", 3).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let cut_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let second = put(&stream, "new", 3).await;
    let all: Vec<SequenceNumber> = first.iter().chain(&second).cloned().collect();

    // One consumer per position, so the readers do not wait on each other's subscriptions.
    let cases = [
        ("trim", StartPosition::TrimHorizon, all.clone()),
        ("at", StartPosition::AtSequence(all[1].clone()), all[1..].to_vec()),
        ("after", StartPosition::AfterSequence(all[1].clone()), all[2..].to_vec()),
        ("time", StartPosition::AtTimestamp(cut_ms), second.clone()),
    ];
    for (consumer, from, want) in cases {
        let s = fanout(&stream, consumer).await;
        let mut r = s
            .open_fanout(&shard0(), from.clone(), FanoutTimings::default())
            .await
            .unwrap();
        let got = read_n(&mut r, want.len(), 1000, Duration::from_secs(20)).await;
        assert_eq!(
            got.iter().map(|r| r.sequence.clone()).collect::<Vec<_>>(),
            want,
            "{from:?}"
        );
        assert_eq!(
            r.resume_position(),
            StartPosition::AfterSequence(all[5].clone()),
            "{from:?}"
        );
    }

    // LATEST: only what is written after the subscription is open.
    let s = fanout(&stream, "latest").await;
    let mut r = s
        .open_fanout(&shard0(), StartPosition::Latest, FanoutTimings::default())
        .await
        .unwrap();
    let batch = r.next_batch(100).await.unwrap();
    assert!(
        batch.records.is_empty(),
        "LATEST handed out old records: {:?}",
        batch.records
    );
    let third = put(&stream, "newest", 2).await;
    let got = read_n(&mut r, 2, 100, Duration::from_secs(20)).await;
    assert_eq!(got.iter().map(|r| r.sequence.clone()).collect::<Vec<_>>(), third);
}

#[tokio::test]
#[ignore = "needs the Kinesis emulator: run infra/test.sh"]
async fn resource_in_use_is_retried_until_the_other_subscription_is_gone() {
    let stream = fresh_stream("efo-in-use", 1).await;
    let written = put(&stream, "x", 5).await;
    let s = fanout(&stream, "inlet").await;
    let mut a = s
        .open_fanout(&shard0(), StartPosition::TrimHorizon, FanoutTimings::default())
        .await
        .unwrap();
    assert_eq!(read_n(&mut a, 5, 100, Duration::from_secs(20)).await.len(), 5);

    // A second reader of the same consumer and shard: the emulator answers
    // ResourceInUseException, which is retried (empty batches), never an error.
    let mut b = s
        .open_fanout(&shard0(), StartPosition::TrimHorizon, FanoutTimings::default())
        .await
        .unwrap();
    for _ in 0..3 {
        let started = Instant::now();
        let batch = b.next_batch(100).await.unwrap();
        assert!(batch.records.is_empty());
        assert!(started.elapsed() < Duration::from_secs(15), "{:?}", started.elapsed());
    }
    assert!(b.resubscribes() >= 2, "retries: {}", b.resubscribes());

    // Once the first reader is gone, the second one gets the shard.
    drop(a);
    let got = read_n(&mut b, 5, 100, Duration::from_secs(30)).await;
    assert_eq!(got.iter().map(|r| r.sequence.clone()).collect::<Vec<_>>(), written);
}

#[tokio::test]
#[ignore = "needs the Kinesis emulator: run infra/test.sh"]
async fn renewed_subscriptions_resume_after_the_last_record_without_loss_or_repeats() {
    let stream = fresh_stream("efo-renew", 1).await;
    let s = fanout(&stream, "inlet").await;
    let timings = FanoutTimings {
        renew_after: Duration::from_secs(2),
        ..FanoutTimings::default()
    };
    let mut r = s
        .open_fanout(&shard0(), StartPosition::TrimHorizon, timings)
        .await
        .unwrap();
    // Write while reading, across several renewals.
    let writer = stream.clone();
    let writing = tokio::spawn(async move {
        let mut written = Vec::new();
        for i in 0..30 {
            written.extend(put(&writer, &format!("w{i}"), 2).await);
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        written
    });
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !writing.is_finished() || got.len() < 60 {
        assert!(Instant::now() < deadline, "{} of 60 records within 60 s", got.len());
        got.extend(r.next_batch(7).await.unwrap().records);
    }
    let written = writing.await.unwrap();
    assert_eq!(got.iter().map(|r| r.sequence.clone()).collect::<Vec<_>>(), written);
    assert!(r.resubscribes() >= 2, "renewals: {}", r.resubscribes());
    assert_eq!(r.resume_position(), StartPosition::AfterSequence(written[59].clone()));
}

#[tokio::test]
#[ignore = "needs the Kinesis emulator: run infra/test.sh"]
async fn a_stalled_subscription_is_replaced_and_a_frozen_emulator_reported() {
    // The shared emulator is not used, but infra/test.sh installed the emulator to start it.
    let _ = inlet_kinesis::testing::endpoint();
    // An emulator of our own, to freeze.
    let emulator = private_emulator();
    let stream = stream_on(&emulator.address, "efo-stall", 1).await;
    let s = KinesisStream::connect(KinesisLocation {
        read: ReadMode::Fanout,
        call_timeout: Duration::from_secs(2),
        ..stream.location().clone()
    })
    .await;
    let timings = FanoutTimings {
        stall: Duration::from_secs(3),
        ..FanoutTimings::default()
    };
    let mut r = s
        .open_fanout(&shard0(), StartPosition::TrimHorizon, timings)
        .await
        .unwrap();
    let before = put(&stream, "before", 2).await;
    assert_eq!(read_n(&mut r, 2, 100, Duration::from_secs(20)).await.len(), 2);

    emulator.signal("STOP");
    // No event for 3 s: the subscription is dropped, the new one gets no answer within the
    // 2 s call timeout: a retryable error naming the cause, well within 15 s.
    let started = Instant::now();
    let err = loop {
        let next = timeout(Duration::from_secs(15), r.next_batch(100)).await;
        match next.expect("next_batch hung on a frozen emulator") {
            Ok(b) => assert!(b.records.is_empty()),
            Err(e) => break e,
        }
        assert!(started.elapsed() < Duration::from_secs(15), "no error within 15 s");
    };
    let text = inlet_seams::error_chain(&err);
    assert!(matches!(err, StreamError::Read { retryable: true, .. }), "{text}");
    assert!(text.contains("SubscribeToShard") && text.contains("Timeout"), "{text}");
    assert!(r.resubscribes() >= 1);

    // Thawed: reading goes on after the last record read.
    emulator.signal("CONT");
    let after = put(&stream, "after", 2).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut got = Vec::new();
    while got.len() < 2 {
        assert!(Instant::now() < deadline, "nothing read after the emulator came back");
        match r.next_batch(100).await {
            Ok(b) => got.extend(b.records),
            Err(e) => assert!(e.is_retryable(), "{}", inlet_seams::error_chain(&e)),
        }
    }
    assert_eq!(got.iter().map(|r| r.sequence.clone()).collect::<Vec<_>>(), after);
    assert!(before[1] < after[0]);
}

#[tokio::test]
#[ignore = "needs the Kinesis emulator: run infra/test.sh"]
async fn a_deregistered_consumer_is_registered_again() {
    let stream = fresh_stream("efo-dereg", 1).await;
    // A name no other stream has: the emulator's deregistration mixes up consumers of the
    // same name on different streams (see the top).
    let s = fanout(&stream, &unique_name("dereg")).await;
    let timings = FanoutTimings {
        renew_after: Duration::from_secs(2),
        ..FanoutTimings::default()
    };
    let mut r: FanoutShardReader = s
        .open_fanout(&shard0(), StartPosition::TrimHorizon, timings)
        .await
        .unwrap();
    put(&stream, "one", 1).await;
    read_n(&mut r, 1, 100, Duration::from_secs(20)).await;
    let old = s.ensure_consumer().await.unwrap();

    s.deregister_consumer().await.unwrap();
    // The emulator keeps serving a subscription of a deregistered consumer (Kinesis ends
    // it), and lets a consumer still DELETING subscribe: wait until it is gone and past
    // `renew_after`, so the next call resubscribes and finds it missing. The new
    // registration gets a new ARN: its suffix is in seconds.
    let gone_by = Instant::now() + Duration::from_secs(30);
    while !stream.list_consumers().await.unwrap().is_empty() {
        assert!(
            Instant::now() < gone_by,
            "the consumer is still listed 30 s after deregistering"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let later = put(&stream, "two", 1).await;
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut errors = Vec::new();
    let mut got = Vec::new();
    while got.is_empty() {
        assert!(
            Instant::now() < deadline,
            "nothing read after deregistering; errors: {errors:?}"
        );
        match r.next_batch(100).await {
            Ok(b) => got.extend(b.records),
            Err(e) => {
                assert!(e.is_retryable(), "{}", inlet_seams::error_chain(&e));
                errors.push(inlet_seams::error_chain(&e));
            }
        }
    }
    assert_eq!(got.iter().map(|r| r.sequence.clone()).collect::<Vec<_>>(), later);
    assert!(
        errors.iter().any(|e| e.contains("ResourceNotFoundException")),
        "the missing consumer was not reported: {errors:?}"
    );
    let new = stream.list_consumers().await.unwrap();
    assert_eq!(new.len(), 1);
    assert_ne!(new[0].arn, old.arn);
}

#[tokio::test]
#[ignore = "needs the Kinesis emulator: run infra/test.sh"]
async fn the_emulator_does_not_end_a_closed_shard_over_fanout() {
    let stream = fresh_stream("efo-closed", 1).await;
    let written = put(&stream, "p", 4).await;
    let (c1, c2) = stream.split(&shard0(), None).await.unwrap();
    let s = fanout(&stream, "inlet").await;
    let mut r = s
        .open_fanout(&shard0(), StartPosition::TrimHorizon, FanoutTimings::default())
        .await
        .unwrap();
    let mut got = Vec::new();
    let mut end = None;
    let deadline = Instant::now() + Duration::from_secs(4);
    while Instant::now() < deadline && end.is_none() {
        let b = r.next_batch(100).await.unwrap();
        got.extend(b.records);
        end = b.shard_end;
    }
    assert_eq!(got.iter().map(|r| r.sequence.clone()).collect::<Vec<_>>(), written);
    match end {
        // Real Kinesis: the last event has no continuation and names the children.
        Some(mut children) => {
            children.sort();
            assert_eq!(children, vec![c1, c2]);
        }
        // kinesis-local 0.6.2: continuation and `ChildShards: null` forever (see the top).
        None => eprintln!("as documented: the emulator sent no shard end for the closed parent"),
    }
}

#[tokio::test]
#[ignore = "needs the Kinesis emulator: run infra/test.sh"]
async fn a_missing_stream_is_a_clear_error_not_a_hang() {
    let endpoint = inlet_kinesis::testing::endpoint();
    let s = KinesisStream::connect(KinesisLocation {
        read: ReadMode::Fanout,
        ..inlet_kinesis::testing::location(&endpoint, "efo-missing")
    })
    .await;
    let err = timeout(
        Duration::from_secs(15),
        StreamReader::open(&s, &shard0(), StartPosition::TrimHorizon),
    )
    .await
    .expect("open hung")
    .unwrap_err();
    let text = inlet_seams::error_chain(&err);
    assert!(matches!(err, StreamError::Read { retryable: false, .. }), "{text}");
    assert!(
        text.contains("DescribeStreamSummary") && text.contains("ResourceNotFoundException"),
        "{text}"
    );
    let err = s.ensure_consumer().await.unwrap_err();
    assert!(err.to_string().contains("ResourceNotFoundException"), "{err}");
}

#[tokio::test]
async fn an_unreachable_endpoint_is_a_retryable_error_within_seconds() {
    // No emulator needed: nothing listens on port 1.
    let s = KinesisStream::connect(KinesisLocation {
        read: ReadMode::Fanout,
        ..KinesisLocation::parse("kinesis://nowhere?region=us-east-1&endpoint=http://127.0.0.1:1").unwrap()
    })
    .await;
    let started = Instant::now();
    let err = timeout(
        Duration::from_secs(15),
        StreamReader::open(&s, &shard0(), StartPosition::TrimHorizon),
    )
    .await
    .expect("open hung")
    .unwrap_err();
    let text = inlet_seams::error_chain(&err);
    assert!(err.is_retryable(), "{text}");
    assert!(text.contains("Unreachable"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
}
