//! The figures of one measured stage, from three client-side timestamps per pod (nanoseconds
//! after a common base): the create request going out, its 201 coming back, and the first
//! watch frame showing the pod with `spec.nodeName` set.
//!
//! * pods/s: bound pods over the time from the first create sent to the last pod bound (what
//!   upstream's scheduler_perf calls the average throughput of a run);
//! * steady pods/s: the pods bound between the 10th and the 90th percentile of the binding
//!   times, over that span — leaves out the ramp-up and the tail;
//! * latency: create answered → bound, per pod. The 201 is the client's proof that the pod
//!   exists; a binding seen before it (possible: the watch and the create answer race) counts
//!   as zero.

use std::time::Duration;

use crate::stats::Latencies;

/// Per-pod timestamps of a stage, indexed by pod; None where it never happened.
#[derive(Debug, Clone, Default)]
pub struct Stamps {
    pub sent: Vec<Option<u64>>,
    pub created: Vec<Option<u64>>,
    pub bound: Vec<Option<u64>>,
}

#[derive(Debug, Clone, Default)]
pub struct Figures {
    pub pods: usize,
    pub created: usize,
    pub bound: usize,
    /// First create sent → last pod bound.
    pub span: Duration,
    pub pods_per_sec: f64,
    /// Between the 10% and the 90% binding; None with fewer than 10 bindings.
    pub steady_per_sec: Option<f64>,
    /// Created pods over first sent → last created: the rate the clients offered.
    pub creates_per_sec: f64,
    pub latency: Latencies,
}

impl Stamps {
    pub fn new(n: usize) -> Stamps {
        Stamps {
            sent: vec![None; n],
            created: vec![None; n],
            bound: vec![None; n],
        }
    }

    pub fn figures(&self) -> Figures {
        let first_sent = self.sent.iter().flatten().min().copied();
        let last_created = self.created.iter().flatten().max().copied();
        let mut bound: Vec<u64> = self.bound.iter().flatten().copied().collect();
        bound.sort_unstable();
        let created = self.created.iter().flatten().count();
        let secs = |from: u64, to: u64| to.saturating_sub(from) as f64 / 1e9;
        let mut f = Figures {
            pods: self.sent.len(),
            created,
            bound: bound.len(),
            ..Figures::default()
        };
        let Some(start) = first_sent else {
            return f;
        };
        if let Some(last) = last_created {
            f.creates_per_sec = created as f64 / secs(start, last).max(1e-9);
        }
        if let Some(last) = bound.last().copied() {
            f.span = Duration::from_nanos(last.saturating_sub(start));
            f.pods_per_sec = bound.len() as f64 / secs(start, last).max(1e-9);
        }
        f.steady_per_sec = steady(&bound);
        f.latency = Latencies::from_nanos(
            self.created
                .iter()
                .zip(&self.bound)
                .filter_map(|(c, b)| Some(b.as_ref()?.saturating_sub(*c.as_ref()?)))
                .collect(),
        );
        f
    }
}

/// Bindings per second between the 10% and the 90% binding of sorted times.
fn steady(sorted: &[u64]) -> Option<f64> {
    let n = sorted.len();
    if n < 10 {
        return None;
    }
    let lo = n / 10;
    let hi = n * 9 / 10;
    let (a, b) = (sorted[lo], sorted[hi - 1]);
    let secs = b.saturating_sub(a) as f64 / 1e9;
    Some((hi - 1 - lo) as f64 / secs.max(1e-9))
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn rates_and_latencies_of_a_run() {
        // 4 pods sent at 0, created at 0.1 s, bound 0.5 s .. 2 s after the start.
        let mut st = Stamps::new(4);
        for i in 0..4 {
            st.sent[i] = Some(0);
            st.created[i] = Some(S / 10);
        }
        st.bound = vec![Some(S / 2), Some(S), Some(3 * S / 2), Some(2 * S)];
        let f = st.figures();
        assert_eq!((f.pods, f.created, f.bound), (4, 4, 4));
        assert_eq!(f.span, Duration::from_secs(2));
        assert!((f.pods_per_sec - 2.0).abs() < 1e-9);
        assert!((f.creates_per_sec - 40.0).abs() < 1e-6);
        assert_eq!(f.latency.median(), Duration::from_millis(900));
        assert_eq!(f.latency.max(), Duration::from_millis(1900));
        assert_eq!(f.steady_per_sec, None);
    }

    #[test]
    fn steady_rate_leaves_out_ramp_and_tail() {
        // 100 bindings: the first 10 and the last 10 are slow (1 s apart), the middle 80
        // come 10 ms apart.
        let mut t = 0u64;
        let mut times = Vec::new();
        for i in 0..100 {
            t += if (10..90).contains(&i) { S / 100 } else { S };
            times.push(t);
        }
        let r = steady(&times).expect("enough samples");
        // From binding 10 to binding 89: 79 intervals of 10 ms.
        assert!((r - 100.0).abs() < 1e-6, "{r}");
    }

    #[test]
    fn missing_stamps_are_left_out() {
        let mut st = Stamps::new(3);
        st.sent = vec![Some(S), Some(S), None];
        st.created = vec![Some(2 * S), None, None];
        // A binding seen before the create answered counts as zero latency.
        st.bound = vec![Some(S + S / 2), None, None];
        let f = st.figures();
        assert_eq!((f.pods, f.created, f.bound), (3, 1, 1));
        assert_eq!(f.latency.len(), 1);
        assert_eq!(f.latency.max(), Duration::ZERO);
        assert_eq!(f.span, Duration::from_millis(500));
        assert_eq!(Stamps::new(2).figures().bound, 0);
    }
}
