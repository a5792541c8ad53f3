//! Row decoders: the SELECT column lists of stored partials and the functions that turn
//! their rows (and dead-letter rows) back into values.
use bytes::Bytes;
use inlet_rollup::{GameAgg, GameRow, ViewingAgg, ViewingRow};
use inlet_seams::{DeadLetter, DeadLetterKind, SequenceNumber, ShardId, WarehouseError};
use inlet_sketches::{Hll, QuantileSketch};
use tokio_postgres::Row;

pub(crate) fn corrupt(what: &'static str) -> impl Fn(inlet_sketches::SketchError) -> WarehouseError {
    move |e| WarehouseError::Corrupt {
        what,
        reason: e.to_string(),
    }
}

pub(crate) const VIEWING_SELECT: &str = "SELECT minute, title_id, events, plays, watch_ms, rebuffers, rebuffer_ms,
    bitrate_sum_kbps, bitrate_samples, errors, viewers, startup_ms FROM inlet_viewing_partials";
pub(crate) const GAMES_SELECT: &str = "SELECT minute, game_id, events, sessions, shots, hits, kills, deaths, purchases,
    damage, revenue_cents, players FROM inlet_game_partials";

pub(crate) fn viewing_row(r: &Row) -> Result<ViewingRow, WarehouseError> {
    let agg = ViewingAgg {
        events: r.get(2),
        plays: r.get(3),
        watch_ms: r.get(4),
        rebuffers: r.get(5),
        rebuffer_ms: r.get(6),
        bitrate_sum_kbps: r.get(7),
        bitrate_samples: r.get(8),
        errors: r.get(9),
        viewers: Hll::from_bytes(r.get(10)).map_err(corrupt("viewers sketch"))?,
        startup_ms: QuantileSketch::from_bytes(r.get(11)).map_err(corrupt("startup sketch"))?,
    };
    Ok(ViewingRow {
        minute: r.get(0),
        title_id: r.get(1),
        agg,
    })
}

pub(crate) fn game_row(r: &Row) -> Result<GameRow, WarehouseError> {
    let agg = GameAgg {
        events: r.get(2),
        sessions: r.get(3),
        shots: r.get(4),
        hits: r.get(5),
        kills: r.get(6),
        deaths: r.get(7),
        purchases: r.get(8),
        damage: r.get(9),
        revenue_cents: r.get(10),
        players: Hll::from_bytes(r.get(11)).map_err(corrupt("players sketch"))?,
    };
    Ok(GameRow {
        minute: r.get(0),
        game_id: r.get(1),
        agg,
    })
}

pub(crate) fn dead_letter_row(r: &Row) -> Result<DeadLetter, WarehouseError> {
    let seq: String = r.get(1);
    let kind: String = r.get(3);
    Ok(DeadLetter {
        shard: ShardId(r.get(0)),
        sequence: SequenceNumber::parse(&seq).map_err(|e| WarehouseError::corrupt("dead letter sequence", e))?,
        sub_sequence: r.get::<_, i32>(2) as u32,
        kind: DeadLetterKind::from_stored(&kind)?,
        field: r.get(4),
        reason: r.get(5),
        app_id: r.get(6),
        partition_key: r.get(7),
        data: Bytes::from(r.get::<_, Vec<u8>>(8)),
    })
}
