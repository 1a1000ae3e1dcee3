//! Container resources: canonical quantity strings, `ValidateContainerResourceRequirements`,
//! the pod's QoS class (`qos.ComputePodQOS`), and the search for unparseable quantities that
//! upstream would already have refused while decoding the request (400).

use std::collections::{BTreeMap, BTreeSet};

use api::ApiError;
use api::quantity::{Quantity, QuantityError};
use api::validation::{self, FieldError, Path};
use k8s_openapi::api::core::v1::{Container, PodSpec, ResourceRequirements};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as WireQuantity;

use crate::workloads::common::{NEGATIVE, not_found};

/// Rewrites a quantity in canonical form; leaves unparseable text for the decode check.
pub fn canonicalize(q: &mut WireQuantity) {
    if let Ok(parsed) = Quantity::parse(&q.0) {
        q.0 = parsed.to_canonical_string();
    }
}

/// Canonical form for every entry of a resource list, rounded up to milli precision when
/// `round_milli` (upstream's `SetDefaults_ResourceList`).
pub fn canonicalize_list(list: &mut BTreeMap<String, WireQuantity>, round_milli: bool) {
    for q in list.values_mut() {
        if let Ok(mut parsed) = Quantity::parse(&q.0) {
            if round_milli {
                parsed.round_up(3);
            }
            q.0 = parsed.to_canonical_string();
        }
    }
}

fn parse_all(list: Option<&BTreeMap<String, WireQuantity>>) -> Option<QuantityError> {
    list.into_iter()
        .flatten()
        .find_map(|(_, q)| Quantity::parse(&q.0).err())
}

fn requirements_error(r: Option<&ResourceRequirements>) -> Option<QuantityError> {
    let r = r?;
    parse_all(r.limits.as_ref()).or_else(|| parse_all(r.requests.as_ref()))
}

/// The first quantity in `spec` that is not a quantity at all.
pub fn first_bad_quantity(spec: &PodSpec) -> Option<QuantityError> {
    let containers = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten());
    for c in containers {
        if let Some(e) = requirements_error(c.resources.as_ref()) {
            return Some(e);
        }
    }
    for c in spec.ephemeral_containers.iter().flatten() {
        if let Some(e) = requirements_error(c.resources.as_ref()) {
            return Some(e);
        }
    }
    if let Some(e) = parse_all(spec.overhead.as_ref()) {
        return Some(e);
    }
    for v in spec.volumes.iter().flatten() {
        if let Some(q) = v.empty_dir.as_ref().and_then(|e| e.size_limit.as_ref())
            && let Err(e) = Quantity::parse(&q.0)
        {
            return Some(e);
        }
        if let Some(r) = v
            .ephemeral
            .as_ref()
            .and_then(|e| e.volume_claim_template.as_ref())
            .and_then(|t| t.spec.resources.as_ref())
            && let Some(e) = parse_all(r.limits.as_ref()).or_else(|| parse_all(r.requests.as_ref()))
        {
            return Some(e);
        }
    }
    None
}

/// The 400 upstream returns when a quantity in the body cannot even be decoded.
pub fn decode_error(kind: &str, err: &QuantityError) -> ApiError {
    // Every workload kind is served as version v1 of its group.
    ApiError::bad_request(format!(
        "{kind} in version \"v1\" cannot be handled as a {kind}: {err}"
    ))
}

const STANDARD_CONTAINER_RESOURCES: &[&str] = &["cpu", "memory", "ephemeral-storage"];
const STANDARD_RESOURCES: &[&str] = &[
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
    "services",
    "replicationcontrollers",
    "resourcequotas",
    "secrets",
    "configmaps",
    "persistentvolumeclaims",
    "storage",
    "requests.storage",
    "services.nodeports",
    "services.loadbalancers",
];
const INTEGER_RESOURCES: &[&str] = &[
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

fn is_hugepages(name: &str) -> bool {
    name.starts_with("hugepages-")
}

/// Kubernetes' own resources: unprefixed or under `kubernetes.io/`.
fn is_native(name: &str) -> bool {
    !name.contains('/') || name.contains("kubernetes.io/")
}

fn is_extended(name: &str) -> bool {
    !is_native(name)
        && !name.starts_with("requests.")
        && validation::qualified_name(&format!("requests.{name}")).is_empty()
}

fn overcommit_allowed(name: &str) -> bool {
    is_native(name) && !is_hugepages(name)
}

fn validate_resource_name(name: &str, path: &Path, errs: &mut Vec<FieldError>) {
    let problems = validation::qualified_name(name);
    if !problems.is_empty() {
        errs.extend(validation::errors_for(path, name, problems));
        return;
    }
    if !name.contains('/') {
        if !STANDARD_RESOURCES.contains(&name) && !is_hugepages(name) {
            errs.push(FieldError::invalid(
                path,
                name,
                "must be a standard resource type or fully qualified",
            ));
        }
        if !STANDARD_CONTAINER_RESOURCES.contains(&name) && !is_hugepages(name) {
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
}

/// `ValidateResourceQuantityValue`.
fn validate_value(name: &str, q: &Quantity, path: &Path, errs: &mut Vec<FieldError>) {
    if q.signum() < 0 {
        errs.push(FieldError::invalid(path, q.to_string(), NEGATIVE));
    }
    if (INTEGER_RESOURCES.contains(&name) || is_extended(name)) && q.as_milli() % 1000 != 0 {
        errs.push(FieldError::invalid(
            path,
            q.to_string(),
            "must be an integer",
        ));
    }
}

fn hugepage_error(name: &str, q: &Quantity) -> Option<String> {
    let size = Quantity::parse(name.strip_prefix("hugepages-")?).ok()?;
    (size.as_nanos() <= 0 || q.as_nanos() % size.as_nanos() != 0)
        .then(|| format!("{q} is not positive integer multiple of {name}"))
}

/// `ValidateContainerResourceRequirements`. Unparseable quantities are skipped: they are
/// refused as a decode error before the write (see [`first_bad_quantity`]).
pub fn validate_requirements(
    r: &ResourceRequirements,
    claim_names: &BTreeSet<&str>,
    path: &Path,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let lim_path = path.child("limits");
    let req_path = path.child("requests");
    let empty = BTreeMap::new();
    let limits = r.limits.as_ref().unwrap_or(&empty);
    let requests = r.requests.as_ref().unwrap_or(&empty);
    let (mut cpu_mem, mut huge) = (false, false);
    for (name, q) in limits {
        let p = lim_path.key(name);
        validate_resource_name(name, &p, &mut errs);
        let Ok(q) = Quantity::parse(&q.0) else {
            continue;
        };
        validate_value(name, &q, &p, &mut errs);
        if is_hugepages(name) {
            huge = true;
            if let Some(msg) = hugepage_error(name, &q) {
                errs.push(FieldError::invalid(&p, q.to_string(), msg));
            }
        }
        cpu_mem |= name == "cpu" || name == "memory";
    }
    for (name, q) in requests {
        let p = req_path.key(name);
        validate_resource_name(name, &p, &mut errs);
        let Ok(q) = Quantity::parse(&q.0) else {
            continue;
        };
        validate_value(name, &q, &p, &mut errs);
        match limits.get(name).map(|l| Quantity::parse(&l.0)) {
            Some(Ok(limit)) => {
                if q != limit && !overcommit_allowed(name) {
                    errs.push(FieldError::invalid(
                        &req_path,
                        q.to_string(),
                        format!("must be equal to {name} limit of {limit}"),
                    ));
                } else if q > limit {
                    errs.push(FieldError::invalid(
                        &req_path,
                        q.to_string(),
                        format!("must be less than or equal to {name} limit of {limit}"),
                    ));
                }
            }
            Some(Err(_)) => {}
            None => {
                if !overcommit_allowed(name) {
                    errs.push(FieldError::required(
                        &lim_path,
                        "Limit must be set for non overcommitable resources",
                    ));
                }
            }
        }
        if is_hugepages(name) {
            huge = true;
            if let Some(msg) = hugepage_error(name, &q) {
                errs.push(FieldError::invalid(&p, q.to_string(), msg));
            }
        }
        cpu_mem |= name == "cpu" || name == "memory";
    }
    if huge && !cpu_mem {
        errs.push(FieldError::forbidden(
            path,
            "HugePages require cpu or memory",
        ));
    }
    let claims_path = path.child("claims");
    let mut seen = BTreeSet::new();
    for (i, claim) in r.claims.iter().flatten().enumerate() {
        let p = claims_path.index(i);
        if claim.name.is_empty() {
            errs.push(FieldError::required(&p, ""));
            continue;
        }
        let key = match claim.request.as_deref().filter(|r| !r.is_empty()) {
            Some(req) => {
                errs.extend(validation::errors_for(
                    &p.child("request"),
                    req,
                    validation::dns1123_label(req),
                ));
                format!("{}/{req}", claim.name)
            }
            None => claim.name.clone(),
        };
        if !seen.insert(key.clone()) {
            errs.push(FieldError::duplicate(&p, key));
        }
        if !claim_names.contains(claim.name.as_str()) {
            let mut e = not_found(&p, &claim.name);
            e.detail = if claim_names.is_empty() {
                "must be one of the names in pod.spec.resourceClaims which is empty".into()
            } else {
                let names: Vec<&str> = claim_names.iter().copied().collect();
                format!(
                    "must be one of the names in pod.spec.resourceClaims: {}",
                    names.join(", ")
                )
            };
            errs.push(e);
        }
    }
    errs
}

/// `qos.ComputePodQOS` with pod-level resources disabled (1.33 default).
pub fn qos_class(spec: &PodSpec) -> &'static str {
    let mut requests: BTreeMap<&str, Quantity> = BTreeMap::new();
    let mut limits: BTreeMap<&str, Quantity> = BTreeMap::new();
    let mut guaranteed = true;
    let all: Vec<&Container> = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .collect();
    for c in all {
        let res = c.resources.as_ref();
        for (name, q) in res.and_then(|r| r.requests.as_ref()).into_iter().flatten() {
            if name != "cpu" && name != "memory" {
                continue;
            }
            if let Ok(q) = Quantity::parse(&q.0)
                && q.signum() > 0
            {
                *requests.entry(name.as_str()).or_insert_with(Quantity::zero) += q;
            }
        }
        let mut found = BTreeSet::new();
        for (name, q) in res.and_then(|r| r.limits.as_ref()).into_iter().flatten() {
            if name != "cpu" && name != "memory" {
                continue;
            }
            if let Ok(q) = Quantity::parse(&q.0)
                && q.signum() > 0
            {
                found.insert(name.as_str());
                *limits.entry(name.as_str()).or_insert_with(Quantity::zero) += q;
            }
        }
        if !(found.contains("cpu") && found.contains("memory")) {
            guaranteed = false;
        }
    }
    if requests.is_empty() && limits.is_empty() {
        return "BestEffort";
    }
    if guaranteed
        && requests
            .iter()
            .all(|(name, req)| limits.get(name) == Some(req))
        && requests.len() == limits.len()
    {
        return "Guaranteed";
    }
    "Burstable"
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn list(pairs: &[(&str, &str)]) -> BTreeMap<String, WireQuantity> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), WireQuantity(v.to_string())))
            .collect()
    }

    fn container(req: &[(&str, &str)], lim: &[(&str, &str)]) -> Container {
        Container {
            name: "c".into(),
            resources: Some(ResourceRequirements {
                requests: (!req.is_empty()).then(|| list(req)),
                limits: (!lim.is_empty()).then(|| list(lim)),
                claims: None,
            }),
            ..Default::default()
        }
    }

    #[test]
    fn qos_classes() {
        let spec = |cs: Vec<Container>| PodSpec {
            containers: cs,
            ..Default::default()
        };
        assert_eq!(qos_class(&spec(vec![container(&[], &[])])), "BestEffort");
        assert_eq!(
            qos_class(&spec(vec![container(&[("cpu", "100m")], &[])])),
            "Burstable"
        );
        let g = [("cpu", "1"), ("memory", "1Gi")];
        assert_eq!(qos_class(&spec(vec![container(&g, &g)])), "Guaranteed");
        assert_eq!(
            qos_class(&spec(vec![container(&g, &g), container(&[], &[])])),
            "Burstable"
        );
        assert_eq!(
            qos_class(&spec(vec![container(
                &[("cpu", "500m"), ("memory", "1Gi")],
                &g
            )])),
            "Burstable"
        );
        // Only cpu and memory count.
        assert_eq!(
            qos_class(&spec(vec![container(&[("ephemeral-storage", "1Gi")], &[])])),
            "BestEffort"
        );
    }

    #[test]
    fn requirement_rules() {
        let path = Path::new("spec")
            .child("containers")
            .index(0)
            .child("resources");
        let check = |req: &[(&str, &str)], lim: &[(&str, &str)]| -> Vec<String> {
            let c = container(req, lim);
            validate_requirements(c.resources.as_ref().unwrap(), &BTreeSet::new(), &path)
                .iter()
                .map(ToString::to_string)
                .collect()
        };
        assert!(check(&[("cpu", "100m")], &[("cpu", "200m")]).is_empty());
        assert_eq!(
            check(&[("cpu", "300m")], &[("cpu", "200m")]),
            [
                "spec.containers[0].resources.requests: Invalid value: \"300m\": must be less than or equal to cpu limit of 200m"
            ]
        );
        assert_eq!(
            check(&[("memory", "-1")], &[]),
            [
                "spec.containers[0].resources.requests[memory]: Invalid value: \"-1\": must be greater than or equal to 0"
            ]
        );
        assert_eq!(
            check(&[("example.com/gpu", "1")], &[]),
            [
                "spec.containers[0].resources.limits: Required value: Limit must be set for non overcommitable resources"
            ]
        );
        assert_eq!(
            check(&[], &[("example.com/gpu", "500m")]),
            [
                "spec.containers[0].resources.limits[example.com/gpu]: Invalid value: \"500m\": must be an integer"
            ]
        );
        assert_eq!(
            check(&[("foo", "1")], &[]),
            [
                "spec.containers[0].resources.requests[foo]: Invalid value: \"foo\": must be a standard resource type or fully qualified",
                "spec.containers[0].resources.requests[foo]: Invalid value: \"foo\": must be a standard resource for containers",
            ]
        );
        assert_eq!(
            check(&[], &[("hugepages-2Mi", "3Mi")]),
            [
                "spec.containers[0].resources.limits[hugepages-2Mi]: Invalid value: \"3Mi\": 3Mi is not positive integer multiple of hugepages-2Mi",
                "spec.containers[0].resources: Forbidden: HugePages require cpu or memory",
            ]
        );
    }

    #[test]
    fn canonical_lists() {
        let mut l = list(&[
            ("cpu", "0.5"),
            ("memory", "1024Mi"),
            ("x", "0.0001"),
            ("bad", "1K"),
        ]);
        canonicalize_list(&mut l, true);
        assert_eq!(l["cpu"].0, "500m");
        assert_eq!(l["memory"].0, "1Gi");
        assert_eq!(l["x"].0, "1m");
        assert_eq!(l["bad"].0, "1K");
        let spec = PodSpec {
            containers: vec![container(&[("cpu", "1K")], &[])],
            ..Default::default()
        };
        assert_eq!(first_bad_quantity(&spec), Some(QuantityError::Suffix));
        assert_eq!(
            decode_error("Pod", &QuantityError::Suffix).message,
            "Pod in version \"v1\" cannot be handled as a Pod: unable to parse quantity's suffix"
        );
    }
}
