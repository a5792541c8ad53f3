//! `infra/grafana/inlet.json`, the Grafana dashboard for the PostgreSQL warehouse and the
//! Prometheus metrics: it parses; every SQL query names only tables, views and columns that
//! the migrations create (parsed from `inlet_postgres::migrations::all()` and
//! `views::create_all()`); every Prometheus metric it names is one the producer or consumer
//! emits, and each of those is on the dashboard. Under `infra/test.sh` (PostgreSQL), every
//! query also runs on a migrated warehouse the pipeline filled, and the plays panel adds up to
//! the generator's totals.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod support;

use inlet_consumer::metrics as cm;
use inlet_dashboard::Metric;
use inlet_postgres::{PgConfig, PgWarehouse};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

const DASHBOARD: &str = include_str!("../../infra/grafana/inlet.json");
const RESOLUTIONS: [&str; 3] = ["minute", "hour", "day"];

/// Relation name → its columns.
type Schema = BTreeMap<String, BTreeSet<String>>;

fn schema() -> Schema {
    let mut out = Schema::new();
    let tables: String = inlet_postgres::migrations::all()
        .iter()
        .map(|m| m.sql.clone())
        .collect();
    for block in tables.split("CREATE TABLE ").skip(1) {
        let (name, body) = block.split_once('(').unwrap();
        let body = &body[..body.find("\n);").unwrap()];
        let columns = body
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with("PRIMARY KEY"))
            .map(|l| l.split_whitespace().next().unwrap().to_lowercase());
        out.insert(name.trim().to_lowercase(), columns.collect());
    }
    for block in inlet_postgres::views::create_all().split("CREATE VIEW ").skip(1) {
        let (name, rest) = block.split_once(" AS\nSELECT ").unwrap();
        let select_list = &rest[..rest.find("\nFROM ").unwrap()];
        let columns = top_level_items(select_list).into_iter().map(|item| {
            let item = item.trim();
            let name = match item.rfind(" AS ") {
                Some(i) => &item[i + 4..],
                None => item.rsplit('.').next().unwrap(),
            };
            name.trim().to_lowercase()
        });
        out.insert(name.trim().to_lowercase(), columns.collect());
    }
    out
}

/// Splits at commas outside parentheses.
fn top_level_items(s: &str) -> Vec<&str> {
    let (mut depth, mut start, mut out) = (0i32, 0, Vec::new());
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

/// Every panel, rows' panels included.
fn panels(dashboard: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for p in dashboard["panels"].as_array().unwrap() {
        out.push(p);
        if let Some(inner) = p["panels"].as_array() {
            out.extend(inner);
        }
    }
    out
}

/// `(panel title, query)` pairs.
type Queries = Vec<(String, String)>;

/// `(panel title, rawSql)` and `(panel title, expr)` of every target.
fn queries(dashboard: &Value) -> (Queries, Queries) {
    let (mut sql, mut promql) = (Vec::new(), Vec::new());
    for p in panels(dashboard) {
        let title = p["title"].as_str().unwrap().to_string();
        for t in p["targets"].as_array().into_iter().flatten() {
            if let Some(s) = t["rawSql"].as_str() {
                sql.push((title.clone(), s.to_string()));
            }
            if let Some(e) = t["expr"].as_str() {
                promql.push((title.clone(), e.to_string()));
            }
        }
    }
    (sql, promql)
}

/// The SQL Grafana would send for one value of `$resolution` (and `$top` = 10), from
/// 2025-12-31 (the generator's workload starts 2026-01-01) to tomorrow (dead letters are
/// recorded at commit time).
fn expand(sql: &str, resolution: &str) -> String {
    let mut s = sql.replace("${resolution}", resolution).replace("$top", "10");
    type Expand = fn(&str) -> String;
    let macros: [(&str, Expand); 2] = [
        ("$__timeFilter(", |arg| {
            format!("{arg} BETWEEN TIMESTAMP '2025-12-31 00:00:00' AND CURRENT_TIMESTAMP + INTERVAL '1 day'")
        }),
        ("$__timeGroupAlias(", |arg| {
            let col = arg.split(',').next().unwrap().trim();
            format!("date_trunc('minute', {col}) AS \"time\"")
        }),
    ];
    for (name, with) in macros {
        while let Some(at) = s.find(name) {
            let open = at + name.len();
            let close = open + s[open..].find(')').unwrap();
            let replacement = with(&s[open..close]);
            s.replace_range(at..=close, &replacement);
        }
    }
    assert!(
        !s.contains('$'),
        "a Grafana variable or macro the test does not know: {s}"
    );
    s
}

const KEYWORDS: &[&str] = &[
    "select",
    "from",
    "where",
    "and",
    "or",
    "not",
    "in",
    "as",
    "group",
    "by",
    "order",
    "desc",
    "asc",
    "limit",
    "between",
    "timestamp",
    "null",
    "is",
    "case",
    "when",
    "then",
    "else",
    "end",
    "join",
    "left",
    "on",
    "distinct",
    "double",
    "precision",
    "current_timestamp",
    "interval",
];

/// Checks that `sql` reads only known relations and names only their columns (or aliases it
/// defines, keywords and functions). Written for the plain SQL of the dashboard: no table
/// aliases, no derived tables.
fn check_names(sql: &str, schema: &Schema) -> Result<(), String> {
    // Drop string literals; quoted identifiers are aliases.
    let mut plain = String::new();
    let mut aliases = BTreeSet::new();
    let mut chars = sql.to_lowercase().chars().collect::<Vec<_>>().into_iter().peekable();
    while let Some(c) = chars.next() {
        if c == '\'' || c == '"' {
            let quoted: String = chars.by_ref().take_while(|&d| d != c).collect();
            if c == '"' {
                aliases.insert(quoted);
            }
            plain.push(' ');
        } else {
            plain.push(c);
        }
    }
    // Words, each with the next non-blank character after it.
    let mut words: Vec<(String, Option<char>)> = Vec::new();
    let bytes: Vec<char> = plain.chars().collect();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_alphanumeric() || bytes[i] == '_' {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == '_') {
                i += 1;
            }
            let next = bytes[i..].iter().find(|c| !c.is_whitespace()).copied();
            words.push((bytes[start..i].iter().collect(), next));
        } else {
            i += 1;
        }
    }
    let mut relations = BTreeSet::new();
    for pair in words.windows(2) {
        if matches!(pair[0].0.as_str(), "from" | "join") && pair[0].1 != Some('(') {
            let name = &pair[1].0;
            if !schema.contains_key(name) {
                return Err(format!("unknown table or view {name}"));
            }
            relations.insert(name.clone());
        }
        if pair[0].0 == "as" {
            aliases.insert(pair[1].0.clone());
        }
    }
    if relations.is_empty() {
        return Err("reads no table or view".into());
    }
    for (word, next) in &words {
        let known = word.starts_with(|c: char| c.is_ascii_digit())
            || KEYWORDS.contains(&word.as_str())
            || *next == Some('(')
            || relations.contains(word)
            || aliases.contains(word)
            || relations.iter().any(|r| schema[r].contains(word));
        if !known {
            return Err(format!("{word} is not a column of {relations:?}"));
        }
    }
    Ok(())
}

#[test]
fn the_schema_is_read_from_the_migrations() {
    let schema = schema();
    for name in [
        "inlet_viewing_per_minute",
        "inlet_viewing_per_day",
        "inlet_games_per_hour",
    ] {
        assert!(
            schema[name].contains("period_start") && schema[name].contains("minute"),
            "{name}: {schema:?}"
        );
    }
    assert!(schema["inlet_viewing_per_hour"].contains("startup_p95_ms"));
    assert!(schema["inlet_viewing_per_hour"].contains("viewers"));
    assert!(schema["inlet_games_per_day"].contains("revenue_cents"));
    assert!(schema["inlet_leases"].contains("watermark_ms"));
    assert!(!schema["inlet_leases"].contains("primary"));
    assert!(schema["inlet_dead_letters"].contains("recorded_at"));
    // The checker catches what it is for.
    let ok = "SELECT period_start AS \"time\", plays AS value FROM inlet_viewing_per_minute ORDER BY 1";
    assert_eq!(check_names(ok, &schema), Ok(()));
    assert!(check_names("SELECT plays_total FROM inlet_viewing_per_minute", &schema).is_err());
    assert!(check_names("SELECT plays FROM inlet_viewing_per_week", &schema).is_err());
    assert!(check_names("SELECT sessions FROM inlet_viewing_per_minute", &schema).is_err());
}

#[test]
fn every_sql_query_names_only_what_the_migrations_create() {
    let dashboard: Value = serde_json::from_str(DASHBOARD).unwrap();
    let schema = schema();
    let (sql, _) = queries(&dashboard);
    assert!(sql.len() >= 16, "{} SQL queries", sql.len());
    for (title, query) in &sql {
        for resolution in RESOLUTIONS {
            let expanded = expand(query, resolution);
            if let Err(e) = check_names(&expanded, &schema) {
                panic!("panel {title:?} ({resolution}): {e}\n{expanded}");
            }
        }
    }
    // Every metric the page shows has a Grafana panel too.
    let titles: BTreeSet<&str> = panels(&dashboard).iter().filter_map(|p| p["title"].as_str()).collect();
    for m in Metric::ALL {
        assert!(titles.contains(m.label()), "no panel {:?}", m.label());
    }
}

#[test]
fn every_prometheus_metric_is_one_we_emit_and_each_is_shown() {
    let emitted = [
        cm::READ_TOTAL,
        cm::AGGREGATED_TOTAL,
        cm::DEAD_LETTERED_TOTAL,
        cm::COMMITS_TOTAL,
        cm::COMMIT_SECONDS,
        cm::MILLIS_BEHIND_LATEST,
        cm::LEASES_HELD,
        cm::LEASES_TAKEN_TOTAL,
        cm::LEASES_LOST_TOTAL,
        inlet_producer::metrics::ACCEPTED_TOTAL,
        inlet_producer::metrics::DELIVERED_TOTAL,
        inlet_producer::metrics::FAILED_TOTAL,
        inlet_producer::metrics::RETRIED_TOTAL,
        inlet_producer::metrics::PUT_CALLS_TOTAL,
        inlet_producer::metrics::PUT_BYTES_TOTAL,
        inlet_producer::metrics::AGGREGATION_RATIO,
    ];
    let dashboard: Value = serde_json::from_str(DASHBOARD).unwrap();
    let (_, promql) = queries(&dashboard);
    let mut used = BTreeSet::new();
    for (title, expr) in &promql {
        let mut rest = expr.as_str();
        while let Some(at) = rest.find("inlet_") {
            let name: String = rest[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            // A histogram is queried through its series' suffixes.
            let base = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s).filter(|b| emitted.contains(b)))
                .unwrap_or(&name);
            assert!(emitted.contains(&base), "panel {title:?}: {name} is not emitted");
            used.insert(base.to_owned());
            rest = &rest[at + name.len()..];
        }
    }
    for name in emitted {
        assert!(used.contains(name), "{name} is on no panel");
    }
    // Panels point at the dashboard's data source variables.
    for p in panels(&dashboard).into_iter().filter(|p| p["type"] != "row") {
        let uid = p["datasource"]["uid"].as_str().unwrap();
        assert!(uid == "${postgres}" || uid == "${prometheus}", "{}: {uid}", p["title"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: run infra/test.sh"]
async fn every_sql_query_runs_on_postgres_and_adds_up() {
    let url = support::fresh_postgres().await;
    let warehouse = Arc::new(PgWarehouse::connect(PgConfig::new(&url)).await.unwrap());
    let p = support::pipeline_into(tempfile::tempdir().unwrap(), warehouse, 4_000, 12).await;
    let client = inlet_postgres::connect_client(&url).await.unwrap();
    let dashboard: Value = serde_json::from_str(DASHBOARD).unwrap();
    let (sql, _) = queries(&dashboard);
    for (title, query) in &sql {
        for resolution in RESOLUTIONS {
            let expanded = expand(query, resolution);
            let rows = client
                .query(expanded.as_str(), &[])
                .await
                .unwrap_or_else(|e| panic!("panel {title:?} ({resolution}): {e:?}\n{expanded}"));
            assert!(!rows.is_empty(), "panel {title:?} ({resolution}) found no rows");
            if title == "Plays" {
                let total: i64 = rows.iter().map(|r| r.get::<_, i64>("value")).sum();
                let top10: f64 = expected_top10_plays(&p.expected);
                assert_eq!(total as f64, top10, "{resolution}");
            }
        }
    }
}

fn expected_top10_plays(expected: &inlet_generator::Expected) -> f64 {
    support::expected_ranking(expected, Metric::Plays)[..10]
        .iter()
        .map(|(_, v)| v.unwrap())
        .sum()
}
