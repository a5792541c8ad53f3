//! The verdict on a warehouse: its totals and final rows against the generator's expectation.
use inlet_generator::{Expected, Mismatch};
use inlet_rollup::{GameRow, ViewingRow};
use inlet_seams::Totals;
use std::collections::BTreeMap;

/// A count the generator expects and the count the warehouse holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Count {
    /// What the generator's expectation says.
    pub expected: i64,
    /// What the warehouse holds.
    pub got: i64,
}

impl Count {
    fn new(expected: u64, got: i64) -> Self {
        Self {
            expected: i64::try_from(expected).unwrap_or(i64::MAX),
            got,
        }
    }

    /// The warehouse holds exactly the expected count.
    pub fn is_equal(&self) -> bool {
        self.expected == self.got
    }
}

/// Dead letters of one kind and field, expected and filed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetters {
    /// Kind name (`invalid`, `late`, ...).
    pub kind: String,
    /// The field at fault, if one is named.
    pub field: Option<String>,
    /// Expected and filed.
    pub count: Count,
}

/// How a warehouse compares with what a workload must give. Pure: built from values read
/// from the warehouse, it does no I/O.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Every rollup row that differs, is missing or is unexpected (none if exact).
    pub mismatches: Vec<Mismatch>,
    /// Viewing and game rows the generator expects.
    pub expected_rows: (usize, usize),
    /// Dead letters per kind and field, every one either side expects or holds, sorted.
    pub dead_letters: Vec<DeadLetters>,
    /// Events aggregated.
    pub aggregated: Count,
    /// Distinct events: the generator's (copies not counted) against the warehouse's
    /// aggregated + dead-lettered.
    pub distinct: Count,
    /// Duplicates: the generator's copies against those dropped. Retries (a restarted
    /// producer, a replayed range) can add copies the generator did not make, so more is
    /// fine; fewer is not.
    pub duplicates: Count,
}

impl Verdict {
    /// Compares the warehouse's `totals` and final (merged) `viewing` and `games` rows with
    /// `expected`.
    pub fn new(totals: &Totals, viewing: &[ViewingRow], games: &[GameRow], expected: &Expected) -> Self {
        let mut dead: BTreeMap<(String, Option<String>), (u64, i64)> = BTreeMap::new();
        for ((kind, field), n) in &expected.dead {
            dead.entry((kind.to_string(), field.map(str::to_string))).or_default().0 += n;
        }
        for (kind, field, n) in &totals.dead_letters {
            dead.entry((kind.as_str().to_string(), field.clone())).or_default().1 += n;
        }
        Self {
            mismatches: expected.compare(viewing, games),
            expected_rows: (expected.viewing.len(), expected.games.len()),
            dead_letters: dead
                .into_iter()
                .map(|((kind, field), (expected, got))| DeadLetters {
                    kind,
                    field,
                    count: Count::new(expected, got),
                })
                .collect(),
            aggregated: Count::new(expected.aggregated, totals.aggregated),
            distinct: Count::new(expected.unique(), totals.aggregated + totals.dead_lettered()),
            duplicates: Count::new(expected.duplicates, totals.duplicates),
        }
    }

    /// The dead letters whose count is not the expected one.
    pub fn wrong_dead_letters(&self) -> impl Iterator<Item = &DeadLetters> {
        self.dead_letters.iter().filter(|d| !d.count.is_equal())
    }

    /// The rollups equal the generator's totals exactly: every row, every dead letter kind
    /// and field, and the events aggregated.
    pub fn rollups_exact(&self) -> bool {
        self.mismatches.is_empty() && self.wrong_dead_letters().next().is_none() && self.aggregated.is_equal()
    }

    /// Every distinct event generated is aggregated or dead-lettered (none lost, none twice).
    pub fn distinct_holds(&self) -> bool {
        self.distinct.is_equal()
    }

    /// At least the generator's copies were dropped as duplicates.
    pub fn duplicates_hold(&self) -> bool {
        self.duplicates.got >= self.duplicates.expected
    }

    /// Exactly once: exact rollups, every distinct event accounted for, and the copies
    /// dropped.
    pub fn is_exact(&self) -> bool {
        self.rollups_exact() && self.distinct_holds() && self.duplicates_hold()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report
    use super::*;
    use inlet_generator::{Generator, GeneratorConfig};
    use inlet_seams::DeadLetterKind;

    /// A small workload on one shard with late, invalid and malformed events and copies.
    fn expected() -> Expected {
        let mut expected = crate::expectation(1);
        let config = GeneratorConfig {
            events: 3_000,
            seed: 7,
            late_share: 0.02,
            invalid_share: 0.02,
            duplicate_share: 0.02,
            // Copies within a second: the workload spans about 3 s of event time.
            duplicate_max_delay_ms: 1_000,
            ..GeneratorConfig::default()
        };
        for ev in Generator::new(config) {
            expected.observe(&ev, 0);
        }
        assert!(
            expected.duplicates > 0 && expected.dead.len() > 1,
            "{:?} {:?}",
            expected.duplicates,
            expected.dead
        );
        expected
    }

    fn kind(name: &str) -> DeadLetterKind {
        *DeadLetterKind::ALL.iter().find(|k| k.as_str() == name).unwrap()
    }

    /// What a warehouse that got everything right holds.
    fn exact_warehouse(e: &Expected) -> (Totals, Vec<ViewingRow>, Vec<GameRow>) {
        let totals = Totals {
            aggregated: e.aggregated as i64,
            dead_letters: e
                .dead
                .iter()
                .map(|((k, f), n)| (kind(k), f.map(str::to_string), *n as i64))
                .collect(),
            duplicates: e.duplicates as i64,
        };
        let viewing = e
            .viewing
            .iter()
            .map(|((minute, title_id), agg)| ViewingRow {
                minute: *minute,
                title_id: title_id.clone(),
                agg: agg.clone(),
            })
            .collect();
        let games = e
            .games
            .iter()
            .map(|((minute, game_id), agg)| GameRow {
                minute: *minute,
                game_id: game_id.clone(),
                agg: agg.clone(),
            })
            .collect();
        (totals, viewing, games)
    }

    #[test]
    fn the_right_warehouse_is_exact() {
        let e = expected();
        let (totals, viewing, games) = exact_warehouse(&e);
        let v = Verdict::new(&totals, &viewing, &games, &e);
        assert!(v.is_exact(), "{v:?}");
        assert_eq!(v.expected_rows, (e.viewing.len(), e.games.len()));
        assert_eq!(v.distinct.expected, (e.generated - e.duplicates) as i64);
    }

    #[test]
    fn more_duplicates_than_copies_are_fine() {
        let e = expected();
        let (mut totals, viewing, games) = exact_warehouse(&e);
        totals.duplicates += 5;
        assert!(Verdict::new(&totals, &viewing, &games, &e).is_exact());
    }

    #[test]
    fn a_mismatching_row_is_not_exact() {
        let e = expected();
        let (totals, mut viewing, games) = exact_warehouse(&e);
        viewing[0].agg.plays += 1;
        let v = Verdict::new(&totals, &viewing, &games, &e);
        assert_eq!(v.mismatches.len(), 1);
        assert!(!v.rollups_exact() && !v.is_exact());
    }

    #[test]
    fn a_missing_row_is_not_exact() {
        let e = expected();
        let (totals, viewing, mut games) = exact_warehouse(&e);
        games.pop();
        let v = Verdict::new(&totals, &viewing, &games, &e);
        assert_eq!(v.mismatches.len(), 1);
        assert_eq!(v.mismatches[0].detail, "missing");
        assert!(!v.is_exact());
    }

    #[test]
    fn a_missing_dead_letter_is_not_exact() {
        let e = expected();
        let (mut totals, viewing, games) = exact_warehouse(&e);
        totals.dead_letters[0].2 -= 1;
        let v = Verdict::new(&totals, &viewing, &games, &e);
        let wrong: Vec<_> = v.wrong_dead_letters().collect();
        assert_eq!(wrong.len(), 1);
        assert_eq!(wrong[0].count.got + 1, wrong[0].count.expected);
        assert!(!v.rollups_exact() && !v.distinct_holds() && !v.is_exact());
    }

    #[test]
    fn an_unexpected_dead_letter_kind_is_not_exact() {
        let e = expected();
        let (mut totals, viewing, games) = exact_warehouse(&e);
        totals.dead_letters.push((DeadLetterKind::CorruptRecord, None, 1));
        let v = Verdict::new(&totals, &viewing, &games, &e);
        let wrong: Vec<_> = v.wrong_dead_letters().collect();
        assert_eq!(wrong.len(), 1);
        assert_eq!(
            (wrong[0].kind.as_str(), wrong[0].count),
            ("corrupt_record", Count { expected: 0, got: 1 })
        );
        assert!(!v.is_exact());
    }

    #[test]
    fn fewer_duplicates_than_copies_are_not_exact() {
        let e = expected();
        let (mut totals, viewing, games) = exact_warehouse(&e);
        // Only the duplicates are off: everything else is exact, so this alone must fail it.
        totals.duplicates -= 1;
        let v = Verdict::new(&totals, &viewing, &games, &e);
        assert!(v.rollups_exact() && v.distinct_holds());
        assert!(!v.duplicates_hold() && !v.is_exact());
    }

    #[test]
    fn fewer_aggregated_is_not_exact() {
        let e = expected();
        let (mut totals, viewing, games) = exact_warehouse(&e);
        totals.aggregated -= 1;
        let v = Verdict::new(&totals, &viewing, &games, &e);
        assert!(!v.aggregated.is_equal() && !v.rollups_exact() && !v.is_exact());
    }
}
