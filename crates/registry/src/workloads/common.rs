//! Small validation helpers the workload strategies share, and the rendering of Go values in
//! error messages.
//!
//! Upstream prints a non-string invalid value with Go's `%#v`, so a label map shows as
//! `map[string]string{"app":"web"}` and a selector as `v1.LabelSelector{...}`. Clients and
//! people grep for those texts, so [`go_string_map`] and [`go_label_selector`] reproduce them.

use std::collections::BTreeMap;

use api::validation::{ErrorKind, FieldError, Path};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// Upstream's `IsNegativeErrorMsg`.
pub const NEGATIVE: &str = "must be greater than or equal to 0";
/// Upstream's `FieldImmutableErrorMsg`.
pub const IMMUTABLE: &str = "field is immutable";

/// An `Invalid value` error whose value is already rendered (Go `%#v` form).
pub fn invalid_rendered(
    path: impl Into<String>,
    rendered: String,
    detail: impl Into<String>,
) -> FieldError {
    FieldError {
        field: path.into(),
        kind: ErrorKind::Invalid(rendered),
        detail: detail.into(),
    }
}

/// Upstream's `field.NotFound`: the value names something that does not exist.
pub fn not_found(path: impl Into<String>, value: &str) -> FieldError {
    FieldError::not_found(path, value)
}

/// `ValidateNonnegativeField`.
pub fn non_negative(value: i64, path: &Path, errs: &mut Vec<FieldError>) {
    if value < 0 {
        errs.push(FieldError::invalid(path, value, NEGATIVE));
    }
}

/// `ValidateNonnegativeField` for an optional field (absent is fine).
pub fn non_negative_opt(value: Option<impl Into<i64>>, path: &Path, errs: &mut Vec<FieldError>) {
    if let Some(v) = value {
        non_negative(v.into(), path, errs);
    }
}

/// Go's `%#v` of a `map[string]string` (keys sorted, as `fmt` prints maps).
pub fn go_string_map(map: Option<&BTreeMap<String, String>>) -> String {
    match map {
        None => "map[string]string(nil)".to_string(),
        Some(m) => {
            let entries: Vec<String> = m.iter().map(|(k, v)| format!("{k:?}:{v:?}")).collect();
            format!("map[string]string{{{}}}", entries.join(", "))
        }
    }
}

/// Go's `%#v` of a `[]string`.
pub fn go_string_slice(values: Option<&[String]>) -> String {
    match values {
        None => "[]string(nil)".to_string(),
        Some(v) => {
            let items: Vec<String> = v.iter().map(|s| format!("{s:?}")).collect();
            format!("[]string{{{}}}", items.join(", "))
        }
    }
}

/// Go's `%#v` of a `metav1.LabelSelector` value, as upstream's immutability and empty-selector
/// errors print it.
pub fn go_label_selector(sel: &LabelSelector) -> String {
    let exprs = match &sel.match_expressions {
        None => "[]v1.LabelSelectorRequirement(nil)".to_string(),
        Some(list) => {
            let items: Vec<String> = list
                .iter()
                .map(|r| {
                    format!(
                        "v1.LabelSelectorRequirement{{Key:{:?}, Operator:{:?}, Values:{}}}",
                        r.key,
                        r.operator,
                        go_string_slice(r.values.as_deref())
                    )
                })
                .collect();
            format!("[]v1.LabelSelectorRequirement{{{}}}", items.join(", "))
        }
    };
    format!(
        "v1.LabelSelector{{MatchLabels:{}, MatchExpressions:{exprs}}}",
        go_string_map(sel.match_labels.as_ref())
    )
}

/// Go's `%#v` of an `intstr.IntOrString` value.
pub fn go_int_or_string(v: &IntOrString) -> String {
    match v {
        IntOrString::Int(i) => format!("intstr.IntOrString{{Type:0, IntVal:{i}, StrVal:\"\"}}"),
        IntOrString::String(s) => format!("intstr.IntOrString{{Type:1, IntVal:0, StrVal:{s:?}}}"),
    }
}

/// The percentage of a `"25%"` string, if it is one (upstream's `getPercentValue`).
fn percent_value(s: &str) -> Option<i64> {
    let digits = s.strip_suffix('%')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Upstream's `getIntOrPercentValue`: the number of an int, or of a valid percentage; 0 for
/// anything else (as Go's `IntValue` of a non-numeric string).
pub fn int_or_percent_value(v: &IntOrString) -> i64 {
    match v {
        IntOrString::Int(i) => i64::from(*i),
        IntOrString::String(s) => percent_value(s).or_else(|| s.parse().ok()).unwrap_or(0),
    }
}

/// `ValidatePositiveIntOrPercent`.
pub fn validate_int_or_percent(v: &IntOrString, path: &Path, errs: &mut Vec<FieldError>) {
    match v {
        IntOrString::String(s) => {
            if percent_value(s).is_none() {
                errs.push(invalid_rendered(
                    path,
                    go_int_or_string(v),
                    "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')",
                ));
            }
        }
        IntOrString::Int(i) => non_negative(i64::from(*i), path, errs),
    }
}

/// `IsNotMoreThan100Percent`.
pub fn not_more_than_100_percent(v: &IntOrString, path: &Path, errs: &mut Vec<FieldError>) {
    if let IntOrString::String(s) = v
        && percent_value(s).is_some_and(|p| p > 100)
    {
        errs.push(invalid_rendered(
            path,
            go_int_or_string(v),
            "must not be greater than 100%",
        ));
    }
}

/// The status counts ReplicaSets and ReplicationControllers share
/// (`ValidateReplicaSetStatus` / `ValidateReplicationControllerStatus`).
pub fn replica_counts(
    replicas: i32,
    fully_labeled: i32,
    ready: i32,
    available: i32,
    observed_generation: i64,
    path: &Path,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (v, name) in [
        (replicas, "replicas"),
        (fully_labeled, "fullyLabeledReplicas"),
        (ready, "readyReplicas"),
        (available, "availableReplicas"),
    ] {
        non_negative(i64::from(v), &path.child(name), &mut errs);
    }
    non_negative(
        observed_generation,
        &path.child("observedGeneration"),
        &mut errs,
    );
    let msg = "cannot be greater than status.replicas";
    for (v, name) in [
        (fully_labeled, "fullyLabeledReplicas"),
        (ready, "readyReplicas"),
        (available, "availableReplicas"),
    ] {
        if v > replicas {
            errs.push(FieldError::invalid(path.child(name), v, msg));
        }
    }
    if available > ready {
        errs.push(FieldError::invalid(
            path.child("availableReplicas"),
            available,
            "cannot be greater than readyReplicas",
        ));
    }
    errs
}

/// `IsDecremented` on `status.collisionCount`.
pub fn collision_count_decremented(new: Option<i32>, old: Option<i32>, errs: &mut Vec<FieldError>) {
    let decremented = match (new, old) {
        (None, Some(_)) => true,
        (Some(n), Some(o)) => n < o,
        _ => false,
    };
    if decremented {
        errs.push(FieldError::invalid(
            Path::new("status").child("collisionCount"),
            new.unwrap_or(0),
            "cannot be decremented",
        ));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    #[test]
    fn go_rendering() {
        let mut m = BTreeMap::new();
        m.insert("tier".to_string(), "web".to_string());
        m.insert("app".to_string(), "nginx".to_string());
        assert_eq!(
            go_string_map(Some(&m)),
            r#"map[string]string{"app":"nginx", "tier":"web"}"#
        );
        assert_eq!(go_string_map(None), "map[string]string(nil)");
        let sel = LabelSelector {
            match_labels: Some(m),
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "k".into(),
                operator: "In".into(),
                values: Some(vec!["a".into()]),
            }]),
        };
        assert_eq!(
            go_label_selector(&sel),
            r#"v1.LabelSelector{MatchLabels:map[string]string{"app":"nginx", "tier":"web"}, MatchExpressions:[]v1.LabelSelectorRequirement{v1.LabelSelectorRequirement{Key:"k", Operator:"In", Values:[]string{"a"}}}}"#
        );
        assert_eq!(
            go_label_selector(&LabelSelector::default()),
            "v1.LabelSelector{MatchLabels:map[string]string(nil), MatchExpressions:[]v1.LabelSelectorRequirement(nil)}"
        );
    }

    #[test]
    fn int_or_percent() {
        let p = Path::new("x");
        let mut errs = Vec::new();
        validate_int_or_percent(&IntOrString::String("25%".into()), &p, &mut errs);
        validate_int_or_percent(&IntOrString::Int(3), &p, &mut errs);
        assert!(errs.is_empty());
        validate_int_or_percent(&IntOrString::String("25".into()), &p, &mut errs);
        validate_int_or_percent(&IntOrString::Int(-1), &p, &mut errs);
        not_more_than_100_percent(&IntOrString::String("101%".into()), &p, &mut errs);
        let msgs: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert_eq!(msgs.len(), 3);
        assert!(msgs[0].starts_with(
            r#"x: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:"25"}: a valid percent string"#
        ));
        assert_eq!(
            msgs[1],
            "x: Invalid value: -1: must be greater than or equal to 0"
        );
        assert!(msgs[2].ends_with("must not be greater than 100%"));
        assert_eq!(int_or_percent_value(&IntOrString::String("25%".into())), 25);
        assert_eq!(int_or_percent_value(&IntOrString::Int(0)), 0);
    }
}
