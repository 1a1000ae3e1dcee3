//! What both controllers read from a pod: whether it belongs in a Service's endpoints at all,
//! whether it is ready, which port a Service port resolves to on it, and which of its changes
//! can change endpoints (upstream's `k8s.io/endpointslice/util` pod helpers).
//!
//! Everything here is a pure function of the objects, so the rules are tested without a
//! server.

use std::net::IpAddr;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Pod, Service, ServicePort};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// The protocol the API server defaults ports to; an unset protocol means this.
pub const DEFAULT_PROTOCOL: &str = "TCP";

/// Whether the pod's `Ready` condition is `True`.
pub fn is_ready(pod: &Pod) -> bool {
    ready_condition(pod).is_some_and(|c| c.status == "True")
}

fn ready_condition(pod: &Pod) -> Option<&k8s_openapi::api::core::v1::PodCondition> {
    pod.status
        .as_ref()?
        .conditions
        .as_deref()?
        .iter()
        .find(|c| c.type_ == "Ready")
}

/// When the pod's `Ready` condition last changed: the moment a pod change "triggered" an
/// endpoints change (the `endpoints.kubernetes.io/last-change-trigger-time` annotation).
pub fn ready_transition_time(pod: &Pod) -> Option<Timestamp> {
    ready_condition(pod)?
        .last_transition_time
        .as_ref()
        .map(|t| t.0)
}

/// `Succeeded` or `Failed`: the pod's containers will never run again.
pub fn is_terminal(pod: &Pod) -> bool {
    matches!(phase(pod), Some("Succeeded" | "Failed"))
}

fn phase(pod: &Pod) -> Option<&str> {
    pod.status.as_ref()?.phase.as_deref()
}

/// The pod's IPs in the order the kubelet reported them (`status.podIPs`, or `status.podIP`
/// when only that is set).
pub fn pod_ips(pod: &Pod) -> Vec<&str> {
    let Some(status) = pod.status.as_ref() else {
        return Vec::new();
    };
    let listed: Vec<&str> = status
        .pod_ips
        .as_deref()
        .unwrap_or_default()
        .iter()
        .map(|p| p.ip.as_str())
        .filter(|ip| !ip.is_empty())
        .collect();
    if !listed.is_empty() {
        return listed;
    }
    status
        .pod_ip
        .as_deref()
        .filter(|ip| !ip.is_empty())
        .into_iter()
        .collect()
}

/// Whether the pod appears in a Service's endpoints at all (upstream's
/// `ShouldPodBeInEndpoints`): not terminal, has an IP, and — unless `include_terminating` —
/// not being deleted.
pub fn should_be_in_endpoints(pod: &Pod, include_terminating: bool) -> bool {
    if is_terminal(pod) || pod_ips(pod).is_empty() {
        return false;
    }
    include_terminating || pod.metadata.deletion_timestamp.is_none()
}

/// Whether the endpoint for `pod` carries its hostname: the pod names a hostname and its
/// subdomain is this Service (the headless-service DNS pattern).
pub fn should_set_hostname(pod: &Pod, svc: &Service) -> bool {
    let Some(spec) = pod.spec.as_ref() else {
        return false;
    };
    spec.hostname.as_deref().is_some_and(|h| !h.is_empty())
        && spec.subdomain.is_some()
        && spec.subdomain == svc.metadata.name
        && pod.metadata.namespace == svc.metadata.namespace
}

/// The pod's hostname, when [`should_set_hostname`].
pub fn hostname_for(pod: &Pod, svc: &Service) -> Option<String> {
    should_set_hostname(pod, svc)
        .then(|| pod.spec.as_ref().and_then(|s| s.hostname.clone()))
        .flatten()
}

/// The pod's node, if it has been bound.
pub fn node_name(pod: &Pod) -> Option<&str> {
    pod.spec
        .as_ref()?
        .node_name
        .as_deref()
        .filter(|n| !n.is_empty())
}

fn protocol(p: Option<&String>) -> &str {
    p.map_or(DEFAULT_PROTOCOL, String::as_str)
}

/// The port number `svc_port` resolves to on `pod` (upstream's `FindPort`): a numeric
/// `targetPort` as is (unset means the Service port itself, as the API server defaults it);
/// a named one is looked up among the pod's container ports of the same protocol, then among
/// its sidecar (restartable init) containers. `None`: this pod has no such port, and is left
/// out of the endpoints for this Service port only.
pub fn find_port(pod: &Pod, svc_port: &ServicePort) -> Option<i32> {
    let name = match &svc_port.target_port {
        None | Some(IntOrString::Int(0)) => return Some(svc_port.port),
        Some(IntOrString::Int(n)) => return Some(*n),
        Some(IntOrString::String(name)) => name,
    };
    let want = protocol(svc_port.protocol.as_ref());
    let spec = pod.spec.as_ref()?;
    let sidecars = spec
        .init_containers
        .as_deref()
        .unwrap_or_default()
        .iter()
        .filter(|c| c.restart_policy.as_deref() == Some("Always"));
    spec.containers
        .iter()
        .chain(sidecars)
        .flat_map(|c| c.ports.as_deref().unwrap_or_default())
        .find(|p| p.name.as_ref() == Some(name) && protocol(p.protocol.as_ref()) == want)
        .map(|p| p.container_port)
}

/// Whether `ip` is an IPv6 address (anything that does not parse counts as IPv4, as
/// upstream's family checks treat it).
pub fn is_ipv6(ip: &str) -> bool {
    matches!(ip.parse::<IpAddr>(), Ok(IpAddr::V6(_)))
}

/// How a pod update can matter to endpoints (upstream's `podEndpointsChanged`): `pod` is
/// true when the endpoints built from it may differ (deletion started, readiness flipped,
/// IPs changed); `membership` when the set of Services selecting it may differ (labels,
/// hostname or subdomain changed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PodChange {
    pub pod: bool,
    pub membership: bool,
}

pub fn endpoints_change(old: &Pod, new: &Pod) -> PodChange {
    let host = |p: &Pod| {
        p.spec
            .as_ref()
            .map(|s| (s.hostname.clone(), s.subdomain.clone()))
    };
    let membership = old.metadata.labels.as_ref().filter(|l| !l.is_empty())
        != new.metadata.labels.as_ref().filter(|l| !l.is_empty())
        || host(old) != host(new);
    // NodeName, name, namespace and UID also appear in endpoints, but the first is set once
    // before the pod gets an IP and the others are immutable.
    let pod = old.metadata.deletion_timestamp != new.metadata.deletion_timestamp
        || is_ready(old) != is_ready(new)
        || pod_ips(old) != pod_ips(new)
        || is_terminal(old) != is_terminal(new);
    PodChange { pod, membership }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        Container, ContainerPort, PodCondition, PodIP, PodSpec, PodStatus,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

    /// A pod in `ns` on node `n1` with the given IP (empty: none) and readiness.
    pub(crate) fn pod(name: &str, ip: &str, ready: bool) -> Pod {
        Pod {
            metadata: ObjectMeta {
                namespace: Some("ns".into()),
                name: Some(name.into()),
                uid: Some(format!("uid-{name}")),
                labels: Some([("app".to_string(), "web".to_string())].into()),
                ..Default::default()
            },
            spec: Some(PodSpec {
                node_name: Some("n1".into()),
                containers: vec![Container {
                    name: "c".into(),
                    ports: Some(vec![ContainerPort {
                        name: Some("http".into()),
                        container_port: 8080,
                        ..Default::default()
                    }]),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            status: Some(PodStatus {
                phase: Some("Running".into()),
                pod_ip: (!ip.is_empty()).then(|| ip.to_string()),
                pod_ips: (!ip.is_empty()).then(|| vec![PodIP { ip: ip.into() }]),
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: if ready { "True" } else { "False" }.into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
        }
    }

    fn svc_port(target: Option<IntOrString>, protocol: Option<&str>) -> ServicePort {
        ServicePort {
            port: 80,
            target_port: target,
            protocol: protocol.map(str::to_owned),
            ..Default::default()
        }
    }

    #[test]
    fn membership_rules() {
        let mut p = pod("a", "10.0.0.1", false);
        assert!(should_be_in_endpoints(&p, false));
        p.metadata.deletion_timestamp = Some(Time(Timestamp::UNIX_EPOCH));
        assert!(!should_be_in_endpoints(&p, false));
        assert!(should_be_in_endpoints(&p, true));
        let mut done = pod("b", "10.0.0.2", true);
        done.status.as_mut().unwrap().phase = Some("Succeeded".into());
        assert!(!should_be_in_endpoints(&done, true));
        assert!(!should_be_in_endpoints(&pod("c", "", true), true));
        // Only podIP set: still has an address.
        let mut legacy = pod("d", "10.0.0.4", true);
        legacy.status.as_mut().unwrap().pod_ips = None;
        assert_eq!(pod_ips(&legacy), ["10.0.0.4"]);
    }

    #[test]
    fn ports_resolve_by_number_and_by_name_and_protocol() {
        let p = pod("a", "10.0.0.1", true);
        let by_name =
            |n: &str, proto| find_port(&p, &svc_port(Some(IntOrString::String(n.into())), proto));
        assert_eq!(by_name("http", None), Some(8080));
        assert_eq!(by_name("http", Some("TCP")), Some(8080));
        assert_eq!(by_name("http", Some("UDP")), None);
        assert_eq!(by_name("metrics", None), None);
        assert_eq!(
            find_port(&p, &svc_port(Some(IntOrString::Int(9000)), None)),
            Some(9000)
        );
        assert_eq!(find_port(&p, &svc_port(None, None)), Some(80));

        // A restartable init container (sidecar) counts; an ordinary one does not.
        let mut s = p.clone();
        let spec = s.spec.as_mut().unwrap();
        let mut sidecar = Container {
            name: "side".into(),
            ports: Some(vec![ContainerPort {
                name: Some("admin".into()),
                container_port: 9901,
                ..Default::default()
            }]),
            ..Default::default()
        };
        spec.init_containers = Some(vec![sidecar.clone()]);
        let admin = svc_port(Some(IntOrString::String("admin".into())), None);
        assert_eq!(find_port(&s, &admin), None);
        sidecar.restart_policy = Some("Always".into());
        s.spec.as_mut().unwrap().init_containers = Some(vec![sidecar]);
        assert_eq!(find_port(&s, &admin), Some(9901));
    }

    #[test]
    fn hostnames_only_for_the_named_subdomain() {
        let svc = Service {
            metadata: ObjectMeta {
                namespace: Some("ns".into()),
                name: Some("db".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let mut p = pod("a", "10.0.0.1", true);
        assert_eq!(hostname_for(&p, &svc), None);
        let spec = p.spec.as_mut().unwrap();
        spec.hostname = Some("db-0".into());
        spec.subdomain = Some("other".into());
        assert_eq!(hostname_for(&p, &svc), None);
        p.spec.as_mut().unwrap().subdomain = Some("db".into());
        assert_eq!(hostname_for(&p, &svc).as_deref(), Some("db-0"));
        p.metadata.namespace = Some("elsewhere".into());
        assert_eq!(hostname_for(&p, &svc), None);
    }

    #[test]
    fn which_changes_matter() {
        let old = pod("a", "10.0.0.1", false);
        let mut new = old.clone();
        new.metadata.annotations = Some([("x".to_string(), "y".to_string())].into());
        assert_eq!(
            endpoints_change(&old, &new),
            PodChange {
                pod: false,
                membership: false
            }
        );
        let mut ready = old.clone();
        ready.status = pod("a", "10.0.0.1", true).status;
        assert_eq!(
            endpoints_change(&old, &ready),
            PodChange {
                pod: true,
                membership: false
            }
        );
        let mut relabeled = old.clone();
        relabeled.metadata.labels = Some([("app".to_string(), "db".to_string())].into());
        assert_eq!(
            endpoints_change(&old, &relabeled),
            PodChange {
                pod: false,
                membership: true
            }
        );
        let moved = pod("a", "10.0.0.9", false);
        assert!(endpoints_change(&old, &moved).pod);
        assert!(is_ipv6("fd00::1"));
        assert!(!is_ipv6("10.0.0.1"));
    }
}
