//! Validation of a Job's `podFailurePolicy` and `successPolicy`, and of the index-interval
//! strings (`"0-3,7"`) success policies and the status use.

use std::collections::BTreeSet;

use api::validation::{self, ErrorKind, FieldError, Path};
use k8s_openapi::api::batch::v1::{JobSpec, PodFailurePolicy, PodFailurePolicyRule, SuccessPolicy};

use crate::workloads::common::non_negative;

const ACTIONS: &[&str] = &["Count", "FailIndex", "FailJob", "Ignore"];

/// An `Invalid` error that omits the value, as upstream's `field.OmitValueType{}` renders:
/// `Invalid value: <detail>`.
pub fn invalid_omitted(path: &Path, detail: &str) -> FieldError {
    FieldError {
        field: path.to_string(),
        kind: ErrorKind::Invalid(detail.to_string()),
        detail: String::new(),
    }
}

fn rule(
    spec: &JobSpec,
    r: &PodFailurePolicyRule,
    containers: &BTreeSet<&str>,
    path: &Path,
    errs: &mut Vec<FieldError>,
) {
    let ap = path.child("action");
    match r.action.as_str() {
        "" => errs.push(FieldError::required(
            &ap,
            "valid values: [\"Count\" \"FailIndex\" \"FailJob\" \"Ignore\"]",
        )),
        "FailIndex" if spec.backoff_limit_per_index.is_none() => {
            errs.push(FieldError::invalid(
                &ap,
                "FailIndex",
                "requires the backoffLimitPerIndex to be set",
            ));
        }
        a if !ACTIONS.contains(&a) => errs.push(FieldError::not_supported(&ap, a, ACTIONS)),
        _ => {}
    }
    if let Some(oc) = &r.on_exit_codes {
        let op = path.child("onExitCodes");
        match oc.operator.as_str() {
            "" => errs.push(FieldError::required(
                op.child("operator"),
                "valid values: [\"In\" \"NotIn\"]",
            )),
            "In" | "NotIn" => {}
            other => errs.push(FieldError::not_supported(
                op.child("operator"),
                other,
                &["In", "NotIn"],
            )),
        }
        if let Some(c) = &oc.container_name
            && !containers.contains(c.as_str())
        {
            errs.push(FieldError::invalid(
                op.child("containerName"),
                c.as_str(),
                "must be one of the container or initContainer names in the pod template",
            ));
        }
        let vp = op.child("values");
        if oc.values.is_empty() {
            errs.push(FieldError::invalid(
                &vp,
                serde_json::Value::Array(vec![]),
                "at least one value is required",
            ));
        } else if oc.values.len() > 255 {
            errs.push(FieldError::too_many(&vp, 255));
        }
        let mut seen = BTreeSet::new();
        let mut ordered = true;
        for (j, v) in oc.values.iter().enumerate() {
            if oc.operator == "In" && *v == 0 {
                errs.push(FieldError::invalid(
                    vp.index(j),
                    *v,
                    "must not be 0 for the In operator",
                ));
            }
            if !seen.insert(*v) {
                errs.push(FieldError::duplicate(vp.index(j), *v));
            }
            if j > 0 && oc.values[j - 1] > *v {
                ordered = false;
            }
        }
        if !ordered {
            errs.push(FieldError::invalid(
                &vp,
                serde_json::to_value(&oc.values).unwrap_or_default(),
                "must be ordered",
            ));
        }
    }
    let conditions = r.on_pod_conditions.as_deref().unwrap_or(&[]);
    if !conditions.is_empty() {
        let cp = path.child("onPodConditions");
        if conditions.len() > 20 {
            errs.push(FieldError::too_many(&cp, 20));
        }
        for (j, c) in conditions.iter().enumerate() {
            let pp = cp.index(j);
            errs.extend(validation::errors_for(
                &pp.child("type"),
                &c.type_,
                validation::qualified_name(&c.type_),
            ));
            match c.status.as_str() {
                "" => errs.push(FieldError::required(
                    pp.child("status"),
                    "valid values: [\"False\" \"True\" \"Unknown\"]",
                )),
                "True" | "False" | "Unknown" => {}
                other => errs.push(FieldError::not_supported(
                    pp.child("status"),
                    other,
                    &["False", "True", "Unknown"],
                )),
            }
        }
    }
    match (r.on_exit_codes.is_some(), !conditions.is_empty()) {
        (true, true) => errs.push(invalid_omitted(
            path,
            "specifying both OnExitCodes and OnPodConditions is not supported",
        )),
        (false, false) => errs.push(invalid_omitted(
            path,
            "specifying one of OnExitCodes and OnPodConditions is required",
        )),
        _ => {}
    }
}

/// `validatePodFailurePolicy`.
pub fn pod_failure_policy(
    spec: &JobSpec,
    policy: &PodFailurePolicy,
    path: &Path,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let rp = path.child("rules");
    if policy.rules.len() > 20 {
        errs.push(FieldError::too_many(&rp, 20));
    }
    let pod = spec.template.spec.as_ref();
    let containers: BTreeSet<&str> = pod
        .iter()
        .flat_map(|s| {
            s.containers
                .iter()
                .chain(s.init_containers.iter().flatten())
        })
        .map(|c| c.name.as_str())
        .collect();
    for (i, r) in policy.rules.iter().enumerate() {
        rule(spec, r, &containers, &rp.index(i), &mut errs);
    }
    errs
}

/// `parseIndexInterval`.
fn interval(s: &str, completions: i32) -> Result<(i32, i32), String> {
    let parts: Vec<&str> = s.split('-').collect();
    if parts.len() > 2 {
        return Err(format!(
            "the fragment {s:?} violates the requirement that an index interval can have at most two parts separated by '-'"
        ));
    }
    let num = |p: &str| -> Result<i32, String> {
        let v: i64 = p
            .parse()
            .map_err(|_| format!("cannot convert string to integer for index: {p:?}"))?;
        if v >= i64::from(completions) {
            return Err(format!("too large index: {p:?}"));
        }
        i32::try_from(v).map_err(|_| format!("too large index: {p:?}"))
    };
    let x = num(parts[0])?;
    if parts.len() == 1 {
        return Ok((x, x));
    }
    let y = num(parts[1])?;
    if x >= y {
        return Err(format!("non-increasing order, previous: {x}, current: {y}"));
    }
    Ok((x, y))
}

/// `validateIndexesFormat`: the number of indexes a `"0-2,5"` string names.
pub fn indexes(s: &str, completions: i32) -> Result<i32, String> {
    if s.is_empty() {
        return Ok(0);
    }
    let mut last: Option<i32> = None;
    let mut total = 0i32;
    for part in s.split(',') {
        let (x, y) = interval(part, completions)?;
        if let Some(l) = last
            && l >= x
        {
            return Err(format!("non-increasing order, previous: {l}, current: {x}"));
        }
        total = total.saturating_add(y - x + 1);
        last = Some(y);
    }
    Ok(total)
}

/// `validateSuccessPolicy` (the caller checks the completion mode).
pub fn success_policy(spec: &JobSpec, policy: &SuccessPolicy, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let rp = path.child("rules");
    if policy.rules.is_empty() {
        errs.push(FieldError::required(
            &rp,
            "at least one rules must be specified when the successPolicy is specified",
        ));
    }
    if policy.rules.len() > 20 {
        errs.push(FieldError::too_many(&rp, 20));
    }
    let completions = spec.completions.unwrap_or(0);
    for (i, r) in policy.rules.iter().enumerate() {
        let p = rp.index(i);
        if r.succeeded_count.is_none() && r.succeeded_indexes.is_none() {
            errs.push(FieldError::required(
                &p,
                "at least one of succeededCount or succeededIndexes must be specified",
            ));
        }
        let mut total = 0;
        if let Some(si) = &r.succeeded_indexes {
            let sp = p.child("succeededIndexes");
            if si.len() > 64 * 1024 {
                errs.push(FieldError::too_long(&sp, 64 * 1024));
            }
            match indexes(si, completions) {
                Ok(t) => total = t,
                Err(e) => errs.push(FieldError::invalid(
                    &sp,
                    si.as_str(),
                    format!("error parsing succeededIndexes: {e}"),
                )),
            }
        }
        if let Some(c) = r.succeeded_count {
            let cp = p.child("succeededCount");
            non_negative(i64::from(c), &cp, &mut errs);
            if c > completions {
                errs.push(FieldError::invalid(
                    &cp,
                    c,
                    format!("must be less than or equal to {completions} (the number of specified completions)"),
                ));
            }
            if r.succeeded_indexes.is_some() && c > total {
                errs.push(FieldError::invalid(
                    &cp,
                    c,
                    format!("must be less than or equal to {total} (the number of indexes in the specified succeededIndexes field)"),
                ));
            }
        }
    }
    errs
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn index_strings() {
        assert_eq!(indexes("0-2,5", 10), Ok(4));
        assert_eq!(indexes("", 10), Ok(0));
        assert_eq!(
            indexes("3,1", 10),
            Err("non-increasing order, previous: 3, current: 1".into())
        );
        assert_eq!(indexes("12", 10), Err("too large index: \"12\"".into()));
        assert_eq!(
            indexes("a", 10),
            Err("cannot convert string to integer for index: \"a\"".into())
        );
    }
}
