//! discovery.k8s.io/v1 EndpointSlices: `addressType` required on create and immutable; each
//! endpoint has addresses of that type; ports are named uniquely with a known protocol
//! (defaults: empty name, TCP). The generation tracks changes; create-on-update is allowed.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;

use api::resources::ResourceInfo;
use api::validation::{self, FieldError, Path};
use k8s_openapi::api::discovery::v1::EndpointSlice;

use crate::DynStrategy;
use crate::core::common::{self, go, net};
use crate::strategy::{Adapter, Strategy};

const MAX_TOPOLOGY_LABELS: usize = 16;
const MAX_ADDRESSES: usize = 100;
const MAX_PORTS: usize = 20000;
const MAX_ENDPOINTS: usize = 1000;
const MAX_ZONE_HINTS: usize = 8;
const ADDRESS_TYPES: &[&str] = &["FQDN", "IPv4", "IPv6"];

pub fn strategy(info: &'static ResourceInfo) -> Arc<dyn DynStrategy> {
    Arc::new(Adapter::new(info, EndpointSlices))
}

struct EndpointSlices;

/// Upstream's `IsFullyQualifiedDomainName`.
fn fqdn(path: &Path, name: &str) -> Vec<FieldError> {
    if name.is_empty() {
        return vec![FieldError::required(path, "")];
    }
    let name = name.strip_suffix('.').unwrap_or(name);
    let errs = validation::dns1123_subdomain(name);
    if !errs.is_empty() {
        return vec![FieldError::invalid(path, name, errs.join(","))];
    }
    if name.split('.').count() < 2 {
        return vec![FieldError::invalid(
            path,
            name,
            "should be a domain with at least two segments separated by dots",
        )];
    }
    for label in name.split('.') {
        let errs = validation::dns1123_label(label);
        if !errs.is_empty() {
            return vec![FieldError::invalid(path, label, errs.join(","))];
        }
    }
    Vec::new()
}

fn validate_address(addr_type: &str, path: &Path, a: &str) -> Vec<FieldError> {
    let ip = net::parse_ip(a);
    match addr_type {
        "IPv4" => match ip {
            Some(IpAddr::V4(_)) => net::validate_non_special_ip(path, a),
            _ => vec![FieldError::invalid(path, a, "must be a valid IPv4 address")],
        },
        "IPv6" => match ip {
            Some(IpAddr::V6(_)) => net::validate_non_special_ip(path, a),
            _ => vec![FieldError::invalid(path, a, "must be a valid IPv6 address")],
        },
        "FQDN" => fqdn(path, a),
        _ => Vec::new(),
    }
}

fn validate_slice(es: &EndpointSlice) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let ep_path = Path::new("endpoints");
    if es.endpoints.len() > MAX_ENDPOINTS {
        errs.push(FieldError::too_many(&ep_path, MAX_ENDPOINTS));
    } else {
        for (i, ep) in es.endpoints.iter().enumerate() {
            let p = ep_path.index(i);
            let ap = p.child("addresses");
            if ep.addresses.is_empty() {
                errs.push(FieldError::required(&ap, "must contain at least 1 address"));
            } else if ep.addresses.len() > MAX_ADDRESSES {
                errs.push(FieldError::too_many(&ap, MAX_ADDRESSES));
            }
            for (j, a) in ep.addresses.iter().enumerate() {
                errs.extend(validate_address(&es.address_type, &ap.index(j), a));
            }
            if let Some(n) = &ep.node_name {
                errs.extend(common::dns_subdomain(&p.child("nodeName"), n));
            }
            let tp = p.child("deprecatedTopology");
            if let Some(topo) = &ep.deprecated_topology {
                if topo.len() > MAX_TOPOLOGY_LABELS {
                    errs.push(FieldError::too_many(&tp, MAX_TOPOLOGY_LABELS));
                }
                errs.extend(validation::validate_labels(topo, &tp));
            }
            if let Some(z) = &ep.zone {
                errs.extend(common::dns_label(&p.child("zone"), z));
            }
            if let Some(h) = &ep.hostname {
                errs.extend(common::dns_label(&p.child("hostname"), h));
            }
            if let Some(hints) = &ep.hints {
                let fz = p.child("hints").child("forZones");
                let zones = hints.for_zones.as_deref().unwrap_or(&[]);
                if zones.len() > MAX_ZONE_HINTS {
                    errs.push(FieldError::too_many(&fz, MAX_ZONE_HINTS));
                } else {
                    let mut seen = HashSet::new();
                    for (j, z) in zones.iter().enumerate() {
                        let zp = fz.index(j).child("name");
                        if !seen.insert(&z.name) {
                            errs.push(FieldError::duplicate(&zp, z.name.as_str()));
                        }
                        errs.extend(common::label_value(&zp, &z.name));
                    }
                }
            }
        }
    }
    let ports = es.ports.as_deref().unwrap_or(&[]);
    let port_path = Path::new("ports");
    if ports.len() > MAX_PORTS {
        errs.push(FieldError::too_many(&port_path, MAX_PORTS));
        return errs;
    }
    let mut names = HashSet::new();
    for (i, port) in ports.iter().enumerate() {
        let p = port_path.index(i);
        let name = port.name.as_deref().unwrap_or("");
        if !name.is_empty() {
            errs.extend(common::dns_label(&p.child("name"), name));
        }
        if !names.insert(name) {
            // Upstream passes the *string pointer, which prints as the string.
            errs.push(common::duplicate_raw(p.child("name"), go::quote(name)));
        }
        match port.protocol.as_deref() {
            None => errs.push(FieldError::required(p.child("protocol"), "")),
            Some("TCP" | "UDP" | "SCTP") => {}
            Some(other) => errs.push(FieldError::not_supported(
                p.child("protocol"),
                other,
                &["SCTP", "TCP", "UDP"],
            )),
        }
        if let Some(ap) = &port.app_protocol {
            errs.extend(common::qualified_name(&p.child("appProtocol"), ap));
        }
    }
    errs
}

impl Strategy for EndpointSlices {
    type Object = EndpointSlice;

    fn tracks_generation(&self) -> bool {
        true
    }

    fn allow_create_on_update(&self) -> bool {
        true
    }

    fn set_defaults(&self, es: &mut EndpointSlice) {
        for p in es.ports.iter_mut().flatten() {
            p.name.get_or_insert_with(String::new);
            p.protocol.get_or_insert_with(|| "TCP".to_string());
        }
    }

    fn validate(&self, es: &EndpointSlice) -> Vec<FieldError> {
        // An unusable address type makes every address check meaningless.
        match es.address_type.as_str() {
            "" => return vec![FieldError::required("addressType", "")],
            t if !ADDRESS_TYPES.contains(&t) => {
                return vec![FieldError::not_supported("addressType", t, ADDRESS_TYPES)];
            }
            _ => {}
        }
        validate_slice(es)
    }

    fn validate_update(&self, new: &EndpointSlice, old: &EndpointSlice) -> Vec<FieldError> {
        let mut errs = validate_slice(new);
        if new.address_type != old.address_type {
            errs.push(common::immutable(
                "addressType",
                go::quote(&new.address_type),
            ));
        }
        errs
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests a failed unwrap is a failed assertion
mod tests {
    use super::*;
    use crate::core::testing::*;
    use serde_json::{Value, json};

    fn s() -> Arc<dyn DynStrategy> {
        strategy(api::resources::lookup("discovery.k8s.io", "v1", "endpointslices").unwrap())
    }

    fn es(extra: Value) -> Value {
        merged(
            &json!({"metadata": {"name": "web-abc", "namespace": "a"}, "endpoints": []}),
            extra,
        )
    }

    #[test]
    fn slices() {
        let out = create(
            &*s(),
            es(json!({"addressType": "IPv4", "endpoints": [{"addresses": ["10.42.0.5"]}], "ports": [{"port": 80}]})),
        )
        .unwrap();
        assert_eq!(
            out["ports"],
            json!([{"name": "", "port": 80, "protocol": "TCP"}])
        );
        assert_eq!(out["metadata"]["generation"], 1);
        assert!(s().allow_create_on_update());
        assert_eq!(
            create_err(&*s(), es(json!({}))),
            ["addressType: Required value"]
        );
        assert_eq!(
            create_err(&*s(), es(json!({"addressType": "IPv5"}))),
            [
                "addressType: Unsupported value: \"IPv5\": supported values: \"FQDN\", \"IPv4\", \"IPv6\""
            ]
        );
        assert_eq!(
            create_err(
                &*s(),
                es(
                    json!({"addressType": "IPv4", "endpoints": [{"addresses": []}, {"addresses": ["fd00::1", "127.0.0.1"]}],
                    "ports": [{"name": "http", "port": 80}, {"name": "http", "port": 81, "protocol": "ICMP"}]})
                )
            ),
            [
                "endpoints[0].addresses: Required value: must contain at least 1 address",
                "endpoints[1].addresses[0]: Invalid value: \"fd00::1\": must be a valid IPv4 address",
                "endpoints[1].addresses[1]: Invalid value: \"127.0.0.1\": may not be in the loopback range (127.0.0.0/8, ::1/128)",
                "ports[1].name: Duplicate value: \"http\"",
                "ports[1].protocol: Unsupported value: \"ICMP\": supported values: \"SCTP\", \"TCP\", \"UDP\"",
            ]
        );
        assert_eq!(
            update_err(
                &*s(),
                merged(
                    &out,
                    json!({"addressType": "IPv6", "endpoints": [{"addresses": ["fd00::1"]}]})
                ),
                &out
            ),
            ["addressType: Invalid value: \"IPv6\": field is immutable"]
        );
    }
}
