//! Prints a realistic batch body for load tests: `N` generated events (viewing and
//! gameplay, valid, timed a minute ago, no app id: the key's is stamped in), as JSON or
//! protobuf. `cargo run --release -p inlet-collector --example load_body -- 50 json > body`
#![allow(clippy::unwrap_used, clippy::expect_used)] // a tool: a panic is the error report
use inlet_collector::body::Format;
use inlet_emitter::{Client, ClientConfig};
use inlet_generator::{Generator, GeneratorConfig};
use inlet_schemas::events::Envelope;
use prost::Message;
use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

fn main() {
    let mut args = std::env::args().skip(1);
    let events: u64 = args.next().map_or(50, |n| n.parse().expect("N: a number of events"));
    let format = match args.next().as_deref() {
        None | Some("json") => Format::Json,
        Some("protobuf") => Format::Protobuf,
        Some(other) => panic!("format {other:?}: json or protobuf"),
    };
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64;
    let generator = Generator::new(GeneratorConfig {
        events,
        seed: 42,
        late_share: 0.0,
        invalid_share: 0.0,
        start_ms: now_ms - 60_000,
        ..GeneratorConfig::default()
    });
    let client = Client::new(ClientConfig {
        format,
        ..ClientConfig::new("http://127.0.0.1:1", "unused")
    })
    .unwrap();
    let encoded: Vec<_> = generator
        .map(|ev| {
            let mut e = Envelope::decode(ev.data).unwrap();
            e.emitter.as_mut().unwrap().app_id.clear();
            client.encode_event(&e).unwrap()
        })
        .collect();
    std::io::stdout().write_all(&client.encode_batch(&encoded)).unwrap();
}
