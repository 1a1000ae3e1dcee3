//! Controller references: which controller owns an object, and the adopt/release rules every
//! workload controller follows (upstream's `ControllerRefManager`).
//!
//! An object has at most one owner reference with `controller: true`. A controller *owns* the
//! objects whose controller reference carries its UID; it *adopts* orphans (no controller
//! reference) in its namespace that its selector matches, and *releases* owned objects its
//! selector no longer matches. Deleting controllers neither adopt nor release: an object
//! being deleted is left to the garbage collector. Adoption and release are strategic merge
//! patches with a UID precondition, so they never touch a recreated object of the same name.

use api::selector::LabelSelector;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Patch, PatchParams};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;
use serde_json::json;

/// The controller reference of an object, if any.
pub fn controller_of(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references
        .as_deref()
        .unwrap_or_default()
        .iter()
        .find(|r| r.controller == Some(true))
}

/// Whether `meta` is controlled by the object with `uid`.
pub fn is_controlled_by(meta: &ObjectMeta, uid: &str) -> bool {
    controller_of(meta).is_some_and(|r| r.uid == uid)
}

/// A controller reference to `owner` (`controller` and `blockOwnerDeletion` set, as upstream's
/// `NewControllerRef`).
pub fn controller_reference<K: Resource<DynamicType = ()>>(owner: &K) -> OwnerReference {
    let m = owner.meta();
    OwnerReference {
        api_version: K::api_version(&()).to_string(),
        kind: K::kind(&()).to_string(),
        name: m.name.clone().unwrap_or_default(),
        uid: m.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// What a controller should do about one candidate object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claim {
    /// Already ours and still selected: manage it.
    Owned,
    /// An orphan we select: adopt it (then manage it).
    Adopt,
    /// Ours but no longer selected: release it (then leave it alone).
    Release,
    /// Not ours to manage.
    Ignore,
}

/// Decides what the controller `owner` (with `selector`) does about `child`.
pub fn claim(owner: &ObjectMeta, selector: &LabelSelector, child: &ObjectMeta) -> Claim {
    let owner_uid = owner.uid.as_deref().unwrap_or_default();
    let owner_deleting = owner.deletion_timestamp.is_some();
    let matches = selector.matches(&child.labels);
    match controller_of(child) {
        Some(r) if r.uid != owner_uid => Claim::Ignore,
        Some(_) if matches => Claim::Owned,
        // Ours but unselected. A deleting owner keeps what it has (the garbage collector
        // handles it); a deleting child is not worth a write.
        Some(_) if owner_deleting || child.deletion_timestamp.is_some() => Claim::Ignore,
        Some(_) => Claim::Release,
        None if !matches
            || owner_deleting
            || child.deletion_timestamp.is_some()
            || child.namespace != owner.namespace =>
        {
            Claim::Ignore
        }
        None => Claim::Adopt,
    }
}

/// Adds `owner` as the controller of the object `name` (only if its UID is still `uid`).
pub async fn adopt<K>(
    api: &Api<K>,
    name: &str,
    uid: &str,
    owner: &OwnerReference,
) -> Result<K, kube::Error>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    let patch = json!({"metadata": {"ownerReferences": [owner], "uid": uid}});
    api.patch(name, &PatchParams::default(), &Patch::Strategic(&patch))
        .await
}

/// Removes the owner reference with `owner_uid` from the object `name` (only if its UID is
/// still `uid`). A 404 or 422 (the object is gone or was replaced) is success: there is
/// nothing left to release.
pub async fn release<K>(
    api: &Api<K>,
    name: &str,
    uid: &str,
    owner_uid: &str,
) -> Result<(), kube::Error>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    let patch = json!({"metadata": {
        "ownerReferences": [{"$patch": "delete", "uid": owner_uid}],
        "uid": uid,
    }});
    match api
        .patch(name, &PatchParams::default(), &Patch::Strategic(&patch))
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 422 => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn meta(ns: &str, labels: &[(&str, &str)], owner: Option<&str>, deleting: bool) -> ObjectMeta {
        ObjectMeta {
            namespace: Some(ns.into()),
            name: Some("x".into()),
            uid: Some("child".into()),
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            owner_references: owner.map(|uid| {
                vec![OwnerReference {
                    api_version: "apps/v1".into(),
                    kind: "ReplicaSet".into(),
                    name: "o".into(),
                    uid: uid.into(),
                    controller: Some(true),
                    block_owner_deletion: Some(true),
                }]
            }),
            deletion_timestamp: deleting.then_some(Time(jiff::Timestamp::UNIX_EPOCH)),
            ..Default::default()
        }
    }

    #[test]
    fn claims_follow_the_controller_ref_manager_rules() {
        let sel = LabelSelector::parse("app=web").unwrap();
        let owner = ObjectMeta {
            namespace: Some("ns".into()),
            uid: Some("me".into()),
            ..Default::default()
        };
        let mut deleting_owner = owner.clone();
        deleting_owner.deletion_timestamp = Some(Time(jiff::Timestamp::UNIX_EPOCH));
        let web = &[("app", "web")][..];
        let db = &[("app", "db")][..];
        let cases = [
            (&owner, meta("ns", web, Some("me"), false), Claim::Owned),
            (&owner, meta("ns", web, Some("other"), false), Claim::Ignore),
            (&owner, meta("ns", db, Some("me"), false), Claim::Release),
            (&owner, meta("ns", db, Some("me"), true), Claim::Ignore),
            (
                &deleting_owner,
                meta("ns", db, Some("me"), false),
                Claim::Ignore,
            ),
            (
                &deleting_owner,
                meta("ns", web, Some("me"), false),
                Claim::Owned,
            ),
            (&owner, meta("ns", web, None, false), Claim::Adopt),
            (&owner, meta("ns", db, None, false), Claim::Ignore),
            (&owner, meta("ns", web, None, true), Claim::Ignore),
            (&owner, meta("other", web, None, false), Claim::Ignore),
            (&deleting_owner, meta("ns", web, None, false), Claim::Ignore),
        ];
        for (i, (o, child, want)) in cases.iter().enumerate() {
            assert_eq!(claim(o, &sel, child), *want, "case {i}");
        }
    }

    #[test]
    fn controller_references_point_at_the_owner() {
        let rs = k8s_openapi::api::apps::v1::ReplicaSet {
            metadata: ObjectMeta {
                name: Some("web-1".into()),
                uid: Some("u1".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let r = controller_reference(&rs);
        assert_eq!(
            (
                r.api_version.as_str(),
                r.kind.as_str(),
                r.name.as_str(),
                r.uid.as_str()
            ),
            ("apps/v1", "ReplicaSet", "web-1", "u1")
        );
        let child = meta("ns", &[], Some("u1"), false);
        assert!(is_controlled_by(&child, "u1"));
        assert!(!is_controlled_by(&child, "u2"));
    }
}
