//! The shared archive scenario on the local archive: `LocalArchive` writes, `ArchiveReader`
//! reads back.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report
use inlet_replay::{ArchiveReader, LocalArchive};
use inlet_seams::{Record, ShardId, StartPosition, scenarios};

#[test]
fn archive_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let archive = LocalArchive::new(dir.path());
    let read_back = |shard: &ShardId, from: StartPosition| -> Vec<Record> {
        let mut r = ArchiveReader::new(dir.path()).open(shard, from).unwrap();
        let mut out = Vec::new();
        loop {
            let batch = r.next_records(7).unwrap();
            if batch.is_empty() {
                return out;
            }
            out.extend(batch);
        }
    };
    scenarios::archive_round_trip(&archive, &read_back);
}
