//! Validation of label selectors (`metav1.LabelSelector`), node selectors (PV node affinity)
//! and topology selector terms (StorageClass `allowedTopologies`), as upstream words it.

use std::collections::BTreeMap;

use api::validation::{self, FieldError, Path};
use k8s_openapi::api::core::v1::{NodeSelector, NodeSelectorRequirement, TopologySelectorTerm};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use super::{label_value, qualified_name};

/// Upstream's `ValidateLabelSelector` (label values are checked).
pub fn label_selector(sel: &LabelSelector, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Some(labels) = &sel.match_labels {
        errs.extend(validation::validate_labels(
            labels,
            &path.child("matchLabels"),
        ));
    }
    for (i, req) in sel.match_expressions.iter().flatten().enumerate() {
        let p = path.child("matchExpressions").index(i);
        let values = req.values.as_deref().unwrap_or(&[]);
        match req.operator.as_str() {
            "In" | "NotIn" if values.is_empty() => errs.push(FieldError::required(
                p.child("values"),
                "must be specified when `operator` is 'In' or 'NotIn'",
            )),
            "Exists" | "DoesNotExist" if !values.is_empty() => errs.push(FieldError::forbidden(
                p.child("values"),
                "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
            )),
            "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
            other => errs.push(FieldError::invalid(
                p.child("operator"),
                other,
                "not a valid selector operator",
            )),
        }
        errs.extend(qualified_name(&p.child("key"), &req.key));
        for (j, v) in values.iter().enumerate() {
            errs.extend(label_value(&p.child("values").index(j), v));
        }
    }
    errs
}

/// Upstream's `ValidateNodeSelector`.
pub fn node_selector(sel: &NodeSelector, path: &Path) -> Vec<FieldError> {
    let terms = path.child("nodeSelectorTerms");
    if sel.node_selector_terms.is_empty() {
        return vec![FieldError::required(
            terms,
            "must have at least one node selector term",
        )];
    }
    let mut errs = Vec::new();
    for (i, term) in sel.node_selector_terms.iter().enumerate() {
        let p = terms.index(i);
        for (j, req) in term.match_expressions.iter().flatten().enumerate() {
            errs.extend(node_selector_requirement(
                req,
                &p.child("matchExpressions").index(j),
            ));
        }
        for (j, req) in term.match_fields.iter().flatten().enumerate() {
            errs.extend(node_field_requirement(
                req,
                &p.child("matchFields").index(j),
            ));
        }
    }
    errs
}

fn node_selector_requirement(req: &NodeSelectorRequirement, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let values = req.values.as_deref().unwrap_or(&[]);
    match req.operator.as_str() {
        "In" | "NotIn" if values.is_empty() => errs.push(FieldError::required(
            path.child("values"),
            "must be specified when `operator` is 'In' or 'NotIn'",
        )),
        "Exists" | "DoesNotExist" if !values.is_empty() => errs.push(FieldError::forbidden(
            path.child("values"),
            "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
        )),
        "Gt" | "Lt" if values.len() != 1 => errs.push(FieldError::required(
            path.child("values"),
            "must be specified single value when `operator` is 'Lt' or 'Gt'",
        )),
        "In" | "NotIn" | "Exists" | "DoesNotExist" | "Gt" | "Lt" => {}
        other => errs.push(FieldError::invalid(
            path.child("operator"),
            other,
            "not a valid selector operator",
        )),
    }
    errs.extend(qualified_name(&path.child("key"), &req.key));
    for (j, v) in values.iter().enumerate() {
        errs.extend(label_value(&path.child("values").index(j), v));
    }
    errs
}

fn node_field_requirement(req: &NodeSelectorRequirement, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let values = req.values.as_deref().unwrap_or(&[]);
    match req.operator.as_str() {
        "In" | "NotIn" => {
            if values.len() != 1 {
                errs.push(FieldError::required(
                    path.child("values"),
                    "must be only one value when `operator` is 'In' or 'NotIn' for node field selector",
                ));
            }
        }
        other => errs.push(FieldError::invalid(
            path.child("operator"),
            other,
            "not a valid selector operator",
        )),
    }
    if req.key == "metadata.name" {
        for (i, v) in values.iter().enumerate() {
            errs.extend(validation::errors_for(
                &path.child("values").index(i),
                v,
                validation::dns1123_subdomain(v),
            ));
        }
    } else {
        errs.push(FieldError::invalid(
            path.child("key"),
            req.key.as_str(),
            "not a valid field selector key",
        ));
    }
    errs
}

/// Upstream's `ValidateTopologySelectorTerm`; also returns the term as a key → values map so
/// callers can detect duplicate terms.
pub fn topology_selector_term(
    term: &TopologySelectorTerm,
    path: &Path,
) -> (BTreeMap<String, Vec<String>>, Vec<FieldError>) {
    let mut errs = Vec::new();
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (i, req) in term.match_label_expressions.iter().flatten().enumerate() {
        let p = path.child("matchLabelExpressions").index(i);
        errs.extend(qualified_name(&p.child("key"), &req.key));
        if req.values.is_empty() {
            errs.push(FieldError::required(
                p.child("values"),
                "must specify as least one value",
            ));
        }
        let mut seen: Vec<String> = Vec::new();
        for (j, v) in req.values.iter().enumerate() {
            let vp = p.child("values").index(j);
            errs.extend(label_value(&vp, v));
            if seen.contains(v) {
                errs.push(FieldError::duplicate(vp, v.as_str()));
            }
            seen.push(v.clone());
        }
        if map.contains_key(&req.key) {
            errs.push(FieldError::duplicate(p.child("key"), req.key.as_str()));
        }
        seen.sort();
        map.insert(req.key.clone(), seen);
    }
    (map, errs)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests a failed unwrap is a failed assertion
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::NodeSelectorTerm;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    #[test]
    fn label_selectors() {
        let sel = LabelSelector {
            match_labels: None,
            match_expressions: Some(vec![
                LabelSelectorRequirement {
                    key: "app".into(),
                    operator: "In".into(),
                    values: None,
                },
                LabelSelectorRequirement {
                    key: "tier".into(),
                    operator: "Maybe".into(),
                    values: None,
                },
            ]),
        };
        let errs: Vec<String> = label_selector(&sel, &Path::new("spec.selector"))
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            errs,
            [
                "spec.selector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'",
                "spec.selector.matchExpressions[1].operator: Invalid value: \"Maybe\": not a valid selector operator",
            ]
        );
    }

    #[test]
    fn node_selectors() {
        let empty = NodeSelector {
            node_selector_terms: vec![],
        };
        assert_eq!(
            node_selector(&empty, &Path::new("spec.nodeAffinity.required"))[0].to_string(),
            "spec.nodeAffinity.required.nodeSelectorTerms: Required value: must have at least one node selector term"
        );
        let sel = NodeSelector {
            node_selector_terms: vec![NodeSelectorTerm {
                match_expressions: Some(vec![NodeSelectorRequirement {
                    key: "kubernetes.io/hostname".into(),
                    operator: "Gt".into(),
                    values: Some(vec!["1".into(), "2".into()]),
                }]),
                match_fields: Some(vec![NodeSelectorRequirement {
                    key: "spec.nodeName".into(),
                    operator: "In".into(),
                    values: Some(vec!["n".into()]),
                }]),
            }],
        };
        let errs = node_selector(&sel, &Path::new("r"));
        assert_eq!(errs.len(), 2);
        assert_eq!(
            errs[1].to_string(),
            "r.nodeSelectorTerms[0].matchFields[0].key: Invalid value: \"spec.nodeName\": not a valid field selector key"
        );
    }
}
