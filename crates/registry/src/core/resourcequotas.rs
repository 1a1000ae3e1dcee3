//! ResourceQuotas: resource names and amounts in `spec.hard` (and in the status the quota
//! controller writes), scopes and scope selectors, and immutable scopes, as upstream's
//! `ValidateResourceQuota(Update|StatusUpdate)`.

use std::collections::BTreeMap;
use std::sync::Arc;

use api::resources::ResourceInfo;
use api::validation::{FieldError, Path};
use k8s_openapi::api::core::v1::{ResourceQuota, ResourceQuotaSpec, ResourceQuotaStatus};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::DynStrategy;
use crate::core::common::{self, go, resources};
use crate::strategy::{Adapter, Strategy};

pub fn strategy(info: &'static ResourceInfo) -> Arc<dyn DynStrategy> {
    Arc::new(Adapter::new(info, ResourceQuotas))
}

struct ResourceQuotas;

const SCOPES: &[&str] = &[
    "Terminating",
    "NotTerminating",
    "BestEffort",
    "NotBestEffort",
    "PriorityClass",
    "CrossNamespacePodAffinity",
];

/// Upstream's `IsResourceQuotaScopeValidForResource`.
fn scope_valid_for(scope: &str, resource: &str) -> bool {
    let pod_count = resource == "pods";
    let pod_compute = matches!(
        resource,
        "cpu" | "memory" | "limits.cpu" | "limits.memory" | "requests.cpu" | "requests.memory"
    );
    match scope {
        "Terminating"
        | "NotTerminating"
        | "NotBestEffort"
        | "PriorityClass"
        | "CrossNamespacePodAffinity" => pod_count || pod_compute,
        "BestEffort" => pod_count,
        _ => true,
    }
}

fn go_scopes(scopes: Option<&[String]>) -> String {
    go::str_slice("core.ResourceQuotaScope", scopes)
}

fn validate_amounts(list: Option<&BTreeMap<String, Quantity>>, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (k, v) in list.into_iter().flatten() {
        let p = path.key(k);
        errs.extend(resources::validate_quota_name(&p, k));
        errs.extend(resources::validate_quantity(&p, k, v));
    }
    errs
}

fn conflicting(scopes: &[&str]) -> bool {
    let has = |s: &str| scopes.contains(&s);
    (has("BestEffort") && has("NotBestEffort")) || (has("Terminating") && has("NotTerminating"))
}

fn validate_spec(spec: &ResourceQuotaSpec) -> Vec<FieldError> {
    let root = Path::new("spec");
    let mut errs = validate_amounts(spec.hard.as_ref(), &root.child("hard"));
    let hard: Vec<&str> = spec
        .hard
        .iter()
        .flatten()
        .map(|(k, _)| k.as_str())
        .collect();
    let scopes = spec.scopes.as_deref().unwrap_or(&[]);
    if !scopes.is_empty() {
        let p = root.child("scopes");
        let rendered = go_scopes(spec.scopes.as_deref());
        for scope in scopes {
            if !SCOPES.contains(&scope.as_str()) {
                errs.push(common::invalid_raw(&p, &rendered, "unsupported scope"));
            }
            for k in &hard {
                if resources::is_standard_quota(k) && !scope_valid_for(scope, k) {
                    errs.push(common::invalid_raw(
                        &p,
                        &rendered,
                        "unsupported scope applied to resource",
                    ));
                }
            }
        }
        let names: Vec<&str> = scopes.iter().map(String::as_str).collect();
        if conflicting(&names) {
            errs.push(common::invalid_raw(&p, &rendered, "conflicting scopes"));
        }
    }
    if let Some(sel) = &spec.scope_selector {
        let p = root.child("scopeSelector").child("matchExpressions");
        let reqs = sel.match_expressions.as_deref().unwrap_or(&[]);
        let rendered_sel = format!(
            "core.ScopeSelector{{MatchExpressions:[]core.ScopedResourceSelectorRequirement{{{}}}}}",
            reqs.iter()
                .map(|r| format!(
                    "core.ScopedResourceSelectorRequirement{{ScopeName:{}, Operator:{}, Values:{}}}",
                    go::quote(&r.scope_name),
                    go::quote(&r.operator),
                    go::strings(r.values.as_deref())
                ))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let mut seen: Vec<&str> = Vec::new();
        for r in reqs {
            if !SCOPES.contains(&r.scope_name.as_str()) {
                errs.push(FieldError::invalid(
                    p.child("scopeName"),
                    r.scope_name.as_str(),
                    "unsupported scope",
                ));
            }
            for k in &hard {
                if resources::is_standard_quota(k) && !scope_valid_for(&r.scope_name, k) {
                    errs.push(common::invalid_raw(
                        &p,
                        &rendered_sel,
                        "unsupported scope applied to resource",
                    ));
                }
            }
            if matches!(
                r.scope_name.as_str(),
                "BestEffort"
                    | "NotBestEffort"
                    | "Terminating"
                    | "NotTerminating"
                    | "CrossNamespacePodAffinity"
            ) && r.operator != "Exists"
            {
                errs.push(FieldError::invalid(
                    p.child("operator"),
                    r.operator.as_str(),
                    "must be 'Exist' when scope is any of ResourceQuotaScopeTerminating, ResourceQuotaScopeNotTerminating, ResourceQuotaScopeBestEffort, ResourceQuotaScopeNotBestEffort or ResourceQuotaScopeCrossNamespacePodAffinity",
                ));
            }
            let values = r.values.as_deref().unwrap_or(&[]);
            match r.operator.as_str() {
                "In" | "NotIn" if values.is_empty() => errs.push(FieldError::required(
                    p.child("values"),
                    "must be at least one value when `operator` is 'In' or 'NotIn' for scope selector",
                )),
                "Exists" | "DoesNotExist" if !values.is_empty() => errs.push(common::invalid_raw(
                    p.child("values"),
                    go::strings(Some(values)),
                    "must be no value when `operator` is 'Exist' or 'DoesNotExist' for scope selector",
                )),
                "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
                other => errs.push(FieldError::invalid(
                    p.child("operator"),
                    other,
                    "not a valid selector operator",
                )),
            }
            seen.push(r.scope_name.as_str());
        }
        if conflicting(&seen) {
            errs.push(common::invalid_raw(
                &p,
                go_scopes(spec.scopes.as_deref()),
                "conflicting scopes",
            ));
        }
    }
    errs
}

fn validate_status(status: Option<&ResourceQuotaStatus>) -> Vec<FieldError> {
    let Some(st) = status else {
        return Vec::new();
    };
    let root = Path::new("status");
    let mut errs = validate_amounts(st.hard.as_ref(), &root.child("hard"));
    errs.extend(validate_amounts(st.used.as_ref(), &root.child("used")));
    errs
}

impl Strategy for ResourceQuotas {
    type Object = ResourceQuota;

    fn set_defaults(&self, rq: &mut ResourceQuota) {
        if let Some(spec) = &mut rq.spec {
            resources::canonicalize_opt(&mut spec.hard);
        }
        if let Some(st) = &mut rq.status {
            resources::canonicalize_opt(&mut st.hard);
            resources::canonicalize_opt(&mut st.used);
        }
    }

    fn prepare_for_create(&self, rq: &mut ResourceQuota) {
        rq.status = Some(ResourceQuotaStatus::default());
    }

    fn validate(&self, rq: &ResourceQuota) -> Vec<FieldError> {
        let mut errs = validate_spec(&rq.spec.clone().unwrap_or_default());
        errs.extend(validate_status(rq.status.as_ref()));
        errs
    }

    fn validate_update(&self, new: &ResourceQuota, old: &ResourceQuota) -> Vec<FieldError> {
        let ns = new.spec.clone().unwrap_or_default();
        let mut errs = validate_spec(&ns);
        let set = |s: &ResourceQuota| {
            let mut v: Vec<String> = s
                .spec
                .as_ref()
                .and_then(|s| s.scopes.clone())
                .unwrap_or_default();
            v.sort();
            v.dedup();
            v
        };
        if set(new) != set(old) {
            errs.push(common::immutable(
                "spec.scopes",
                go_scopes(ns.scopes.as_deref()),
            ));
        }
        errs
    }

    fn prepare_for_status_update(&self, new: &mut ResourceQuota, _old: &ResourceQuota) {
        // Upstream defaults the whole body of a status write too.
        self.set_defaults(new);
    }

    fn validate_status_update(&self, new: &ResourceQuota, _old: &ResourceQuota) -> Vec<FieldError> {
        validate_status(new.status.as_ref())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests a failed unwrap is a failed assertion
mod tests {
    use super::*;
    use crate::core::testing::*;
    use serde_json::{Value, json};

    fn s() -> Arc<dyn DynStrategy> {
        strategy(api::resources::lookup("", "v1", "resourcequotas").unwrap())
    }

    fn rq(spec: Value) -> Value {
        json!({"metadata": {"name": "q", "namespace": "default"}, "spec": spec})
    }

    #[test]
    fn hard_limits() {
        let out = create(
            &*s(),
            rq(json!({"hard": {"pods": "10", "requests.memory": "1024Mi", "count/deployments.apps": "5"}})),
        )
        .unwrap();
        assert_eq!(out["spec"]["hard"]["requests.memory"], "1Gi");
        assert_eq!(out["status"], json!({}));
        assert_eq!(
            create_err(
                &*s(),
                rq(json!({"hard": {"pods": "1.5", "storage": "1Gi", "widgets": "1"}}))
            ),
            [
                "spec.hard[pods]: Invalid value: \"1500m\": must be an integer",
                "spec.hard[storage]: Invalid value: \"storage\": must be a standard resource for quota",
                "spec.hard[widgets]: Invalid value: \"widgets\": must be a standard resource type or fully qualified",
                "spec.hard[widgets]: Invalid value: \"widgets\": must be a standard resource for quota",
            ]
        );
    }

    #[test]
    fn scopes() {
        assert_eq!(
            create_err(
                &*s(),
                rq(
                    json!({"hard": {"requests.cpu": "1"}, "scopes": ["BestEffort", "NotBestEffort", "Sometimes"]})
                )
            ),
            [
                "spec.scopes: Invalid value: []core.ResourceQuotaScope{\"BestEffort\", \"NotBestEffort\", \"Sometimes\"}: unsupported scope applied to resource",
                "spec.scopes: Invalid value: []core.ResourceQuotaScope{\"BestEffort\", \"NotBestEffort\", \"Sometimes\"}: unsupported scope",
                "spec.scopes: Invalid value: []core.ResourceQuotaScope{\"BestEffort\", \"NotBestEffort\", \"Sometimes\"}: conflicting scopes",
            ]
        );
        assert_eq!(
            create_err(
                &*s(),
                rq(
                    json!({"hard": {"pods": "1"}, "scopeSelector": {"matchExpressions": [
                    {"scopeName": "PriorityClass", "operator": "In"},
                    {"scopeName": "Terminating", "operator": "In", "values": ["x"]}]}})
                )
            ),
            [
                "spec.scopeSelector.matchExpressions.values: Required value: must be at least one value when `operator` is 'In' or 'NotIn' for scope selector",
                "spec.scopeSelector.matchExpressions.operator: Invalid value: \"In\": must be 'Exist' when scope is any of ResourceQuotaScopeTerminating, ResourceQuotaScopeNotTerminating, ResourceQuotaScopeBestEffort, ResourceQuotaScopeNotBestEffort or ResourceQuotaScopeCrossNamespacePodAffinity",
            ]
        );
        let old = create(
            &*s(),
            rq(json!({"hard": {"pods": "1"}, "scopes": ["BestEffort"]})),
        )
        .unwrap();
        assert_eq!(
            update_err(
                &*s(),
                merged(&old, json!({"spec": {"scopes": ["NotBestEffort"]}})),
                &old
            ),
            [
                "spec.scopes: Invalid value: []core.ResourceQuotaScope{\"NotBestEffort\"}: field is immutable"
            ]
        );
    }

    #[test]
    fn status_is_separate() {
        let old = create(&*s(), rq(json!({"hard": {"pods": "1"}}))).unwrap();
        let kept = update(
            &*s(),
            merged(&old, json!({"status": {"used": {"pods": "1"}}})),
            &old,
        )
        .unwrap();
        assert_eq!(kept["status"], json!({}));
        let st = s()
            .admit_status_update(
                merged(
                    &old,
                    json!({"status": {"hard": {"pods": "1"}, "used": {"pods": "-1"}}}),
                ),
                &old,
            )
            .unwrap_err();
        assert_eq!(
            causes(&st),
            ["status.used[pods]: Invalid value: \"-1\": must be greater than or equal to 0"]
        );
    }
}
