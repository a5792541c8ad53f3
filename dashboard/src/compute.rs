//! A [`Query`]'s answer, computed from final rollup rows: per metric, one accumulator per
//! (group, bucket) and one per group over the whole range, then the top groups by their value
//! over the range. [`Aggregation`] is pure; [`run`] feeds it from a warehouse, a bounded
//! slice of minutes at a time so memory holds accumulators, not a day of rows.
use crate::query::{Family, Group, Metric, Query, Resolution, Unit};
use inlet_rollup::{GameAgg, GameRow, ViewingAgg, ViewingRow};
use inlet_seams::{Warehouse, WarehouseError};
use inlet_sketches::{Hll, QuantileSketch};
use serde::Serialize;
use std::cmp::Ordering;
use std::collections::HashMap;

/// Minutes of rows read from the warehouse per call.
const CHUNK_MINUTES: i64 = 60;

/// A value: integers stay integers in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Num {
    /// Counts, sums, milliseconds, cents.
    Int(i64),
    /// Ratios.
    Float(f64),
}

impl Num {
    fn as_f64(self) -> f64 {
        match self {
            Num::Int(i) => i as f64,
            Num::Float(f) => f,
        }
    }
}

/// The answer to a query.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueryResult {
    /// Start of the first bucket, ms since the epoch.
    pub from_ms: i64,
    /// End of the last bucket (exclusive).
    pub to_ms: i64,
    /// Bucket width.
    pub resolution: Resolution,
    /// What series are keyed by.
    pub group: Group,
    /// Start of each bucket, ms since the epoch.
    pub buckets: Vec<i64>,
    /// One entry per metric asked for, in the order asked.
    pub metrics: Vec<MetricResult>,
}

/// One metric's answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricResult {
    /// Which.
    pub metric: Metric,
    /// For people.
    pub label: &'static str,
    /// Unit of every value.
    pub unit: Unit,
    /// Groups with any data in the range (series returned: at most `top` of them).
    pub groups: usize,
    /// The value over every group and the whole range (distinct counts and percentiles are
    /// merged, not added); `null` when undefined (a ratio over nothing, no samples).
    pub overall: Option<Num>,
    /// The top groups by `total`, highest first (ties by key).
    pub series: Vec<Series>,
}

/// One group's series.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Series {
    /// Title or game id.
    pub key: String,
    /// The value over the whole range.
    pub total: Option<Num>,
    /// The value per bucket (sums are 0 where there is no row; ratios and percentiles `null`).
    pub values: Vec<Option<Num>>,
}

/// What one row adds to a metric's accumulator.
enum Contribution<'a> {
    Sum(i64),
    Ratio(i64, i64),
    Distinct(&'a Hll),
    Quantile(&'a QuantileSketch),
}

/// A row's aggregates, of either family.
#[derive(Clone, Copy)]
enum Agg<'a> {
    Viewing(&'a ViewingAgg),
    Game(&'a GameAgg),
}

fn contribution(metric: Metric, agg: Agg<'_>) -> Option<Contribution<'_>> {
    use Contribution as C;
    Some(match (metric, agg) {
        (Metric::Plays, Agg::Viewing(a)) => C::Sum(a.plays),
        (Metric::Viewers, Agg::Viewing(a)) => C::Distinct(&a.viewers),
        (Metric::WatchTime, Agg::Viewing(a)) => C::Sum(a.watch_ms),
        (Metric::RebufferRatio, Agg::Viewing(a)) => C::Ratio(a.rebuffer_ms, a.watch_ms),
        (Metric::StartupP95, Agg::Viewing(a)) => C::Quantile(&a.startup_ms),
        (Metric::Bitrate, Agg::Viewing(a)) => C::Ratio(a.bitrate_sum_kbps, a.bitrate_samples),
        (Metric::Sessions, Agg::Game(a)) => C::Sum(a.sessions),
        (Metric::Players, Agg::Game(a)) => C::Distinct(&a.players),
        (Metric::Shots, Agg::Game(a)) => C::Sum(a.shots),
        (Metric::Hits, Agg::Game(a)) => C::Sum(a.hits),
        (Metric::HitRate, Agg::Game(a)) => C::Ratio(a.hits, a.shots),
        (Metric::Kills, Agg::Game(a)) => C::Sum(a.kills),
        (Metric::Revenue, Agg::Game(a)) => C::Sum(a.revenue_cents),
        _ => return None, // a metric of the other family: `Query` rules it out
    })
}

/// One metric's accumulators, flat: cell `group * stride + slot`, where slots `0..buckets`
/// are the buckets and slot `buckets` is the whole range. Typed per kind so that sums cost
/// 8 bytes a cell, not the size of a sketch.
enum Cells {
    Sum(Vec<i64>),
    Ratio(Vec<(i64, i64)>),
    Distinct(Vec<Hll>),
    Quantile(Vec<QuantileSketch>),
}

impl Cells {
    fn for_metric(metric: Metric) -> Cells {
        match metric {
            Metric::Viewers | Metric::Players => Cells::Distinct(Vec::new()),
            Metric::StartupP95 => Cells::Quantile(Vec::new()),
            Metric::RebufferRatio | Metric::HitRate | Metric::Bitrate => Cells::Ratio(Vec::new()),
            _ => Cells::Sum(Vec::new()),
        }
    }

    fn grow(&mut self, n: usize) {
        match self {
            Cells::Sum(v) => v.resize(v.len() + n, 0),
            Cells::Ratio(v) => v.resize(v.len() + n, (0, 0)),
            Cells::Distinct(v) => v.resize_with(v.len() + n, Hll::new),
            Cells::Quantile(v) => v.resize_with(v.len() + n, QuantileSketch::new),
        }
    }

    fn add(&mut self, i: usize, c: &Contribution<'_>) {
        match (self, c) {
            (Cells::Sum(v), Contribution::Sum(n)) => v[i] += n,
            (Cells::Ratio(v), Contribution::Ratio(n, d)) => {
                v[i].0 += n;
                v[i].1 += d;
            }
            (Cells::Distinct(v), Contribution::Distinct(h)) => v[i].merge(h),
            (Cells::Quantile(v), Contribution::Quantile(q)) => v[i].merge(q),
            _ => {} // `for_metric` and `contribution` agree on the kind
        }
    }

    fn contribution(&self, i: usize) -> Contribution<'_> {
        match self {
            Cells::Sum(v) => Contribution::Sum(v[i]),
            Cells::Ratio(v) => Contribution::Ratio(v[i].0, v[i].1),
            Cells::Distinct(v) => Contribution::Distinct(&v[i]),
            Cells::Quantile(v) => Contribution::Quantile(&v[i]),
        }
    }

    fn value(&self, i: usize) -> Option<Num> {
        match self {
            Cells::Sum(v) => Some(Num::Int(v[i])),
            Cells::Ratio(v) => (v[i].1 != 0).then(|| Num::Float(v[i].0 as f64 / v[i].1 as f64)),
            Cells::Distinct(v) => Some(Num::Int(v[i].estimate() as i64)),
            Cells::Quantile(v) => v[i].quantile(0.95).map(Num::Int),
        }
    }
}

/// Accumulates rows for a query; [`Aggregation::finish`] gives the answer.
pub struct Aggregation {
    query: Query,
    /// Cells per group: the buckets and the whole range.
    stride: usize,
    keys: Vec<String>,
    index: HashMap<String, usize>,
    /// One per metric of the query, in its order.
    cells: Vec<Cells>,
}

impl std::fmt::Debug for Aggregation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Aggregation")
            .field("query", &self.query)
            .field("groups", &self.keys.len())
            .finish_non_exhaustive()
    }
}

impl Aggregation {
    /// An empty aggregation for `query`.
    pub fn new(query: &Query) -> Self {
        Self {
            stride: query.buckets() + 1,
            cells: query.metrics.iter().map(|&m| Cells::for_metric(m)).collect(),
            query: query.clone(),
            keys: Vec::new(),
            index: HashMap::new(),
        }
    }

    /// Adds final viewing rows (rows outside the range, or of a games query, are ignored).
    pub fn add_viewing(&mut self, rows: &[ViewingRow]) {
        if self.query.family() == Family::Viewing {
            for r in rows {
                self.add(r.minute, &r.title_id, Agg::Viewing(&r.agg));
            }
        }
    }

    /// Adds final game rows (rows outside the range, or of a viewing query, are ignored).
    pub fn add_games(&mut self, rows: &[GameRow]) {
        if self.query.family() == Family::Games {
            for r in rows {
                self.add(r.minute, &r.game_id, Agg::Game(&r.agg));
            }
        }
    }

    fn add(&mut self, minute: i64, key: &str, agg: Agg<'_>) {
        let q = &self.query;
        if minute < q.from_minute || minute >= q.to_minute {
            return;
        }
        let bucket = ((minute - q.from_minute) / q.resolution.minutes()) as usize;
        let group = match self.index.get(key) {
            Some(&g) => g,
            None => {
                let g = self.keys.len();
                self.keys.push(key.to_owned());
                self.index.insert(key.to_owned(), g);
                for c in &mut self.cells {
                    c.grow(self.stride);
                }
                g
            }
        };
        let base = group * self.stride;
        for (metric, cells) in q.metrics.iter().zip(&mut self.cells) {
            if let Some(c) = contribution(*metric, agg) {
                cells.add(base + bucket, &c);
                cells.add(base + self.stride - 1, &c);
            }
        }
    }

    /// The answer.
    pub fn finish(self) -> QueryResult {
        let q = &self.query;
        let stride = self.stride;
        let buckets = stride - 1;
        let metrics = q
            .metrics
            .iter()
            .zip(&self.cells)
            .map(|(&metric, cells)| {
                let total = |g: usize| cells.value(g * stride + buckets);
                let mut order: Vec<(usize, Option<Num>)> = (0..self.keys.len()).map(|g| (g, total(g))).collect();
                order.sort_by(|a, b| by_value_desc(a.1, b.1).then_with(|| self.keys[a.0].cmp(&self.keys[b.0])));
                let mut overall = Cells::for_metric(metric);
                overall.grow(1);
                for g in 0..self.keys.len() {
                    overall.add(0, &cells.contribution(g * stride + buckets));
                }
                MetricResult {
                    metric,
                    label: metric.label(),
                    unit: metric.unit(),
                    groups: self.keys.len(),
                    overall: overall.value(0),
                    series: order
                        .into_iter()
                        .take(q.top)
                        .map(|(g, total)| Series {
                            key: self.keys[g].clone(),
                            total,
                            values: (0..buckets).map(|b| cells.value(g * stride + b)).collect(),
                        })
                        .collect(),
                }
            })
            .collect();
        let res = q.resolution.minutes();
        QueryResult {
            from_ms: q.from_minute * 60_000,
            to_ms: q.to_minute * 60_000,
            resolution: q.resolution,
            group: q.group,
            buckets: (0..buckets as i64)
                .map(|b| (q.from_minute + b * res) * 60_000)
                .collect(),
            metrics,
        }
    }
}

/// Highest first; undefined values last.
fn by_value_desc(a: Option<Num>, b: Option<Num>) -> Ordering {
    match (a, b) {
        (Some(a), Some(b)) => b.as_f64().total_cmp(&a.as_f64()),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

/// Answers `query` from the warehouse's final rollups.
pub async fn run(warehouse: &dyn Warehouse, query: &Query) -> Result<QueryResult, WarehouseError> {
    let mut agg = Aggregation::new(query);
    let mut from = query.from_minute;
    while from < query.to_minute {
        let to = (from + CHUNK_MINUTES).min(query.to_minute);
        match query.family() {
            Family::Viewing => agg.add_viewing(&warehouse.viewing_rollups(from, to).await?),
            Family::Games => agg.add_games(&warehouse.game_rollups(from, to).await?),
        }
        from = to;
    }
    Ok(agg.finish())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn viewing(minute: i64, title: &str, plays: i64, viewers: &[&str], startups: &[i64]) -> ViewingRow {
        let mut agg = ViewingAgg {
            events: plays,
            plays,
            watch_ms: 1_000 * plays,
            rebuffer_ms: 10 * plays,
            ..ViewingAgg::default()
        };
        for v in viewers {
            agg.viewers.insert(v.as_bytes());
        }
        for s in startups {
            agg.startup_ms.insert(*s);
        }
        ViewingRow {
            minute,
            title_id: title.into(),
            agg,
        }
    }

    fn query(metrics: &[Metric], resolution: Resolution, from: i64, to: i64, top: usize) -> Query {
        Query {
            metrics: metrics.to_vec(),
            group: Group::Title,
            resolution,
            from_minute: from,
            to_minute: to,
            top,
        }
    }

    #[test]
    fn sums_per_bucket_and_ranks_by_the_range_total() {
        let q = query(&[Metric::Plays], Resolution::Hour, 0, 180, 2);
        let mut a = Aggregation::new(&q);
        a.add_viewing(&[
            viewing(0, "a", 5, &[], &[]),
            viewing(59, "a", 2, &[], &[]),
            viewing(61, "b", 4, &[], &[]),
            viewing(179, "b", 3, &[], &[]),
            viewing(120, "c", 6, &[], &[]),
            viewing(180, "c", 100, &[], &[]), // outside [0, 180)
            viewing(-1, "c", 100, &[], &[]),
        ]);
        let r = a.finish();
        assert_eq!(r.buckets, [0, 3_600_000, 7_200_000]);
        assert_eq!((r.from_ms, r.to_ms), (0, 10_800_000));
        let m = &r.metrics[0];
        assert_eq!((m.groups, m.overall), (3, Some(Num::Int(20))));
        // a and b tie at 7: key order; c (6) is cut by top=2.
        let keys: Vec<_> = m.series.iter().map(|s| s.key.as_str()).collect();
        assert_eq!(keys, ["a", "b"]);
        assert_eq!(
            m.series[0].values,
            [Some(Num::Int(7)), Some(Num::Int(0)), Some(Num::Int(0))]
        );
        assert_eq!(
            m.series[1].values,
            [Some(Num::Int(0)), Some(Num::Int(4)), Some(Num::Int(3))]
        );
        assert_eq!(m.series[1].total, Some(Num::Int(7)));
    }

    #[test]
    fn distinct_counts_and_percentiles_merge_instead_of_adding() {
        let q = query(&[Metric::Viewers, Metric::StartupP95], Resolution::Minute, 10, 12, 10);
        let mut a = Aggregation::new(&q);
        a.add_viewing(&[
            viewing(10, "a", 1, &["p1", "p2"], &[100]),
            viewing(11, "a", 1, &["p2", "p3"], &[200, 300]),
            viewing(11, "b", 1, &["p1"], &[]),
        ]);
        let r = a.finish();
        let viewers = &r.metrics[0];
        assert_eq!(viewers.series[0].key, "a");
        assert_eq!(viewers.series[0].total, Some(Num::Int(3)));
        assert_eq!(viewers.series[0].values, [Some(Num::Int(2)), Some(Num::Int(2))]);
        assert_eq!(viewers.overall, Some(Num::Int(3)));
        let p95 = &r.metrics[1];
        let mut all = QuantileSketch::new();
        for v in [100, 200, 300] {
            all.insert(v);
        }
        assert_eq!(p95.series[0].total, all.quantile(0.95).map(Num::Int));
        // b has no startup samples: undefined, ranked last, null per bucket.
        assert_eq!(p95.series[1].key, "b");
        assert_eq!(p95.series[1].values, [None, None]);
        assert_eq!(p95.series[1].total, None);
    }

    #[test]
    fn ratios_divide_the_sums_and_are_null_over_nothing() {
        let q = Query {
            metrics: vec![Metric::HitRate, Metric::Revenue],
            group: Group::Game,
            resolution: Resolution::Minute,
            from_minute: 0,
            to_minute: 2,
            top: 10,
        };
        let game = |minute, id: &str, shots, hits, revenue_cents| GameRow {
            minute,
            game_id: id.into(),
            agg: GameAgg {
                shots,
                hits,
                revenue_cents,
                ..GameAgg::default()
            },
        };
        let mut a = Aggregation::new(&q);
        a.add_games(&[game(0, "g", 4, 1, 250), game(1, "g", 0, 0, 0), game(1, "h", 2, 2, 99)]);
        a.add_viewing(&[viewing(0, "ignored", 9, &[], &[])]);
        let r = a.finish();
        let rate = &r.metrics[0];
        assert_eq!(rate.series[0].key, "h");
        assert_eq!(rate.series[1].values, [Some(Num::Float(0.25)), None]);
        assert_eq!(rate.overall, Some(Num::Float(0.5)));
        assert_eq!(r.metrics[1].overall, Some(Num::Int(349)));
        assert_eq!(
            serde_json::to_value(&r.metrics[1].series[0]).unwrap(),
            serde_json::json!({"key": "g", "total": 250, "values": [250, 0]})
        );
    }

    #[test]
    fn mean_bitrate_divides_the_summed_bitrates_by_the_summed_samples() {
        let q = query(&[Metric::Bitrate], Resolution::Minute, 0, 2, 10);
        let bitrate = |minute, title: &str, sum, samples| {
            let mut row = viewing(minute, title, 1, &[], &[]);
            (row.agg.bitrate_sum_kbps, row.agg.bitrate_samples) = (sum, samples);
            row
        };
        let mut a = Aggregation::new(&q);
        a.add_viewing(&[
            bitrate(0, "a", 3_000, 1),
            bitrate(1, "a", 1_000, 3),
            bitrate(0, "b", 0, 0),
        ]);
        let m = &a.finish().metrics[0];
        assert_eq!(m.unit, Unit::Kbps);
        // 4000 kbps over 4 samples, not the mean of the minutes' means (1666.7).
        assert_eq!(m.series[0].total, Some(Num::Float(1_000.0)));
        assert_eq!(
            m.series[0].values,
            [Some(Num::Float(3_000.0)), Some(Num::Float(1_000.0 / 3.0))]
        );
        // b has no samples: undefined, ranked last, and adds nothing to the overall mean.
        assert_eq!((m.series[1].key.as_str(), m.series[1].total), ("b", None));
        assert_eq!(m.overall, Some(Num::Float(1_000.0)));
    }

    #[test]
    fn an_empty_range_has_buckets_and_no_series() {
        let r = Aggregation::new(&query(&[Metric::Plays], Resolution::Minute, 0, 3, 10)).finish();
        assert_eq!(r.buckets.len(), 3);
        assert!(r.metrics[0].series.is_empty());
        assert_eq!(r.metrics[0].overall, Some(Num::Int(0)));
    }
}
