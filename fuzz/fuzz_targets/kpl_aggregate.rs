//! KPL aggregated records, as a consumer reads them off the stream: strict and lenient
//! decoding never panic, and what decodes encodes back to records that decode the same.
#![no_main]
use inlet_schemas::kpl;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let lenient = kpl::decode("pk", Some(7), data);
    if let Ok(records) = kpl::decode_strict("pk", Some(7), data) {
        assert_eq!(lenient.as_ref().ok(), Some(&records), "strict and lenient disagree");
        if kpl::is_aggregated(data) {
            let again = kpl::decode_strict("pk", Some(7), &kpl::encode(&records)).expect("re-encoded");
            assert_eq!(again, records);
        }
    }
});
