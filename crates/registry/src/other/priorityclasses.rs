//! scheduling.k8s.io/v1 PriorityClasses: the `system-` prefix is reserved for the two built-in
//! classes, user classes stay at or below one billion, `value` and `preemptionPolicy` never
//! change, and `preemptionPolicy` defaults to `PreemptLowerPriority`.

use std::sync::Arc;

use api::resources::ResourceInfo;
use api::validation::{FieldError, Path};
use k8s_openapi::api::scheduling::v1::PriorityClass;

use crate::DynStrategy;
use crate::core::common::{self, go};
use crate::strategy::{Adapter, Strategy};

pub const HIGHEST_USER_DEFINABLE_PRIORITY: i32 = 1_000_000_000;
/// The built-in classes: name, value, globalDefault.
pub const SYSTEM_CLASSES: &[(&str, i32, bool)] = &[
    ("system-node-critical", 2_000_001_000, false),
    ("system-cluster-critical", 2_000_000_000, false),
];

pub fn strategy(info: &'static ResourceInfo) -> Arc<dyn DynStrategy> {
    Arc::new(Adapter::new(info, PriorityClasses))
}

struct PriorityClasses;

fn known_system_class(name: &str, value: i32, global_default: bool) -> Result<(), String> {
    match SYSTEM_CLASSES.iter().find(|(n, ..)| *n == name) {
        None => Err(format!("{name} is not a known system priority class")),
        Some((n, v, _)) if *v != value => Err(format!("value of {n} PriorityClass must be {v}")),
        Some((n, _, g)) if *g != global_default => {
            Err(format!("globalDefault of {n} PriorityClass must be {g}"))
        }
        Some(_) => Ok(()),
    }
}

impl Strategy for PriorityClasses {
    type Object = PriorityClass;

    fn set_defaults(&self, pc: &mut PriorityClass) {
        if pc.preemption_policy.is_none() {
            pc.preemption_policy = Some("PreemptLowerPriority".to_string());
        }
    }

    fn validate(&self, pc: &PriorityClass) -> Vec<FieldError> {
        let mut errs = Vec::new();
        let name = pc.metadata.name.as_deref().unwrap_or("");
        if name.starts_with("system-") {
            if let Err(e) = known_system_class(name, pc.value, pc.global_default.unwrap_or(false)) {
                errs.push(FieldError::forbidden(
                    Path::new("metadata").child("name"),
                    format!("priority class names with 'system-' prefix are reserved for system use only. error: {e}"),
                ));
            }
        } else if pc.value > HIGHEST_USER_DEFINABLE_PRIORITY {
            errs.push(FieldError::forbidden(
                "value",
                format!("maximum allowed value of a user defined priority is {HIGHEST_USER_DEFINABLE_PRIORITY}"),
            ));
        }
        match pc.preemption_policy.as_deref() {
            None | Some("PreemptLowerPriority" | "Never") => {}
            Some("") => errs.push(FieldError::required("preemptionPolicy", "")),
            Some(p) => errs.push(FieldError::not_supported(
                "preemptionPolicy",
                p,
                &["PreemptLowerPriority", "Never"],
            )),
        }
        errs
    }

    fn validate_update(&self, new: &PriorityClass, old: &PriorityClass) -> Vec<FieldError> {
        let mut errs = Vec::new();
        if new.value != old.value {
            errs.push(FieldError::forbidden(
                "value",
                "may not be changed in an update.",
            ));
        }
        if new.preemption_policy != old.preemption_policy {
            errs.push(common::immutable(
                "preemptionPolicy",
                go::opt_str(new.preemption_policy.as_deref()),
            ));
        }
        errs
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests a failed unwrap is a failed assertion
mod tests {
    use super::*;
    use crate::core::testing::*;
    use serde_json::json;

    #[test]
    fn priority_classes() {
        let s =
            strategy(api::resources::lookup("scheduling.k8s.io", "v1", "priorityclasses").unwrap());
        let out = create(&*s, json!({"metadata": {"name": "high"}, "value": 1000})).unwrap();
        assert_eq!(out["preemptionPolicy"], "PreemptLowerPriority");
        assert!(
            create(
                &*s,
                json!({"metadata": {"name": "system-node-critical"}, "value": 2000001000})
            )
            .is_ok()
        );
        assert_eq!(
            create_err(
                &*s,
                json!({"metadata": {"name": "system-mine"}, "value": 1})
            ),
            [
                "metadata.name: Forbidden: priority class names with 'system-' prefix are reserved for system use only. error: system-mine is not a known system priority class"
            ]
        );
        assert_eq!(
            create_err(
                &*s,
                json!({"metadata": {"name": "huge"}, "value": 1000000001, "preemptionPolicy": "Always"})
            ),
            [
                "value: Forbidden: maximum allowed value of a user defined priority is 1000000000",
                "preemptionPolicy: Unsupported value: \"Always\": supported values: \"PreemptLowerPriority\", \"Never\"",
            ]
        );
        assert_eq!(
            update_err(
                &*s,
                merged(&out, json!({"value": 2, "preemptionPolicy": "Never"})),
                &out
            ),
            [
                "value: Forbidden: may not be changed in an update.",
                "preemptionPolicy: Invalid value: \"Never\": field is immutable",
            ]
        );
    }
}
