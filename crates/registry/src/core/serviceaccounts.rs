//! ServiceAccounts: only the generic metadata rules, plus upstream's trimming of `secrets`
//! references to their names.

use std::sync::Arc;

use api::resources::ResourceInfo;
use k8s_openapi::api::core::v1::{ObjectReference, ServiceAccount};

use crate::DynStrategy;
use crate::strategy::{Adapter, Strategy};

pub fn strategy(info: &'static ResourceInfo) -> Arc<dyn DynStrategy> {
    Arc::new(Adapter::new(info, ServiceAccounts))
}

struct ServiceAccounts;

/// Upstream's `cleanSecretReferences`: a reference keeps only the secret's name.
fn clean_secret_references(sa: &mut ServiceAccount) {
    for r in sa.secrets.iter_mut().flatten() {
        *r = ObjectReference {
            name: r.name.take(),
            ..Default::default()
        };
    }
}

impl Strategy for ServiceAccounts {
    type Object = ServiceAccount;

    fn prepare_for_create(&self, sa: &mut ServiceAccount) {
        clean_secret_references(sa);
    }

    fn prepare_for_update(&self, new: &mut ServiceAccount, _old: &ServiceAccount) {
        clean_secret_references(new);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests a failed unwrap is a failed assertion
mod tests {
    use super::*;
    use crate::core::testing::*;
    use serde_json::json;

    #[test]
    fn secret_references_keep_names_only() {
        let s = strategy(api::resources::lookup("", "v1", "serviceaccounts").unwrap());
        let out = create(
            &*s,
            json!({"metadata": {"name": "build", "namespace": "ci"},
                "secrets": [{"name": "tok", "namespace": "ci", "uid": "1", "kind": "Secret"}]}),
        )
        .unwrap();
        assert_eq!(out["secrets"], json!([{"name": "tok"}]));
        assert!(
            create_err(
                &*s,
                json!({"metadata": {"name": "Build", "namespace": "ci"}})
            )[0]
            .starts_with("metadata.name: Invalid value: \"Build\"")
        );
    }
}
