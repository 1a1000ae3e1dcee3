//! apps/v1 ControllerRevisions: `data` is required and immutable, `revision` is not negative
//! (upstream's `ValidateControllerRevision(Update)`).

use std::sync::Arc;

use api::resources::ResourceInfo;
use api::validation::{FieldError, Path};
use k8s_openapi::api::apps::v1::ControllerRevision;

use crate::DynStrategy;
use crate::core::common;
use crate::strategy::{Adapter, Strategy};

pub fn strategy(info: &'static ResourceInfo) -> Arc<dyn DynStrategy> {
    Arc::new(Adapter::new(info, ControllerRevisions))
}

struct ControllerRevisions;

impl Strategy for ControllerRevisions {
    type Object = ControllerRevision;

    fn validate(&self, cr: &ControllerRevision) -> Vec<FieldError> {
        let mut errs = Vec::new();
        if cr.data.is_none() {
            errs.push(FieldError::required("data", "data is mandatory"));
        }
        errs.extend(common::nonnegative(&Path::new("revision"), cr.revision));
        errs
    }

    fn validate_update(
        &self,
        new: &ControllerRevision,
        old: &ControllerRevision,
    ) -> Vec<FieldError> {
        let mut errs = self.validate(new);
        if new.data != old.data {
            let rendered = new
                .data
                .as_ref()
                .map_or("null".to_string(), |d| d.0.to_string());
            errs.push(common::immutable("data", rendered));
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
    fn data_rules() {
        let s = strategy(api::resources::lookup("apps", "v1", "controllerrevisions").unwrap());
        assert_eq!(
            create_err(
                &*s,
                json!({"metadata": {"name": "r", "namespace": "a"}, "revision": -1})
            ),
            [
                "data: Required value: data is mandatory",
                "revision: Invalid value: -1: must be greater than or equal to 0",
            ]
        );
        let old = create(
            &*s,
            json!({"metadata": {"name": "r", "namespace": "a"}, "revision": 1, "data": {"a": 1}}),
        )
        .unwrap();
        assert_eq!(
            update_err(&*s, merged(&old, json!({"data": {"a": 2}})), &old),
            ["data: Invalid value: {\"a\":2}: field is immutable"]
        );
        assert!(update(&*s, merged(&old, json!({"revision": 2})), &old).is_ok());
    }
}
