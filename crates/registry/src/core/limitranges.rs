//! LimitRanges: container defaults derived from `max`/`default`/`min` (upstream's
//! `SetDefaults_LimitRangeItem`), and the consistency rules between min, max, default,
//! default request and the limit/request ratio (`ValidateLimitRange`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use api::quantity::Quantity as Q;
use api::resources::ResourceInfo;
use api::validation::{FieldError, Path};
use k8s_openapi::api::core::v1::{LimitRange, LimitRangeItem};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::DynStrategy;
use crate::core::common::{self, resources};
use crate::strategy::{Adapter, Strategy};

pub fn strategy(info: &'static ResourceInfo) -> Arc<dyn DynStrategy> {
    Arc::new(Adapter::new(info, LimitRanges))
}

struct LimitRanges;

fn default_item(item: &mut LimitRangeItem) {
    if item.type_ != "Container" {
        return;
    }
    let max = item.max.clone().unwrap_or_default();
    let min = item.min.clone().unwrap_or_default();
    let default = item.default.get_or_insert_with(BTreeMap::new);
    for (k, v) in &max {
        default.entry(k.clone()).or_insert_with(|| v.clone());
    }
    let default = default.clone();
    let request = item.default_request.get_or_insert_with(BTreeMap::new);
    for (k, v) in default.iter().chain(&min) {
        request.entry(k.clone()).or_insert_with(|| v.clone());
    }
}

fn validate_type(t: &str, path: &Path) -> Vec<FieldError> {
    let errs = common::qualified_name(path, t);
    if !errs.is_empty() {
        return errs;
    }
    if !t.contains('/') && !matches!(t, "Pod" | "Container" | "PersistentVolumeClaim") {
        return vec![FieldError::invalid(
            path,
            t,
            "must be a standard limit type or fully qualified",
        )];
    }
    Vec::new()
}

fn validate_name(limit_type: &str, name: &str, path: &Path) -> Vec<FieldError> {
    match limit_type {
        "Pod" | "Container" => resources::validate_container_name(path, name),
        _ => resources::validate_name(path, name),
    }
}

fn validate_item(item: &LimitRangeItem, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut keys: BTreeSet<String> = BTreeSet::new();
    let mut collect = |field: &str,
                       list: &Option<BTreeMap<String, Quantity>>,
                       errs: &mut Vec<FieldError>|
     -> BTreeMap<String, Q> {
        let mut out = BTreeMap::new();
        for (k, q) in list.iter().flatten() {
            let p = path.child(field).key(k);
            errs.extend(validate_name(&item.type_, k, &p));
            keys.insert(k.clone());
            match resources::parse(&p, q) {
                Ok(v) => {
                    out.insert(k.clone(), v);
                }
                Err(e) => errs.push(e),
            }
        }
        out
    };
    let max = collect("max", &item.max, &mut errs);
    let min = collect("min", &item.min, &mut errs);
    let (mut default, mut default_request) = (BTreeMap::new(), BTreeMap::new());
    if item.type_ == "Pod" {
        if item.default.as_ref().is_some_and(|d| !d.is_empty()) {
            errs.push(FieldError::forbidden(
                path.child("default"),
                "may not be specified when `type` is 'Pod'",
            ));
        }
        if item.default_request.as_ref().is_some_and(|d| !d.is_empty()) {
            errs.push(FieldError::forbidden(
                path.child("defaultRequest"),
                "may not be specified when `type` is 'Pod'",
            ));
        }
    } else {
        default = collect("default", &item.default, &mut errs);
        default_request = collect("defaultRequest", &item.default_request, &mut errs);
    }
    if item.type_ == "PersistentVolumeClaim"
        && !min.contains_key("storage")
        && !max.contains_key("storage")
    {
        errs.push(FieldError::required(
            path.child("limits"),
            "either minimum or maximum storage value is required, but neither was provided",
        ));
    }
    let ratios = collect(
        "maxLimitRequestRatio",
        &item.max_limit_request_ratio,
        &mut errs,
    );

    for k in &keys {
        let (mn, mx, def, req, ratio) = (
            min.get(k),
            max.get(k),
            default.get(k),
            default_request.get(k),
            ratios.get(k),
        );
        let invalid = |field: &str, value: &Q, msg: String| {
            FieldError::invalid(path.child(field).key(k), value.to_canonical_string(), msg)
        };
        if let (Some(mn), Some(mx)) = (mn, mx)
            && mn > mx
        {
            errs.push(invalid(
                "min",
                mn,
                format!("min value {mn} is greater than max value {mx}"),
            ));
        }
        if let (Some(req), Some(mn)) = (req, mn)
            && mn > req
        {
            errs.push(invalid(
                "defaultRequest",
                req,
                format!("min value {mn} is greater than default request value {req}"),
            ));
        }
        if let (Some(req), Some(mx)) = (req, mx)
            && req > mx
        {
            errs.push(invalid(
                "defaultRequest",
                req,
                format!("default request value {req} is greater than max value {mx}"),
            ));
        }
        if let (Some(req), Some(def)) = (req, def)
            && req > def
        {
            errs.push(invalid(
                "defaultRequest",
                req,
                format!("default request value {req} is greater than default limit value {def}"),
            ));
        }
        if let (Some(def), Some(mn)) = (def, mn)
            && mn > def
        {
            errs.push(invalid(
                "default",
                mn,
                format!("min value {mn} is greater than default value {def}"),
            ));
        }
        if let (Some(def), Some(mx)) = (def, mx)
            && def > mx
        {
            errs.push(invalid(
                "default",
                mx,
                format!("default value {def} is greater than max value {mx}"),
            ));
        }
        if let Some(ratio) = ratio {
            if *ratio < Q::from_value(1, api::quantity::Format::DecimalSI) {
                errs.push(invalid(
                    "maxLimitRequestRatio",
                    ratio,
                    format!("ratio {ratio} is less than 1"),
                ));
            }
            if let (Some(mn), Some(mx)) = (mn, mx) {
                let limit = mx.as_milli() as f64 / mn.as_milli() as f64;
                if ratio.as_f64() > limit {
                    errs.push(invalid(
                        "maxLimitRequestRatio",
                        ratio,
                        format!("ratio {ratio} is greater than max/min = {limit:.6}"),
                    ));
                }
            }
        }
        if !resources::is_overcommit_allowed(k)
            && let (Some(def), Some(req)) = (def, req)
            && def != req
        {
            errs.push(invalid(
                "defaultRequest",
                req,
                format!("default value {def} must equal to defaultRequest value {req} in {k}"),
            ));
        }
    }
    errs
}

impl Strategy for LimitRanges {
    type Object = LimitRange;

    fn allow_create_on_update(&self) -> bool {
        true
    }

    fn set_defaults(&self, lr: &mut LimitRange) {
        for item in lr.spec.iter_mut().flat_map(|s| s.limits.iter_mut()) {
            for list in [
                &mut item.max,
                &mut item.min,
                &mut item.default,
                &mut item.default_request,
                &mut item.max_limit_request_ratio,
            ] {
                resources::canonicalize_opt(list);
            }
            default_item(item);
        }
    }

    fn validate(&self, lr: &LimitRange) -> Vec<FieldError> {
        let mut errs = Vec::new();
        let root = Path::new("spec").child("limits");
        let mut types: BTreeSet<&str> = BTreeSet::new();
        for (i, item) in lr.spec.iter().flat_map(|s| s.limits.iter()).enumerate() {
            let p = root.index(i);
            errs.extend(validate_type(&item.type_, &p.child("type")));
            if !types.insert(item.type_.as_str()) {
                errs.push(FieldError::duplicate(p.child("type"), item.type_.as_str()));
            }
            errs.extend(validate_item(item, &p));
        }
        errs
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests a failed unwrap is a failed assertion
mod tests {
    use super::*;
    use crate::core::testing::*;
    use serde_json::{Value, json};

    fn s() -> Arc<dyn DynStrategy> {
        strategy(api::resources::lookup("", "v1", "limitranges").unwrap())
    }

    fn lr(limits: Value) -> Value {
        json!({"metadata": {"name": "l", "namespace": "default"}, "spec": {"limits": limits}})
    }

    #[test]
    fn container_defaults() {
        let out = create(
            &*s(),
            lr(json!([{"type": "Container", "max": {"cpu": "2", "memory": "1Gi"}, "min": {"cpu": "100m"},
                       "default": {"cpu": "500m"}}])),
        )
        .unwrap();
        let item = &out["spec"]["limits"][0];
        assert_eq!(item["default"], json!({"cpu": "500m", "memory": "1Gi"}));
        assert_eq!(
            item["defaultRequest"],
            json!({"cpu": "500m", "memory": "1Gi"})
        );
        assert!(s().allow_create_on_update());
    }

    #[test]
    fn consistency_rules() {
        assert_eq!(
            create_err(
                &*s(),
                lr(json!([
                    {"type": "Container", "min": {"cpu": "2"}, "max": {"cpu": "1"}},
                    {"type": "Pod", "default": {"cpu": "1"}},
                    {"type": "PersistentVolumeClaim", "max": {"cpu": "1"}},
                    {"type": "Pod"},
                    {"type": "Widget"},
                ]))
            ),
            [
                "spec.limits[0].min[cpu]: Invalid value: \"2\": min value 2 is greater than max value 1",
                "spec.limits[0].defaultRequest[cpu]: Invalid value: \"1\": min value 2 is greater than default request value 1",
                "spec.limits[0].default[cpu]: Invalid value: \"2\": min value 2 is greater than default value 1",
                "spec.limits[1].default: Forbidden: may not be specified when `type` is 'Pod'",
                "spec.limits[2].limits: Required value: either minimum or maximum storage value is required, but neither was provided",
                "spec.limits[3].type: Duplicate value: \"Pod\"",
                "spec.limits[4].type: Invalid value: \"Widget\": must be a standard limit type or fully qualified",
            ]
        );
        assert_eq!(
            create_err(
                &*s(),
                lr(
                    json!([{"type": "Container", "min": {"cpu": "1"}, "max": {"cpu": "2"}, "maxLimitRequestRatio": {"cpu": "3"}}])
                )
            ),
            [
                "spec.limits[0].maxLimitRequestRatio[cpu]: Invalid value: \"3\": ratio 3 is greater than max/min = 2.000000"
            ]
        );
    }
}
