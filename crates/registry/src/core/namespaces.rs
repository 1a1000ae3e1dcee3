//! Namespaces: DNS-label names, the `kubernetes` finalizer added on create, the
//! `kubernetes.io/metadata.name` label kept equal to the name, and the two-phase delete
//! (`Active` → `Terminating` while `spec.finalizers` is non-empty), as upstream's
//! `pkg/registry/core/namespace`.

use std::sync::Arc;

use api::resources::ResourceInfo;
use api::validation::{FieldError, Path};
use k8s_openapi::api::core::v1::{Namespace, NamespaceSpec, NamespaceStatus};

use crate::DynStrategy;
use crate::core::common;
use crate::strategy::{Adapter, NameValidation, Strategy};

/// The label every namespace carries, equal to its name.
pub const NAME_LABEL: &str = "kubernetes.io/metadata.name";
/// The finalizer the namespace controller removes once the namespace is empty.
pub const KUBERNETES_FINALIZER: &str = "kubernetes";

pub fn strategy(info: &'static ResourceInfo) -> Arc<dyn DynStrategy> {
    Arc::new(Adapter::new(info, Namespaces))
}

struct Namespaces;

fn phase(ns: &Namespace) -> &str {
    ns.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

impl Strategy for Namespaces {
    type Object = Namespace;

    fn name_validation(&self) -> NameValidation {
        NameValidation::Label
    }

    fn set_defaults(&self, ns: &mut Namespace) {
        // Upstream sets the label both in defaulting and in Canonicalize, so the label always
        // follows the name whatever the client sent.
        if let Some(name) = ns.metadata.name.clone().filter(|n| !n.is_empty()) {
            ns.metadata
                .labels
                .get_or_insert_with(Default::default)
                .insert(NAME_LABEL.to_string(), name);
        }
        let status = ns.status.get_or_insert_with(Default::default);
        if status.phase.as_deref().unwrap_or("").is_empty() {
            status.phase = Some("Active".to_string());
        }
    }

    fn prepare_for_create(&self, ns: &mut Namespace) {
        ns.status = Some(NamespaceStatus {
            phase: Some("Active".to_string()),
            conditions: None,
        });
        let finalizers = ns
            .spec
            .get_or_insert_with(NamespaceSpec::default)
            .finalizers
            .get_or_insert_with(Vec::new);
        if !finalizers.iter().any(|f| f == KUBERNETES_FINALIZER) {
            finalizers.push(KUBERNETES_FINALIZER.to_string());
        }
    }

    fn prepare_for_update(&self, new: &mut Namespace, old: &Namespace) {
        // spec.finalizers only changes through the `finalize` subresource.
        let finalizers = old.spec.as_ref().and_then(|s| s.finalizers.clone());
        new.spec = Some(NamespaceSpec { finalizers });
    }

    fn validate(&self, ns: &Namespace) -> Vec<FieldError> {
        let path = Path::new("spec").child("finalizers");
        ns.spec
            .iter()
            .flat_map(|s| s.finalizers.iter().flatten())
            .flat_map(|f| common::finalizer_name(&path, f))
            .collect()
    }

    fn validate_status_update(&self, new: &Namespace, _old: &Namespace) -> Vec<FieldError> {
        let path = Path::new("status").child("Phase");
        let phase = phase(new);
        match new.metadata.deletion_timestamp {
            None if phase != "Active" => vec![FieldError::invalid(
                path,
                phase,
                "may only be 'Active' if `deletionTimestamp` is empty",
            )],
            Some(_) if phase != "Terminating" => vec![FieldError::invalid(
                path,
                phase,
                "may only be 'Terminating' if `deletionTimestamp` is not empty",
            )],
            _ => Vec::new(),
        }
    }

    fn prepare_for_delete(&self, ns: &mut Namespace) {
        ns.status.get_or_insert_with(Default::default).phase = Some("Terminating".to_string());
    }

    fn has_pending_finalizers(&self, ns: &Namespace) -> bool {
        ns.spec
            .as_ref()
            .and_then(|s| s.finalizers.as_ref())
            .is_some_and(|f| !f.is_empty())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests a failed unwrap is a failed assertion
mod tests {
    use super::*;
    use crate::core::testing::*;
    use serde_json::json;

    fn s() -> Arc<dyn DynStrategy> {
        strategy(api::resources::lookup("", "v1", "namespaces").unwrap())
    }

    #[test]
    fn create_defaults() {
        let ns = create(
            &*s(),
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a",
                "labels": {"kubernetes.io/metadata.name": "other"}},
                "status": {"phase": "Terminating"}}),
        )
        .unwrap();
        assert_eq!(ns["metadata"]["labels"][NAME_LABEL], "team-a");
        assert_eq!(ns["spec"]["finalizers"], json!(["kubernetes"]));
        assert_eq!(ns["status"], json!({"phase": "Active"}));
        assert!(!s().info().namespaced && !s().tracks_generation());
    }

    #[test]
    fn names_are_labels() {
        assert_eq!(
            create_err(&*s(), json!({"metadata": {"name": "a.b"}})),
            ["metadata.name: Invalid value: \"a.b\": must not contain dots"]
        );
        let errs = create_err(&*s(), json!({"metadata": {"name": "A"}}));
        assert!(
            errs[0].starts_with("metadata.name: Invalid value: \"A\": a lowercase RFC 1123 label")
        );
        let errs = create_err(
            &*s(),
            json!({"metadata": {"name": "a"}, "spec": {"finalizers": ["bad"]}}),
        );
        assert_eq!(
            errs,
            [
                "spec.finalizers: Invalid value: \"bad\": name is neither a standard finalizer name nor is it fully qualified"
            ]
        );
    }

    #[test]
    fn update_keeps_finalizers_and_label() {
        let old = create(&*s(), json!({"metadata": {"name": "a"}})).unwrap();
        let new = merged(
            &old,
            json!({"spec": {"finalizers": []}, "metadata": {"labels": {NAME_LABEL: "b", "x": "y"}}}),
        );
        let out = update(&*s(), new, &old).unwrap();
        assert_eq!(out["spec"]["finalizers"], json!(["kubernetes"]));
        assert_eq!(out["metadata"]["labels"][NAME_LABEL], "a");
        assert_eq!(out["metadata"]["labels"]["x"], "y");
    }

    #[test]
    fn delete_moves_to_terminating() {
        let s = s();
        let ns = create(&*s, json!({"metadata": {"name": "a"}})).unwrap();
        assert!(s.has_pending_finalizers(&ns));
        let deleting = s.prepare_for_delete(&ns).unwrap();
        assert_eq!(deleting["status"]["phase"], "Terminating");
        let mut done = deleting.clone();
        done["spec"]["finalizers"] = json!([]);
        assert!(!s.has_pending_finalizers(&done));
    }

    #[test]
    fn status_phase_follows_deletion() {
        let s = s();
        let ns = create(&*s, json!({"metadata": {"name": "a"}})).unwrap();
        let err = s
            .admit_status_update(
                merged(&ns, json!({"status": {"phase": "Terminating"}})),
                &ns,
            )
            .unwrap_err();
        assert_eq!(
            causes(&err),
            [
                "status.Phase: Invalid value: \"Terminating\": may only be 'Active' if `deletionTimestamp` is empty"
            ]
        );
        let mut deleting = ns.clone();
        deleting["metadata"]["deletionTimestamp"] = json!("2024-01-01T00:00:00Z");
        let err = s
            .admit_status_update(
                merged(&deleting, json!({"status": {"phase": "Active"}})),
                &deleting,
            )
            .unwrap_err();
        assert_eq!(causes(&err).len(), 1);
    }
}
