//! A StatefulSet's status from its pods (upstream's `computeReplicaStatus` and
//! `completeRollingUpdate`).
//!
//! * `replicas` counts every pod of the set, `readyReplicas` the Running and Ready ones,
//!   `availableReplicas` those ready for `minReadySeconds`; `currentReplicas` and
//!   `updatedReplicas` count the non-terminating pods at the current and update revision.
//! * Once a RollingUpdate has every pod updated and ready, the update revision becomes the
//!   current one — which is what `kubectl rollout status` waits for.

use std::sync::Arc;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetStatus};
use k8s_openapi::api::core::v1::Pod;
use serde_json::{Value, json};

use crate::history::HASH_LABEL;
use crate::pods::{is_available, is_running_and_ready, is_terminating};

/// What the status is computed from, besides the pods.
pub struct Observed<'a> {
    pub current_revision: &'a str,
    pub update_revision: &'a str,
    pub collision_count: i32,
    pub now: Timestamp,
}

fn revision(pod: &Pod) -> Option<&str> {
    pod.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(HASH_LABEL))
        .map(String::as_str)
}

/// The status `set` should have.
pub fn compute(set: &StatefulSet, pods: &[Arc<Pod>], o: &Observed) -> StatefulSetStatus {
    let spec = set.spec.as_ref();
    let min_ready = spec.and_then(|s| s.min_ready_seconds).unwrap_or(0);
    let rolling = spec
        .and_then(|s| s.update_strategy.as_ref())
        .and_then(|u| u.type_.as_deref())
        .is_none_or(|t| t == "RollingUpdate");
    let count = |f: &dyn Fn(&Pod) -> bool| {
        i32::try_from(pods.iter().filter(|p| f(p)).count()).unwrap_or(i32::MAX)
    };
    let mut s = StatefulSetStatus {
        observed_generation: set.metadata.generation,
        replicas: count(&|_| true),
        ready_replicas: Some(count(&is_running_and_ready)),
        available_replicas: Some(count(&|p| {
            is_running_and_ready(p) && is_available(p, min_ready, o.now)
        })),
        current_replicas: Some(count(&|p| {
            !is_terminating(p) && revision(p) == Some(o.current_revision)
        })),
        updated_replicas: Some(count(&|p| {
            !is_terminating(p) && revision(p) == Some(o.update_revision)
        })),
        current_revision: Some(o.current_revision.to_owned()),
        update_revision: Some(o.update_revision.to_owned()),
        collision_count: Some(o.collision_count),
        conditions: set.status.as_ref().and_then(|s| s.conditions.clone()),
    };
    if rolling && s.updated_replicas == Some(s.replicas) && s.ready_replicas == Some(s.replicas) {
        s.current_replicas = s.updated_replicas;
        s.current_revision = s.update_revision.clone();
    }
    s
}

/// A merge patch writing every field `compute` sets.
pub fn patch(s: &StatefulSetStatus) -> Value {
    json!({"status": {
        "observedGeneration": s.observed_generation,
        "replicas": s.replicas,
        "readyReplicas": s.ready_replicas,
        "availableReplicas": s.available_replicas,
        "currentReplicas": s.current_replicas,
        "updatedReplicas": s.updated_replicas,
        "currentRevision": s.current_revision,
        "updateRevision": s.update_revision,
        "collisionCount": s.collision_count,
    }})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pods::tests::{at, pod};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn at_rev(mut p: Pod, rev: &str) -> Arc<Pod> {
        p.metadata.labels = Some([(HASH_LABEL.to_string(), rev.to_string())].into());
        Arc::new(p)
    }

    #[test]
    fn counts_and_rollout_completion() {
        let mut set = StatefulSet::default();
        set.metadata.generation = Some(3);
        let now = at("2025-01-01T00:01:00Z");
        let ready = || pod("a", "Running", Some("2025-01-01T00:00:00Z"));
        let mut terminating = ready();
        terminating.metadata.deletion_timestamp = Some(Time(now));
        let pods = vec![
            at_rev(ready(), "old"),
            at_rev(ready(), "new"),
            at_rev(pod("c", "Pending", None), "new"),
            at_rev(terminating, "new"),
        ];
        let o = Observed {
            current_revision: "old",
            update_revision: "new",
            collision_count: 0,
            now,
        };
        let s = compute(&set, &pods, &o);
        assert_eq!(s.observed_generation, Some(3));
        assert_eq!(s.replicas, 4);
        assert_eq!(s.ready_replicas, Some(3));
        assert_eq!(s.available_replicas, Some(3));
        assert_eq!(s.current_replicas, Some(1));
        assert_eq!(s.updated_replicas, Some(2));
        assert_eq!(s.current_revision.as_deref(), Some("old"));

        let done = vec![at_rev(ready(), "new"), at_rev(ready(), "new")];
        let s = compute(&set, &done, &o);
        assert_eq!(s.current_revision.as_deref(), Some("new"));
        assert_eq!(s.current_replicas, Some(2));
        assert_eq!(patch(&s)["status"]["currentRevision"], "new");

        let mut on_delete = set.clone();
        on_delete.spec = Some(k8s_openapi::api::apps::v1::StatefulSetSpec {
            update_strategy: Some(k8s_openapi::api::apps::v1::StatefulSetUpdateStrategy {
                type_: Some("OnDelete".into()),
                rolling_update: None,
            }),
            ..Default::default()
        });
        let s = compute(&on_delete, &done, &o);
        assert_eq!(s.current_revision.as_deref(), Some("old"));
    }
}
