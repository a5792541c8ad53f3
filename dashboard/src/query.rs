//! The query API's vocabulary (metrics, groupings, resolutions) and the parsing of request
//! parameters into a checked [`Query`]. Pure: the clock and the data's latest event time
//! are passed in as [`Anchors`].
use serde::Serialize;
use std::time::UNIX_EPOCH;

/// Which rollup a metric is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// Per (minute, title).
    Viewing,
    /// Per (minute, game).
    Games,
}

/// How a metric's value is expressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// A count (events, sessions, distinct ids).
    Count,
    /// Milliseconds.
    Ms,
    /// A fraction between 0 and 1.
    Ratio,
    /// Money in cents.
    Cents,
    /// Kilobits per second.
    Kbps,
}

/// A metric the API answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    /// PLAY_START count.
    Plays,
    /// Distinct profile ids (HyperLogLog).
    Viewers,
    /// Watched time from heartbeats (ms).
    WatchTime,
    /// Rebuffering time over watched time.
    RebufferRatio,
    /// 95th percentile of startup time (ms), DDSketch.
    StartupP95,
    /// Mean HEARTBEAT bitrate (kbps): the bitrates' sum over their count.
    Bitrate,
    /// SESSION_START count.
    Sessions,
    /// Distinct player ids (HyperLogLog).
    Players,
    /// SHOT count.
    Shots,
    /// HIT count.
    Hits,
    /// Hits over shots.
    HitRate,
    /// KILL count.
    Kills,
    /// Purchases, in cents.
    Revenue,
}

impl Metric {
    /// Every metric, in the order the page shows them.
    pub const ALL: [Metric; 13] = [
        Metric::Plays,
        Metric::Viewers,
        Metric::WatchTime,
        Metric::RebufferRatio,
        Metric::StartupP95,
        Metric::Bitrate,
        Metric::Sessions,
        Metric::Players,
        Metric::Shots,
        Metric::Hits,
        Metric::HitRate,
        Metric::Kills,
        Metric::Revenue,
    ];

    /// The name used in the API.
    pub fn name(self) -> &'static str {
        match self {
            Metric::Plays => "plays",
            Metric::Viewers => "viewers",
            Metric::WatchTime => "watch_time",
            Metric::RebufferRatio => "rebuffer_ratio",
            Metric::StartupP95 => "startup_p95",
            Metric::Bitrate => "bitrate",
            Metric::Sessions => "sessions",
            Metric::Players => "players",
            Metric::Shots => "shots",
            Metric::Hits => "hits",
            Metric::HitRate => "hit_rate",
            Metric::Kills => "kills",
            Metric::Revenue => "revenue",
        }
    }

    /// A label for people.
    pub fn label(self) -> &'static str {
        match self {
            Metric::Plays => "Plays",
            Metric::Viewers => "Distinct viewers",
            Metric::WatchTime => "Watch time",
            Metric::RebufferRatio => "Rebuffer ratio",
            Metric::StartupP95 => "Startup time p95",
            Metric::Bitrate => "Mean bitrate",
            Metric::Sessions => "Sessions",
            Metric::Players => "Distinct players",
            Metric::Shots => "Shots",
            Metric::Hits => "Hits",
            Metric::HitRate => "Hit rate",
            Metric::Kills => "Kills",
            Metric::Revenue => "Revenue",
        }
    }

    /// The rollup it comes from.
    pub fn family(self) -> Family {
        match self {
            Metric::Plays
            | Metric::Viewers
            | Metric::WatchTime
            | Metric::RebufferRatio
            | Metric::StartupP95
            | Metric::Bitrate => Family::Viewing,
            _ => Family::Games,
        }
    }

    /// Its unit.
    pub fn unit(self) -> Unit {
        match self {
            Metric::WatchTime | Metric::StartupP95 => Unit::Ms,
            Metric::RebufferRatio | Metric::HitRate => Unit::Ratio,
            Metric::Revenue => Unit::Cents,
            Metric::Bitrate => Unit::Kbps,
            _ => Unit::Count,
        }
    }

    fn parse(s: &str) -> Option<Metric> {
        Metric::ALL.into_iter().find(|m| m.name() == s)
    }
}

/// What series are keyed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    /// Title id (viewing metrics).
    Title,
    /// Game id (game metrics).
    Game,
}

impl Group {
    /// The name used in the API.
    pub fn name(self) -> &'static str {
        match self {
            Group::Title => "title",
            Group::Game => "game",
        }
    }

    fn of(family: Family) -> Group {
        match family {
            Family::Viewing => Group::Title,
            Family::Games => Group::Game,
        }
    }
}

/// The width of a bucket: UTC minutes, hours or days (as the PostgreSQL views).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// One minute.
    Minute,
    /// One hour.
    Hour,
    /// One day.
    Day,
}

impl Resolution {
    /// The name used in the API.
    pub fn name(self) -> &'static str {
        match self {
            Resolution::Minute => "minute",
            Resolution::Hour => "hour",
            Resolution::Day => "day",
        }
    }

    /// Minutes per bucket.
    pub fn minutes(self) -> i64 {
        match self {
            Resolution::Minute => 1,
            Resolution::Hour => 60,
            Resolution::Day => 1440,
        }
    }

    /// The range asked for when `from` is not given.
    fn default_span_minutes(self) -> i64 {
        match self {
            Resolution::Minute => 60,
            Resolution::Hour => 24 * 60,
            Resolution::Day => 7 * 1440,
        }
    }
}

macro_rules! serialize_by_name {
    ($($t:ty => $f:expr),* $(,)?) => {$(
        impl Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str($f(*self))
            }
        }
    )*};
}

serialize_by_name! {
    Metric => Metric::name,
    Group => Group::name,
    Resolution => Resolution::name,
    Unit => |u: Unit| match u {
        Unit::Count => "count",
        Unit::Ms => "ms",
        Unit::Ratio => "ratio",
        Unit::Cents => "cents",
        Unit::Kbps => "kbps",
    },
}

/// A checked query: one family's metrics over whole buckets of `[from_minute, to_minute)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// The metrics (at least one, all of one family, no repeats).
    pub metrics: Vec<Metric>,
    /// The grouping (matches the metrics' family).
    pub group: Group,
    /// Bucket width.
    pub resolution: Resolution,
    /// First minute, aligned to the resolution.
    pub from_minute: i64,
    /// End minute (exclusive), aligned to the resolution, after `from_minute`.
    pub to_minute: i64,
    /// Series returned per metric: the top groups by their value over the whole range.
    pub top: usize,
}

impl Query {
    /// The rollup the metrics come from.
    pub fn family(&self) -> Family {
        match self.group {
            Group::Title => Family::Viewing,
            Group::Game => Family::Games,
        }
    }

    /// Buckets in the range.
    pub fn buckets(&self) -> usize {
        ((self.to_minute - self.from_minute) / self.resolution.minutes()) as usize
    }
}

/// Bounds a query must keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest range, in minutes (every query reads minute rollups through the warehouse seam).
    pub max_range_minutes: i64,
    /// Most buckets per series.
    pub max_buckets: i64,
    /// Largest `top`.
    pub max_top: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_range_minutes: 7 * 1440,
            max_buckets: 1440,
            max_top: 100,
        }
    }
}

/// What relative times are relative to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Anchors {
    /// The wall clock, ms since the epoch.
    pub now_ms: i64,
    /// The largest event time aggregated so far (the newest shard watermark), if any.
    pub latest_event_ms: Option<i64>,
}

/// A rejected parameter: answered with 400 as `{"error": ..., "field": ...}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{field}: {error}")]
pub struct ParamError {
    /// Why.
    pub error: String,
    /// The parameter at fault.
    pub field: String,
}

fn bad(field: &str, error: impl Into<String>) -> ParamError {
    ParamError {
        error: error.into(),
        field: field.into(),
    }
}

const PARAMS: [&str; 6] = ["metric", "group", "from", "to", "resolution", "top"];
/// Latest instant accepted (9999-12-31T23:59:59.999Z), so minute arithmetic cannot overflow.
const MAX_MS: i64 = 253_402_300_799_999;
const MINUTE_MS: i64 = 60_000;

/// Parses the query-string pairs of `GET /api/query`.
///
/// - `metric`: one or more metric names (comma-separated or repeated), all per title or all
///   per game;
/// - `group`: `title` or `game` (default: the metrics'); `country` and `device_type` are
///   refused, since the rollups are not keyed by them;
/// - `from`, `to`: epoch milliseconds, RFC 3339 (`2026-01-01T00:00:00Z`), `now`, `latest`
///   (just after the newest minute aggregated), or either of those minus a duration
///   (`latest-1h`, `now-90m`); default `to=latest` and `from` one hour (minute resolution),
///   a day (hour) or a week (day) before `to`. Both are widened to whole buckets;
/// - `resolution`: `minute` (default), `hour` or `day`;
/// - `top`: series per metric, 1 to `limits.max_top` (default 10).
pub fn parse(params: &[(String, String)], anchors: Anchors, limits: Limits) -> Result<Query, ParamError> {
    let mut metrics: Vec<Metric> = Vec::new();
    let single = |name: &str| -> Result<Option<&str>, ParamError> {
        let mut values = params.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str());
        match (values.next(), values.next()) {
            (_, Some(_)) => Err(bad(name, "given more than once")),
            (v, None) => Ok(v),
        }
    };
    if let Some((k, _)) = params.iter().find(|(k, _)| !PARAMS.contains(&k.as_str())) {
        return Err(bad(
            k,
            format!("unknown parameter; expected one of {}", PARAMS.join(", ")),
        ));
    }
    for name in params
        .iter()
        .filter(|(k, _)| k == "metric")
        .flat_map(|(_, v)| v.split(','))
        .map(str::trim)
    {
        let m = Metric::parse(name).ok_or_else(|| {
            let known: Vec<_> = Metric::ALL.iter().map(|m| m.name()).collect();
            bad(
                "metric",
                format!("unknown metric {name:?}; one of {}", known.join(", ")),
            )
        })?;
        if !metrics.contains(&m) {
            metrics.push(m);
        }
    }
    let Some(first) = metrics.first() else {
        return Err(bad("metric", "required (e.g. metric=plays)"));
    };
    let family = first.family();
    if let Some(other) = metrics.iter().find(|m| m.family() != family) {
        return Err(bad(
            "metric",
            format!(
                "{} is per {} and {} per {}: ask for one kind at a time",
                first.name(),
                Group::of(family).name(),
                other.name(),
                Group::of(other.family()).name()
            ),
        ));
    }
    let group = match single("group")? {
        None => Group::of(family),
        Some("title") => Group::Title,
        Some("game") => Group::Game,
        Some(g @ ("country" | "device_type")) => {
            return Err(bad(
                "group",
                format!(
                    "grouping by {g} is not possible: the rollups are kept per (minute, title) and \
                     (minute, game) only, without country or device type"
                ),
            ));
        }
        Some(g) => return Err(bad("group", format!("unknown grouping {g:?}; one of title, game"))),
    };
    if group != Group::of(family) {
        return Err(bad(
            "group",
            format!(
                "{} is a per-{} metric: use group={}",
                first.name(),
                Group::of(family).name(),
                Group::of(family).name()
            ),
        ));
    }
    let resolution = match single("resolution")? {
        None | Some("minute") => Resolution::Minute,
        Some("hour") => Resolution::Hour,
        Some("day") => Resolution::Day,
        Some(r) => {
            return Err(bad(
                "resolution",
                format!("unknown resolution {r:?}; one of minute, hour, day"),
            ));
        }
    };
    let top = match single("top")? {
        None => 10,
        Some(t) => match t.parse::<usize>() {
            Ok(n) if (1..=limits.max_top).contains(&n) => n,
            _ => {
                return Err(bad(
                    "top",
                    format!("{t:?} is not a whole number from 1 to {}", limits.max_top),
                ));
            }
        },
    };
    let to_ms = match single("to")? {
        None => latest_end_ms(anchors),
        Some(t) => time_ms("to", t, anchors)?,
    };
    let res = resolution.minutes();
    let from_ms = match single("from")? {
        None => to_ms - resolution.default_span_minutes() * MINUTE_MS,
        Some(f) => time_ms("from", f, anchors)?,
    };
    // Widen to whole buckets.
    let from_minute = from_ms.div_euclid(MINUTE_MS).div_euclid(res) * res;
    let to_minute = ceil_div(ceil_div(to_ms, MINUTE_MS), res) * res;
    if from_ms >= to_ms {
        return Err(bad("to", "must be after from"));
    }
    let span = to_minute - from_minute;
    if span > limits.max_range_minutes {
        return Err(bad(
            "to",
            format!(
                "range too long: {} (whole {}s); at most {}",
                minutes_text(span),
                resolution.name(),
                minutes_text(limits.max_range_minutes)
            ),
        ));
    }
    if span / res > limits.max_buckets {
        return Err(bad(
            "to",
            format!(
                "range too long for resolution={}: {} buckets, at most {} (use a coarser resolution)",
                resolution.name(),
                span / res,
                limits.max_buckets
            ),
        ));
    }
    Ok(Query {
        metrics,
        group,
        resolution,
        from_minute,
        to_minute,
        top,
    })
}

fn ceil_div(a: i64, b: i64) -> i64 {
    -((-a).div_euclid(b))
}

fn minutes_text(minutes: i64) -> String {
    humantime::format_duration(std::time::Duration::from_secs(minutes.unsigned_abs() * 60)).to_string()
}

/// `latest`: the end of the newest minute aggregated, or now when nothing is.
fn latest_end_ms(anchors: Anchors) -> i64 {
    anchors
        .latest_event_ms
        .map_or(anchors.now_ms, |t| (t.div_euclid(MINUTE_MS) + 1) * MINUTE_MS)
}

/// Parses a time: epoch ms, RFC 3339, or `now`/`latest` optionally minus a duration.
fn time_ms(field: &str, s: &str, anchors: Anchors) -> Result<i64, ParamError> {
    let s = s.trim();
    let (base, minus) = match s.split_once('-') {
        Some((b @ ("now" | "latest"), d)) => (b, Some(d)),
        _ => (s, None),
    };
    let anchor = match base {
        "now" => Some(anchors.now_ms),
        "latest" => Some(latest_end_ms(anchors)),
        _ => None,
    };
    let ms = if let Some(anchor) = anchor {
        let back = match minus {
            None => 0,
            Some(d) => humantime::parse_duration(d.trim())
                .map_err(|e| {
                    bad(
                        field,
                        format!("bad duration {d:?} in {s:?}: {e} (e.g. latest-1h, now-30m)"),
                    )
                })?
                .as_millis()
                .min(MAX_MS as u128) as i64,
        };
        anchor - back
    } else if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse::<i64>()
            .map_err(|_| bad(field, format!("{s:?} is out of range")))?
    } else {
        let t = humantime::parse_rfc3339_weak(s).map_err(|_| {
            bad(
                field,
                format!("{s:?} is not a time: use epoch ms, RFC 3339 (2026-01-01T00:00:00Z), now, latest or latest-1h"),
            )
        })?;
        t.duration_since(UNIX_EPOCH)
            .map_err(|_| bad(field, format!("{s:?} is before 1970")))?
            .as_millis()
            .min(MAX_MS as u128 + 1) as i64
    };
    if !(0..=MAX_MS).contains(&ms) {
        return Err(bad(field, format!("{s:?} is outside 1970 to 9999")));
    }
    Ok(ms)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    // 2026-01-01T00:00:00Z
    const T0: i64 = 1_767_225_600_000;
    const ANCHORS: Anchors = Anchors {
        now_ms: T0 + 10 * 86_400_000,
        latest_event_ms: Some(T0 + 30 * 60_000 + 1_234),
    };

    fn q(s: &str) -> Result<Query, ParamError> {
        let pairs: Vec<(String, String)> = s
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (k.to_string(), v.to_string())
            })
            .collect();
        parse(&pairs, ANCHORS, Limits::default())
    }

    fn field(s: &str) -> String {
        q(s).unwrap_err().field
    }

    #[test]
    fn defaults_to_the_last_hour_of_data_top_10_per_minute() {
        let query = q("metric=plays").unwrap();
        let end = T0 / 60_000 + 31;
        assert_eq!(
            query,
            Query {
                metrics: vec![Metric::Plays],
                group: Group::Title,
                resolution: Resolution::Minute,
                from_minute: end - 60,
                to_minute: end,
                top: 10,
            }
        );
        assert_eq!(query.buckets(), 60);
    }

    #[test]
    fn latest_falls_back_to_now_without_data() {
        let anchors = Anchors {
            latest_event_ms: None,
            ..ANCHORS
        };
        let query = parse(&[("metric".into(), "kills".into())], anchors, Limits::default()).unwrap();
        assert_eq!(query.to_minute, ANCHORS.now_ms / 60_000);
        assert_eq!(query.group, Group::Game);
    }

    #[test]
    fn times_in_every_form_widen_to_whole_buckets() {
        let a = q("metric=plays&from=2026-01-01T00:00:30Z&to=2026-01-01T02:00:01Z&resolution=hour").unwrap();
        assert_eq!(a.from_minute, T0 / 60_000);
        assert_eq!(a.to_minute, T0 / 60_000 + 180);
        assert_eq!(a.buckets(), 3);
        let b = q(&format!("metric=plays&from={}&to={}", T0, T0 + 60_000)).unwrap();
        assert_eq!((b.from_minute, b.to_minute), (T0 / 60_000, T0 / 60_000 + 1));
        let c = q("metric=plays&from=now-2h&to=now-1h").unwrap();
        assert_eq!(c.to_minute - c.from_minute, 60);
        assert_eq!(c.to_minute, ANCHORS.now_ms / 60_000 - 60);
        let d = q("metric=plays&from=latest-90m&to=latest&resolution=minute").unwrap();
        assert_eq!(d.buckets(), 90);
    }

    #[test]
    fn several_metrics_of_one_family() {
        let query = q("metric=plays,viewers&metric=startup_p95&metric=plays").unwrap();
        assert_eq!(query.metrics, [Metric::Plays, Metric::Viewers, Metric::StartupP95]);
        assert_eq!(field("metric=plays,kills"), "metric");
    }

    #[test]
    fn every_metric_name_round_trips_through_json() {
        for m in Metric::ALL {
            assert_eq!(serde_json::to_string(&m).unwrap(), format!("\"{}\"", m.name()));
            assert_eq!(Metric::parse(m.name()), Some(m));
        }
    }

    #[test]
    fn bad_parameters_name_their_field() {
        assert_eq!(field(""), "metric");
        assert_eq!(field("metric=likes"), "metric");
        assert_eq!(field("metric=plays&group=game"), "group");
        assert_eq!(field("metric=plays&group=genre"), "group");
        assert_eq!(field("metric=plays&resolution=week"), "resolution");
        assert_eq!(field("metric=plays&top=0"), "top");
        assert_eq!(field("metric=plays&top=101"), "top");
        assert_eq!(field("metric=plays&top=ten"), "top");
        assert_eq!(field("metric=plays&from=yesterday"), "from");
        assert_eq!(field("metric=plays&from=now-soon"), "from");
        assert_eq!(field("metric=plays&to=99999999999999999999"), "to");
        assert_eq!(field("metric=plays&limit=5"), "limit");
        assert_eq!(field("metric=plays&top=5&top=6"), "top");
    }

    #[test]
    fn from_must_come_before_to() {
        let e = q(&format!("metric=plays&from={}&to={}", T0, T0)).unwrap_err();
        assert_eq!((e.field.as_str(), e.error.as_str()), ("to", "must be after from"));
        assert_eq!(field("metric=plays&from=now&to=now-1h"), "to");
    }

    #[test]
    fn ranges_are_bounded() {
        // A day of minutes is the most at minute resolution; a week in any resolution.
        assert!(q("metric=plays&from=now-24h&to=now").is_ok());
        let e = q("metric=plays&from=now-25h&to=now").unwrap_err();
        assert_eq!(e.field, "to");
        assert!(e.error.contains("coarser"), "{e}");
        assert!(q("metric=plays&from=now-7days&to=now&resolution=hour").is_ok());
        // `latest` ends mid-hour: widened to whole hours, a week back is a week and an hour.
        assert!(q("metric=plays&from=latest-7days&to=latest&resolution=hour").is_err());
        let e = q("metric=plays&from=now-30days&to=now&resolution=day").unwrap_err();
        assert!(e.error.starts_with("range too long"), "{e}");
    }

    #[test]
    fn country_and_device_type_are_refused_with_the_reason() {
        for g in ["country", "device_type"] {
            let e = q(&format!("metric=plays&group={g}")).unwrap_err();
            assert_eq!(e.field, "group");
            assert!(e.error.contains("not possible") && e.error.contains(g), "{e}");
        }
    }
}
