//! The shape the replica logic works on: [`ReplicaOwner`], implemented by `ReplicaSet` and
//! `ReplicationController` so that one reconciler serves both (upstream shares one
//! controller the same way, converting RCs into ReplicaSets).
//!
//! The differences between the two kinds end here: how the selector is spelled (a structured
//! selector, or a map that defaults to the template's labels), their API group, their
//! controller and Event component names, and their status types (both read into one
//! [`ReplicaStatus`]).

use std::collections::BTreeMap;

use api::selector::{LabelSelector, SelectorError};
use controller_runtime::Watched;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{PodTemplateSpec, ReplicationController};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde::Serialize;

/// What the reconciler needs from the spec of a replica owner.
#[derive(Debug)]
pub struct OwnerSpec<'a> {
    /// The pods this owner manages; an error means nothing can be managed.
    pub selector: Result<LabelSelector, SelectorError>,
    /// Desired pods (the API defaults a missing value to 1, as do we).
    pub replicas: i32,
    /// How long a pod must have been ready to count as available.
    pub min_ready_seconds: i32,
    pub template: Option<&'a PodTemplateSpec>,
}

/// One status condition, in the shape shared by `ReplicaSetCondition` and
/// `ReplicationControllerCondition`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub type_: String,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<Time>,
}

/// The status fields this controller owns, as one type for both kinds. Missing integers
/// read as 0, as the API's zero values.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplicaStatus {
    pub replicas: i32,
    pub fully_labeled_replicas: i32,
    pub ready_replicas: i32,
    pub available_replicas: i32,
    pub observed_generation: i64,
    pub conditions: Vec<Condition>,
}

/// A kind whose objects keep a number of pods from a template running.
pub trait ReplicaOwner:
    Watched + Serialize + kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
{
    /// The controller's name (`--controllers`, logs).
    const CONTROLLER: &'static str;
    /// The Event source component.
    const COMPONENT: &'static str;

    fn owner_spec(&self) -> OwnerSpec<'_>;
    fn replica_status(&self) -> ReplicaStatus;
}

impl ReplicaOwner for ReplicaSet {
    const CONTROLLER: &'static str = "replicaset";
    const COMPONENT: &'static str = "replicaset-controller";

    fn owner_spec(&self) -> OwnerSpec<'_> {
        match &self.spec {
            Some(s) => OwnerSpec {
                selector: LabelSelector::from_k8s(&s.selector),
                replicas: s.replicas.unwrap_or(1),
                min_ready_seconds: s.min_ready_seconds.unwrap_or(0),
                template: s.template.as_ref(),
            },
            None => OwnerSpec {
                selector: Ok(LabelSelector::nothing()),
                replicas: 1,
                min_ready_seconds: 0,
                template: None,
            },
        }
    }

    fn replica_status(&self) -> ReplicaStatus {
        let Some(s) = &self.status else {
            return ReplicaStatus::default();
        };
        ReplicaStatus {
            replicas: s.replicas,
            fully_labeled_replicas: s.fully_labeled_replicas.unwrap_or(0),
            ready_replicas: s.ready_replicas.unwrap_or(0),
            available_replicas: s.available_replicas.unwrap_or(0),
            observed_generation: s.observed_generation.unwrap_or(0),
            conditions: s
                .conditions
                .iter()
                .flatten()
                .map(|c| Condition {
                    type_: c.type_.clone(),
                    status: c.status.clone(),
                    reason: c.reason.clone(),
                    message: c.message.clone(),
                    last_transition_time: c.last_transition_time.clone(),
                })
                .collect(),
        }
    }
}

/// An RC's selector: `spec.selector`, or the template's labels when that is empty (the
/// API's defaulting does the same; this covers objects written before it). An empty result
/// selects nothing — never everything, which would claim every pod in the namespace.
pub fn rc_selector(spec: &k8s_openapi::api::core::v1::ReplicationControllerSpec) -> LabelSelector {
    let empty = BTreeMap::new();
    let set = match spec.selector.as_ref() {
        Some(s) if !s.is_empty() => s,
        _ => spec
            .template
            .as_ref()
            .and_then(|t| t.metadata.as_ref())
            .and_then(|m| m.labels.as_ref())
            .unwrap_or(&empty),
    };
    if set.is_empty() {
        LabelSelector::nothing()
    } else {
        LabelSelector::from_set(set)
    }
}

impl ReplicaOwner for ReplicationController {
    const CONTROLLER: &'static str = "replicationcontroller";
    const COMPONENT: &'static str = "replication-controller";

    fn owner_spec(&self) -> OwnerSpec<'_> {
        match &self.spec {
            Some(s) => OwnerSpec {
                selector: Ok(rc_selector(s)),
                replicas: s.replicas.unwrap_or(1),
                min_ready_seconds: s.min_ready_seconds.unwrap_or(0),
                template: s.template.as_ref(),
            },
            None => OwnerSpec {
                selector: Ok(LabelSelector::nothing()),
                replicas: 1,
                min_ready_seconds: 0,
                template: None,
            },
        }
    }

    fn replica_status(&self) -> ReplicaStatus {
        let Some(s) = &self.status else {
            return ReplicaStatus::default();
        };
        ReplicaStatus {
            replicas: s.replicas,
            fully_labeled_replicas: s.fully_labeled_replicas.unwrap_or(0),
            ready_replicas: s.ready_replicas.unwrap_or(0),
            available_replicas: s.available_replicas.unwrap_or(0),
            observed_generation: s.observed_generation.unwrap_or(0),
            conditions: s
                .conditions
                .iter()
                .flatten()
                .map(|c| Condition {
                    type_: c.type_.clone(),
                    status: c.status.clone(),
                    reason: c.reason.clone(),
                    message: c.message.clone(),
                    last_transition_time: c.last_transition_time.clone(),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ReplicationControllerSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn rc_spec(
        selector: Option<&[(&str, &str)]>,
        template: &[(&str, &str)],
    ) -> ReplicationControllerSpec {
        ReplicationControllerSpec {
            selector: selector.map(labels),
            template: Some(PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels(template)),
                    ..Default::default()
                }),
                spec: None,
            }),
            ..Default::default()
        }
    }

    #[test]
    fn rc_selectors_default_to_template_labels_and_never_select_everything() {
        let web = labels(&[("app", "web"), ("tier", "fe")]);
        let cases = [
            (
                rc_spec(Some(&[("app", "web")]), &[("app", "db")]),
                "app=web",
                true,
            ),
            (rc_spec(None, &[("app", "web")]), "app=web", true),
            (rc_spec(Some(&[]), &[("tier", "fe")]), "tier=fe", true),
            (rc_spec(Some(&[("app", "db")]), &[]), "app=db", false),
        ];
        for (i, (spec, want, matches_web)) in cases.iter().enumerate() {
            let sel = rc_selector(spec);
            assert_eq!(sel.to_string(), *want, "case {i}");
            assert_eq!(sel.matches(&web), *matches_web, "case {i}");
        }
        let nothing = rc_selector(&rc_spec(None, &[]));
        assert!(nothing.is_nothing());
        assert!(!nothing.matches(&web));
    }

    #[test]
    fn missing_fields_read_as_upstream_defaults() {
        let rs = ReplicaSet::default();
        let spec = rs.owner_spec();
        assert_eq!((spec.replicas, spec.min_ready_seconds), (1, 0));
        assert!(spec.selector.unwrap().is_nothing());
        assert_eq!(rs.replica_status(), ReplicaStatus::default());
        let rc = ReplicationController {
            spec: Some(ReplicationControllerSpec {
                replicas: Some(0),
                ..rc_spec(None, &[("a", "b")])
            }),
            ..Default::default()
        };
        assert_eq!(rc.owner_spec().replicas, 0);
    }
}
