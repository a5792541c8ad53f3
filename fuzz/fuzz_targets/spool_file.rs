//! A producer's spool file as found on disk after a crash or a bad disk: checking it never
//! panics and always answers (damage is a finding, not an error). The first byte chooses raw
//! bytes, or records framed with good checksums (so the record decoder is reached).
#![no_main]
use inlet_fuzz::scratch_dir;
use inlet_producer::spool;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let file = if mode & 1 == 0 {
        rest.to_vec()
    } else {
        // Chunks split at 0xFF bytes, each framed as a record.
        let mut file = spool::MAGIC.to_vec();
        for chunk in rest.split(|&b| b == 0xFF) {
            file.extend_from_slice(&(chunk.len() as u32).to_le_bytes());
            file.extend_from_slice(&crc32fast::hash(chunk).to_le_bytes());
            file.extend_from_slice(chunk);
        }
        file
    };
    std::fs::write(scratch_dir().join("spool.bin"), &file).expect("write");
    let _ = std::fs::remove_file(scratch_dir().join("spool.offset"));
    let inspection = spool::inspect(scratch_dir()).expect("inspect reads a readable file");
    assert!(inspection.settled <= inspection.file_bytes);
});
