//! Which Services a pod belongs to, and which Services to resync when a pod changes
//! (upstream's `GetPodServiceMemberships` and `GetServicesToUpdateOnPodChange`). Both
//! controllers' pod handlers are built from this, so they enqueue the same Services.
//!
//! A Service selects pods by an equality map. A Service without a selector manages its
//! endpoints by hand and selects nothing; so does one with an *empty* selector: upstream
//! stores Services as protobuf, where an empty map reads back as no map at all, so an empty
//! selector never selects every pod of the namespace there either.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use controller_runtime::{Change, Key};
use k8s_openapi::api::core::v1::{Pod, Service};

use crate::pods::endpoints_change;

/// The Service's selector, if it has a non-empty one.
pub fn selector(svc: &Service) -> Option<&BTreeMap<String, String>> {
    svc.spec
        .as_ref()?
        .selector
        .as_ref()
        .filter(|s| !s.is_empty())
}

/// Whether `svc` selects pods with `labels`.
pub fn selects(svc: &Service, labels: Option<&BTreeMap<String, String>>) -> bool {
    selector(svc).is_some_and(|sel| {
        sel.iter()
            .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
    })
}

/// Whether `pod` is one of `svc`'s pods (same namespace, selected).
pub fn selects_pod(svc: &Service, pod: &Pod) -> bool {
    svc.metadata.namespace == pod.metadata.namespace && selects(svc, pod.metadata.labels.as_ref())
}

fn selecting(
    services: &[Arc<Service>],
    labels: Option<&BTreeMap<String, String>>,
) -> BTreeSet<Key> {
    services
        .iter()
        .filter(|s| selects(s, labels))
        .map(|s| Key::of(s.as_ref()))
        .collect()
}

/// The keys of the Services to resync after `change` to a pod, given the Services of the
/// pod's namespace. Added and deleted pods resync every Service selecting them. An update
/// resyncs nothing unless it can change endpoints: if only the pod's own endpoint changed,
/// the Services selecting it; if only its labels changed, the Services it joined or left;
/// if both, all of them.
pub fn services_to_sync(change: &Change<Pod>, services: &[Arc<Service>]) -> BTreeSet<Key> {
    match change {
        Change::Added(p) | Change::Deleted(p) => selecting(services, p.metadata.labels.as_ref()),
        Change::Updated { old, new } => {
            if old.metadata.resource_version == new.metadata.resource_version {
                return BTreeSet::new();
            }
            let c = endpoints_change(old, new);
            let now = selecting(services, new.metadata.labels.as_ref());
            if !c.membership {
                return if c.pod { now } else { BTreeSet::new() };
            }
            let before = selecting(services, old.metadata.labels.as_ref());
            if c.pod {
                now.union(&before).cloned().collect()
            } else {
                now.symmetric_difference(&before).cloned().collect()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pods::tests::pod;
    use k8s_openapi::api::core::v1::ServiceSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn svc(name: &str, selector: Option<&[(&str, &str)]>) -> Arc<Service> {
        Arc::new(Service {
            metadata: ObjectMeta {
                namespace: Some("ns".into()),
                name: Some(name.into()),
                ..Default::default()
            },
            spec: Some(ServiceSpec {
                selector: selector.map(|s| {
                    s.iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect()
                }),
                ..Default::default()
            }),
            status: None,
        })
    }

    fn names(keys: BTreeSet<Key>) -> Vec<String> {
        keys.into_iter().map(|k| k.name).collect()
    }

    #[test]
    fn selection_needs_a_non_empty_selector() {
        let services = vec![
            svc("web", Some(&[("app", "web")])),
            svc("web-canary", Some(&[("app", "web"), ("track", "canary")])),
            svc("db", Some(&[("app", "db")])),
            svc("manual", None),
            svc("empty", Some(&[])),
        ];
        let p = Arc::new(pod("a", "10.0.0.1", true));
        assert_eq!(
            names(services_to_sync(&Change::Added(p.clone()), &services)),
            ["web"]
        );
        assert_eq!(
            names(services_to_sync(&Change::Deleted(p), &services)),
            ["web"]
        );
    }

    #[test]
    fn updates_resync_only_what_they_can_change() {
        let services = vec![
            svc("web", Some(&[("app", "web")])),
            svc("db", Some(&[("app", "db")])),
        ];
        let old = pod("a", "10.0.0.1", false);
        let update = |new: Pod| {
            let mut new = new;
            new.metadata.resource_version = Some("2".into());
            names(services_to_sync(
                &Change::Updated {
                    old: Arc::new(old.clone()),
                    new: Arc::new(new),
                },
                &services,
            ))
        };
        // Nothing endpoints-relevant.
        let mut annotated = old.clone();
        annotated.metadata.annotations = Some([("k".to_string(), "v".to_string())].into());
        assert!(update(annotated).is_empty());
        // Readiness: the Services selecting it.
        assert_eq!(update(pod("a", "10.0.0.1", true)), ["web"]);
        // Labels only: the Services it left and joined.
        let mut moved = old.clone();
        moved.metadata.labels = Some([("app".to_string(), "db".to_string())].into());
        assert_eq!(update(moved.clone()), ["db", "web"]);
        // A resync (same resourceVersion) is nothing.
        let same = Change::Updated {
            old: Arc::new(old.clone()),
            new: Arc::new(old.clone()),
        };
        assert!(services_to_sync(&same, &services).is_empty());
    }
}
