//! What a Service's EndpointSlices should contain: one endpoint per selected pod and address
//! family, grouped by the ports the pod resolves (upstream's `k8s.io/endpointslice` utils).
//!
//! Unlike Endpoints, terminating pods stay listed (with `terminating: true`,
//! `ready: false`), so consumers can drain them; `ready` is forced true only by
//! `publishNotReadyAddresses`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;

use controller_runtime::owners::controller_reference;
use k8s_openapi::api::core::v1::{Node, ObjectReference, Pod, Service};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::endpoints::object::HEADLESS_LABEL;
use crate::endpoints::subsets::{is_headless, is_service_ip_set};
use crate::pods::{self, DEFAULT_PROTOCOL, is_ipv6};

/// Label naming the Service a slice belongs to.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// Label naming the controller managing a slice.
pub const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
/// This controller's value of [`MANAGED_BY_LABEL`].
pub const CONTROLLER_NAME: &str = "endpointslice-controller.k8s.io";
/// Node label giving an endpoint its zone.
pub const ZONE_LABEL: &str = "topology.kubernetes.io/zone";

pub const IPV4: &str = "IPv4";
pub const IPV6: &str = "IPv6";

/// The address types the Service's slices have: one per IP family in `ipFamilies`; without
/// families (an old API server), the family of the cluster IP, or both for headless Services.
pub fn address_types(svc: &Service) -> BTreeSet<&'static str> {
    let spec = svc.spec.as_ref();
    let mut out: BTreeSet<&'static str> = spec
        .and_then(|s| s.ip_families.as_deref())
        .unwrap_or_default()
        .iter()
        .filter_map(|f| match f.as_str() {
            "IPv4" => Some(IPV4),
            "IPv6" => Some(IPV6),
            _ => None,
        })
        .collect();
    if !out.is_empty() {
        return out;
    }
    if is_service_ip_set(svc) {
        let v6 = spec
            .and_then(|s| s.cluster_ip.as_deref())
            .is_some_and(is_ipv6);
        out.insert(if v6 { IPV6 } else { IPV4 });
    } else {
        out.extend([IPV4, IPV6]);
    }
    out
}

/// The ports `pod` serves for `svc`, one per Service port it resolves.
pub fn endpoint_ports(svc: &Service, pod: &Pod) -> Vec<EndpointPort> {
    let ports = svc
        .spec
        .as_ref()
        .and_then(|s| s.ports.as_deref())
        .unwrap_or_default();
    if ports.is_empty() && is_headless(svc) {
        return Vec::new();
    }
    ports
        .iter()
        .filter_map(|sp| {
            let number = pods::find_port(pod, sp)?;
            Some(EndpointPort {
                name: Some(sp.name.clone().unwrap_or_default()),
                port: Some(number),
                protocol: Some(
                    sp.protocol
                        .clone()
                        .unwrap_or_else(|| DEFAULT_PROTOCOL.into()),
                ),
                app_protocol: sp.app_protocol.clone(),
            })
        })
        .collect()
}

/// The pod's addresses of one family, in canonical text form.
fn addresses(pod: &Pod, address_type: &str) -> Vec<String> {
    pods::pod_ips(pod)
        .into_iter()
        .filter_map(|ip| ip.parse::<IpAddr>().ok())
        .filter(|ip| ip.is_ipv6() == (address_type == IPV6))
        .map(|ip| ip.to_string())
        .collect()
}

/// The endpoint of `pod` in `svc`'s slices of `address_type` (no addresses: the pod has no
/// IP of that family and is left out).
pub fn pod_to_endpoint(
    pod: &Pod,
    node: Option<&Node>,
    svc: &Service,
    address_type: &str,
) -> Endpoint {
    let serving = pods::is_ready(pod);
    let terminating = pod.metadata.deletion_timestamp.is_some();
    let publish = svc
        .spec
        .as_ref()
        .and_then(|s| s.publish_not_ready_addresses)
        .unwrap_or(false);
    // Never ready while terminating, unless the Service publishes everything.
    let ready = publish || (serving && !terminating);
    Endpoint {
        addresses: addresses(pod, address_type),
        conditions: Some(EndpointConditions {
            ready: Some(ready),
            serving: Some(serving),
            terminating: Some(terminating),
        }),
        target_ref: Some(ObjectReference {
            kind: Some("Pod".into()),
            namespace: pod.metadata.namespace.clone(),
            name: pod.metadata.name.clone(),
            uid: pod.metadata.uid.clone(),
            ..Default::default()
        }),
        node_name: pods::node_name(pod).map(str::to_owned),
        zone: node
            .and_then(|n| n.metadata.labels.as_ref()?.get(ZONE_LABEL).cloned())
            .filter(|z| !z.is_empty()),
        hostname: pods::hostname_for(pod, svc),
        ..Default::default()
    }
}

fn is_reserved(label: &str) -> bool {
    label == SERVICE_NAME_LABEL || label == MANAGED_BY_LABEL || label == HEADLESS_LABEL
}

/// The labels a slice of `svc` carries — the Service's labels (reserved keys excluded), the
/// headless label, service name and managed-by — and whether `current` (a slice's labels)
/// differs from them in the Service's part.
pub fn slice_labels(
    current: Option<&BTreeMap<String, String>>,
    svc: &Service,
) -> (BTreeMap<String, String>, bool) {
    let own = |m: Option<&BTreeMap<String, String>>| -> BTreeMap<String, String> {
        m.into_iter()
            .flatten()
            .filter(|(k, _)| !is_reserved(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    let mut labels = own(svc.metadata.labels.as_ref());
    let changed = own(current) != labels;
    if !is_service_ip_set(svc) {
        labels.insert(HEADLESS_LABEL.to_owned(), String::new());
    }
    labels.insert(
        SERVICE_NAME_LABEL.to_owned(),
        svc.metadata.name.clone().unwrap_or_default(),
    );
    labels.insert(MANAGED_BY_LABEL.to_owned(), CONTROLLER_NAME.to_owned());
    (labels, changed)
}

/// `<service>-`, the generateName of its slices (the bare name if the dash would make it an
/// invalid name).
pub fn slice_prefix(service: &str) -> String {
    if service.len() < 253 {
        format!("{service}-")
    } else {
        service.to_owned()
    }
}

/// A new, empty slice of `svc` (controlled by it) for `ports` and `address_type`.
pub fn new_slice(svc: &Service, ports: Vec<EndpointPort>, address_type: &str) -> EndpointSlice {
    EndpointSlice {
        metadata: ObjectMeta {
            generate_name: Some(slice_prefix(
                svc.metadata.name.as_deref().unwrap_or_default(),
            )),
            namespace: svc.metadata.namespace.clone(),
            labels: Some(slice_labels(None, svc).0),
            owner_references: Some(vec![controller_reference(svc)]),
            ..Default::default()
        },
        address_type: address_type.to_owned(),
        endpoints: Vec::new(),
        ports: Some(ports),
    }
}

/// Whether `slice` has an owner reference to `svc` (any reference, as upstream).
pub fn owned_by(slice: &EndpointSlice, svc: &Service) -> bool {
    let uid = svc.metadata.uid.as_deref().unwrap_or_default();
    slice
        .metadata
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.uid == uid && o.kind == "Service" && o.api_version == "v1")
}

/// A set of ports as a comparable key (order-insensitive; unset name and protocol are the
/// API's defaults, "" and TCP).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct PortsKey(Vec<(String, i32, String, Option<String>)>);

pub fn ports_key(ports: Option<&[EndpointPort]>) -> PortsKey {
    let mut v: Vec<_> = ports
        .unwrap_or_default()
        .iter()
        .map(|p| {
            (
                p.name.clone().unwrap_or_default(),
                p.port.unwrap_or_default(),
                p.protocol
                    .clone()
                    .unwrap_or_else(|| DEFAULT_PROTOCOL.into()),
                p.app_protocol.clone(),
            )
        })
        .collect();
    v.sort();
    PortsKey(v)
}

/// An endpoint's identity: its addresses, hostname and pod. Everything else (conditions,
/// node, zone) may change in place.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct EndpointKey {
    addresses: Vec<String>,
    hostname: String,
    namespace: String,
    name: String,
}

pub fn endpoint_key(ep: &Endpoint) -> EndpointKey {
    let mut addresses = ep.addresses.clone();
    addresses.sort();
    let r = ep.target_ref.as_ref();
    EndpointKey {
        addresses,
        hostname: ep.hostname.clone().unwrap_or_default(),
        namespace: r.and_then(|r| r.namespace.clone()).unwrap_or_default(),
        name: r.and_then(|r| r.name.clone()).unwrap_or_default(),
    }
}

/// Whether two endpoints with the same [`EndpointKey`] are the same in every field this
/// controller sets (pod resourceVersions ignored).
pub fn same_beyond_key(a: &Endpoint, b: &Endpoint) -> bool {
    let conditions = |e: &Endpoint| {
        let c = e.conditions.clone().unwrap_or_default();
        (c.ready, c.serving, c.terminating)
    };
    let target = |e: &Endpoint| {
        e.target_ref.clone().map(|mut r| {
            r.resource_version = None;
            r
        })
    };
    a.node_name == b.node_name
        && a.zone == b.zone
        && conditions(a) == conditions(b)
        && target(a) == target(b)
}

/// The endpoints `svc` wants for one address type, grouped by port set.
#[derive(Debug, Default)]
pub struct Wanted {
    pub groups: BTreeMap<PortsKey, Group>,
    /// Pods left out because their node is unknown (retried later).
    pub missing_nodes: Vec<String>,
}

/// The endpoints of one port set.
#[derive(Debug, Default)]
pub struct Group {
    pub ports: Vec<EndpointPort>,
    pub endpoints: BTreeMap<EndpointKey, Endpoint>,
}

/// The desired endpoints of `svc`'s `address_type` slices from its pods. `node` looks up a
/// node by name. A pod on an unknown node is left out (and reported) unless the Service
/// publishes not-ready addresses, as upstream: a pod bound to a vanished node must not wedge
/// the Service.
pub fn wanted(
    svc: &Service,
    pods: &[Arc<Pod>],
    address_type: &str,
    node: impl Fn(&str) -> Option<Arc<Node>>,
) -> Wanted {
    let publish = svc
        .spec
        .as_ref()
        .and_then(|s| s.publish_not_ready_addresses)
        .unwrap_or(false);
    let mut out = Wanted::default();
    for pod in pods {
        if !pods::should_be_in_endpoints(pod, true) {
            continue;
        }
        let ports = endpoint_ports(svc, pod);
        let key = ports_key(Some(&ports));
        let group = out.groups.entry(key).or_insert_with(|| Group {
            ports,
            endpoints: BTreeMap::new(),
        });
        let n = pods::node_name(pod).and_then(&node);
        if n.is_none() && !publish {
            out.missing_nodes
                .push(pod.metadata.name.clone().unwrap_or_default());
            continue;
        }
        let ep = pod_to_endpoint(pod, n.as_deref(), svc, address_type);
        if !ep.addresses.is_empty() {
            group.endpoints.insert(endpoint_key(&ep), ep);
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::pods::tests::pod;
    use k8s_openapi::api::core::v1::{PodIP, ServicePort, ServiceSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

    pub(crate) fn service() -> Service {
        Service {
            metadata: ObjectMeta {
                namespace: Some("ns".into()),
                name: Some("web".into()),
                uid: Some("svc-uid".into()),
                labels: Some([("team".to_string(), "a".to_string())].into()),
                ..Default::default()
            },
            spec: Some(ServiceSpec {
                selector: Some([("app".to_string(), "web".to_string())].into()),
                cluster_ip: Some("10.43.0.10".into()),
                ip_families: Some(vec!["IPv4".into()]),
                ports: Some(vec![ServicePort {
                    name: Some("http".into()),
                    port: 80,
                    target_port: Some(IntOrString::String("http".into())),
                    protocol: Some("TCP".into()),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            status: None,
        }
    }

    fn node(zone: &str) -> Arc<Node> {
        Arc::new(Node {
            metadata: ObjectMeta {
                name: Some("n1".into()),
                labels: Some([(ZONE_LABEL.to_string(), zone.to_string())].into()),
                ..Default::default()
            },
            ..Default::default()
        })
    }

    #[test]
    fn address_types_follow_families() {
        let mut s = service();
        assert_eq!(address_types(&s), BTreeSet::from([IPV4]));
        s.spec.as_mut().unwrap().ip_families = None;
        assert_eq!(address_types(&s), BTreeSet::from([IPV4]));
        s.spec.as_mut().unwrap().cluster_ip = Some("fd00::10".into());
        assert_eq!(address_types(&s), BTreeSet::from([IPV6]));
        s.spec.as_mut().unwrap().cluster_ip = Some("None".into());
        assert_eq!(address_types(&s), BTreeSet::from([IPV4, IPV6]));
    }

    #[test]
    fn endpoints_carry_conditions_zone_and_reference() {
        let s = service();
        let n = node("zone-a");
        let ep = pod_to_endpoint(&pod("a", "10.0.0.1", true), Some(&n), &s, IPV4);
        assert_eq!(ep.addresses, ["10.0.0.1"]);
        assert_eq!(
            ep.conditions,
            Some(EndpointConditions {
                ready: Some(true),
                serving: Some(true),
                terminating: Some(false)
            })
        );
        assert_eq!(ep.zone.as_deref(), Some("zone-a"));
        assert_eq!(ep.node_name.as_deref(), Some("n1"));
        assert_eq!(ep.target_ref.unwrap().name.as_deref(), Some("a"));

        // Terminating and ready: serving, not ready.
        let mut t = pod("t", "10.0.0.2", true);
        t.metadata.deletion_timestamp = Some(Time(jiff::Timestamp::UNIX_EPOCH));
        let c = pod_to_endpoint(&t, None, &s, IPV4).conditions.unwrap();
        assert_eq!(
            (c.ready, c.serving, c.terminating),
            (Some(false), Some(true), Some(true))
        );
        // publishNotReadyAddresses: ready regardless.
        let mut p = s.clone();
        p.spec.as_mut().unwrap().publish_not_ready_addresses = Some(true);
        let c = pod_to_endpoint(&pod("u", "10.0.0.3", false), None, &p, IPV4)
            .conditions
            .unwrap();
        assert_eq!((c.ready, c.serving), (Some(true), Some(false)));

        // Dual-stack pod: one address per family.
        let mut d = pod("d", "10.0.0.4", true);
        d.status.as_mut().unwrap().pod_ips = Some(vec![
            PodIP {
                ip: "10.0.0.4".into(),
            },
            PodIP {
                ip: "fd00:0::4".into(),
            },
        ]);
        assert_eq!(pod_to_endpoint(&d, None, &s, IPV6).addresses, ["fd00::4"]);
        assert_eq!(pod_to_endpoint(&d, None, &s, IPV4).addresses, ["10.0.0.4"]);
    }

    #[test]
    fn labels_mirror_the_service_but_keep_reserved_keys() {
        let s = service();
        let (labels, changed) = slice_labels(None, &s);
        assert!(changed);
        assert_eq!(
            labels,
            BTreeMap::from([
                ("team".to_string(), "a".to_string()),
                (SERVICE_NAME_LABEL.to_string(), "web".to_string()),
                (MANAGED_BY_LABEL.to_string(), CONTROLLER_NAME.to_string()),
            ])
        );
        assert!(!slice_labels(Some(&labels), &s).1);
        let mut h = s.clone();
        h.spec.as_mut().unwrap().cluster_ip = Some("None".into());
        assert_eq!(slice_labels(None, &h).0[HEADLESS_LABEL], "");
    }

    #[test]
    fn wanted_groups_by_ports_and_skips_unknown_nodes() {
        let s = service();
        let mut portless = pod("z", "10.0.0.9", true);
        portless.spec.as_mut().unwrap().containers[0].ports = None;
        let mut lost = pod("lost", "10.0.0.8", true);
        lost.spec.as_mut().unwrap().node_name = Some("gone".into());
        let pods = vec![
            Arc::new(pod("a", "10.0.0.1", true)),
            Arc::new(pod("b", "10.0.0.2", false)),
            Arc::new(portless),
            Arc::new(lost),
            Arc::new(pod("no-ip", "", true)),
        ];
        let n = node("z1");
        let w = wanted(&s, &pods, IPV4, |name| (name == "n1").then(|| n.clone()));
        assert_eq!(w.missing_nodes, ["lost"]);
        let sizes: Vec<(usize, usize)> = w
            .groups
            .values()
            .map(|g| (g.ports.len(), g.endpoints.len()))
            .collect();
        assert_eq!(sizes, [(0, 1), (1, 2)]);
    }
}
