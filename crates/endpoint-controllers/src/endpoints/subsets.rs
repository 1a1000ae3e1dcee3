//! The subsets of a Service's Endpoints, computed from the Service and its pods (the pure
//! half of upstream's `syncService`, with `RepackSubsets` and `truncateEndpoints`).
//!
//! Guarantees:
//! * Canonical form: each subset is one set of ports with exactly the addresses serving all
//!   of them; addresses are sorted by IP then pod UID, ports by name/number/protocol, and
//!   subsets in a fixed order — so equal inputs give byte-equal objects and the controller
//!   can tell "nothing changed" by comparison.
//! * An address that is not ready for one port is listed as not ready there even if another
//!   subset had it ready (not-ready wins, as upstream).
//! * At most [`MAX_CAPACITY`] addresses: beyond it, ready addresses are kept before not-ready
//!   ones, each subset keeping its share (see [`truncate`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, ObjectReference, Pod, Service,
};

use crate::pods::{self, DEFAULT_PROTOCOL, is_ipv6};

/// Most addresses one Endpoints object carries (upstream's `maxCapacity`).
pub const MAX_CAPACITY: usize = 1000;

/// The Service's `clusterIP`, if it has a real one (not `None`, not unset).
pub fn is_service_ip_set(svc: &Service) -> bool {
    svc.spec
        .as_ref()
        .and_then(|s| s.cluster_ip.as_deref())
        .is_some_and(|ip| !ip.is_empty() && ip != "None")
}

/// Whether the Service is headless (`clusterIP: None`).
pub fn is_headless(svc: &Service) -> bool {
    svc.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()) == Some("None")
}

fn publish_not_ready(svc: &Service) -> bool {
    svc.spec
        .as_ref()
        .and_then(|s| s.publish_not_ready_addresses)
        .unwrap_or(false)
}

/// The IP of `pod` an Endpoints address uses: the first pod IP of the Service's primary IP
/// family (from `ipFamilies`; else the family of its cluster IP; a headless Service without
/// families follows the pod).
fn address_ip<'p>(svc: &Service, pod: &'p Pod) -> Option<&'p str> {
    let ips = pods::pod_ips(pod);
    let spec = svc.spec.as_ref();
    let want_v6 = match spec
        .and_then(|s| s.ip_families.as_deref())
        .and_then(|f| f.first())
    {
        Some(family) => family == "IPv6",
        None if is_service_ip_set(svc) => spec
            .and_then(|s| s.cluster_ip.as_deref())
            .is_some_and(is_ipv6),
        None => ips.first().is_some_and(|ip| is_ipv6(ip)),
    };
    ips.into_iter().find(|ip| is_ipv6(ip) == want_v6)
}

/// The address `pod` contributes to `svc`'s Endpoints, if it has an IP of the right family.
pub fn address_for(svc: &Service, pod: &Pod) -> Option<EndpointAddress> {
    let ip = address_ip(svc, pod)?;
    Some(EndpointAddress {
        ip: ip.to_owned(),
        node_name: pods::node_name(pod).map(str::to_owned),
        hostname: pods::hostname_for(pod, svc),
        target_ref: Some(ObjectReference {
            kind: Some("Pod".into()),
            namespace: pod.metadata.namespace.clone(),
            name: pod.metadata.name.clone(),
            uid: pod.metadata.uid.clone(),
            ..Default::default()
        }),
    })
}

/// An address's identity when repacking: IP and pod UID (two pods may share an IP, e.g.
/// host-network pods, and stay apart).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct AddressKey {
    ip: String,
    uid: String,
}

fn address_key(a: &EndpointAddress) -> AddressKey {
    AddressKey {
        ip: a.ip.clone(),
        uid: a
            .target_ref
            .as_ref()
            .and_then(|r| r.uid.clone())
            .unwrap_or_default(),
    }
}

/// A port's identity and sort order.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct PortKey {
    name: String,
    port: i32,
    protocol: String,
    app_protocol: Option<String>,
}

impl PortKey {
    fn of(p: &EndpointPort) -> PortKey {
        PortKey {
            name: p.name.clone().unwrap_or_default(),
            port: p.port,
            protocol: p
                .protocol
                .clone()
                .unwrap_or_else(|| DEFAULT_PROTOCOL.into()),
            app_protocol: p.app_protocol.clone(),
        }
    }

    fn to_port(&self) -> EndpointPort {
        EndpointPort {
            name: (!self.name.is_empty()).then(|| self.name.clone()),
            port: self.port,
            protocol: Some(self.protocol.clone()),
            app_protocol: self.app_protocol.clone(),
        }
    }
}

/// One address offering one port (`None`: a headless Service without ports), ready or not.
#[derive(Clone, Debug)]
pub struct Entry {
    pub address: EndpointAddress,
    pub port: Option<EndpointPort>,
    pub ready: bool,
}

/// The entries `pods` contribute to `svc` (upstream's per-pod loop of `syncService`).
pub fn entries(svc: &Service, pods: &[Arc<Pod>]) -> Vec<Entry> {
    let tolerate_unready = publish_not_ready(svc);
    let ports = svc
        .spec
        .as_ref()
        .and_then(|s| s.ports.as_deref())
        .unwrap_or_default();
    let mut out = Vec::new();
    for pod in pods {
        if !pods::should_be_in_endpoints(pod, tolerate_unready) {
            continue;
        }
        let Some(address) = address_for(svc, pod) else {
            continue;
        };
        let ready = tolerate_unready || pods::is_ready(pod);
        if ports.is_empty() {
            // Only a headless Service may have no ports; its addresses are listed bare.
            if is_headless(svc) {
                out.push(Entry {
                    address,
                    port: None,
                    ready,
                });
            }
            continue;
        }
        for sp in ports {
            let Some(number) = pods::find_port(pod, sp) else {
                continue;
            };
            out.push(Entry {
                address: address.clone(),
                port: Some(EndpointPort {
                    name: sp.name.clone().filter(|n| !n.is_empty()),
                    port: number,
                    protocol: Some(
                        sp.protocol
                            .clone()
                            .unwrap_or_else(|| DEFAULT_PROTOCOL.into()),
                    ),
                    app_protocol: sp.app_protocol.clone(),
                }),
                ready,
            });
        }
    }
    out
}

/// Groups entries into the canonical subsets (upstream's `RepackSubsets`).
pub fn repack(entries: Vec<Entry>) -> Vec<EndpointSubset> {
    let mut addresses: BTreeMap<AddressKey, EndpointAddress> = BTreeMap::new();
    // Port (None: no port) → address → ready.
    let mut by_port: BTreeMap<Option<PortKey>, BTreeMap<AddressKey, bool>> = BTreeMap::new();
    for e in entries {
        let key = address_key(&e.address);
        addresses.entry(key.clone()).or_insert(e.address);
        let ready = by_port
            .entry(e.port.as_ref().map(PortKey::of))
            .or_default()
            .entry(key)
            .or_insert(true);
        // Not ready anywhere means not ready.
        *ready &= e.ready;
    }
    // Address sets (with readiness) → the ports they all serve.
    let mut by_addresses: BTreeMap<Vec<(AddressKey, bool)>, Vec<Option<PortKey>>> = BTreeMap::new();
    for (port, addrs) in by_port {
        by_addresses
            .entry(addrs.into_iter().collect())
            .or_default()
            .push(port);
    }
    by_addresses
        .into_iter()
        .map(|(addrs, ports)| {
            let (mut ready, mut not_ready) = (Vec::new(), Vec::new());
            for (key, is_ready) in addrs {
                let Some(a) = addresses.get(&key) else {
                    continue;
                };
                if is_ready {
                    ready.push(a.clone());
                } else {
                    not_ready.push(a.clone());
                }
            }
            let ports: Vec<EndpointPort> = ports.iter().flatten().map(PortKey::to_port).collect();
            EndpointSubset {
                addresses: non_empty(ready),
                not_ready_addresses: non_empty(not_ready),
                ports: non_empty(ports),
            }
        })
        .collect()
}

fn non_empty<T>(v: Vec<T>) -> Option<Vec<T>> {
    (!v.is_empty()).then_some(v)
}

fn count(v: &Option<Vec<EndpointAddress>>) -> usize {
    v.as_ref().map_or(0, Vec::len)
}

/// Cuts the subsets down to [`MAX_CAPACITY`] addresses; true if anything was cut (upstream's
/// `truncateEndpoints`). Ready addresses are kept first: if they alone exceed the capacity,
/// every not-ready address goes and each subset keeps its proportional share of ready ones
/// (rounded up, the last subsets taking what is left); otherwise all ready addresses stay and
/// the not-ready ones are cut the same way.
pub fn truncate(subsets: &mut [EndpointSubset]) -> bool {
    let total_ready: usize = subsets.iter().map(|s| count(&s.addresses)).sum();
    let total_not_ready: usize = subsets.iter().map(|s| count(&s.not_ready_addresses)).sum();
    if total_ready + total_not_ready <= MAX_CAPACITY {
        return false;
    }
    let cut_ready = total_ready > MAX_CAPACITY;
    let (budget, total) = if cut_ready {
        (MAX_CAPACITY, total_ready)
    } else {
        (MAX_CAPACITY - total_ready, total_not_ready)
    };
    let mut left = budget;
    for s in subsets.iter_mut() {
        if cut_ready {
            s.not_ready_addresses = None;
        }
        let target = if cut_ready {
            &mut s.addresses
        } else {
            &mut s.not_ready_addresses
        };
        let here = count(target);
        // ceil(here / total * budget), in integers.
        let share = (here * budget).div_ceil(total.max(1)).min(left);
        if let Some(v) = target.as_mut() {
            v.truncate(share);
        }
        left -= count(target);
        if target.as_ref().is_some_and(Vec::is_empty) {
            *target = None;
        }
    }
    true
}

/// Subsets as the API may return them, made comparable with ours: empty lists are absent,
/// protocols defaulted, and pod resourceVersions in target references ignored (a pod update
/// that changes nothing else must not rewrite Endpoints).
pub fn normalized(subsets: Option<&[EndpointSubset]>) -> Vec<EndpointSubset> {
    let addrs = |v: &Option<Vec<EndpointAddress>>| {
        non_empty(
            v.iter()
                .flatten()
                .map(|a| {
                    let mut a = a.clone();
                    if let Some(r) = a.target_ref.as_mut() {
                        r.resource_version = None;
                    }
                    if a.node_name.as_deref() == Some("") {
                        a.node_name = None;
                    }
                    if a.hostname.as_deref() == Some("") {
                        a.hostname = None;
                    }
                    a
                })
                .collect(),
        )
    };
    subsets
        .unwrap_or_default()
        .iter()
        .map(|s| EndpointSubset {
            addresses: addrs(&s.addresses),
            not_ready_addresses: addrs(&s.not_ready_addresses),
            ports: non_empty(
                s.ports
                    .iter()
                    .flatten()
                    .map(|p| PortKey::of(p).to_port())
                    .collect(),
            ),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pods::tests::pod;
    use k8s_openapi::api::core::v1::{ServicePort, ServiceSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

    pub(crate) fn service(ports: &[(&str, i32, IntOrString)]) -> Service {
        Service {
            metadata: ObjectMeta {
                namespace: Some("ns".into()),
                name: Some("web".into()),
                ..Default::default()
            },
            spec: Some(ServiceSpec {
                selector: Some([("app".to_string(), "web".to_string())].into()),
                cluster_ip: Some("10.43.0.10".into()),
                ip_families: Some(vec!["IPv4".into()]),
                ports: Some(
                    ports
                        .iter()
                        .map(|(name, port, target)| ServicePort {
                            name: Some(name.to_string()),
                            port: *port,
                            target_port: Some(target.clone()),
                            protocol: Some("TCP".into()),
                            ..Default::default()
                        })
                        .collect(),
                ),
                ..Default::default()
            }),
            status: None,
        }
    }

    fn ips(v: &Option<Vec<EndpointAddress>>) -> Vec<&str> {
        v.iter().flatten().map(|a| a.ip.as_str()).collect()
    }

    fn port_numbers(s: &EndpointSubset) -> Vec<i32> {
        s.ports.iter().flatten().map(|p| p.port).collect()
    }

    #[test]
    fn ready_and_unready_pods_with_named_ports() {
        let svc = service(&[("http", 80, IntOrString::String("http".into()))]);
        let pods = vec![
            Arc::new(pod("b", "10.0.0.2", true)),
            Arc::new(pod("a", "10.0.0.1", true)),
            Arc::new(pod("c", "10.0.0.3", false)),
            Arc::new(pod("no-ip", "", true)),
        ];
        let subsets = repack(entries(&svc, &pods));
        assert_eq!(subsets.len(), 1);
        assert_eq!(ips(&subsets[0].addresses), ["10.0.0.1", "10.0.0.2"]);
        assert_eq!(ips(&subsets[0].not_ready_addresses), ["10.0.0.3"]);
        assert_eq!(port_numbers(&subsets[0]), [8080]);
        let a = &subsets[0].addresses.as_ref().unwrap()[0];
        assert_eq!(a.node_name.as_deref(), Some("n1"));
        let r = a.target_ref.as_ref().unwrap();
        assert_eq!(
            (r.kind.as_deref(), r.name.as_deref(), r.uid.as_deref()),
            (Some("Pod"), Some("a"), Some("uid-a"))
        );
        assert_eq!(
            subsets[0].ports.as_ref().unwrap()[0].name.as_deref(),
            Some("http")
        );

        // publishNotReadyAddresses: everything is an address, deleting pods included.
        let mut svc2 = svc.clone();
        svc2.spec.as_mut().unwrap().publish_not_ready_addresses = Some(true);
        let subsets = repack(entries(&svc2, &pods));
        assert_eq!(
            ips(&subsets[0].addresses),
            ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
        );
        assert_eq!(subsets[0].not_ready_addresses, None);
    }

    #[test]
    fn pods_without_a_named_port_form_their_own_subset() {
        let svc = service(&[
            ("http", 80, IntOrString::String("http".into())),
            ("admin", 9000, IntOrString::Int(9000)),
        ]);
        let mut other = pod("z", "10.0.0.9", true);
        other.spec.as_mut().unwrap().containers[0].ports = None;
        let pods = vec![Arc::new(pod("a", "10.0.0.1", true)), Arc::new(other)];
        let subsets = repack(entries(&svc, &pods));
        let mut shapes: Vec<(Vec<&str>, Vec<i32>)> = subsets
            .iter()
            .map(|s| (ips(&s.addresses), port_numbers(s)))
            .collect();
        shapes.sort();
        assert_eq!(
            shapes,
            [
                (vec!["10.0.0.1"], vec![8080]),
                (vec!["10.0.0.1", "10.0.0.9"], vec![9000]),
            ]
        );
    }

    #[test]
    fn headless_without_ports_lists_bare_addresses() {
        let mut svc = service(&[]);
        svc.spec.as_mut().unwrap().cluster_ip = Some("None".into());
        svc.spec.as_mut().unwrap().ports = None;
        let pods = vec![Arc::new(pod("a", "10.0.0.1", true))];
        let subsets = repack(entries(&svc, &pods));
        assert_eq!(subsets.len(), 1);
        assert_eq!(ips(&subsets[0].addresses), ["10.0.0.1"]);
        assert_eq!(subsets[0].ports, None);
        // A Service with a cluster IP and no ports gets nothing.
        let mut plain = svc.clone();
        plain.spec.as_mut().unwrap().cluster_ip = Some("10.43.0.1".into());
        assert!(repack(entries(&plain, &pods)).is_empty());
    }

    #[test]
    fn not_ready_wins_and_output_is_canonical() {
        let addr = |ip: &str, uid: &str| EndpointAddress {
            ip: ip.into(),
            target_ref: Some(ObjectReference {
                uid: Some(uid.into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let port = |n: i32| {
            Some(EndpointPort {
                port: n,
                protocol: Some("TCP".into()),
                ..Default::default()
            })
        };
        let e = |a: EndpointAddress, p, ready| Entry {
            address: a,
            port: p,
            ready,
        };
        let input = vec![
            e(addr("10.0.0.2", "u2"), port(80), true),
            e(addr("10.0.0.1", "u1"), port(80), true),
            e(addr("10.0.0.1", "u1"), port(80), false),
            // Same IP, another pod: kept apart.
            e(addr("10.0.0.1", "u0"), port(80), true),
        ];
        let out = repack(input.clone());
        assert_eq!(out.len(), 1);
        let uids = |v: &Option<Vec<EndpointAddress>>| -> Vec<String> {
            v.iter()
                .flatten()
                .map(|a| a.target_ref.as_ref().unwrap().uid.clone().unwrap())
                .collect()
        };
        assert_eq!(uids(&out[0].addresses), ["u0", "u2"]);
        assert_eq!(uids(&out[0].not_ready_addresses), ["u1"]);
        let mut reversed = input;
        reversed.reverse();
        assert_eq!(repack(reversed), out);
    }

    fn many(n: usize, prefix: &str) -> Option<Vec<EndpointAddress>> {
        Some(
            (0..n)
                .map(|i| EndpointAddress {
                    ip: format!("{prefix}.{i}"),
                    ..Default::default()
                })
                .collect(),
        )
    }

    #[test]
    fn truncation_keeps_ready_first_in_proportion() {
        // Under capacity: untouched.
        let mut small = vec![EndpointSubset {
            addresses: many(600, "a"),
            not_ready_addresses: many(400, "b"),
            ports: None,
        }];
        assert!(!truncate(&mut small));

        // Ready fit: not-ready cut to the remaining 100, split 3:1 (rounded up).
        let mut s = vec![
            EndpointSubset {
                addresses: many(500, "a"),
                not_ready_addresses: many(300, "b"),
                ports: None,
            },
            EndpointSubset {
                addresses: many(400, "c"),
                not_ready_addresses: many(100, "d"),
                ports: None,
            },
        ];
        assert!(truncate(&mut s));
        let n = |v: &Option<Vec<EndpointAddress>>| v.as_ref().map_or(0, Vec::len);
        assert_eq!(
            s.iter()
                .map(|x| (n(&x.addresses), n(&x.not_ready_addresses)))
                .collect::<Vec<_>>(),
            [(500, 75), (400, 25)]
        );

        // Ready alone too many: ready cut in proportion, not-ready dropped.
        let mut s = vec![
            EndpointSubset {
                addresses: many(900, "a"),
                not_ready_addresses: many(10, "b"),
                ports: None,
            },
            EndpointSubset {
                addresses: many(600, "c"),
                not_ready_addresses: None,
                ports: None,
            },
        ];
        assert!(truncate(&mut s));
        assert_eq!(
            s.iter()
                .map(|x| (n(&x.addresses), n(&x.not_ready_addresses)))
                .collect::<Vec<_>>(),
            [(600, 0), (400, 0)]
        );
    }

    #[test]
    fn normalization_ignores_server_defaults() {
        let svc = service(&[("http", 80, IntOrString::String("http".into()))]);
        let ours = repack(entries(&svc, &[Arc::new(pod("a", "10.0.0.1", true))]));
        let mut theirs = ours.clone();
        theirs[0].not_ready_addresses = Some(vec![]);
        theirs[0].addresses.as_mut().unwrap()[0]
            .target_ref
            .as_mut()
            .unwrap()
            .resource_version = Some("17".into());
        assert_eq!(normalized(Some(&theirs)), normalized(Some(&ours)));
        assert_eq!(normalized(Some(&ours)), ours);
    }
}
