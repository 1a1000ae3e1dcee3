//! ConfigMaps: key syntax, the 1 MiB total size limit, and `immutable: true` (data frozen, the
//! flag itself cannot be cleared), as upstream's `ValidateConfigMap(Update)`.

use std::sync::Arc;

use api::resources::ResourceInfo;
use api::validation::{FieldError, Path};
use k8s_openapi::api::core::v1::ConfigMap;

use crate::DynStrategy;
use crate::core::common;
use crate::strategy::{Adapter, Strategy};

/// Upstream's `MaxSecretSize`, shared by ConfigMaps and Secrets.
pub const MAX_SIZE: usize = 1024 * 1024;

pub fn strategy(info: &'static ResourceInfo) -> Arc<dyn DynStrategy> {
    Arc::new(Adapter::new(info, ConfigMaps))
}

struct ConfigMaps;

/// The checks an update adds when the old object was immutable (shared with Secrets).
pub(crate) fn immutable_errors(
    old_immutable: Option<bool>,
    new_immutable: Option<bool>,
    changed: &[(&str, bool)],
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if old_immutable == Some(true) {
        const MSG: &str = "field is immutable when `immutable` is set";
        if new_immutable != Some(true) {
            errs.push(FieldError::forbidden("immutable", MSG));
        }
        for (field, differs) in changed {
            if *differs {
                errs.push(FieldError::forbidden(*field, MSG));
            }
        }
    }
    errs
}

impl Strategy for ConfigMaps {
    type Object = ConfigMap;

    fn validate(&self, cm: &ConfigMap) -> Vec<FieldError> {
        let mut errs = Vec::new();
        let mut total = 0usize;
        let data_path = Path::new("data");
        for (key, value) in cm.data.iter().flatten() {
            let p = data_path.key(key);
            for msg in common::config_map_key(key) {
                errs.push(FieldError::invalid(&p, key.as_str(), msg));
            }
            if cm.binary_data.as_ref().is_some_and(|b| b.contains_key(key)) {
                errs.push(FieldError::invalid(
                    &p,
                    key.as_str(),
                    "duplicate of key present in binaryData",
                ));
            }
            total += value.len();
        }
        let binary_path = Path::new("binaryData");
        for (key, value) in cm.binary_data.iter().flatten() {
            for msg in common::config_map_key(key) {
                errs.push(FieldError::invalid(binary_path.key(key), key.as_str(), msg));
            }
            total += value.0.len();
        }
        if total > MAX_SIZE {
            // Upstream reports the whole object (an empty field path).
            errs.push(FieldError::too_long("", MAX_SIZE));
        }
        errs
    }

    fn validate_update(&self, new: &ConfigMap, old: &ConfigMap) -> Vec<FieldError> {
        let mut errs = immutable_errors(
            old.immutable,
            new.immutable,
            &[
                ("data", new.data != old.data),
                ("binaryData", new.binary_data != old.binary_data),
            ],
        );
        errs.extend(self.validate(new));
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
        strategy(api::resources::lookup("", "v1", "configmaps").unwrap())
    }

    fn cm(data: serde_json::Value) -> serde_json::Value {
        json!({"metadata": {"name": "c", "namespace": "default"}, "data": data})
    }

    #[test]
    fn keys_and_size() {
        assert!(create(&*s(), cm(json!({"a.b_c-D": "x"}))).is_ok());
        let errs = create_err(
            &*s(),
            json!({"metadata": {"name": "c", "namespace": "default"},
                "data": {"a/b": "x", "dup": "1"}, "binaryData": {"dup": "AA=="}}),
        );
        assert_eq!(
            errs,
            [
                "data[a/b]: Invalid value: \"a/b\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
                "data[dup]: Invalid value: \"dup\": duplicate of key present in binaryData",
            ]
        );
        let big = "x".repeat(MAX_SIZE + 1);
        assert_eq!(
            create_err(&*s(), cm(json!({ "k": big }))),
            ["Too long: may not be more than 1048576 bytes"]
        );
    }

    #[test]
    fn immutable_configmaps() {
        let mut obj = cm(json!({"k": "v"}));
        obj["immutable"] = json!(true);
        let old = create(&*s(), obj).unwrap();
        assert_eq!(
            update_err(
                &*s(),
                merged(&old, json!({"data": {"k": "w"}, "immutable": false})),
                &old
            ),
            [
                "immutable: Forbidden: field is immutable when `immutable` is set",
                "data: Forbidden: field is immutable when `immutable` is set",
            ]
        );
        // Labels may still change.
        assert!(
            update(
                &*s(),
                merged(&old, json!({"metadata": {"labels": {"a": "b"}}})),
                &old
            )
            .is_ok()
        );
        assert!(!s().allow_create_on_update());
    }
}
