//! ControllerRevisions: the template history of StatefulSets and DaemonSets (upstream's
//! `pkg/controller/history` plus the revision handling of both controllers).
//!
//! A revision stores its owner's pod template as a patch, `{"spec":{"template":{...,
//! "$patch":"replace"}}}`, which is what `kubectl rollout history|undo` read and apply back.
//! It is named `<owner>-<hash>`, the hash being taken over that patch and the owner's
//! `collisionCount`.
//!
//! Guarantees:
//! * One revision per distinct template: a template equal to an older revision's reuses that
//!   revision (renumbered to be the newest), so a rollback does not grow the history.
//! * A name collision with a revision holding other data bumps `collisionCount` and hashes
//!   again (bounded, so a pathological collision is an error, not a loop).
//! * Pruning never deletes a live revision (the current or update revision, or one a pod
//!   still carries) and keeps `revisionHistoryLimit` others, newest first.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use api::selector::LabelSelector;
use controller_runtime::Informer;
use controller_runtime::owners::{self, Claim};
use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, Resource};
use serde_json::{Value, json};

/// The label carrying a revision's hash, on revisions and on the pods made from them.
pub const HASH_LABEL: &str = "controller-revision-hash";

/// How many collisions one sync resolves before giving up (upstream loops without bound).
const MAX_COLLISIONS: i32 = 16;

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("encoding the pod template of {owner}")]
    Encode {
        owner: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("revision {name} holds no pod template patch")]
    NoTemplate { name: String },
    #[error("revision {name} holds an undecodable pod template")]
    Decode {
        name: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("creating revision {name}")]
    Create {
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("reading revision {name} after a name collision")]
    ReadCollided {
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("{owner}: {MAX_COLLISIONS} revision name collisions in a row")]
    TooManyCollisions { owner: String },
    #[error("renumbering revision {name}")]
    Renumber {
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("adopting revision {name}")]
    Adopt {
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("deleting revision {name}")]
    Delete {
        name: String,
        #[source]
        source: kube::Error,
    },
}

/// The patch a revision stores for `template`.
pub fn template_data(owner: &str, template: &PodTemplateSpec) -> Result<Value, HistoryError> {
    let mut t = serde_json::to_value(template).map_err(|source| HistoryError::Encode {
        owner: owner.to_owned(),
        source,
    })?;
    if let Value::Object(m) = &mut t {
        m.insert("$patch".into(), json!("replace"));
    }
    Ok(json!({"spec": {"template": t}}))
}

/// The pod template a revision stores.
pub fn template_of(rev: &ControllerRevision) -> Result<PodTemplateSpec, HistoryError> {
    let name = rev.metadata.name.clone().unwrap_or_default();
    let mut t = rev
        .data
        .as_ref()
        .and_then(|d| d.0.get("spec"))
        .and_then(|s| s.get("template"))
        .cloned()
        .ok_or_else(|| HistoryError::NoTemplate { name: name.clone() })?;
    if let Value::Object(m) = &mut t {
        m.remove("$patch");
    }
    serde_json::from_value(t).map_err(|source| HistoryError::Decode { name, source })
}

/// The hash of `data` with the owner's `collision_count`, as the label and name suffix use it
/// (the same hash as Deployments' `pod-template-hash`).
pub fn hash(data: &Value, collision_count: i32) -> String {
    controller_runtime::hash::template_hash(data, collision_count)
}

/// `<owner>-<hash>`, the owner's name cut so the whole stays a valid name (upstream's
/// `ControllerRevisionName`).
pub fn revision_name(owner: &str, hash: &str) -> String {
    let mut prefix = owner;
    if prefix.len() > 223 {
        let mut end = 223;
        while !prefix.is_char_boundary(end) {
            end -= 1;
        }
        prefix = &prefix[..end];
    }
    format!("{prefix}-{hash}")
}

/// Whether `rev` stores `data` (compared as JSON values, so key order does not matter).
pub fn stores(rev: &ControllerRevision, data: &Value) -> bool {
    rev.data.as_ref().is_some_and(|d| &d.0 == data)
}

/// Oldest first: by revision number, then creation, then name (upstream's `SortControllerRevisions`).
pub fn sort(revs: &mut [Arc<ControllerRevision>]) {
    revs.sort_by(|a, b| {
        a.revision
            .cmp(&b.revision)
            .then_with(|| {
                let t =
                    |r: &ControllerRevision| r.metadata.creation_timestamp.as_ref().map(|t| t.0);
                t(a).cmp(&t(b))
            })
            .then_with(|| a.metadata.name.cmp(&b.metadata.name))
    });
}

/// The number the next revision gets.
pub fn next_number(revs: &[Arc<ControllerRevision>]) -> i64 {
    revs.iter().map(|r| r.revision).max().unwrap_or(0) + 1
}

/// What to do to have a revision for the desired template.
#[derive(Debug, PartialEq)]
pub enum Decision {
    /// The newest revision already stores it.
    Reuse(Arc<ControllerRevision>),
    /// An older revision stores it: make it the newest (a rollback).
    Renumber(Arc<ControllerRevision>, i64),
    /// No revision stores it.
    Create(i64),
}

/// Decides how to get a revision storing `data` among `revs` (sorted oldest first).
pub fn decide(revs: &[Arc<ControllerRevision>], data: &Value) -> Decision {
    let next = next_number(revs);
    // The newest equal one wins if there are several (there should not be).
    match revs.iter().rposition(|r| stores(r, data)) {
        Some(i) if i + 1 == revs.len() => Decision::Reuse(revs[i].clone()),
        Some(i) => Decision::Renumber(revs[i].clone(), next),
        None => Decision::Create(next),
    }
}

/// The revisions to delete to honour `limit`: the oldest non-live ones beyond it.
pub fn to_prune(
    revs: &[Arc<ControllerRevision>],
    live: &HashSet<String>,
    limit: i32,
) -> Vec<String> {
    let dead: Vec<String> = revs
        .iter()
        .filter_map(|r| r.metadata.name.clone())
        .filter(|n| !live.contains(n))
        .collect();
    let keep = usize::try_from(limit.max(0)).unwrap_or(0);
    let excess = dead.len().saturating_sub(keep);
    dead.into_iter().take(excess).collect()
}

/// Revisions of one kind of owner, read from the shared cache and written through the API.
#[derive(Clone)]
pub struct History {
    pub revisions: Informer<ControllerRevision>,
    pub client: kube::Client,
}

impl History {
    fn api(&self, ns: &str) -> Api<ControllerRevision> {
        Api::namespaced(self.client.clone(), ns)
    }

    /// The revisions `owner` controls, sorted oldest first, after adopting orphans its
    /// selector matches (as upstream's `ClaimControllerRevisions`; releasing is left out:
    /// a revision's labels are its template's, which never change).
    pub async fn claim<K: Resource<DynamicType = ()>>(
        &self,
        owner: &K,
        selector: &LabelSelector,
    ) -> Result<Vec<Arc<ControllerRevision>>, HistoryError> {
        let meta = owner.meta();
        let ns = meta.namespace.as_deref().unwrap_or_default();
        let mut out = Vec::new();
        for rev in self.revisions.list_in(ns) {
            match owners::claim(meta, selector, &rev.metadata) {
                Claim::Owned => out.push(rev),
                Claim::Adopt => {
                    let name = rev.metadata.name.clone().unwrap_or_default();
                    let uid = rev.metadata.uid.clone().unwrap_or_default();
                    let r = owners::controller_reference(owner);
                    match owners::adopt(&self.api(ns), &name, &uid, &r).await {
                        Ok(adopted) => out.push(Arc::new(adopted)),
                        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 422 => {}
                        Err(source) => return Err(HistoryError::Adopt { name, source }),
                    }
                }
                Claim::Release | Claim::Ignore => {}
            }
        }
        sort(&mut out);
        Ok(out)
    }

    /// The revision storing `data` for `owner`, created or renumbered as [`decide`] says.
    /// `collision_count` is the owner's, bumped on collisions (the caller writes it to status).
    pub async fn ensure<K: Resource<DynamicType = ()>>(
        &self,
        owner: &K,
        template_labels: Option<&BTreeMap<String, String>>,
        data: &Value,
        revs: &[Arc<ControllerRevision>],
        collision_count: &mut i32,
    ) -> Result<Arc<ControllerRevision>, HistoryError> {
        let meta = owner.meta();
        let ns = meta.namespace.as_deref().unwrap_or_default();
        let owner_name = meta.name.as_deref().unwrap_or_default();
        let owner_uid = meta.uid.as_deref().unwrap_or_default();
        match decide(revs, data) {
            Decision::Reuse(r) => Ok(r),
            Decision::Renumber(r, n) => {
                let name = r.metadata.name.clone().unwrap_or_default();
                let patch = json!({"revision": n});
                let updated = self
                    .api(ns)
                    .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .map_err(|source| HistoryError::Renumber { name, source })?;
                Ok(Arc::new(updated))
            }
            Decision::Create(number) => {
                for _ in 0..MAX_COLLISIONS {
                    let h = hash(data, *collision_count);
                    let name = revision_name(owner_name, &h);
                    let mut labels = template_labels.cloned().unwrap_or_default();
                    labels.insert(HASH_LABEL.to_owned(), h);
                    let rev = ControllerRevision {
                        metadata: ObjectMeta {
                            name: Some(name.clone()),
                            namespace: Some(ns.to_owned()),
                            labels: Some(labels),
                            owner_references: Some(vec![owners::controller_reference(owner)]),
                            ..Default::default()
                        },
                        data: Some(RawExtension(data.clone())),
                        revision: number,
                    };
                    match self.api(ns).create(&PostParams::default(), &rev).await {
                        Ok(created) => return Ok(Arc::new(created)),
                        Err(kube::Error::Api(s)) if s.code == 409 => {
                            let existing = self.api(ns).get(&name).await.map_err(|source| {
                                HistoryError::ReadCollided {
                                    name: name.clone(),
                                    source,
                                }
                            })?;
                            if owners::is_controlled_by(&existing.metadata, owner_uid)
                                && stores(&existing, data)
                            {
                                // Ours, made by an earlier sync the cache has not shown yet.
                                return Ok(Arc::new(existing));
                            }
                            *collision_count = collision_count.saturating_add(1);
                        }
                        Err(source) => return Err(HistoryError::Create { name, source }),
                    }
                }
                Err(HistoryError::TooManyCollisions {
                    owner: owner_name.to_owned(),
                })
            }
        }
    }

    /// Deletes the named revisions of namespace `ns` (already gone is fine).
    pub async fn prune(&self, ns: &str, names: &[String]) -> Result<(), HistoryError> {
        for name in names {
            match self.api(ns).delete(name, &DeleteParams::default()).await {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(source) => {
                    return Err(HistoryError::Delete {
                        name: name.clone(),
                        source,
                    });
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, PodSpec};

    fn template(image: &str) -> PodTemplateSpec {
        PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some([("app".to_string(), "web".to_string())].into()),
                ..Default::default()
            }),
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "c".into(),
                    image: Some(image.into()),
                    ..Default::default()
                }],
                ..Default::default()
            }),
        }
    }

    fn rev(name: &str, number: i64, image: &str) -> Arc<ControllerRevision> {
        Arc::new(ControllerRevision {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            data: Some(RawExtension(
                template_data("web", &template(image)).unwrap_or_default(),
            )),
            revision: number,
        })
    }

    #[test]
    fn templates_round_trip_through_the_replace_patch() {
        let t = template("nginx:1");
        let data = template_data("web", &t).unwrap_or_default();
        assert_eq!(data["spec"]["template"]["$patch"], "replace");
        assert_eq!(
            data["spec"]["template"]["spec"]["containers"][0]["image"],
            "nginx:1"
        );
        let r = rev("web-x", 1, "nginx:1");
        assert_eq!(template_of(&r).ok(), Some(t));
        let empty = ControllerRevision::default();
        assert!(matches!(
            template_of(&empty),
            Err(HistoryError::NoTemplate { .. })
        ));
    }

    #[test]
    fn hashes_are_stable_safe_and_change_with_collisions() {
        let data = template_data("web", &template("nginx:1")).unwrap_or_default();
        let h0 = hash(&data, 0);
        assert_eq!(h0, hash(&data.clone(), 0));
        assert!(
            h0.bytes()
                .all(|b| b"bcdfghjklmnpqrstvwxz2456789".contains(&b)),
            "{h0}"
        );
        assert_ne!(h0, hash(&data, 1));
        let other = template_data("web", &template("nginx:2")).unwrap_or_default();
        assert_ne!(h0, hash(&other, 0));
        assert_eq!(revision_name("web", "abc"), "web-abc");
        assert_eq!(revision_name(&"x".repeat(300), "h").len(), 225);
    }

    #[test]
    fn decisions_reuse_renumber_or_create() {
        let d1 = template_data("web", &template("v1")).unwrap_or_default();
        let d2 = template_data("web", &template("v2")).unwrap_or_default();
        let d3 = template_data("web", &template("v3")).unwrap_or_default();
        let revs = vec![rev("a", 1, "v1"), rev("b", 2, "v2")];
        assert_eq!(decide(&revs, &d2), Decision::Reuse(revs[1].clone()));
        assert_eq!(decide(&revs, &d1), Decision::Renumber(revs[0].clone(), 3));
        assert_eq!(decide(&revs, &d3), Decision::Create(3));
        assert_eq!(decide(&[], &d3), Decision::Create(1));
    }

    #[test]
    fn sorting_and_pruning_keep_live_and_newest() {
        let mut revs = vec![
            rev("c", 3, "v3"),
            rev("a", 1, "v1"),
            rev("d", 4, "v4"),
            rev("b", 2, "v2"),
        ];
        sort(&mut revs);
        let names: Vec<_> = revs
            .iter()
            .map(|r| r.metadata.name.clone().unwrap_or_default())
            .collect();
        assert_eq!(names, ["a", "b", "c", "d"]);
        let live: HashSet<String> = ["d".to_string(), "a".to_string()].into();
        assert_eq!(to_prune(&revs, &live, 1), ["b"]);
        assert_eq!(to_prune(&revs, &live, 0), ["b", "c"]);
        assert_eq!(to_prune(&revs, &live, 10), Vec::<String>::new());
        assert_eq!(next_number(&revs), 5);
    }
}
