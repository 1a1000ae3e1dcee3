//! Sets of completion indexes as ordered, disjoint intervals, written the way
//! `status.completedIndexes` is: `"0-2,4,6-7"` (upstream's `orderedIntervals`).

use std::collections::BTreeSet;
use std::fmt;

/// Disjoint, non-adjacent, ascending `[first, last]` intervals.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Intervals(Vec<(i32, i32)>);

impl Intervals {
    /// Parses `s`, keeping only indexes below `completions`. Malformed parts are skipped
    /// (a status written by someone else must not wedge the controller).
    pub fn parse(s: &str, completions: i32) -> Intervals {
        let mut set = BTreeSet::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (first, last) = match part.split_once('-') {
                Some((a, b)) => (a.parse::<i32>(), b.parse::<i32>()),
                None => (part.parse::<i32>(), part.parse::<i32>()),
            };
            let (Ok(first), Ok(last)) = (first, last) else {
                continue;
            };
            let last = last.min(completions.saturating_sub(1));
            if first < 0 || first > last {
                continue;
            }
            // Bounded by `completions`, which the API server caps at 10^5 for Indexed Jobs.
            set.extend(first..=last);
        }
        Intervals::from_sorted(set.into_iter())
    }

    fn from_sorted(indexes: impl Iterator<Item = i32>) -> Intervals {
        let mut out: Vec<(i32, i32)> = Vec::new();
        for i in indexes {
            match out.last_mut() {
                Some(last) if i <= last.1.saturating_add(1) => last.1 = last.1.max(i),
                _ => out.push((i, i)),
            }
        }
        Intervals(out)
    }

    /// This set plus `more` (in any order).
    pub fn with(&self, more: &[i32]) -> Intervals {
        let mut all: BTreeSet<i32> = self.iter().collect();
        all.extend(more.iter().copied().filter(|i| *i >= 0));
        Intervals::from_sorted(all.into_iter())
    }

    pub fn has(&self, i: i32) -> bool {
        self.0.iter().any(|(a, b)| (*a..=*b).contains(&i))
    }

    /// How many indexes the set holds.
    pub fn total(&self) -> i32 {
        self.0
            .iter()
            .map(|(a, b)| b - a + 1)
            .fold(0i32, |acc, n| acc.saturating_add(n))
    }

    pub fn iter(&self) -> impl Iterator<Item = i32> + '_ {
        self.0.iter().flat_map(|(a, b)| *a..=*b)
    }

    /// The `n` lowest indexes below `completions` that are neither in this set nor in
    /// `taken` (indexes held by running pods).
    pub fn first_pending(&self, taken: &BTreeSet<i32>, n: usize, completions: i32) -> Vec<i32> {
        (0..completions)
            .filter(|i| !self.has(*i) && !taken.contains(i))
            .take(n)
            .collect()
    }
}

impl fmt::Display for Intervals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, (a, b)) in self.0.iter().enumerate() {
            if n > 0 {
                f.write_str(",")?;
            }
            if a == b {
                write!(f, "{a}")?;
            } else {
                write!(f, "{a}-{b}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_print_round_trip_like_upstream() {
        let cases = [
            ("", 5, ""),
            ("0", 5, "0"),
            ("0-2,4", 5, "0-2,4"),
            ("0,1,2,4", 5, "0-2,4"),
            ("3-9", 5, "3-4"),
            ("7", 5, ""),
            ("x,1,2-a,3", 5, "1,3"),
            ("2-1,0", 5, "0"),
        ];
        for (s, completions, want) in cases {
            assert_eq!(Intervals::parse(s, completions).to_string(), want, "{s}");
        }
    }

    #[test]
    fn adding_merges_neighbours() {
        let i = Intervals::parse("0-2,6", 10);
        let j = i.with(&[4, 3, 5, 9]);
        assert_eq!(j.to_string(), "0-6,9");
        assert_eq!(j.total(), 8);
        assert!(j.has(5) && !j.has(7));
    }

    #[test]
    fn pending_indexes_skip_done_and_running_ones() {
        let done = Intervals::parse("0,2", 6);
        let running: BTreeSet<i32> = [1, 4].into();
        assert_eq!(done.first_pending(&running, 5, 6), [3, 5]);
        assert_eq!(done.first_pending(&running, 1, 6), [3]);
        assert_eq!(done.first_pending(&BTreeSet::new(), 9, 3), [1]);
    }
}
