//! policy/v1 PodDisruptionBudgets: `minAvailable` xor `maxUnavailable`, each a non-negative
//! count or a percentage up to 100%; the selector and eviction policy are checked; the
//! generation tracks spec changes and the status (written by the disruption controller) starts
//! zeroed, as upstream's PDB strategy.

use std::sync::Arc;

use api::resources::ResourceInfo;
use api::validation::{FieldError, Path};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetStatus};

use crate::DynStrategy;
use crate::core::common::{self, selectors};
use crate::strategy::{Adapter, Strategy};

pub fn strategy(info: &'static ResourceInfo) -> Arc<dyn DynStrategy> {
    Arc::new(Adapter::new(info, Budgets))
}

struct Budgets;

impl Strategy for Budgets {
    type Object = PodDisruptionBudget;

    fn tracks_generation(&self) -> bool {
        true
    }

    fn prepare_for_create(&self, pdb: &mut PodDisruptionBudget) {
        pdb.status = Some(PodDisruptionBudgetStatus::default());
    }

    fn validate(&self, pdb: &PodDisruptionBudget) -> Vec<FieldError> {
        let mut errs = Vec::new();
        let p = Path::new("spec");
        let Some(spec) = &pdb.spec else {
            return errs;
        };
        if spec.min_available.is_some() && spec.max_unavailable.is_some() {
            let rendered = serde_json::to_string(spec).unwrap_or_default();
            errs.push(common::invalid_raw(
                &p,
                rendered,
                "minAvailable and maxUnavailable cannot be both set",
            ));
        }
        if let Some(v) = &spec.min_available {
            errs.extend(common::int_or_percent(v, &p.child("minAvailable")));
        }
        if let Some(v) = &spec.max_unavailable {
            errs.extend(common::int_or_percent(v, &p.child("maxUnavailable")));
        }
        if let Some(sel) = &spec.selector {
            errs.extend(selectors::label_selector(sel, &p.child("selector")));
        }
        if let Some(policy) = &spec.unhealthy_pod_eviction_policy {
            const POLICIES: &[&str] = &["AlwaysAllow", "IfHealthyBudget"];
            if !POLICIES.contains(&policy.as_str()) {
                errs.push(FieldError::not_supported(
                    p.child("unhealthyPodEvictionPolicy"),
                    policy.as_str(),
                    POLICIES,
                ));
            }
        }
        errs
    }

    fn validate_status_update(
        &self,
        new: &PodDisruptionBudget,
        _old: &PodDisruptionBudget,
    ) -> Vec<FieldError> {
        let mut errs = Vec::new();
        let Some(st) = &new.status else {
            return errs;
        };
        let p = Path::new("status");
        for (field, v) in [
            ("disruptionsAllowed", st.disruptions_allowed),
            ("currentHealthy", st.current_healthy),
            ("desiredHealthy", st.desired_healthy),
            ("expectedPods", st.expected_pods),
        ] {
            errs.extend(common::nonnegative(&p.child(field), i64::from(v)));
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

    fn s() -> Arc<dyn DynStrategy> {
        strategy(api::resources::lookup("policy", "v1", "poddisruptionbudgets").unwrap())
    }

    #[test]
    fn budgets() {
        let out = create(
            &*s(),
            json!({"metadata": {"name": "p", "namespace": "a"}, "spec": {"minAvailable": "50%",
                "selector": {"matchLabels": {"app": "web"}}}}),
        )
        .unwrap();
        assert_eq!(out["metadata"]["generation"], 1);
        assert_eq!(
            out["status"],
            json!({"currentHealthy": 0, "desiredHealthy": 0, "disruptionsAllowed": 0, "expectedPods": 0})
        );
        let errs = create_err(
            &*s(),
            json!({"metadata": {"name": "p", "namespace": "a"}, "spec": {"minAvailable": "150%", "maxUnavailable": -1}}),
        );
        assert_eq!(errs.len(), 3);
        assert!(errs[0].ends_with("minAvailable and maxUnavailable cannot be both set"));
        assert_eq!(
            errs[1],
            "spec.minAvailable: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:\"150%\"}: must not be greater than 100%"
        );
        assert_eq!(
            errs[2],
            "spec.maxUnavailable: Invalid value: -1: must be greater than or equal to 0"
        );
        let bumped = update(
            &*s(),
            merged(&out, json!({"spec": {"minAvailable": 2}})),
            &out,
        )
        .unwrap();
        assert_eq!(bumped["metadata"]["generation"], 2);
        assert!(s().tracks_generation());
    }
}
