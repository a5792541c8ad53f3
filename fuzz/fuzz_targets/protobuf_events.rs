//! Protobuf `Envelope` and `EventBatch`, as the collector and the consumer read them: decoding
//! and validating never panic.
#![no_main]
use inlet_schemas::events::{Envelope, EventBatch};
use inlet_schemas::validate::{Limits, validate};
use libfuzzer_sys::fuzz_target;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    if let Ok(event) = Envelope::decode(data) {
        let _ = validate(&event, &limits);
    }
    if let Ok(batch) = EventBatch::decode(data) {
        for event in &batch.events {
            let _ = validate(event, &limits);
        }
    }
});
