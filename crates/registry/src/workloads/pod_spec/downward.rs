//! Downward API references (`fieldRef`, `resourceFieldRef`) as env vars and volume files use
//! them, with upstream's field-label conversion and the sets of paths each place accepts.

use api::quantity::Quantity;
use api::validation::{self, FieldError, Path};
use k8s_openapi::api::core::v1::{ObjectFieldSelector, ResourceFieldSelector};

/// Paths an env var may read (sorted, as upstream lists them in errors).
pub const ENV_FIELDS: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
];

/// Paths a downward API volume file may read.
pub const VOLUME_FIELDS: &[&str] = &[
    "metadata.annotations",
    "metadata.labels",
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
];

const RESOURCE_FIELDS: &[&str] = &[
    "limits.cpu",
    "limits.ephemeral-storage",
    "limits.memory",
    "requests.cpu",
    "requests.ephemeral-storage",
    "requests.memory",
];

/// `metadata.labels['app']` → `("metadata.labels", "app")`.
fn split_subscript(path: &str) -> Option<(&str, &str)> {
    let inner = path.strip_suffix("']")?;
    let (head, key) = inner.split_once("['")?;
    (!head.is_empty()).then_some((head, key))
}

/// Upstream's `ConvertDownwardAPIFieldLabel` for v1 pods.
fn convert_label(version: &str, label: &str) -> Result<String, String> {
    if version != "v1" {
        return Err(format!("unsupported pod version: {version}"));
    }
    if let Some((head, _)) = split_subscript(label) {
        return match head {
            "metadata.annotations" | "metadata.labels" => Ok(label.to_string()),
            _ => Err(format!("field label does not support subscript: {label}")),
        };
    }
    match label {
        "metadata.annotations"
        | "metadata.labels"
        | "metadata.name"
        | "metadata.namespace"
        | "metadata.uid"
        | "spec.nodeName"
        | "spec.restartPolicy"
        | "spec.serviceAccountName"
        | "spec.schedulerName"
        | "status.phase"
        | "status.hostIP"
        | "status.hostIPs"
        | "status.podIP"
        | "status.podIPs" => Ok(label.to_string()),
        "spec.host" => Ok("spec.nodeName".to_string()),
        _ => Err(format!("field label not supported: {label}")),
    }
}

/// `validateObjectFieldSelector`.
pub fn validate_field_ref(
    fs: &ObjectFieldSelector,
    allowed: &[&str],
    path: &Path,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let version = fs.api_version.as_deref().unwrap_or("");
    if version.is_empty() {
        errs.push(FieldError::required(path.child("apiVersion"), ""));
        return errs;
    }
    if fs.field_path.is_empty() {
        errs.push(FieldError::required(path.child("fieldPath"), ""));
        return errs;
    }
    let internal = match convert_label(version, &fs.field_path) {
        Ok(p) => p,
        Err(e) => {
            errs.push(FieldError::invalid(
                path.child("fieldPath"),
                fs.field_path.as_str(),
                format!("error converting fieldPath: {e}"),
            ));
            return errs;
        }
    };
    if let Some((head, key)) = split_subscript(&internal) {
        match head {
            "metadata.annotations" => errs.extend(validation::errors_for(
                path,
                &key.to_lowercase(),
                validation::qualified_name(&key.to_lowercase()),
            )),
            "metadata.labels" => errs.extend(validation::errors_for(
                path,
                key,
                validation::qualified_name(key),
            )),
            _ => errs.push(FieldError::invalid(
                path,
                head,
                "does not support subscript",
            )),
        }
    } else if !allowed.contains(&internal.as_str()) {
        errs.push(FieldError::not_supported(
            path.child("fieldPath"),
            internal.as_str(),
            allowed,
        ));
    }
    errs
}

/// `validateContainerResourceFieldSelector`; `volume` files must name their container.
pub fn validate_resource_ref(
    rs: &ResourceFieldSelector,
    volume: bool,
    path: &Path,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let container = rs.container_name.as_deref().unwrap_or("");
    if volume && container.is_empty() {
        errs.push(FieldError::required(path.child("containerName"), ""));
    } else if rs.resource.is_empty() {
        errs.push(FieldError::required(path.child("resource"), ""));
    } else if !RESOURCE_FIELDS.contains(&rs.resource.as_str())
        && !rs.resource.starts_with("requests.hugepages-")
        && !rs.resource.starts_with("limits.hugepages-")
    {
        errs.push(FieldError::not_supported(
            path.child("resource"),
            rs.resource.as_str(),
            RESOURCE_FIELDS,
        ));
    }
    if let Some(d) = &rs.divisor
        && let Ok(q) = Quantity::parse(&d.0)
        && !q.is_zero()
    {
        let shown = q.to_string();
        let memory_like = [
            "1", "1k", "1M", "1G", "1T", "1P", "1E", "1Ki", "1Mi", "1Gi", "1Ti", "1Pi", "1Ei",
        ];
        let list = "1, 1k, 1M, 1G, 1T, 1P, 1E, 1Ki, 1Mi, 1Gi, 1Ti, 1Pi, 1Ei";
        let r = rs.resource.as_str();
        let msg = match r {
            "limits.cpu" | "requests.cpu" if !["1m", "1"].contains(&shown.as_str()) => Some(
                "only divisor's values 1m and 1 are supported with the cpu resource".to_string(),
            ),
            "limits.memory" | "requests.memory" if !memory_like.contains(&shown.as_str()) => Some(
                format!("only divisor's values {list} are supported with the memory resource"),
            ),
            "limits.ephemeral-storage" | "requests.ephemeral-storage"
                if !memory_like.contains(&shown.as_str()) =>
            {
                Some(format!(
                    "only divisor's values {list} are supported with the local ephemeral storage resource"
                ))
            }
            _ if (r.starts_with("requests.hugepages-") || r.starts_with("limits.hugepages-"))
                && !memory_like.contains(&shown.as_str()) =>
            {
                Some(format!(
                    "only divisor's values {list} are supported with the hugepages resource"
                ))
            }
            _ => None,
        };
        if let Some(msg) = msg {
            errs.push(FieldError::invalid(path.child("divisor"), r, msg));
        }
    }
    errs
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn fref(path: &str) -> ObjectFieldSelector {
        ObjectFieldSelector {
            api_version: Some("v1".into()),
            field_path: path.into(),
        }
    }

    #[test]
    fn field_refs() {
        let p = Path::new("f");
        assert!(validate_field_ref(&fref("status.podIP"), ENV_FIELDS, &p).is_empty());
        assert!(validate_field_ref(&fref("metadata.labels['app']"), ENV_FIELDS, &p).is_empty());
        let e = validate_field_ref(&fref("metadata.labels"), ENV_FIELDS, &p);
        assert!(
            e[0].to_string()
                .starts_with("f.fieldPath: Unsupported value: \"metadata.labels\": supported values: \"metadata.name\"")
        );
        let e = validate_field_ref(&fref("spec.bogus"), ENV_FIELDS, &p);
        assert_eq!(
            e[0].to_string(),
            "f.fieldPath: Invalid value: \"spec.bogus\": error converting fieldPath: field label not supported: spec.bogus"
        );
        assert!(validate_field_ref(&fref("metadata.labels"), VOLUME_FIELDS, &p).is_empty());
    }

    #[test]
    fn resource_refs() {
        let p = Path::new("r");
        let rs = |res: &str, div: Option<&str>| ResourceFieldSelector {
            container_name: None,
            resource: res.into(),
            divisor: div.map(|d| k8s_openapi::apimachinery::pkg::api::resource::Quantity(d.into())),
        };
        assert!(validate_resource_ref(&rs("limits.cpu", Some("1m")), false, &p).is_empty());
        assert_eq!(
            validate_resource_ref(&rs("limits.cpu", Some("2")), false, &p)[0].to_string(),
            "r.divisor: Invalid value: \"limits.cpu\": only divisor's values 1m and 1 are supported with the cpu resource"
        );
        assert_eq!(
            validate_resource_ref(&rs("limits.cpu", None), true, &p)[0].to_string(),
            "r.containerName: Required value"
        );
    }
}
