//! One owner's sync (upstream's `syncReplicaSet`): claim the pods, create or delete the
//! difference, write status.
//!
//! Guarantees:
//! * No double creates or deletes: while expectations from an earlier sync are unmet (the
//!   pod cache has not caught up with our own writes), the sync only writes status.
//! * At most [`BURST_REPLICAS`] pods are created or deleted per sync; creations start in
//!   slow-start batches and stop at the first failure, and the creations never attempted
//!   are un-expected at once so the next sync is not held back.
//! * Adoption re-reads the owner from the API first, so a just-deleted or recreated owner
//!   never adopts (upstream's `RecheckDeletionTimestamp`).
//! * Status is written only when it changed, through the status subresource; the
//!   `ReplicaFailure` condition reflects whether this sync's creates/deletes failed.
//! * A sync that leaves expectations unmet comes back when they expire, so a pod event that
//!   never arrives delays the owner by [`controller_runtime::expectations::TTL`], never
//!   forever.

use std::collections::HashSet;
use std::sync::Arc;

use api::selector::LabelSelector;
use controller_runtime::owners::{self, Claim, controller_of};
use controller_runtime::{Action, Expectations, Informer, Key, Reconcile, Recorder};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};

use crate::owner::ReplicaOwner;
use crate::pods::{self, TemplateError};
use crate::ranking;
use crate::slow_start::slow_start_batch;
use crate::status::{self, Failure};

/// Most pods created or deleted in one sync (upstream's `BurstReplicas`).
pub const BURST_REPLICAS: usize = 500;

/// When to look again while expectations are unmet: just after they would expire.
pub const EXPECTATIONS_RECHECK: std::time::Duration =
    controller_runtime::expectations::TTL.saturating_add(std::time::Duration::from_secs(1));

/// Why creating or deleting pods failed.
#[derive(Debug, thiserror::Error)]
pub enum ManageError {
    #[error("cannot make pods from the template")]
    Template(#[source] TemplateError),
    #[error("creating a pod")]
    Create(#[source] kube::Error),
    #[error("deleting pod {pod}")]
    Delete {
        pod: String,
        #[source]
        source: kube::Error,
    },
}

impl ManageError {
    /// The message for the `ReplicaFailure` condition: the API's own words where there are
    /// some, as upstream's (which is the error's text).
    fn condition_message(&self) -> String {
        match self {
            ManageError::Template(e) => e.to_string(),
            ManageError::Create(e) | ManageError::Delete { source: e, .. } => api_message(e),
        }
    }
}

/// Why a sync failed (it is retried with backoff).
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("re-reading {kind} {key} before adopting pods")]
    Recheck {
        kind: &'static str,
        key: Key,
        #[source]
        source: kube::Error,
    },
    #[error("{kind} {key} was deleted or replaced (the cache knew uid {uid}); not adopting pods")]
    OwnerChanged {
        kind: &'static str,
        key: Key,
        uid: String,
    },
    #[error("adopting pod {pod} into {key}")]
    Adopt {
        key: Key,
        pod: String,
        #[source]
        source: kube::Error,
    },
    #[error("releasing pod {pod} from {key}")]
    Release {
        key: Key,
        pod: String,
        #[source]
        source: kube::Error,
    },
    #[error("managing the pods of {key}")]
    Manage {
        key: Key,
        #[source]
        source: ManageError,
    },
    #[error("writing the status of {key}")]
    Status {
        key: Key,
        #[source]
        source: kube::Error,
    },
}

fn api_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) if !s.message.is_empty() => s.message.clone(),
        other => other.to_string(),
    }
}

fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

/// Creations into a terminating namespace fail by design; upstream does not count them as
/// failures.
fn namespace_terminating(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.details.as_ref().is_some_and(|d| {
        d.causes.iter().any(|c| c.reason == "NamespaceTerminating")
    }))
}

/// The reconciler of one kind of replica owner.
pub struct Replicas<K> {
    pub owners: Informer<K>,
    pub pods: Informer<Pod>,
    pub client: kube::Client,
    pub recorder: Recorder,
    pub expectations: Arc<Expectations>,
}

fn name_of(p: &Pod) -> String {
    p.metadata.name.clone().unwrap_or_default()
}

impl<K: ReplicaOwner> Replicas<K> {
    fn owner_api(&self, ns: &str) -> Api<K> {
        Api::namespaced(self.client.clone(), ns)
    }

    fn pod_api(&self, ns: &str) -> Api<Pod> {
        Api::namespaced(self.client.clone(), ns)
    }

    /// Adopts and releases as the controller-ref rules say; returns the owned pods.
    async fn claim(
        &self,
        key: &Key,
        owner: &K,
        selector: &LabelSelector,
        candidates: Vec<Arc<Pod>>,
    ) -> Result<Vec<Arc<Pod>>, SyncError> {
        let meta = owner.meta();
        let owner_uid = meta.uid.clone().unwrap_or_default();
        let api = self.pod_api(&key.namespace);
        let mut rechecked = false;
        let mut owned = Vec::with_capacity(candidates.len());
        for pod in candidates {
            match owners::claim(meta, selector, &pod.metadata) {
                Claim::Owned => owned.push(pod),
                Claim::Ignore => {}
                Claim::Adopt => {
                    if !rechecked {
                        self.recheck(key, &owner_uid).await?;
                        rechecked = true;
                    }
                    let uid = pod.metadata.uid.as_deref().unwrap_or_default();
                    let reference = owners::controller_reference(owner);
                    match owners::adopt(&api, &name_of(&pod), uid, &reference).await {
                        Ok(adopted) => {
                            tracing::debug!(owner = %key, pod = %name_of(&pod), "adopted pod");
                            owned.push(Arc::new(adopted));
                        }
                        // Gone, or replaced by a pod of the same name: nothing to adopt.
                        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 422 => {}
                        Err(source) => {
                            return Err(SyncError::Adopt {
                                key: key.clone(),
                                pod: name_of(&pod),
                                source,
                            });
                        }
                    }
                }
                Claim::Release => {
                    let uid = pod.metadata.uid.as_deref().unwrap_or_default();
                    owners::release(&api, &name_of(&pod), uid, &owner_uid)
                        .await
                        .map_err(|source| SyncError::Release {
                            key: key.clone(),
                            pod: name_of(&pod),
                            source,
                        })?;
                    tracing::debug!(owner = %key, pod = %name_of(&pod), "released pod");
                }
            }
        }
        Ok(owned)
    }

    /// Reads the owner from the API (not the cache) to make sure it is the one the cache
    /// showed and is not being deleted.
    async fn recheck(&self, key: &Key, uid: &str) -> Result<(), SyncError> {
        let fresh = self
            .owner_api(&key.namespace)
            .get(&key.name)
            .await
            .map_err(|source| SyncError::Recheck {
                kind: K::CONTROLLER,
                key: key.clone(),
                source,
            })?;
        let m = fresh.meta();
        if m.uid.as_deref() != Some(uid) || m.deletion_timestamp.is_some() {
            return Err(SyncError::OwnerChanged {
                kind: K::CONTROLLER,
                key: key.clone(),
                uid: uid.to_owned(),
            });
        }
        Ok(())
    }

    /// The pods of this owner and of its siblings (owners with the same controller, e.g.
    /// the ReplicaSets of one Deployment), for the co-location criterion of the ranking.
    fn related_pods(&self, owner: &K, ns: &str) -> Vec<Arc<Pod>> {
        let own = owner.meta().uid.clone().unwrap_or_default();
        let mut uids: HashSet<String> = HashSet::from([own]);
        if let Some(parent) = controller_of(owner.meta()) {
            for o in self.owners.list_in(ns) {
                if controller_of(o.meta()).is_some_and(|r| r.uid == parent.uid) {
                    uids.extend(o.meta().uid.clone());
                }
            }
        }
        self.pods
            .list_in(ns)
            .into_iter()
            .filter(|p| controller_of(&p.metadata).is_some_and(|r| uids.contains(&r.uid)))
            .collect()
    }

    /// Creates or deletes pods until `pods` (the active owned ones) number `replicas`.
    async fn manage(&self, key: &Key, owner: &K, pods: &[Arc<Pod>]) -> Result<(), ManageError> {
        let spec = owner.owner_spec();
        let want = usize::try_from(spec.replicas.max(0)).unwrap_or(0);
        if pods.len() < want {
            let n = (want - pods.len()).min(BURST_REPLICAS);
            let template = spec
                .template
                .ok_or(ManageError::Template(TemplateError::NoSpec))?;
            let pod = pods::from_template(
                &key.name,
                &key.namespace,
                template,
                owners::controller_reference(owner),
            )
            .map_err(ManageError::Template)?;
            self.expectations.expect(key, n, []);
            let api = self.pod_api(&key.namespace);
            let (created, error) = slow_start_batch(n, 1, |_| self.create(&api, owner, &pod)).await;
            if created < n {
                // Failed and never-attempted creations will not be observed.
                self.expectations.creations_skipped(key, n - created);
            }
            if let Some(e) = error {
                return Err(ManageError::Create(e));
            }
        } else if pods.len() > want {
            let n = (pods.len() - want).min(BURST_REPLICAS);
            let related = self.related_pods(owner, &key.namespace);
            let doomed = ranking::pods_to_delete(pods, &related, n, Timestamp::now());
            self.expectations
                .expect(key, 0, doomed.iter().filter_map(|p| p.metadata.uid.clone()));
            let api = self.pod_api(&key.namespace);
            let results =
                futures::future::join_all(doomed.iter().map(|p| self.delete(&api, owner, p))).await;
            let mut first_error = None;
            for (p, r) in doomed.iter().zip(results) {
                if let Err(e) = r {
                    // The deletion will not be observed (404: it already was, or will be).
                    self.expectations
                        .deletion_observed(key, p.metadata.uid.as_deref().unwrap_or_default());
                    if !is_not_found(&e) && first_error.is_none() {
                        first_error = Some(ManageError::Delete {
                            pod: name_of(p),
                            source: e,
                        });
                    }
                }
            }
            if let Some(e) = first_error {
                return Err(e);
            }
        }
        Ok(())
    }

    async fn create(&self, api: &Api<Pod>, owner: &K, pod: &Pod) -> Result<(), kube::Error> {
        match api.create(&PostParams::default(), pod).await {
            Ok(created) => {
                self.recorder.normal(
                    owner,
                    "SuccessfulCreate",
                    &format!("Created pod: {}", name_of(&created)),
                );
                Ok(())
            }
            Err(e) => {
                self.recorder.warning(
                    owner,
                    "FailedCreate",
                    &format!("Error creating: {}", api_message(&e)),
                );
                if namespace_terminating(&e) {
                    return Ok(());
                }
                Err(e)
            }
        }
    }

    async fn delete(&self, api: &Api<Pod>, owner: &K, pod: &Pod) -> Result<(), kube::Error> {
        let name = name_of(pod);
        match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => {
                self.recorder
                    .normal(owner, "SuccessfulDelete", &format!("Deleted pod: {name}"));
                Ok(())
            }
            Err(e) if is_not_found(&e) => Err(e),
            Err(e) => {
                self.recorder.warning(
                    owner,
                    "FailedDelete",
                    &format!("Error deleting: {}", api_message(&e)),
                );
                Err(e)
            }
        }
    }
}

#[async_trait::async_trait]
impl<K: ReplicaOwner> Reconcile for Replicas<K> {
    type Error = SyncError;

    async fn reconcile(&self, key: &Key) -> Result<Action, SyncError> {
        let Some(owner) = self.owners.get(key) else {
            self.expectations.delete(key);
            return Ok(Action::Done);
        };
        let spec = owner.owner_spec();
        let selector = match spec.selector {
            Ok(s) => s,
            Err(e) => {
                // Not retried: only an edit of the object can fix it (and triggers a sync).
                tracing::warn!(controller = K::CONTROLLER, %key, error = %e, "invalid selector; not managing pods");
                return Ok(Action::Done);
            }
        };
        // Checked before reading the pod cache: once satisfied, the cache holds every pod
        // our earlier writes made or removed.
        let needs_sync =
            self.expectations.satisfied(key) && owner.meta().deletion_timestamp.is_none();
        let candidates: Vec<Arc<Pod>> = self
            .pods
            .list_in(&key.namespace)
            .into_iter()
            .filter(|p| pods::is_active(p))
            .collect();
        let pods = self.claim(key, &owner, &selector, candidates).await?;

        let managed = if needs_sync {
            self.manage(key, &owner, &pods).await
        } else {
            Ok(())
        };
        let failure = managed.as_ref().err().map(|e| Failure {
            reason: if usize::try_from(spec.replicas.max(0)).unwrap_or(0) > pods.len() {
                "FailedCreate"
            } else {
                "FailedDelete"
            },
            message: e.condition_message(),
        });

        let now = Timestamp::now();
        let current = owner.replica_status();
        let template_labels = spec
            .template
            .and_then(|t| t.metadata.as_ref())
            .and_then(|m| m.labels.as_ref());
        let new = status::calculate(
            &current,
            &status::Observed {
                generation: owner.meta().generation.unwrap_or(0),
                template_labels,
                min_ready_seconds: spec.min_ready_seconds,
                pods: &pods,
                failure,
                now,
            },
        );
        if new != current {
            let patch = status::patch(&new);
            match self
                .owner_api(&key.namespace)
                .patch_status(&key.name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => {}
                // Deleted meanwhile: its deletion triggers a sync that forgets it.
                Err(e) if is_not_found(&e) => {}
                Err(source) => {
                    return Err(SyncError::Status {
                        key: key.clone(),
                        source,
                    });
                }
            }
        }
        managed.map_err(|source| SyncError::Manage {
            key: key.clone(),
            source,
        })?;
        let available_in = status::next_available_in(&pods, spec.min_ready_seconds, now);
        // Expectations only expire with time: if the pods they wait for never show up (made
        // and removed during a watch gap, say), no pod event will come to sync us again.
        let expired_in = (!self.expectations.satisfied(key)).then_some(EXPECTATIONS_RECHECK);
        Ok(match available_in.into_iter().chain(expired_in).min() {
            Some(d) => Action::RequeueAfter(d),
            None => Action::Done,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status_error(code: u16, message: &str, cause: Option<&str>) -> kube::Error {
        let mut s = kube::core::Status::failure(message, "Forbidden").with_code(code);
        if let Some(reason) = cause {
            s = s.with_details(kube::core::response::StatusDetails {
                name: String::new(),
                group: String::new(),
                kind: String::new(),
                uid: String::new(),
                causes: vec![kube::core::response::StatusCause {
                    reason: reason.into(),
                    message: String::new(),
                    field: String::new(),
                }],
                retry_after_seconds: 0,
            });
        }
        kube::Error::Api(s.boxed())
    }

    #[test]
    fn api_errors_are_classified_like_upstream() {
        let quota = status_error(403, "exceeded quota: q", None);
        assert_eq!(api_message(&quota), "exceeded quota: q");
        assert!(!namespace_terminating(&quota));
        assert!(namespace_terminating(&status_error(
            403,
            "namespace x is being terminated",
            Some("NamespaceTerminating")
        )));
        assert!(is_not_found(&status_error(404, "gone", None)));
        assert!(!is_not_found(&quota));
        let e = ManageError::Delete {
            pod: "p".into(),
            source: quota,
        };
        assert_eq!(e.condition_message(), "exceeded quota: q");
        assert_eq!(
            ManageError::Template(TemplateError::NoLabels).condition_message(),
            "unable to create pods, no labels"
        );
    }
}
