//! One Deployment's sync (upstream's `syncDeployment`): claim the ReplicaSets, then scale
//! (a size change, or a paused Deployment), or roll out by the strategy, and write status with
//! the `Available` and `Progressing` conditions.
//!
//! Guarantees:
//! * The new ReplicaSet's name is `<deployment>-<pod-template-hash>`, so two syncs racing on a
//!   stale cache cannot create two of them: the second gets AlreadyExists and adopts the first
//!   if it is ours with the same template, else bumps `collisionCount` for a new hash.
//! * Every ReplicaSet resize carries the `resourceVersion` it was computed from: a resize
//!   based on a stale cache fails with a conflict and the sync runs again on fresher state.
//! * RollingUpdate never takes the Deployment above `replicas + maxSurge` pods nor below
//!   `replicas - maxUnavailable` available; Recreate scales old ReplicaSets to zero and waits
//!   for their pods to be gone before scaling the new one up.
//! * A rollout that makes no progress for `progressDeadlineSeconds` gets
//!   `Progressing=False/ProgressDeadlineExceeded`; the sync requeues itself for that moment.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use api::selector::LabelSelector;
use controller_runtime::owners::{self, Claim};
use controller_runtime::{Action, Informer, Key, Reconcile, Recorder};
use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentStatus, ReplicaSet, ReplicaSetSpec};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::{Api, Client};
use serde_json::json;

use crate::util::{self, *};

/// What can fail in a sync.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("Deployment {key}: {what}: {source}")]
    Api {
        key: Key,
        what: String,
        #[source]
        source: kube::Error,
    },
    #[error("Deployment {key}: invalid selector: {message}")]
    Selector { key: Key, message: String },
    #[error(
        "Deployment {key}: ReplicaSet {name} exists but is not this Deployment's; collisionCount raised to find another name"
    )]
    HashCollision { key: Key, name: String },
    #[error("Deployment {key}: ReplicaSet {name} was created but is not in the cache yet")]
    NotCached { key: Key, name: String },
}

pub struct Deployments {
    pub deployments: Informer<Deployment>,
    pub replicasets: Informer<ReplicaSet>,
    pub pods: Informer<Pod>,
    pub client: Client,
    pub recorder: Recorder,
}

fn name(rs: &ReplicaSet) -> &str {
    rs.metadata.name.as_deref().unwrap_or_default()
}

impl Deployments {
    fn api_err(key: &Key, what: impl Into<String>) -> impl FnOnce(kube::Error) -> SyncError {
        let (key, what) = (key.clone(), what.into());
        move |source| SyncError::Api { key, what, source }
    }

    /// The ReplicaSets this Deployment owns, after adopting and releasing by selector.
    async fn claim(
        &self,
        key: &Key,
        d: &Deployment,
        selector: &LabelSelector,
    ) -> Result<Vec<Arc<ReplicaSet>>, SyncError> {
        let api: Api<ReplicaSet> = Api::namespaced(self.client.clone(), &key.namespace);
        let uid = d.metadata.uid.as_deref().unwrap_or_default();
        let mut owned = Vec::new();
        let mut checked_owner = false;
        for rs in self.replicasets.list_in(&key.namespace) {
            match owners::claim(&d.metadata, selector, &rs.metadata) {
                Claim::Owned => owned.push(rs),
                Claim::Ignore => {}
                Claim::Release => {
                    let rs_uid = rs.metadata.uid.as_deref().unwrap_or_default();
                    owners::release(&api, name(&rs), rs_uid, uid)
                        .await
                        .map_err(Self::api_err(
                            key,
                            format!("releasing ReplicaSet {}", name(&rs)),
                        ))?;
                }
                Claim::Adopt => {
                    if !checked_owner {
                        // Never adopt for a Deployment that was just deleted or replaced.
                        let fresh =
                            Api::<Deployment>::namespaced(self.client.clone(), &key.namespace)
                                .get(&key.name)
                                .await
                                .map_err(Self::api_err(key, "re-reading before adoption"))?;
                        if fresh.metadata.uid != d.metadata.uid
                            || fresh.metadata.deletion_timestamp.is_some()
                        {
                            return Ok(owned);
                        }
                        checked_owner = true;
                    }
                    let rs_uid = rs.metadata.uid.as_deref().unwrap_or_default();
                    let adopted =
                        owners::adopt(&api, name(&rs), rs_uid, &owners::controller_reference(d))
                            .await
                            .map_err(Self::api_err(
                                key,
                                format!("adopting ReplicaSet {}", name(&rs)),
                            ))?;
                    owned.push(Arc::new(adopted));
                }
            }
        }
        Ok(owned)
    }

    /// Resizes `rs` (and stamps the replica annotations), with its resourceVersion as the
    /// precondition, recording upstream's `ScalingReplicaSet` event.
    async fn scale(
        &self,
        key: &Key,
        d: &Deployment,
        rs: &ReplicaSet,
        to: i32,
    ) -> Result<bool, SyncError> {
        let from = rs_replicas(rs);
        let desired = replicas(d).to_string();
        let max = replicas(d).saturating_add(max_surge(d)).to_string();
        let ann = rs.metadata.annotations.clone().unwrap_or_default();
        if from == to
            && ann.get(DESIRED_REPLICAS) == Some(&desired)
            && ann.get(MAX_REPLICAS) == Some(&max)
        {
            return Ok(false);
        }
        let patch = json!({
            "metadata": {
                "resourceVersion": rs.metadata.resource_version,
                "annotations": {DESIRED_REPLICAS: desired, MAX_REPLICAS: max},
            },
            "spec": {"replicas": to},
        });
        Api::<ReplicaSet>::namespaced(self.client.clone(), &key.namespace)
            .patch(name(rs), &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(Self::api_err(
                key,
                format!("scaling ReplicaSet {}", name(rs)),
            ))?;
        if from != to {
            let dir = if to > from { "up" } else { "down" };
            self.recorder.normal(
                d,
                "ScalingReplicaSet",
                &format!("Scaled {dir} replica set {} from {from} to {to}", name(rs)),
            );
        }
        Ok(from != to)
    }

    /// The new ReplicaSet (template equal to the Deployment's) and the old ones; with `create`,
    /// the new one is created if missing. Also brings the new one's revision up to date.
    async fn new_and_old(
        &self,
        key: &Key,
        d: &mut Deployment,
        owned: &[Arc<ReplicaSet>],
        create: bool,
        status: &mut DeploymentStatus,
    ) -> Result<(Option<Arc<ReplicaSet>>, Vec<Arc<ReplicaSet>>), SyncError> {
        let template = util::template(d);
        let mut matching: Vec<&Arc<ReplicaSet>> = owned
            .iter()
            .filter(|rs| equal_ignore_hash(&rs_template(rs), &template))
            .collect();
        matching.sort_by(|a, b| by_creation(a, b));
        let existing = matching.first().map(|rs| (*rs).clone());
        let old: Vec<Arc<ReplicaSet>> = owned
            .iter()
            .filter(|rs| {
                existing
                    .as_ref()
                    .is_none_or(|n| n.metadata.uid != rs.metadata.uid)
            })
            .cloned()
            .collect();
        let new_revision = old.iter().map(|rs| revision(rs)).max().unwrap_or(0) + 1;
        let api: Api<ReplicaSet> = Api::namespaced(self.client.clone(), &key.namespace);
        let now = Timestamp::now();

        if let Some(rs) = existing {
            let current = rs.metadata.annotations.clone().unwrap_or_default();
            let wanted = new_rs_annotations(d, &current, new_revision, true);
            let min_ready = d.spec.as_ref().and_then(|s| s.min_ready_seconds);
            let rs_min_ready = rs.spec.as_ref().and_then(|s| s.min_ready_seconds);
            let rs = if wanted != current || min_ready.unwrap_or(0) != rs_min_ready.unwrap_or(0) {
                let patch = json!({
                    "metadata": {"resourceVersion": rs.metadata.resource_version, "annotations": wanted},
                    "spec": {"minReadySeconds": min_ready.unwrap_or(0)},
                });
                Arc::new(
                    api.patch(name(&rs), &PatchParams::default(), &Patch::Merge(&patch))
                        .await
                        .map_err(Self::api_err(
                            key,
                            format!("updating ReplicaSet {}", name(&rs)),
                        ))?,
                )
            } else {
                rs
            };
            self.sync_revision_annotation(key, d, &rs).await?;
            if progress_deadline(d).is_some() && get_condition(status, PROGRESSING).is_none() {
                let msg = format!("Found new replica set \"{}\"", name(&rs));
                set_condition(
                    status,
                    condition(PROGRESSING, "True", FOUND_NEW_RS, &msg, now),
                );
            }
            return Ok((Some(rs), old));
        }
        if !create {
            return Ok((None, old));
        }

        let hash = pod_template_hash(d);
        let rs_name = format!("{}-{hash}", key.name);
        let mut tpl = template;
        tpl.metadata
            .get_or_insert_with(Default::default)
            .labels
            .get_or_insert_with(BTreeMap::new)
            .insert(HASH_LABEL.to_owned(), hash.clone());
        let mut selector = d
            .spec
            .as_ref()
            .map(|s| s.selector.clone())
            .unwrap_or_default();
        selector
            .match_labels
            .get_or_insert_with(BTreeMap::new)
            .insert(HASH_LABEL.to_owned(), hash.clone());
        let mut new_rs = ReplicaSet {
            metadata: ObjectMeta {
                name: Some(rs_name.clone()),
                namespace: Some(key.namespace.clone()),
                labels: tpl.metadata.as_ref().and_then(|m| m.labels.clone()),
                owner_references: Some(vec![owners::controller_reference(d)]),
                ..Default::default()
            },
            spec: Some(ReplicaSetSpec {
                replicas: Some(0),
                min_ready_seconds: d.spec.as_ref().and_then(|s| s.min_ready_seconds),
                selector,
                template: Some(tpl),
            }),
            status: None,
        };
        let all: Vec<&ReplicaSet> = old.iter().map(|rs| rs.as_ref()).collect();
        let count = new_rs_new_replicas(d, &all, &new_rs);
        if let Some(s) = new_rs.spec.as_mut() {
            s.replicas = Some(count);
        }
        new_rs.metadata.annotations =
            Some(new_rs_annotations(d, &BTreeMap::new(), new_revision, false));
        let created = match api.create(&PostParams::default(), &new_rs).await {
            Ok(rs) => {
                if count > 0 {
                    self.recorder.normal(
                        d,
                        "ScalingReplicaSet",
                        &format!("Scaled up replica set {rs_name} from 0 to {count}"),
                    );
                }
                let msg = format!("Created new replica set \"{rs_name}\"");
                set_condition(
                    status,
                    condition(PROGRESSING, "True", NEW_RS_CREATED, &msg, now),
                );
                Arc::new(rs)
            }
            Err(kube::Error::Api(s)) if s.code == 409 => {
                // Ours from an earlier sync whose creation the cache has not shown yet, or
                // someone else's: only the first may be used.
                let cached = self.replicasets.get(&Key::new(&key.namespace, &rs_name));
                match cached {
                    Some(rs)
                        if owners::is_controlled_by(
                            &rs.metadata,
                            d.metadata.uid.as_deref().unwrap_or_default(),
                        ) && equal_ignore_hash(&rs_template(&rs), &util::template(d)) =>
                    {
                        rs
                    }
                    Some(_) => {
                        let count = status.collision_count.unwrap_or(0).saturating_add(1);
                        status.collision_count = Some(count);
                        self.write_status(key, d, status).await?;
                        return Err(SyncError::HashCollision {
                            key: key.clone(),
                            name: rs_name,
                        });
                    }
                    None => {
                        return Err(SyncError::NotCached {
                            key: key.clone(),
                            name: rs_name,
                        });
                    }
                }
            }
            Err(e) => {
                return Err(Self::api_err(key, format!("creating ReplicaSet {rs_name}"))(e));
            }
        };
        self.sync_revision_annotation(key, d, &created).await?;
        Ok((Some(created), old))
    }

    /// Copies the new ReplicaSet's revision onto the Deployment (what `kubectl describe` and
    /// `rollout status` read).
    async fn sync_revision_annotation(
        &self,
        key: &Key,
        d: &mut Deployment,
        rs: &ReplicaSet,
    ) -> Result<(), SyncError> {
        let Some(rev) = rs
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(REVISION))
        else {
            return Ok(());
        };
        let current = d
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(REVISION));
        if current == Some(rev) {
            return Ok(());
        }
        // Through `status`, as upstream: an annotation change on the main resource would
        // start a new generation.
        let patch = json!({"metadata": {"annotations": {REVISION: rev}}});
        let updated = Api::<Deployment>::namespaced(self.client.clone(), &key.namespace)
            .patch_status(&key.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(Self::api_err(key, "recording the revision"))?;
        d.metadata.annotations = updated.metadata.annotations;
        d.metadata.resource_version = updated.metadata.resource_version;
        Ok(())
    }

    async fn write_status(
        &self,
        key: &Key,
        d: &Deployment,
        status: &DeploymentStatus,
    ) -> Result<(), SyncError> {
        if d.status.as_ref() == Some(status) {
            return Ok(());
        }
        let patch = json!({"status": status});
        Api::<Deployment>::namespaced(self.client.clone(), &key.namespace)
            .patch_status(&key.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(Self::api_err(key, "writing status"))?;
        Ok(())
    }

    /// Resizes ReplicaSets to the Deployment's size (upstream's `scale`).
    async fn scale_all(
        &self,
        key: &Key,
        d: &Deployment,
        new_rs: Option<&Arc<ReplicaSet>>,
        old: &[Arc<ReplicaSet>],
    ) -> Result<(), SyncError> {
        let mut active: Vec<&ReplicaSet> = old
            .iter()
            .map(|rs| rs.as_ref())
            .chain(new_rs.map(|rs| rs.as_ref()))
            .filter(|rs| rs_replicas(rs) > 0)
            .collect();
        // One active (or none: the newest) takes the whole size.
        let single = match active.len() {
            0 => new_rs.map(|rs| rs.as_ref()).or_else(|| {
                old.iter()
                    .max_by(|a, b| by_creation(a, b))
                    .map(|rs| rs.as_ref())
            }),
            1 => active.first().copied(),
            _ => None,
        };
        if let Some(rs) = single {
            self.scale(key, d, rs, replicas(d)).await?;
            return Ok(());
        }
        if let Some(new_rs) = new_rs
            && rs_replicas(new_rs) == replicas(d)
            && rs_available(new_rs) == replicas(d)
        {
            for rs in old.iter().filter(|rs| rs_replicas(rs) > 0) {
                self.scale(key, d, rs, 0).await?;
            }
            return Ok(());
        }
        if is_rolling(d) {
            let sizes = proportional_sizes(d, &mut active);
            for rs in active {
                let to = sizes.get(name(rs)).copied().unwrap_or(rs_replicas(rs));
                self.scale(key, d, rs, to).await?;
            }
        }
        Ok(())
    }

    /// Deletes old, empty ReplicaSets beyond `revisionHistoryLimit`.
    async fn cleanup(
        &self,
        key: &Key,
        d: &Deployment,
        old: &[Arc<ReplicaSet>],
    ) -> Result<(), SyncError> {
        let Some(limit) = d.spec.as_ref().and_then(|s| s.revision_history_limit) else {
            return Ok(());
        };
        let mut alive: Vec<&Arc<ReplicaSet>> = old
            .iter()
            .filter(|rs| rs.metadata.deletion_timestamp.is_none())
            .collect();
        let excess = alive
            .len()
            .saturating_sub(usize::try_from(limit.max(0)).unwrap_or(0));
        if excess == 0 {
            return Ok(());
        }
        alive.sort_by(|a, b| {
            revision(a)
                .cmp(&revision(b))
                .then_with(|| by_creation(a, b))
        });
        let api: Api<ReplicaSet> = Api::namespaced(self.client.clone(), &key.namespace);
        for rs in alive.into_iter().take(excess) {
            let observed = rs
                .status
                .as_ref()
                .and_then(|s| s.observed_generation)
                .unwrap_or(0);
            if rs_actual(rs) != 0
                || rs_replicas(rs) != 0
                || rs.metadata.generation.unwrap_or(0) > observed
            {
                continue;
            }
            let dp = DeleteParams {
                preconditions: Some(Preconditions {
                    uid: rs.metadata.uid.clone(),
                    resource_version: None,
                }),
                ..DeleteParams::default()
            };
            match api.delete(name(rs), &dp).await {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {}
                Err(e) => {
                    return Err(Self::api_err(
                        key,
                        format!("deleting old ReplicaSet {}", name(rs)),
                    )(e));
                }
            }
        }
        Ok(())
    }

    /// Whether pods of old ReplicaSets still run (Recreate waits for them).
    fn old_pods_running(
        &self,
        key: &Key,
        new_rs: Option<&Arc<ReplicaSet>>,
        old: &[Arc<ReplicaSet>],
    ) -> bool {
        if old.iter().any(|rs| rs_actual(rs) > 0) {
            return true;
        }
        let old_uids: Vec<&str> = old
            .iter()
            .filter_map(|rs| rs.metadata.uid.as_deref())
            .collect();
        let new_uid = new_rs.and_then(|rs| rs.metadata.uid.as_deref());
        self.pods.list_in(&key.namespace).iter().any(|p| {
            let owner = owners::controller_of(&p.metadata).map(|r| r.uid.as_str());
            let phase = p.status.as_ref().and_then(|s| s.phase.as_deref());
            owner.is_some_and(|u| old_uids.contains(&u) && Some(u) != new_uid)
                && !matches!(phase, Some("Succeeded" | "Failed"))
        })
    }

    /// RollingUpdate: grow the new ReplicaSet within the surge, shrink old ones within the
    /// unavailability budget (upstream's `rolloutRolling`). Returns whether anything scaled.
    async fn roll(
        &self,
        key: &Key,
        d: &Deployment,
        new_rs: &Arc<ReplicaSet>,
        old: &[Arc<ReplicaSet>],
    ) -> Result<bool, SyncError> {
        let all: Vec<&ReplicaSet> = old
            .iter()
            .map(|rs| rs.as_ref())
            .chain([new_rs.as_ref()])
            .collect();
        // Grow (or shrink, if it is above the target) the new ReplicaSet.
        let want = replicas(d);
        if rs_replicas(new_rs) > want {
            return self.scale(key, d, new_rs, want).await;
        }
        if rs_replicas(new_rs) < want {
            let to = new_rs_new_replicas(d, &all, new_rs);
            if self.scale(key, d, new_rs, to).await? {
                return Ok(true);
            }
        }
        // Shrink old ones: first unhealthy replicas, then healthy ones down to minAvailable.
        let mut active: Vec<&ReplicaSet> = old
            .iter()
            .map(|rs| rs.as_ref())
            .filter(|rs| rs_replicas(rs) > 0)
            .collect();
        if active.is_empty() {
            return Ok(false);
        }
        active.sort_by(|a, b| by_creation(a, b));
        let min_available = want - max_unavailable(d);
        let new_unavailable = rs_replicas(new_rs) - rs_available(new_rs);
        let max_scaled_down = sum(&all, rs_replicas) - min_available - new_unavailable;
        if max_scaled_down <= 0 {
            return Ok(false);
        }
        let mut scaled = 0;
        let mut sizes: BTreeMap<String, i32> = BTreeMap::new();
        for rs in &active {
            if scaled >= max_scaled_down {
                break;
            }
            let unhealthy = rs_replicas(rs) - rs_available(rs);
            if unhealthy <= 0 {
                continue;
            }
            let n = unhealthy.min(max_scaled_down - scaled);
            sizes.insert(name(rs).to_owned(), rs_replicas(rs) - n);
            scaled += n;
        }
        let available = sum(&all, rs_available);
        let mut budget = (available - min_available).max(0);
        for rs in &active {
            if budget == 0 {
                break;
            }
            let current = sizes.get(name(rs)).copied().unwrap_or(rs_replicas(rs));
            if current == 0 {
                continue;
            }
            let n = current.min(budget);
            sizes.insert(name(rs).to_owned(), current - n);
            budget -= n;
        }
        let mut any = false;
        for rs in active {
            if let Some(to) = sizes.get(name(rs)) {
                any |= self.scale(key, d, rs, *to).await?;
            }
        }
        Ok(any)
    }

    /// Status after a rollout step, with the Progressing condition (upstream's
    /// `syncRolloutStatus`); returns when to look again for the deadline.
    fn rollout_status(
        &self,
        d: &Deployment,
        all: &[&ReplicaSet],
        new_rs: Option<&ReplicaSet>,
        base: &DeploymentStatus,
        now: Timestamp,
    ) -> DeploymentStatus {
        let mut d2 = d.clone();
        d2.status = Some(base.clone());
        let mut s = calculate_status(&d2, all, new_rs, now);
        if progress_deadline(d).is_none() {
            remove_condition(&mut s, PROGRESSING);
            return s;
        }
        let current = get_condition(&s, PROGRESSING).cloned();
        let done = s.replicas == s.updated_replicas
            && current
                .as_ref()
                .is_some_and(|c| c.reason.as_deref() == Some(NEW_RS_AVAILABLE));
        if done {
            return s;
        }
        let rs_name = new_rs.map(name).unwrap_or_default();
        if complete(d, &s) {
            let msg = format!("ReplicaSet \"{rs_name}\" has successfully progressed.");
            set_condition(
                &mut s,
                condition(PROGRESSING, "True", NEW_RS_AVAILABLE, &msg, now),
            );
        } else if progressing(d, &s) {
            let msg = if new_rs.is_some() {
                format!("ReplicaSet \"{rs_name}\" is progressing.")
            } else {
                String::new()
            };
            let mut c = condition(PROGRESSING, "True", RS_UPDATED, &msg, now);
            if let Some(cur) = current.as_ref().filter(|c| c.status == "True") {
                c.last_transition_time = cur.last_transition_time.clone();
            }
            remove_condition(&mut s, PROGRESSING);
            set_condition(&mut s, c);
        } else if timed_out(d, &s, now) {
            let msg = format!("ReplicaSet \"{rs_name}\" has timed out progressing.");
            set_condition(
                &mut s,
                condition(PROGRESSING, "False", TIMED_OUT, &msg, now),
            );
        }
        s
    }
}

#[async_trait::async_trait]
impl Reconcile for Deployments {
    type Error = SyncError;

    async fn reconcile(&self, key: &Key) -> Result<Action, SyncError> {
        let Some(cached) = self.deployments.get(key) else {
            return Ok(Action::Done);
        };
        let mut d = (*cached).clone();
        let selector =
            LabelSelector::from_k8s_opt(d.spec.as_ref().map(|s| &s.selector)).map_err(|e| {
                SyncError::Selector {
                    key: key.clone(),
                    message: e.to_string(),
                }
            })?;
        if selector.is_everything() {
            self.recorder.warning(&d, "SelectorRequired", "This deployment has an empty selector; it matches every pod and will not be rolled out");
            return Ok(Action::Done);
        }
        let owned = self.claim(key, &d, &selector).await?;
        let now = Timestamp::now();
        let mut status = d.status.clone().unwrap_or_default();

        // Paused/resumed bookkeeping on the Progressing condition.
        if progress_deadline(&d).is_some()
            && get_condition(&status, PROGRESSING)
                .is_none_or(|c| c.reason.as_deref() != Some(TIMED_OUT))
        {
            let paused_now = get_condition(&status, PROGRESSING)
                .is_some_and(|c| c.reason.as_deref() == Some(PAUSED));
            if paused(&d) && !paused_now {
                set_condition(
                    &mut status,
                    condition(PROGRESSING, "Unknown", PAUSED, "Deployment is paused", now),
                );
            } else if !paused(&d) && paused_now {
                set_condition(
                    &mut status,
                    condition(
                        PROGRESSING,
                        "Unknown",
                        RESUMED,
                        "Deployment is resumed",
                        now,
                    ),
                );
            }
        }

        let deleting = d.metadata.deletion_timestamp.is_some();
        let owned_refs: Vec<&ReplicaSet> = owned.iter().map(|rs| rs.as_ref()).collect();
        let scaling_event = owned_refs
            .iter()
            .filter(|rs| rs_replicas(rs) > 0)
            .any(|rs| desired_annotation(rs).is_some_and(|n| n != replicas(&d)));
        if deleting || paused(&d) || scaling_event {
            let (new_rs, old) = self
                .new_and_old(key, &mut d, &owned, false, &mut status)
                .await?;
            if !deleting {
                self.scale_all(key, &d, new_rs.as_ref(), &old).await?;
                if paused(&d) {
                    self.cleanup(key, &d, &old).await?;
                }
            }
            // Status from the cache; the next sync sees the resized ReplicaSets.
            let all: Vec<&ReplicaSet> = old
                .iter()
                .map(|rs| rs.as_ref())
                .chain(new_rs.as_deref())
                .collect();
            let mut d2 = d.clone();
            d2.status = Some(status);
            let s = calculate_status(&d2, &all, new_rs.as_deref(), now);
            self.write_status(key, &d, &s).await?;
            return Ok(Action::Done);
        }

        let rolling = is_rolling(&d);
        let (new_rs, old) = if rolling {
            self.new_and_old(key, &mut d, &owned, true, &mut status)
                .await?
        } else {
            let (new_rs, old) = self
                .new_and_old(key, &mut d, &owned, false, &mut status)
                .await?;
            // Recreate: everything old goes first, and its pods must be gone.
            let mut scaled = false;
            for rs in old.iter().filter(|rs| rs_replicas(rs) > 0) {
                scaled |= self.scale(key, &d, rs, 0).await?;
            }
            if scaled || self.old_pods_running(key, new_rs.as_ref(), &old) {
                let all: Vec<&ReplicaSet> = old
                    .iter()
                    .map(|rs| rs.as_ref())
                    .chain(new_rs.as_deref())
                    .collect();
                let s = self.rollout_status(&d, &all, new_rs.as_deref(), &status, now);
                self.write_status(key, &d, &s).await?;
                return Ok(self.requeue_for_deadline(&d, &s, now));
            }
            match new_rs {
                Some(rs) => (Some(rs), old),
                None => {
                    self.new_and_old(key, &mut d, &owned, true, &mut status)
                        .await?
                }
            }
        };
        let Some(new_rs) = new_rs else {
            return Ok(Action::Done);
        };
        let scaled = if rolling {
            self.roll(key, &d, &new_rs, &old).await?
        } else {
            self.scale(key, &d, &new_rs, replicas(&d)).await?
        };
        let all: Vec<&ReplicaSet> = old
            .iter()
            .map(|rs| rs.as_ref())
            .chain([new_rs.as_ref()])
            .collect();
        let s = self.rollout_status(&d, &all, Some(&new_rs), &status, now);
        if !scaled && complete(&d, &s) {
            self.cleanup(key, &d, &old).await?;
        }
        self.write_status(key, &d, &s).await?;
        Ok(self.requeue_for_deadline(&d, &s, now))
    }
}

impl Deployments {
    /// A rollout in progress is looked at again when its deadline passes.
    fn requeue_for_deadline(&self, d: &Deployment, s: &DeploymentStatus, now: Timestamp) -> Action {
        if complete(d, s) {
            return Action::Done;
        }
        match deadline(d, s) {
            Some(at) => {
                let left = at.duration_since(now).as_secs_f64().max(0.0);
                Action::RequeueAfter(Duration::from_secs_f64(left) + Duration::from_secs(1))
            }
            None => Action::Done,
        }
    }
}
