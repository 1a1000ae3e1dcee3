//! Pod garbage collection (`podgc`, upstream's PodGC controller). Every pass it force-deletes:
//! * terminated pods (Succeeded/Failed) beyond `terminated_pod_gc_threshold`, evicted ones
//!   first, then oldest first by creation;
//! * terminating pods on not-ready nodes tainted `node.kubernetes.io/out-of-service`;
//! * orphaned pods, bound to nodes that no longer exist — only after the node has been missing
//!   from the cache for a quarantine period *and* a live GET says 404, so a node that is
//!   merely late to show up in the cache never loses its pods;
//! * terminating pods that were never scheduled (no kubelet will ever finish them).
//!
//! Pods not yet terminal are first marked `Failed` (orphans also get the `DisruptionTarget`
//! condition, reason `DeletionByPodGC`), as v1.33 does, so their owners see why they went.
//!
//! Timing differs from upstream only in scale: upstream's constants are a 20 s pass and a
//! 40 s quarantine; here the quarantine is `node_monitor_grace_period` (40 s by default) and a
//! pass runs every half of it, at most every 20 s, so tests with a short grace period do not
//! wait a minute for an orphan to go.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use controller_runtime::{Context, Informer};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, Preconditions};
use serde_json::{Value, json};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::taints::ready_status;

const OUT_OF_SERVICE: &str = "node.kubernetes.io/out-of-service";
/// Upstream's `gcCheckPeriod`.
const MAX_PERIOD: Duration = Duration::from_secs(20);
/// Deletions in flight at once.
const PARALLEL: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum PodGcError {
    #[error("marking pod {pod} Failed")]
    MarkFailed {
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

fn phase(p: &Pod) -> &str {
    p.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

fn node_of(p: &Pod) -> &str {
    p.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .unwrap_or("")
}

fn terminated(p: &Pod) -> bool {
    matches!(phase(p), "Succeeded" | "Failed")
}

fn evicted(p: &Pod) -> bool {
    phase(p) == "Failed" && p.status.as_ref().and_then(|s| s.reason.as_deref()) == Some("Evicted")
}

/// The terminated pods to delete to get back to `threshold`, in deletion order (upstream's
/// `byEvictionAndCreationTimestamp`: evicted first, then oldest, then by name).
pub fn excess_terminated(pods: &[Arc<Pod>], threshold: usize) -> Vec<Arc<Pod>> {
    let mut done: Vec<Arc<Pod>> = pods.iter().filter(|p| terminated(p)).cloned().collect();
    if threshold == 0 || done.len() <= threshold {
        return Vec::new();
    }
    done.sort_by(|a, b| {
        evicted(b)
            .cmp(&evicted(a))
            .then_with(|| {
                let ts = |p: &Pod| p.metadata.creation_timestamp.as_ref().map(|t| t.0);
                ts(a).cmp(&ts(b))
            })
            .then_with(|| a.metadata.name.cmp(&b.metadata.name))
    });
    let excess = done.len() - threshold;
    done.truncate(excess);
    done
}

/// Terminating pods on not-ready, out-of-service nodes.
pub fn terminating_out_of_service(pods: &[Arc<Pod>], nodes: &Informer<Node>) -> Vec<Arc<Pod>> {
    pods.iter()
        .filter(|p| p.metadata.deletion_timestamp.is_some() && !node_of(p).is_empty())
        .filter(|p| {
            nodes
                .get(&controller_runtime::Key::cluster(node_of(p)))
                .is_some_and(|n| {
                    ready_status(&n) != Some("True")
                        && n.spec
                            .as_ref()
                            .and_then(|s| s.taints.as_ref())
                            .is_some_and(|ts| ts.iter().any(|t| t.key == OUT_OF_SERVICE))
                })
        })
        .cloned()
        .collect()
}

/// Terminating pods never bound to a node.
pub fn unscheduled_terminating(pods: &[Arc<Pod>]) -> Vec<Arc<Pod>> {
    pods.iter()
        .filter(|p| p.metadata.deletion_timestamp.is_some() && node_of(p).is_empty())
        .cloned()
        .collect()
}

/// Nodes pods are bound to that are missing from the cache, and when each was first missed.
#[derive(Debug, Default)]
pub struct Quarantine {
    since: HashMap<String, Instant>,
}

impl Quarantine {
    /// Updates the record from `pods` and `known` nodes at `now`; returns the missing nodes
    /// whose quarantine (`period`) is over.
    pub fn update(
        &mut self,
        pods: &[Arc<Pod>],
        known: &HashSet<String>,
        period: Duration,
        now: Instant,
    ) -> Vec<String> {
        let missing: HashSet<&str> = pods
            .iter()
            .map(|p| node_of(p))
            .filter(|n| !n.is_empty() && !known.contains(*n))
            .collect();
        self.since.retain(|n, _| missing.contains(n.as_str()));
        for n in missing {
            self.since.entry(n.to_owned()).or_insert(now);
        }
        let mut out: Vec<String> = self
            .since
            .iter()
            .filter(|(_, t)| now.duration_since(**t) >= period)
            .map(|(n, _)| n.clone())
            .collect();
        out.sort();
        out
    }
}

/// Starts the collector for one term.
pub fn start(ctx: &Context, tasks: &mut JoinSet<()>) {
    let gc = PodGc {
        client: ctx.client.clone(),
        pods: ctx.informers.get::<Pod>(),
        nodes: ctx.informers.get::<Node>(),
        threshold: ctx.settings.terminated_pod_gc_threshold,
        quarantine: ctx.settings.node_monitor_grace_period,
    };
    let period = (gc.quarantine / 2).clamp(Duration::from_millis(100), MAX_PERIOD);
    let informers = ctx.informers.clone();
    tasks.spawn(async move {
        informers.wait_synced().await;
        let mut missing = Quarantine::default();
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            gc.pass(&mut missing).await;
        }
    });
}

struct PodGc {
    client: kube::Client,
    pods: Informer<Pod>,
    nodes: Informer<Node>,
    threshold: usize,
    quarantine: Duration,
}

/// Why a pod goes, for the condition it gets.
#[derive(Clone, Copy)]
enum Reason {
    Plain,
    Orphaned,
}

impl PodGc {
    async fn pass(&self, missing: &mut Quarantine) {
        let pods = self.pods.list();
        let mut doomed: Vec<(Arc<Pod>, Reason)> = Vec::new();
        let mut seen = HashSet::new();
        let mut add = |p: Arc<Pod>, r: Reason, doomed: &mut Vec<(Arc<Pod>, Reason)>| {
            if seen.insert(p.metadata.uid.clone()) {
                doomed.push((p, r));
            }
        };
        for p in excess_terminated(&pods, self.threshold) {
            add(p, Reason::Plain, &mut doomed);
        }
        for p in terminating_out_of_service(&pods, &self.nodes) {
            add(p, Reason::Plain, &mut doomed);
        }
        let known: HashSet<String> = self
            .nodes
            .list()
            .iter()
            .filter_map(|n| n.metadata.name.clone())
            .collect();
        for node in missing.update(&pods, &known, self.quarantine, Instant::now()) {
            if !self.node_is_gone(&node).await {
                continue;
            }
            for p in pods.iter().filter(|p| node_of(p) == node) {
                add(p.clone(), Reason::Orphaned, &mut doomed);
            }
        }
        for p in unscheduled_terminating(&pods) {
            add(p, Reason::Plain, &mut doomed);
        }
        let results = futures::StreamExt::collect::<Vec<_>>(futures::StreamExt::buffer_unordered(
            futures::stream::iter(doomed.into_iter().map(|(p, r)| self.delete(p, r))),
            PARALLEL,
        ))
        .await;
        for e in results.into_iter().filter_map(Result::err) {
            tracing::warn!(error = %controller_runtime::worker::chain(&e), "pod GC failed; will retry next pass");
        }
    }

    /// Whether a live GET confirms the node is gone (errors count as "not sure": keep pods).
    async fn node_is_gone(&self, name: &str) -> bool {
        let api: Api<Node> = Api::all(self.client.clone());
        match api.get_opt(name).await {
            Ok(found) => found.is_none(),
            Err(e) => {
                tracing::warn!(node = name, error = %e, "could not check whether a node exists");
                false
            }
        }
    }

    async fn delete(&self, pod: Arc<Pod>, reason: Reason) -> Result<(), PodGcError> {
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
        let key = format!("{ns}/{name}");
        if !terminated(&pod) {
            let mut status = json!({"phase": "Failed"});
            if let Reason::Orphaned = reason {
                status["conditions"] = json!([{
                    "type": "DisruptionTarget",
                    "status": "True",
                    "reason": "DeletionByPodGC",
                    "message": "PodGC: node no longer exists",
                    "lastTransitionTime": k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::now()),
                }]);
            }
            // The UID guards against marking a replacement of the same name Failed (uid is
            // immutable, so a mismatch is a 422), as upstream's `PatchPodStatus`.
            let patch: Value = json!({"metadata": {"uid": pod.metadata.uid}, "status": status});
            match api
                .patch_status(&name, &PatchParams::default(), &Patch::Strategic(&patch))
                .await
            {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 404 || s.code == 422 => return Ok(()),
                Err(source) => return Err(PodGcError::MarkFailed { pod: key, source }),
            }
        }
        let dp = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: pod.metadata.uid.clone(),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        match api.delete(&name, &dp).await {
            Ok(_) => {
                tracing::info!(pod = %key, "pod GC force-deleted a pod");
                Ok(())
            }
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Ok(()),
            Err(source) => Err(PodGcError::Delete { pod: key, source }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::Timestamp;
    use k8s_openapi::api::core::v1::{PodSpec, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

    fn pod(name: &str, phase: &str, created: &str, node: &str) -> Arc<Pod> {
        Arc::new(Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("ns".into()),
                uid: Some(name.into()),
                creation_timestamp: Some(Time(created.parse::<Timestamp>().unwrap())),
                ..Default::default()
            },
            spec: Some(PodSpec {
                node_name: (!node.is_empty()).then(|| node.into()),
                ..Default::default()
            }),
            status: Some(PodStatus {
                phase: Some(phase.into()),
                ..Default::default()
            }),
        })
    }

    fn names(ps: &[Arc<Pod>]) -> Vec<&str> {
        ps.iter()
            .filter_map(|p| p.metadata.name.as_deref())
            .collect()
    }

    #[test]
    fn excess_terminated_pods_go_evicted_first_then_oldest() {
        let mut evicted = (*pod("e", "Failed", "2025-01-03T00:00:00Z", "n")).clone();
        evicted.status.as_mut().unwrap().reason = Some("Evicted".into());
        let pods = vec![
            pod("running", "Running", "2020-01-01T00:00:00Z", "n"),
            pod("c", "Succeeded", "2025-01-02T00:00:00Z", "n"),
            pod("b", "Failed", "2025-01-01T00:00:00Z", "n"),
            pod("a", "Succeeded", "2025-01-01T00:00:00Z", "n"),
            Arc::new(evicted),
        ];
        assert_eq!(names(&excess_terminated(&pods, 2)), ["e", "a"]);
        assert_eq!(names(&excess_terminated(&pods, 1)), ["e", "a", "b"]);
        assert!(excess_terminated(&pods, 4).is_empty());
        // Zero disables the threshold, as upstream.
        assert!(excess_terminated(&pods, 0).is_empty());
    }

    #[test]
    fn unscheduled_terminating_pods_are_found() {
        let mut t = (*pod("t", "Pending", "2025-01-01T00:00:00Z", "")).clone();
        t.metadata.deletion_timestamp = Some(Time(Timestamp::now()));
        let mut bound = t.clone();
        bound.metadata.name = Some("bound".into());
        bound.spec.as_mut().unwrap().node_name = Some("n".into());
        let pods = vec![
            Arc::new(t),
            Arc::new(bound),
            pod("p", "Pending", "2025-01-01T00:00:00Z", ""),
        ];
        assert_eq!(names(&unscheduled_terminating(&pods)), ["t"]);
    }

    #[tokio::test(start_paused = true)]
    async fn missing_nodes_wait_out_the_quarantine() {
        let mut q = Quarantine::default();
        let pods = vec![
            pod("a", "Running", "2025-01-01T00:00:00Z", "gone"),
            pod("b", "Running", "2025-01-01T00:00:00Z", "here"),
            pod("c", "Pending", "2025-01-01T00:00:00Z", ""),
        ];
        let known: HashSet<String> = ["here".to_string()].into();
        let q40 = Duration::from_secs(40);
        let t0 = Instant::now();
        assert!(q.update(&pods, &known, q40, t0).is_empty());
        assert!(
            q.update(&pods, &known, q40, t0 + Duration::from_secs(39))
                .is_empty()
        );
        assert_eq!(q.update(&pods, &known, q40, t0 + q40), ["gone"]);
        // The node showed up after all: forgotten, and a later miss starts over.
        let both: HashSet<String> = ["here".to_string(), "gone".to_string()].into();
        assert!(q.update(&pods, &both, q40, t0 + q40).is_empty());
        assert!(q.update(&pods, &known, q40, t0 + q40 * 2).is_empty());
    }
}
