//! Stream and warehouse URLs as operators type them: parsing never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(url) = std::str::from_utf8(data) else { return };
    let _ = inlet_kinesis::KinesisLocation::parse(url);
    let _ = inlet_kafka::KafkaLocation::parse(url);
    let _ = inlet_postgres::config::parse_url(url);
});
