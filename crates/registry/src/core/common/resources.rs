//! Resource names and amounts: which names Kubernetes knows (`cpu`, `requests.memory`,
//! `count/...`), which must be whole numbers, and the quantity checks that go with them
//! (upstream's `pkg/apis/core/helper` lists and `ValidateResourceQuantityValue`).

use std::collections::BTreeMap;

use api::quantity::Quantity as Q;
use api::validation::{self, FieldError, Path};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

const STANDARD: &[&str] = &[
    "cpu",
    "memory",
    "ephemeral-storage",
    "requests.cpu",
    "requests.memory",
    "requests.ephemeral-storage",
    "limits.cpu",
    "limits.memory",
    "limits.ephemeral-storage",
    "pods",
    "resourcequotas",
    "services",
    "replicationcontrollers",
    "secrets",
    "configmaps",
    "persistentvolumeclaims",
    "storage",
    "requests.storage",
    "services.nodeports",
    "services.loadbalancers",
];

const STANDARD_QUOTA: &[&str] = &[
    "cpu",
    "memory",
    "ephemeral-storage",
    "requests.cpu",
    "requests.memory",
    "requests.storage",
    "requests.ephemeral-storage",
    "limits.cpu",
    "limits.memory",
    "limits.ephemeral-storage",
    "pods",
    "resourcequotas",
    "services",
    "replicationcontrollers",
    "secrets",
    "persistentvolumeclaims",
    "configmaps",
    "services.nodeports",
    "services.loadbalancers",
];

const INTEGER: &[&str] = &[
    "pods",
    "resourcequotas",
    "services",
    "replicationcontrollers",
    "secrets",
    "configmaps",
    "persistentvolumeclaims",
    "services.nodeports",
    "services.loadbalancers",
];

/// Names without a domain are implicitly `kubernetes.io/`.
pub fn is_native(name: &str) -> bool {
    !name.contains('/') || name.contains("kubernetes.io/")
}

pub fn is_huge_pages(name: &str) -> bool {
    name.starts_with("hugepages-")
}

fn is_quota_huge_pages(name: &str) -> bool {
    ["hugepages-", "requests.hugepages-", "limits.hugepages-"]
        .iter()
        .any(|p| name.starts_with(p))
}

/// A device-plugin style resource (`example.com/gpu`).
pub fn is_extended(name: &str) -> bool {
    if is_native(name) || name.starts_with("requests.") {
        return false;
    }
    validation::qualified_name(&format!("requests.{name}")).is_empty()
}

pub fn is_standard(name: &str) -> bool {
    STANDARD.contains(&name) || is_quota_huge_pages(name)
}

pub fn is_standard_quota(name: &str) -> bool {
    STANDARD_QUOTA.contains(&name) || is_quota_huge_pages(name)
}

pub fn is_standard_container(name: &str) -> bool {
    matches!(name, "cpu" | "memory" | "ephemeral-storage") || is_huge_pages(name)
}

/// Counted in whole units.
pub fn is_integer(name: &str) -> bool {
    INTEGER.contains(&name) || is_extended(name)
}

/// Requests may be lower than limits (not for huge pages or extended resources).
pub fn is_overcommit_allowed(name: &str) -> bool {
    is_native(name) && !is_huge_pages(name)
}

/// Upstream's `validateResourceName`: a qualified name; unprefixed names must be standard.
pub fn validate_name(path: &Path, name: &str) -> Vec<FieldError> {
    let errs = validation::errors_for(path, name, validation::qualified_name(name));
    if !errs.is_empty() {
        return errs;
    }
    if !name.contains('/') && !is_standard(name) {
        return vec![FieldError::invalid(
            path,
            name,
            "must be a standard resource type or fully qualified",
        )];
    }
    Vec::new()
}

/// Upstream's `validateContainerResourceName`.
pub fn validate_container_name(path: &Path, name: &str) -> Vec<FieldError> {
    let mut errs = validate_name(path, name);
    if !name.contains('/') {
        if !is_standard_container(name) {
            errs.push(FieldError::invalid(
                path,
                name,
                "must be a standard resource for containers",
            ));
        }
    } else if !is_native(name) && !is_extended(name) {
        errs.push(FieldError::invalid(
            path,
            name,
            "doesn't follow extended resource name standard",
        ));
    }
    errs
}

/// Upstream's `ValidateResourceQuotaResourceName`.
pub fn validate_quota_name(path: &Path, name: &str) -> Vec<FieldError> {
    let mut errs = validate_name(path, name);
    if !name.contains('/') && !is_standard_quota(name) {
        errs.push(FieldError::invalid(
            path,
            name,
            "must be a standard resource for quota",
        ));
    }
    errs
}

/// Parses a quantity from an object, as a field error when it is malformed. Upstream rejects
/// such objects while decoding; here the decoder keeps quantities as strings, so the check
/// happens during validation.
pub fn parse(path: &Path, q: &Quantity) -> Result<Q, FieldError> {
    Q::parse(&q.0).map_err(|e| FieldError::invalid(path, q.0.as_str(), e.to_string()))
}

/// Upstream's `ValidateResourceQuantityValue`: not negative, whole for integer resources.
pub fn validate_quantity(path: &Path, name: &str, q: &Quantity) -> Vec<FieldError> {
    let v = match parse(path, q) {
        Ok(v) => v,
        Err(e) => return vec![e],
    };
    let mut errs = Vec::new();
    if v.signum() < 0 {
        errs.push(FieldError::invalid(
            path,
            v.to_canonical_string(),
            "must be greater than or equal to 0",
        ));
    }
    if is_integer(name) && v.as_milli() % 1000 != 0 {
        errs.push(FieldError::invalid(
            path,
            v.to_canonical_string(),
            "must be an integer",
        ));
    }
    errs
}

/// Upstream's `ValidatePositiveQuantityValue`.
pub fn validate_positive(path: &Path, q: &Quantity) -> Vec<FieldError> {
    match parse(path, q) {
        Err(e) => vec![e],
        Ok(v) if v.signum() <= 0 => vec![FieldError::invalid(
            path,
            v.to_canonical_string(),
            "must be greater than zero",
        )],
        Ok(_) => Vec::new(),
    }
}

/// Upstream's `SetDefaults_ResourceList`: every amount is rounded up to whole thousandths and
/// stored in canonical form. Malformed amounts are left for validation to report.
pub fn canonicalize(list: &mut BTreeMap<String, Quantity>) {
    for q in list.values_mut() {
        if let Ok(mut v) = Q::parse(&q.0) {
            v.round_up(3);
            *q = v.to_k8s();
        }
    }
}

/// [`canonicalize`] on an optional list.
pub fn canonicalize_opt(list: &mut Option<BTreeMap<String, Quantity>>) {
    if let Some(l) = list {
        canonicalize(l);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests a failed unwrap is a failed assertion
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(is_standard_quota("requests.cpu"));
        assert!(!is_standard_quota("storage"));
        assert!(is_extended("example.com/gpu"));
        assert!(!is_extended("kubernetes.io/x"));
        assert!(is_integer("example.com/gpu"));
        assert!(!is_overcommit_allowed("hugepages-2Mi"));
        let p = Path::new("spec.hard[foo]");
        assert_eq!(
            validate_quota_name(&p, "foo")[0].to_string(),
            "spec.hard[foo]: Invalid value: \"foo\": must be a standard resource type or fully qualified"
        );
        assert!(validate_quota_name(&p, "count/deployments.apps").is_empty());
    }

    #[test]
    fn quantities() {
        let p = Path::new("spec.hard[pods]");
        assert_eq!(
            validate_quantity(&p, "pods", &Quantity("1500m".into()))[0].to_string(),
            "spec.hard[pods]: Invalid value: \"1500m\": must be an integer"
        );
        assert_eq!(
            validate_quantity(&p, "cpu", &Quantity("-1".into()))[0].to_string(),
            "spec.hard[pods]: Invalid value: \"-1\": must be greater than or equal to 0"
        );
        assert_eq!(validate_quantity(&p, "cpu", &Quantity("x".into())).len(), 1);
        let mut l = BTreeMap::new();
        l.insert("cpu".to_string(), Quantity("0.0001".into()));
        l.insert("memory".to_string(), Quantity("1024Mi".into()));
        canonicalize(&mut l);
        assert_eq!(l["cpu"].0, "1m");
        assert_eq!(l["memory"].0, "1Gi");
    }
}
