//! coordination.k8s.io/v1 Leases: duration positive, transitions not negative. Leases may be
//! created by an update but never overwritten unconditionally (upstream's lease strategy), so
//! two leader candidates cannot both win a race by omitting `resourceVersion`.

use std::sync::Arc;

use api::resources::ResourceInfo;
use api::validation::{FieldError, Path};
use k8s_openapi::api::coordination::v1::Lease;

use crate::DynStrategy;
use crate::strategy::{Adapter, Strategy};

pub fn strategy(info: &'static ResourceInfo) -> Arc<dyn DynStrategy> {
    Arc::new(Adapter::new(info, Leases))
}

struct Leases;

/// Drops the coordinated-leader-election fields, whose feature gate is off by default in 1.33.
fn drop_disabled_fields(lease: &mut Lease, old: Option<&Lease>) {
    let in_use = old
        .and_then(|o| o.spec.as_ref())
        .is_some_and(|s| s.strategy.is_some() || s.preferred_holder.is_some());
    if let (Some(spec), false) = (&mut lease.spec, in_use) {
        spec.strategy = None;
        spec.preferred_holder = None;
    }
}

impl Strategy for Leases {
    type Object = Lease;

    fn allow_create_on_update(&self) -> bool {
        true
    }

    fn allow_unconditional_update(&self) -> bool {
        false
    }

    fn prepare_for_create(&self, lease: &mut Lease) {
        drop_disabled_fields(lease, None);
    }

    fn prepare_for_update(&self, new: &mut Lease, old: &Lease) {
        drop_disabled_fields(new, Some(old));
    }

    fn validate(&self, lease: &Lease) -> Vec<FieldError> {
        let mut errs = Vec::new();
        let Some(spec) = &lease.spec else {
            return errs;
        };
        let p = Path::new("spec");
        if let Some(d) = spec.lease_duration_seconds.filter(|d| *d <= 0) {
            errs.push(FieldError::invalid(
                p.child("leaseDurationSeconds"),
                d,
                "must be greater than 0",
            ));
        }
        if let Some(t) = spec.lease_transitions.filter(|t| *t < 0) {
            errs.push(FieldError::invalid(
                p.child("leaseTransitions"),
                t,
                "must be greater than or equal to 0",
            ));
        }
        if spec
            .preferred_holder
            .as_deref()
            .is_some_and(|h| !h.is_empty())
            && spec.strategy.as_deref().unwrap_or("").is_empty()
        {
            errs.push(FieldError::forbidden(
                p.child("preferredHolder"),
                "may only be specified if `strategy` is defined",
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
    fn leases() {
        let s = strategy(api::resources::lookup("coordination.k8s.io", "v1", "leases").unwrap());
        assert!(s.allow_create_on_update() && !s.allow_unconditional_update());
        assert_eq!(
            create_err(
                &*s,
                json!({"metadata": {"name": "l", "namespace": "kube-system"},
                "spec": {"leaseDurationSeconds": 0, "leaseTransitions": -1}})
            ),
            [
                "spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0",
                "spec.leaseTransitions: Invalid value: -1: must be greater than or equal to 0",
            ]
        );
        let out = create(
            &*s,
            json!({"metadata": {"name": "l", "namespace": "kube-system"},
            "spec": {"holderIdentity": "a", "strategy": "OldestEmulationVersion"}}),
        )
        .unwrap();
        assert!(out["spec"].get("strategy").is_none());
    }
}
