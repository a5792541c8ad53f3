//! Numbers and times as a person reads them: counts and rates with thousands separators,
//! minutes as UTC timestamps. Every line the CLI prints for people formats through here.
use indicatif::{ProgressState, ProgressStyle};

/// `1234567` → `1,234,567`.
pub fn count(n: u64) -> String {
    group(&n.to_string())
}

/// As [`count`], with a sign when negative: `-1234` → `-1,234`.
pub fn signed(n: i64) -> String {
    let digits = group(&n.unsigned_abs().to_string());
    if n < 0 { format!("-{digits}") } else { digits }
}

/// A rate as a whole number with separators, no unit: `368585.0050` → `368,585`; `-` when
/// there is none to speak of (no time elapsed: infinite or not a number).
pub fn rate(per_s: f64) -> String {
    if per_s.is_finite() {
        // `as` saturates: a negative rate (never, for these) shows as 0.
        count(per_s.round() as u64)
    } else {
        "-".to_owned()
    }
}

/// A minute since the epoch as its UTC start in RFC 3339 to the minute: `29453780` →
/// `2026-01-01T00:20Z`.
pub fn minute(epoch_minute: i64) -> String {
    let (days, in_day) = (epoch_minute.div_euclid(1440), epoch_minute.rem_euclid(1440));
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}Z", in_day / 60, in_day % 60)
}

/// Milliseconds since the epoch as a UTC RFC 3339 timestamp, with milliseconds only when it
/// has some: `1767226805250` → `2026-01-01T00:20:05.250Z`.
pub fn time_ms(ms: i64) -> String {
    let (in_minute, millis) = (ms.rem_euclid(60_000) / 1000, ms.rem_euclid(1000));
    let at_minute = minute(ms.div_euclid(60_000));
    let head = at_minute.trim_end_matches('Z');
    if millis == 0 {
        format!("{head}:{in_minute:02}Z")
    } else {
        format!("{head}:{in_minute:02}.{millis:03}Z")
    }
}

/// The proleptic Gregorian date of a day since 1970-01-01 (H. Hinnant's algorithm: exact for
/// every `i64` a minute count can give, no table, no panics).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn group(digits: &str) -> String {
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A progress-bar style from `template`, which may use `{rate}`: the bar's speed as
/// [`rate`] per second (indicatif's own `{per_sec}` prints a dozen decimals when given a width).
pub fn progress_style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .with_key("rate", |state: &ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = write!(w, "{}/s", rate(state.per_sec()));
        })
        .progress_chars("=> ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_have_separators() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1_000), "1,000");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(count(u64::MAX), "18,446,744,073,709,551,615");
        assert_eq!(signed(-1_234), "-1,234");
        assert_eq!(signed(-999), "-999");
        assert_eq!(signed(i64::MIN), "-9,223,372,036,854,775,808");
        assert_eq!(signed(12_345), "12,345");
    }

    #[test]
    fn rates_are_whole_numbers() {
        assert_eq!(rate(368_585.005_023_6), "368,585");
        assert_eq!(rate(0.4), "0");
        assert_eq!(rate(1_999.5), "2,000");
        assert_eq!(rate(f64::INFINITY), "-");
        assert_eq!(rate(f64::NAN), "-");
    }

    #[test]
    fn minutes_are_utc_timestamps() {
        assert_eq!(minute(0), "1970-01-01T00:00Z");
        assert_eq!(minute(29_453_780), "2026-01-01T00:20Z");
        // 2026-12-04T13:05Z: day 20,791 of the epoch.
        assert_eq!(minute(20_791 * 1440 + 13 * 60 + 5), "2026-12-04T13:05Z");
        assert_eq!(minute(-1), "1969-12-31T23:59Z");
        // A leap day.
        assert_eq!(minute(19_417 * 1440), "2023-03-01T00:00Z");
        assert_eq!(minute(19_782 * 1440), "2024-02-29T00:00Z");
        assert_eq!(time_ms(1_767_226_805_250), "2026-01-01T00:20:05.250Z");
        assert_eq!(time_ms(1_767_226_805_000), "2026-01-01T00:20:05Z");
        assert_eq!(time_ms(-1), "1969-12-31T23:59:59.999Z");
        // The extremes a range can hold do not panic.
        assert!(minute(i64::MAX / 60_000).ends_with('Z'));
        assert!(minute(i64::MIN / 60_000).ends_with('Z'));
        assert!(time_ms(i64::MAX).ends_with('Z') && time_ms(i64::MIN).ends_with('Z'));
    }
}
