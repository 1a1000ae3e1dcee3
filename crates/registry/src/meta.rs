//! Generic `metadata` rules that apply to every resource (upstream's `ValidateObjectMeta`,
//! `ValidateObjectMetaUpdate` and the metadata half of `rest.BeforeUpdate`).

use api::validation::{self, FieldError, Path};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::strategy::NameValidation;

/// Finalizers Kubernetes itself defines; any other finalizer must be domain-qualified.
const STANDARD_FINALIZERS: &[&str] = &["kubernetes", "orphan", "foregroundDeletion"];

fn name_errors(name: &str, how: NameValidation) -> Vec<String> {
    match how {
        NameValidation::Subdomain => validation::dns1123_subdomain(name),
        NameValidation::Label => validation::dns1123_label(name),
        NameValidation::Dns1035Label => validation::dns1035_label(name),
        NameValidation::PathSegment => validation::path_segment_name(name),
    }
}

/// Validates the metadata of an object about to be written.
pub fn validate_object_meta(
    meta: &ObjectMeta,
    namespaced: bool,
    names: NameValidation,
) -> Vec<FieldError> {
    let root = Path::new("metadata");
    let mut errs = Vec::new();
    match meta.name.as_deref() {
        None | Some("") => errs.push(FieldError::required(
            root.child("name"),
            "name or generateName is required",
        )),
        Some(name) => errs.extend(validation::errors_for(
            &root.child("name"),
            name,
            name_errors(name, names),
        )),
    }
    let ns = meta.namespace.as_deref().unwrap_or("");
    if namespaced {
        if ns.is_empty() {
            errs.push(FieldError::required(root.child("namespace"), ""));
        } else {
            errs.extend(validation::errors_for(
                &root.child("namespace"),
                ns,
                validation::dns1123_label(ns),
            ));
        }
    } else if !ns.is_empty() {
        errs.push(FieldError::forbidden(
            root.child("namespace"),
            "not allowed on this type",
        ));
    }
    if let Some(labels) = &meta.labels {
        errs.extend(validation::validate_labels(labels, &root.child("labels")));
    }
    if let Some(annotations) = &meta.annotations {
        errs.extend(validation::validate_annotations(
            annotations,
            &root.child("annotations"),
        ));
    }
    if let Some(refs) = &meta.owner_references {
        let path = root.child("ownerReferences");
        for (i, r) in refs.iter().enumerate() {
            let p = path.index(i);
            if r.api_version.is_empty() {
                errs.push(FieldError::invalid(
                    p.child("apiVersion"),
                    "",
                    "version must not be empty",
                ));
            }
            if r.kind.is_empty() {
                errs.push(FieldError::invalid(
                    p.child("kind"),
                    "",
                    "kind must not be empty",
                ));
            }
            if r.name.is_empty() {
                errs.push(FieldError::invalid(
                    p.child("name"),
                    "",
                    "name must not be empty",
                ));
            }
            if r.uid.is_empty() {
                errs.push(FieldError::invalid(
                    p.child("uid"),
                    "",
                    "uid must not be empty",
                ));
            }
        }
        let controllers: Vec<String> = refs
            .iter()
            .filter(|r| r.controller == Some(true))
            .map(|r| format!("{}/{}", r.kind, r.name))
            .collect();
        if controllers.len() > 1 {
            errs.push(FieldError::invalid(
                path,
                serde_json::Value::from(controllers),
                "Only one reference can have Controller set to true",
            ));
        }
    }
    if let Some(finalizers) = &meta.finalizers {
        let path = root.child("finalizers");
        for f in finalizers {
            let problems = validation::qualified_name(f);
            if !problems.is_empty() {
                errs.extend(validation::errors_for(&path, f, problems));
            } else if !f.contains('/') && !STANDARD_FINALIZERS.contains(&f.as_str()) {
                errs.push(FieldError::invalid(
                    &path,
                    f.as_str(),
                    "name is neither a standard finalizer name nor is it fully qualified",
                ));
            }
        }
        let has = |n: &str| finalizers.iter().any(|f| f == n);
        if has("orphan") && has("foregroundDeletion") {
            errs.push(FieldError::invalid(
                &path,
                serde_json::Value::from(finalizers.clone()),
                "finalizer orphan and foregroundDeletion cannot be both set",
            ));
        }
    }
    errs
}

/// Validates what may not change about metadata across an update.
pub fn validate_object_meta_update(new: &ObjectMeta, old: &ObjectMeta) -> Vec<FieldError> {
    let root = Path::new("metadata");
    let mut errs = Vec::new();
    let immutable = |field: &str, n: Option<&str>, o: Option<&str>, errs: &mut Vec<FieldError>| {
        if n.unwrap_or("") != o.unwrap_or("") {
            errs.push(FieldError::invalid(
                root.child(field),
                n.unwrap_or(""),
                "field is immutable",
            ));
        }
    };
    immutable("name", new.name.as_deref(), old.name.as_deref(), &mut errs);
    immutable(
        "namespace",
        new.namespace.as_deref(),
        old.namespace.as_deref(),
        &mut errs,
    );
    immutable("uid", new.uid.as_deref(), old.uid.as_deref(), &mut errs);
    if old.deletion_timestamp.is_some() {
        let old_f = old.finalizers.as_deref().unwrap_or(&[]);
        let added: Vec<&String> = new
            .finalizers
            .as_deref()
            .unwrap_or(&[])
            .iter()
            .filter(|f| !old_f.contains(f))
            .collect();
        if !added.is_empty() {
            errs.push(FieldError::forbidden(
                root.child("finalizers"),
                format!("no new finalizers can be added if the object is being deleted, found new finalizers {added:?}"),
            ));
        }
    }
    errs
}

/// Copies the fields only the server sets from the stored object into an update.
pub fn carry_over_system_fields(new: &mut ObjectMeta, old: &ObjectMeta) {
    if new.uid.as_deref().unwrap_or("").is_empty() {
        new.uid.clone_from(&old.uid);
    }
    new.creation_timestamp.clone_from(&old.creation_timestamp);
    new.deletion_timestamp.clone_from(&old.deletion_timestamp);
    new.deletion_grace_period_seconds = old.deletion_grace_period_seconds;
    new.generation = old.generation;
    new.self_link = None;
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

    fn meta(name: &str, ns: Option<&str>) -> ObjectMeta {
        ObjectMeta {
            name: Some(name.into()),
            namespace: ns.map(Into::into),
            ..Default::default()
        }
    }

    #[test]
    fn names_and_scope() {
        assert!(
            validate_object_meta(
                &meta("ok", Some("default")),
                true,
                NameValidation::Subdomain
            )
            .is_empty()
        );
        let errs = validate_object_meta(&meta("Bad_Name", None), true, NameValidation::Subdomain);
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["metadata.name", "metadata.namespace"]);
        let errs = validate_object_meta(&meta("n", Some("x")), false, NameValidation::Subdomain);
        assert_eq!(
            errs[0].to_string(),
            "metadata.namespace: Forbidden: not allowed on this type"
        );
        assert!(!validate_object_meta(&meta("a.b", None), false, NameValidation::Label).is_empty());
    }

    #[test]
    fn finalizers_and_owners() {
        let mut m = meta("a", Some("default"));
        m.finalizers = Some(vec![
            "example.com/x".into(),
            "orphan".into(),
            "nodomain".into(),
        ]);
        m.owner_references = Some(vec![
            OwnerReference {
                controller: Some(true),
                name: "a".into(),
                kind: "K".into(),
                api_version: "v1".into(),
                uid: "1".into(),
                ..Default::default()
            },
            OwnerReference {
                controller: Some(true),
                name: "b".into(),
                kind: "K".into(),
                api_version: "v1".into(),
                uid: "".into(),
                ..Default::default()
            },
        ]);
        let errs: Vec<String> = validate_object_meta(&m, true, NameValidation::Subdomain)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(errs.len(), 3, "{errs:?}");
        assert!(errs[0].starts_with("metadata.ownerReferences[1].uid"));
        assert!(errs[1].contains("Only one reference can have Controller set to true"));
        assert!(errs[2].contains("\"nodomain\""));
    }

    #[test]
    fn update_rules() {
        let old = ObjectMeta {
            deletion_timestamp: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                jiff::Timestamp::UNIX_EPOCH,
            )),
            finalizers: Some(vec!["a/b".into()]),
            ..meta("a", Some("default"))
        };
        let mut new = meta("b", Some("default"));
        new.finalizers = Some(vec!["a/b".into(), "c/d".into()]);
        let errs: Vec<String> = validate_object_meta_update(&new, &old)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(errs.len(), 2);
        assert!(errs[0].starts_with("metadata.name: Invalid value: \"b\": field is immutable"));
        assert!(errs[1].contains("no new finalizers"));
    }
}
