//! The on-disk spool: while the stream refuses every write, `send` keeps going (records go
//! to disk, the buffer stays small), and when the stream is back everything is written, each
//! key's records in order; a producer that stopped with records spooled leaves them for the
//! next one, which sends them first.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report
mod common;

use bytes::Bytes;
use common::{Faulty, stream};
use inlet_embedded::EmbeddedStream;
use inlet_producer::{BatchLimits, Producer, ProducerConfig, SpoolConfig};
use inlet_schemas::kpl;
use inlet_seams::{StartPosition, StreamReader};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::time::Duration;

fn config(dir: &Path) -> ProducerConfig {
    ProducerConfig {
        max_buffered_bytes: 200_000,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
        record_ttl: Duration::from_millis(500),
        batch: BatchLimits {
            max_aggregate_bytes: 10_000,
            linger_ms: 5,
            ..BatchLimits::default()
        },
        spool: Some(SpoolConfig {
            dir: dir.to_owned(),
            max_bytes: 1 << 30,
            after: Duration::from_millis(200),
        }),
        ..ProducerConfig::default()
    }
}

fn event(i: usize) -> (String, Bytes) {
    (
        format!("key-{}", i % 13),
        Bytes::from(format!("{i:08}-{}", "x".repeat(200))),
    )
}

/// Every user record in the stream, per key, in stream order.
async fn read_back(s: &EmbeddedStream) -> BTreeMap<String, Vec<Bytes>> {
    let mut out: BTreeMap<String, Vec<Bytes>> = BTreeMap::new();
    for shard in s.list_shards().await.unwrap() {
        let mut r = s.open(&shard.id, StartPosition::TrimHorizon).await.unwrap();
        loop {
            let batch = r.next_batch(1000).await.unwrap();
            if batch.records.is_empty() {
                break;
            }
            for rec in batch.records {
                for u in kpl::decode_strict(&rec.partition_key, rec.explicit_hash_key, &rec.data).unwrap() {
                    out.entry(u.partition_key).or_default().push(u.data);
                }
            }
        }
    }
    out
}

fn expected(n: usize) -> BTreeMap<String, Vec<Bytes>> {
    let mut want: BTreeMap<String, Vec<Bytes>> = BTreeMap::new();
    for i in 0..n {
        let (k, d) = event(i);
        want.entry(k).or_default().push(d);
    }
    want
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_goes_to_disk_and_is_written_in_order_when_the_stream_is_back() {
    let (_dir, s) = stream(3).await;
    let spool_dir = tempfile::tempdir().unwrap();
    let writer = Arc::new(Faulty {
        inner: s.clone(),
        refuse: false,
        down: AtomicBool::new(true),
    });
    let producer = Producer::start(writer.clone(), config(spool_dir.path())).await.unwrap();
    // 20,000 events of ~220 bytes: over 20 times the 200 KB buffer, and well past the
    // record time-to-live: without the spool `send` would wait and records would expire.
    let n = 20_000;
    let mut confirmed = Vec::new();
    for i in 0..n {
        let (k, d) = event(i);
        if i % 1000 == 0 {
            confirmed.push(producer.send_confirmed(k, d).await.unwrap());
        } else {
            tokio::time::timeout(Duration::from_secs(10), producer.send(k, d))
                .await
                .expect("send keeps going while the stream is down")
                .unwrap();
        }
    }
    let spooled = std::fs::metadata(spool_dir.path().join("spool.bin")).unwrap().len();
    assert!(spooled > 2_000_000, "the outage went to disk: {spooled} bytes");
    tokio::time::sleep(Duration::from_millis(800)).await; // past the TTL, still down
    writer.down.store(false, SeqCst);
    for d in confirmed {
        d.await
            .expect("a spooled record's delivery resolves once it is written");
    }
    let stats = producer.close().await.unwrap();
    assert_eq!((stats.delivered, stats.failed), (n as u64, 0), "{stats:?}");
    assert!(stats.spooled > 0);
    assert_eq!(read_back(&s).await, expected(n), "every event once, each key in order");
    assert_eq!(
        std::fs::read(spool_dir.path().join("spool.bin")).unwrap(),
        inlet_producer::spool::MAGIC,
        "emptied to its header"
    );
}

#[test]
fn records_spooled_by_a_crashed_producer_are_sent_by_the_next_one_first() {
    let main = tokio::runtime::Runtime::new().unwrap();
    let (_dir, s) = main.block_on(stream(2));
    let spool_dir = tempfile::tempdir().unwrap();
    let writer = Arc::new(Faulty {
        inner: s.clone(),
        refuse: false,
        down: AtomicBool::new(true),
    });
    // The first producer runs on a runtime of its own, dropped mid-outage: its tasks die
    // where they stand, as in a crash.
    {
        let doomed = tokio::runtime::Runtime::new().unwrap();
        doomed.block_on(async {
            let first = Producer::start(writer.clone(), config(spool_dir.path())).await.unwrap();
            for i in 0..5_000 {
                let (k, d) = event(i);
                first.send(k, d).await.unwrap();
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            std::mem::forget(first); // no flush, no close
        });
        doomed.shutdown_timeout(Duration::from_millis(100));
    }
    let on_disk = std::fs::metadata(spool_dir.path().join("spool.bin")).unwrap().len();
    assert!(
        on_disk > 500_000,
        "the first producer spooled its records: {on_disk} bytes"
    );

    writer.down.store(false, SeqCst);
    let got = main.block_on(async {
        let second = Producer::start(writer.clone(), config(spool_dir.path())).await.unwrap();
        for i in 5_000..6_000 {
            let (k, d) = event(i);
            second.send(k, d).await.unwrap();
        }
        let stats = second.close().await.unwrap();
        assert_eq!(stats.failed, 0);
        assert_eq!(stats.accepted, 1_000);
        assert!(stats.resumed > 2_000, "the first producer's spooled records: {stats:?}");
        assert_eq!(
            stats.delivered,
            stats.accepted + stats.resumed,
            "everything accepted here or resumed from the spool is delivered: {stats:?}"
        );
        read_back(&s).await
    });
    // Every record the first producer spooled is written, once, before the second one's,
    // per key; what it still held in memory died with it (none of it was acknowledged).
    let mut from_first = 0;
    for (key, records) in &got {
        let idx: Vec<usize> = records
            .iter()
            .map(|d| std::str::from_utf8(&d[..8]).unwrap().parse().unwrap())
            .collect();
        assert!(
            idx.windows(2).all(|w| w[0] < w[1]),
            "key {key} out of order or repeated: {idx:?}"
        );
        from_first += idx.iter().filter(|&&i| i < 5_000).count();
        assert_eq!(
            idx.iter().filter(|&&i| i >= 5_000).count(),
            (5_000..6_000)
                .filter(|i| i % 13 == key[4..].parse::<usize>().unwrap())
                .count()
        );
    }
    eprintln!("{from_first} of the first producer's 5,000 records came through its spool");
    assert!(from_first > 2_000, "{from_first}");
}
