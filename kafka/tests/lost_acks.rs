#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report
//! Produce acknowledgements lost after the broker appended the batch: a proxy between the
//! client and a private Tansu broker (which advertises the proxy) cuts the connection instead
//! of passing on some Produce responses. librdkafka sends those batches again with the same
//! producer id and sequence numbers, and the broker must recognise them: every event is in
//! the topic exactly once, each key's in the order sent. (librdkafka's mock cluster cannot
//! test this: it checks sequence numbers for transactional producers only.)
mod common;

use common::{events, read_topic};
use inlet_kafka::testing::{bootstrap, infra_dir};
use inlet_kafka::{KafkaLocation, KafkaStream};
use inlet_producer::{Producer, ProducerConfig};
use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const PARTITIONS: i32 = 4;
/// Kafka's Produce API key.
const PRODUCE: i16 = 0;

/// A Tansu broker of this test's own, advertising `advertised` as its address.
struct Tansu {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for Tansu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn start_tansu(port: u16, advertised: u16) -> Tansu {
    let out = Command::new(infra_dir().join("kafka-broker.sh"))
        .arg("--install")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let bin = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let child = Command::new(bin)
        .current_dir(dir.path())
        .env("RUST_LOG", "warn")
        .args(["broker", "--listener-url", &format!("tcp://127.0.0.1:{port}")])
        .args(["--advertised-listener-url", &format!("tcp://127.0.0.1:{advertised}")])
        .args(["--storage-engine", "sqlite://tansu.db"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "tansu did not listen on {port}");
        std::thread::sleep(Duration::from_millis(100));
    }
    Tansu { child, _dir: dir }
}

/// Reads one Kafka frame (4-byte big-endian length, then the body).
fn read_frame(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).ok()?;
    let mut frame = len.to_vec();
    frame.resize(4 + u32::from_be_bytes(len) as usize, 0);
    s.read_exact(&mut frame[4..]).ok()?;
    Some(frame)
}

/// Forwards connections on `listen` to `upstream`; cuts a connection instead of passing on
/// every `every`-th Produce response, `budget` times in all. Returns how many it cut.
fn start_proxy(listen: u16, upstream: u16, every: u32, budget: u32) -> Arc<AtomicU32> {
    let cut = Arc::new(AtomicU32::new(0));
    let listener = TcpListener::bind(("127.0.0.1", listen)).unwrap();
    let produces = Arc::new(AtomicU32::new(0));
    let counter = Arc::clone(&cut);
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(mut client) = client else { continue };
            let Ok(mut broker) = TcpStream::connect(("127.0.0.1", upstream)) else {
                continue;
            };
            let (mut client_w, mut broker_r) = (client.try_clone().unwrap(), broker.try_clone().unwrap());
            // Correlation ids of the Produce requests in flight on this connection.
            let pending: Arc<Mutex<HashSet<i32>>> = Arc::default();
            let requests = Arc::clone(&pending);
            std::thread::spawn(move || {
                while let Some(frame) = read_frame(&mut client) {
                    if frame.len() >= 12 && i16::from_be_bytes([frame[4], frame[5]]) == PRODUCE {
                        let id = i32::from_be_bytes([frame[8], frame[9], frame[10], frame[11]]);
                        requests.lock().unwrap().insert(id);
                    }
                    if broker.write_all(&frame).is_err() {
                        break;
                    }
                }
                let _ = broker.shutdown(Shutdown::Both);
            });
            let (produces, cut) = (Arc::clone(&produces), Arc::clone(&counter));
            std::thread::spawn(move || {
                while let Some(frame) = read_frame(&mut broker_r) {
                    let id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
                    if pending.lock().unwrap().remove(&id)
                        && (produces.fetch_add(1, Ordering::Relaxed) + 1) % every == 0
                        && cut.fetch_add(1, Ordering::Relaxed) < budget
                    {
                        // The broker has appended the batch; the client never hears of it.
                        break;
                    }
                    if client_w.write_all(&frame).is_err() {
                        break;
                    }
                }
                let _ = client_w.shutdown(Shutdown::Both);
                let _ = broker_r.shutdown(Shutdown::Both);
            });
        }
    });
    cut
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Kafka broker: run infra/test.sh"]
async fn batches_resent_after_a_lost_acknowledgement_are_written_once() {
    // The shared broker is not used, but infra/test.sh installed Tansu to start it: without
    // it this fails here, not after an 18-minute install.
    let _ = bootstrap();
    let (port, advertised) = (free_port(), free_port());
    let cut = start_proxy(advertised, port, 5, 8);
    let _tansu = start_tansu(port, advertised);
    let location = KafkaLocation::new(format!("127.0.0.1:{advertised}"), "lost-acks");
    let stream = Arc::new(KafkaStream::connect(location).unwrap());
    stream.create(PARTITIONS as usize).await.unwrap();

    let n = 5_000u64;
    let sent = events(n, 31);
    let started = Instant::now();
    let config = ProducerConfig {
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(500),
        ..ProducerConfig::default()
    };
    let producer = Producer::start(stream.clone(), config).await.unwrap();
    for chunk in sent.chunks(100) {
        producer.send_all(chunk.to_vec()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stats = producer.close().await.unwrap();
    let cut = cut.load(Ordering::Relaxed).min(8);
    eprintln!(
        "produced {n} events in {:.1} s with {cut} acknowledgements lost: {stats:?}",
        started.elapsed().as_secs_f64()
    );
    assert_eq!((stats.delivered, stats.failed), (n, 0));
    assert!(cut >= 4, "only {cut} acknowledgements were cut");

    let read = read_topic(&format!("127.0.0.1:{advertised}"), "lost-acks", PARTITIONS, n as usize);
    let mut want: HashMap<&str, Vec<&[u8]>> = HashMap::new();
    for (k, d) in &sent {
        want.entry(k).or_default().push(d);
    }
    let mut got: HashMap<&str, Vec<&[u8]>> = HashMap::new();
    for (_, k, d) in &read {
        got.entry(k).or_default().push(d);
    }
    assert_eq!(read.len() as u64, n, "events lost or written twice");
    for (k, w) in &want {
        assert!(got.get(k) == Some(w), "key {k}: payloads or their order differ");
    }
}
