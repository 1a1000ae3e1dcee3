//! Addresses and name resolution in a pod spec: IP checks and `dnsConfig`.

use api::validation::{FieldError, Path};
use k8s_openapi::api::core::v1::PodDNSConfig;

const IP_MSG: &str = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)";

pub fn ip(value: &str, path: &Path, errs: &mut Vec<FieldError>) {
    if value.parse::<std::net::IpAddr>().is_err() {
        errs.push(FieldError::invalid(path, value, IP_MSG));
    }
}

/// `IsValidIP` for status fields.
pub fn validate_ip(value: &str, path: &Path) -> Option<FieldError> {
    let mut errs = Vec::new();
    ip(value, path, &mut errs);
    errs.pop()
}

/// A DNS-1123 subdomain whose labels may start with `_` and contain `_`.
fn subdomain_with_underscore_ok(s: &str) -> bool {
    s.len() <= 253
        && s.split('.').all(|label| {
            let l = label.strip_prefix('_').unwrap_or(label).as_bytes();
            let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
            !l.is_empty()
                && alnum(l[0])
                && alnum(l[l.len() - 1])
                && l.iter().all(|c| alnum(*c) || *c == b'-' || *c == b'_')
        })
}

pub fn dns_config(
    cfg: Option<&PodDNSConfig>,
    policy: &str,
    path: &Path,
    errs: &mut Vec<FieldError>,
) {
    if policy == "None" {
        let Some(c) = cfg else {
            errs.push(FieldError::required(
                path,
                "must provide `dnsConfig` when `dnsPolicy` is None",
            ));
            return;
        };
        if c.nameservers.as_ref().is_none_or(Vec::is_empty) {
            errs.push(FieldError::required(
                path.child("nameservers"),
                "must provide at least one DNS nameserver when `dnsPolicy` is None",
            ));
            return;
        }
    }
    let Some(c) = cfg else {
        return;
    };
    let servers = c.nameservers.as_deref().unwrap_or(&[]);
    if servers.len() > 3 {
        errs.push(FieldError::invalid(
            path.child("nameservers"),
            serde_json::to_value(servers).unwrap_or_default(),
            "must not have more than 3 nameservers",
        ));
    }
    for (i, s) in servers.iter().enumerate() {
        ip(s, &path.child("nameservers").index(i), errs);
    }
    let searches = c.searches.as_deref().unwrap_or(&[]);
    if searches.len() > 32 {
        errs.push(FieldError::invalid(
            path.child("searches"),
            serde_json::to_value(searches).unwrap_or_default(),
            "must not have more than 32 search paths",
        ));
    }
    if searches.join(" ").len() > 2048 {
        errs.push(FieldError::invalid(
            path.child("searches"),
            serde_json::to_value(searches).unwrap_or_default(),
            "must not have more than 2048 characters (including spaces) in the search list",
        ));
    }
    // RelaxedDNSSearchValidation is on in 1.33: "." and underscores are accepted.
    for (i, s) in searches.iter().enumerate() {
        if s == "." {
            continue;
        }
        let trimmed = s.strip_suffix('.').unwrap_or(s);
        if !subdomain_with_underscore_ok(trimmed) {
            errs.push(FieldError::invalid(
                path.child("searches").index(i),
                trimmed,
                "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '_', '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '_?[a-z0-9]([-_a-z0-9]*[a-z0-9])?(\\._?[a-z0-9]([-_a-z0-9]*[a-z0-9])?)*')",
            ));
        }
    }
    for (i, o) in c.options.iter().flatten().enumerate() {
        if o.name.as_deref().unwrap_or("").is_empty() {
            errs.push(FieldError::required(
                path.child("options").index(i),
                "must not be empty",
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_rules() {
        let mut errs = Vec::new();
        dns_config(
            None,
            "None",
            &Path::new("spec").child("dnsConfig"),
            &mut errs,
        );
        assert_eq!(
            errs[0].to_string(),
            "spec.dnsConfig: Required value: must provide `dnsConfig` when `dnsPolicy` is None"
        );
        assert!(subdomain_with_underscore_ok("_sip._tcp.example.com"));
        assert!(!subdomain_with_underscore_ok("Bad.com"));
        assert!(validate_ip("10.0.0.1", &Path::new("ip")).is_none());
        assert!(validate_ip("10.0.0", &Path::new("ip")).is_some());
    }
}
