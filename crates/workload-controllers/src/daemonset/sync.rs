//! One DaemonSet's sync (upstream's `syncDaemonSet`): claim pods and revisions, settle the
//! update revision, map daemon pods to nodes, run [`plan::manage`] and — when that has
//! nothing to do — the next step of the rolling update, write status, prune history.
//!
//! Guarantees:
//! * Pods are created with generated names, so expectations are what prevents duplicates:
//!   while a sync's creations or deletions are not yet in the cache, later syncs only write
//!   status.
//! * A sync either fixes placement or advances the rollout, never both: the rollout's
//!   unavailability budget is computed from a cache that shows every earlier action.
//! * Status is written only when it changed, through the status subresource.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use api::selector::LabelSelector;
use controller_runtime::owners::{self, Claim};
use controller_runtime::{Action, Expectations, Informer, Key, Reconcile, Recorder};
use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};

use super::placement::{add_daemon_tolerations, evaluate, pin_to_node, target_node};
use super::plan::{self, DaemonPod, NodePods, Plan};
use super::status;
use crate::errors::{api_message, is_not_found, namespace_terminating};
use crate::history::{self, HASH_LABEL, History, HistoryError};
use crate::pods::{
    from_template, is_available, is_failed, is_ready, is_terminating, name_of, next_available_in,
    uid_of,
};

/// Label carrying the DaemonSet's generation on its pods (deprecated upstream, still set).
pub const TEMPLATE_GENERATION_LABEL: &str = "pod-template-generation";

/// Most pods created or deleted by one sync (upstream's `BurstReplicas`).
const BURST: usize = 250;

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("re-reading DaemonSet {key} before adopting pods")]
    Recheck {
        key: Key,
        #[source]
        source: kube::Error,
    },
    #[error("DaemonSet {key} was deleted or replaced; not adopting pods")]
    OwnerChanged { key: Key },
    #[error("adopting or releasing pod {pod} for DaemonSet {key}")]
    Claim {
        key: Key,
        pod: String,
        #[source]
        source: kube::Error,
    },
    #[error("the revisions of DaemonSet {key}")]
    History {
        key: Key,
        #[source]
        source: HistoryError,
    },
    #[error("{action} a pod of DaemonSet {key} ({what})")]
    Pod {
        key: Key,
        action: &'static str,
        what: String,
        #[source]
        source: kube::Error,
    },
    #[error("writing the status of DaemonSet {key}")]
    Status {
        key: Key,
        #[source]
        source: kube::Error,
    },
}

/// The DaemonSet reconciler.
pub struct DaemonSets {
    pub sets: Informer<DaemonSet>,
    pub pods: Informer<Pod>,
    pub nodes: Informer<Node>,
    pub history: History,
    pub client: kube::Client,
    pub recorder: Recorder,
    pub expectations: Arc<Expectations>,
}

/// `(max_surge, max_unavailable)` for `desired` nodes, or `None` for `OnDelete`.
fn budget(ds: &DaemonSet, desired: i32) -> Option<(i32, i32)> {
    let strategy = ds.spec.as_ref()?.update_strategy.as_ref();
    if strategy.and_then(|s| s.type_.as_deref()) == Some("OnDelete") {
        return None;
    }
    let ru = strategy.and_then(|s| s.rolling_update.as_ref());
    let surge = plan::scaled(ru.and_then(|r| r.max_surge.as_ref()), desired, 0);
    let unavailable = plan::scaled(ru.and_then(|r| r.max_unavailable.as_ref()), desired, 1);
    // Validation forbids both zero; if it happens anyway, upstream moves one at a time.
    Some(if surge == 0 && unavailable == 0 {
        (0, 1)
    } else {
        (surge, unavailable)
    })
}

impl DaemonSets {
    fn pod_api(&self, ns: &str) -> Api<Pod> {
        Api::namespaced(self.client.clone(), ns)
    }

    async fn claim_pods(
        &self,
        key: &Key,
        ds: &DaemonSet,
        selector: &LabelSelector,
    ) -> Result<Vec<Arc<Pod>>, SyncError> {
        let api = self.pod_api(&key.namespace);
        let uid = ds.metadata.uid.clone().unwrap_or_default();
        let mut rechecked = false;
        let mut owned = Vec::new();
        for pod in self.pods.list_in(&key.namespace) {
            let err = |source| SyncError::Claim {
                key: key.clone(),
                pod: name_of(&pod).to_owned(),
                source,
            };
            match owners::claim(&ds.metadata, selector, &pod.metadata) {
                Claim::Owned => owned.push(pod),
                Claim::Ignore => {}
                Claim::Adopt => {
                    if !rechecked {
                        let fresh =
                            Api::<DaemonSet>::namespaced(self.client.clone(), &key.namespace)
                                .get(&key.name)
                                .await
                                .map_err(|source| SyncError::Recheck {
                                    key: key.clone(),
                                    source,
                                })?;
                        if fresh.metadata.uid != ds.metadata.uid
                            || fresh.metadata.deletion_timestamp.is_some()
                        {
                            return Err(SyncError::OwnerChanged { key: key.clone() });
                        }
                        rechecked = true;
                    }
                    let r = owners::controller_reference(ds);
                    match owners::adopt(&api, name_of(&pod), uid_of(&pod), &r).await {
                        Ok(p) => owned.push(Arc::new(p)),
                        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 422 => {}
                        Err(e) => return Err(err(e)),
                    }
                }
                Claim::Release => {
                    owners::release(&api, name_of(&pod), uid_of(&pod), &uid)
                        .await
                        .map_err(err)?;
                }
            }
        }
        Ok(owned)
    }

    /// The pod to create on `node`.
    fn pod_for(&self, ds: &DaemonSet, node: &str, hash: &str) -> Pod {
        let ns = ds.metadata.namespace.as_deref().unwrap_or_default();
        let template = ds
            .spec
            .as_ref()
            .map(|s| s.template.clone())
            .unwrap_or_default();
        let mut pod = from_template(ns, &template, owners::controller_reference(ds));
        pod.metadata.generate_name = Some(format!(
            "{}-",
            ds.metadata.name.as_deref().unwrap_or_default()
        ));
        let labels = pod.metadata.labels.get_or_insert_with(Default::default);
        labels.insert(HASH_LABEL.into(), hash.to_owned());
        labels.insert(
            TEMPLATE_GENERATION_LABEL.into(),
            ds.metadata.generation.unwrap_or(0).to_string(),
        );
        let spec = pod.spec.get_or_insert_with(Default::default);
        add_daemon_tolerations(spec);
        pin_to_node(spec, node);
        pod
    }

    async fn execute(
        &self,
        key: &Key,
        ds: &DaemonSet,
        pods: &[Arc<Pod>],
        mut plan: Plan,
        hash: &str,
    ) -> Result<(), SyncError> {
        plan.create_on.truncate(BURST);
        plan.delete.truncate(BURST);
        let by_name: BTreeMap<&str, &Arc<Pod>> = pods.iter().map(|p| (name_of(p), p)).collect();
        let doomed: Vec<&Arc<Pod>> = plan
            .delete
            .iter()
            .filter_map(|n| by_name.get(n.as_str()).copied())
            .collect();
        self.expectations.expect(
            key,
            plan.create_on.len(),
            doomed.iter().map(|p| uid_of(p).to_owned()),
        );
        let api = self.pod_api(&key.namespace);
        let creates = plan.create_on.iter().map(|node| {
            let pod = self.pod_for(ds, node, hash);
            let api = &api;
            async move {
                match api.create(&PostParams::default(), &pod).await {
                    Ok(p) => {
                        self.recorder.normal(
                            ds,
                            "SuccessfulCreate",
                            &format!("Created pod: {}", name_of(&p)),
                        );
                        Ok(())
                    }
                    Err(source) => {
                        self.expectations.creation_observed(key);
                        if namespace_terminating(&source) {
                            return Ok(());
                        }
                        self.recorder.warning(
                            ds,
                            "FailedCreate",
                            &format!("Error creating: {}", api_message(&source)),
                        );
                        Err(SyncError::Pod {
                            key: key.clone(),
                            action: "creating",
                            what: format!("for node {node}"),
                            source,
                        })
                    }
                }
            }
        });
        let deletes = doomed.iter().map(|pod| {
            let api = &api;
            let failed = plan.failed.iter().any(|n| n == name_of(pod));
            async move {
                let name = name_of(pod);
                if failed {
                    let node = pod
                        .spec
                        .as_ref()
                        .and_then(|s| s.node_name.as_deref())
                        .unwrap_or_default();
                    self.recorder.warning(
                        ds,
                        "FailedDaemonPod",
                        &format!(
                            "Found failed daemon pod {}/{name} on node {node}, will try to kill it",
                            key.namespace
                        ),
                    );
                }
                match api.delete(name, &DeleteParams::default()).await {
                    Ok(_) => {
                        self.recorder.normal(
                            ds,
                            "SuccessfulDelete",
                            &format!("Deleted pod: {name}"),
                        );
                        Ok(())
                    }
                    Err(source) => {
                        self.expectations.deletion_observed(key, uid_of(pod));
                        if is_not_found(&source) {
                            return Ok(());
                        }
                        self.recorder.warning(
                            ds,
                            "FailedDelete",
                            &format!("Error deleting: {}", api_message(&source)),
                        );
                        Err(SyncError::Pod {
                            key: key.clone(),
                            action: "deleting",
                            what: name.to_owned(),
                            source,
                        })
                    }
                }
            }
        });
        let (c, d) = futures::join!(
            futures::future::join_all(creates),
            futures::future::join_all(deletes)
        );
        c.into_iter()
            .chain(d)
            .collect::<Result<Vec<()>, _>>()
            .map(|_| ())
    }
}

/// Daemon pods by the node they are for, with every node's verdict (`None`: gone).
fn place(
    spec: &k8s_openapi::api::core::v1::PodSpec,
    nodes: &[Arc<Node>],
    pods: &[Arc<Pod>],
    hash: &str,
    min_ready: i32,
    now: Timestamp,
) -> BTreeMap<String, NodePods> {
    let mut out: BTreeMap<String, NodePods> = nodes
        .iter()
        .map(|n| {
            (
                n.metadata.name.clone().unwrap_or_default(),
                NodePods {
                    verdict: Some(evaluate(spec, n)),
                    pods: Vec::new(),
                },
            )
        })
        .collect();
    let mut sorted: Vec<&Arc<Pod>> = pods.iter().collect();
    sorted.sort_by(|a, b| {
        let t = |p: &Pod| p.metadata.creation_timestamp.as_ref().map(|t| t.0);
        t(a).cmp(&t(b)).then_with(|| name_of(a).cmp(name_of(b)))
    });
    for p in sorted {
        let Some(node) = target_node(p) else { continue };
        let scheduled = p
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .is_some_and(|n| !n.is_empty());
        let entry = out.entry(node.to_owned()).or_insert(NodePods {
            verdict: None,
            pods: Vec::new(),
        });
        entry.pods.push(DaemonPod {
            name: name_of(p).to_owned(),
            updated: p.metadata.labels.as_ref().and_then(|l| l.get(HASH_LABEL))
                == Some(&hash.to_owned()),
            terminating: is_terminating(p),
            failed: is_failed(p),
            ready: is_ready(p),
            available: is_available(p, min_ready, now),
            scheduled,
        });
    }
    out
}

#[async_trait::async_trait]
impl Reconcile for DaemonSets {
    type Error = SyncError;

    async fn reconcile(&self, key: &Key) -> Result<Action, SyncError> {
        let Some(ds) = self.sets.get(key) else {
            self.expectations.delete(key);
            return Ok(Action::Done);
        };
        let Some(spec) = ds.spec.as_ref() else {
            return Ok(Action::Done);
        };
        let selector = match LabelSelector::from_k8s(&spec.selector) {
            Ok(s) if !s.is_everything() => s,
            _ => {
                tracing::warn!(%key, "DaemonSet has an invalid or empty selector; not managing pods");
                return Ok(Action::Done);
            }
        };
        let satisfied = self.expectations.satisfied(key);
        let pods = self.claim_pods(key, &ds, &selector).await?;
        let hist_err = |source| SyncError::History {
            key: key.clone(),
            source,
        };
        let revs = self
            .history
            .claim(ds.as_ref(), &selector)
            .await
            .map_err(hist_err)?;
        let mut collision_count = ds
            .status
            .as_ref()
            .and_then(|s| s.collision_count)
            .unwrap_or(0);
        let data = history::template_data(&key.name, &spec.template).map_err(hist_err)?;
        let labels = spec
            .template
            .metadata
            .as_ref()
            .and_then(|m| m.labels.as_ref());
        let update = self
            .history
            .ensure(ds.as_ref(), labels, &data, &revs, &mut collision_count)
            .await
            .map_err(hist_err)?;
        let hash = update
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(HASH_LABEL).cloned())
            .unwrap_or_default();

        let mut eval_spec = spec.template.spec.clone().unwrap_or_default();
        add_daemon_tolerations(&mut eval_spec);
        let now = Timestamp::now();
        let min_ready = spec.min_ready_seconds.unwrap_or(0);
        let nodes = place(&eval_spec, &self.nodes.list(), &pods, &hash, min_ready, now);
        let desired = nodes
            .values()
            .filter(|n| n.verdict.is_some_and(|v| v.should_run))
            .count();
        let budget = budget(&ds, i32::try_from(desired).unwrap_or(i32::MAX));

        let mut acted = Ok(());
        if satisfied && ds.metadata.deletion_timestamp.is_none() {
            let surge = budget.is_some_and(|(s, _)| s > 0);
            let mut next = plan::manage(&nodes, surge);
            if next.is_empty()
                && let Some((max_surge, max_unavailable)) = budget
            {
                next = plan::rolling_update(&nodes, max_surge, max_unavailable);
            }
            if !next.is_empty() {
                tracing::debug!(%key, ?next, "DaemonSet plan");
                acted = self.execute(key, &ds, &pods, next, &hash).await;
            }
        }

        let new = status::compute(&ds, &nodes, collision_count);
        if ds.status.as_ref() != Some(&new) {
            let api: Api<DaemonSet> = Api::namespaced(self.client.clone(), &key.namespace);
            match api
                .patch_status(
                    &key.name,
                    &PatchParams::default(),
                    &Patch::Merge(&status::patch(&new)),
                )
                .await
            {
                Ok(_) => {}
                Err(e) if is_not_found(&e) => {}
                Err(source) => {
                    return Err(SyncError::Status {
                        key: key.clone(),
                        source,
                    });
                }
            }
        }
        acted?;

        let hashes: HashSet<&str> = pods
            .iter()
            .filter_map(|p| p.metadata.labels.as_ref()?.get(HASH_LABEL))
            .map(String::as_str)
            .collect();
        let mut all: Vec<Arc<ControllerRevision>> = revs;
        all.retain(|r| r.metadata.name != update.metadata.name);
        let mut live: HashSet<String> = all
            .iter()
            .filter(|r| {
                r.metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(HASH_LABEL))
                    .is_some_and(|h| hashes.contains(h.as_str()))
            })
            .filter_map(|r| r.metadata.name.clone())
            .collect();
        live.extend(update.metadata.name.clone());
        let limit = spec.revision_history_limit.unwrap_or(10);
        self.history
            .prune(&key.namespace, &history::to_prune(&all, &live, limit))
            .await
            .map_err(hist_err)?;

        Ok(
            match next_available_in(pods.iter().map(|p| p.as_ref()), min_ready, now) {
                Some(d) => Action::RequeueAfter(d),
                None => Action::Done,
            },
        )
    }
}
