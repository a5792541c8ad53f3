//! An archive segment as replay finds it: reading never panics and never allocates past what
//! the file holds. The first byte chooses raw bytes, or a well-formed segment whose block
//! holds the input (so the record decoder behind the checksum and zstd is reached).
#![no_main]
use inlet_fuzz::scratch_dir;
use inlet_replay::segment::{self, SegmentHeader, SegmentReader};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let path = scratch_dir().join("segment");
    let _ = std::fs::remove_file(&path);
    if mode & 1 == 0 {
        std::fs::write(&path, rest).expect("write");
    } else {
        let header = SegmentHeader {
            shard: "shardId-000000000000".into(),
            first_sequence: "1".into(),
            watermark_before_ms: None,
            hour_ms: 0,
        };
        let mut file = segment::create(&path, &header).expect("create");
        segment::append_block(&mut file, rest).expect("append");
    }
    let Ok(Some(mut reader)) = SegmentReader::open(&path) else {
        return;
    };
    for _ in 0..10_000 {
        match reader.next_record() {
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
});
