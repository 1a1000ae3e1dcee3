//! networking.k8s.io/v1 NetworkPolicies: `policyTypes` defaults to Ingress (plus Egress when
//! egress rules exist), port protocols to TCP; ports, peers and IP blocks are validated as
//! upstream does. The generation tracks spec changes.

use std::sync::Arc;

use api::resources::ResourceInfo;
use api::validation::{FieldError, Path};
use k8s_openapi::api::networking::v1::{
    IPBlock, NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::DynStrategy;
use crate::core::common::{self, go, net, selectors};
use crate::strategy::{Adapter, Strategy};

pub fn strategy(info: &'static ResourceInfo) -> Arc<dyn DynStrategy> {
    Arc::new(Adapter::new(info, NetworkPolicies))
}

struct NetworkPolicies;

fn validate_port(port: &NetworkPolicyPort, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Some(proto) = port.protocol.as_deref()
        && !matches!(proto, "TCP" | "UDP" | "SCTP")
    {
        errs.push(FieldError::not_supported(
            path.child("protocol"),
            proto,
            &["TCP", "UDP", "SCTP"],
        ));
    }
    match &port.port {
        Some(IntOrString::Int(n)) => {
            if let Some(m) = common::port_num(*n) {
                errs.push(FieldError::invalid(path.child("port"), *n, m));
            }
        }
        Some(IntOrString::String(s)) => {
            errs.extend(api::validation::errors_for(
                &path.child("port"),
                s,
                common::port_name(s),
            ));
        }
        None => {}
    }
    if let Some(end) = port.end_port {
        match &port.port {
            None => errs.push(FieldError::required(
                path.child("port"),
                "must be specified when endPort is specified",
            )),
            Some(IntOrString::String(_)) => errs.push(FieldError::forbidden(
                path.child("endPort"),
                "may not be specified when port is non-numeric",
            )),
            Some(IntOrString::Int(n)) if end < *n => errs.push(FieldError::invalid(
                path.child("endPort"),
                end,
                "must be greater than or equal to `port`",
            )),
            Some(IntOrString::Int(_)) => {}
        }
        if let Some(m) = common::port_num(end) {
            errs.push(FieldError::invalid(path.child("endPort"), end, m));
        }
    }
    errs
}

fn validate_ip_block(b: &IPBlock, path: &Path) -> Vec<FieldError> {
    if b.cidr.is_empty() {
        return vec![FieldError::required(path.child("cidr"), "")];
    }
    let mut errs = net::validate_cidr(&path.child("cidr"), &b.cidr);
    let Some((ip, prefix)) = net::parse_cidr(&b.cidr) else {
        return errs;
    };
    for (i, ex) in b.except.iter().flatten().enumerate() {
        let p = path.child("except").index(i);
        errs.extend(net::validate_cidr(&p, ex));
        let Some((eip, eprefix)) = net::parse_cidr(ex) else {
            continue;
        };
        if !contains(ip, prefix, eip) || prefix >= eprefix {
            errs.push(FieldError::invalid(
                p,
                ex.as_str(),
                "must be a strict subset of `cidr`",
            ));
        }
    }
    errs
}

fn contains(net: std::net::IpAddr, prefix: u8, ip: std::net::IpAddr) -> bool {
    use std::net::IpAddr;
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) => {
            let mask = if prefix == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(prefix))
            };
            u32::from(n) & mask == u32::from(i) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(i)) => {
            let mask = if prefix == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(prefix))
            };
            u128::from(n) & mask == u128::from(i) & mask
        }
        _ => false,
    }
}

fn validate_peer(peer: &NetworkPolicyPeer, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut count = 0;
    if let Some(s) = &peer.pod_selector {
        count += 1;
        errs.extend(selectors::label_selector(s, &path.child("podSelector")));
    }
    if let Some(s) = &peer.namespace_selector {
        count += 1;
        errs.extend(selectors::label_selector(
            s,
            &path.child("namespaceSelector"),
        ));
    }
    if let Some(b) = &peer.ip_block {
        count += 1;
        errs.extend(validate_ip_block(b, &path.child("ipBlock")));
    }
    if count == 0 {
        errs.push(FieldError::required(path, "must specify a peer"));
    } else if count > 1 && peer.ip_block.is_some() {
        errs.push(FieldError::forbidden(
            path,
            "may not specify both ipBlock and another peer",
        ));
    }
    errs
}

impl Strategy for NetworkPolicies {
    type Object = NetworkPolicy;

    fn tracks_generation(&self) -> bool {
        true
    }

    fn set_defaults(&self, np: &mut NetworkPolicy) {
        let spec = np.spec.get_or_insert_with(Default::default);
        // A Go struct, not a pointer, upstream: an omitted selector reads back as `{}`.
        spec.pod_selector.get_or_insert_with(Default::default);
        let rules_ports = spec
            .ingress
            .iter_mut()
            .flatten()
            .flat_map(|r| r.ports.iter_mut().flatten())
            .chain(
                spec.egress
                    .iter_mut()
                    .flatten()
                    .flat_map(|r| r.ports.iter_mut().flatten()),
            );
        for p in rules_ports {
            p.protocol.get_or_insert_with(|| "TCP".to_string());
        }
        if spec.policy_types.as_ref().is_none_or(|t| t.is_empty()) {
            let mut types = vec!["Ingress".to_string()];
            if spec.egress.as_ref().is_some_and(|e| !e.is_empty()) {
                types.push("Egress".to_string());
            }
            spec.policy_types = Some(types);
        }
    }

    fn validate(&self, np: &NetworkPolicy) -> Vec<FieldError> {
        let mut errs = Vec::new();
        let p = Path::new("spec");
        let spec = np.spec.clone().unwrap_or_default();
        if let Some(sel) = &spec.pod_selector {
            errs.extend(selectors::label_selector(sel, &p.child("podSelector")));
        }
        for (i, rule) in spec.ingress.iter().flatten().enumerate() {
            let rp = p.child("ingress").index(i);
            for (j, port) in rule.ports.iter().flatten().enumerate() {
                errs.extend(validate_port(port, &rp.child("ports").index(j)));
            }
            for (j, peer) in rule.from.iter().flatten().enumerate() {
                errs.extend(validate_peer(peer, &rp.child("from").index(j)));
            }
        }
        for (i, rule) in spec.egress.iter().flatten().enumerate() {
            let rp = p.child("egress").index(i);
            for (j, port) in rule.ports.iter().flatten().enumerate() {
                errs.extend(validate_port(port, &rp.child("ports").index(j)));
            }
            for (j, peer) in rule.to.iter().flatten().enumerate() {
                errs.extend(validate_peer(peer, &rp.child("to").index(j)));
            }
        }
        let types = spec.policy_types.as_deref().unwrap_or(&[]);
        if types.len() > 2 {
            errs.push(common::invalid_raw(
                p.child("policyTypes"),
                format!("&{}", go::str_slice("networking.PolicyType", Some(types))),
                "may not specify more than two policyTypes",
            ));
            return errs;
        }
        for (i, t) in types.iter().enumerate() {
            if !matches!(t.as_str(), "Ingress" | "Egress") {
                errs.push(FieldError::not_supported(
                    p.child("policyTypes").index(i),
                    t.as_str(),
                    &["Ingress", "Egress"],
                ));
            }
        }
        errs
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests a failed unwrap is a failed assertion
mod tests {
    use super::*;
    use crate::core::testing::*;
    use serde_json::json;

    fn s() -> Arc<dyn DynStrategy> {
        strategy(api::resources::lookup("networking.k8s.io", "v1", "networkpolicies").unwrap())
    }

    #[test]
    fn defaults() {
        let out = create(
            &*s(),
            json!({"metadata": {"name": "np", "namespace": "a"}, "spec": {"podSelector": {},
                "egress": [{"ports": [{"port": 53}]}]}}),
        )
        .unwrap();
        assert_eq!(out["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
        assert_eq!(out["spec"]["egress"][0]["ports"][0]["protocol"], "TCP");
        assert_eq!(out["metadata"]["generation"], 1);
        let ingress_only = create(
            &*s(),
            json!({"metadata": {"name": "np", "namespace": "a"}, "spec": {"podSelector": {}}}),
        )
        .unwrap();
        assert_eq!(ingress_only["spec"]["policyTypes"], json!(["Ingress"]));
    }

    #[test]
    fn peers_and_ports() {
        assert_eq!(
            create_err(
                &*s(),
                json!({"metadata": {"name": "np", "namespace": "a"}, "spec": {"podSelector": {},
                    "ingress": [{"from": [{}, {"ipBlock": {"cidr": "10.0.0.0/8", "except": ["192.168.0.0/16"]},
                                 "podSelector": {}}],
                                 "ports": [{"port": 80, "endPort": 79}, {"port": "http", "endPort": 90}]}],
                    "policyTypes": ["Ingress", "Sideways"]}})
            ),
            [
                "spec.ingress[0].ports[0].endPort: Invalid value: 79: must be greater than or equal to `port`",
                "spec.ingress[0].ports[1].endPort: Forbidden: may not be specified when port is non-numeric",
                "spec.ingress[0].from[0]: Required value: must specify a peer",
                "spec.ingress[0].from[1].ipBlock.except[0]: Invalid value: \"192.168.0.0/16\": must be a strict subset of `cidr`",
                "spec.ingress[0].from[1]: Forbidden: may not specify both ipBlock and another peer",
                "spec.policyTypes[1]: Unsupported value: \"Sideways\": supported values: \"Ingress\", \"Egress\"",
            ]
        );
    }
}
