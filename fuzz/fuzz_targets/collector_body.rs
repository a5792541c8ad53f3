//! The collector's body reader: content type and encoding headers, gzip and zstd under the
//! decompression cap, the split into events. Never a panic, and never more than the cap.
#![no_main]
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, header};
use inlet_collector::body;
use inlet_collector::config::LimitsConfig;
use libfuzzer_sys::fuzz_target;

const CONTENT_TYPES: [&str; 4] = [
    "application/json",
    "application/x-protobuf",
    "text/plain",
    "application/json; charset=utf-8",
];
const ENCODINGS: [Option<&str>; 4] = [None, Some("gzip"), Some("zstd"), Some("br")];

fuzz_target!(|data: &[u8]| {
    let Some((&choice, body)) = data.split_first() else {
        return;
    };
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(CONTENT_TYPES[usize::from(choice & 3)]),
    );
    if let Some(e) = ENCODINGS[usize::from((choice >> 2) & 3)] {
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static(e));
    }
    let limits = LimitsConfig {
        max_decompressed_bytes: 64 << 10,
        max_batch_events: 100,
        max_event_bytes: 4 << 10,
        ..LimitsConfig::default()
    };
    let Ok((format, encoding)) = body::format_and_encoding(&headers) else {
        return;
    };
    let Ok(plain) = body::decompress(encoding, Bytes::copy_from_slice(body), &limits) else {
        return;
    };
    assert!(
        plain.len() as u64 <= limits.max_decompressed_bytes,
        "over the cap: {}",
        plain.len()
    );
    if let Ok(events) = body::split(format, &plain, &limits) {
        assert!(events.len() <= limits.max_batch_events);
    }
});
