//! A StatefulSet pod's stable identity and storage (upstream's `stateful_set_utils.go`):
//! ordinal names `<set>-<i>`, the `statefulset.kubernetes.io/pod-name` and
//! `apps.kubernetes.io/pod-index` labels, hostname and subdomain, and one claim per volume
//! claim template, `<template>-<set>-<i>`, mounted as the volume of the template's name.
//!
//! Also the claims' owner references under `persistentVolumeClaimRetentionPolicy`: a claim
//! references the set when it is to go with the set (`whenDeleted: Delete`) and its pod when it
//! is to go with a scale-down (`whenScaled: Delete`, once the pod's ordinal is out of range),
//! so the garbage collector deletes it at the right time, as upstream.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimVolumeSource, Pod, PodTemplateSpec, Volume,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::Resource;
use serde_json::{Value, json};

use crate::history::HASH_LABEL;
use crate::pods::from_template;

pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
pub const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";

/// The ordinal of the pod named `pod` if it is a member of set `set` (`<set>-<digits>`).
pub fn ordinal_of(set: &str, pod: &str) -> Option<i32> {
    let digits = pod.strip_prefix(set)?.strip_prefix('-')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

pub fn pod_name(set: &str, ordinal: i32) -> String {
    format!("{set}-{ordinal}")
}

pub fn claim_name(template: &str, set: &str, ordinal: i32) -> String {
    format!("{template}-{set}-{ordinal}")
}

fn set_name(set: &StatefulSet) -> &str {
    set.metadata.name.as_deref().unwrap_or_default()
}

fn claim_templates(set: &StatefulSet) -> &[PersistentVolumeClaim] {
    set.spec
        .as_ref()
        .and_then(|s| s.volume_claim_templates.as_deref())
        .unwrap_or_default()
}

/// The pod for `ordinal` from `template` (the template of the revision it is made from),
/// labelled with `revision` (the revision's name, as upstream's StatefulSet does).
pub fn new_pod(set: &StatefulSet, template: &PodTemplateSpec, ordinal: i32, revision: &str) -> Pod {
    let ns = set.metadata.namespace.as_deref().unwrap_or_default();
    let name = pod_name(set_name(set), ordinal);
    let mut pod = from_template(
        ns,
        template,
        controller_runtime::owners::controller_reference(set),
    );
    let labels = pod.metadata.labels.get_or_insert_with(BTreeMap::new);
    labels.insert(POD_NAME_LABEL.into(), name.clone());
    labels.insert(POD_INDEX_LABEL.into(), ordinal.to_string());
    labels.insert(HASH_LABEL.into(), revision.to_owned());
    pod.metadata.name = Some(name.clone());
    let spec = pod.spec.get_or_insert_with(Default::default);
    spec.hostname = Some(name);
    if let Some(svc) = set.spec.as_ref().and_then(|s| s.service_name.clone())
        && !svc.is_empty()
    {
        spec.subdomain = Some(svc);
    }
    // Each claim template replaces a template volume of its name (upstream's `updateStorage`).
    let volumes = spec.volumes.get_or_insert_with(Vec::new);
    for t in claim_templates(set) {
        let tname = t.metadata.name.clone().unwrap_or_default();
        volumes.retain(|v| v.name != tname);
        volumes.push(Volume {
            name: tname.clone(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: claim_name(&tname, set_name(set), ordinal),
                read_only: None,
            }),
            ..Default::default()
        });
    }
    if volumes.is_empty() {
        spec.volumes = None;
    }
    pod
}

/// Whether the pod carries its identity labels (the part of identity that can be repaired:
/// hostname and subdomain are immutable once a pod exists).
pub fn identity_matches(set: &StatefulSet, pod: &Pod, ordinal: i32) -> bool {
    let labels = pod.metadata.labels.as_ref();
    let get = |k: &str| labels.and_then(|l| l.get(k)).map(String::as_str);
    let name = pod_name(set_name(set), ordinal);
    get(POD_NAME_LABEL) == Some(name.as_str()) && get(POD_INDEX_LABEL) == Some(&ordinal.to_string())
}

/// A merge patch restoring the identity labels.
pub fn patch_for(set: &StatefulSet, ordinal: i32) -> Value {
    json!({"metadata": {"labels": {
        POD_NAME_LABEL: pod_name(set_name(set), ordinal),
        POD_INDEX_LABEL: ordinal.to_string(),
    }}})
}

/// The claims the pod of `ordinal` needs (upstream's `getPersistentVolumeClaims`): each
/// template's metadata and spec, the set's `matchLabels` added to its labels.
pub fn claims_for(set: &StatefulSet, ordinal: i32) -> Vec<PersistentVolumeClaim> {
    let ns = set.metadata.namespace.clone();
    let match_labels = set
        .spec
        .as_ref()
        .and_then(|s| s.selector.match_labels.clone())
        .unwrap_or_default();
    claim_templates(set)
        .iter()
        .map(|t| {
            let tname = t.metadata.name.clone().unwrap_or_default();
            let mut labels = t.metadata.labels.clone().unwrap_or_default();
            labels.extend(match_labels.clone());
            PersistentVolumeClaim {
                metadata: ObjectMeta {
                    name: Some(claim_name(&tname, set_name(set), ordinal)),
                    namespace: ns.clone(),
                    labels: Some(labels),
                    annotations: t.metadata.annotations.clone(),
                    ..Default::default()
                },
                spec: t.spec.clone(),
                status: None,
            }
        })
        .collect()
}

/// `persistentVolumeClaimRetentionPolicy`, defaulted (both `Retain`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    pub delete_when_deleted: bool,
    pub delete_when_scaled: bool,
}

impl Retention {
    pub fn of(set: &StatefulSet) -> Retention {
        let p = set
            .spec
            .as_ref()
            .and_then(|s| s.persistent_volume_claim_retention_policy.as_ref());
        let is_delete = |v: Option<&String>| v.map(String::as_str) == Some("Delete");
        Retention {
            delete_when_deleted: is_delete(p.and_then(|p| p.when_deleted.as_ref())),
            delete_when_scaled: is_delete(p.and_then(|p| p.when_scaled.as_ref())),
        }
    }
}

/// A plain (non-controller) reference to `owner`, as upstream's claim references are.
pub fn plain_reference<K: Resource<DynamicType = ()>>(owner: &K) -> OwnerReference {
    let m = owner.meta();
    OwnerReference {
        api_version: K::api_version(&()).to_string(),
        kind: K::kind(&()).to_string(),
        name: m.name.clone().unwrap_or_default(),
        uid: m.uid.clone().unwrap_or_default(),
        controller: None,
        block_owner_deletion: None,
    }
}

/// The owner references a claim should have under `policy` (upstream's
/// `updateClaimOwnerRefForSetAndPod`), or `None` if `existing` is already right.
/// `in_range`: whether the pod's ordinal is still wanted (not scaled down).
pub fn claim_refs(
    existing: &[OwnerReference],
    policy: Retention,
    set: &OwnerReference,
    pod: &OwnerReference,
    in_range: bool,
) -> Option<Vec<OwnerReference>> {
    // A scaled-down claim belongs to its pod instead when scale-downs delete claims.
    let scaled_away = policy.delete_when_scaled && !in_range;
    let want_set = policy.delete_when_deleted && !scaled_away;
    let want_pod = scaled_away;
    let mut refs: Vec<OwnerReference> = existing
        .iter()
        .filter(|r| (r.uid != set.uid || want_set) && (r.uid != pod.uid || want_pod))
        .cloned()
        .collect();
    for (want, r) in [(want_set, set), (want_pod, pod)] {
        if want && !refs.iter().any(|e| e.uid == r.uid) {
            refs.push(r.clone());
        }
    }
    (refs != existing).then_some(refs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::StatefulSetSpec;
    use k8s_openapi::api::core::v1::PodSpec;

    pub fn set_with_claims() -> StatefulSet {
        let claim = PersistentVolumeClaim {
            metadata: ObjectMeta {
                name: Some("data".into()),
                labels: Some([("tier".to_string(), "db".to_string())].into()),
                ..Default::default()
            },
            ..Default::default()
        };
        StatefulSet {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("ns".into()),
                uid: Some("set-uid".into()),
                ..Default::default()
            },
            spec: Some(StatefulSetSpec {
                service_name: Some("nginx".into()),
                selector: k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector {
                    match_labels: Some([("app".to_string(), "web".to_string())].into()),
                    ..Default::default()
                },
                volume_claim_templates: Some(vec![claim]),
                ..Default::default()
            }),
            status: None,
        }
    }

    #[test]
    fn ordinals_come_from_names() {
        assert_eq!(ordinal_of("web", "web-0"), Some(0));
        assert_eq!(ordinal_of("web", "web-12"), Some(12));
        assert_eq!(ordinal_of("web", "web-x"), None);
        assert_eq!(ordinal_of("web", "web-"), None);
        assert_eq!(ordinal_of("web", "webby-1"), None);
        assert_eq!(ordinal_of("web", "web-1-2"), None);
        assert_eq!(ordinal_of("web-1", "web-1-2"), Some(2));
        assert_eq!(ordinal_of("web", "web-99999999999"), None);
    }

    #[test]
    fn new_pods_get_identity_and_storage() {
        let set = set_with_claims();
        let template = PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some([("app".to_string(), "web".to_string())].into()),
                ..Default::default()
            }),
            spec: Some(PodSpec {
                volumes: Some(vec![Volume {
                    name: "data".into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
        };
        let pod = new_pod(&set, &template, 2, "web-abc");
        assert_eq!(pod.metadata.name.as_deref(), Some("web-2"));
        let labels = pod.metadata.labels.clone().unwrap_or_default();
        assert_eq!(
            labels.get(POD_NAME_LABEL).map(String::as_str),
            Some("web-2")
        );
        assert_eq!(labels.get(POD_INDEX_LABEL).map(String::as_str), Some("2"));
        assert_eq!(labels.get(HASH_LABEL).map(String::as_str), Some("web-abc"));
        assert_eq!(labels.get("app").map(String::as_str), Some("web"));
        let spec = pod.spec.clone().unwrap_or_default();
        assert_eq!(spec.hostname.as_deref(), Some("web-2"));
        assert_eq!(spec.subdomain.as_deref(), Some("nginx"));
        let vols = spec.volumes.unwrap_or_default();
        assert_eq!(vols.len(), 1, "the claim replaces the template volume");
        assert_eq!(
            vols[0]
                .persistent_volume_claim
                .as_ref()
                .map(|c| c.claim_name.as_str()),
            Some("data-web-2")
        );
        assert!(identity_matches(&set, &pod, 2));
        assert!(!identity_matches(&set, &pod, 3));

        let claims = claims_for(&set, 2);
        assert_eq!(claims.len(), 1);
        assert_eq!(claims[0].metadata.name.as_deref(), Some("data-web-2"));
        let cl = claims[0].metadata.labels.clone().unwrap_or_default();
        assert_eq!(cl.get("tier").map(String::as_str), Some("db"));
        assert_eq!(cl.get("app").map(String::as_str), Some("web"));
    }

    #[test]
    fn claim_references_follow_the_retention_policy() {
        let r = |uid: &str| OwnerReference {
            uid: uid.into(),
            name: uid.into(),
            ..Default::default()
        };
        let (set, pod, other) = (r("set"), r("pod"), r("other"));
        let p = |d, s| Retention {
            delete_when_deleted: d,
            delete_when_scaled: s,
        };
        type Case = (
            Retention,
            Vec<OwnerReference>,
            bool,
            Option<Vec<OwnerReference>>,
        );
        let cases: Vec<Case> = vec![
            (p(false, false), vec![], true, None),
            (
                p(false, false),
                vec![set.clone(), other.clone()],
                true,
                Some(vec![other.clone()]),
            ),
            (p(true, false), vec![], true, Some(vec![set.clone()])),
            (p(true, false), vec![set.clone()], false, None),
            (p(false, true), vec![], true, None),
            (p(false, true), vec![], false, Some(vec![pod.clone()])),
            (p(false, true), vec![pod.clone()], true, Some(vec![])),
            (p(true, true), vec![], true, Some(vec![set.clone()])),
            (
                p(true, true),
                vec![set.clone()],
                false,
                Some(vec![pod.clone()]),
            ),
        ];
        for (i, (policy, existing, in_range, want)) in cases.into_iter().enumerate() {
            assert_eq!(
                claim_refs(&existing, policy, &set, &pod, in_range),
                want,
                "case {i}"
            );
        }
    }
}
