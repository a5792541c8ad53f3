//! Summaries read from the warehouse.
use crate::backends::Locations;
use crate::human::{count, signed};
use crate::stdout::say;
use anyhow::Result;
use inlet_dashboard::compute::{Aggregation, Num, QueryResult};
use inlet_dashboard::query::{Group, Metric, Query, Resolution};
use inlet_seams::{Totals, Warehouse};
use inlet_workload::Verdict;
use std::collections::HashMap;
use std::process::ExitCode;

/// `inlet report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    #[command(flatten)]
    pub locations: Locations,
    /// How many titles and games to list.
    #[arg(long, default_value_t = 5)]
    pub top: usize,
}

pub async fn run(args: ReportArgs) -> Result<ExitCode> {
    let warehouse = args.locations.existing_warehouse().await?;
    let totals = warehouse.totals().await?;
    say!("aggregated     {:>12}", signed(totals.aggregated));
    print_dead_letters(&totals);
    print_accounting(&totals, None);
    print_top(warehouse.as_ref(), args.top).await?;
    Ok(ExitCode::SUCCESS)
}

pub fn print_dead_letters(totals: &Totals) {
    say!("dead-lettered  {:>12}", signed(totals.dead_lettered()));
    for (kind, field, n) in &totals.dead_letters {
        say!(
            "    {:<14} {:<36} {:>8}",
            kind.as_str(),
            field.as_deref().unwrap_or("-"),
            signed(*n)
        );
    }
}

/// Prints the duplicates and the accounting identity `read = aggregated + dead-lettered +
/// duplicates`; with a verdict on the generator's expectation, also whether every distinct
/// event generated is aggregated or dead-lettered, and the generator's copies.
pub fn print_accounting(totals: &Totals, verdict: Option<&Verdict>) {
    say!("duplicates     {:>12}", signed(totals.duplicates));
    say!(
        "accounting     read = aggregated + dead-lettered + duplicates: {} = {} + {} + {}",
        signed(totals.read()),
        signed(totals.aggregated),
        signed(totals.dead_lettered()),
        signed(totals.duplicates),
    );
    let Some(verdict) = verdict else { return };
    let ok = verdict.distinct_holds();
    say!(
        "exactly once   distinct events generated = aggregated + dead-lettered: {} {} {} + {}  {}",
        signed(verdict.distinct.expected),
        if ok { "=" } else { "≠" },
        signed(totals.aggregated),
        signed(totals.dead_lettered()),
        if ok { "(holds)" } else { "(BROKEN)" }
    );
    say!(
        "               duplicates: {} from the generator's copies, {} dropped",
        signed(verdict.duplicates.expected),
        signed(totals.duplicates)
    );
}

/// Prints the verdict lines of `inlet verify` (and the demo): the accounting, what differs
/// (dead letters, up to 5 rows, too few duplicates), and whether the rollups are exact.
pub fn print_verdict(totals: &Totals, verdict: &Verdict) {
    print_accounting(totals, Some(verdict));
    for d in verdict.wrong_dead_letters() {
        say!(
            "  dead letters {} {}: expected {}, got {}",
            d.kind,
            d.field.as_deref().unwrap_or("-"),
            signed(d.count.expected),
            signed(d.count.got)
        );
    }
    for m in verdict.mismatches.iter().take(5) {
        say!("  mismatch: {}: {}", m.key, m.detail);
    }
    if !verdict.duplicates_hold() {
        say!(
            "  duplicates: expected at least {}, got {}",
            signed(verdict.duplicates.expected),
            signed(verdict.duplicates.got)
        );
    }
    let (viewing_rows, game_rows) = verdict.expected_rows;
    say!(
        "rollups equal the generator's totals exactly: {} ({} viewing rows, {} game rows, {} mismatches)",
        if verdict.rollups_exact() { "yes" } else { "NO" },
        count(viewing_rows as u64),
        count(game_rows as u64),
        count(verdict.mismatches.len() as u64)
    );
}

/// One column of a top table: a dashboard metric's total, headed and shown the report's way.
struct Column {
    metric: Metric,
    heading: &'static str,
    width: usize,
    show: fn(Num) -> String,
}

/// A top table of `inlet report` (and the demo): the dashboard's answer to one query over
/// the whole warehouse, its groups ranked as the dashboard ranks them.
struct Table {
    caption: &'static str,
    key: &'static str,
    group: Group,
    /// What the groups are ranked by (one of the columns).
    rank_by: Metric,
    columns: &'static [Column],
}

const TITLES: Table = Table {
    caption: "top titles by plays:",
    key: "title",
    group: Group::Title,
    rank_by: Metric::Plays,
    columns: &[
        column(Metric::Plays, "plays", 8, whole),
        column(Metric::Viewers, "viewers", 9, whole),
        column(Metric::WatchTime, "watch h", 11, hours),
        column(Metric::RebufferRatio, "rebuf %", 10, percent_2),
        column(Metric::StartupP95, "p95 start", 10, millis),
        column(Metric::Bitrate, "kbps", 9, whole),
    ],
};

const GAMES: Table = Table {
    caption: "top games by revenue:",
    key: "game",
    group: Group::Game,
    rank_by: Metric::Revenue,
    columns: &[
        column(Metric::Sessions, "sessions", 8, whole),
        column(Metric::Players, "players", 9, whole),
        column(Metric::Shots, "shots", 9, whole),
        column(Metric::HitRate, "hit %", 8, percent_1),
        column(Metric::Kills, "kills", 8, whole),
        column(Metric::Revenue, "revenue", 12, dollars),
    ],
};

const fn column(metric: Metric, heading: &'static str, width: usize, show: fn(Num) -> String) -> Column {
    Column {
        metric,
        heading,
        width,
        show,
    }
}

impl Table {
    /// The dashboard's query for this table: every column's metric, the ranking one first
    /// (the dashboard ranks by it), over whole days spanning `minutes` (the rows' minutes) in
    /// day buckets (the table shows totals only), every group (each column's total is looked
    /// up by key, since every metric's series are ranked by its own totals).
    fn query(&self, minutes: impl Iterator<Item = i64>) -> Query {
        let mut metrics: Vec<Metric> = self.columns.iter().map(|c| c.metric).collect();
        metrics.sort_by_key(|&m| m != self.rank_by);
        let day = Resolution::Day.minutes();
        let (first, last) = minutes.fold((i64::MAX, i64::MIN), |(lo, hi), m| (lo.min(m), hi.max(m)));
        // No rows: an empty day, answered with no groups.
        let (from_minute, to_minute) = if first > last {
            (0, day)
        } else {
            (first.div_euclid(day) * day, (last.div_euclid(day) + 1) * day)
        };
        Query {
            metrics,
            group: self.group,
            resolution: Resolution::Day,
            from_minute,
            to_minute,
            top: usize::MAX,
        }
    }

    /// The caption, the heading and the top `n` groups of the answer to [`Table::query`].
    fn lines(&self, result: &QueryResult, n: usize) -> Vec<String> {
        let cells = |key: &str, values: Vec<String>| {
            let mut line = format!("    {key:<12}");
            for (c, v) in self.columns.iter().zip(values) {
                line += &format!(" {v:>w$}", w = c.width);
            }
            line
        };
        let mut out = vec![
            self.caption.to_owned(),
            cells(self.key, self.columns.iter().map(|c| c.heading.to_owned()).collect()),
        ];
        let totals: Vec<HashMap<&str, Option<Num>>> = self.columns.iter().map(|c| totals(result, c.metric)).collect();
        let ranked = result.metrics.first().map_or(&[][..], |m| &m.series[..]);
        for s in ranked.iter().take(n) {
            let values = self.columns.iter().zip(&totals).map(|(c, t)| {
                // `-` where the dashboard has no value: a ratio over nothing, no samples.
                t.get(s.key.as_str())
                    .copied()
                    .flatten()
                    .map_or_else(|| "-".to_owned(), c.show)
            });
            out.push(cells(&s.key, values.collect()));
        }
        out
    }
}

/// Each group's total of `metric` in `result`.
fn totals(result: &QueryResult, metric: Metric) -> HashMap<&str, Option<Num>> {
    result
        .metrics
        .iter()
        .filter(|m| m.metric == metric)
        .flat_map(|m| &m.series)
        .map(|s| (s.key.as_str(), s.total))
        .collect()
}

fn int(n: Num) -> i64 {
    match n {
        Num::Int(i) => i,
        Num::Float(f) => f.round() as i64,
    }
}

fn float(n: Num) -> f64 {
    match n {
        Num::Int(i) => i as f64,
        Num::Float(f) => f,
    }
}

fn whole(n: Num) -> String {
    signed(int(n))
}

fn hours(ms: Num) -> String {
    format!("{:.1}", float(ms) / 3_600_000.0)
}

fn millis(ms: Num) -> String {
    format!("{}ms", int(ms))
}

fn percent_1(ratio: Num) -> String {
    format!("{:.1}%", 100.0 * float(ratio))
}

fn percent_2(ratio: Num) -> String {
    format!("{:.2}%", 100.0 * float(ratio))
}

fn dollars(cents: Num) -> String {
    let cents = int(cents);
    format!("${}.{:02}", signed(cents / 100), cents % 100)
}

/// Top titles by plays and games by revenue, over everything in the warehouse, as the
/// dashboard computes them.
pub async fn print_top(warehouse: &dyn Warehouse, n: usize) -> Result<()> {
    let viewing = warehouse.viewing_rollups(i64::MIN, i64::MAX).await?;
    let mut titles = Aggregation::new(&TITLES.query(viewing.iter().map(|r| r.minute)));
    titles.add_viewing(&viewing);
    drop(viewing);
    let games = warehouse.game_rollups(i64::MIN, i64::MAX).await?;
    let mut by_game = Aggregation::new(&GAMES.query(games.iter().map(|r| r.minute)));
    by_game.add_games(&games);
    let lines = [TITLES.lines(&titles.finish(), n), GAMES.lines(&by_game.finish(), n)];
    for line in lines.iter().flatten() {
        say!("{line}");
    }
    Ok(())
}
