//! Nodes: status is accepted on create (the kubelet registers with its status) and kept from
//! the stored object on spec updates; `podCIDR` and `podCIDRs` kept in step; taint, pod CIDR
//! and resource-amount validation, and the once-set rules for `podCIDRs` and `providerID`, as
//! upstream's `ValidateNode(Update)`.

use std::collections::HashSet;
use std::sync::Arc;

use api::resources::ResourceInfo;
use api::validation::{self, FieldError, Path};
use k8s_openapi::api::core::v1::{Node, NodeSpec, Taint};

use crate::DynStrategy;
use crate::core::common::{self, go, net, resources};
use crate::strategy::{Adapter, Strategy};

pub fn strategy(info: &'static ResourceInfo) -> Arc<dyn DynStrategy> {
    Arc::new(Adapter::new(info, Nodes))
}

struct Nodes;

fn spec(n: &Node) -> NodeSpec {
    n.spec.clone().unwrap_or_default()
}

/// Go's `%#v` of an internal `core.Taint`.
fn go_taint(t: &Taint) -> String {
    format!(
        "core.Taint{{Key:{}, Value:{}, Effect:{}, TimeAdded:{}}}",
        go::quote(&t.key),
        go::quote(t.value.as_deref().unwrap_or("")),
        go::quote(&t.effect),
        match &t.time_added {
            None => go::nil_ptr("v1.Time"),
            Some(ts) => format!("time.Date({})", ts.0),
        }
    )
}

/// Upstream's `validateNodeTaints`. `path` is `metadata.taints`: upstream reports node taints
/// under the metadata path, and clients see that.
pub(crate) fn validate_taints(taints: &[Taint], path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut seen: HashSet<(&str, &str)> = HashSet::new();
    for (i, t) in taints.iter().enumerate() {
        let p = path.index(i);
        errs.extend(common::qualified_name(&p.child("key"), &t.key));
        let value = t.value.as_deref().unwrap_or("");
        let problems = validation::label_value(value);
        if !problems.is_empty() {
            errs.push(FieldError::invalid(
                p.child("value"),
                value,
                problems.join(";"),
            ));
        }
        match t.effect.as_str() {
            "" => errs.push(FieldError::required(p.child("effect"), "")),
            "NoSchedule" | "PreferNoSchedule" | "NoExecute" => {}
            other => errs.push(FieldError::not_supported(
                p.child("effect"),
                other,
                &["NoSchedule", "PreferNoSchedule", "NoExecute"],
            )),
        }
        if !seen.insert((t.effect.as_str(), t.key.as_str())) {
            let mut e = common::duplicate_raw(&p, go_taint(t));
            e.detail = "taints must be unique by key and effect pair".to_string();
            errs.push(e);
        }
    }
    errs
}

fn validate_resources(node: &Node) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let Some(status) = &node.status else {
        return errs;
    };
    for (field, list) in [
        ("capacity", &status.capacity),
        ("allocatable", &status.allocatable),
    ] {
        for (k, v) in list.iter().flatten() {
            let p = Path::new("status").child(field).child(k);
            errs.extend(resources::validate_quantity(&p, k, v));
        }
    }
    errs
}

fn validate_node(node: &Node) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let spec = spec(node);
    if let Some(taints) = spec.taints.as_deref().filter(|t| !t.is_empty()) {
        errs.extend(validate_taints(
            taints,
            &Path::new("metadata").child("taints"),
        ));
    }
    errs.extend(validate_resources(node));
    let cidrs = spec.pod_cidrs.as_deref().unwrap_or(&[]);
    let path = Path::new("spec").child("podCIDRs");
    for (i, c) in cidrs.iter().enumerate() {
        errs.extend(net::validate_cidr(&path.index(i), c));
    }
    if cidrs.len() > 1 {
        let families: Vec<bool> = cidrs
            .iter()
            .filter_map(|c| net::parse_cidr(c))
            .map(|(ip, _)| ip.is_ipv4())
            .collect();
        let dual = families.len() == 2 && families[0] != families[1];
        if !dual || cidrs.len() > 2 {
            errs.push(common::invalid_raw(
                &path,
                go::strings(Some(cidrs)),
                "may specify no more than one CIDR for each IP family",
            ));
        }
        let mut seen = HashSet::new();
        for (i, c) in cidrs.iter().enumerate() {
            if !seen.insert(c) {
                errs.push(FieldError::duplicate(path.index(i), c.as_str()));
            }
        }
    }
    errs
}

fn validate_node_update(new: &Node, old: &Node) -> Vec<FieldError> {
    let mut errs = validate_resources(new);
    let mut seen = HashSet::new();
    let addresses = new
        .status
        .as_ref()
        .and_then(|s| s.addresses.as_deref())
        .unwrap_or(&[]);
    for (i, a) in addresses.iter().enumerate() {
        if !seen.insert((a.type_.as_str(), a.address.as_str())) {
            errs.push(common::duplicate_raw(
                Path::new("status").child("addresses").index(i),
                format!(
                    "core.NodeAddress{{Type:{}, Address:{}}}",
                    go::quote(&a.type_),
                    go::quote(&a.address)
                ),
            ));
        }
    }
    let (ns, os) = (spec(new), spec(old));
    let old_cidrs = os.pod_cidrs.as_deref().unwrap_or(&[]);
    let new_cidrs = ns.pod_cidrs.as_deref().unwrap_or(&[]);
    const CIDR_MSG: &str = "node updates may not change podCIDR except from \"\" to valid";
    if !old_cidrs.is_empty() {
        if old_cidrs.len() != new_cidrs.len() {
            errs.push(FieldError::forbidden(
                Path::new("spec").child("podCIDRs"),
                CIDR_MSG,
            ));
        } else {
            for (o, n) in old_cidrs.iter().zip(new_cidrs) {
                if o != n {
                    errs.push(FieldError::forbidden(
                        Path::new("spec").child("podCIDRs"),
                        CIDR_MSG,
                    ));
                }
            }
        }
    }
    let old_provider = os.provider_id.as_deref().unwrap_or("");
    if !old_provider.is_empty() && Some(old_provider) != ns.provider_id.as_deref() {
        errs.push(FieldError::forbidden(
            Path::new("spec").child("providerID"),
            "node updates may not change providerID except from \"\" to valid",
        ));
    }
    if let Some(taints) = ns.taints.as_deref().filter(|t| !t.is_empty()) {
        errs.extend(validate_taints(
            taints,
            &Path::new("metadata").child("taints"),
        ));
    }
    if ns.external_id != os.external_id {
        errs.push(FieldError::forbidden(
            Path::new("spec").child("externalID"),
            "may not be updated",
        ));
    }
    errs
}

/// Removes what upstream drops because its feature is gone (dynamic kubelet config).
fn drop_disabled_fields(node: &mut Node, old: Option<&Node>) {
    let old_uses_config = old
        .and_then(|o| o.spec.as_ref())
        .is_some_and(|s| s.config_source.is_some());
    if !old_uses_config && let Some(s) = &mut node.spec {
        s.config_source = None;
    }
    if let Some(st) = &mut node.status {
        st.config = None;
    }
}

impl Strategy for Nodes {
    type Object = Node;

    fn set_defaults(&self, node: &mut Node) {
        // The v1 ↔ internal conversion: `podCIDRs` wins; `podCIDR` mirrors its first entry.
        if let Some(s) = &mut node.spec {
            let single = s.pod_cidr.clone().filter(|c| !c.is_empty());
            if s.pod_cidrs.as_ref().is_none_or(|v| v.is_empty()) {
                s.pod_cidrs = single.map(|c| vec![c]);
            }
            s.pod_cidr = s.pod_cidrs.as_ref().and_then(|v| v.first().cloned());
        }
        if let Some(st) = &mut node.status {
            if st.allocatable.is_none() && st.capacity.is_some() {
                st.allocatable = st.capacity.clone();
            }
            resources::canonicalize_opt(&mut st.capacity);
            resources::canonicalize_opt(&mut st.allocatable);
        }
    }

    fn prepare_for_create(&self, node: &mut Node) {
        drop_disabled_fields(node, None);
    }

    fn prepare_for_update(&self, new: &mut Node, old: &Node) {
        drop_disabled_fields(new, Some(old));
    }

    fn validate(&self, node: &Node) -> Vec<FieldError> {
        validate_node(node)
    }

    fn validate_update(&self, new: &Node, old: &Node) -> Vec<FieldError> {
        let mut errs = validate_node(new);
        errs.extend(validate_node_update(new, old));
        errs
    }

    fn prepare_for_status_update(&self, new: &mut Node, old: &Node) {
        // Upstream defaults the whole body of a status write too (the kubelet's updates).
        self.set_defaults(new);
        drop_disabled_fields(new, Some(old));
    }

    fn validate_status_update(&self, new: &Node, old: &Node) -> Vec<FieldError> {
        validate_node_update(new, old)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests a failed unwrap is a failed assertion
mod tests {
    use super::*;
    use crate::core::testing::*;
    use serde_json::json;

    fn s() -> Arc<dyn DynStrategy> {
        strategy(api::resources::lookup("", "v1", "nodes").unwrap())
    }

    #[test]
    fn registration_keeps_status() {
        let out = create(
            &*s(),
            json!({"metadata": {"name": "n1"}, "spec": {"podCIDR": "10.42.0.0/24"},
                "status": {"capacity": {"cpu": "4", "memory": "8192Mi"},
                           "addresses": [{"type": "InternalIP", "address": "10.0.0.5"}]}}),
        )
        .unwrap();
        assert_eq!(out["spec"]["podCIDRs"], json!(["10.42.0.0/24"]));
        assert_eq!(out["status"]["capacity"]["memory"], "8Gi");
        assert_eq!(
            out["status"]["allocatable"],
            json!({"cpu": "4", "memory": "8Gi"})
        );
        assert_eq!(out["status"]["addresses"][0]["address"], "10.0.0.5");
    }

    #[test]
    fn taints_and_cidrs() {
        let errs = create_err(
            &*s(),
            json!({"metadata": {"name": "n1"}, "spec": {
                "podCIDRs": ["10.42.0.0/24", "10.43.0.0/24"],
                "taints": [{"key": "a", "effect": "NoSchedule"}, {"key": "a", "effect": "NoSchedule"},
                           {"key": "b", "effect": "Sometimes"}, {"key": "c", "value": "bad value", "effect": ""}]}}),
        );
        assert_eq!(
            errs,
            [
                "metadata.taints[1]: Duplicate value: core.Taint{Key:\"a\", Value:\"\", Effect:\"NoSchedule\", TimeAdded:(*v1.Time)(nil)}: taints must be unique by key and effect pair",
                "metadata.taints[2].effect: Unsupported value: \"Sometimes\": supported values: \"NoSchedule\", \"PreferNoSchedule\", \"NoExecute\"",
                "metadata.taints[3].value: Invalid value: \"bad value\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
                "metadata.taints[3].effect: Required value",
                "spec.podCIDRs: Invalid value: []string{\"10.42.0.0/24\", \"10.43.0.0/24\"}: may specify no more than one CIDR for each IP family",
            ]
        );
    }

    #[test]
    fn once_set_fields() {
        let old = create(&*s(), json!({"metadata": {"name": "n1"}})).unwrap();
        // The first assignment is allowed...
        let set = update(
            &*s(),
            merged(
                &old,
                json!({"spec": {"podCIDRs": ["10.42.1.0/24"], "providerID": "k3s://n1"}}),
            ),
            &old,
        )
        .unwrap();
        assert_eq!(set["spec"]["podCIDR"], "10.42.1.0/24");
        // ...changing it is not.
        assert_eq!(
            update_err(
                &*s(),
                merged(
                    &set,
                    json!({"spec": {"podCIDR": null, "podCIDRs": ["10.42.2.0/24"], "providerID": "x"}})
                ),
                &set
            ),
            [
                "spec.podCIDRs: Forbidden: node updates may not change podCIDR except from \"\" to valid",
                "spec.providerID: Forbidden: node updates may not change providerID except from \"\" to valid",
            ]
        );
        // Status updates leave the spec alone and keep the status.
        let st = s()
            .admit_status_update(
                merged(
                    &set,
                    json!({"spec": {"unschedulable": true},
                        "status": {"phase": "Running", "capacity": {"pods": "110"}}}),
                ),
                &set,
            )
            .unwrap()
            .object;
        assert!(st["spec"].get("unschedulable").is_none());
        assert_eq!(st["status"]["phase"], "Running");
        assert_eq!(st["status"]["allocatable"], json!({"pods": "110"}));
    }
}
