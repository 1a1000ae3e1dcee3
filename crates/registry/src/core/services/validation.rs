//! Upstream's `ValidateService`, `ValidateServiceUpdate` and `ValidateServiceStatusUpdate`.
//!
//! One deliberate difference: upstream allocates before it validates, so it requires
//! `spec.healthCheckNodePort` to be set. Here allocation runs after validation (see
//! `before_write`), so a zero health-check port is accepted and filled in afterwards.

use std::collections::HashSet;

use api::validation::{self, FieldError, Path};
use k8s_openapi::api::core::v1::{Service, ServicePort};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::fields::*;
use crate::core::common::{self, go, net};

const KUBELET_PORT: i32 = 10250;
const MAX_AFFINITY_SECONDS: i32 = 86400;

fn spec_path() -> Path {
    Path::new("spec")
}

/// Go's `%#v` of an internal `core.ServicePort` holding only protocol and port (or node port),
/// as upstream reports duplicates.
fn go_port_key(protocol: &str, port: i32, node_port: i32) -> String {
    format!(
        "core.ServicePort{{Name:\"\", Protocol:{}, AppProtocol:(*string)(nil), Port:{port}, TargetPort:intstr.IntOrString{{Type:0, IntVal:0, StrVal:\"\"}}, NodePort:{node_port}}}",
        go::quote(protocol)
    )
}

pub fn validate(svc: &Service) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let spec_p = spec_path();
    let s = spec(svc);
    let ty = type_(svc);
    let ports = ports(svc);
    let headless = is_headless(svc);

    let annotations = svc.metadata.annotations.as_ref();
    let hints = annotations.and_then(|a| a.get("service.kubernetes.io/topology-aware-hints"));
    let mode = annotations.and_then(|a| a.get("service.kubernetes.io/topology-mode"));
    if let (Some(h), Some(m)) = (hints, mode)
        && h != m
    {
        errs.push(FieldError::invalid(
                Path::new("metadata")
                    .child("annotations")
                    .key("service.kubernetes.io/topology-mode"),
                m.as_str(),
                "must match annotations[service.kubernetes.io/topology-aware-hints] when both are specified",
            ));
    }

    if ports.is_empty() && !headless && ty != EXTERNAL_NAME {
        errs.push(FieldError::required(spec_p.child("ports"), ""));
    }
    match ty {
        LOAD_BALANCER => {
            for (i, p) in ports.iter().enumerate() {
                if p.port == KUBELET_PORT {
                    errs.push(FieldError::invalid(
                        spec_p.child("ports").index(i),
                        p.port,
                        format!("may not expose port {KUBELET_PORT} externally since it is used by kubelet"),
                    ));
                }
            }
            if headless {
                errs.push(FieldError::invalid(
                    spec_p.child("clusterIPs").index(0),
                    NONE,
                    "may not be set to 'None' for LoadBalancer services",
                ));
            }
        }
        NODE_PORT if headless => errs.push(FieldError::invalid(
            spec_p.child("clusterIPs").index(0),
            NONE,
            "may not be set to 'None' for NodePort services",
        )),
        EXTERNAL_NAME => {
            const MSG: &str = "may not be set for ExternalName services";
            if !cluster_ips(svc).is_empty() {
                errs.push(FieldError::forbidden(spec_p.child("clusterIPs"), MSG));
            }
            if !families(svc).is_empty() {
                errs.push(FieldError::forbidden(spec_p.child("ipFamilies"), MSG));
            }
            if policy(svc).is_some() {
                errs.push(FieldError::forbidden(spec_p.child("ipFamilyPolicy"), MSG));
            }
            let name = s.external_name.as_deref().unwrap_or("");
            let cname = name.strip_suffix('.').unwrap_or(name);
            if cname.is_empty() {
                errs.push(FieldError::required(spec_p.child("externalName"), ""));
            } else {
                errs.extend(common::dns_subdomain(&spec_p.child("externalName"), cname));
            }
        }
        _ => {}
    }

    let mut names = HashSet::new();
    for (i, p) in ports.iter().enumerate() {
        errs.extend(validate_port(
            p,
            ports.len() > 1,
            &mut names,
            &spec_p.child("ports").index(i),
        ));
    }

    if let Some(selector) = &s.selector {
        errs.extend(validation::validate_labels(
            selector,
            &spec_p.child("selector"),
        ));
    }

    match s.session_affinity.as_deref().unwrap_or("") {
        "" => errs.push(FieldError::required(spec_p.child("sessionAffinity"), "")),
        "ClientIP" => errs.extend(client_ip_affinity(
            svc,
            &spec_p.child("sessionAffinityConfig"),
        )),
        "None" => {
            if s.session_affinity_config.is_some() {
                errs.push(FieldError::forbidden(
                    spec_p.child("sessionAffinityConfig"),
                    "must not be set when session affinity is None",
                ));
            }
        }
        other => errs.push(FieldError::not_supported(
            spec_p.child("sessionAffinity"),
            other,
            &["ClientIP", "None"],
        )),
    }

    errs.extend(cluster_ip_fields(svc));

    for (i, ip) in s.external_ips.iter().flatten().enumerate() {
        let p = spec_p.child("externalIPs").index(i);
        let e = net::validate_ip(&p, ip);
        if e.is_empty() {
            errs.extend(net::validate_non_special_ip(&p, ip));
        } else {
            errs.extend(e);
        }
    }

    match ty {
        "" => errs.push(FieldError::required(spec_p.child("type"), "")),
        CLUSTER_IP | NODE_PORT | LOAD_BALANCER | EXTERNAL_NAME => {}
        other => errs.push(FieldError::not_supported(
            spec_p.child("type"),
            other,
            &[CLUSTER_IP, EXTERNAL_NAME, LOAD_BALANCER, NODE_PORT],
        )),
    }

    if ty == CLUSTER_IP {
        for (i, p) in ports.iter().enumerate() {
            if node_port(p) != 0 {
                errs.push(FieldError::forbidden(
                    spec_p.child("ports").index(i).child("nodePort"),
                    "may not be used when `type` is 'ClusterIP'",
                ));
            }
        }
    }

    let mut node_ports = HashSet::new();
    for (i, p) in ports.iter().enumerate() {
        let np = node_port(p);
        if np == 0 {
            continue;
        }
        let proto = p.protocol.as_deref().unwrap_or("");
        if !node_ports.insert((proto, np)) {
            errs.push(FieldError::duplicate(
                spec_p.child("ports").index(i).child("nodePort"),
                np,
            ));
        }
    }
    let mut port_keys = HashSet::new();
    for (i, p) in ports.iter().enumerate() {
        let proto = p.protocol.as_deref().unwrap_or("");
        if !port_keys.insert((proto, p.port)) {
            errs.push(common::duplicate_raw(
                spec_p.child("ports").index(i),
                go_port_key(proto, p.port, 0),
            ));
        }
    }

    const LB_ONLY: &str = "may only be used when `type` is 'LoadBalancer'";
    let ranges = s.load_balancer_source_ranges.as_deref().unwrap_or(&[]);
    let ranges_annotation =
        annotations.and_then(|a| a.get("service.beta.kubernetes.io/load-balancer-source-ranges"));
    if !ranges.is_empty() {
        // Upstream's path really is capitalised this way.
        let p = spec_p.child("LoadBalancerSourceRanges");
        if ty != LOAD_BALANCER {
            errs.push(FieldError::forbidden(&p, LB_ONLY));
        }
        for (i, r) in ranges.iter().enumerate() {
            errs.extend(net::validate_cidr(&p.index(i), r.trim()));
        }
    } else if let Some(v) = ranges_annotation {
        let p = Path::new("metadata")
            .child("annotations")
            .key("service.beta.kubernetes.io/load-balancer-source-ranges");
        if ty != LOAD_BALANCER {
            errs.push(FieldError::forbidden(&p, LB_ONLY));
        }
        let v = v.trim();
        if !v.is_empty() {
            for r in v.split(',') {
                errs.extend(net::validate_cidr(&p, r.trim()));
            }
        }
    }

    if s.allocate_load_balancer_node_ports.is_some() && ty != LOAD_BALANCER {
        errs.push(FieldError::forbidden(
            spec_p.child("allocateLoadBalancerNodePorts"),
            LB_ONLY,
        ));
    }
    if ty == LOAD_BALANCER && s.allocate_load_balancer_node_ports.is_none() {
        // Upstream's path lacks the `spec.` prefix.
        errs.push(FieldError::required("allocateLoadBalancerNodePorts", ""));
    }

    errs.extend(load_balancer_class(None, svc));
    errs.extend(external_traffic(svc));

    match s.internal_traffic_policy.as_deref() {
        None if matches!(ty, NODE_PORT | LOAD_BALANCER | CLUSTER_IP) => errs.push(
            FieldError::required(spec_p.child("internalTrafficPolicy"), ""),
        ),
        Some(p) if !matches!(p, "Cluster" | "Local") => errs.push(FieldError::not_supported(
            spec_p.child("internalTrafficPolicy"),
            p,
            &["Cluster", "Local"],
        )),
        _ => {}
    }
    if let Some(td) = s.traffic_distribution.as_deref()
        && td != "PreferClose"
    {
        errs.push(FieldError::not_supported(
            spec_p.child("trafficDistribution"),
            td,
            &["PreferClose"],
        ));
    }
    errs
}

fn validate_port(
    p: &ServicePort,
    require_name: bool,
    names: &mut HashSet<String>,
    path: &Path,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let name = p.name.as_deref().unwrap_or("");
    if require_name && name.is_empty() {
        errs.push(FieldError::required(path.child("name"), ""));
    } else if !name.is_empty() {
        errs.extend(common::dns_label(&path.child("name"), name));
        if !names.insert(name.to_string()) {
            errs.push(FieldError::duplicate(path.child("name"), name));
        }
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
    let target = p.target_port.clone().unwrap_or(IntOrString::Int(0));
    errs.extend(common::port_num_or_name(&target, &path.child("targetPort")));
    if let Some(ap) = &p.app_protocol {
        errs.extend(common::qualified_name(&path.child("appProtocol"), ap));
    }
    errs
}

fn client_ip_affinity(svc: &Service, path: &Path) -> Vec<FieldError> {
    let detail = "when session affinity type is ClientIP";
    let cfg = spec(svc).session_affinity_config.as_ref();
    match cfg {
        None => vec![FieldError::required(path, detail)],
        Some(c) => match &c.client_ip {
            None => vec![FieldError::required(path.child("clientIP"), detail)],
            Some(ip) => match ip.timeout_seconds {
                None => vec![FieldError::required(
                    path.child("clientIP").child("timeoutSeconds"),
                    detail,
                )],
                Some(t) if t <= 0 || t > MAX_AFFINITY_SECONDS => vec![FieldError::invalid(
                    path.child("clientIP").child("timeoutSeconds"),
                    t,
                    format!("must be greater than 0 and less than {MAX_AFFINITY_SECONDS}"),
                )],
                Some(_) => Vec::new(),
            },
        },
    }
}

/// Upstream's `ValidateServiceClusterIPsRelatedFields`.
pub fn cluster_ip_fields(svc: &Service) -> Vec<FieldError> {
    if type_(svc) == EXTERNAL_NAME {
        return Vec::new();
    }
    let mut errs = Vec::new();
    let spec_p = spec_path();
    let ips_p = spec_p.child("clusterIPs");
    let ips = cluster_ips(svc);
    let ips_go = go::strings(spec(svc).cluster_ips.as_deref());
    if !cluster_ip(svc).is_empty() {
        if ips.is_empty() {
            errs.push(FieldError::required(&ips_p, ""));
        } else if ips[0] != cluster_ip(svc) {
            errs.push(common::invalid_raw(
                &ips_p,
                &ips_go,
                "first value must match `clusterIP`",
            ));
        }
    } else if !ips.is_empty() {
        errs.push(common::invalid_raw(
            &ips_p,
            &ips_go,
            "must be empty when `clusterIP` is not specified",
        ));
    }

    let mut seen = HashSet::new();
    for (i, f) in families(svc).iter().enumerate() {
        let p = spec_p.child("ipFamilies").index(i);
        if !matches!(f.as_str(), IPV4 | IPV6) {
            errs.push(FieldError::not_supported(&p, f.as_str(), &[IPV4, IPV6]));
        }
        if !seen.insert(f.as_str()) {
            errs.push(FieldError::duplicate(&p, f.as_str()));
        }
    }
    if let Some(p) = policy(svc)
        && !matches!(p, SINGLE_STACK | PREFER_DUAL_STACK | REQUIRE_DUAL_STACK)
    {
        errs.push(FieldError::not_supported(
            spec_p.child("ipFamilyPolicy"),
            p,
            &[PREFER_DUAL_STACK, REQUIRE_DUAL_STACK, SINGLE_STACK],
        ));
    }

    let mut invalid_ips = false;
    for (i, ip) in ips.iter().enumerate() {
        if i == 0 && ip == NONE {
            if ips.len() > 1 {
                invalid_ips = true;
                errs.push(common::invalid_raw(
                    &ips_p,
                    &ips_go,
                    "'None' must be the first and only value",
                ));
            }
            continue;
        }
        let e = net::validate_ip(&ips_p.index(i), ip);
        invalid_ips |= !e.is_empty();
        errs.extend(e);
    }
    if ips.len() > 2 {
        errs.push(common::invalid_raw(
            &ips_p,
            &ips_go,
            "may only hold up to 2 values",
        ));
    }
    if invalid_ips {
        return errs;
    }
    if ips.len() > 1 {
        let fams: Vec<_> = ips
            .iter()
            .filter_map(|ip| net::parse_ip(ip))
            .map(|ip| net::family(&ip))
            .collect();
        let dual = fams.len() == 2 && fams[0] != fams[1];
        if !dual {
            errs.push(common::invalid_raw(
                &ips_p,
                &ips_go,
                "may specify no more than one IP for each IP family",
            ));
        }
    }
    if !is_headless(svc) && !ips.is_empty() {
        for (i, (ip, fam)) in ips.iter().zip(families(svc)).enumerate() {
            let is_v6 = net::parse_ip(ip).is_some_and(|a| a.is_ipv6());
            if fam == IPV4 && is_v6 {
                errs.push(FieldError::invalid(
                    ips_p.index(i),
                    ip.as_str(),
                    format!("expected an IPv4 value as indicated by `ipFamilies[{i}]`"),
                ));
            }
            if fam == IPV6 && !is_v6 {
                errs.push(FieldError::invalid(
                    ips_p.index(i),
                    ip.as_str(),
                    format!("expected an IPv6 value as indicated by `ipFamilies[{i}]`"),
                ));
            }
        }
    }
    errs
}

/// Upstream's `validateLoadBalancerClassField`.
fn load_balancer_class(old: Option<&Service>, svc: &Service) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let path = spec_path().child("loadBalancerClass");
    let class = spec(svc).load_balancer_class.as_deref();
    if let Some(old) = old
        && type_(old) == LOAD_BALANCER
        && type_(svc) == LOAD_BALANCER
        && spec(old).load_balancer_class.as_deref() != class
    {
        errs.push(common::invalid_raw(
            &path,
            go::opt_str(class),
            "may not change once set",
        ));
    }
    if type_(svc) == LOAD_BALANCER {
        if let Some(c) = class {
            errs.extend(common::qualified_name(&path, c));
        }
    } else if class.is_some() {
        errs.push(FieldError::forbidden(
            path,
            "may only be used when `type` is 'LoadBalancer'",
        ));
    }
    errs
}

/// Upstream's `validateServiceExternalTrafficPolicy`.
fn external_traffic(svc: &Service) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let spec_p = spec_path();
    let etp = external_traffic_policy(svc);
    if !externally_accessible(svc) {
        if !etp.is_empty() {
            errs.push(FieldError::invalid(
                spec_p.child("externalTrafficPolicy"),
                etp,
                "may only be set for externally-accessible services",
            ));
        }
    } else if etp.is_empty() {
        errs.push(FieldError::required(
            spec_p.child("externalTrafficPolicy"),
            "",
        ));
    } else if !matches!(etp, "Cluster" | "Local") {
        errs.push(FieldError::not_supported(
            spec_p.child("externalTrafficPolicy"),
            etp,
            &["Cluster", "Local"],
        ));
    }
    let hc = health_check_node_port(svc);
    if !needs_health_check(svc) {
        if hc != 0 {
            errs.push(FieldError::invalid(
                spec_p.child("healthCheckNodePort"),
                hc,
                "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'",
            ));
        }
    } else if hc != 0
        && let Some(m) = common::port_num(hc)
    {
        errs.push(FieldError::invalid(
            spec_p.child("healthCheckNodePort"),
            hc,
            m,
        ));
    }
    errs
}

/// Upstream's `ValidateServiceUpdate` (minus the metadata rules the generic store applies).
pub fn validate_update(new: &Service, old: &Service) -> Vec<FieldError> {
    let mut errs = upgrade_downgrade_cluster_ips(old, new);
    errs.extend(upgrade_downgrade_families(old, new));
    errs.extend(load_balancer_class(Some(old), new));
    if needs_health_check(old)
        && needs_health_check(new)
        && health_check_node_port(old) != health_check_node_port(new)
    {
        errs.push(FieldError::forbidden(
            spec_path().child("healthCheckNodePort"),
            "field is immutable",
        ));
    }
    // The load-balancer class check above already ran for the update; `validate` repeats the
    // format part of it, as upstream does.
    errs.extend(validate(new));
    errs
}

fn upgrade_downgrade_cluster_ips(old: &Service, new: &Service) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if type_(new) == EXTERNAL_NAME || type_(old) == EXTERNAL_NAME {
        return errs;
    }
    if is_headless(old) && is_headless(new) {
        return errs;
    }
    let (o, n) = (cluster_ips(old), cluster_ips(new));
    let ips_p = spec_path().child("clusterIPs");
    let n_go = go::strings(spec(new).cluster_ips.as_deref());
    if o.len() == n.len() {
        for (i, ip) in o.iter().enumerate() {
            if *ip != n[i] {
                errs.push(common::invalid_raw(
                    ips_p.index(i),
                    &n_go,
                    "may not change once set",
                ));
            }
        }
    } else if o.len() > n.len() {
        if n.is_empty() {
            errs.push(common::invalid_raw(
                ips_p.index(0),
                &n_go,
                "primary clusterIP can not be unset",
            ));
        }
        if !o.is_empty() && !n.is_empty() && n[0] != o[0] {
            errs.push(common::invalid_raw(
                ips_p.index(0),
                &n_go,
                "may not change once set",
            ));
        }
        if n.len() == 1 && policy(new) != Some(SINGLE_STACK) {
            errs.push(common::invalid_raw(
                spec_path().child("ipFamilyPolicy"),
                go::opt_str(policy(new)),
                "must be set to 'SingleStack' when releasing the secondary clusterIP",
            ));
        }
    } else if !o.is_empty() && n[0] != o[0] {
        errs.push(common::invalid_raw(
            ips_p.index(0),
            &n_go,
            "may not change once set",
        ));
    }
    errs
}

fn upgrade_downgrade_families(old: &Service, new: &Service) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if type_(new) == EXTERNAL_NAME || type_(old) == EXTERNAL_NAME {
        return errs;
    }
    if is_headless(old) || is_headless(new) {
        return errs;
    }
    let (o, n) = (families(old), families(new));
    let fam_p = spec_path().child("ipFamilies");
    let n_go = go::str_slice("core.IPFamily", spec(new).ip_families.as_deref());
    let ips_go = go::strings(spec(new).cluster_ips.as_deref());
    if o.len() == n.len() {
        if o.iter().zip(n).any(|(a, b)| a != b) {
            errs.push(common::invalid_raw(
                fam_p.index(0),
                &n_go,
                "may not change once set",
            ));
        }
    } else if o.len() > n.len() {
        if cluster_ips(new).is_empty() {
            errs.push(common::invalid_raw(
                fam_p.index(0),
                &n_go,
                "primary ipFamily can not be unset",
            ));
        }
        if !n.is_empty() && n[0] != o[0] {
            errs.push(common::invalid_raw(
                fam_p.index(0),
                &ips_go,
                "may not change once set",
            ));
        }
        if n.len() == 1 && policy(new) != Some(SINGLE_STACK) {
            errs.push(common::invalid_raw(
                spec_path().child("ipFamilyPolicy"),
                go::opt_str(policy(new)),
                "must be set to 'SingleStack' when releasing the secondary ipFamily",
            ));
        }
    } else if !o.is_empty() && !n.is_empty() && n[0] != o[0] {
        errs.push(common::invalid_raw(
            fam_p.index(0),
            &ips_go,
            "may not change once set",
        ));
    }
    errs
}

/// Upstream's `ValidateServiceStatusUpdate` (load-balancer status).
pub fn validate_status(svc: &Service) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let ingress_p = Path::new("status").child("loadBalancer").child("ingress");
    let ingress = svc
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_deref())
        .unwrap_or(&[]);
    if type_(svc) != LOAD_BALANCER && !ingress.is_empty() {
        errs.push(FieldError::forbidden(
            ingress_p,
            "may only be used when `spec.type` is 'LoadBalancer'",
        ));
        return errs;
    }
    for (i, ing) in ingress.iter().enumerate() {
        let p = ingress_p.index(i);
        let ip = ing.ip.as_deref().unwrap_or("");
        if !ip.is_empty() {
            errs.extend(net::validate_ip(&p.child("ip"), ip));
        }
        match ing.ip_mode.as_deref() {
            None if !ip.is_empty() => errs.push(FieldError::required(
                p.child("ipMode"),
                "must be specified when `ip` is set",
            )),
            Some(_) if ip.is_empty() => errs.push(FieldError::forbidden(
                p.child("ipMode"),
                "may not be specified when `ip` is not set",
            )),
            Some(m) if !matches!(m, "VIP" | "Proxy") => errs.push(FieldError::not_supported(
                p.child("ipMode"),
                m,
                &["Proxy", "VIP"],
            )),
            _ => {}
        }
        let host = ing.hostname.as_deref().unwrap_or("");
        if !host.is_empty() {
            errs.extend(common::dns_subdomain(&p.child("hostname"), host));
            if net::parse_ip(host).is_some() {
                errs.push(FieldError::invalid(
                    p.child("hostname"),
                    host,
                    "must be a DNS name, not an IP address",
                ));
            }
        }
    }
    errs
}
