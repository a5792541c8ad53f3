//! JSON events and batches (proto3 JSON mapping), as emitters send them: decoding and
//! validating never panic, and a valid event's JSON decodes back to the same event.
#![no_main]
use inlet_schemas::json;
use inlet_schemas::validate::{Limits, validate};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    if let Ok(event) = json::decode_event(data) {
        if validate(&event, &limits).is_ok() {
            let again = json::decode_event(json::encode_event(&event).as_bytes()).expect("re-encoded");
            assert_eq!(again, event);
        }
    }
    if let Ok(events) = json::decode_batch(data) {
        for event in events.into_iter().flatten() {
            let _ = validate(&event, &limits);
        }
    }
});
