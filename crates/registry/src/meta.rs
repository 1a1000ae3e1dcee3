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

/// Problems with a `generateName` prefix: the name rules with a trailing dash allowed, since a
/// random suffix follows (upstream's `prefix = true`).
fn prefix_errors(prefix: &str, how: NameValidation) -> Vec<String> {
    match how {
        NameValidation::PathSegment => validation::path_segment_name(prefix)
            .into_iter()
            // `.` and `..` are fine as prefixes: a suffix always follows.
            .filter(|m| !m.starts_with("may not be '"))
            .collect(),
        _ => {
            let masked = prefix
                .strip_suffix('-')
                .map_or(prefix.to_string(), |p| format!("{p}a"));
            name_errors(&masked, how)
        }
    }
}

/// Go's `%#v` of a `[]string`.
fn go_strings(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("{s:?}")).collect();
    format!("[]string{{{}}}", quoted.join(", "))
}

/// Upstream's `ValidateOwnerReferences`. Errors name the list, not an entry, as upstream's do.
fn validate_owner_references(
    refs: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference],
    path: &Path,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut first_controller: Option<String> = None;
    for r in refs {
        let version = match r.api_version.split_once('/') {
            Some((_, v)) => v,
            None => r.api_version.as_str(),
        };
        if version.is_empty() {
            errs.push(FieldError::invalid(
                path.child("apiVersion"),
                r.api_version.as_str(),
                "version must not be empty",
            ));
        }
        if r.kind.is_empty() {
            errs.push(FieldError::invalid(
                path.child("kind"),
                "",
                "kind must not be empty",
            ));
        }
        if r.name.is_empty() {
            errs.push(FieldError::invalid(
                path.child("name"),
                "",
                "name must not be empty",
            ));
        }
        if r.uid.is_empty() {
            errs.push(FieldError::invalid(
                path.child("uid"),
                "",
                "uid must not be empty",
            ));
        }
        if r.api_version == "v1" && r.kind == "Event" {
            errs.push(FieldError::invalid(
                path,
                serde_json::to_value(r).unwrap_or_default(),
                "/v1, Kind=Event is disallowed from being an owner",
            ));
        }
        if r.controller == Some(true) {
            let current = format!("{}/{}", r.kind, r.name);
            match &first_controller {
                Some(first) => errs.push(FieldError::invalid(
                    path,
                    serde_json::to_value(refs).unwrap_or_default(),
                    format!(
                        "Only one reference can have Controller set to true. Found \"true\" in references for {first} and {current}"
                    ),
                )),
                None => first_controller = Some(current),
            }
        }
    }
    errs
}

/// Validates the metadata of an object about to be written.
pub fn validate_object_meta(
    meta: &ObjectMeta,
    namespaced: bool,
    names: NameValidation,
) -> Vec<FieldError> {
    let root = Path::new("metadata");
    let mut errs = Vec::new();
    if let Some(prefix) = meta.generate_name.as_deref().filter(|p| !p.is_empty()) {
        errs.extend(validation::errors_for(
            &root.child("generateName"),
            prefix,
            prefix_errors(prefix, names),
        ));
    }
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
    if let Some(g) = meta.generation.filter(|g| *g < 0) {
        errs.push(FieldError::invalid(
            root.child("generation"),
            g,
            "must be greater than or equal to 0",
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
        errs.extend(validate_owner_references(
            refs,
            &root.child("ownerReferences"),
        ));
    }
    if let Some(finalizers) = &meta.finalizers {
        let path = root.child("finalizers");
        // The generic rule (a qualified name) reports against the list; the rule built-in
        // types add (standard or domain-qualified) reports against the entry.
        for f in finalizers {
            errs.extend(validation::errors_for(
                &path,
                f,
                validation::qualified_name(f),
            ));
        }
        let has = |n: &str| finalizers.iter().any(|f| f == n);
        if has("orphan") && has("foregroundDeletion") {
            errs.push(FieldError {
                field: path.to_string(),
                kind: validation::ErrorKind::Invalid(go_strings(finalizers)),
                detail: "finalizer orphan and foregroundDeletion cannot be both set".to_string(),
            });
        }
        for (i, f) in finalizers.iter().enumerate() {
            if !f.contains('/') && !STANDARD_FINALIZERS.contains(&f.as_str()) {
                errs.push(FieldError::invalid(
                    path.index(i),
                    f.as_str(),
                    "name is neither a standard finalizer name nor is it fully qualified",
                ));
            }
        }
    }
    errs
}

/// Validates what may not change about metadata across an update.
pub fn validate_object_meta_update(new: &ObjectMeta, old: &ObjectMeta) -> Vec<FieldError> {
    let root = Path::new("metadata");
    let mut errs = Vec::new();
    if old.deletion_timestamp.is_some() {
        let old_f = old.finalizers.as_deref().unwrap_or(&[]);
        let mut added: Vec<String> = new
            .finalizers
            .as_deref()
            .unwrap_or(&[])
            .iter()
            .filter(|f| !old_f.contains(f))
            .cloned()
            .collect();
        added.sort();
        added.dedup();
        if !added.is_empty() {
            errs.push(FieldError::forbidden(
                root.child("finalizers"),
                format!(
                    "no new finalizers can be added if the object is being deleted, found new finalizers {}",
                    go_strings(&added)
                ),
            ));
        }
    }
    if new.generation.unwrap_or(0) < old.generation.unwrap_or(0) {
        errs.push(FieldError::invalid(
            root.child("generation"),
            new.generation.unwrap_or(0),
            "must not be decremented",
        ));
    }
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
#[allow(clippy::unwrap_used)] // in tests a failed unwrap is a failed assertion
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
        // Upstream names the list, not the entry, in owner-reference errors.
        assert_eq!(
            errs[0],
            "metadata.ownerReferences.uid: Invalid value: \"\": uid must not be empty"
        );
        assert!(errs[1].ends_with(
            "Only one reference can have Controller set to true. Found \"true\" in references for K/a and K/b"
        ));
        assert_eq!(
            errs[2],
            "metadata.finalizers[2]: Invalid value: \"nodomain\": name is neither a standard finalizer name nor is it fully qualified"
        );

        let mut m = meta("a", Some("default"));
        m.finalizers = Some(vec!["orphan".into(), "foregroundDeletion".into()]);
        m.generate_name = Some("Web-".into());
        m.owner_references = Some(vec![OwnerReference {
            api_version: "apps/".into(),
            kind: "K".into(),
            name: "n".into(),
            uid: "u".into(),
            ..Default::default()
        }]);
        let errs: Vec<String> = validate_object_meta(&m, true, NameValidation::Subdomain)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(errs.len(), 3, "{errs:?}");
        assert!(errs[0].starts_with(
            "metadata.generateName: Invalid value: \"Web-\": a lowercase RFC 1123 subdomain"
        ));
        assert_eq!(
            errs[1],
            "metadata.ownerReferences.apiVersion: Invalid value: \"apps/\": version must not be empty"
        );
        assert_eq!(
            errs[2],
            "metadata.finalizers: Invalid value: []string{\"orphan\", \"foregroundDeletion\"}: finalizer orphan and foregroundDeletion cannot be both set"
        );
        // A valid prefix may end in a dash.
        let mut ok = meta("web-x1", Some("default"));
        ok.generate_name = Some("web-".into());
        assert!(validate_object_meta(&ok, true, NameValidation::Subdomain).is_empty());
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
        assert_eq!(
            errs,
            [
                "metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{\"c/d\"}",
                "metadata.name: Invalid value: \"b\": field is immutable",
            ]
        );
    }
}
