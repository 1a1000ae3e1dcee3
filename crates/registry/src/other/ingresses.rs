//! networking.k8s.io/v1 Ingresses: a default backend or rules; hosts are DNS names (wildcards
//! allowed); every path has a valid `pathType` and a service or resource backend with exactly
//! one of port name and number; status carries load-balancer addresses. The generation tracks
//! spec changes (upstream's ingress strategy and `ValidateIngress*`).

use std::sync::Arc;

use api::resources::ResourceInfo;
use api::validation::{self, FieldError, Path};
use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, Ingress, IngressBackend, IngressLoadBalancerStatus, IngressStatus,
};

use crate::DynStrategy;
use crate::core::common::{self, net};
use crate::strategy::{Adapter, Strategy};

const CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";
const WILDCARD_MSG: &str = "a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which must consist of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric character (e.g. '*.example.com', regex used for validation is '\\*\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

pub fn strategy(info: &'static ResourceInfo) -> Arc<dyn DynStrategy> {
    Arc::new(Adapter::new(info, Ingresses))
}

struct Ingresses;

/// Upstream's `IsWildcardDNS1123Subdomain` (for values containing `*`).
fn wildcard_subdomain(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > validation::DNS1123_SUBDOMAIN_MAX {
        errs.push(format!(
            "must be no more than {} characters",
            validation::DNS1123_SUBDOMAIN_MAX
        ));
    }
    let ok = value
        .strip_prefix("*.")
        .is_some_and(|rest| validation::dns1123_subdomain(rest).is_empty());
    if !ok {
        errs.push(WILDCARD_MSG.to_string());
    }
    errs
}

fn host_errors(path: &Path, host: &str) -> Vec<FieldError> {
    if host.contains('*') {
        validation::errors_for(path, host, wildcard_subdomain(host))
    } else {
        common::dns_subdomain(path, host)
    }
}

/// Upstream's `validateIngressTypedLocalObjectReference`, shared with IngressClass parameters.
pub(crate) fn validate_typed_reference(
    api_group: Option<&str>,
    kind: &str,
    name: &str,
    path: &Path,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Some(g) = api_group {
        errs.extend(common::dns_subdomain(&path.child("apiGroup"), g));
    }
    if kind.is_empty() {
        errs.push(FieldError::required(path.child("kind"), "kind is required"));
    } else {
        errs.extend(validation::errors_for(
            &path.child("kind"),
            kind,
            validation::path_segment_name(kind),
        ));
    }
    if name.is_empty() {
        errs.push(FieldError::required(path.child("name"), "name is required"));
    } else {
        errs.extend(validation::errors_for(
            &path.child("name"),
            name,
            validation::path_segment_name(name),
        ));
    }
    errs
}

fn validate_backend(b: &IngressBackend, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    match (&b.resource, &b.service) {
        (Some(_), Some(_)) => errs.push(FieldError::invalid(
            path,
            "",
            "cannot set both resource and service backends",
        )),
        (Some(r), None) => errs.extend(validate_typed_reference(
            r.api_group.as_deref(),
            &r.kind,
            &r.name,
            &path.child("resource"),
        )),
        (None, Some(svc)) => {
            let sp = path.child("service");
            if svc.name.is_empty() {
                errs.push(FieldError::required(sp.child("name"), ""));
            } else {
                errs.extend(validation::errors_for(
                    &sp.child("name"),
                    &svc.name,
                    validation::dns1035_label(&svc.name),
                ));
            }
            let port = svc.port.clone().unwrap_or_default();
            let name = port.name.as_deref().unwrap_or("");
            let number = port.number.unwrap_or(0);
            match (name.is_empty(), number == 0) {
                (false, false) => errs.push(FieldError::invalid(
                    path,
                    "",
                    "cannot set both port name & port number",
                )),
                (false, true) => errs.extend(validation::errors_for(
                    &sp.child("port").child("name"),
                    name,
                    common::port_name(name),
                )),
                (true, false) => {
                    if let Some(m) = common::port_num(number) {
                        errs.push(FieldError::invalid(
                            sp.child("port").child("number"),
                            number,
                            m,
                        ));
                    }
                }
                (true, true) => errs.push(FieldError::required(
                    path,
                    "port name or number is required",
                )),
            }
        }
        (None, None) => errs.push(FieldError::invalid(
            path,
            "",
            "resource or service backend is required",
        )),
    }
    errs
}

fn validate_path(p: &HTTPIngressPath, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let value = p.path.as_deref().unwrap_or("");
    let pp = path.child("path");
    match p.path_type.as_str() {
        "" => {
            return vec![FieldError::required(
                path.child("pathType"),
                "pathType must be specified",
            )];
        }
        "Exact" | "Prefix" => {
            if !value.starts_with('/') {
                errs.push(FieldError::invalid(&pp, value, "must be an absolute path"));
            }
            if !value.is_empty() {
                for seq in ["//", "/./", "/../", "%2f", "%2F"] {
                    if value.contains(seq) {
                        errs.push(FieldError::invalid(
                            &pp,
                            value,
                            format!("must not contain '{seq}'"),
                        ));
                    }
                }
                for suffix in ["/..", "/."] {
                    if value.ends_with(suffix) {
                        errs.push(FieldError::invalid(
                            &pp,
                            value,
                            format!("cannot end with '{suffix}'"),
                        ));
                    }
                }
            }
        }
        "ImplementationSpecific" => {
            if !value.is_empty() && !value.starts_with('/') {
                errs.push(FieldError::invalid(&pp, value, "must be an absolute path"));
            }
        }
        other => errs.push(FieldError::not_supported(
            path.child("pathType"),
            other,
            &["Exact", "ImplementationSpecific", "Prefix"],
        )),
    }
    errs.extend(validate_backend(&p.backend, &path.child("backend")));
    errs
}

fn validate_ingress(ing: &Ingress) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let p = Path::new("spec");
    let spec = ing.spec.clone().unwrap_or_default();
    let rules = spec.rules.as_deref().unwrap_or(&[]);
    if rules.is_empty() && spec.default_backend.is_none() {
        let rendered = if spec.rules.is_some() {
            "[]networking.IngressRule{}"
        } else {
            "[]networking.IngressRule(nil)"
        };
        errs.push(common::invalid_raw(
            &p,
            rendered,
            "either `defaultBackend` or `rules` must be specified",
        ));
    }
    if let Some(b) = &spec.default_backend {
        errs.extend(validate_backend(b, &p.child("defaultBackend")));
    }
    for (i, rule) in rules.iter().enumerate() {
        let rp = p.child("rules").index(i);
        let host = rule.host.as_deref().unwrap_or("");
        if !host.is_empty() {
            if net::parse_ip(host).is_some() {
                errs.push(FieldError::invalid(
                    rp.child("host"),
                    host,
                    "must be a DNS name, not an IP address",
                ));
            }
            errs.extend(host_errors(&rp.child("host"), host));
        }
        if let Some(http) = &rule.http {
            let hp = rp.child("http");
            if http.paths.is_empty() {
                errs.push(FieldError::required(hp.child("paths"), ""));
            }
            for (j, path) in http.paths.iter().enumerate() {
                errs.extend(validate_path(path, &hp.child("paths").index(j)));
            }
        }
    }
    for (i, tls) in spec.tls.iter().flatten().enumerate() {
        for (j, host) in tls.hosts.iter().flatten().enumerate() {
            errs.extend(host_errors(
                &p.child("tls").index(i).child("hosts").index(j),
                host,
            ));
        }
    }
    if let Some(class) = &spec.ingress_class_name {
        errs.extend(common::dns_subdomain(&p.child("ingressClassName"), class));
    }
    errs
}

fn validate_status(ing: &Ingress) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let lb = ing
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_deref())
        .unwrap_or(&[]);
    for (i, entry) in lb.iter().enumerate() {
        let p = Path::new("status")
            .child("loadBalancer")
            .child("ingress")
            .index(i);
        let ip = entry.ip.as_deref().unwrap_or("");
        if !ip.is_empty() {
            errs.extend(net::validate_ip(&p.child("ip"), ip));
        }
        let host = entry.hostname.as_deref().unwrap_or("");
        if !host.is_empty() {
            errs.extend(common::dns_subdomain(&p.child("hostname"), host));
            if net::parse_ip(host).is_some() {
                errs.push(FieldError::invalid(
                    p.child("hostname"),
                    host,
                    "must be a DNS name, not an IP address",
                ));
            }
        }
    }
    errs
}

impl Strategy for Ingresses {
    type Object = Ingress;

    fn tracks_generation(&self) -> bool {
        true
    }

    fn prepare_for_create(&self, ing: &mut Ingress) {
        ing.status = Some(IngressStatus {
            load_balancer: Some(IngressLoadBalancerStatus::default()),
        });
    }

    fn validate(&self, ing: &Ingress) -> Vec<FieldError> {
        let mut errs = validate_ingress(ing);
        let annotation = ing
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(CLASS_ANNOTATION));
        let class = ing
            .spec
            .as_ref()
            .and_then(|s| s.ingress_class_name.as_ref());
        if let (Some(v), Some(_)) = (annotation, class) {
            // Upstream's path: `annotations.` + the key as a child, without `metadata`.
            errs.push(FieldError::invalid(
                Path::new("annotations").child(CLASS_ANNOTATION),
                v.as_str(),
                "can not be set when the class field is also set",
            ));
        }
        errs
    }

    fn validate_update(&self, new: &Ingress, _old: &Ingress) -> Vec<FieldError> {
        validate_ingress(new)
    }

    fn validate_status_update(&self, new: &Ingress, _old: &Ingress) -> Vec<FieldError> {
        validate_status(new)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests a failed unwrap is a failed assertion
mod tests {
    use super::*;
    use crate::core::testing::*;
    use serde_json::{Value, json};

    fn s() -> Arc<dyn DynStrategy> {
        strategy(api::resources::lookup("networking.k8s.io", "v1", "ingresses").unwrap())
    }

    fn ing(spec: Value) -> Value {
        json!({"metadata": {"name": "i", "namespace": "a"}, "spec": spec})
    }

    fn svc(port: Value) -> Value {
        json!({"service": {"name": "web", "port": port}})
    }

    #[test]
    fn valid_ingress() {
        let out = create(
            &*s(),
            ing(json!({"ingressClassName": "nginx", "rules": [{"host": "*.example.com", "http": {"paths": [
                {"path": "/", "pathType": "Prefix", "backend": svc(json!({"number": 80}))}]}}],
                "tls": [{"hosts": ["www.example.com"], "secretName": "tls"}]})),
        )
        .unwrap();
        assert_eq!(out["status"], json!({"loadBalancer": {}}));
        assert_eq!(out["metadata"]["generation"], 1);
    }

    #[test]
    fn invalid_ingresses() {
        assert_eq!(
            create_err(&*s(), ing(json!({}))),
            [
                "spec: Invalid value: []networking.IngressRule(nil): either `defaultBackend` or `rules` must be specified"
            ]
        );
        assert_eq!(
            create_err(
                &*s(),
                ing(json!({"rules": [{"host": "10.0.0.1", "http": {"paths": [
                    {"path": "/a", "backend": svc(json!({"number": 80}))},
                    {"path": "a//b", "pathType": "Exact", "backend": svc(json!({"name": "http", "number": 80}))},
                    {"path": "/x", "pathType": "Prefix", "backend": svc(json!({}))},
                    {"path": "/y", "pathType": "Prefix", "backend": {}},
                ]}}]}))
            ),
            [
                "spec.rules[0].host: Invalid value: \"10.0.0.1\": must be a DNS name, not an IP address",
                "spec.rules[0].http.paths[0].pathType: Required value: pathType must be specified",
                "spec.rules[0].http.paths[1].path: Invalid value: \"a//b\": must be an absolute path",
                "spec.rules[0].http.paths[1].path: Invalid value: \"a//b\": must not contain '//'",
                "spec.rules[0].http.paths[1].backend: Invalid value: \"\": cannot set both port name & port number",
                "spec.rules[0].http.paths[2].backend: Required value: port name or number is required",
                "spec.rules[0].http.paths[3].backend: Invalid value: \"\": resource or service backend is required",
            ]
        );
        let mut with_annotation =
            ing(json!({"ingressClassName": "nginx", "defaultBackend": svc(json!({"number": 80}))}));
        with_annotation["metadata"]["annotations"] =
            json!({"kubernetes.io/ingress.class": "nginx"});
        assert_eq!(
            create_err(&*s(), with_annotation),
            [
                "annotations.kubernetes.io/ingress.class: Invalid value: \"nginx\": can not be set when the class field is also set"
            ]
        );
    }
}
