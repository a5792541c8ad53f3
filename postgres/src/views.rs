//! Views that merge per-shard partial rollups into final ones, per minute, hour and day:
//! `inlet_viewing_per_minute|hour|day` and `inlet_games_per_minute|hour|day`.
//!
//! Sums are `SUM`s. Distinct counts union the HyperLogLog register rows (`MAX(rank)` per
//! register) and apply the estimator of `inlet_sketches::Hll` with the same float
//! operations, so the numbers equal the Rust ones. Percentiles merge the DDSketch bucket
//! rows (`SUM(n)` per bucket), walk them with a running sum, and report the bucket values
//! of `inlet_ddsketch_buckets` clamped to the exact min and max, as
//! `inlet_sketches::QuantileSketch::quantile` does.

/// The resolutions: view suffix and minutes per period.
pub const RESOLUTIONS: [(&str, i64); 3] = [("minute", 1), ("hour", 60), ("day", 1440)];

fn period(div: i64) -> String {
    if div == 1 {
        "minute".into()
    } else {
        format!("(minute / {div}) * {div}")
    }
}

const F: &str = "DOUBLE PRECISION";

/// SQL of the HyperLogLog estimate over `nonzero` registers of total weight `weight`
/// (sum of 2^(51 - rank)); mirrors `Hll::estimate`.
fn hll_estimate(nonzero: &str, weight: &str) -> String {
    let m = format!("CAST(16384 AS {F})");
    let zeros = format!("(16384 - {nonzero})");
    let total = format!("(CAST({zeros} AS NUMERIC) * 2251799813685248 + {weight})");
    let alpha = format!("(CAST(0.7213 AS {F}) / (CAST(1.0 AS {F}) + CAST(1.079 AS {F}) / {m}))");
    let raw = format!("({alpha} * {m} * {m} / (CAST({total} AS {F}) / CAST(2251799813685248 AS {F})))");
    format!(
        "CAST(FLOOR(CASE WHEN {raw} <= CAST(2.5 AS {F}) * {m} AND {zeros} > 0 \
         THEN {m} * LN({m} / CAST({zeros} AS {F})) ELSE {raw} END + 0.5) AS BIGINT)"
    )
}

/// Registers unioned per period and key, then the estimate.
fn hll_subquery(table: &str, key: &str, div: i64, column: &str) -> String {
    let p = period(div);
    let est = hll_estimate("COUNT(*)", "SUM(CAST(POWER(2, 51 - rank) AS NUMERIC))");
    format!(
        "(SELECT period_minute, {key}, {est} AS {column} FROM \
           (SELECT {p} AS period_minute, {key}, reg, MAX(rank) AS rank FROM {table} GROUP BY 1, 2, 3) r \
         GROUP BY period_minute, {key})"
    )
}

/// The bucket that holds quantile `q` per period and title (NULL where the rank rule
/// answers min or max directly).
fn quantile_buckets(div: i64) -> String {
    let p = period(div);
    let pick = |q: &str, name: &str| {
        format!("MIN(CASE WHEN CAST(cum AS {F}) > CAST({q} AS {F}) * CAST(total - 1 AS {F}) THEN bucket END) AS {name}")
    };
    format!(
        "(SELECT period_minute, title_id, {}, {}, {} FROM \
           (SELECT period_minute, title_id, bucket, \
                   SUM(n) OVER (PARTITION BY period_minute, title_id ORDER BY bucket ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS cum, \
                   SUM(n) OVER (PARTITION BY period_minute, title_id) AS total \
            FROM (SELECT {p} AS period_minute, title_id, bucket, SUM(n) AS n FROM inlet_viewing_startup GROUP BY 1, 2, 3) b) c \
         GROUP BY period_minute, title_id)",
        pick("0.5", "b50"),
        pick("0.95", "b95"),
        pick("0.99", "b99"),
    )
}

/// The quantile value: the rank rule's exact ends, else the bucket value clamped.
fn quantile_value(q: &str, bucket_alias: &str) -> String {
    let rank = format!("CAST({q} AS {F}) * CAST(s.startup_count - 1 AS {F})");
    format!(
        "CASE WHEN s.startup_count = 0 THEN NULL \
              WHEN {rank} < 1 THEN s.startup_min \
              WHEN {rank} >= CAST(s.startup_count - 1 AS {F}) THEN s.startup_max \
              ELSE LEAST(GREATEST(CAST(FLOOR({bucket_alias}.value + 0.5) AS BIGINT), s.startup_min), s.startup_max) END"
    )
}

fn viewing_view(name: &str, div: i64) -> String {
    let p = period(div);
    format!(
        "CREATE VIEW inlet_viewing_per_{name} AS
SELECT s.period_minute AS minute,
       TIMESTAMP 'epoch' + s.period_minute * INTERVAL '1 minute' AS period_start,
       s.title_id, s.events, s.plays, COALESCE(h.viewers, 0) AS viewers, s.watch_ms, s.rebuffers, s.rebuffer_ms,
       s.bitrate_sum_kbps, s.bitrate_samples, s.errors, s.startup_count,
       {p50} AS startup_p50_ms, {p95} AS startup_p95_ms, {p99} AS startup_p99_ms
FROM (SELECT {p} AS period_minute, title_id, CAST(SUM(events) AS BIGINT) AS events, CAST(SUM(plays) AS BIGINT) AS plays, CAST(SUM(watch_ms) AS BIGINT) AS watch_ms,
             CAST(SUM(rebuffers) AS BIGINT) AS rebuffers, CAST(SUM(rebuffer_ms) AS BIGINT) AS rebuffer_ms, CAST(SUM(bitrate_sum_kbps) AS BIGINT) AS bitrate_sum_kbps,
             CAST(SUM(bitrate_samples) AS BIGINT) AS bitrate_samples, CAST(SUM(errors) AS BIGINT) AS errors, CAST(SUM(startup_count) AS BIGINT) AS startup_count,
             MIN(CASE WHEN startup_count > 0 THEN startup_min END) AS startup_min,
             MAX(CASE WHEN startup_count > 0 THEN startup_max END) AS startup_max
      FROM inlet_viewing_partials GROUP BY 1, 2) s
LEFT JOIN {hll} h ON h.period_minute = s.period_minute AND h.title_id = s.title_id
LEFT JOIN {qb} q ON q.period_minute = s.period_minute AND q.title_id = s.title_id
LEFT JOIN inlet_ddsketch_buckets v50 ON v50.bucket = q.b50
LEFT JOIN inlet_ddsketch_buckets v95 ON v95.bucket = q.b95
LEFT JOIN inlet_ddsketch_buckets v99 ON v99.bucket = q.b99;
",
        hll = hll_subquery("inlet_viewing_viewers", "title_id", div, "viewers"),
        qb = quantile_buckets(div),
        p50 = quantile_value("0.5", "v50"),
        p95 = quantile_value("0.95", "v95"),
        p99 = quantile_value("0.99", "v99"),
    )
}

fn games_view(name: &str, div: i64) -> String {
    let p = period(div);
    format!(
        "CREATE VIEW inlet_games_per_{name} AS
SELECT s.period_minute AS minute,
       TIMESTAMP 'epoch' + s.period_minute * INTERVAL '1 minute' AS period_start,
       s.game_id, s.events, s.sessions, COALESCE(h.players, 0) AS players, s.shots, s.hits, s.kills, s.deaths,
       s.purchases, s.damage, s.revenue_cents
FROM (SELECT {p} AS period_minute, game_id, CAST(SUM(events) AS BIGINT) AS events, CAST(SUM(sessions) AS BIGINT) AS sessions, CAST(SUM(shots) AS BIGINT) AS shots,
             CAST(SUM(hits) AS BIGINT) AS hits, CAST(SUM(kills) AS BIGINT) AS kills, CAST(SUM(deaths) AS BIGINT) AS deaths, CAST(SUM(purchases) AS BIGINT) AS purchases,
             CAST(SUM(damage) AS BIGINT) AS damage, CAST(SUM(revenue_cents) AS BIGINT) AS revenue_cents
      FROM inlet_game_partials GROUP BY 1, 2) s
LEFT JOIN {hll} h ON h.period_minute = s.period_minute AND h.game_id = s.game_id;
",
        hll = hll_subquery("inlet_game_players", "game_id", div, "players"),
    )
}

/// `CREATE VIEW` statements for every view.
pub fn create_all() -> String {
    RESOLUTIONS
        .iter()
        .flat_map(|(name, div)| [viewing_view(name, *div), games_view(name, *div)])
        .collect()
}
