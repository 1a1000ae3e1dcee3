//! The normalisation upstream's Service REST storage applies before validation: keeping
//! `clusterIP`/`clusterIPs` in step, carrying allocated values a client left out of an update,
//! dropping fields a type change makes meaningless, and choosing `ipFamilyPolicy` and
//! `ipFamilies` for this single-stack IPv4 cluster (upstream's `initIPFamilyFields`).
//!
//! [`init_ip_families`] only changes the object when the result would be valid; what it refuses
//! to do is reported by [`family_errors`] during validation, with upstream's messages.

use api::validation::{FieldError, Path};
use k8s_openapi::api::core::v1::{LoadBalancerStatus, Service};

use super::fields::*;
use super::validation::cluster_ip_fields;
use crate::core::common::{self, go, net};

/// Upstream's `normalizeClusterIPs`.
pub fn normalize_cluster_ips(new: &mut Service, old: Option<&Service>) {
    let Some(old) = old else {
        if !cluster_ip(new).is_empty() && cluster_ips(new).is_empty() {
            let ip = cluster_ip(new).to_string();
            spec_mut(new).cluster_ips = Some(vec![ip]);
        }
        return;
    };
    if !cluster_ips(old).is_empty()
        && cluster_ips(new).is_empty()
        && cluster_ip(old) == cluster_ip(new)
    {
        spec_mut(new).cluster_ips = spec(old).cluster_ips.clone();
    }
    if cluster_ip(old) != cluster_ip(new) {
        if !cluster_ip(old).is_empty() && cluster_ip(new).is_empty() && same_cluster_ips(old, new) {
            spec_mut(new).cluster_ips = None;
        }
        if !cluster_ip(new).is_empty() && cluster_ips(old) == cluster_ips(new) {
            let ip = cluster_ip(new).to_string();
            spec_mut(new).cluster_ips = Some(vec![ip]);
        }
    }
}

/// Upstream's `patchAllocatedValues`: an update that leaves out allocated values keeps them.
pub fn patch_allocated_values(new: &mut Service, old: &Service) {
    if needs_cluster_ip(old) && needs_cluster_ip(new) {
        if cluster_ip(new).is_empty() {
            spec_mut(new).cluster_ip = spec(old).cluster_ip.clone();
        }
        if cluster_ips(new).is_empty() && !cluster_ips(old).is_empty() {
            spec_mut(new).cluster_ips = spec(old).cluster_ips.clone();
        }
    }
    if needs_node_port(old) && needs_node_port(new) {
        let used_new: Vec<i32> = ports(new)
            .iter()
            .map(node_port)
            .filter(|&p| p != 0)
            .collect();
        let used: Vec<i32> = ports(old)
            .iter()
            .map(node_port)
            .filter(|p| *p != 0 && used_new.contains(p))
            .collect();
        let by_name: Vec<(String, i32)> = ports(old)
            .iter()
            .map(|p| (p.name.clone().unwrap_or_default(), node_port(p)))
            .collect();
        for p in spec_mut(new).ports.iter_mut().flatten() {
            if node_port(p) == 0 {
                let name = p.name.clone().unwrap_or_default();
                // Like a Go map, the last port of a name wins.
                let old_val = by_name
                    .iter()
                    .rev()
                    .find(|(n, _)| *n == name)
                    .map_or(0, |(_, v)| *v);
                if !used.contains(&old_val) && old_val != 0 {
                    p.node_port = Some(old_val);
                }
            }
        }
    }
    if needs_health_check(old) && needs_health_check(new) && health_check_node_port(new) == 0 {
        spec_mut(new).health_check_node_port = spec(old).health_check_node_port;
    }
}

/// Upstream's `dropTypeDependentFields`: a type change wipes what the new type cannot use,
/// unless the client also changed it (then validation complains).
pub fn drop_type_dependent_fields(new: &mut Service, old: &Service) {
    if needs_cluster_ip(old) && !needs_cluster_ip(new) {
        if same_cluster_ips(old, new) {
            spec_mut(new).cluster_ip = None;
            spec_mut(new).cluster_ips = None;
        }
        if same_families(old, new) {
            spec_mut(new).ip_families = None;
        }
        if policy(old) == policy(new) {
            spec_mut(new).ip_family_policy = None;
        }
    }
    if needs_node_port(old) && !needs_node_port(new) {
        let old_ports: Vec<i32> = ports(old).iter().map(node_port).collect();
        let unchanged = ports(new)
            .iter()
            .map(node_port)
            .all(|p| p == 0 || old_ports.contains(&p));
        if unchanged {
            for p in spec_mut(new).ports.iter_mut().flatten() {
                p.node_port = None;
            }
        }
    }
    if needs_health_check(old)
        && !needs_health_check(new)
        && health_check_node_port(old) == health_check_node_port(new)
    {
        spec_mut(new).health_check_node_port = None;
    }
    if type_(old) == LOAD_BALANCER && type_(new) != LOAD_BALANCER {
        let (o, n) = (
            spec(old).allocate_load_balancer_node_ports,
            spec(new).allocate_load_balancer_node_ports,
        );
        if o.is_some() && o == n {
            spec_mut(new).allocate_load_balancer_node_ports = None;
        }
        if spec(old).load_balancer_class == spec(new).load_balancer_class {
            spec_mut(new).load_balancer_class = None;
        }
    }
    if needs_node_port(old)
        && !needs_node_port(new)
        && external_traffic_policy(old) == external_traffic_policy(new)
    {
        spec_mut(new).external_traffic_policy = None;
    }
    if type_(new) != LOAD_BALANCER
        && let Some(status) = &mut new.status
    {
        status.load_balancer = Some(LoadBalancerStatus::default());
    }
}

/// A PreferDualStack Service whose IP fields did not change is left exactly as it is.
fn matching_prefer_dual_stack(new: &Service, old: Option<&Service>) -> bool {
    old.is_some_and(|old| {
        same_cluster_ips(old, new)
            && same_families(old, new)
            && policy(old) == Some(PREFER_DUAL_STACK)
            && policy(new) == Some(PREFER_DUAL_STACK)
    })
}

fn headless_selectorless(s: &Service) -> bool {
    cluster_ip(s) == NONE && !has_selector(s)
}

fn reduced(new: &[String], old: &[String]) -> bool {
    !new.is_empty() && new.len() < old.len()
}

/// The first round of upstream's checks, run before any family is inferred.
fn first_stage_errors(svc: &Service, old: Option<&Service>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let policy_p = Path::new("spec").child("ipFamilyPolicy");
    let policy_go = go::opt_str(policy(svc));
    if let Some(old) = old
        && policy(svc) != Some(SINGLE_STACK)
    {
        if reduced(cluster_ips(svc), cluster_ips(old)) {
            errs.push(common::invalid_raw(
                &policy_p,
                &policy_go,
                "must be 'SingleStack' to release the secondary cluster IP",
            ));
        }
        if reduced(families(svc), families(old)) {
            errs.push(common::invalid_raw(
                &policy_p,
                &policy_go,
                "must be 'SingleStack' to release the secondary IP family",
            ));
        }
    }
    if policy(svc) == Some(SINGLE_STACK) {
        if cluster_ips(svc).len() == 2 {
            errs.push(common::invalid_raw(
                &policy_p,
                &policy_go,
                "must be 'RequireDualStack' or 'PreferDualStack' when multiple cluster IPs are specified",
            ));
        }
        if families(svc).len() == 2 {
            errs.push(common::invalid_raw(
                &policy_p,
                &policy_go,
                "must be 'RequireDualStack' or 'PreferDualStack' when multiple IP families are specified",
            ));
        }
    }
    let ips_go = go::strings(spec(svc).cluster_ips.as_deref());
    for (i, ip) in cluster_ips(svc).iter().enumerate() {
        if ip == NONE {
            break;
        }
        let fam = net::parse_ip(ip).map_or(IPV4, |a| net::family(&a));
        if i >= families(svc).len() && fam != IPV4 {
            errs.push(common::invalid_raw(
                Path::new("spec").child("clusterIPs").index(i),
                &ips_go,
                format!("{fam} is not configured on this cluster"),
            ));
        }
    }
    errs
}

/// The second round: what this single-stack IPv4 cluster cannot provide.
fn second_stage_errors(svc: &Service) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if policy(svc) == Some(REQUIRE_DUAL_STACK) {
        errs.push(FieldError::invalid(
            Path::new("spec").child("ipFamilyPolicy"),
            REQUIRE_DUAL_STACK,
            "this cluster is not configured for dual-stack services",
        ));
    }
    for (i, f) in families(svc).iter().enumerate() {
        if f != IPV4 {
            errs.push(FieldError::invalid(
                Path::new("spec").child("ipFamilies").index(i),
                f.as_str(),
                "not configured on this cluster",
            ));
        }
    }
    errs
}

/// Upstream's `initIPFamilyFields` for a single-stack IPv4 cluster, applied only as far as
/// the result stays valid.
pub fn init_ip_families(svc: &mut Service, old: Option<&Service>) {
    if type_(svc) == EXTERNAL_NAME || matching_prefer_dual_stack(svc, old) {
        return;
    }
    if policy(svc).is_none() {
        let chosen = match old.and_then(policy) {
            Some(p) => p.to_string(),
            None if headless_selectorless(svc) => REQUIRE_DUAL_STACK.to_string(),
            None => SINGLE_STACK.to_string(),
        };
        spec_mut(svc).ip_family_policy = Some(chosen);
    }
    if !cluster_ip_fields(svc).is_empty() {
        return;
    }
    if let Some(old) = old
        && policy(svc) == Some(SINGLE_STACK)
    {
        if same_cluster_ips(old, svc)
            && let Some(v) = spec_mut(svc).cluster_ips.as_mut()
        {
            v.truncate(1);
        }
        if same_families(old, svc)
            && let Some(v) = spec_mut(svc).ip_families.as_mut()
        {
            v.truncate(1);
        }
    }
    if !first_stage_errors(svc, old).is_empty() {
        return;
    }
    let inferred: Vec<(usize, String)> = cluster_ips(svc)
        .iter()
        .take_while(|ip| *ip != NONE)
        .enumerate()
        .filter(|(i, _)| *i >= families(svc).len())
        .map(|(i, ip)| {
            (
                i,
                net::parse_ip(ip)
                    .map_or(IPV4, |a| net::family(&a))
                    .to_string(),
            )
        })
        .collect();
    for (_, fam) in inferred {
        spec_mut(svc)
            .ip_families
            .get_or_insert_with(Vec::new)
            .push(fam);
    }
    if headless_selectorless(svc) {
        let fams = spec_mut(svc).ip_families.get_or_insert_with(Vec::new);
        if fams.is_empty() {
            fams.push(IPV4.to_string());
        }
        if fams.len() < 2 && policy(svc) != Some(SINGLE_STACK) {
            let other = if families(svc)[0] == IPV4 { IPV6 } else { IPV4 };
            spec_mut(svc)
                .ip_families
                .get_or_insert_with(Vec::new)
                .push(other.to_string());
        }
        return;
    }
    if !second_stage_errors(svc).is_empty() {
        return;
    }
    if families(svc).is_empty() {
        spec_mut(svc).ip_families = Some(vec![IPV4.to_string()]);
    }
}

/// What [`init_ip_families`] refused to do, as upstream reports it.
pub fn family_errors(svc: &Service, old: Option<&Service>) -> Vec<FieldError> {
    if type_(svc) == EXTERNAL_NAME
        || matching_prefer_dual_stack(svc, old)
        || !cluster_ip_fields(svc).is_empty()
    {
        return Vec::new();
    }
    let first = first_stage_errors(svc, old);
    if !first.is_empty() {
        return first;
    }
    if headless_selectorless(svc) {
        return Vec::new();
    }
    second_stage_errors(svc)
}
