//! `metav1.LabelSelector` as the workload strategies need it: field validation
//! (`ValidateLabelSelector`), conversion to a matcher (`LabelSelectorAsSelector`, which fails on
//! requirements validation would also reject), and matching against a label map.

use std::collections::BTreeMap;

use api::validation::{self, FieldError, Path};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// `ValidateLabelSelector` with `AllowInvalidLabelValueInSelector: false`.
pub fn validate(sel: &LabelSelector, path: &Path) -> Vec<FieldError> {
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
            "In" | "NotIn" => {
                if values.is_empty() {
                    errs.push(FieldError::required(
                        p.child("values"),
                        "must be specified when `operator` is 'In' or 'NotIn'",
                    ));
                }
            }
            "Exists" | "DoesNotExist" => {
                if !values.is_empty() {
                    errs.push(FieldError::forbidden(
                        p.child("values"),
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    ));
                }
            }
            other => errs.push(FieldError::invalid(
                p.child("operator"),
                other,
                "not a valid selector operator",
            )),
        }
        errs.extend(validation::errors_for(
            &p.child("key"),
            &req.key,
            validation::qualified_name(&req.key),
        ));
        for (j, v) in values.iter().enumerate() {
            errs.extend(validation::errors_for(
                &p.child("values").index(j),
                v,
                validation::label_value(v),
            ));
        }
    }
    errs
}

/// Whether neither `matchLabels` nor `matchExpressions` was given. The typed decoding cannot tell
/// a missing selector from `{}`, so both count as missing.
pub fn is_unset(sel: &LabelSelector) -> bool {
    sel.match_labels.is_none() && sel.match_expressions.is_none()
}

/// Whether the selector has no requirements at all (matches everything).
pub fn is_empty(sel: &LabelSelector) -> bool {
    sel.match_labels.as_ref().is_none_or(BTreeMap::is_empty)
        && sel.match_expressions.as_ref().is_none_or(Vec::is_empty)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn req(key: &str, op: &str, values: &[&str]) -> LabelSelectorRequirement {
        LabelSelectorRequirement {
            key: key.into(),
            operator: op.into(),
            values: (!values.is_empty()).then(|| values.iter().map(|v| v.to_string()).collect()),
        }
    }

    #[test]
    fn validation_messages() {
        let sel = LabelSelector {
            match_labels: Some(labels(&[("app", "-bad")])),
            match_expressions: Some(vec![
                req("a", "In", &[]),
                req("b", "Exists", &["x"]),
                req("c", "Near", &[]),
            ]),
        };
        let errs: Vec<String> = validate(&sel, &Path::new("spec").child("selector"))
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(errs.len(), 4, "{errs:?}");
        assert!(errs[0].starts_with("spec.selector.matchLabels: Invalid value: \"-bad\""));
        assert_eq!(
            errs[1],
            "spec.selector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'"
        );
        assert_eq!(
            errs[2],
            "spec.selector.matchExpressions[1].values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'"
        );
        assert_eq!(
            errs[3],
            "spec.selector.matchExpressions[2].operator: Invalid value: \"Near\": not a valid selector operator"
        );
    }
}
