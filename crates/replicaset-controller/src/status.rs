//! The status an owner should have, from its pods (upstream's `calculateStatus`), and when
//! it must look again for pods still on their way to available.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde_json::{Value, json};

use crate::owner::{Condition, ReplicaStatus};
use crate::pods;

/// The condition type set while pods cannot be created or deleted.
pub const REPLICA_FAILURE: &str = "ReplicaFailure";

/// A failed attempt to create or delete pods, for the `ReplicaFailure` condition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// `FailedCreate` or `FailedDelete`.
    pub reason: &'static str,
    pub message: String,
}

/// What the status is computed from.
#[derive(Debug)]
pub struct Observed<'a> {
    pub generation: i64,
    pub template_labels: Option<&'a BTreeMap<String, String>>,
    pub min_ready_seconds: i32,
    /// The active pods the owner controls.
    pub pods: &'a [Arc<Pod>],
    /// Whether this sync failed to create or delete pods.
    pub failure: Option<Failure>,
    pub now: Timestamp,
}

fn count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// The new status, given the current one. A `ReplicaFailure` condition is added on the first
/// failure (and then kept as it was, so its time says when failures started) and removed
/// after a sync without one.
pub fn calculate(current: &ReplicaStatus, o: &Observed<'_>) -> ReplicaStatus {
    let fully_labeled = o
        .pods
        .iter()
        .filter(|p| {
            let labels = p.metadata.labels.as_ref();
            o.template_labels
                .into_iter()
                .flatten()
                .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
        })
        .count();
    let ready = o.pods.iter().filter(|p| pods::is_ready(p)).count();
    let available = o
        .pods
        .iter()
        .filter(|p| pods::is_available(p, o.min_ready_seconds, o.now))
        .count();
    let mut conditions = current.conditions.clone();
    let has_failure = conditions.iter().any(|c| c.type_ == REPLICA_FAILURE);
    match &o.failure {
        Some(f) if !has_failure => conditions.push(Condition {
            type_: REPLICA_FAILURE.to_owned(),
            status: "True".to_owned(),
            reason: Some(f.reason.to_owned()),
            message: Some(f.message.clone()),
            last_transition_time: Some(Time(o.now)),
        }),
        Some(_) => {}
        None => conditions.retain(|c| c.type_ != REPLICA_FAILURE),
    }
    ReplicaStatus {
        replicas: count(o.pods.len()),
        fully_labeled_replicas: count(fully_labeled),
        ready_replicas: count(ready),
        available_replicas: count(available),
        observed_generation: o.generation,
        conditions,
    }
}

/// How long until the next ready pod becomes available, if any is waiting for
/// `min_ready_seconds` to pass.
pub fn next_available_in(
    pods: &[Arc<Pod>],
    min_ready_seconds: i32,
    now: Timestamp,
) -> Option<Duration> {
    if min_ready_seconds <= 0 {
        return None;
    }
    let min_ready = jiff::SignedDuration::from_secs(i64::from(min_ready_seconds));
    pods.iter()
        .filter(|p| !pods::is_available(p, min_ready_seconds, now))
        .filter_map(|p| pods::ready_since(p))
        .filter_map(|since| since.checked_add(min_ready).ok())
        .map(|at| at.duration_since(now))
        .filter_map(|d| Duration::try_from(d).ok())
        .min()
        // Availability needs the minimum *strictly* passed; look just after it.
        .map(|d| d + Duration::from_millis(100))
}

/// The body of the status patch that makes the status `s`. Zeros are written out and an
/// empty condition list is `null`, so a merge patch removes what is gone.
pub fn patch(s: &ReplicaStatus) -> Value {
    json!({"status": {
        "replicas": s.replicas,
        "fullyLabeledReplicas": s.fully_labeled_replicas,
        "readyReplicas": s.ready_replicas,
        "availableReplicas": s.available_replicas,
        "observedGeneration": s.observed_generation,
        "conditions": if s.conditions.is_empty() { Value::Null } else { json!(s.conditions) },
    }})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pods::tests::{at, pod};

    const NOW: &str = "2025-01-01T12:00:00Z";

    fn labeled(mut p: Pod, pairs: &[(&str, &str)]) -> Pod {
        p.metadata.labels = Some(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        p
    }

    fn observed<'a>(
        pods: &'a [Arc<Pod>],
        labels: &'a BTreeMap<String, String>,
        min_ready: i32,
        failure: Option<Failure>,
    ) -> Observed<'a> {
        Observed {
            generation: 4,
            template_labels: Some(labels),
            min_ready_seconds: min_ready,
            pods,
            failure,
            now: at(NOW),
        }
    }

    #[test]
    fn counts_follow_labels_readiness_and_min_ready_seconds() {
        let template: BTreeMap<String, String> = [
            ("app".to_string(), "web".to_string()),
            ("v".to_string(), "2".to_string()),
        ]
        .into();
        let pods: Vec<Arc<Pod>> = vec![
            labeled(
                pod("a", "Running", Some("2025-01-01T11:00:00Z")),
                &[("app", "web"), ("v", "2"), ("x", "y")],
            ),
            labeled(
                pod("b", "Running", Some("2025-01-01T11:59:50Z")),
                &[("app", "web")],
            ),
            labeled(pod("c", "Pending", None), &[("app", "web"), ("v", "2")]),
        ]
        .into_iter()
        .map(Arc::new)
        .collect();
        let s = calculate(
            &ReplicaStatus::default(),
            &observed(&pods, &template, 30, None),
        );
        assert_eq!(
            s,
            ReplicaStatus {
                replicas: 3,
                fully_labeled_replicas: 2,
                ready_replicas: 2,
                available_replicas: 1,
                observed_generation: 4,
                conditions: vec![],
            }
        );
        // b became ready 10 s ago and needs 30: look again in just over 20 s.
        let next = next_available_in(&pods, 30, at(NOW)).unwrap();
        assert!(
            next > Duration::from_secs(20) && next < Duration::from_secs(21),
            "{next:?}"
        );
        assert_eq!(next_available_in(&pods, 0, at(NOW)), None);
        assert_eq!(next_available_in(&pods, 5, at(NOW)), None);
    }

    #[test]
    fn replica_failure_is_added_once_and_cleared_on_success() {
        let template = BTreeMap::new();
        let failure = |m: &str| {
            Some(Failure {
                reason: "FailedCreate",
                message: m.to_owned(),
            })
        };
        let first = calculate(
            &ReplicaStatus::default(),
            &observed(&[], &template, 0, failure("quota")),
        );
        assert_eq!(
            first.conditions,
            vec![Condition {
                type_: "ReplicaFailure".into(),
                status: "True".into(),
                reason: Some("FailedCreate".into()),
                message: Some("quota".into()),
                last_transition_time: Some(Time(at(NOW))),
            }]
        );
        let again = calculate(&first, &observed(&[], &template, 0, failure("other")));
        assert_eq!(
            again.conditions, first.conditions,
            "the first failure's condition stays"
        );
        let cleared = calculate(&again, &observed(&[], &template, 0, None));
        assert!(cleared.conditions.is_empty());
        assert_eq!(patch(&cleared)["status"]["conditions"], Value::Null);
        assert_eq!(
            patch(&first)["status"]["conditions"][0]["reason"],
            "FailedCreate"
        );
        assert_eq!(patch(&cleared)["status"]["replicas"], 0);
    }
}
