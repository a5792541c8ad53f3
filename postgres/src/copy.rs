//! COPY staging: the encoders that load a commit's rows into temp staging tables through
//! binary `COPY`, and the set-based merges (`DELETE ... USING` + `INSERT ... SELECT`) that
//! move them into the stored tables.
use inlet_rollup::{GameRow, ViewingRow};
use inlet_seams::DeadLetter;
use inlet_sketches::{Hll, QuantileSketch};
use std::pin::pin;
use tokio_postgres::Transaction;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};

pub(crate) const STAGING: &str = "
CREATE TEMP TABLE IF NOT EXISTS inlet_stage_viewing (LIKE inlet_viewing_partials) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS inlet_stage_viewing_viewers (LIKE inlet_viewing_viewers) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS inlet_stage_viewing_startup (LIKE inlet_viewing_startup) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS inlet_stage_games (LIKE inlet_game_partials) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS inlet_stage_game_players (LIKE inlet_game_players) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS inlet_stage_dead_letters (LIKE inlet_dead_letters INCLUDING DEFAULTS) ON COMMIT DELETE ROWS;
";

/// Replaces the stored rows that have a staged twin (the cumulative partials of a commit),
/// the set-based upsert that PostgreSQL and Redshift both run.
const MERGE_VIEWING: &str = "
DELETE FROM inlet_viewing_partials p USING inlet_stage_viewing s
 WHERE p.minute = s.minute AND p.title_id = s.title_id AND p.shard_id = s.shard_id;
INSERT INTO inlet_viewing_partials SELECT * FROM inlet_stage_viewing;
DELETE FROM inlet_viewing_viewers p USING inlet_stage_viewing s
 WHERE p.minute = s.minute AND p.title_id = s.title_id AND p.shard_id = s.shard_id;
INSERT INTO inlet_viewing_viewers SELECT * FROM inlet_stage_viewing_viewers;
DELETE FROM inlet_viewing_startup p USING inlet_stage_viewing s
 WHERE p.minute = s.minute AND p.title_id = s.title_id AND p.shard_id = s.shard_id;
INSERT INTO inlet_viewing_startup SELECT * FROM inlet_stage_viewing_startup;
";

const MERGE_GAMES: &str = "
DELETE FROM inlet_game_partials p USING inlet_stage_games s
 WHERE p.minute = s.minute AND p.game_id = s.game_id AND p.shard_id = s.shard_id;
INSERT INTO inlet_game_partials SELECT * FROM inlet_stage_games;
DELETE FROM inlet_game_players p USING inlet_stage_games s
 WHERE p.minute = s.minute AND p.game_id = s.game_id AND p.shard_id = s.shard_id;
INSERT INTO inlet_game_players SELECT * FROM inlet_stage_game_players;
";

const MERGE_DEAD_LETTERS: &str = "
DELETE FROM inlet_dead_letters d USING inlet_stage_dead_letters s
 WHERE d.shard_id = s.shard_id AND d.sequence = s.sequence AND d.sub_sequence = s.sub_sequence;
INSERT INTO inlet_dead_letters SELECT * FROM inlet_stage_dead_letters;
";

/// Longest reason stored (the column is VARCHAR(4096)).
const MAX_REASON: usize = 4000;

async fn copy_rows(
    tx: &Transaction<'_>,
    sql: &str,
    types: &[Type],
    rows: Vec<Vec<Value>>,
) -> Result<u64, tokio_postgres::Error> {
    let sink = tx.copy_in(sql).await?;
    let mut writer = pin!(BinaryCopyInWriter::new(sink, types));
    for row in rows {
        let refs: Vec<&(dyn ToSql + Sync)> = row.iter().map(|v| &**v as &(dyn ToSql + Sync)).collect();
        writer.as_mut().write(&refs).await?;
    }
    writer.finish().await
}

type Value = Box<dyn ToSql + Sync + Send>;

/// The stored columns of one viewing partial (or compacted final) row.
pub(crate) struct ViewingCopy;

impl ViewingCopy {
    pub(crate) const SQL: &'static str =
        "COPY inlet_stage_viewing (minute, title_id, shard_id, events, plays, watch_ms,
        rebuffers, rebuffer_ms, bitrate_sum_kbps, bitrate_samples, errors, startup_count, startup_min, startup_max,
        viewers, startup_ms) FROM STDIN BINARY";
    pub(crate) const TYPES: [Type; 16] = [
        Type::INT8,
        Type::VARCHAR,
        Type::VARCHAR,
        Type::INT8,
        Type::INT8,
        Type::INT8,
        Type::INT8,
        Type::INT8,
        Type::INT8,
        Type::INT8,
        Type::INT8,
        Type::INT8,
        Type::INT8,
        Type::INT8,
        Type::BYTEA,
        Type::BYTEA,
    ];
    pub(crate) fn row(shard: &str, r: &ViewingRow) -> Vec<Value> {
        let a = &r.agg;
        vec![
            Box::new(r.minute),
            Box::new(r.title_id.clone()),
            Box::new(shard.to_owned()),
            Box::new(a.events),
            Box::new(a.plays),
            Box::new(a.watch_ms),
            Box::new(a.rebuffers),
            Box::new(a.rebuffer_ms),
            Box::new(a.bitrate_sum_kbps),
            Box::new(a.bitrate_samples),
            Box::new(a.errors),
            Box::new(a.startup_ms.count() as i64),
            Box::new(a.startup_ms.min().unwrap_or(0)),
            Box::new(a.startup_ms.max().unwrap_or(0)),
            Box::new(a.viewers.to_bytes()),
            Box::new(a.startup_ms.to_bytes()),
        ]
    }
}

fn register_rows<'a>(minute: i64, key: &'a str, shard: &'a str, hll: &Hll) -> impl Iterator<Item = Vec<Value>> + 'a {
    hll.registers().into_iter().map(move |(reg, rank)| -> Vec<Value> {
        vec![
            Box::new(minute),
            Box::new(key.to_owned()),
            Box::new(shard.to_owned()),
            Box::new(reg as i16),
            Box::new(i16::from(rank)),
        ]
    })
}

fn bucket_rows<'a>(
    minute: i64,
    key: &'a str,
    shard: &'a str,
    s: &'a QuantileSketch,
) -> impl Iterator<Item = Vec<Value>> + 'a {
    let zero = (s.zero_count() > 0).then_some((-1, s.zero_count()));
    zero.into_iter()
        .chain(s.buckets())
        .map(move |(bucket, n)| -> Vec<Value> {
            vec![
                Box::new(minute),
                Box::new(key.to_owned()),
                Box::new(shard.to_owned()),
                Box::new(bucket),
                Box::new(n as i64),
            ]
        })
}

const REGISTER_TYPES: [Type; 5] = [Type::INT8, Type::VARCHAR, Type::VARCHAR, Type::INT2, Type::INT2];
const BUCKET_TYPES: [Type; 5] = [Type::INT8, Type::VARCHAR, Type::VARCHAR, Type::INT4, Type::INT8];

/// The rows of several shards (a shard id, or `*` for compacted rows), staged and merged
/// together.
pub(crate) type Parts<'a, R> = [(&'a str, &'a [R])];

/// Stages and merges viewing rows, each part's under its shard id.
pub(crate) async fn write_viewing(
    tx: &Transaction<'_>,
    parts: &Parts<'_, ViewingRow>,
) -> Result<(), tokio_postgres::Error> {
    if parts.iter().all(|(_, rows)| rows.is_empty()) {
        return Ok(());
    }
    let each = || {
        parts
            .iter()
            .flat_map(|(shard, rows)| rows.iter().map(move |r| (*shard, r)))
    };
    // Rows are built before each await: lazy iterators held across an await trip a known
    // limit of the compiler's Send inference.
    let partials: Vec<_> = each().map(|(shard, r)| ViewingCopy::row(shard, r)).collect();
    copy_rows(tx, ViewingCopy::SQL, &ViewingCopy::TYPES, partials).await?;
    let registers: Vec<_> = each()
        .flat_map(|(shard, r)| register_rows(r.minute, &r.title_id, shard, &r.agg.viewers))
        .collect();
    copy_rows(
        tx,
        "COPY inlet_stage_viewing_viewers (minute, title_id, shard_id, reg, rank) FROM STDIN BINARY",
        &REGISTER_TYPES,
        registers,
    )
    .await?;
    let buckets: Vec<_> = each()
        .flat_map(|(shard, r)| bucket_rows(r.minute, &r.title_id, shard, &r.agg.startup_ms))
        .collect();
    copy_rows(
        tx,
        "COPY inlet_stage_viewing_startup (minute, title_id, shard_id, bucket, n) FROM STDIN BINARY",
        &BUCKET_TYPES,
        buckets,
    )
    .await?;
    tx.batch_execute(MERGE_VIEWING).await
}

/// Stages and merges game rows, each part's under its shard id.
pub(crate) async fn write_games(tx: &Transaction<'_>, parts: &Parts<'_, GameRow>) -> Result<(), tokio_postgres::Error> {
    if parts.iter().all(|(_, rows)| rows.is_empty()) {
        return Ok(());
    }
    let each = || {
        parts
            .iter()
            .flat_map(|(shard, rows)| rows.iter().map(move |r| (*shard, r)))
    };
    let partials: Vec<_> = each()
        .map(|(shard, r)| -> Vec<Value> {
            let a = &r.agg;
            vec![
                Box::new(r.minute),
                Box::new(r.game_id.clone()),
                Box::new(shard.to_owned()),
                Box::new(a.events),
                Box::new(a.sessions),
                Box::new(a.shots),
                Box::new(a.hits),
                Box::new(a.kills),
                Box::new(a.deaths),
                Box::new(a.purchases),
                Box::new(a.damage),
                Box::new(a.revenue_cents),
                Box::new(a.players.to_bytes()),
            ]
        })
        .collect();
    copy_rows(
        tx,
        "COPY inlet_stage_games (minute, game_id, shard_id, events, sessions, shots, hits, kills, deaths, purchases,
            damage, revenue_cents, players) FROM STDIN BINARY",
        &[
            Type::INT8,
            Type::VARCHAR,
            Type::VARCHAR,
            Type::INT8,
            Type::INT8,
            Type::INT8,
            Type::INT8,
            Type::INT8,
            Type::INT8,
            Type::INT8,
            Type::INT8,
            Type::INT8,
            Type::BYTEA,
        ],
        partials,
    )
    .await?;
    let registers: Vec<_> = each()
        .flat_map(|(shard, r)| register_rows(r.minute, &r.game_id, shard, &r.agg.players))
        .collect();
    copy_rows(
        tx,
        "COPY inlet_stage_game_players (minute, game_id, shard_id, reg, rank) FROM STDIN BINARY",
        &REGISTER_TYPES,
        registers,
    )
    .await?;
    tx.batch_execute(MERGE_GAMES).await
}

pub(crate) async fn write_dead_letters(
    tx: &Transaction<'_>,
    letters: &[&DeadLetter],
) -> Result<(), tokio_postgres::Error> {
    if letters.is_empty() {
        return Ok(());
    }
    let staged: Vec<_> = letters
        .iter()
        .map(|d| -> Vec<Value> {
            let reason: String = d.reason.chars().take(MAX_REASON).collect();
            vec![
                Box::new(d.shard.0.clone()),
                Box::new(d.sequence.as_str().to_owned()),
                Box::new(d.sub_sequence as i32),
                Box::new(d.kind.as_str()),
                Box::new(d.field.clone()),
                Box::new(reason),
                Box::new(d.app_id.clone()),
                Box::new(d.partition_key.clone()),
                Box::new(d.data.to_vec()),
            ]
        })
        .collect();
    copy_rows(
        tx,
        "COPY inlet_stage_dead_letters (shard_id, sequence, sub_sequence, kind, field, reason, app_id, partition_key, data)
         FROM STDIN BINARY",
        &[
            Type::VARCHAR, Type::VARCHAR, Type::INT4, Type::VARCHAR, Type::VARCHAR, Type::VARCHAR, Type::VARCHAR,
            Type::VARCHAR, Type::BYTEA,
        ],
        staged,
    )
    .await?;
    tx.batch_execute(MERGE_DEAD_LETTERS).await
}
