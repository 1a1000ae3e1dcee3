//! Probes and lifecycle hooks (`validateProbe`, `validateHandler`) and the port checks they
//! share with container ports.

use api::validation::{self, FieldError, Path};
use k8s_openapi::api::core::v1::{Container, HTTPGetAction, LifecycleHandler, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::workloads::common::NEGATIVE;

pub const PORT_RANGE: &str = "must be between 1 and 65535, inclusive";

/// `IsValidPortName`.
pub fn port_name_errors(name: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if name.len() > 15 {
        errs.push("must be no more than 15 characters".to_string());
    }
    if name.is_empty()
        || !name
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
    {
        errs.push(
            "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".to_string(),
        );
    }
    if !name.bytes().any(|c| c.is_ascii_lowercase()) {
        errs.push("must contain at least one letter (a-z)".to_string());
    }
    if name.contains("--") {
        errs.push("must not contain consecutive hyphens".to_string());
    }
    if name.starts_with('-') || name.ends_with('-') {
        errs.push("must not begin or end with a hyphen".to_string());
    }
    errs
}

/// `ValidatePortNumOrName`.
pub fn port_num_or_name(port: &IntOrString, path: &Path, errs: &mut Vec<FieldError>) {
    match port {
        IntOrString::Int(n) => {
            if !(1..=65535).contains(n) {
                errs.push(FieldError::invalid(path, *n, PORT_RANGE));
            }
        }
        IntOrString::String(s) => {
            errs.extend(validation::errors_for(path, s, port_name_errors(s)));
        }
    }
}

fn http_get(h: &HTTPGetAction, path: &Path, errs: &mut Vec<FieldError>) {
    if h.path.as_deref().unwrap_or("").is_empty() {
        errs.push(FieldError::required(path.child("path"), ""));
    }
    port_num_or_name(&h.port, &path.child("port"), errs);
    let scheme = h.scheme.as_deref().unwrap_or("");
    if scheme != "HTTP" && scheme != "HTTPS" {
        errs.push(FieldError::not_supported(
            path.child("scheme"),
            scheme,
            &["HTTP", "HTTPS"],
        ));
    }
    for header in h.http_headers.iter().flatten() {
        let ok = !header.name.is_empty()
            && header
                .name
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-');
        if !ok {
            errs.push(FieldError::invalid(
                path.child("httpHeaders"),
                header.name.as_str(),
                "a valid HTTP header must consist of alphanumeric characters or '-' (e.g. 'X-Header-Name', regex used for validation is '[-A-Za-z0-9]+')",
            ));
        }
    }
}

/// The handler kinds a probe or lifecycle hook names, checked as upstream's `validateHandler`.
struct Handler<'a> {
    exec: Option<&'a Option<Vec<String>>>,
    http_get: Option<&'a HTTPGetAction>,
    tcp_socket: Option<&'a IntOrString>,
    grpc: Option<i32>,
    sleep: Option<i64>,
}

fn handler(h: Handler<'_>, grace: Option<i64>, path: &Path, errs: &mut Vec<FieldError>) {
    let mut n = 0;
    let mut next = |name: &str, errs: &mut Vec<FieldError>| {
        n += 1;
        if n > 1 {
            errs.push(FieldError::forbidden(
                path.child(name),
                "may not specify more than 1 handler type",
            ));
            false
        } else {
            true
        }
    };
    if let Some(cmd) = h.exec
        && next("exec", errs)
        && cmd.as_ref().is_none_or(Vec::is_empty)
    {
        errs.push(FieldError::required(
            path.child("exec").child("command"),
            "",
        ));
    }
    if let Some(g) = h.http_get
        && next("httpGet", errs)
    {
        http_get(g, &path.child("httpGet"), errs);
    }
    if let Some(p) = h.tcp_socket
        && next("tcpSocket", errs)
    {
        port_num_or_name(p, &path.child("tcpSocket").child("port"), errs);
    }
    if let Some(p) = h.grpc
        && next("grpc", errs)
    {
        port_num_or_name(
            &IntOrString::Int(p),
            &path.child("grpc").child("port"),
            errs,
        );
    }
    if let Some(s) = h.sleep
        && next("sleep", errs)
        && let Some(g) = grace
        && (s < 0 || s > g)
    {
        // The PodLifecycleSleepActionAllowZero gate is on in 1.33.
        errs.push(FieldError::invalid(
            path.child("sleep"),
            s,
            format!("must be non-negative and less than terminationGracePeriodSeconds ({g})"),
        ));
    }
    if n == 0 {
        errs.push(FieldError::required(path, "must specify a handler type"));
    }
}

fn lifecycle_handler(
    h: &LifecycleHandler,
    grace: Option<i64>,
    path: &Path,
    errs: &mut Vec<FieldError>,
) {
    handler(
        Handler {
            exec: h.exec.as_ref().map(|e| &e.command),
            http_get: h.http_get.as_ref(),
            tcp_socket: h.tcp_socket.as_ref().map(|t| &t.port),
            grpc: None,
            sleep: h.sleep.as_ref().map(|s| s.seconds),
        },
        grace,
        path,
        errs,
    );
}

#[derive(Clone, Copy, PartialEq)]
enum ProbeKind {
    Liveness,
    Readiness,
    Startup,
}

fn probe(
    p: Option<&Probe>,
    kind: ProbeKind,
    grace: Option<i64>,
    path: &Path,
    errs: &mut Vec<FieldError>,
) {
    let Some(p) = p else {
        return;
    };
    handler(
        Handler {
            exec: p.exec.as_ref().map(|e| &e.command),
            http_get: p.http_get.as_ref(),
            tcp_socket: p.tcp_socket.as_ref().map(|t| &t.port),
            grpc: p.grpc.as_ref().map(|g| g.port),
            sleep: None,
        },
        grace,
        path,
        errs,
    );
    for (v, name) in [
        (p.initial_delay_seconds, "initialDelaySeconds"),
        (p.timeout_seconds, "timeoutSeconds"),
        (p.period_seconds, "periodSeconds"),
        (p.success_threshold, "successThreshold"),
        (p.failure_threshold, "failureThreshold"),
    ] {
        let v = v.unwrap_or(0);
        if v < 0 {
            errs.push(FieldError::invalid(path.child(name), v, NEGATIVE));
        }
    }
    if let Some(t) = p.termination_grace_period_seconds
        && t <= 0
    {
        errs.push(FieldError::invalid(
            path.child("terminationGracePeriodSeconds"),
            t,
            "must be greater than 0",
        ));
    }
    match kind {
        ProbeKind::Liveness | ProbeKind::Startup => {
            let s = p.success_threshold.unwrap_or(0);
            if s != 1 {
                errs.push(FieldError::invalid(
                    path.child("successThreshold"),
                    s,
                    "must be 1",
                ));
            }
        }
        ProbeKind::Readiness => {
            if let Some(t) = p.termination_grace_period_seconds {
                errs.push(FieldError::invalid(
                    path.child("terminationGracePeriodSeconds"),
                    t,
                    "must not be set for readinessProbes",
                ));
            }
        }
    }
}

/// Lifecycle and probes, for regular and restartable init containers.
pub fn hooks_and_probes(
    c: &Container,
    grace: Option<i64>,
    path: &Path,
    errs: &mut Vec<FieldError>,
) {
    if let Some(l) = &c.lifecycle {
        let lp = path.child("lifecycle");
        if let Some(h) = &l.post_start {
            lifecycle_handler(h, grace, &lp.child("postStart"), errs);
        }
        if let Some(h) = &l.pre_stop {
            lifecycle_handler(h, grace, &lp.child("preStop"), errs);
        }
    }
    probe(
        c.liveness_probe.as_ref(),
        ProbeKind::Liveness,
        grace,
        &path.child("livenessProbe"),
        errs,
    );
    probe(
        c.readiness_probe.as_ref(),
        ProbeKind::Readiness,
        grace,
        &path.child("readinessProbe"),
        errs,
    );
    probe(
        c.startup_probe.as_ref(),
        ProbeKind::Startup,
        grace,
        &path.child("startupProbe"),
        errs,
    );
}
