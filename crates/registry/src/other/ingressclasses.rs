//! networking.k8s.io/v1 IngressClasses: the controller is a domain-prefixed path set once;
//! parameter references are well-formed and default to cluster scope. The generation tracks
//! spec changes.

use std::sync::Arc;

use api::resources::ResourceInfo;
use api::validation::{FieldError, Path};
use k8s_openapi::api::networking::v1::IngressClass;

use crate::DynStrategy;
use crate::core::common::{self, go};
use crate::other::ingresses::validate_typed_reference;
use crate::strategy::{Adapter, Strategy};

const MAX_CONTROLLER_LEN: usize = 250;

pub fn strategy(info: &'static ResourceInfo) -> Arc<dyn DynStrategy> {
    Arc::new(Adapter::new(info, IngressClasses))
}

struct IngressClasses;

/// Upstream's `IsDomainPrefixedPath`.
fn domain_prefixed_path(path: &Path, value: &str) -> Vec<FieldError> {
    if value.is_empty() {
        return vec![FieldError::required(path, "")];
    }
    let Some((host, rest)) = value
        .split_once('/')
        .filter(|(h, r)| !h.is_empty() && !r.is_empty())
    else {
        return vec![FieldError::invalid(
            path,
            value,
            "must be a domain-prefixed path (such as \"acme.io/foo\")",
        )];
    };
    let mut errs = common::dns_subdomain(path, host);
    let ok = rest
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/-._~%!$&'()*+,;=:".contains(c));
    if !ok {
        errs.push(FieldError::invalid(
            path,
            rest,
            "Invalid path (regex used for validation is '[A-Za-z0-9/\\-._~%!$&'()*+,;=:]+')",
        ));
    }
    errs
}

impl Strategy for IngressClasses {
    type Object = IngressClass;

    fn tracks_generation(&self) -> bool {
        true
    }

    fn set_defaults(&self, ic: &mut IngressClass) {
        if let Some(params) = ic.spec.as_mut().and_then(|s| s.parameters.as_mut()) {
            params.scope.get_or_insert_with(|| "Cluster".to_string());
        }
    }

    fn validate(&self, ic: &IngressClass) -> Vec<FieldError> {
        let mut errs = Vec::new();
        let p = Path::new("spec");
        let spec = ic.spec.clone().unwrap_or_default();
        let controller = spec.controller.as_deref().unwrap_or("");
        if controller.len() > MAX_CONTROLLER_LEN {
            errs.push(FieldError::too_long(
                p.child("controller"),
                MAX_CONTROLLER_LEN,
            ));
        }
        errs.extend(domain_prefixed_path(&p.child("controller"), controller));
        if let Some(params) = &spec.parameters {
            let pp = p.child("parameters");
            errs.extend(validate_typed_reference(
                params.api_group.as_deref(),
                &params.kind,
                &params.name,
                &pp,
            ));
            match params.scope.as_deref() {
                None => errs.push(FieldError::required(pp.child("scope"), "")),
                Some("Namespace") => match params.namespace.as_deref() {
                    None => errs.push(FieldError::required(
                        pp.child("namespace"),
                        "`parameters.scope` is set to 'Namespace'",
                    )),
                    Some(ns) => errs.extend(common::dns_label(&pp.child("namespace"), ns)),
                },
                Some("Cluster") => {
                    if params.namespace.is_some() {
                        errs.push(FieldError::forbidden(
                            pp.child("namespace"),
                            "`parameters.scope` is set to 'Cluster'",
                        ));
                    }
                }
                Some(other) => errs.push(FieldError::not_supported(
                    pp.child("scope"),
                    other,
                    &["Cluster", "Namespace"],
                )),
            }
        }
        errs
    }

    fn validate_update(&self, new: &IngressClass, old: &IngressClass) -> Vec<FieldError> {
        let controller = |ic: &IngressClass| ic.spec.as_ref().and_then(|s| s.controller.clone());
        let mut errs = Vec::new();
        if controller(new) != controller(old) {
            errs.push(common::immutable(
                "spec.controller",
                go::quote(controller(new).as_deref().unwrap_or("")),
            ));
        }
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

    #[test]
    fn ingress_classes() {
        let s =
            strategy(api::resources::lookup("networking.k8s.io", "v1", "ingressclasses").unwrap());
        let out = create(
            &*s,
            json!({"metadata": {"name": "nginx"}, "spec": {"controller": "k8s.io/ingress-nginx",
            "parameters": {"kind": "Config", "name": "c", "apiGroup": "example.com"}}}),
        )
        .unwrap();
        assert_eq!(out["spec"]["parameters"]["scope"], "Cluster");
        assert_eq!(out["metadata"]["generation"], 1);
        assert_eq!(
            create_err(
                &*s,
                json!({"metadata": {"name": "x"}, "spec": {"controller": "nginx"}})
            ),
            [
                "spec.controller: Invalid value: \"nginx\": must be a domain-prefixed path (such as \"acme.io/foo\")"
            ]
        );
        assert_eq!(
            update_err(
                &*s,
                merged(&out, json!({"spec": {"controller": "example.com/other"}})),
                &out
            ),
            ["spec.controller: Invalid value: \"example.com/other\": field is immutable"]
        );
    }
}
