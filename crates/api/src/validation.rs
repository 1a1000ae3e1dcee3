//! Field errors and the name/label validators every strategy uses.
//!
//! A [`FieldError`] names the field by its JSON path (`spec.containers[0].image`) and renders the
//! way upstream's `field.Error` does, because users (and tests ported from upstream) read the
//! message: `spec.containers[0].name: Required value`.

use std::fmt;

use serde_json::Value;

/// What is wrong with a field; the variant decides the `Status` cause type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    Required,
    /// The rendered offending value (JSON form: strings quoted).
    Invalid(String),
    /// Value and the rendered list of supported values.
    NotSupported(String, Vec<String>),
    Duplicate(String),
    Forbidden,
    TooLong(usize),
    TooMany(usize),
    /// The rendered value that names something missing (`Not found: "x"`).
    NotFound(String),
    Internal,
}

impl ErrorKind {
    /// The `details.causes[].reason` upstream uses.
    pub fn cause_type(&self) -> &'static str {
        match self {
            ErrorKind::Required => "FieldValueRequired",
            ErrorKind::Invalid(_) => "FieldValueInvalid",
            ErrorKind::NotSupported(..) => "FieldValueNotSupported",
            ErrorKind::Duplicate(_) => "FieldValueDuplicate",
            ErrorKind::Forbidden => "FieldValueForbidden",
            ErrorKind::TooLong(_) => "FieldValueTooLong",
            ErrorKind::TooMany(_) => "FieldValueTooMany",
            ErrorKind::NotFound(_) => "FieldValueNotFound",
            ErrorKind::Internal => "InternalError",
        }
    }
}

/// One validation failure on one field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub kind: ErrorKind,
    pub detail: String,
}

fn render(value: impl Into<Value>) -> String {
    match value.into() {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

impl FieldError {
    pub fn required(field: impl Into<String>, detail: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            kind: ErrorKind::Required,
            detail: detail.into(),
        }
    }

    pub fn invalid(
        field: impl Into<String>,
        value: impl Into<Value>,
        detail: impl Into<String>,
    ) -> Self {
        FieldError {
            field: field.into(),
            kind: ErrorKind::Invalid(render(value)),
            detail: detail.into(),
        }
    }

    pub fn not_supported(
        field: impl Into<String>,
        value: impl Into<Value>,
        supported: &[&str],
    ) -> Self {
        FieldError {
            field: field.into(),
            kind: ErrorKind::NotSupported(
                render(value),
                supported.iter().map(|s| format!("{s:?}")).collect(),
            ),
            detail: String::new(),
        }
    }

    pub fn duplicate(field: impl Into<String>, value: impl Into<Value>) -> Self {
        FieldError {
            field: field.into(),
            kind: ErrorKind::Duplicate(render(value)),
            detail: String::new(),
        }
    }

    pub fn forbidden(field: impl Into<String>, detail: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            kind: ErrorKind::Forbidden,
            detail: detail.into(),
        }
    }

    pub fn too_long(field: impl Into<String>, max: usize) -> Self {
        FieldError {
            field: field.into(),
            kind: ErrorKind::TooLong(max),
            detail: format!("may not be more than {max} bytes"),
        }
    }

    pub fn too_many(field: impl Into<String>, max: usize) -> Self {
        FieldError {
            field: field.into(),
            kind: ErrorKind::TooMany(max),
            detail: format!("must have at most {max} items"),
        }
    }

    pub fn not_found(field: impl Into<String>, value: impl Into<Value>) -> Self {
        FieldError {
            field: field.into(),
            kind: ErrorKind::NotFound(render(value)),
            detail: String::new(),
        }
    }

    pub fn internal(field: impl Into<String>, detail: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            kind: ErrorKind::Internal,
            detail: detail.into(),
        }
    }

    /// The message without the field prefix, as in `details.causes[].message`.
    pub fn message(&self) -> String {
        let body = match &self.kind {
            ErrorKind::Required => "Required value".to_string(),
            ErrorKind::Invalid(v) => format!("Invalid value: {v}"),
            ErrorKind::NotSupported(v, supported) => {
                let mut s = format!("Unsupported value: {v}");
                if !supported.is_empty() {
                    s.push_str(": supported values: ");
                    s.push_str(&supported.join(", "));
                }
                return s;
            }
            ErrorKind::Duplicate(v) => format!("Duplicate value: {v}"),
            ErrorKind::Forbidden => "Forbidden".to_string(),
            ErrorKind::TooLong(_) => "Too long".to_string(),
            ErrorKind::TooMany(_) => "Too many".to_string(),
            ErrorKind::NotFound(v) => format!("Not found: {v}"),
            ErrorKind::Internal => "Internal error".to_string(),
        };
        if self.detail.is_empty() {
            body
        } else {
            format!("{body}: {}", self.detail)
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            f.write_str(&self.message())
        } else {
            write!(f, "{}: {}", self.field, self.message())
        }
    }
}

/// Builds child field paths: `Path::new("spec").child("containers").index(0)`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Path(String);

impl Path {
    pub fn new(root: &str) -> Self {
        Path(root.to_string())
    }

    pub fn child(&self, name: &str) -> Self {
        if self.0.is_empty() {
            Path(name.to_string())
        } else {
            Path(format!("{}.{name}", self.0))
        }
    }

    pub fn index(&self, i: usize) -> Self {
        Path(format!("{}[{i}]", self.0))
    }

    /// A map entry: `metadata.labels[app]`.
    pub fn key(&self, k: &str) -> Self {
        Path(format!("{}[{k}]", self.0))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<Path> for String {
    fn from(p: Path) -> String {
        p.0
    }
}

impl From<&Path> for String {
    fn from(p: &Path) -> String {
        p.0.clone()
    }
}

pub const DNS1123_LABEL_MAX: usize = 63;
pub const DNS1123_SUBDOMAIN_MAX: usize = 253;
pub const LABEL_VALUE_MAX: usize = 63;
/// Upstream's limit on the total size of all annotations of one object.
pub const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;

const DNS1123_LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const DNS1035_LABEL_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";
const QUALIFIED_NAME_MSG: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

fn lower_alnum(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

fn is_label_shape(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && lower_alnum(b[0])
        && lower_alnum(b[b.len() - 1])
        && b.iter().all(|&c| lower_alnum(c) || c == b'-')
}

/// Problems with `s` as an RFC 1123 label (namespace names, container names, port names...).
pub fn dns1123_label(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > DNS1123_LABEL_MAX {
        errs.push(format!(
            "must be no more than {DNS1123_LABEL_MAX} characters"
        ));
    }
    if !is_label_shape(s) {
        // A valid subdomain fails only because of its dots; say so, as upstream does.
        if s.contains('.') && s.split('.').all(is_label_shape) {
            errs.push("must not contain dots".to_string());
        } else {
            errs.push(DNS1123_LABEL_MSG.to_string());
        }
    }
    errs
}

/// Problems with `s` as an RFC 1123 subdomain (most object names).
pub fn dns1123_subdomain(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > DNS1123_SUBDOMAIN_MAX {
        errs.push(format!(
            "must be no more than {DNS1123_SUBDOMAIN_MAX} characters"
        ));
    }
    if !s.split('.').all(is_label_shape) {
        errs.push(DNS1123_SUBDOMAIN_MSG.to_string());
    }
    errs
}

/// Problems with `s` as an RFC 1035 label (Service names).
pub fn dns1035_label(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > DNS1123_LABEL_MAX {
        errs.push(format!(
            "must be no more than {DNS1123_LABEL_MAX} characters"
        ));
    }
    let b = s.as_bytes();
    let ok = !b.is_empty()
        && b[0].is_ascii_lowercase()
        && lower_alnum(b[b.len() - 1])
        && b.iter().all(|&c| lower_alnum(c) || c == b'-');
    if !ok {
        errs.push(DNS1035_LABEL_MSG.to_string());
    }
    errs
}

/// Problems with `s` as a path segment name (`.`/`..` and names with `/` or `%` cannot be used in
/// a URL path); upstream applies this to RBAC objects and a few others.
pub fn path_segment_name(s: &str) -> Vec<String> {
    if s == "." || s == ".." {
        return vec![format!("may not be '{s}'")];
    }
    let mut errs = Vec::new();
    for bad in ["/", "%"] {
        if s.contains(bad) {
            errs.push(format!("may not contain '{bad}'"));
        }
    }
    errs
}

fn alnum(c: u8) -> bool {
    c.is_ascii_alphanumeric()
}

fn is_qualified_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && alnum(b[0])
        && alnum(b[b.len() - 1])
        && b.iter()
            .all(|&c| alnum(c) || c == b'-' || c == b'_' || c == b'.')
}

/// Problems with `s` as a qualified name (`[prefix/]name`): label keys, annotation keys,
/// finalizer names.
pub fn qualified_name(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let (prefix, name) = match s.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, s),
    };
    if let Some(p) = prefix {
        if p.is_empty() {
            errs.push("prefix part must be non-empty".to_string());
        } else {
            for e in dns1123_subdomain(p) {
                errs.push(format!("prefix part {e}"));
            }
        }
        if name.contains('/') {
            errs.push(
                "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')".to_string(),
            );
            return errs;
        }
    }
    if name.is_empty() {
        errs.push("name part must be non-empty".to_string());
    } else {
        if name.len() > 63 {
            errs.push("name part must be no more than 63 characters".to_string());
        }
        if !is_qualified_name_part(name) {
            errs.push(QUALIFIED_NAME_MSG.to_string());
        }
    }
    errs
}

/// Problems with `s` as a label value.
pub fn label_value(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > LABEL_VALUE_MAX {
        errs.push(format!("must be no more than {LABEL_VALUE_MAX} characters"));
    }
    if !s.is_empty() && !is_qualified_name_part(s) {
        errs.push(LABEL_VALUE_MSG.to_string());
    }
    errs
}

/// Validates a label map, reporting each bad key and value under `path`.
pub fn validate_labels<'a>(
    labels: impl IntoIterator<Item = (&'a String, &'a String)>,
    path: &Path,
) -> Vec<FieldError> {
    let mut out = Vec::new();
    for (k, v) in labels {
        for e in qualified_name(k) {
            out.push(FieldError::invalid(path, k.as_str(), e));
        }
        for e in label_value(v) {
            out.push(FieldError::invalid(path, v.as_str(), e));
        }
    }
    out
}

/// Validates annotation keys and the total size limit.
pub fn validate_annotations<'a>(
    annotations: impl IntoIterator<Item = (&'a String, &'a String)>,
    path: &Path,
) -> Vec<FieldError> {
    let mut out = Vec::new();
    let mut total = 0usize;
    for (k, v) in annotations {
        for e in qualified_name(&k.to_lowercase()) {
            out.push(FieldError::invalid(path, k.as_str(), e));
        }
        total += k.len() + v.len();
    }
    if total > TOTAL_ANNOTATION_SIZE_LIMIT {
        out.push(FieldError::too_long(path, TOTAL_ANNOTATION_SIZE_LIMIT));
    }
    out
}

/// Turns a list of validator messages about one value into field errors.
pub fn errors_for(path: &Path, value: &str, messages: Vec<String>) -> Vec<FieldError> {
    messages
        .into_iter()
        .map(|m| FieldError::invalid(path, value, m))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(dns1123_subdomain("web.example-1").is_empty());
        assert!(!dns1123_subdomain("Web").is_empty());
        assert!(!dns1123_subdomain("-a").is_empty());
        assert!(!dns1123_subdomain("a..b").is_empty());
        assert!(!dns1123_subdomain(&"a".repeat(254)).is_empty());
        assert!(dns1123_label("kube-system").is_empty());
        assert_eq!(dns1123_label("a.b"), ["must not contain dots"]);
        assert_eq!(
            FieldError::not_found("data", "k").to_string(),
            "data: Not found: \"k\""
        );
        assert!(dns1035_label("svc-1").is_empty());
        assert!(!dns1035_label("1svc").is_empty());
        assert!(path_segment_name("..").len() == 1);
        assert!(path_segment_name("a/b%").len() == 2);
    }

    #[test]
    fn labels() {
        assert!(qualified_name("app.kubernetes.io/name").is_empty());
        assert!(qualified_name("App_1").is_empty());
        assert!(!qualified_name("/x").is_empty());
        assert!(!qualified_name("a/b/c").is_empty());
        assert!(!qualified_name("UPPER.com/x").is_empty());
        assert!(label_value("").is_empty());
        assert!(label_value("v1.2_3").is_empty());
        assert!(!label_value("-x").is_empty());
        assert!(!label_value(&"x".repeat(64)).is_empty());
    }

    #[test]
    fn field_error_rendering() {
        let e = FieldError::invalid("metadata.name", "A", "bad");
        assert_eq!(e.to_string(), "metadata.name: Invalid value: \"A\": bad");
        let e = FieldError::not_supported("spec.restartPolicy", "Sometimes", &["Always", "Never"]);
        assert_eq!(
            e.to_string(),
            "spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"Never\""
        );
        let e = FieldError::invalid("spec.replicas", -1, "must be greater than or equal to 0");
        assert_eq!(
            e.message(),
            "Invalid value: -1: must be greater than or equal to 0"
        );
        let p = Path::new("spec")
            .child("containers")
            .index(2)
            .child("image");
        assert_eq!(p.as_str(), "spec.containers[2].image");
    }
}
