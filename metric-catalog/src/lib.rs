//! Each crate declares its metrics once, with [`catalog!`]: the name as a constant (what the
//! code records with `metrics::counter!` and friends), its kind, its histogram buckets and its
//! help text (the doc comment, so the docs and the Prometheus `# HELP` line cannot drift).
//! The process that exports them (`inlet-ops`) describes every catalog it is given and sets
//! each histogram's buckets, so no latency or size is ever rendered as a summary, which
//! cannot be aggregated across instances.
//!
//! No I/O and no dependencies: a library that records metrics depends on this crate only.

/// What kind of series a metric is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// Only goes up (names end in `_total`).
    Counter,
    /// Goes up and down.
    Gauge,
    /// A distribution, with these bucket upper bounds.
    Histogram(&'static [f64]),
}

/// One metric of a catalog.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Metric {
    /// Its name, `inlet_<crate>_<what>[_<unit>][_total]`.
    pub name: &'static str,
    /// Counter, gauge or histogram.
    pub kind: Kind,
    /// Its doc comment, for the `# HELP` line.
    pub help: &'static str,
}

impl Metric {
    /// The help text as one line: the doc comment's lines joined, without Markdown's
    /// backticks and link brackets.
    pub fn help_line(&self) -> String {
        let joined = self.help.split_whitespace().collect::<Vec<_>>().join(" ");
        joined.replace(['`', '[', ']'], "")
    }
}

/// Bucket upper bounds for durations, seconds: 1 ms to 30 s.
pub const SECONDS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Bucket upper bounds for sizes, bytes: 64 B to 16 MiB, by fours.
pub const BYTES: &[f64] = &[
    64.0,
    256.0,
    1024.0,
    4096.0,
    16384.0,
    65536.0,
    262_144.0,
    1_048_576.0,
    4_194_304.0,
    16_777_216.0,
];
/// Bucket upper bounds for counts (events per request, attempts, records per aggregate).
pub const COUNTS: &[f64] = &[1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 5000.0];

/// Declares a crate's metrics: a `pub const` per name and `pub const CATALOG: &[Metric]`.
///
/// ```
/// inlet_metric_catalog::catalog! {
///     /// Requests answered (label `outcome`).
///     counter REQUESTS_TOTAL = "inlet_example_requests_total";
///     /// Time per request.
///     histogram(inlet_metric_catalog::SECONDS) REQUEST_SECONDS = "inlet_example_request_seconds";
/// }
/// assert_eq!(CATALOG.len(), 2);
/// assert_eq!(REQUESTS_TOTAL, "inlet_example_requests_total");
/// ```
#[macro_export]
macro_rules! catalog {
    ($( $(#[doc = $doc:literal])+ $kind:ident $(($buckets:expr))? $name:ident = $value:literal; )*) => {
        $(
            $(#[doc = $doc])+
            pub const $name: &str = $value;
        )*
        /// Every metric of this crate, for the exporter to describe.
        pub const CATALOG: &[$crate::Metric] = &[
            $(
                $crate::Metric {
                    name: $value,
                    kind: $crate::catalog!(@kind $kind $(($buckets))?),
                    help: concat!($($doc, "\n"),+),
                },
            )*
        ];
    };
    (@kind counter) => { $crate::Kind::Counter };
    (@kind gauge) => { $crate::Kind::Gauge };
    (@kind histogram($buckets:expr)) => { $crate::Kind::Histogram($buckets) };
}

/// The catalog's rules, for each crate's tests: Prometheus naming (counters end in `_total`,
/// nothing else does; histograms of durations and sizes carry their unit), help present.
pub fn check(catalog: &[Metric]) -> Result<(), String> {
    for m in catalog {
        let fail = |why: &str| Err(format!("{}: {why}", m.name));
        if !m.name.starts_with("inlet_")
            || !m
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return fail("names are inlet_ and snake_case");
        }
        match m.kind {
            Kind::Counter if !m.name.ends_with("_total") => return fail("a counter's name ends in _total"),
            Kind::Gauge | Kind::Histogram(_) if m.name.ends_with("_total") => {
                return fail("only counters end in _total");
            }
            Kind::Histogram(b) if b.windows(2).any(|w| w[0] >= w[1]) => return fail("buckets must increase"),
            _ => {}
        }
        if m.help_line().is_empty() {
            return fail("no help text");
        }
    }
    let mut names: Vec<_> = catalog.iter().map(|m| m.name).collect();
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(format!("{} is declared twice", w[0]));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(unreachable_pub, dead_code)]
    mod sample {
        use crate::SECONDS;
        crate::catalog! {
            /// Things done (label `how`); see [`Kind`].
            counter DONE_TOTAL = "inlet_test_done_total";
            /// Time taken,
            /// over two lines.
            histogram(SECONDS) TAKEN_SECONDS = "inlet_test_taken_seconds";
            /// Things held.
            gauge HELD = "inlet_test_held";
        }
    }
    use sample::{CATALOG, DONE_TOTAL};

    #[test]
    fn a_catalog_holds_names_kinds_and_help() {
        assert_eq!(DONE_TOTAL, "inlet_test_done_total");
        assert_eq!(CATALOG[0].help_line(), "Things done (label how); see Kind.");
        assert_eq!(CATALOG[1].help_line(), "Time taken, over two lines.");
        assert_eq!(CATALOG[1].kind, Kind::Histogram(SECONDS));
        assert_eq!(CATALOG[2].kind, Kind::Gauge);
        assert_eq!(check(CATALOG), Ok(()));
    }

    #[test]
    fn the_rules_catch_bad_names() {
        let bad = |name, kind| check(&[Metric { name, kind, help: "h" }]);
        assert!(bad("inlet_x", Kind::Counter).is_err());
        assert!(bad("inlet_x_total", Kind::Gauge).is_err());
        assert!(bad("inletX_total", Kind::Counter).is_err());
        assert!(bad("inlet_x", Kind::Histogram(&[2.0, 1.0])).is_err());
        assert!(
            check(&[Metric {
                name: "inlet_x",
                kind: Kind::Gauge,
                help: " "
            }])
            .is_err()
        );
        let twice = Metric {
            name: "inlet_x",
            kind: Kind::Gauge,
            help: "h",
        };
        assert!(check(&[twice, twice]).is_err());
    }
}
