//! Pod facts both controllers need (upstream's `podutil` helpers): readiness, availability
//! with `minReadySeconds`, terminal phases, and turning a pod template into a pod.
//!
//! Everything here is a pure function of the objects it is given and of `now`, so the
//! controllers' decisions built on them are testable without a server.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

/// `metadata.name`, or "" for an object without one.
pub fn name_of(pod: &Pod) -> &str {
    pod.metadata.name.as_deref().unwrap_or_default()
}

/// `metadata.uid`, or "".
pub fn uid_of(pod: &Pod) -> &str {
    pod.metadata.uid.as_deref().unwrap_or_default()
}

fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or_default()
}

pub fn is_terminating(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
}

pub fn is_failed(pod: &Pod) -> bool {
    phase(pod) == "Failed"
}

pub fn is_succeeded(pod: &Pod) -> bool {
    phase(pod) == "Succeeded"
}

/// When the pod's `Ready` condition last became true, if it is true now.
fn ready_since(pod: &Pod) -> Option<Option<Timestamp>> {
    let c = pod
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")?;
    (c.status == "True").then(|| c.last_transition_time.as_ref().map(|t| t.0))
}

/// `Ready=True` (upstream's `IsPodReady`).
pub fn is_ready(pod: &Pod) -> bool {
    ready_since(pod).is_some()
}

/// Phase `Running` and `Ready=True` (upstream's `isRunningAndReady`).
pub fn is_running_and_ready(pod: &Pod) -> bool {
    phase(pod) == "Running" && is_ready(pod)
}

/// Ready for at least `min_ready_seconds` (upstream's `IsPodAvailable`). A ready pod
/// without a transition time counts as available only when no wait is asked for.
pub fn is_available(pod: &Pod, min_ready_seconds: i32, now: Timestamp) -> bool {
    match ready_since(pod) {
        None => false,
        Some(_) if min_ready_seconds <= 0 => true,
        Some(None) => false,
        Some(Some(since)) => {
            since
                .as_second()
                .saturating_add(i64::from(min_ready_seconds))
                <= now.as_second()
        }
    }
}

/// How long until the earliest of `pods` that is ready but not yet available becomes
/// available, so the controller can look again then (upstream requeues after
/// `minReadySeconds` for the same reason).
pub fn next_available_in<'a>(
    pods: impl IntoIterator<Item = &'a Pod>,
    min_ready_seconds: i32,
    now: Timestamp,
) -> Option<Duration> {
    if min_ready_seconds <= 0 {
        return None;
    }
    pods.into_iter()
        .filter_map(|p| ready_since(p).flatten())
        .map(|since| {
            since
                .as_second()
                .saturating_add(i64::from(min_ready_seconds))
        })
        .filter(|at| *at > now.as_second())
        .min()
        .map(|at| Duration::from_secs(u64::try_from(at - now.as_second()).unwrap_or(0) + 1))
}

/// A pod from `template` (upstream's `GetPodFromTemplate`): the template's labels,
/// annotations and finalizers, its spec, and `owner` as controller. The caller names it.
pub fn from_template(namespace: &str, template: &PodTemplateSpec, owner: OwnerReference) -> Pod {
    let tm = template.metadata.clone().unwrap_or_default();
    Pod {
        metadata: ObjectMeta {
            namespace: Some(namespace.to_owned()),
            labels: tm.labels,
            annotations: tm.annotations,
            finalizers: tm.finalizers,
            owner_references: Some(vec![owner]),
            ..Default::default()
        },
        spec: template.spec.clone(),
        status: None,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodCondition, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    pub fn at(s: &str) -> Timestamp {
        s.parse().unwrap_or(Timestamp::UNIX_EPOCH)
    }

    /// A pod named `name` in `phase`, Ready since `ready` if given.
    pub fn pod(name: &str, phase: &str, ready: Option<&str>) -> Pod {
        Pod {
            metadata: ObjectMeta {
                namespace: Some("ns".into()),
                name: Some(name.into()),
                uid: Some(format!("uid-{name}")),
                ..Default::default()
            },
            spec: None,
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
    fn readiness_and_availability() {
        let now = at("2025-01-01T00:01:00Z");
        let ready = pod("a", "Running", Some("2025-01-01T00:00:30Z"));
        let pending = pod("b", "Pending", None);
        assert!(is_running_and_ready(&ready));
        assert!(!is_running_and_ready(&pending));
        assert!(is_available(&ready, 0, now));
        assert!(is_available(&ready, 30, now));
        assert!(!is_available(&ready, 31, now));
        assert!(!is_available(&pending, 0, now));
        assert_eq!(
            next_available_in([&ready, &pending], 40, now),
            Some(Duration::from_secs(11))
        );
        assert_eq!(next_available_in([&ready], 30, now), None);
        assert_eq!(next_available_in([&ready], 0, now), None);
    }

    #[test]
    fn pods_from_templates_carry_metadata_and_owner() {
        let t = PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some([("app".to_string(), "web".to_string())].into()),
                name: Some("ignored".into()),
                ..Default::default()
            }),
            spec: Some(Default::default()),
        };
        let owner = OwnerReference {
            name: "web".into(),
            uid: "u".into(),
            controller: Some(true),
            ..Default::default()
        };
        let p = from_template("ns", &t, owner.clone());
        assert_eq!(p.metadata.namespace.as_deref(), Some("ns"));
        assert_eq!(p.metadata.name, None);
        assert_eq!(p.metadata.labels, t.metadata.and_then(|m| m.labels));
        assert_eq!(p.metadata.owner_references, Some(vec![owner]));
        assert!(p.spec.is_some());
    }
}
