//! core/v1 PodTemplates: pod template defaults and `ValidatePodTemplateSpec` at `template`.
//! Upstream sets `metadata.generation` and bumps it when the template changes.

use std::sync::Arc;

use api::ApiError;
use api::resources::ResourceInfo;
use api::validation::{FieldError, Path};
use k8s_openapi::api::core::v1::{PodTemplate, PodTemplateSpec};

use crate::DynStrategy;
use crate::strategy::{Adapter, Strategy};
use crate::workloads::pod_spec::{self, defaults};

pub fn strategy(info: &'static ResourceInfo) -> Arc<dyn DynStrategy> {
    Arc::new(Adapter::new(info, PodTemplateStrategy))
}

/// The PodTemplate strategy.
pub struct PodTemplateStrategy;

impl Strategy for PodTemplateStrategy {
    type Object = PodTemplate;

    fn tracks_generation(&self) -> bool {
        true
    }

    fn set_defaults(&self, t: &mut PodTemplate) {
        defaults::template(t.template.get_or_insert_with(PodTemplateSpec::default));
    }

    fn validate(&self, t: &PodTemplate) -> Vec<FieldError> {
        let default = PodTemplateSpec::default();
        pod_spec::validate_template(
            t.template.as_ref().unwrap_or(&default),
            &Path::new("template"),
        )
    }

    fn before_write(
        &self,
        new: &mut PodTemplate,
        _old: Option<&PodTemplate>,
        _dry_run: bool,
    ) -> Result<(), ApiError> {
        pod_spec::check_template_quantities("PodTemplate", new.template.as_ref())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn strategy() -> Arc<dyn DynStrategy> {
        super::strategy(api::resources::lookup("", "v1", "podtemplates").unwrap())
    }

    #[test]
    fn defaults_and_validation() {
        let s = strategy();
        let ok = json!({
            "apiVersion": "v1", "kind": "PodTemplate",
            "metadata": {"name": "t", "namespace": "default"},
            "template": {"spec": {"containers": [{"name": "c", "image": "busybox"}]}}
        });
        let out = s.admit_create(ok.clone(), false).unwrap().object;
        assert_eq!(out["template"]["spec"]["dnsPolicy"], "ClusterFirst");
        assert_eq!(
            out["template"]["spec"]["containers"][0]["imagePullPolicy"],
            "Always"
        );
        assert_eq!(out["template"]["metadata"], json!({}));
        assert_eq!(out["metadata"]["generation"], 1);
        // No enableServiceLinks: that default belongs to Pods only.
        assert!(out["template"]["spec"].get("enableServiceLinks").is_none());

        let mut bad = ok;
        bad["template"]["spec"]["containers"][0]["name"] = json!("Bad_Name");
        bad["template"]["metadata"] = json!({"labels": {"a": "-x"}});
        let err = s.admit_create(bad, false).unwrap_err();
        assert_eq!(err.causes[0].field, "template.labels");
        assert_eq!(err.causes[1].field, "template.spec.containers[0].name");
    }
}
