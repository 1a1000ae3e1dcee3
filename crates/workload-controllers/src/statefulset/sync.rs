//! One StatefulSet's sync (upstream's `syncStatefulSet`): claim pods and revisions, settle
//! the current and update revisions, run the [`plan`](super::plan), keep claims' owner
//! references per the retention policy, write status, prune history.
//!
//! Guarantees:
//! * Pod names are fixed, so a stale cache can at worst make a create fail with 409; still,
//!   expectations keep a sync from acting before the cache shows the previous sync's writes,
//!   which keeps `OrderedReady` strictly one pod at a time.
//! * A pod's claims are created before the pod, so it never starts without its storage;
//!   claims are never deleted here (the garbage collector follows their owner references).
//! * Status is written only when it changed, through the status subresource.

use std::collections::HashSet;
use std::sync::Arc;

use api::selector::LabelSelector;
use controller_runtime::owners::{self, Claim};
use controller_runtime::{Action, Expectations, Informer, Key, Reconcile, Recorder};
use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, PodTemplateSpec};
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;

use super::identity::{self, Retention};
use super::plan::{self, Member, Policy, Step, Why};
use super::status;
use crate::errors::{api_message, is_already_exists, is_not_found};
use crate::history::{self, HASH_LABEL, History, HistoryError};
use crate::pods::{
    is_available, is_failed, is_running_and_ready, is_succeeded, is_terminating, name_of,
    next_available_in, uid_of,
};

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("re-reading StatefulSet {key} before adopting pods")]
    Recheck {
        key: Key,
        #[source]
        source: kube::Error,
    },
    #[error("StatefulSet {key} was deleted or replaced; not adopting pods")]
    OwnerChanged { key: Key },
    #[error("adopting or releasing pod {pod} for StatefulSet {key}")]
    Claim {
        key: Key,
        pod: String,
        #[source]
        source: kube::Error,
    },
    #[error("the revisions of StatefulSet {key}")]
    History {
        key: Key,
        #[source]
        source: HistoryError,
    },
    #[error("{action} pod {pod} of StatefulSet {key}")]
    Pod {
        key: Key,
        action: &'static str,
        pod: String,
        #[source]
        source: kube::Error,
    },
    #[error("{action} claim {claim} of StatefulSet {key}")]
    ClaimWrite {
        key: Key,
        action: &'static str,
        claim: String,
        #[source]
        source: kube::Error,
    },
    #[error("writing the status of StatefulSet {key}")]
    Status {
        key: Key,
        #[source]
        source: kube::Error,
    },
}

/// The StatefulSet reconciler.
pub struct StatefulSets {
    pub sets: Informer<StatefulSet>,
    pub pods: Informer<Pod>,
    pub claims: Informer<PersistentVolumeClaim>,
    pub history: History,
    pub client: kube::Client,
    pub recorder: Recorder,
    pub expectations: Arc<Expectations>,
}

fn policy_of(set: &StatefulSet) -> Policy {
    let spec = set.spec.as_ref();
    let strategy = spec.and_then(|s| s.update_strategy.as_ref());
    let on_delete = strategy.and_then(|u| u.type_.as_deref()) == Some("OnDelete");
    let partition = strategy
        .and_then(|u| u.rolling_update.as_ref())
        .and_then(|r| r.partition)
        .unwrap_or(0);
    Policy {
        replicas: spec.and_then(|s| s.replicas).unwrap_or(1),
        start: spec
            .and_then(|s| s.ordinals.as_ref())
            .and_then(|o| o.start)
            .unwrap_or(0),
        parallel: spec.and_then(|s| s.pod_management_policy.as_deref()) == Some("Parallel"),
        partition: (!on_delete).then_some(partition),
        deleting: set.metadata.deletion_timestamp.is_some(),
    }
}

fn revision_name(r: &ControllerRevision) -> &str {
    r.metadata.name.as_deref().unwrap_or_default()
}

impl StatefulSets {
    fn pod_api(&self, ns: &str) -> Api<Pod> {
        Api::namespaced(self.client.clone(), ns)
    }

    fn claim_api(&self, ns: &str) -> Api<PersistentVolumeClaim> {
        Api::namespaced(self.client.clone(), ns)
    }

    /// Adopts orphaned members and releases unselected ones; returns the set's pods.
    async fn claim_pods(
        &self,
        key: &Key,
        set: &StatefulSet,
        selector: &LabelSelector,
    ) -> Result<Vec<Arc<Pod>>, SyncError> {
        let api = self.pod_api(&key.namespace);
        let set_uid = set.metadata.uid.clone().unwrap_or_default();
        let mut rechecked = false;
        let mut owned = Vec::new();
        for pod in self.pods.list_in(&key.namespace) {
            // Only `<set>-<ordinal>` pods can be members (upstream's `isMemberOf`).
            if identity::ordinal_of(&key.name, name_of(&pod)).is_none() {
                continue;
            }
            let err = |source| SyncError::Claim {
                key: key.clone(),
                pod: name_of(&pod).to_owned(),
                source,
            };
            match owners::claim(&set.metadata, selector, &pod.metadata) {
                Claim::Owned => owned.push(pod),
                Claim::Ignore => {}
                Claim::Adopt => {
                    if !rechecked {
                        self.recheck(key, &set_uid).await?;
                        rechecked = true;
                    }
                    let r = owners::controller_reference(set);
                    match owners::adopt(&api, name_of(&pod), uid_of(&pod), &r).await {
                        Ok(p) => owned.push(Arc::new(p)),
                        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 422 => {}
                        Err(e) => return Err(err(e)),
                    }
                }
                Claim::Release => {
                    owners::release(&api, name_of(&pod), uid_of(&pod), &set_uid)
                        .await
                        .map_err(err)?;
                }
            }
        }
        Ok(owned)
    }

    async fn recheck(&self, key: &Key, uid: &str) -> Result<(), SyncError> {
        let api: Api<StatefulSet> = Api::namespaced(self.client.clone(), &key.namespace);
        let fresh = api
            .get(&key.name)
            .await
            .map_err(|source| SyncError::Recheck {
                key: key.clone(),
                source,
            })?;
        if fresh.metadata.uid.as_deref() != Some(uid) || fresh.metadata.deletion_timestamp.is_some()
        {
            return Err(SyncError::OwnerChanged { key: key.clone() });
        }
        Ok(())
    }

    /// Creates the claims of `ordinal` that the cache does not show.
    async fn create_claims(
        &self,
        key: &Key,
        set: &StatefulSet,
        ordinal: i32,
    ) -> Result<(), SyncError> {
        let policy = Retention::of(set);
        let set_ref = identity::plain_reference(set);
        let pod_name = identity::pod_name(&key.name, ordinal);
        for mut claim in identity::claims_for(set, ordinal) {
            let name = claim.metadata.name.clone().unwrap_or_default();
            if self.claims.get(&Key::new(&key.namespace, &name)).is_some() {
                continue;
            }
            // No pod reference yet (the pod does not exist); in range by construction.
            if let Some(refs) = identity::claim_refs(&[], policy, &set_ref, &set_ref, true) {
                claim.metadata.owner_references = Some(refs).filter(|r| !r.is_empty());
            }
            match self
                .claim_api(&key.namespace)
                .create(&PostParams::default(), &claim)
                .await
            {
                Ok(_) => self.recorder.normal(
                    set,
                    "SuccessfulCreate",
                    &format!(
                        "create Claim {name} Pod {pod_name} in StatefulSet {} success",
                        key.name
                    ),
                ),
                Err(e) if is_already_exists(&e) => {}
                Err(source) => {
                    self.recorder.warning(
                        set,
                        "FailedCreate",
                        &format!(
                            "create Claim {name} for Pod {pod_name} in StatefulSet {} failed error: {}",
                            key.name,
                            api_message(&source)
                        ),
                    );
                    return Err(SyncError::ClaimWrite {
                        key: key.clone(),
                        action: "creating",
                        claim: name,
                        source,
                    });
                }
            }
        }
        Ok(())
    }

    /// Brings the owner references of every member's claims in line with the retention
    /// policy (upstream's `UpdatePodClaimForRetentionPolicy`).
    async fn retain_claims(
        &self,
        key: &Key,
        set: &StatefulSet,
        pods: &[Arc<Pod>],
        p: &Policy,
    ) -> Result<(), SyncError> {
        let policy = Retention::of(set);
        let set_ref = identity::plain_reference(set);
        let end = p.start.saturating_add(p.replicas.max(0));
        for pod in pods.iter().filter(|p| !is_terminating(p)) {
            let Some(ordinal) = identity::ordinal_of(&key.name, name_of(pod)) else {
                continue;
            };
            let pod_ref = identity::plain_reference(pod.as_ref());
            let in_range = ordinal >= p.start && ordinal < end;
            for want in identity::claims_for(set, ordinal) {
                let name = want.metadata.name.unwrap_or_default();
                let Some(have) = self.claims.get(&Key::new(&key.namespace, &name)) else {
                    continue;
                };
                let existing = have
                    .metadata
                    .owner_references
                    .as_deref()
                    .unwrap_or_default();
                let Some(refs) =
                    identity::claim_refs(existing, policy, &set_ref, &pod_ref, in_range)
                else {
                    continue;
                };
                let patch = json!({"metadata": {
                    "ownerReferences": refs,
                    "resourceVersion": have.metadata.resource_version,
                }});
                match self
                    .claim_api(&key.namespace)
                    .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                {
                    Ok(_) => {}
                    Err(e) if is_not_found(&e) => {}
                    Err(source) => {
                        return Err(SyncError::ClaimWrite {
                            key: key.clone(),
                            action: "updating the owners of",
                            claim: name,
                            source,
                        });
                    }
                }
            }
        }
        Ok(())
    }

    async fn create_pod(
        &self,
        key: &Key,
        set: &StatefulSet,
        template: &PodTemplateSpec,
        ordinal: i32,
        revision: &str,
    ) -> Result<(), SyncError> {
        self.create_claims(key, set, ordinal).await?;
        let pod = identity::new_pod(set, template, ordinal, revision);
        let name = identity::pod_name(&key.name, ordinal);
        match self
            .pod_api(&key.namespace)
            .create(&PostParams::default(), &pod)
            .await
        {
            Ok(_) => {
                self.recorder.normal(
                    set,
                    "SuccessfulCreate",
                    &format!("create Pod {name} in StatefulSet {} successful", key.name),
                );
                Ok(())
            }
            Err(source) => {
                self.expectations.creation_observed(key);
                if !is_already_exists(&source) {
                    self.recorder.warning(
                        set,
                        "FailedCreate",
                        &format!(
                            "create Pod {name} in StatefulSet {} failed error: {}",
                            key.name,
                            api_message(&source)
                        ),
                    );
                }
                Err(SyncError::Pod {
                    key: key.clone(),
                    action: "creating",
                    pod: name,
                    source,
                })
            }
        }
    }

    async fn delete_pod(&self, key: &Key, set: &StatefulSet, pod: &Pod) -> Result<(), SyncError> {
        let name = name_of(pod);
        match self
            .pod_api(&key.namespace)
            .delete(name, &DeleteParams::default())
            .await
        {
            Ok(_) => {
                self.recorder.normal(
                    set,
                    "SuccessfulDelete",
                    &format!("delete Pod {name} in StatefulSet {} successful", key.name),
                );
                Ok(())
            }
            Err(source) => {
                self.expectations.deletion_observed(key, uid_of(pod));
                if is_not_found(&source) {
                    return Ok(());
                }
                self.recorder.warning(
                    set,
                    "FailedDelete",
                    &format!(
                        "delete Pod {name} in StatefulSet {} failed error: {}",
                        key.name,
                        api_message(&source)
                    ),
                );
                Err(SyncError::Pod {
                    key: key.clone(),
                    action: "deleting",
                    pod: name.to_owned(),
                    source,
                })
            }
        }
    }

    /// Runs the plan's steps (in parallel for `Parallel` sets; a monotonic plan has one).
    async fn execute(
        &self,
        key: &Key,
        set: &StatefulSet,
        pods: &[Arc<Pod>],
        steps: Vec<Step>,
        current: &ControllerRevision,
        update: &ControllerRevision,
    ) -> Result<(), SyncError> {
        let spec_template = set
            .spec
            .as_ref()
            .map(|s| s.template.clone())
            .unwrap_or_default();
        let current_template = if steps
            .iter()
            .any(|s| matches!(s, Step::Create { current: true, .. }))
        {
            Some(
                history::template_of(current).map_err(|source| SyncError::History {
                    key: key.clone(),
                    source,
                })?,
            )
        } else {
            None
        };
        let by_name = |n: &str| pods.iter().find(|p| name_of(p) == n).cloned();
        let creates = steps
            .iter()
            .filter(|s| matches!(s, Step::Create { .. }))
            .count();
        let deletes: Vec<String> = steps
            .iter()
            .filter_map(|s| match s {
                Step::Delete { name, .. } => by_name(name).map(|p| uid_of(&p).to_owned()),
                _ => None,
            })
            .collect();
        self.expectations.expect(key, creates, deletes);
        let work = steps.into_iter().map(|step| {
            let current_template = current_template.as_ref();
            let spec_template = &spec_template;
            async move {
                match step {
                    Step::Create {
                        ordinal,
                        current: true,
                    } => {
                        let t = current_template.unwrap_or(spec_template);
                        self.create_pod(key, set, t, ordinal, revision_name(current))
                            .await
                    }
                    Step::Create { ordinal, .. } => {
                        self.create_pod(key, set, spec_template, ordinal, revision_name(update))
                            .await
                    }
                    Step::Delete { name, why } => {
                        let Some(pod) = by_name(&name) else {
                            return Ok(());
                        };
                        if why == Why::Failed {
                            self.recorder.warning(
                                set,
                                "RecreatingFailedPod",
                                &format!("StatefulSet {key} is recreating failed Pod {name}"),
                            );
                        }
                        self.delete_pod(key, set, &pod).await
                    }
                    Step::Repair { name, ordinal } => {
                        let patch = identity::patch_for(set, ordinal);
                        self.pod_api(&key.namespace)
                            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                            .await
                            .map(|_| ())
                            .map_err(|source| SyncError::Pod {
                                key: key.clone(),
                                action: "repairing the identity of",
                                pod: name.clone(),
                                source,
                            })
                    }
                }
            }
        });
        let results = futures::future::join_all(work).await;
        results
            .into_iter()
            .collect::<Result<Vec<()>, _>>()
            .map(|_| ())
    }
}

#[async_trait::async_trait]
impl Reconcile for StatefulSets {
    type Error = SyncError;

    async fn reconcile(&self, key: &Key) -> Result<Action, SyncError> {
        let Some(set) = self.sets.get(key) else {
            self.expectations.delete(key);
            return Ok(Action::Done);
        };
        let Some(spec) = set.spec.as_ref() else {
            return Ok(Action::Done);
        };
        let selector = match LabelSelector::from_k8s(&spec.selector) {
            Ok(s) if !s.is_everything() => s,
            _ => {
                // Only an edit can fix it, and an edit triggers a sync.
                tracing::warn!(%key, "StatefulSet has an invalid or empty selector; not managing pods");
                return Ok(Action::Done);
            }
        };
        // Checked before reading the pod cache: once satisfied, the cache holds our writes.
        let satisfied = self.expectations.satisfied(key);
        let pods = self.claim_pods(key, &set, &selector).await?;
        let hist_err = |source| SyncError::History {
            key: key.clone(),
            source,
        };
        let mut revs = self
            .history
            .claim(set.as_ref(), &selector)
            .await
            .map_err(hist_err)?;
        let mut collision_count = set
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
            .ensure(set.as_ref(), labels, &data, &revs, &mut collision_count)
            .await
            .map_err(hist_err)?;
        revs.retain(|r| r.metadata.name != update.metadata.name);
        revs.push(update.clone());
        history::sort(&mut revs);
        let current_name = set.status.as_ref().and_then(|s| s.current_revision.clone());
        let current = revs
            .iter()
            .find(|r| r.metadata.name.is_some() && r.metadata.name == current_name)
            .cloned()
            .unwrap_or_else(|| update.clone());

        let now = Timestamp::now();
        let min_ready = spec.min_ready_seconds.unwrap_or(0);
        let policy = policy_of(&set);
        let mut acted = Ok(());
        if satisfied && !policy.deleting {
            acted = self.retain_claims(key, &set, &pods, &policy).await;
            if acted.is_ok() {
                let members: Vec<Member> = pods
                    .iter()
                    .filter_map(|p| {
                        let ordinal = identity::ordinal_of(&key.name, name_of(p))?;
                        Some(Member {
                            ordinal,
                            name: name_of(p).to_owned(),
                            revision: p
                                .metadata
                                .labels
                                .as_ref()
                                .and_then(|l| l.get(HASH_LABEL).cloned())
                                .unwrap_or_default(),
                            terminating: is_terminating(p),
                            terminal: is_failed(p) || is_succeeded(p),
                            ready: is_running_and_ready(p),
                            available: is_available(p, min_ready, now),
                            identity_ok: identity::identity_matches(&set, p, ordinal),
                        })
                    })
                    .collect();
                let steps = plan::plan(&policy, &members, revision_name(&update));
                tracing::debug!(%key, ?steps, "StatefulSet plan");
                acted = self
                    .execute(key, &set, &pods, steps, &current, &update)
                    .await;
            }
        }

        let new = status::compute(
            &set,
            &pods,
            &status::Observed {
                current_revision: revision_name(&current),
                update_revision: revision_name(&update),
                collision_count,
                now,
            },
        );
        if set.status.as_ref() != Some(&new) {
            let api: Api<StatefulSet> = Api::namespaced(self.client.clone(), &key.namespace);
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

        // History: keep the live revisions and `revisionHistoryLimit` others.
        let mut live: HashSet<String> = pods
            .iter()
            .filter_map(|p| p.metadata.labels.as_ref()?.get(HASH_LABEL).cloned())
            .collect();
        live.insert(revision_name(&current).to_owned());
        live.insert(revision_name(&update).to_owned());
        let limit = spec.revision_history_limit.unwrap_or(10);
        self.history
            .prune(&key.namespace, &history::to_prune(&revs, &live, limit))
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
