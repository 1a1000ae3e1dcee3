//! Where a pod may run: node selectors and affinity, pod (anti-)affinity terms, tolerations
//! and topology spread constraints.

use std::collections::BTreeSet;

use api::validation::{self, FieldError, Path};
use k8s_openapi::api::core::v1::{
    Affinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, PodAffinityTerm, Toleration,
    TopologySpreadConstraint, WeightedPodAffinityTerm,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use crate::workloads::selector;

pub fn label_name(key: &str, path: &Path, errs: &mut Vec<FieldError>) {
    errs.extend(validation::errors_for(
        path,
        key,
        validation::qualified_name(key),
    ));
}

fn node_requirement(
    r: &NodeSelectorRequirement,
    check_values: bool,
    path: &Path,
    errs: &mut Vec<FieldError>,
) {
    let values = r.values.as_deref().unwrap_or(&[]);
    match r.operator.as_str() {
        "In" | "NotIn" => {
            if values.is_empty() {
                errs.push(FieldError::required(
                    path.child("values"),
                    "must be specified when `operator` is 'In' or 'NotIn'",
                ));
            }
        }
        "Exists" | "DoesNotExist" => {
            if !values.is_empty() {
                errs.push(FieldError::forbidden(
                    path.child("values"),
                    "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                ));
            }
        }
        "Gt" | "Lt" => {
            if values.len() != 1 {
                errs.push(FieldError::required(
                    path.child("values"),
                    "must be specified single value when `operator` is 'Lt' or 'Gt'",
                ));
            }
        }
        other => errs.push(FieldError::invalid(
            path.child("operator"),
            other,
            "not a valid selector operator",
        )),
    }
    label_name(&r.key, &path.child("key"), errs);
    if check_values {
        for (i, v) in values.iter().enumerate() {
            errs.extend(validation::errors_for(
                &path.child("values").index(i),
                v,
                validation::label_value(v),
            ));
        }
    }
}

fn node_term(t: &NodeSelectorTerm, check_values: bool, path: &Path, errs: &mut Vec<FieldError>) {
    for (i, r) in t.match_expressions.iter().flatten().enumerate() {
        node_requirement(
            r,
            check_values,
            &path.child("matchExpressions").index(i),
            errs,
        );
    }
    for (i, r) in t.match_fields.iter().flatten().enumerate() {
        let p = path.child("matchFields").index(i);
        let values = r.values.as_deref().unwrap_or(&[]);
        match r.operator.as_str() {
            "In" | "NotIn" => {
                if values.len() != 1 {
                    errs.push(FieldError::required(
                        p.child("values"),
                        "must be only one value when `operator` is 'In' or 'NotIn' for node field selector",
                    ));
                }
            }
            other => errs.push(FieldError::invalid(
                p.child("operator"),
                other,
                "not a valid selector operator",
            )),
        }
        if r.key != "metadata.name" {
            errs.push(FieldError::invalid(
                p.child("key"),
                r.key.as_str(),
                "not a valid field selector key",
            ));
        } else {
            for (j, v) in values.iter().enumerate() {
                errs.extend(validation::errors_for(
                    &p.child("values").index(j),
                    v,
                    validation::dns1123_subdomain(v),
                ));
            }
        }
    }
}

fn node_selector(s: &NodeSelector, path: &Path, errs: &mut Vec<FieldError>) {
    let terms = path.child("nodeSelectorTerms");
    if s.node_selector_terms.is_empty() {
        errs.push(FieldError::required(
            terms,
            "must have at least one node selector term",
        ));
        return;
    }
    for (i, t) in s.node_selector_terms.iter().enumerate() {
        node_term(t, true, &terms.index(i), errs);
    }
}

fn label_keys(
    keys: &[String],
    sel: Option<&LabelSelector>,
    path: &Path,
    errs: &mut Vec<FieldError>,
) {
    if keys.is_empty() {
        return;
    }
    if sel.is_none() {
        errs.push(FieldError::forbidden(
            path,
            "must not be specified when labelSelector is not set",
        ));
        return;
    }
    for (i, k) in keys.iter().enumerate() {
        label_name(k, &path.index(i), errs);
    }
}

fn pod_affinity_term(t: &PodAffinityTerm, path: &Path, errs: &mut Vec<FieldError>) {
    if let Some(s) = &t.label_selector {
        errs.extend(selector::validate(s, &path.child("labelSelector")));
    }
    if let Some(s) = &t.namespace_selector {
        errs.extend(selector::validate(s, &path.child("namespaceSelector")));
    }
    for ns in t.namespaces.iter().flatten() {
        errs.extend(validation::errors_for(
            &path.child("namespace"),
            ns,
            validation::dns1123_label(ns),
        ));
    }
    let match_keys = t.match_label_keys.as_deref().unwrap_or(&[]);
    let mismatch = t.mismatch_label_keys.as_deref().unwrap_or(&[]);
    label_keys(
        match_keys,
        t.label_selector.as_ref(),
        &path.child("matchLabelKeys"),
        errs,
    );
    label_keys(
        mismatch,
        t.label_selector.as_ref(),
        &path.child("mismatchLabelKeys"),
        errs,
    );
    for (i, k) in match_keys.iter().enumerate() {
        if mismatch.contains(k) {
            errs.push(FieldError::invalid(
                path.child("matchLabelKeys").index(i),
                k.as_str(),
                "exists in both matchLabelKeys and mismatchLabelKeys",
            ));
        }
    }
    if t.topology_key.is_empty() {
        errs.push(FieldError::required(
            path.child("topologyKey"),
            "can not be empty",
        ));
    }
    label_name(&t.topology_key, &path.child("topologyKey"), errs);
}

fn weighted_terms(terms: &[WeightedPodAffinityTerm], path: &Path, errs: &mut Vec<FieldError>) {
    for (i, t) in terms.iter().enumerate() {
        if !(1..=100).contains(&t.weight) {
            errs.push(FieldError::invalid(
                path.index(i).child("weight"),
                t.weight,
                "must be in the range 1-100",
            ));
        }
        pod_affinity_term(
            &t.pod_affinity_term,
            &path.index(i).child("podAffinityTerm"),
            errs,
        );
    }
}

pub fn affinity(a: &Affinity, path: &Path, errs: &mut Vec<FieldError>) {
    if let Some(na) = &a.node_affinity {
        let np = path.child("nodeAffinity");
        if let Some(req) = &na.required_during_scheduling_ignored_during_execution {
            node_selector(
                req,
                &np.child("requiredDuringSchedulingIgnoredDuringExecution"),
                errs,
            );
        }
        let pp = np.child("preferredDuringSchedulingIgnoredDuringExecution");
        for (i, t) in na
            .preferred_during_scheduling_ignored_during_execution
            .iter()
            .flatten()
            .enumerate()
        {
            if !(1..=100).contains(&t.weight) {
                errs.push(FieldError::invalid(
                    pp.index(i).child("weight"),
                    t.weight,
                    "must be in the range 1-100",
                ));
            }
            // Preferred terms may name label values that do not exist yet.
            node_term(&t.preference, false, &pp.index(i).child("preference"), errs);
        }
    }
    for (name, aff) in [
        (
            "podAffinity",
            a.pod_affinity.as_ref().map(|p| {
                (
                    &p.required_during_scheduling_ignored_during_execution,
                    &p.preferred_during_scheduling_ignored_during_execution,
                )
            }),
        ),
        (
            "podAntiAffinity",
            a.pod_anti_affinity.as_ref().map(|p| {
                (
                    &p.required_during_scheduling_ignored_during_execution,
                    &p.preferred_during_scheduling_ignored_during_execution,
                )
            }),
        ),
    ] {
        let Some((required, preferred)) = aff else {
            continue;
        };
        let p = path.child(name);
        for (i, t) in required.iter().flatten().enumerate() {
            pod_affinity_term(
                t,
                &p.child("requiredDuringSchedulingIgnoredDuringExecution")
                    .index(i),
                errs,
            );
        }
        if let Some(pref) = preferred {
            weighted_terms(
                pref,
                &p.child("preferredDuringSchedulingIgnoredDuringExecution"),
                errs,
            );
        }
    }
}

/// `ValidateTolerations`.
pub fn tolerations(list: &[Toleration], path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, t) in list.iter().enumerate() {
        let p = path.index(i);
        let key = t.key.as_deref().unwrap_or("");
        let op = t.operator.as_deref().unwrap_or("");
        let effect = t.effect.as_deref().unwrap_or("");
        let value = t.value.as_deref().unwrap_or("");
        if !key.is_empty() {
            label_name(key, &p.child("key"), &mut errs);
        }
        if key.is_empty() && op != "Exists" {
            errs.push(FieldError::invalid(
                p.child("operator"),
                op,
                "operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
            ));
        }
        if t.toleration_seconds.is_some() && effect != "NoExecute" {
            errs.push(FieldError::invalid(
                p.child("effect"),
                effect,
                "effect must be 'NoExecute' when `tolerationSeconds` is set",
            ));
        }
        match op {
            "Equal" | "" => {
                let problems = validation::label_value(value);
                if !problems.is_empty() {
                    errs.push(FieldError::invalid(
                        p.child("operator"),
                        value,
                        problems.join(";"),
                    ));
                }
            }
            "Exists" => {
                if !value.is_empty() {
                    errs.push(FieldError::invalid(
                        p.child("operator"),
                        value,
                        "value must be empty when `operator` is 'Exists'",
                    ));
                }
            }
            other => errs.push(FieldError::not_supported(
                p.child("operator"),
                other,
                &["Equal", "Exists"],
            )),
        }
        if !effect.is_empty() && !["NoSchedule", "PreferNoSchedule", "NoExecute"].contains(&effect)
        {
            errs.push(FieldError::not_supported(
                p.child("effect"),
                effect,
                &["NoSchedule", "PreferNoSchedule", "NoExecute"],
            ));
        }
    }
    errs
}

pub fn topology_spread(list: &[TopologySpreadConstraint], path: &Path, errs: &mut Vec<FieldError>) {
    for (i, c) in list.iter().enumerate() {
        let p = path.index(i);
        if c.max_skew <= 0 {
            errs.push(FieldError::invalid(
                p.child("maxSkew"),
                c.max_skew,
                "must be greater than zero",
            ));
        }
        if c.topology_key.is_empty() {
            errs.push(FieldError::required(
                p.child("topologyKey"),
                "can not be empty",
            ));
        }
        let when = c.when_unsatisfiable.as_str();
        if when != "DoNotSchedule" && when != "ScheduleAnyway" {
            errs.push(FieldError::not_supported(
                p.child("whenUnsatisfiable"),
                when,
                &["DoNotSchedule", "ScheduleAnyway"],
            ));
        }
        if list[i + 1..].iter().any(|o| {
            o.topology_key == c.topology_key && o.when_unsatisfiable == c.when_unsatisfiable
        }) {
            errs.push(FieldError::duplicate(
                p.child("{topologyKey, whenUnsatisfiable}"),
                format!("{{{}, {}}}", c.topology_key, c.when_unsatisfiable),
            ));
        }
        if let Some(m) = c.min_domains {
            if m <= 0 {
                errs.push(FieldError::invalid(
                    p.child("minDomains"),
                    m,
                    "must be greater than zero",
                ));
            }
            if when != "DoNotSchedule" {
                errs.push(FieldError::invalid(
                    p.child("minDomains"),
                    m,
                    format!(
                        "can only use minDomains if whenUnsatisfiable=DoNotSchedule, not {when}"
                    ),
                ));
            }
        }
        for (policy, name) in [
            (&c.node_affinity_policy, "nodeAffinityPolicy"),
            (&c.node_taints_policy, "nodeTaintsPolicy"),
        ] {
            if let Some(v) = policy
                && v != "Honor"
                && v != "Ignore"
            {
                errs.push(FieldError::not_supported(
                    p.child(name),
                    v.as_str(),
                    &["Honor", "Ignore"],
                ));
            }
        }
        let keys = c.match_label_keys.as_deref().unwrap_or(&[]);
        if !keys.is_empty() {
            let kp = p.child("matchLabelKeys");
            let mut selector_keys = BTreeSet::new();
            match &c.label_selector {
                Some(s) => {
                    selector_keys.extend(s.match_labels.iter().flatten().map(|(k, _)| k.as_str()));
                    selector_keys
                        .extend(s.match_expressions.iter().flatten().map(|r| r.key.as_str()));
                }
                None => errs.push(FieldError::forbidden(
                    &kp,
                    "must not be specified when labelSelector is not set",
                )),
            }
            for (j, k) in keys.iter().enumerate() {
                label_name(k, &kp.index(j), errs);
                if selector_keys.contains(k.as_str()) {
                    errs.push(FieldError::invalid(
                        kp.index(j),
                        k.as_str(),
                        "exists in both matchLabelKeys and labelSelector",
                    ));
                }
            }
        }
        if let Some(s) = &c.label_selector {
            errs.extend(selector::validate(s, &p.child("labelSelector")));
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::PodSpec;

    fn tol(key: &str, op: &str, value: &str, effect: &str, secs: Option<i64>) -> Toleration {
        let s = |v: &str| (!v.is_empty()).then(|| v.to_string());
        Toleration {
            key: s(key),
            operator: s(op),
            value: s(value),
            effect: s(effect),
            toleration_seconds: secs,
        }
    }

    #[test]
    fn toleration_rules() {
        let p = Path::new("spec").child("tolerations");
        let msgs: Vec<String> = tolerations(
            &[
                tol("", "Equal", "", "", None),
                tol("k", "Exists", "v", "", None),
                tol("k", "", "v", "NoSchedule", Some(5)),
                tol("k", "Near", "", "Sometimes", None),
            ],
            &p,
        )
        .iter()
        .map(ToString::to_string)
        .collect();
        assert_eq!(
            msgs,
            [
                "spec.tolerations[0].operator: Invalid value: \"Equal\": operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
                "spec.tolerations[1].operator: Invalid value: \"v\": value must be empty when `operator` is 'Exists'",
                "spec.tolerations[2].effect: Invalid value: \"NoSchedule\": effect must be 'NoExecute' when `tolerationSeconds` is set",
                "spec.tolerations[3].operator: Unsupported value: \"Near\": supported values: \"Equal\", \"Exists\"",
                "spec.tolerations[3].effect: Unsupported value: \"Sometimes\": supported values: \"NoSchedule\", \"PreferNoSchedule\", \"NoExecute\"",
            ]
        );
    }

    #[test]
    fn topology_spread_rules() {
        let spec = PodSpec {
            topology_spread_constraints: Some(vec![
                TopologySpreadConstraint {
                    max_skew: 0,
                    topology_key: "zone".into(),
                    when_unsatisfiable: "DoNotSchedule".into(),
                    ..Default::default()
                },
                TopologySpreadConstraint {
                    max_skew: 1,
                    topology_key: "zone".into(),
                    when_unsatisfiable: "DoNotSchedule".into(),
                    ..Default::default()
                },
            ]),
            ..Default::default()
        };
        let mut errs = Vec::new();
        topology_spread(
            spec.topology_spread_constraints.as_deref().unwrap(),
            &Path::new("spec").child("topologySpreadConstraints"),
            &mut errs,
        );
        let msgs: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert_eq!(
            msgs,
            [
                "spec.topologySpreadConstraints[0].maxSkew: Invalid value: 0: must be greater than zero",
                "spec.topologySpreadConstraints[0].{topologyKey, whenUnsatisfiable}: Duplicate value: \"{zone, DoNotSchedule}\"",
            ]
        );
    }
}
