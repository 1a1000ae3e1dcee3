//! rbac.authorization.k8s.io/v1: Roles, ClusterRoles, RoleBindings and ClusterRoleBindings.
//! Names are URL path segments; every rule needs verbs; bindings need a complete, immutable
//! `roleRef` and well-formed subjects (upstream's `pkg/apis/rbac/validation` and defaults).
//! All four accept create-on-update, as upstream's RBAC storage does (`kubectl auth reconcile`
//! relies on it).

use std::sync::Arc;

use api::resources::ResourceInfo;
use api::validation::{FieldError, Path};
use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};

use crate::DynStrategy;
use crate::core::common::{self, go, selectors};
use crate::strategy::{Adapter, NameValidation, Strategy};

const GROUP: &str = "rbac.authorization.k8s.io";

pub fn strategy(info: &'static ResourceInfo) -> Arc<dyn DynStrategy> {
    match info.plural {
        "roles" => Arc::new(Adapter::new(info, Roles)),
        "clusterroles" => Arc::new(Adapter::new(info, ClusterRoles)),
        "rolebindings" => Arc::new(Adapter::new(info, RoleBindings)),
        "clusterrolebindings" => Arc::new(Adapter::new(info, ClusterRoleBindings)),
        _ => crate::plain(info),
    }
}

fn validate_rule(rule: &PolicyRule, namespaced: bool, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if rule.verbs.is_empty() {
        errs.push(FieldError::required(
            path.child("verbs"),
            "verbs must contain at least one value",
        ));
    }
    let urls = rule.non_resource_urls.as_deref().unwrap_or(&[]);
    let non_empty = |v: &Option<Vec<String>>| v.as_ref().is_some_and(|v| !v.is_empty());
    if !urls.is_empty() {
        let rendered = go::strings(Some(urls));
        if namespaced {
            errs.push(common::invalid_raw(
                path.child("nonResourceURLs"),
                &rendered,
                "namespaced rules cannot apply to non-resource URLs",
            ));
        }
        if non_empty(&rule.api_groups)
            || non_empty(&rule.resources)
            || non_empty(&rule.resource_names)
        {
            errs.push(common::invalid_raw(
                path.child("nonResourceURLs"),
                &rendered,
                "rules cannot apply to both regular resources and non-resource URLs",
            ));
        }
        return errs;
    }
    if !non_empty(&rule.api_groups) {
        errs.push(FieldError::required(
            path.child("apiGroups"),
            "resource rules must supply at least one api group",
        ));
    }
    if !non_empty(&rule.resources) {
        errs.push(FieldError::required(
            path.child("resources"),
            "resource rules must supply at least one resource",
        ));
    }
    errs
}

fn validate_rules(rules: Option<&[PolicyRule]>, namespaced: bool) -> Vec<FieldError> {
    rules
        .unwrap_or(&[])
        .iter()
        .enumerate()
        .flat_map(|(i, r)| validate_rule(r, namespaced, &Path::new("rules").index(i)))
        .collect()
}

/// Upstream's `SetDefaults_Subject`.
fn default_subjects(subjects: &mut Option<Vec<Subject>>) {
    for s in subjects.iter_mut().flatten() {
        if s.api_group.as_deref().unwrap_or("").is_empty() {
            s.api_group = match s.kind.as_str() {
                "ServiceAccount" => Some(String::new()),
                "User" | "Group" => Some(GROUP.to_string()),
                _ => s.api_group.take(),
            };
        }
    }
}

fn validate_subject(s: &Subject, namespaced: bool, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if s.name.is_empty() {
        errs.push(FieldError::required(path.child("name"), ""));
    }
    let group = s.api_group.as_deref().unwrap_or("");
    match s.kind.as_str() {
        "ServiceAccount" => {
            if !s.name.is_empty() {
                errs.extend(common::dns_subdomain(&path.child("name"), &s.name));
            }
            if !group.is_empty() {
                errs.push(FieldError::not_supported(
                    path.child("apiGroup"),
                    group,
                    &[""],
                ));
            }
            if !namespaced && s.namespace.as_deref().unwrap_or("").is_empty() {
                errs.push(FieldError::required(path.child("namespace"), ""));
            }
        }
        "User" | "Group" => {
            if group != GROUP {
                errs.push(FieldError::not_supported(
                    path.child("apiGroup"),
                    group,
                    &[GROUP],
                ));
            }
        }
        other => errs.push(FieldError::not_supported(
            path.child("kind"),
            other,
            &["ServiceAccount", "User", "Group"],
        )),
    }
    errs
}

fn validate_role_ref(r: &RoleRef, kinds: &[&str]) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let p = Path::new("roleRef");
    if r.api_group != GROUP {
        errs.push(FieldError::not_supported(
            p.child("apiGroup"),
            r.api_group.as_str(),
            &[GROUP],
        ));
    }
    if !kinds.contains(&r.kind.as_str()) {
        errs.push(FieldError::not_supported(
            p.child("kind"),
            r.kind.as_str(),
            kinds,
        ));
    }
    if r.name.is_empty() {
        errs.push(FieldError::required(p.child("name"), ""));
    } else {
        errs.extend(api::validation::errors_for(
            &p.child("name"),
            &r.name,
            api::validation::path_segment_name(&r.name),
        ));
    }
    errs
}

fn role_ref_unchanged(new: &RoleRef, old: &RoleRef) -> Vec<FieldError> {
    if new == old {
        return Vec::new();
    }
    vec![common::invalid_raw(
        "roleRef",
        format!(
            "rbac.RoleRef{{APIGroup:{}, Kind:{}, Name:{}}}",
            go::quote(&new.api_group),
            go::quote(&new.kind),
            go::quote(&new.name)
        ),
        "cannot change roleRef",
    )]
}

fn validate_binding(
    r: &RoleRef,
    subjects: Option<&[Subject]>,
    namespaced: bool,
) -> Vec<FieldError> {
    let kinds: &[&str] = if namespaced {
        &["Role", "ClusterRole"]
    } else {
        &["ClusterRole"]
    };
    let mut errs = validate_role_ref(r, kinds);
    for (i, s) in subjects.unwrap_or(&[]).iter().enumerate() {
        errs.extend(validate_subject(
            s,
            namespaced,
            &Path::new("subjects").index(i),
        ));
    }
    errs
}

struct Roles;

impl Strategy for Roles {
    type Object = Role;

    fn name_validation(&self) -> NameValidation {
        NameValidation::PathSegment
    }

    fn allow_create_on_update(&self) -> bool {
        true
    }

    fn validate(&self, r: &Role) -> Vec<FieldError> {
        validate_rules(r.rules.as_deref(), true)
    }
}

struct ClusterRoles;

impl Strategy for ClusterRoles {
    type Object = ClusterRole;

    fn name_validation(&self) -> NameValidation {
        NameValidation::PathSegment
    }

    fn allow_create_on_update(&self) -> bool {
        true
    }

    fn validate(&self, r: &ClusterRole) -> Vec<FieldError> {
        let mut errs = validate_rules(r.rules.as_deref(), false);
        if let Some(agg) = &r.aggregation_rule {
            let p = Path::new("aggregationRule").child("clusterRoleSelectors");
            let selectors = agg.cluster_role_selectors.as_deref().unwrap_or(&[]);
            if selectors.is_empty() {
                errs.push(FieldError::required(
                    &p,
                    "at least one clusterRoleSelector required if aggregationRule is non-nil",
                ));
            }
            for (i, sel) in selectors.iter().enumerate() {
                errs.extend(selectors::label_selector(sel, &p.index(i)));
            }
        }
        errs
    }
}

struct RoleBindings;

impl Strategy for RoleBindings {
    type Object = RoleBinding;

    fn name_validation(&self) -> NameValidation {
        NameValidation::PathSegment
    }

    fn allow_create_on_update(&self) -> bool {
        true
    }

    fn set_defaults(&self, b: &mut RoleBinding) {
        if b.role_ref.api_group.is_empty() {
            b.role_ref.api_group = GROUP.to_string();
        }
        default_subjects(&mut b.subjects);
    }

    fn validate(&self, b: &RoleBinding) -> Vec<FieldError> {
        validate_binding(&b.role_ref, b.subjects.as_deref(), true)
    }

    fn validate_update(&self, new: &RoleBinding, old: &RoleBinding) -> Vec<FieldError> {
        let mut errs = self.validate(new);
        errs.extend(role_ref_unchanged(&new.role_ref, &old.role_ref));
        errs
    }
}

struct ClusterRoleBindings;

impl Strategy for ClusterRoleBindings {
    type Object = ClusterRoleBinding;

    fn name_validation(&self) -> NameValidation {
        NameValidation::PathSegment
    }

    fn allow_create_on_update(&self) -> bool {
        true
    }

    fn set_defaults(&self, b: &mut ClusterRoleBinding) {
        if b.role_ref.api_group.is_empty() {
            b.role_ref.api_group = GROUP.to_string();
        }
        default_subjects(&mut b.subjects);
    }

    fn validate(&self, b: &ClusterRoleBinding) -> Vec<FieldError> {
        validate_binding(&b.role_ref, b.subjects.as_deref(), false)
    }

    fn validate_update(
        &self,
        new: &ClusterRoleBinding,
        old: &ClusterRoleBinding,
    ) -> Vec<FieldError> {
        let mut errs = self.validate(new);
        errs.extend(role_ref_unchanged(&new.role_ref, &old.role_ref));
        errs
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests a failed unwrap is a failed assertion
mod tests {
    use super::*;
    use crate::core::testing::*;
    use serde_json::json;

    fn s(plural: &str) -> Arc<dyn DynStrategy> {
        strategy(api::resources::lookup(GROUP, "v1", plural).unwrap())
    }

    #[test]
    fn rules() {
        let roles = s("roles");
        assert!(roles.allow_create_on_update());
        // Path-segment names: anything but '/', '%', '.' and '..'.
        assert!(
            create(
                &*roles,
                json!({"metadata": {"name": "system:Weird Name", "namespace": "a"}})
            )
            .is_ok()
        );
        assert_eq!(
            create_err(
                &*roles,
                json!({"metadata": {"name": "a/b", "namespace": "a"}})
            ),
            ["metadata.name: Invalid value: \"a/b\": may not contain '/'"]
        );
        assert_eq!(
            create_err(
                &*roles,
                json!({"metadata": {"name": "r", "namespace": "a"}, "rules": [
                    {"verbs": [], "apiGroups": [""], "resources": ["pods"]},
                    {"verbs": ["get"]},
                    {"verbs": ["get"], "nonResourceURLs": ["/healthz"]},
                ]})
            ),
            [
                "rules[0].verbs: Required value: verbs must contain at least one value",
                "rules[1].apiGroups: Required value: resource rules must supply at least one api group",
                "rules[1].resources: Required value: resource rules must supply at least one resource",
                "rules[2].nonResourceURLs: Invalid value: []string{\"/healthz\"}: namespaced rules cannot apply to non-resource URLs",
            ]
        );
        let cr = s("clusterroles");
        assert!(create(&*cr, json!({"metadata": {"name": "h"}, "rules": [{"verbs": ["get"], "nonResourceURLs": ["/healthz"]}]})).is_ok());
        assert_eq!(
            create_err(
                &*cr,
                json!({"metadata": {"name": "agg"}, "aggregationRule": {}})
            ),
            [
                "aggregationRule.clusterRoleSelectors: Required value: at least one clusterRoleSelector required if aggregationRule is non-nil"
            ]
        );
    }

    #[test]
    fn bindings() {
        let rb = s("rolebindings");
        let out = create(
            &*rb,
            json!({"metadata": {"name": "b", "namespace": "a"},
                "roleRef": {"kind": "ClusterRole", "name": "view"},
                "subjects": [{"kind": "User", "name": "alice"}, {"kind": "ServiceAccount", "name": "default", "namespace": "a"}]}),
        )
        .unwrap();
        assert_eq!(out["roleRef"]["apiGroup"], GROUP);
        assert_eq!(out["subjects"][0]["apiGroup"], GROUP);
        assert_eq!(out["subjects"][1]["apiGroup"], "");
        assert_eq!(
            update_err(
                &*rb,
                merged(&out, json!({"roleRef": {"name": "edit"}})),
                &out
            ),
            [
                "roleRef: Invalid value: rbac.RoleRef{APIGroup:\"rbac.authorization.k8s.io\", Kind:\"ClusterRole\", Name:\"edit\"}: cannot change roleRef"
            ]
        );
        let crb = s("clusterrolebindings");
        assert_eq!(
            create_err(
                &*crb,
                json!({"metadata": {"name": "b"}, "roleRef": {"kind": "Role", "name": ""},
                    "subjects": [{"kind": "ServiceAccount", "name": "x"}, {"kind": "Robot", "name": "r"}]})
            ),
            [
                "roleRef.kind: Unsupported value: \"Role\": supported values: \"ClusterRole\"",
                "roleRef.name: Required value",
                "subjects[0].namespace: Required value",
                "subjects[1].kind: Unsupported value: \"Robot\": supported values: \"ServiceAccount\", \"User\", \"Group\"",
            ]
        );
    }
}
