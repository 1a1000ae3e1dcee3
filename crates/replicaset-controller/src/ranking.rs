//! Which pods go first when an owner has too many: upstream's `ActivePodsWithRanks` order,
//! as a pure function of the pods and the time.
//!
//! A pod sorts earlier (is deleted sooner) when, comparing criteria in order until one
//! differs:
//! 1. it is not assigned to a node (and the other is);
//! 2. its phase is earlier in Pending < Unknown < Running;
//! 3. it is not ready;
//! 4. its `controller.kubernetes.io/pod-deletion-cost` annotation is lower;
//! 5. more related pods (this owner's, and its siblings' under the same controller) run on
//!    its node — spreading what remains;
//! 6. both being ready, it became ready more recently, compared by the base-2 logarithm of
//!    the time since (pods of similar age tie, and the UID decides, so scale-down does not
//!    always hit the very newest pod — upstream's LogarithmicScaleDown);
//! 7. its containers have restarted more (regular ones, then sidecars);
//! 8. it was created more recently (by the same logarithmic buckets, UID deciding ties).
//!
//! Upstream's comparison is not quite a total order (the UID tie-break inside a bucket of
//! step 6 can contradict steps 7 and 8), so the pods are ordered with a merge sort of our
//! own, which cannot panic on an inconsistent comparison the way the standard library's
//! sorts may.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;

use crate::pods;

/// The annotation that lets users say which pods are cheaper to delete.
pub const DELETION_COST: &str = "controller.kubernetes.io/pod-deletion-cost";

/// What the order looks at, computed once per pod.
#[derive(Debug)]
struct Facts {
    assigned: bool,
    phase: u8,
    ready: bool,
    cost: i32,
    colocated: usize,
    ready_since: Option<Timestamp>,
    /// Regular containers' highest restart count, then sidecars'.
    restarts: (i32, i32),
    created: Option<Timestamp>,
    uid: String,
}

fn phase_ordinal(pod: &Pod) -> u8 {
    match pod.status.as_ref().and_then(|s| s.phase.as_deref()) {
        Some("Unknown") => 1,
        Some("Running") => 2,
        // Pending, and anything unexpected, as upstream's map lookup defaulting to 0.
        _ => 0,
    }
}

/// The pod's deletion cost; missing or invalid is 0, as upstream.
fn deletion_cost(pod: &Pod) -> i32 {
    pod.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(DELETION_COST))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn node_name(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .unwrap_or_default()
}

fn facts(pod: &Pod, colocated: usize) -> Facts {
    Facts {
        assigned: !node_name(pod).is_empty(),
        phase: phase_ordinal(pod),
        ready: pods::is_ready(pod),
        cost: deletion_cost(pod),
        colocated,
        ready_since: pods::ready_since(pod),
        restarts: pods::max_restarts(pod),
        created: pod.metadata.creation_timestamp.as_ref().map(|t| t.0),
        uid: pod.metadata.uid.clone().unwrap_or_default(),
    }
}

/// `floor(log2(now - t))` in nanoseconds, -1 for a time not in the past.
fn log_age(t: Timestamp, now: Timestamp) -> i64 {
    let nanos = now.as_nanosecond() - t.as_nanosecond();
    if nanos <= 0 {
        return -1;
    }
    // `ilog2` is exact where upstream's float log2 may round up just below a power of two;
    // the buckets agree everywhere else.
    i64::from(nanos.ilog2())
}

/// Upstream's comparison of two times where a missing time sorts first and later sorts
/// earlier, refined into logarithmic buckets with the UID deciding inside a bucket.
fn newer_first(
    a: Option<Timestamp>,
    b: Option<Timestamp>,
    ua: &str,
    ub: &str,
    now: Timestamp,
) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(x), Some(y)) if x == y => Ordering::Equal,
        (Some(x), Some(y)) => match log_age(x, now).cmp(&log_age(y, now)) {
            Ordering::Equal => ua.cmp(ub),
            o => o,
        },
    }
}

fn compare(a: &Facts, b: &Facts, now: Timestamp) -> Ordering {
    a.assigned
        .cmp(&b.assigned)
        .then(a.phase.cmp(&b.phase))
        .then(a.ready.cmp(&b.ready))
        .then(a.cost.cmp(&b.cost))
        .then(b.colocated.cmp(&a.colocated))
        .then_with(|| {
            if a.ready && b.ready && a.ready_since != b.ready_since {
                newer_first(a.ready_since, b.ready_since, &a.uid, &b.uid, now)
            } else {
                Ordering::Equal
            }
        })
        .then(b.restarts.cmp(&a.restarts))
        .then_with(|| newer_first(a.created, b.created, &a.uid, &b.uid, now))
}

/// The `count` pods of `candidates` to delete first. `related` are the active and inactive
/// pods of this owner and its siblings, for the co-location criterion (only active ones on
/// a node count).
pub fn pods_to_delete(
    candidates: &[Arc<Pod>],
    related: &[Arc<Pod>],
    count: usize,
    now: Timestamp,
) -> Vec<Arc<Pod>> {
    if count >= candidates.len() {
        return candidates.to_vec();
    }
    let mut per_node: HashMap<&str, usize> = HashMap::new();
    for p in related.iter().filter(|p| pods::is_active(p)) {
        *per_node.entry(node_name(p)).or_default() += 1;
    }
    let ranked: Vec<(Facts, &Arc<Pod>)> = candidates
        .iter()
        .map(|p| {
            let colocated = per_node.get(node_name(p)).copied().unwrap_or(0);
            (facts(p, colocated), p)
        })
        .collect();
    merge_sort(ranked, &mut |a, b| compare(&a.0, &b.0, now))
        .into_iter()
        .take(count)
        .map(|(_, p)| p.clone())
        .collect()
}

/// Sorts `v` stably by `cmp` in O(n log n) (a merge sort). Whatever `cmp` answers, this
/// returns a permutation of `v` and never panics — the standard library's sorts may panic
/// when the order is inconsistent, and an insertion sort would take quadratic time on the
/// async runtime for an owner with thousands of pods.
fn merge_sort<T>(v: Vec<T>, cmp: &mut impl FnMut(&T, &T) -> Ordering) -> Vec<T> {
    if v.len() <= 1 {
        return v;
    }
    let mut left = v;
    let right = left.split_off(left.len() / 2);
    let (left, right) = (merge_sort(left, cmp), merge_sort(right, cmp));
    let mut out = Vec::with_capacity(left.len() + right.len());
    let (mut l, mut r) = (left.into_iter().peekable(), right.into_iter().peekable());
    loop {
        // Ties take the left element: stable.
        let take_right = match (l.peek(), r.peek()) {
            (Some(a), Some(b)) => cmp(a, b) == Ordering::Greater,
            (Some(_), None) => false,
            (None, Some(_)) => true,
            (None, None) => break,
        };
        out.extend(if take_right { r.next() } else { l.next() });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pods::tests::{at, pod};
    use k8s_openapi::api::core::v1::ContainerStatus;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    const NOW: &str = "2025-01-01T12:00:00Z";

    fn on(mut p: Pod, node: &str) -> Pod {
        if let Some(s) = p.spec.as_mut() {
            s.node_name = Some(node.into());
        }
        p
    }

    fn created(mut p: Pod, t: &str) -> Pod {
        p.metadata.creation_timestamp = Some(Time(at(t)));
        p
    }

    fn restarts(mut p: Pod, n: i32) -> Pod {
        if let Some(s) = p.status.as_mut() {
            s.container_statuses = Some(vec![ContainerStatus {
                restart_count: n,
                ..Default::default()
            }]);
        }
        p
    }

    fn sidecar_restarts(mut p: Pod, n: i32) -> Pod {
        if let Some(s) = p.spec.as_mut() {
            s.init_containers = Some(vec![k8s_openapi::api::core::v1::Container {
                name: "side".into(),
                restart_policy: Some("Always".into()),
                ..Default::default()
            }]);
        }
        if let Some(s) = p.status.as_mut() {
            s.init_container_statuses = Some(vec![ContainerStatus {
                name: "side".into(),
                restart_count: n,
                ..Default::default()
            }]);
        }
        p
    }

    fn cost(mut p: Pod, c: &str) -> Pod {
        p.metadata.annotations = Some([(DELETION_COST.to_string(), c.to_string())].into());
        p
    }

    fn with_uid(mut p: Pod, uid: &str) -> Pod {
        p.metadata.uid = Some(uid.into());
        p
    }

    /// Pairs where the first must be deleted before the second.
    #[test]
    fn the_order_follows_active_pods_with_ranks() {
        let ready = |name: &str, since: &str| on(pod(name, "Running", Some(since)), "n1");
        let cases: Vec<(&str, Pod, Pod)> = vec![
            (
                "unassigned before assigned",
                pod("a", "Running", None),
                on(pod("b", "Pending", None), "n1"),
            ),
            (
                "pending before unknown",
                on(pod("a", "Pending", None), "n1"),
                on(pod("b", "Unknown", None), "n1"),
            ),
            (
                "unknown before running",
                on(pod("a", "Unknown", None), "n1"),
                on(pod("b", "Running", None), "n1"),
            ),
            (
                "not ready before ready",
                on(pod("a", "Running", None), "n1"),
                ready("b", "2025-01-01T00:00:00Z"),
            ),
            (
                "lower deletion cost first",
                cost(ready("a", "2025-01-01T11:59:00Z"), "-5"),
                ready("b", "2025-01-01T00:00:00Z"),
            ),
            (
                "invalid deletion cost is zero",
                cost(ready("a", "2025-01-01T00:00:00Z"), "nope"),
                cost(ready("b", "2025-01-01T11:59:00Z"), "1"),
            ),
            (
                "more recently ready first",
                ready("a", "2025-01-01T11:59:00Z"),
                ready("b", "2025-01-01T09:00:00Z"),
            ),
            (
                "same ready bucket: uid decides, not restarts",
                with_uid(ready("a", "2025-01-01T11:59:00Z"), "u1"),
                with_uid(restarts(ready("b", "2025-01-01T11:59:01Z"), 9), "u2"),
            ),
            (
                "higher restart count first",
                restarts(on(pod("a", "Running", None), "n1"), 3),
                restarts(on(pod("b", "Running", None), "n1"), 1),
            ),
            (
                "same regular restarts: more sidecar restarts first",
                sidecar_restarts(restarts(on(pod("a", "Running", None), "n1"), 1), 2),
                sidecar_restarts(restarts(on(pod("b", "Running", None), "n1"), 1), 0),
            ),
            (
                "missing creation time first",
                on(pod("a", "Running", None), "n1"),
                created(on(pod("b", "Running", None), "n1"), "2025-01-01T11:00:00Z"),
            ),
            (
                "newer first",
                created(on(pod("a", "Running", None), "n1"), "2025-01-01T11:59:00Z"),
                created(on(pod("b", "Running", None), "n1"), "2025-01-01T01:00:00Z"),
            ),
        ];
        let now = at(NOW);
        for (what, first, second) in cases {
            let (first, second) = (Arc::new(first), Arc::new(second));
            for input in [
                vec![first.clone(), second.clone()],
                vec![second.clone(), first.clone()],
            ] {
                let got = pods_to_delete(&input, &input, 1, now);
                assert_eq!(got[0].metadata.name, first.metadata.name, "{what}");
            }
        }
    }

    #[test]
    fn pods_doubled_up_on_a_node_go_before_lonely_ones() {
        let now = at(NOW);
        let a = Arc::new(on(pod("a", "Running", None), "n1"));
        let b = Arc::new(on(pod("b", "Running", None), "n2"));
        let sibling = Arc::new(on(pod("s", "Running", None), "n2"));
        let mut gone = on(pod("g", "Running", None), "n1");
        gone.metadata.deletion_timestamp = Some(Time(at(NOW)));
        let related = vec![a.clone(), b.clone(), sibling, Arc::new(gone)];
        let got = pods_to_delete(&[a, b], &related, 1, now);
        assert_eq!(got[0].metadata.name.as_deref(), Some("b"));
    }

    #[test]
    fn a_scale_down_takes_the_head_of_the_order() {
        let now = at(NOW);
        let pods: Vec<Arc<Pod>> = vec![
            Arc::new(on(
                pod("running-ready", "Running", Some("2025-01-01T00:00:00Z")),
                "n1",
            )),
            Arc::new(pod("unscheduled", "Pending", None)),
            Arc::new(on(pod("running", "Running", None), "n2")),
            Arc::new(on(pod("pending", "Pending", None), "n3")),
        ];
        let names = |v: Vec<Arc<Pod>>| -> Vec<String> {
            v.iter().filter_map(|p| p.metadata.name.clone()).collect()
        };
        assert_eq!(
            names(pods_to_delete(&pods, &pods, 3, now)),
            ["unscheduled", "pending", "running"]
        );
        assert_eq!(names(pods_to_delete(&pods, &pods, 9, now)).len(), 4);
        assert!(pods_to_delete(&pods, &pods, 0, now).is_empty());
    }

    #[test]
    fn the_merge_sort_is_stable_and_survives_inconsistent_orders() {
        // By the first element only: the second records the input order.
        let v: Vec<(u32, usize)> = (0..1000).map(|i| ((i * 7919) % 13, i as usize)).collect();
        let mut want = v.clone();
        want.sort_by_key(|p| p.0);
        assert_eq!(merge_sort(v.clone(), &mut |a, b| a.0.cmp(&b.0)), want);
        // A comparison that contradicts itself still yields every element exactly once.
        let mut calls = 0u64;
        let mut chaos = |a: &(u32, usize), b: &(u32, usize)| {
            calls += 1;
            [Ordering::Less, Ordering::Greater, Ordering::Equal]
                [((calls ^ a.1 as u64 ^ b.1 as u64) % 3) as usize]
        };
        let mut got: Vec<usize> = merge_sort(v, &mut chaos).into_iter().map(|p| p.1).collect();
        assert!(calls < 1000 * 12, "O(n log n) comparisons: {calls}");
        got.sort_unstable();
        assert_eq!(got, (0..1000).collect::<Vec<_>>());
    }

    #[test]
    fn log_ages_bucket_by_powers_of_two() {
        let now = at(NOW);
        assert_eq!(log_age(now, now), -1);
        assert_eq!(log_age(at("2025-01-01T12:00:01Z"), now), -1);
        // 1 s = 1e9 ns; 2^29 < 1e9 < 2^30.
        assert_eq!(log_age(at("2025-01-01T11:59:59Z"), now), 29);
        assert_eq!(log_age(at("2025-01-01T11:59:58Z"), now), 30);
    }
}
