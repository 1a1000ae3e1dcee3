//! Validation helpers shared by the strategies in [`crate::core`] and [`crate::other`]: the
//! upstream validators that are not about names (ports, IPs, CIDRs, label and node selectors,
//! config keys, resource names), and the rendering of offending values the way upstream's
//! `field.Error` prints Go values, so messages read exactly like upstream's.

pub mod go;
pub mod net;
pub mod resources;
pub mod selectors;

use api::validation::{self, ErrorKind, FieldError, Path};

/// An `Invalid value` error whose value is already rendered (Go syntax, e.g. `[]string{"a"}`).
pub fn invalid_raw(
    field: impl Into<String>,
    rendered: impl Into<String>,
    detail: impl Into<String>,
) -> FieldError {
    FieldError {
        field: field.into(),
        kind: ErrorKind::Invalid(rendered.into()),
        detail: detail.into(),
    }
}

/// A `Duplicate value` error whose value is already rendered.
pub fn duplicate_raw(field: impl Into<String>, rendered: impl Into<String>) -> FieldError {
    FieldError {
        field: field.into(),
        kind: ErrorKind::Duplicate(rendered.into()),
        detail: String::new(),
    }
}

/// A `Too long` error with upstream's wording.
pub fn too_long(field: impl Into<String>, max: usize) -> FieldError {
    FieldError::too_long(field, max)
}

/// `field is immutable` for a string-like value.
pub fn immutable(field: impl Into<String>, rendered: impl Into<String>) -> FieldError {
    invalid_raw(field, rendered, "field is immutable")
}

/// Upstream's `ValidateImmutableField` for optional strings.
pub fn immutable_str(path: &Path, new: Option<&str>, old: Option<&str>, out: &mut Vec<FieldError>) {
    if new != old {
        out.push(immutable(path, go::opt_str(new)));
    }
}

/// Upstream's `ValidateNonnegativeField`.
pub fn nonnegative(path: &Path, value: i64) -> Option<FieldError> {
    (value < 0).then(|| FieldError::invalid(path, value, "must be greater than or equal to 0"))
}

/// Problems with `s` as a port name (`IsValidPortName`).
pub fn port_name(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 15 {
        errs.push("must be no more than 15 characters".to_string());
    }
    if s.is_empty()
        || !s
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
    {
        errs.push(
            "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".to_string(),
        );
    }
    if !s.bytes().any(|c| c.is_ascii_lowercase()) {
        errs.push("must contain at least one letter (a-z)".to_string());
    }
    if s.contains("--") {
        errs.push("must not contain consecutive hyphens".to_string());
    }
    if s.starts_with('-') || s.ends_with('-') {
        errs.push("must not begin or end with a hyphen".to_string());
    }
    errs
}

/// Upstream's `InclusiveRangeError`.
pub fn inclusive_range(lo: i64, hi: i64) -> String {
    format!("must be between {lo} and {hi}, inclusive")
}

/// Problems with `port` as a port number (`IsValidPortNum`).
pub fn port_num(port: i32) -> Option<String> {
    (!(1..=65535).contains(&port)).then(|| inclusive_range(1, 65535))
}

/// Upstream's `ValidatePortNumOrName`: a target port is a valid number or port name.
pub fn port_num_or_name(
    port: &k8s_openapi::apimachinery::pkg::util::intstr::IntOrString,
    path: &Path,
) -> Vec<FieldError> {
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    match port {
        IntOrString::Int(n) => port_num(*n)
            .map(|m| FieldError::invalid(path, *n, m))
            .into_iter()
            .collect(),
        IntOrString::String(s) if s.is_empty() => vec![FieldError::required(path, "")],
        IntOrString::String(s) => validation::errors_for(path, s, port_name(s)),
    }
}

/// Problems with `s` as a ConfigMap or Secret key (`IsConfigMapKey`).
pub fn config_map_key(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > validation::DNS1123_SUBDOMAIN_MAX {
        errs.push(format!(
            "must be no more than {} characters",
            validation::DNS1123_SUBDOMAIN_MAX
        ));
    }
    if s.is_empty()
        || !s
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_'))
    {
        errs.push("a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')".to_string());
    }
    if s == "." {
        errs.push("must not be '.'".to_string());
    } else if s == ".." {
        errs.push("must not be '..'".to_string());
    } else if s.starts_with("..") {
        errs.push("must not start with '..'".to_string());
    }
    errs
}

/// Upstream's `ValidateDNS1123Label` on a field.
pub fn dns_label(path: &Path, value: &str) -> Vec<FieldError> {
    validation::errors_for(path, value, validation::dns1123_label(value))
}

/// Upstream's `ValidateDNS1123Subdomain` on a field.
pub fn dns_subdomain(path: &Path, value: &str) -> Vec<FieldError> {
    validation::errors_for(path, value, validation::dns1123_subdomain(value))
}

/// Upstream's `ValidateQualifiedName` on a field.
pub fn qualified_name(path: &Path, value: &str) -> Vec<FieldError> {
    validation::errors_for(path, value, validation::qualified_name(value))
}

/// Label value problems, reported against `path` (`IsValidLabelValue`).
pub fn label_value(path: &Path, value: &str) -> Vec<FieldError> {
    validation::errors_for(path, value, validation::label_value(value))
}

/// Problems with `s` as a finalizer name in `spec.finalizers` (namespaces): a qualified name,
/// and either standard or domain-qualified (upstream reports both rules independently).
pub fn finalizer_name(path: &Path, s: &str) -> Vec<FieldError> {
    let mut errs = validation::errors_for(path, s, validation::qualified_name(s));
    if !s.contains('/') && !matches!(s, "kubernetes" | "orphan" | "foregroundDeletion") {
        errs.push(FieldError::invalid(
            path,
            s,
            "name is neither a standard finalizer name nor is it fully qualified",
        ));
    }
    errs
}

/// Upstream's `ValidatePositiveIntOrPercent` and `IsNotMoreThan100Percent` (PDB budgets).
pub fn int_or_percent(
    v: &k8s_openapi::apimachinery::pkg::util::intstr::IntOrString,
    path: &Path,
) -> Vec<FieldError> {
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    let mut errs = Vec::new();
    match v {
        IntOrString::Int(n) => errs.extend(nonnegative(path, i64::from(*n))),
        IntOrString::String(s) => {
            let digits = s.strip_suffix('%').unwrap_or("");
            if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
                errs.push(invalid_raw(
                    path,
                    go::int_or_string(v),
                    "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')",
                ));
            } else if digits.parse::<i64>().is_ok_and(|p| p > 100) {
                errs.push(invalid_raw(
                    path,
                    go::int_or_string(v),
                    "must not be greater than 100%",
                ));
            }
        }
    }
    errs
}

/// Sum of key and value lengths of a string map.
pub fn map_size<'a>(m: impl IntoIterator<Item = (&'a String, &'a String)>) -> usize {
    m.into_iter().map(|(k, v)| k.len() + v.len()).sum()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests a failed unwrap is a failed assertion
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

    #[test]
    fn port_names_follow_upstream() {
        assert!(port_name("http").is_empty());
        assert!(port_name("h-2").is_empty());
        assert_eq!(
            port_name("80"),
            vec!["must contain at least one letter (a-z)"]
        );
        assert_eq!(
            port_name("a--b"),
            vec!["must not contain consecutive hyphens"]
        );
        assert_eq!(port_name("abcdefghijklmnop").len(), 1);
        assert_eq!(port_name("-a").len(), 1);
        assert_eq!(port_name("HTTP").len(), 2);
    }

    #[test]
    fn target_ports() {
        let p = Path::new("spec.ports[0].targetPort");
        assert!(port_num_or_name(&IntOrString::Int(8080), &p).is_empty());
        assert_eq!(
            port_num_or_name(&IntOrString::Int(0), &p)[0].to_string(),
            "spec.ports[0].targetPort: Invalid value: 0: must be between 1 and 65535, inclusive"
        );
        assert_eq!(
            port_num_or_name(&IntOrString::String(String::new()), &p)[0].to_string(),
            "spec.ports[0].targetPort: Required value"
        );
    }

    #[test]
    fn config_keys() {
        assert!(config_map_key("key.name_1-x").is_empty());
        assert!(config_map_key(".hidden").is_empty());
        assert_eq!(config_map_key("..x"), vec!["must not start with '..'"]);
        assert_eq!(config_map_key("."), vec!["must not be '.'"]);
        assert_eq!(config_map_key("a/b").len(), 1);
        assert_eq!(config_map_key(&"a".repeat(254)).len(), 1);
    }

    #[test]
    fn finalizers() {
        let p = Path::new("spec.finalizers");
        assert!(finalizer_name(&p, "kubernetes").is_empty());
        assert!(finalizer_name(&p, "example.com/x").is_empty());
        assert_eq!(
            finalizer_name(&p, "custom")[0].to_string(),
            "spec.finalizers: Invalid value: \"custom\": name is neither a standard finalizer name nor is it fully qualified"
        );
    }
}
