//! Summaries read from the warehouse.
use crate::backends::Locations;
use anyhow::Result;
use inlet_rollup::{GameAgg, GameRow, ViewingAgg, ViewingRow};
use inlet_seams::{Totals, Warehouse};
use inlet_workload::Verdict;
use std::collections::BTreeMap;
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
    let warehouse = args.locations.warehouse().await?;
    let totals = warehouse.totals().await?;
    println!("aggregated     {:>12}", thousands(totals.aggregated));
    print_dead_letters(&totals);
    print_accounting(&totals, None);
    print_top(warehouse.as_ref(), args.top).await?;
    Ok(ExitCode::SUCCESS)
}

/// `1234567` → `1,234,567`.
pub fn thousands(n: impl Into<i128>) -> String {
    let n: i128 = n.into();
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

pub fn print_dead_letters(totals: &Totals) {
    println!("dead-lettered  {:>12}", thousands(totals.dead_lettered()));
    for (kind, field, n) in &totals.dead_letters {
        println!(
            "    {:<14} {:<36} {:>8}",
            kind.as_str(),
            field.as_deref().unwrap_or("-"),
            thousands(*n)
        );
    }
}

/// Prints the duplicates and the accounting identity `read = aggregated + dead-lettered +
/// duplicates`; with a verdict on the generator's expectation, also whether every distinct
/// event generated is aggregated or dead-lettered, and the generator's copies.
pub fn print_accounting(totals: &Totals, verdict: Option<&Verdict>) {
    println!("duplicates     {:>12}", thousands(totals.duplicates));
    println!(
        "accounting     read = aggregated + dead-lettered + duplicates: {} = {} + {} + {}",
        thousands(totals.read()),
        thousands(totals.aggregated),
        thousands(totals.dead_lettered()),
        thousands(totals.duplicates),
    );
    let Some(verdict) = verdict else { return };
    let ok = verdict.distinct_holds();
    println!(
        "exactly once   distinct events generated = aggregated + dead-lettered: {} {} {} + {}  {}",
        thousands(verdict.distinct.expected),
        if ok { "=" } else { "≠" },
        thousands(totals.aggregated),
        thousands(totals.dead_lettered()),
        if ok { "(holds)" } else { "(BROKEN)" }
    );
    println!(
        "               duplicates: {} from the generator's copies, {} dropped",
        thousands(verdict.duplicates.expected),
        thousands(totals.duplicates)
    );
}

/// Prints the verdict lines of `inlet verify` (and the demo): the accounting, what differs
/// (dead letters, up to 5 rows, too few duplicates), and whether the rollups are exact.
pub fn print_verdict(totals: &Totals, verdict: &Verdict) {
    print_accounting(totals, Some(verdict));
    for d in verdict.wrong_dead_letters() {
        println!(
            "  dead letters {} {}: expected {}, got {}",
            d.kind,
            d.field.as_deref().unwrap_or("-"),
            d.count.expected,
            d.count.got
        );
    }
    for m in verdict.mismatches.iter().take(5) {
        println!("  mismatch: {}: {}", m.key, m.detail);
    }
    if !verdict.duplicates_hold() {
        println!(
            "  duplicates: expected at least {}, got {}",
            verdict.duplicates.expected, verdict.duplicates.got
        );
    }
    let (viewing_rows, game_rows) = verdict.expected_rows;
    println!(
        "rollups equal the generator's totals exactly: {} ({} viewing rows, {} game rows, {} mismatches)",
        if verdict.rollups_exact() { "yes" } else { "NO" },
        viewing_rows,
        game_rows,
        verdict.mismatches.len()
    );
}

fn by_title(rows: Vec<ViewingRow>) -> Vec<(String, ViewingAgg)> {
    let mut m: BTreeMap<String, ViewingAgg> = BTreeMap::new();
    for r in rows {
        m.entry(r.title_id).or_default().merge(&r.agg);
    }
    let mut v: Vec<_> = m.into_iter().collect();
    v.sort_by(|a, b| b.1.plays.cmp(&a.1.plays).then_with(|| a.0.cmp(&b.0)));
    v
}

fn by_game(rows: Vec<GameRow>) -> Vec<(String, GameAgg)> {
    let mut m: BTreeMap<String, GameAgg> = BTreeMap::new();
    for r in rows {
        m.entry(r.game_id).or_default().merge(&r.agg);
    }
    let mut v: Vec<_> = m.into_iter().collect();
    v.sort_by(|a, b| b.1.revenue_cents.cmp(&a.1.revenue_cents).then_with(|| a.0.cmp(&b.0)));
    v
}

/// Top titles by plays and games by revenue, over everything in the warehouse.
pub async fn print_top(warehouse: &dyn Warehouse, n: usize) -> Result<()> {
    let titles = by_title(warehouse.viewing_rollups(i64::MIN, i64::MAX).await?);
    println!("top titles by plays:");
    println!(
        "    {:<12} {:>8} {:>9} {:>11} {:>10} {:>10} {:>9}",
        "title", "plays", "viewers", "watch h", "rebuf %", "p95 start", "kbps"
    );
    for (title, a) in titles.iter().take(n) {
        let rebuffer_ratio = if a.watch_ms > 0 {
            100.0 * a.rebuffer_ms as f64 / a.watch_ms as f64
        } else {
            0.0
        };
        let kbps = if a.bitrate_samples > 0 {
            a.bitrate_sum_kbps / a.bitrate_samples
        } else {
            0
        };
        println!(
            "    {:<12} {:>8} {:>9} {:>11.1} {:>9.2}% {:>8}ms {:>9}",
            title,
            thousands(a.plays),
            thousands(a.viewers.estimate() as i64),
            a.watch_ms as f64 / 3_600_000.0,
            rebuffer_ratio,
            a.startup_ms.quantile(0.95).unwrap_or(0),
            kbps
        );
    }
    let games = by_game(warehouse.game_rollups(i64::MIN, i64::MAX).await?);
    println!("top games by revenue:");
    println!(
        "    {:<12} {:>8} {:>9} {:>9} {:>8} {:>8} {:>12}",
        "game", "sessions", "players", "shots", "hit %", "kills", "revenue"
    );
    for (game, a) in games.iter().take(n) {
        let hit_rate = if a.shots > 0 {
            100.0 * a.hits as f64 / a.shots as f64
        } else {
            0.0
        };
        println!(
            "    {:<12} {:>8} {:>9} {:>9} {:>7.1}% {:>8} {:>12}",
            game,
            thousands(a.sessions),
            thousands(a.players.estimate() as i64),
            thousands(a.shots),
            hit_rate,
            thousands(a.kills),
            format!("${}.{:02}", thousands(a.revenue_cents / 100), a.revenue_cents % 100)
        );
    }
    Ok(())
}
