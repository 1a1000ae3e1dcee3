//! Taint-based eviction (`taint-eviction-controller`, upstream's tainteviction controller).
//!
//! A pod bound to a node with NoExecute taints is deleted:
//! * at once, if some NoExecute taint is not tolerated;
//! * after the smallest `tolerationSeconds` of the tolerations it uses, counted from when this
//!   controller first saw the pod under those taints (a timer per pod);
//! * never, if every taint is tolerated without `tolerationSeconds`.
//!
//! Guarantees:
//! * A timer is cancelled (with upstream's `TaintManagerEviction` "Cancelling deletion" Event)
//!   as soon as the taints go away, the pod moves, or it stops needing one; a taint that comes
//!   back starts a new timer.
//! * Before deleting, the pod gets the `DisruptionTarget` condition (reason
//!   `DeletionByTaintManager`) so its owner can tell an eviction from a crash; the delete is
//!   conditional on the pod's UID, so a replacement of the same name is never hit.
//! * Pods already being deleted are left alone.
//! * A failed eviction is retried (with backoff) as still due: its timer is dropped only once
//!   the pod is deleted.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use controller_runtime::{Action, Change, Context, Informer, Key, Reconcile, Recorder, WorkQueue};
use k8s_openapi::api::core::v1::{Node, Pod, Taint, Toleration};
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, Preconditions};
use serde_json::json;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::taints::{no_execute_taints, tolerates};

#[derive(Debug, thiserror::Error)]
pub enum EvictionError {
    #[error("adding the DisruptionTarget condition to pod {pod}")]
    Condition {
        pod: String,
        #[source]
        source: kube::Error,
    },
    #[error("deleting pod {pod}")]
    Delete {
        pod: String,
        #[source]
        source: kube::Error,
    },
}

/// What the taints mean for one pod.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// No NoExecute taints, or all tolerated forever.
    Keep,
    /// Some taint is not tolerated.
    EvictNow,
    /// Tolerated for this long.
    EvictAfter(Duration),
}

/// Upstream's `processPodOnNode` decision for a pod with `tolerations` on a node with the
/// NoExecute `taints`: each taint is matched by the first toleration that tolerates it, and
/// the shortest `tolerationSeconds` among those wins (zero or negative means at once).
pub fn decide(tolerations: &[Toleration], taints: &[Taint]) -> Decision {
    let mut shortest: Option<i64> = None;
    for taint in taints {
        let Some(t) = tolerations.iter().find(|t| tolerates(t, taint)) else {
            return Decision::EvictNow;
        };
        if let Some(s) = t.toleration_seconds {
            shortest = Some(shortest.map_or(s, |m| m.min(s)));
        }
    }
    match shortest {
        None => Decision::Keep,
        Some(s) if s <= 0 => Decision::EvictNow,
        Some(s) => Decision::EvictAfter(Duration::from_secs(s.unsigned_abs())),
    }
}

/// Starts the controller for one term.
pub fn start(ctx: &Context, tasks: &mut JoinSet<()>) {
    let nodes = ctx.informers.get::<Node>();
    let pods = ctx.informers.get::<Pod>();
    let queue = WorkQueue::new();
    {
        let q = queue.clone();
        pods.on_change(move |c: &Change<Pod>| {
            let interesting = match c {
                Change::Added(p) => node_of(p).is_some(),
                Change::Deleted(_) => true,
                Change::Updated { old, new } => {
                    node_of(old) != node_of(new)
                        || tolerations_of(old) != tolerations_of(new)
                        || old.metadata.deletion_timestamp != new.metadata.deletion_timestamp
                }
            };
            if interesting {
                q.add(Key::of(c.object().as_ref()));
            }
        });
    }
    {
        let (q, pods) = (queue.clone(), pods.clone());
        nodes.on_change(move |c: &Change<Node>| {
            // Only a change of NoExecute taints re-judges the node's pods (status updates,
            // heartbeats and labels do not).
            let relevant = match c {
                Change::Added(n) => !no_execute_taints(n).is_empty(),
                Change::Updated { old, new } => no_execute_taints(old) != no_execute_taints(new),
                Change::Deleted(_) => true,
            };
            if !relevant {
                return;
            }
            let name = c.object().metadata.name.clone().unwrap_or_default();
            for p in pods.filter(|p| node_of(p) == Some(name.as_str())) {
                q.add(Key::of(p.as_ref()));
            }
        });
    }
    let reconciler = Arc::new(TaintEviction {
        client: ctx.client.clone(),
        nodes,
        pods,
        recorder: ctx.events.recorder("taint-eviction-controller"),
        timers: Mutex::new(HashMap::new()),
    });
    controller_runtime::spawn_workers(
        "taint-eviction-controller",
        reconciler,
        queue,
        ctx.settings.workers,
        &ctx.informers,
        tasks,
    );
}

fn node_of(p: &Pod) -> Option<&str> {
    p.spec.as_ref().and_then(|s| s.node_name.as_deref())
}

fn tolerations_of(p: &Pod) -> Option<&Vec<Toleration>> {
    p.spec.as_ref().and_then(|s| s.tolerations.as_ref())
}

/// A pending eviction: which pod (by UID) and since when.
struct Timer {
    uid: String,
    since: Instant,
}

/// When a pending eviction is due.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Due {
    Now,
    Later(Duration),
    /// Beyond the end of time: tolerated for all practical purposes.
    Never,
}

/// Starts (or keeps) the pod's timer and says when it fires. The timer runs from when it was
/// first needed, so re-judging a pod (its node's taints changed from unreachable to
/// not-ready, say) does not push its eviction back; a new pod under the same name (another
/// UID) starts afresh.
fn schedule(
    timers: &mut HashMap<Key, Timer>,
    key: &Key,
    uid: &str,
    wait: Duration,
    now: Instant,
) -> Due {
    let t = timers.entry(key.clone()).or_insert(Timer {
        uid: uid.to_owned(),
        since: now,
    });
    if t.uid != uid {
        *t = Timer {
            uid: uid.to_owned(),
            since: now,
        };
    }
    match t.since.checked_add(wait) {
        Some(at) if at > now => Due::Later(at - now),
        Some(_) => Due::Now,
        None => Due::Never,
    }
}

struct TaintEviction {
    client: kube::Client,
    nodes: Informer<Node>,
    pods: Informer<Pod>,
    recorder: Recorder,
    timers: Mutex<HashMap<Key, Timer>>,
}

impl TaintEviction {
    fn timers(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Timer>> {
        self.timers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Drops the pod's timer; tells the pod's Events when one was running.
    fn cancel(&self, key: &Key, pod: Option<&Pod>) {
        let had = self.timers().remove(key).is_some();
        if had && let Some(p) = pod {
            self.recorder.normal(
                p,
                "TaintManagerEviction",
                &format!("Cancelling deletion of Pod {key}"),
            );
        }
    }

    /// Marks the pod and deletes it. The caller drops the timer only once this succeeded: a
    /// retry after a failure must find the eviction still due, not start the wait over.
    async fn evict(&self, key: &Key, pod: &Pod) -> Result<(), EvictionError> {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &key.namespace);
        self.recorder.normal(
            pod,
            "TaintManagerEviction",
            &format!("Marking for deletion Pod {key}"),
        );
        let has_condition = pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| {
                cs.iter()
                    .any(|c| c.type_ == "DisruptionTarget" && c.status == "True")
            });
        if !has_condition {
            // The UID guards against a replacement of the same name (uid is immutable: 422).
            let patch = json!({"metadata": {"uid": pod.metadata.uid}, "status": {"conditions": [{
                "type": "DisruptionTarget",
                "status": "True",
                "reason": "DeletionByTaintManager",
                "message": "Taint manager: deleting due to NoExecute taint",
                "lastTransitionTime": k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::now()),
            }]}});
            match api
                .patch_status(
                    &key.name,
                    &PatchParams::default(),
                    &Patch::Strategic(&patch),
                )
                .await
            {
                Ok(_) => {}
                // Gone, or replaced by a pod with another UID: nothing of ours to delete.
                Err(kube::Error::Api(s)) if s.code == 404 || s.code == 422 => return Ok(()),
                Err(source) => {
                    return Err(EvictionError::Condition {
                        pod: key.to_string(),
                        source,
                    });
                }
            }
        }
        let dp = DeleteParams {
            preconditions: Some(Preconditions {
                uid: pod.metadata.uid.clone(),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        match api.delete(&key.name, &dp).await {
            Ok(_) => {
                tracing::info!(pod = %key, "evicted by NoExecute taint");
                Ok(())
            }
            // Gone, or replaced by a pod with another UID: nothing of ours to delete.
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Ok(()),
            Err(source) => Err(EvictionError::Delete {
                pod: key.to_string(),
                source,
            }),
        }
    }
}

#[async_trait::async_trait]
impl Reconcile for TaintEviction {
    type Error = EvictionError;

    async fn reconcile(&self, key: &Key) -> Result<Action, EvictionError> {
        let Some(pod) = self.pods.get(key) else {
            self.timers().remove(key);
            return Ok(Action::Done);
        };
        if pod.metadata.deletion_timestamp.is_some() {
            self.timers().remove(key);
            return Ok(Action::Done);
        }
        let taints = node_of(&pod)
            .and_then(|n| self.nodes.get(&Key::cluster(n)))
            .map(|n| no_execute_taints(&n))
            .unwrap_or_default();
        let tolerations = tolerations_of(&pod).cloned().unwrap_or_default();
        let wait = match decide(&tolerations, &taints) {
            Decision::Keep => {
                self.cancel(key, Some(&pod));
                return Ok(Action::Done);
            }
            Decision::EvictNow => Duration::ZERO,
            Decision::EvictAfter(d) => d,
        };
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let due = schedule(&mut self.timers(), key, &uid, wait, Instant::now());
        match due {
            Due::Later(d) => Ok(Action::RequeueAfter(d)),
            Due::Never => Ok(Action::Done),
            Due::Now => {
                self.evict(key, &pod).await?;
                self.timers().remove(key);
                Ok(Action::Done)
            }
        }
    }
}

#[cfg(test)]
#[path = "eviction_tests.rs"]
mod io_tests;

#[cfg(test)]
mod tests {
    use super::*;

    fn taint(key: &str) -> Taint {
        Taint {
            key: key.into(),
            effect: "NoExecute".into(),
            ..Default::default()
        }
    }

    fn tol(key: &str, seconds: Option<i64>) -> Toleration {
        Toleration {
            key: Some(key.into()),
            operator: Some("Exists".into()),
            effect: Some("NoExecute".into()),
            toleration_seconds: seconds,
            value: None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn timers_run_from_first_need_and_restart_for_a_new_pod() {
        let mut timers = HashMap::new();
        let key = Key::new("ns", "p");
        let t0 = Instant::now();
        let s2 = Duration::from_secs(2);
        assert_eq!(schedule(&mut timers, &key, "u1", s2, t0), Due::Later(s2));
        // Re-judged a second later, now with a 5 s toleration: still from t0.
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(
            schedule(&mut timers, &key, "u1", Duration::from_secs(5), t1),
            Due::Later(Duration::from_secs(4))
        );
        assert_eq!(schedule(&mut timers, &key, "u1", s2, t0 + s2), Due::Now);
        // Zero means at once.
        assert_eq!(
            schedule(&mut timers, &key, "u1", Duration::ZERO, t1),
            Due::Now
        );
        // A replacement pod of the same name gets its own timer.
        assert_eq!(
            schedule(&mut timers, &key, "u2", s2, t0 + s2),
            Due::Later(s2)
        );
        // Absurd tolerations never fire.
        assert_eq!(
            schedule(&mut timers, &Key::new("ns", "q"), "u3", Duration::MAX, t1),
            Due::Never
        );
    }

    #[test]
    fn decisions_follow_upstream() {
        let unreachable = taint("node.kubernetes.io/unreachable");
        let other = taint("example.com/drain");
        let cases: Vec<(Vec<Toleration>, Vec<Taint>, Decision)> = vec![
            (vec![], vec![], Decision::Keep),
            (vec![], vec![unreachable.clone()], Decision::EvictNow),
            (
                vec![tol("node.kubernetes.io/unreachable", Some(300))],
                vec![unreachable.clone()],
                Decision::EvictAfter(Duration::from_secs(300)),
            ),
            (
                vec![tol("node.kubernetes.io/unreachable", None)],
                vec![unreachable.clone()],
                Decision::Keep,
            ),
            // One untolerated taint is enough.
            (
                vec![tol("node.kubernetes.io/unreachable", None)],
                vec![unreachable.clone(), other.clone()],
                Decision::EvictNow,
            ),
            // The shortest of the tolerations used; the first matching toleration is used.
            (
                vec![
                    tol("example.com/drain", Some(30)),
                    tol("node.kubernetes.io/unreachable", Some(2)),
                    tol("node.kubernetes.io/unreachable", Some(1)),
                ],
                vec![unreachable.clone(), other.clone()],
                Decision::EvictAfter(Duration::from_secs(2)),
            ),
            (
                vec![tol("node.kubernetes.io/unreachable", Some(-5))],
                vec![unreachable.clone()],
                Decision::EvictNow,
            ),
            // An empty key with Exists matches first, and tolerates forever.
            (
                vec![tol("", None), tol("example.com/drain", Some(10))],
                vec![other.clone()],
                Decision::Keep,
            ),
            // Forever for one taint, 10 s for the other: 10 s.
            (
                vec![
                    tol("node.kubernetes.io/unreachable", None),
                    tol("example.com/drain", Some(10)),
                ],
                vec![unreachable.clone(), other.clone()],
                Decision::EvictAfter(Duration::from_secs(10)),
            ),
        ];
        for (i, (tols, taints, want)) in cases.iter().enumerate() {
            assert_eq!(decide(tols, taints), *want, "case {i}");
        }
    }
}
