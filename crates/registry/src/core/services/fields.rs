//! Read access to the Service fields the other modules reason about, with upstream's notion of
//! "unset" (empty string, empty list) and the type predicates of upstream's `apiservice`.

use std::sync::LazyLock;

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};

pub const CLUSTER_IP: &str = "ClusterIP";
pub const NODE_PORT: &str = "NodePort";
pub const LOAD_BALANCER: &str = "LoadBalancer";
pub const EXTERNAL_NAME: &str = "ExternalName";
pub const NONE: &str = "None";
pub const SINGLE_STACK: &str = "SingleStack";
pub const PREFER_DUAL_STACK: &str = "PreferDualStack";
pub const REQUIRE_DUAL_STACK: &str = "RequireDualStack";
pub const IPV4: &str = "IPv4";
pub const IPV6: &str = "IPv6";

static EMPTY_SPEC: LazyLock<ServiceSpec> = LazyLock::new(ServiceSpec::default);

pub fn spec(s: &Service) -> &ServiceSpec {
    s.spec.as_ref().unwrap_or(&EMPTY_SPEC)
}

pub fn spec_mut(s: &mut Service) -> &mut ServiceSpec {
    s.spec.get_or_insert_with(ServiceSpec::default)
}

pub fn type_(s: &Service) -> &str {
    spec(s).type_.as_deref().unwrap_or("")
}

pub fn cluster_ip(s: &Service) -> &str {
    spec(s).cluster_ip.as_deref().unwrap_or("")
}

pub fn cluster_ips(s: &Service) -> &[String] {
    spec(s).cluster_ips.as_deref().unwrap_or(&[])
}

pub fn families(s: &Service) -> &[String] {
    spec(s).ip_families.as_deref().unwrap_or(&[])
}

pub fn policy(s: &Service) -> Option<&str> {
    spec(s).ip_family_policy.as_deref()
}

pub fn ports(s: &Service) -> &[ServicePort] {
    spec(s).ports.as_deref().unwrap_or(&[])
}

pub fn node_port(p: &ServicePort) -> i32 {
    p.node_port.unwrap_or(0)
}

pub fn health_check_node_port(s: &Service) -> i32 {
    spec(s).health_check_node_port.unwrap_or(0)
}

pub fn external_traffic_policy(s: &Service) -> &str {
    spec(s).external_traffic_policy.as_deref().unwrap_or("")
}

pub fn has_selector(s: &Service) -> bool {
    spec(s).selector.as_ref().is_some_and(|m| !m.is_empty())
}

/// `clusterIPs == ["None"]`.
pub fn is_headless(s: &Service) -> bool {
    cluster_ips(s) == [NONE]
}

pub fn needs_cluster_ip(s: &Service) -> bool {
    type_(s) != EXTERNAL_NAME
}

pub fn needs_node_port(s: &Service) -> bool {
    matches!(type_(s), NODE_PORT | LOAD_BALANCER)
}

/// Upstream's `NeedsHealthCheck`: a LoadBalancer that keeps traffic on the receiving node.
pub fn needs_health_check(s: &Service) -> bool {
    type_(s) == LOAD_BALANCER && external_traffic_policy(s) == "Local"
}

/// Upstream's `ExternallyAccessible`.
pub fn externally_accessible(s: &Service) -> bool {
    matches!(type_(s), NODE_PORT | LOAD_BALANCER)
        || (type_(s) == CLUSTER_IP && spec(s).external_ips.as_ref().is_some_and(|v| !v.is_empty()))
}

/// Whether ports without a requested node port get one.
pub fn should_allocate_node_ports(s: &Service) -> bool {
    match type_(s) {
        NODE_PORT => true,
        LOAD_BALANCER => spec(s).allocate_load_balancer_node_ports != Some(false),
        _ => false,
    }
}

pub fn same_cluster_ips(a: &Service, b: &Service) -> bool {
    cluster_ip(a) == cluster_ip(b) && cluster_ips(a) == cluster_ips(b)
}

pub fn same_families(a: &Service, b: &Service) -> bool {
    spec(a).ip_families == spec(b).ip_families
}
