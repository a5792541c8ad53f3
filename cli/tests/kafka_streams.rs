//! `inlet streams` on a Kafka topic: create with N partitions, describe (partitions and their
//! offsets), the refusal to split, merge or rescale, delete. On a broker of its own: Tansu
//! deletes every topic on a DeleteTopics of one, the shared broker's tests' too.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report
use bytes::Bytes;
use inlet_kafka::testing::{bootstrap, location, private_broker};
use inlet_kafka::{KafkaStream, partition_shard};
use inlet_seams::{PutOutcome, PutRecord, StreamWriter};
use std::process::{Command, Output};

fn inlet(url: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_inlet"))
        .args(["streams", "--stream", url])
        .args(args)
        .output()
        .unwrap()
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "inlet failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Kafka broker: run infra/test.sh"]
async fn create_describe_and_delete_a_topic() {
    // The shared broker is not used, but infra/test.sh installed Tansu to start it: without
    // it this fails here, not after an 18-minute install.
    let _ = bootstrap();
    let broker = private_broker();
    let loc = location(&broker.address, "cli-streams");
    let url = loc.to_url();
    let topic = loc.topic.clone();

    let out = stdout(&inlet(&url, &["create", "--shards", "3"]));
    assert!(out.contains(&format!("created {topic} with 3 partitions")), "{out}");

    // Five records on partition-1 (the middle third of the hash-key space).
    let stream = KafkaStream::connect(loc).unwrap();
    let records: Vec<PutRecord> = (0..5)
        .map(|i| PutRecord {
            partition_key: format!("key-{i}"),
            explicit_hash_key: Some(u128::MAX / 2),
            data: Bytes::from(format!("record {i}")),
        })
        .collect();
    for outcome in stream.put_records(&records).await.unwrap() {
        assert!(
            matches!(&outcome, PutOutcome::Written { shard, .. } if *shard == partition_shard(1)),
            "{outcome:?}"
        );
    }

    let out = stdout(&inlet(&url, &["describe"]));
    eprintln!("{out}");
    assert!(
        out.starts_with(&format!("{topic}: 3 partitions, 5 records kept")),
        "{out}"
    );
    let lines: Vec<Vec<&str>> = out.lines().skip(1).map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(lines.len(), 3, "{out}");
    for (p, words) in lines.iter().enumerate() {
        let kept = if p == 1 { "5" } else { "0" };
        let offsets = if p == 1 { "0..5" } else { "0..0" };
        assert_eq!(
            words[..],
            [&format!("partition-{p}"), "offsets", offsets, kept, "records"],
            "{out}"
        );
    }

    for args in [
        &["split", "--shard", "partition-0"][..],
        &["merge", "--shard", "partition-0", "--adjacent", "partition-1"],
        &["scale", "--shards", "6"],
    ] {
        let out = inlet(&url, args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(
            err.contains("Kafka partitions cannot be split, merged or rescaled here"),
            "{args:?}: {err}"
        );
    }

    let out = stdout(&inlet(&url, &["delete"]));
    assert!(out.contains(&format!("deleted {topic}")), "{out}");
    let out = inlet(&url, &["describe"]);
    assert!(!out.status.success(), "the topic is still described after its deletion");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("does not exist"), "{err}");
}
