//! Environment variables (`ValidateEnv`, `ValidateEnvFrom`) and the key/name rules of their
//! ConfigMap and Secret references.

use api::validation::{self, FieldError, Path};
use k8s_openapi::api::core::v1::{EnvFromSource, EnvVar};

use super::downward;

/// `IsRelaxedEnvVarName` (the RelaxedEnvironmentVariableValidation gate is on in 1.33).
fn env_name_errors(name: &str) -> Vec<String> {
    if name.bytes().all(|c| (0x20..0x7f).contains(&c) && c != b'=') {
        Vec::new()
    } else {
        vec!["a valid environment variable name must consist only of printable ASCII characters other than '='".to_string()]
    }
}

/// `IsConfigMapKey`.
pub fn config_map_key_errors(key: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if key.len() > 253 {
        errs.push("must be no more than 253 characters".to_string());
    }
    if key.is_empty()
        || !key
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_'))
    {
        errs.push("a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')".to_string());
    }
    match key {
        "." => errs.push("must not be '.'".to_string()),
        ".." => errs.push("must not be '..'".to_string()),
        k if k.starts_with("..") => errs.push("must not start with '..'".to_string()),
        _ => {}
    }
    errs
}

fn key_selector(name: &str, key: &str, path: &Path, errs: &mut Vec<FieldError>) {
    errs.extend(validation::errors_for(
        &path.child("name"),
        name,
        validation::dns1123_subdomain(name),
    ));
    if key.is_empty() {
        errs.push(FieldError::required(path.child("key"), ""));
    } else {
        errs.extend(validation::errors_for(
            &path.child("key"),
            key,
            config_map_key_errors(key),
        ));
    }
}

pub fn env(vars: &[EnvVar], path: &Path, errs: &mut Vec<FieldError>) {
    for (i, ev) in vars.iter().enumerate() {
        let ip = path.index(i);
        if ev.name.is_empty() {
            errs.push(FieldError::required(ip.child("name"), ""));
        } else {
            errs.extend(validation::errors_for(
                &ip.child("name"),
                &ev.name,
                env_name_errors(&ev.name),
            ));
        }
        let Some(from) = &ev.value_from else {
            continue;
        };
        let vp = ip.child("valueFrom");
        let mut n = 0;
        if let Some(f) = &from.field_ref {
            n += 1;
            errs.extend(downward::validate_field_ref(
                f,
                downward::ENV_FIELDS,
                &vp.child("fieldRef"),
            ));
        }
        if let Some(r) = &from.resource_field_ref {
            n += 1;
            errs.extend(downward::validate_resource_ref(
                r,
                false,
                &vp.child("resourceFieldRef"),
            ));
        }
        if let Some(k) = &from.config_map_key_ref {
            n += 1;
            key_selector(&k.name, &k.key, &vp.child("configMapKeyRef"), errs);
        }
        if let Some(k) = &from.secret_key_ref {
            n += 1;
            key_selector(&k.name, &k.key, &vp.child("secretKeyRef"), errs);
        }
        if n == 0 {
            errs.push(FieldError::invalid(&vp, "", "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`"));
        } else if !ev.value.as_deref().unwrap_or("").is_empty() {
            errs.push(FieldError::invalid(
                &vp,
                "",
                "may not be specified when `value` is not empty",
            ));
        } else if n > 1 {
            errs.push(FieldError::invalid(
                &vp,
                "",
                "may not have more than one field specified at a time",
            ));
        }
    }
}

/// A name that may be used as a prefix: `NameIsDNSSubdomain(name, true)` masks a trailing dash
/// (upstream's `maskTrailingDash` swaps the last two characters for `a`).
fn prefix_name_errors(name: &str) -> Vec<String> {
    let masked = match name.strip_suffix('-') {
        Some(head) if name.len() > 1 && name.is_ascii() => format!("{}a", &head[..head.len() - 1]),
        _ => name.to_string(),
    };
    validation::dns1123_subdomain(&masked)
}

pub fn env_from(sources: &[EnvFromSource], path: &Path, errs: &mut Vec<FieldError>) {
    for (i, ev) in sources.iter().enumerate() {
        let ip = path.index(i);
        if let Some(prefix) = ev.prefix.as_deref().filter(|p| !p.is_empty()) {
            errs.extend(validation::errors_for(
                &ip.child("prefix"),
                prefix,
                env_name_errors(prefix),
            ));
        }
        let mut n = 0;
        for (name, child) in [
            (
                ev.config_map_ref.as_ref().map(|r| r.name.as_str()),
                "configMapRef",
            ),
            (ev.secret_ref.as_ref().map(|r| r.name.as_str()), "secretRef"),
        ] {
            let Some(name) = name else {
                continue;
            };
            n += 1;
            let np = ip.child(child).child("name");
            if name.is_empty() {
                errs.push(FieldError::required(np, ""));
            } else {
                errs.extend(validation::errors_for(&np, name, prefix_name_errors(name)));
            }
        }
        if n == 0 {
            errs.push(FieldError::invalid(
                path,
                "",
                "must specify one of: `configMapRef` or `secretRef`",
            ));
        } else if n > 1 {
            errs.push(FieldError::invalid(
                path,
                "",
                "may not have more than one field specified at a time",
            ));
        }
    }
}
