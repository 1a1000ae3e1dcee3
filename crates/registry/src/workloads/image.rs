//! Just enough of the container image reference grammar (`[domain/]path[:tag][@digest]`) to
//! default `imagePullPolicy` the way upstream does: `Always` for `:latest` or no tag, otherwise
//! `IfNotPresent` (a digest without a tag, and any reference that does not parse, included).

fn is_lower_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// One path component: lowercase alphanumerics joined by `.`, `_`, `__` or runs of `-`.
fn valid_path_component(s: &str) -> bool {
    let b = s.as_bytes();
    if b.is_empty() || !is_lower_alnum(b[0]) || !is_lower_alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if is_lower_alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !is_lower_alnum(b[i]) {
            i += 1;
        }
        let sep = &s[start..i];
        if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|c| c == b'-')) {
            return false;
        }
    }
    true
}

fn valid_domain(s: &str) -> bool {
    let (host, port) = match s.strip_prefix('[') {
        Some(rest) => {
            let Some((inner, after)) = rest.split_once(']') else {
                return false;
            };
            if inner.parse::<std::net::Ipv6Addr>().is_err() {
                return false;
            }
            match after {
                "" => return true,
                a => match a.strip_prefix(':') {
                    Some(p) => ("ipv6", Some(p)),
                    None => return false,
                },
            }
        }
        None => match s.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        },
    };
    if port.is_some_and(|p| p.is_empty() || !p.bytes().all(|c| c.is_ascii_digit())) {
        return false;
    }
    !host.is_empty()
        && host.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        })
}

fn valid_tag(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

fn valid_digest(s: &str) -> bool {
    let Some((algo, hex)) = s.split_once(':') else {
        return false;
    };
    let algo_ok = algo.split(['-', '_', '+', '.']).all(|part| {
        let b = part.as_bytes();
        !b.is_empty() && b[0].is_ascii_alphabetic() && b.iter().all(u8::is_ascii_alphanumeric)
    });
    algo_ok && hex.len() >= 32 && hex.bytes().all(|c| c.is_ascii_hexdigit())
}

/// The tag a reference names: `Some("latest")` when it has neither tag nor digest, `Some("")`
/// for a digest-only reference, `None` when it does not parse.
pub fn tag_of(image: &str) -> Option<&str> {
    let (name_tag, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (image, None),
    };
    if digest.is_some_and(|d| !valid_digest(d)) {
        return None;
    }
    let last_slash = name_tag.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match name_tag[last_slash..].rfind(':') {
        Some(i) => (
            &name_tag[..last_slash + i],
            Some(&name_tag[last_slash + i + 1..]),
        ),
        None => (name_tag, None),
    };
    if tag.is_some_and(|t| !valid_tag(t)) || name.is_empty() || name.len() > 255 {
        return None;
    }
    let path = match name.split_once('/') {
        // Upstream treats the first component as a registry host when it looks like one.
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.bytes().any(|c| c.is_ascii_uppercase()) =>
        {
            if !valid_domain(first) {
                return None;
            }
            rest
        }
        _ => name,
    };
    if !path.split('/').all(valid_path_component) {
        return None;
    }
    Some(match (tag, digest) {
        (Some(t), _) => t,
        (None, Some(_)) => "",
        (None, None) => "latest",
    })
}

/// Upstream's default `imagePullPolicy` for `image`.
pub fn default_pull_policy(image: &str) -> &'static str {
    if tag_of(image) == Some("latest") {
        "Always"
    } else {
        "IfNotPresent"
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn pull_policy_follows_the_tag() {
        let digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        let cases = [
            ("nginx", "Always"),
            ("nginx:latest", "Always"),
            ("nginx:1.27", "IfNotPresent"),
            ("docker.io/library/nginx", "Always"),
            ("registry.local:5000/team/app:v2", "IfNotPresent"),
            ("registry.local:5000/team/app", "Always"),
            ("localhost/app", "Always"),
            ("Nginx", "IfNotPresent"),
            ("", "IfNotPresent"),
            ("nginx:", "IfNotPresent"),
            ("my_app__x/sub-dir.y", "Always"),
        ];
        for (image, want) in cases {
            assert_eq!(default_pull_policy(image), want, "image {image:?}");
        }
        assert_eq!(
            default_pull_policy(&format!("nginx@{digest}")),
            "IfNotPresent"
        );
        assert_eq!(
            default_pull_policy(&format!("nginx:latest@{digest}")),
            "Always"
        );
        assert_eq!(tag_of("nginx@sha256:short"), None);
    }
}
