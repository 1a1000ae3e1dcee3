//! IP and CIDR parsing with upstream's leniency (`netutils.ParseIPSloppy` accepts IPv4 octets
//! with leading zeros, which Rust's parser rejects) and upstream's validator messages.

use std::net::{IpAddr, Ipv4Addr};

use api::validation::{FieldError, Path};

const IP_MSG: &str = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)";
const CIDR_MSG: &str = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)";

/// Parses an IPv4 (leading zeros allowed, read as decimal) or IPv6 address.
pub fn parse_ip(s: &str) -> Option<IpAddr> {
    if s.contains(':') {
        return s.parse::<std::net::Ipv6Addr>().ok().map(IpAddr::V6);
    }
    let parts: Vec<&str> = s.split('.').collect();
    if parts.len() != 4 {
        return None;
    }
    let mut octets = [0u8; 4];
    for (o, p) in octets.iter_mut().zip(&parts) {
        if p.is_empty() || p.len() > 3 || !p.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        *o = p.parse().ok()?;
    }
    Some(IpAddr::V4(Ipv4Addr::from(octets)))
}

/// Parses `ip/prefix`.
pub fn parse_cidr(s: &str) -> Option<(IpAddr, u8)> {
    let (ip, prefix) = s.split_once('/')?;
    let ip = parse_ip(ip)?;
    if prefix.is_empty() || prefix.len() > 3 || !prefix.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let prefix: u8 = prefix.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    (prefix <= max).then_some((ip, prefix))
}

/// `IPv4` or `IPv6`, as `ipFamilies` names them.
pub fn family(ip: &IpAddr) -> &'static str {
    if ip.is_ipv4() { "IPv4" } else { "IPv6" }
}

/// Upstream's `IsValidIP`.
pub fn validate_ip(path: &Path, value: &str) -> Vec<FieldError> {
    match parse_ip(value) {
        Some(_) => Vec::new(),
        None => vec![FieldError::invalid(path, value, IP_MSG)],
    }
}

/// Upstream's `IsValidCIDR`.
pub fn validate_cidr(path: &Path, value: &str) -> Vec<FieldError> {
    match parse_cidr(value) {
        Some(_) => Vec::new(),
        None => vec![FieldError::invalid(path, value, CIDR_MSG)],
    }
}

/// Upstream's `ValidateNonSpecialIP`: endpoints and external IPs may not be unspecified,
/// loopback or link-local.
pub fn validate_non_special_ip(path: &Path, value: &str) -> Vec<FieldError> {
    let Some(ip) = parse_ip(value) else {
        return vec![FieldError::invalid(
            path,
            value,
            "must be a valid IP address",
        )];
    };
    let mut errs = Vec::new();
    if ip.is_unspecified() {
        errs.push(FieldError::invalid(
            path,
            value,
            format!("may not be unspecified ({value})"),
        ));
    }
    if ip.is_loopback() {
        errs.push(FieldError::invalid(
            path,
            value,
            "may not be in the loopback range (127.0.0.0/8, ::1/128)",
        ));
    }
    let link_local_unicast = match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
    };
    if link_local_unicast {
        errs.push(FieldError::invalid(
            path,
            value,
            "may not be in the link-local range (169.254.0.0/16, fe80::/10)",
        ));
    }
    let link_local_multicast = match ip {
        IpAddr::V4(v4) => v4.octets()[..3] == [224, 0, 0],
        IpAddr::V6(v6) => (v6.segments()[0] & 0xff0f) == 0xff02,
    };
    if link_local_multicast {
        errs.push(FieldError::invalid(
            path,
            value,
            "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)",
        ));
    }
    errs
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests a failed unwrap is a failed assertion
mod tests {
    use super::*;

    #[test]
    fn sloppy_ipv4() {
        assert_eq!(
            parse_ip("010.001.0.1"),
            Some(IpAddr::V4(Ipv4Addr::new(10, 1, 0, 1)))
        );
        assert_eq!(parse_ip("10.0.0.256"), None);
        assert_eq!(parse_ip("10.0.0"), None);
        assert!(parse_ip("2001:db8::1").is_some());
        assert_eq!(parse_cidr("10.0.0.0/33"), None);
        assert!(parse_cidr("10.0.0.0/8").is_some());
    }

    #[test]
    fn messages() {
        let p = Path::new("spec.externalIPs[0]");
        assert_eq!(
            validate_ip(&p, "x")[0].to_string(),
            "spec.externalIPs[0]: Invalid value: \"x\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
        );
        assert_eq!(validate_non_special_ip(&p, "127.0.0.1").len(), 1);
        assert_eq!(validate_non_special_ip(&p, "0.0.0.0").len(), 1);
        assert_eq!(validate_non_special_ip(&p, "169.254.1.1").len(), 1);
        assert!(validate_non_special_ip(&p, "10.1.2.3").is_empty());
    }
}
