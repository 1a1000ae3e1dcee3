//! The Job controller's pod writes (upstream's `getPodsForJob` and pod control): claiming
//! pods by selector and controller reference, creating pods in slow-start batches, and
//! deleting them with or without releasing their tracking finalizer first.

use std::sync::Arc;

use api::selector::LabelSelector;
use controller_runtime::Key;
use controller_runtime::owners::{Claim, claim, controller_reference};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;

use super::pods::{self, TRACKING_FINALIZER};
use super::sync::SyncState;
use super::{JobController, JobError, api_error};

impl JobController {
    /// The pods this Job owns, after adopting matching orphans and releasing owned pods
    /// that no longer match (upstream's `getPodsForJob`). Adopted pods get the tracking
    /// finalizer in the same patch.
    pub(super) async fn pods_for(&self, key: &Key, job: &Job) -> Result<Vec<Arc<Pod>>, JobError> {
        let selector = job
            .spec
            .as_ref()
            .and_then(|s| s.selector.as_ref())
            .map(LabelSelector::from_k8s)
            .transpose()
            .map_err(|e| JobError::Selector {
                key: key.clone(),
                message: e.to_string(),
            })?
            .unwrap_or_else(LabelSelector::nothing);
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &key.namespace);
        let mut owned = Vec::new();
        let mut rechecked = false;
        for p in self.pods.list_in(&key.namespace) {
            let name = p.metadata.name.as_deref().unwrap_or_default();
            let uid = p.metadata.uid.as_deref().unwrap_or_default();
            match claim(&job.metadata, &selector, &p.metadata) {
                Claim::Owned => owned.push(p),
                Claim::Ignore => {}
                Claim::Adopt => {
                    if !rechecked {
                        self.recheck_not_deleting(key, job).await?;
                        rechecked = true;
                    }
                    let patch = json!({"metadata": {
                        "ownerReferences": [controller_reference(job)],
                        "finalizers": [TRACKING_FINALIZER],
                        "uid": uid,
                    }});
                    match api
                        .patch(name, &PatchParams::default(), &Patch::Strategic(&patch))
                        .await
                    {
                        Ok(adopted) => owned.push(Arc::new(adopted)),
                        // Gone or replaced meanwhile: not ours to count.
                        Err(kube::Error::Api(e)) if e.code == 404 || e.code == 422 => {}
                        Err(e) => {
                            return Err(api_error("adopting", "Pod", &key.namespace, name)(e));
                        }
                    }
                }
                Claim::Release => {
                    let job_uid = job.metadata.uid.as_deref().unwrap_or_default();
                    let patch = json!({"metadata": {
                        "ownerReferences": [{"$patch": "delete", "uid": job_uid}],
                        "$deleteFromPrimitiveList/finalizers": [TRACKING_FINALIZER],
                        "uid": uid,
                    }});
                    match api
                        .patch(name, &PatchParams::default(), &Patch::Strategic(&patch))
                        .await
                    {
                        Ok(_) => {}
                        Err(kube::Error::Api(e)) if e.code == 404 || e.code == 422 => {}
                        Err(e) => {
                            return Err(api_error("releasing", "Pod", &key.namespace, name)(e));
                        }
                    }
                }
            }
        }
        Ok(owned)
    }

    /// Adoption needs a Job that is not being deleted, read from the server rather than the
    /// cache (upstream's `RecheckDeletionTimestamp`).
    async fn recheck_not_deleting(&self, key: &Key, job: &Job) -> Result<(), JobError> {
        let api: Api<Job> = Api::namespaced(self.client.clone(), &key.namespace);
        let fresh = api.get(&key.name).await.map_err(api_error(
            "reading",
            "Job",
            &key.namespace,
            &key.name,
        ))?;
        let expected = job.metadata.uid.clone().unwrap_or_default();
        if fresh.metadata.uid.as_deref() != Some(expected.as_str())
            || fresh.metadata.deletion_timestamp.is_some()
        {
            return Err(JobError::Replaced {
                key: key.clone(),
                expected,
            });
        }
        Ok(())
    }

    /// Creates pods in batches of 1, 2, 4, ... stopping at the first batch with an error
    /// (upstream's slow start: a quota or admission failure costs one request, not
    /// hundreds). Returns how many were created.
    pub(super) async fn create_pods(
        &self,
        s: &SyncState<'_>,
        indexes: &[Option<i32>],
    ) -> (usize, Option<JobError>) {
        let ns = s.key.namespace.as_str();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        let mut created = 0;
        let mut next = 0;
        let mut batch = 1;
        while next < indexes.len() {
            let end = (next + batch).min(indexes.len());
            let results = futures::future::join_all(indexes[next..end].iter().map(|ix| {
                let pod = pods::new_pod(&s.job, *ix);
                let api = api.clone();
                async move { api.create(&PostParams::default(), &pod).await }
            }))
            .await;
            let mut first_error = None;
            for r in results {
                match r {
                    Ok(pod) => {
                        created += 1;
                        let name = pod.metadata.name.unwrap_or_default();
                        self.recorder.normal(
                            &s.job,
                            "SuccessfulCreate",
                            &format!("Created pod: {name}"),
                        );
                    }
                    Err(e) => {
                        self.expectations.creation_observed(s.key);
                        self.recorder.warning(
                            &s.job,
                            "FailedCreate",
                            &format!("Error creating: {e}"),
                        );
                        first_error.get_or_insert(e);
                    }
                }
            }
            next = end;
            if let Some(e) = first_error {
                // The pods never attempted will not be observed either.
                self.expectations
                    .creations_skipped(s.key, indexes.len() - next);
                return (
                    created,
                    Some(api_error("creating a pod for", "Job", ns, &s.key.name)(e)),
                );
            }
            batch *= 2;
        }
        (created, None)
    }

    /// Deletes pods after releasing their finalizer (used when scaling down or suspending:
    /// such pods are not counted). Returns (ready ones deleted, deleted, first error).
    pub(super) async fn delete_job_pods(
        &self,
        s: &SyncState<'_>,
        victims: &[&Pod],
    ) -> (i32, usize, Option<JobError>) {
        let uids: Vec<String> = victims
            .iter()
            .filter_map(|p| p.metadata.uid.clone())
            .collect();
        self.expectations.expect(s.key, 0, uids);
        let results = futures::future::join_all(victims.iter().map(|p| async move {
            if pods::has_tracking_finalizer(p) {
                super::remove_finalizer(&self.client, p).await?;
            }
            self.delete_pod(p).await
        }))
        .await;
        self.tally_deletions(s, victims, results)
    }

    /// Deletes active pods of a finished Job, keeping their finalizers so their outcome is
    /// still counted (as failed).
    pub(super) async fn delete_active(
        &self,
        job: &Job,
        victims: &[&Pod],
    ) -> (i32, usize, Option<JobError>) {
        let results = futures::future::join_all(victims.iter().map(|p| self.delete_pod(p))).await;
        let mut ready = 0;
        let mut deleted = 0;
        let mut first = None;
        for (p, r) in victims.iter().zip(results) {
            match r {
                Ok(()) => {
                    deleted += 1;
                    ready += i32::from(pods::is_ready(p));
                    let name = p.metadata.name.as_deref().unwrap_or_default();
                    self.recorder
                        .normal(job, "SuccessfulDelete", &format!("Deleted pod: {name}"));
                }
                Err(e) => {
                    let name = p.metadata.name.as_deref().unwrap_or_default();
                    self.recorder
                        .warning(job, "FailedDelete", &format!("Error deleting: {e}"));
                    first.get_or_insert_with(|| {
                        api_error(
                            "deleting",
                            "Pod",
                            p.metadata.namespace.as_deref().unwrap_or_default(),
                            name,
                        )(e)
                    });
                }
            }
        }
        (ready, deleted, first)
    }

    fn tally_deletions(
        &self,
        s: &SyncState<'_>,
        victims: &[&Pod],
        results: Vec<Result<(), kube::Error>>,
    ) -> (i32, usize, Option<JobError>) {
        let mut ready = 0;
        let mut deleted = 0;
        let mut first = None;
        for (p, r) in victims.iter().zip(results) {
            let uid = p.metadata.uid.as_deref().unwrap_or_default();
            match r {
                Ok(()) => {
                    deleted += 1;
                    ready += i32::from(pods::is_ready(p));
                    let name = p.metadata.name.as_deref().unwrap_or_default();
                    self.recorder.normal(
                        &s.job,
                        "SuccessfulDelete",
                        &format!("Deleted pod: {name}"),
                    );
                }
                Err(e) => {
                    self.expectations.deletion_observed(s.key, uid);
                    let name = p.metadata.name.as_deref().unwrap_or_default();
                    self.recorder
                        .warning(&s.job, "FailedDelete", &format!("Error deleting: {e}"));
                    first.get_or_insert_with(|| {
                        api_error("deleting", "Pod", &s.key.namespace, name)(e)
                    });
                }
            }
        }
        (ready, deleted, first)
    }

    /// Deletes one pod; a pod already gone counts as deleted.
    async fn delete_pod(&self, p: &Pod) -> Result<(), kube::Error> {
        let ns = p.metadata.namespace.as_deref().unwrap_or_default();
        let name = p.metadata.name.as_deref().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        let dp = DeleteParams {
            preconditions: p.metadata.uid.clone().map(|uid| kube::api::Preconditions {
                uid: Some(uid),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        match api.delete(name, &dp).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
            Err(e) => Err(e),
        }
    }
}
