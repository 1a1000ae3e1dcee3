//! Latency samples and the percentiles reported from them.
//!
//! Percentiles use the nearest-rank definition (the smallest sample such that at least p% of
//! the samples are at or below it), so p100 is the maximum and every reported figure is a
//! latency that was actually observed, never an interpolation.

use std::time::Duration;

/// A set of latency samples, sorted once on construction.
#[derive(Debug, Clone, Default)]
pub struct Latencies {
    sorted_nanos: Vec<u64>,
}

impl Latencies {
    /// Takes ownership of unsorted samples in nanoseconds.
    pub fn from_nanos(mut nanos: Vec<u64>) -> Latencies {
        nanos.sort_unstable();
        Latencies {
            sorted_nanos: nanos,
        }
    }

    pub fn from_durations(samples: &[Duration]) -> Latencies {
        Latencies::from_nanos(samples.iter().map(|d| duration_nanos(*d)).collect())
    }

    pub fn len(&self) -> usize {
        self.sorted_nanos.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sorted_nanos.is_empty()
    }

    /// The nearest-rank percentile `p` (0 < p <= 100); zero when there are no samples.
    pub fn percentile(&self, p: f64) -> Duration {
        let n = self.sorted_nanos.len();
        if n == 0 {
            return Duration::ZERO;
        }
        let rank = ((p / 100.0) * n as f64).ceil() as usize;
        let idx = rank.clamp(1, n) - 1;
        Duration::from_nanos(self.sorted_nanos[idx])
    }

    pub fn median(&self) -> Duration {
        self.percentile(50.0)
    }

    pub fn min(&self) -> Duration {
        self.sorted_nanos
            .first()
            .map_or(Duration::ZERO, |n| Duration::from_nanos(*n))
    }

    pub fn max(&self) -> Duration {
        self.sorted_nanos
            .last()
            .map_or(Duration::ZERO, |n| Duration::from_nanos(*n))
    }

    pub fn mean(&self) -> Duration {
        if self.sorted_nanos.is_empty() {
            return Duration::ZERO;
        }
        let sum: u128 = self.sorted_nanos.iter().map(|n| u128::from(*n)).sum();
        let mean = sum / self.sorted_nanos.len() as u128;
        Duration::from_nanos(u64::try_from(mean).unwrap_or(u64::MAX))
    }
}

/// Throughput over consecutive slices of a run: the completions (nanoseconds after the start)
/// are split into `slices` groups of equal count in completion order, and each group's rate is
/// its count over the time from the previous group's last completion (or the start) to its own
/// last. Shows whether a run slowed down as it went (e.g. as the store grew).
pub fn rate_by_slice(mut ends: Vec<u64>, slices: usize) -> Vec<f64> {
    if ends.is_empty() || slices == 0 {
        return Vec::new();
    }
    ends.sort_unstable();
    let n = ends.len();
    let mut out = Vec::with_capacity(slices);
    let mut prev_end = 0u64;
    let mut prev_idx = 0usize;
    for k in 1..=slices {
        let idx = n * k / slices;
        if idx <= prev_idx {
            continue;
        }
        let end = ends[idx - 1];
        let secs = (end.saturating_sub(prev_end)) as f64 / 1e9;
        out.push((idx - prev_idx) as f64 / secs.max(1e-9));
        (prev_end, prev_idx) = (end, idx);
    }
    out
}

/// Nanoseconds of a duration, saturating (a u64 of nanoseconds is 584 years).
pub fn duration_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn nearest_rank_percentiles_of_one_to_hundred() {
        let l = Latencies::from_durations(&(1..=100).rev().map(ms).collect::<Vec<_>>());
        assert_eq!(l.len(), 100);
        assert_eq!(l.median(), ms(50));
        assert_eq!(l.percentile(99.0), ms(99));
        assert_eq!(l.percentile(100.0), ms(100));
        assert_eq!(l.percentile(0.1), ms(1));
        assert_eq!(l.min(), ms(1));
        assert_eq!(l.max(), ms(100));
    }

    #[test]
    fn small_sets_report_observed_values() {
        // Five samples: p50 is the 3rd, p99 the 5th (the maximum).
        let l = Latencies::from_durations(&[ms(30), ms(10), ms(50), ms(20), ms(40)]);
        assert_eq!(l.median(), ms(30));
        assert_eq!(l.percentile(99.0), ms(50));
        // An even count takes the lower middle sample under nearest rank.
        let l = Latencies::from_durations(&[ms(4), ms(1), ms(3), ms(2)]);
        assert_eq!(l.median(), ms(2));
    }

    #[test]
    fn mean_of_samples() {
        let l = Latencies::from_durations(&[ms(1), ms(2), ms(6)]);
        assert_eq!(l.mean(), ms(3));
        assert_eq!(Latencies::default().mean(), Duration::ZERO);
    }

    #[test]
    fn rates_by_slice_show_a_slowdown() {
        // 4 completions in the first second, 4 more over the next two seconds.
        let s = 1_000_000_000u64;
        let ends = vec![
            s / 4,
            s / 2,
            3 * s / 4,
            s,
            3 * s / 2,
            2 * s,
            5 * s / 2,
            3 * s,
        ];
        assert_eq!(rate_by_slice(ends.clone(), 2), vec![4.0, 2.0]);
        assert_eq!(rate_by_slice(ends, 1), vec![8.0 / 3.0]);
        assert!(rate_by_slice(Vec::new(), 4).is_empty());
        // More slices than samples: empty slices are skipped.
        assert_eq!(rate_by_slice(vec![s], 3), vec![1.0]);
    }

    #[test]
    fn empty_set_is_zero() {
        let l = Latencies::default();
        assert!(l.is_empty());
        assert_eq!(l.percentile(99.0), Duration::ZERO);
        assert_eq!(l.max(), Duration::ZERO);
    }
}
