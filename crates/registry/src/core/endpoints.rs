//! Endpoints: protocol defaulting, address and port validation, and upstream's canonical
//! packing of subsets (`RepackSubsets`): every address appears once per distinct port set,
//! ready beats not-ready, and addresses and subsets come out in a stable order.
//!
//! Upstream orders ports and subsets by a hash of their contents; here they are ordered by
//! their values (ports by name, number, protocol; subsets by their first address), which is
//! equally stable but not the same permutation.

use std::collections::BTreeMap;
use std::sync::Arc;

use api::resources::ResourceInfo;
use api::validation::{FieldError, Path};
use k8s_openapi::api::core::v1::{EndpointAddress, EndpointPort, EndpointSubset, Endpoints};

use crate::DynStrategy;
use crate::core::common::{self, net};
use crate::strategy::{Adapter, Strategy};

pub fn strategy(info: &'static ResourceInfo) -> Arc<dyn DynStrategy> {
    Arc::new(Adapter::new(info, EndpointsStrategy))
}

struct EndpointsStrategy;

type PortKey = (String, i32, String, Option<String>);
/// An address by IP and target UID.
type AddressKey = (String, String);
/// The addresses (and their readiness) a set of ports is offered on.
type AddressSet = Vec<(AddressKey, bool)>;

fn port_key(p: &EndpointPort) -> PortKey {
    (
        p.name.clone().unwrap_or_default(),
        p.port,
        p.protocol.clone().unwrap_or_default(),
        p.app_protocol.clone(),
    )
}

fn address_key(a: &EndpointAddress) -> AddressKey {
    (
        a.ip.clone(),
        a.target_ref
            .as_ref()
            .and_then(|r| r.uid.clone())
            .unwrap_or_default(),
    )
}

/// Upstream's `RepackSubsets`.
pub fn repack(subsets: Vec<EndpointSubset>) -> Vec<EndpointSubset> {
    // The first copy of each address (by IP and target UID) is the one kept.
    let mut addrs: BTreeMap<AddressKey, EndpointAddress> = BTreeMap::new();
    // port (None: the sentinel for subsets without ports) → address → ready.
    let mut by_port: BTreeMap<Option<PortKey>, BTreeMap<AddressKey, bool>> = BTreeMap::new();
    let mut port_values: BTreeMap<PortKey, EndpointPort> = BTreeMap::new();
    for ss in &subsets {
        let ports: Vec<Option<PortKey>> = match ss.ports.as_deref() {
            None | Some([]) => vec![None],
            Some(ps) => ps
                .iter()
                .map(|p| {
                    let k = port_key(p);
                    port_values.entry(k.clone()).or_insert_with(|| p.clone());
                    Some(k)
                })
                .collect(),
        };
        for port in ports {
            let entry = by_port.entry(port).or_default();
            let ready = ss.addresses.iter().flatten().map(|a| (a, true));
            let not_ready = ss.not_ready_addresses.iter().flatten().map(|a| (a, false));
            for (a, is_ready) in ready.chain(not_ready) {
                let k = address_key(a);
                addrs.entry(k.clone()).or_insert_with(|| a.clone());
                let r = entry.entry(k).or_insert(is_ready);
                *r |= is_ready;
            }
        }
    }
    // Group ports by the exact set of (address, readiness) they are offered on.
    let mut groups: BTreeMap<AddressSet, Vec<EndpointPort>> = BTreeMap::new();
    for (port, set) in by_port {
        let key: Vec<_> = set.into_iter().collect();
        let ports = groups.entry(key).or_default();
        if let Some(k) = port
            && let Some(p) = port_values.get(&k)
        {
            ports.push(p.clone());
        }
    }
    groups
        .into_iter()
        .map(|(set, ports)| {
            let pick = |want: bool| -> Option<Vec<EndpointAddress>> {
                let v: Vec<EndpointAddress> = set
                    .iter()
                    .filter(|(_, ready)| *ready == want)
                    .filter_map(|(k, _)| addrs.get(k).cloned())
                    .collect();
                (!v.is_empty()).then_some(v)
            };
            EndpointSubset {
                addresses: pick(true),
                not_ready_addresses: pick(false),
                ports: (!ports.is_empty()).then_some(ports),
            }
        })
        .collect()
}

fn validate_address(a: &EndpointAddress, path: &Path) -> Vec<FieldError> {
    let mut errs = net::validate_ip(&path.child("ip"), &a.ip);
    if let Some(h) = a.hostname.as_deref().filter(|h| !h.is_empty()) {
        errs.extend(common::dns_label(&path.child("hostname"), h));
    }
    if let Some(n) = &a.node_name {
        errs.extend(common::dns_subdomain(&path.child("nodeName"), n));
    }
    errs.extend(net::validate_non_special_ip(&path.child("ip"), &a.ip));
    errs
}

fn validate_port(p: &EndpointPort, require_name: bool, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let name = p.name.as_deref().unwrap_or("");
    if require_name && name.is_empty() {
        errs.push(FieldError::required(path.child("name"), ""));
    } else if !name.is_empty() {
        errs.extend(common::dns_label(&path.child("name"), name));
    }
    if let Some(m) = common::port_num(p.port) {
        errs.push(FieldError::invalid(path.child("port"), p.port, m));
    }
    match p.protocol.as_deref().unwrap_or("") {
        "" => errs.push(FieldError::required(path.child("protocol"), "")),
        "TCP" | "UDP" | "SCTP" => {}
        other => errs.push(FieldError::not_supported(
            path.child("protocol"),
            other,
            &["SCTP", "TCP", "UDP"],
        )),
    }
    if let Some(ap) = &p.app_protocol {
        errs.extend(common::qualified_name(&path.child("appProtocol"), ap));
    }
    errs
}

impl Strategy for EndpointsStrategy {
    type Object = Endpoints;

    fn allow_create_on_update(&self) -> bool {
        true
    }

    fn set_defaults(&self, ep: &mut Endpoints) {
        for ss in ep.subsets.iter_mut().flatten() {
            for p in ss.ports.iter_mut().flatten() {
                if p.protocol.as_deref().unwrap_or("").is_empty() {
                    p.protocol = Some("TCP".to_string());
                }
            }
        }
    }

    fn validate(&self, ep: &Endpoints) -> Vec<FieldError> {
        let mut errs = Vec::new();
        let root = Path::new("subsets");
        for (i, ss) in ep.subsets.iter().flatten().enumerate() {
            let p = root.index(i);
            let ready = ss.addresses.as_deref().unwrap_or(&[]);
            let not_ready = ss.not_ready_addresses.as_deref().unwrap_or(&[]);
            if ready.is_empty() && not_ready.is_empty() {
                errs.push(FieldError::required(
                    &p,
                    "must specify `addresses` or `notReadyAddresses`",
                ));
            }
            for (j, a) in ready.iter().enumerate() {
                errs.extend(validate_address(a, &p.child("addresses").index(j)));
            }
            for (j, a) in not_ready.iter().enumerate() {
                errs.extend(validate_address(a, &p.child("notReadyAddresses").index(j)));
            }
            let ports = ss.ports.as_deref().unwrap_or(&[]);
            for (j, port) in ports.iter().enumerate() {
                errs.extend(validate_port(
                    port,
                    ports.len() > 1,
                    &p.child("ports").index(j),
                ));
            }
        }
        errs
    }

    fn before_write(
        &self,
        ep: &mut Endpoints,
        _old: Option<&Endpoints>,
        _dry_run: bool,
    ) -> Result<(), api::ApiError> {
        // Upstream's Canonicalize: runs after validation, on every write.
        if let Some(subsets) = ep.subsets.take() {
            ep.subsets = Some(repack(subsets));
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests a failed unwrap is a failed assertion
mod tests {
    use super::*;
    use crate::core::testing::*;
    use serde_json::json;

    fn s() -> Arc<dyn DynStrategy> {
        strategy(api::resources::lookup("", "v1", "endpoints").unwrap())
    }

    fn ep(subsets: serde_json::Value) -> serde_json::Value {
        json!({"metadata": {"name": "web", "namespace": "default"}, "subsets": subsets})
    }

    #[test]
    fn repacks_subsets() {
        let out = create(
            &*s(),
            ep(json!([
                {"addresses": [{"ip": "10.0.0.2"}], "ports": [{"name": "http", "port": 80}]},
                {"addresses": [{"ip": "10.0.0.1"}], "notReadyAddresses": [{"ip": "10.0.0.2"}],
                 "ports": [{"name": "http", "port": 80}]},
                {"addresses": [{"ip": "10.0.0.3"}], "ports": [{"name": "metrics", "port": 9090}]},
            ])),
        )
        .unwrap();
        assert_eq!(
            out["subsets"],
            json!([
                {"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}],
                 "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]},
                {"addresses": [{"ip": "10.0.0.3"}],
                 "ports": [{"name": "metrics", "port": 9090, "protocol": "TCP"}]},
            ])
        );
        assert!(s().allow_create_on_update());
    }

    #[test]
    fn validation() {
        assert_eq!(
            create_err(
                &*s(),
                ep(json!([
                    {"ports": [{"port": 80}]},
                    {"addresses": [{"ip": "127.0.0.1", "hostname": "A"}],
                     "ports": [{"port": 0, "protocol": "X"}, {"name": "b", "port": 1}]},
                ]))
            ),
            [
                "subsets[0]: Required value: must specify `addresses` or `notReadyAddresses`",
                "subsets[1].addresses[0].hostname: Invalid value: \"A\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
                "subsets[1].addresses[0].ip: Invalid value: \"127.0.0.1\": may not be in the loopback range (127.0.0.0/8, ::1/128)",
                "subsets[1].ports[0].name: Required value",
                "subsets[1].ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive",
                "subsets[1].ports[0].protocol: Unsupported value: \"X\": supported values: \"SCTP\", \"TCP\", \"UDP\"",
            ]
        );
    }
}
