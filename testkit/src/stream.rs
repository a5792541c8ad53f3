//! Everything a stream holds, read back through the reader seam: what tests compare with
//! what was sent.
use inlet_schemas::kpl::{self, UserRecord};
use inlet_seams::{Record, Shard, StartPosition, StreamReader};

/// Every record of every shard, from the trim horizon to a closed shard's end or an open
/// shard's newest record (a read that finds nothing while the stream says it is not behind;
/// after 50 empty reads in a row regardless), shard by shard in listing order.
pub async fn read_stream(reader: &dyn StreamReader) -> Vec<(Shard, Record)> {
    let mut out = Vec::new();
    for shard in reader.list_shards().await.unwrap() {
        let mut r = reader.open(&shard.id, StartPosition::TrimHorizon).await.unwrap();
        let mut empty_reads = 0;
        loop {
            let batch = r.next_batch(10_000).await.unwrap();
            let empty = batch.records.is_empty();
            out.extend(batch.records.into_iter().map(|rec| (shard.clone(), rec)));
            if batch.shard_end.is_some() {
                break;
            }
            if empty {
                empty_reads += 1;
                if batch.millis_behind_latest.unwrap_or(0) == 0 || empty_reads > 50 {
                    break;
                }
            }
        }
    }
    out
}

/// The user records (events) of `records`: KPL aggregates taken apart, plain records as
/// they are; each with its shard, its stream record and its index in it.
pub fn user_records(records: &[(Shard, Record)]) -> Vec<(&Shard, &Record, u32, UserRecord)> {
    records
        .iter()
        .flat_map(|(shard, r)| {
            kpl::decode_strict(&r.partition_key, r.explicit_hash_key, &r.data)
                .unwrap_or_else(|e| panic!("record {} of {}: {e}", r.sequence, shard.id))
                .into_iter()
                .enumerate()
                .map(move |(i, u)| (shard, r, i as u32, u))
        })
        .collect()
}
