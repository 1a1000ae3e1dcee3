//! Facts about pods the replica logic relies on (upstream's `podutil` helpers and
//! `controller.IsPodActive`), and the pod a template makes.

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{ContainerStatus, Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

/// Why a pod could not be made from a template.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("the pod template has no spec")]
    NoSpec,
    /// Upstream refuses too: a pod without labels could never be selected, so the owner
    /// would create pods forever.
    #[error("unable to create pods, no labels")]
    NoLabels,
}

/// Not finished and not being deleted: the pods that count toward `replicas`.
pub fn is_active(pod: &Pod) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    !matches!(phase, Some("Succeeded" | "Failed")) && pod.metadata.deletion_timestamp.is_none()
}

/// When the pod's `Ready` condition became `True`, if it is ready; `Some(None)` for a ready
/// pod whose condition carries no time.
fn ready_condition(pod: &Pod) -> Option<Option<Timestamp>> {
    pod.status
        .as_ref()?
        .conditions
        .as_deref()?
        .iter()
        .find(|c| c.type_ == "Ready")
        .filter(|c| c.status == "True")
        .map(|c| c.last_transition_time.as_ref().map(|t| t.0))
}

pub fn is_ready(pod: &Pod) -> bool {
    ready_condition(pod).is_some()
}

/// When a ready pod became ready (`None` if it is not ready or the time is unknown).
pub fn ready_since(pod: &Pod) -> Option<Timestamp> {
    ready_condition(pod).flatten()
}

/// Ready for at least `min_ready_seconds` (upstream's `IsPodAvailable`: strictly longer, and
/// a ready pod with an unknown ready time is available only when no minimum applies).
pub fn is_available(pod: &Pod, min_ready_seconds: i32, now: Timestamp) -> bool {
    match ready_condition(pod) {
        None => false,
        Some(_) if min_ready_seconds <= 0 => true,
        Some(None) => false,
        // An overflowing sum (a ready time at the end of time) is never reached.
        Some(Some(since)) => since
            .checked_add(jiff::SignedDuration::from_secs(i64::from(
                min_ready_seconds,
            )))
            .is_ok_and(|t| t < now),
    }
}

/// The highest restart counts of the pod's regular containers and of its sidecars (init
/// containers with `restartPolicy: Always`), as upstream's `maxContainerRestarts`.
pub fn max_restarts(pod: &Pod) -> (i32, i32) {
    let status = pod.status.as_ref();
    let highest = |statuses: Option<&Vec<ContainerStatus>>, only: &dyn Fn(&str) -> bool| {
        statuses
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter(|c| only(&c.name))
            .map(|c| c.restart_count)
            .max()
            .unwrap_or(0)
    };
    let sidecars: Vec<&str> = pod
        .spec
        .as_ref()
        .and_then(|s| s.init_containers.as_deref())
        .unwrap_or_default()
        .iter()
        .filter(|c| c.restart_policy.as_deref() == Some("Always"))
        .map(|c| c.name.as_str())
        .collect();
    (
        highest(status.and_then(|s| s.container_statuses.as_ref()), &|_| {
            true
        }),
        highest(
            status.and_then(|s| s.init_container_statuses.as_ref()),
            &|name| sidecars.contains(&name),
        ),
    )
}

/// The pod an owner named `owner_name` creates from `template`: `generateName` is the
/// owner's name and a dash; labels, annotations and finalizers come from the template; the
/// owner is its controller.
pub fn from_template(
    owner_name: &str,
    namespace: &str,
    template: &PodTemplateSpec,
    controller: OwnerReference,
) -> Result<Pod, TemplateError> {
    let meta = template.metadata.clone().unwrap_or_default();
    if meta.labels.as_ref().is_none_or(|l| l.is_empty()) {
        return Err(TemplateError::NoLabels);
    }
    let spec = template.spec.clone().ok_or(TemplateError::NoSpec)?;
    Ok(Pod {
        metadata: ObjectMeta {
            generate_name: Some(format!("{owner_name}-")),
            namespace: Some(namespace.to_owned()),
            labels: meta.labels,
            annotations: meta.annotations,
            finalizers: meta.finalizers,
            owner_references: Some(vec![controller]),
            ..Default::default()
        },
        spec: Some(spec),
        status: None,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, PodCondition, PodSpec, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    pub(crate) fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    /// A pod in `phase`, ready since `ready` (if given).
    pub(crate) fn pod(name: &str, phase: &str, ready: Option<&str>) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("ns".into()),
                uid: Some(format!("uid-{name}")),
                ..Default::default()
            },
            spec: Some(PodSpec::default()),
            status: Some(PodStatus {
                phase: Some(phase.into()),
                conditions: ready.map(|t| {
                    vec![PodCondition {
                        type_: "Ready".into(),
                        status: "True".into(),
                        last_transition_time: Some(Time(at(t))),
                        ..Default::default()
                    }]
                }),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn activity_follows_phase_and_deletion() {
        assert!(is_active(&pod("a", "Running", None)));
        assert!(is_active(&pod("a", "Pending", None)));
        assert!(is_active(&pod("a", "Unknown", None)));
        assert!(!is_active(&pod("a", "Succeeded", None)));
        assert!(!is_active(&pod("a", "Failed", None)));
        let mut deleting = pod("a", "Running", None);
        deleting.metadata.deletion_timestamp = Some(Time(at("2025-01-01T00:00:00Z")));
        assert!(!is_active(&deleting));
    }

    #[test]
    fn availability_needs_min_ready_seconds_strictly_passed() {
        let now = at("2025-01-01T00:01:00Z");
        let p = pod("a", "Running", Some("2025-01-01T00:00:00Z"));
        assert!(is_available(&p, 0, now));
        assert!(is_available(&p, 59, now));
        assert!(
            !is_available(&p, 60, now),
            "exactly min ready is not yet available"
        );
        assert!(!is_available(&pod("b", "Running", None), 0, now));
        let mut no_time = p.clone();
        if let Some(c) = no_time
            .status
            .as_mut()
            .and_then(|s| s.conditions.as_mut())
            .and_then(|c| c.first_mut())
        {
            c.last_transition_time = None;
        }
        assert!(is_available(&no_time, 0, now));
        assert!(!is_available(&no_time, 1, now));
        assert_eq!(ready_since(&p), Some(at("2025-01-01T00:00:00Z")));
    }

    #[test]
    fn restarts_are_the_highest_of_any_container() {
        let mut p = pod("a", "Running", None);
        if let Some(s) = p.status.as_mut() {
            s.container_statuses = Some(
                [2, 7, 0]
                    .into_iter()
                    .map(|n| ContainerStatus {
                        restart_count: n,
                        ..Default::default()
                    })
                    .collect(),
            );
        }
        assert_eq!(max_restarts(&p), (7, 0));
        assert_eq!(max_restarts(&pod("b", "Running", None)), (0, 0));
        // Init containers count only when they are sidecars.
        if let Some(spec) = p.spec.as_mut() {
            spec.init_containers = Some(vec![
                Container {
                    name: "side".into(),
                    restart_policy: Some("Always".into()),
                    ..Default::default()
                },
                Container {
                    name: "init".into(),
                    ..Default::default()
                },
            ]);
        }
        if let Some(s) = p.status.as_mut() {
            s.init_container_statuses = Some(
                [("side", 4), ("init", 9)]
                    .into_iter()
                    .map(|(name, n)| ContainerStatus {
                        name: name.into(),
                        restart_count: n,
                        ..Default::default()
                    })
                    .collect(),
            );
        }
        assert_eq!(max_restarts(&p), (7, 4));
    }

    #[test]
    fn pods_from_templates_carry_the_template_metadata_and_owner() {
        let template = PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some([("app".to_string(), "web".to_string())].into()),
                annotations: Some([("a".to_string(), "b".to_string())].into()),
                name: Some("ignored".into()),
                ..Default::default()
            }),
            spec: Some(PodSpec::default()),
        };
        let owner = OwnerReference {
            api_version: "apps/v1".into(),
            kind: "ReplicaSet".into(),
            name: "web".into(),
            uid: "u".into(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        };
        let p = from_template("web", "ns", &template, owner.clone()).unwrap();
        assert_eq!(p.metadata.generate_name.as_deref(), Some("web-"));
        assert_eq!(p.metadata.name, None);
        assert_eq!(p.metadata.namespace.as_deref(), Some("ns"));
        assert_eq!(
            p.metadata.labels,
            template.metadata.as_ref().unwrap().labels
        );
        assert_eq!(
            p.metadata.annotations,
            template.metadata.as_ref().unwrap().annotations
        );
        assert_eq!(p.metadata.owner_references, Some(vec![owner.clone()]));

        let unlabeled = PodTemplateSpec {
            metadata: None,
            spec: Some(PodSpec::default()),
        };
        assert!(matches!(
            from_template("web", "ns", &unlabeled, owner),
            Err(TemplateError::NoLabels)
        ));
    }
}
