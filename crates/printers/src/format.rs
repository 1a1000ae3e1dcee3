//! Small formatting rules shared by several printers: label sets, label selectors, container
//! lists, access modes, "a, b, c + N more..." lists and the like.
//!
//! Each mirrors the apimachinery or kubectl helper of the same purpose, because clients see the
//! exact strings (`<none>`, `app=web,tier=db`, `RWO,RWX`).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use crate::view::ContainerView;

/// `labels.FormatLabels`: `k=v` pairs sorted by key, comma separated; `<none>` when empty.
pub(crate) fn labels(map: Option<&BTreeMap<&str, &str>>) -> String {
    let Some(map) = map.filter(|m| !m.is_empty()) else {
        return "<none>".to_string();
    };
    let mut out = String::new();
    for (i, (k, v)) in map.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{k}={v}");
    }
    out
}

/// Why a label selector cannot be shown as a selector string.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum SelectorError {
    #[error("unknown label selector operator {0:?}")]
    UnknownOperator(String),
    #[error("operator {operator} on key {key:?} needs values")]
    MissingValues { operator: String, key: String },
    #[error("operator {operator} on key {key:?} takes no values")]
    UnexpectedValues { operator: String, key: String },
}

/// `LabelSelectorAsSelector(s).String()`: requirements sorted by key; `""` for an empty or
/// absent selector.
pub(crate) fn selector_string(sel: Option<&LabelSelector>) -> Result<String, SelectorError> {
    let Some(sel) = sel else {
        return Ok(String::new());
    };
    let mut reqs: Vec<(&str, String)> = Vec::new();
    for (k, v) in sel.match_labels.iter().flatten() {
        reqs.push((k, format!("{k}={v}")));
    }
    for expr in sel.match_expressions.iter().flatten() {
        let key = expr.key.as_str();
        let mut values: Vec<&str> = expr.values.iter().flatten().map(String::as_str).collect();
        values.sort_unstable();
        let needs_values = |word: &str| {
            if values.is_empty() {
                Err(SelectorError::MissingValues {
                    operator: expr.operator.clone(),
                    key: key.to_string(),
                })
            } else {
                Ok(format!("{key} {word} ({})", values.join(",")))
            }
        };
        let no_values = |text: String| {
            if values.is_empty() {
                Ok(text)
            } else {
                Err(SelectorError::UnexpectedValues {
                    operator: expr.operator.clone(),
                    key: key.to_string(),
                })
            }
        };
        let text = match expr.operator.as_str() {
            "In" => needs_values("in")?,
            "NotIn" => needs_values("notin")?,
            "Exists" => no_values(key.to_string())?,
            "DoesNotExist" => no_values(format!("!{key}"))?,
            other => return Err(SelectorError::UnknownOperator(other.to_string())),
        };
        reqs.push((key, text));
    }
    // Upstream sorts requirements by key only; a stable sort keeps matchLabels ahead of
    // matchExpressions on the same key, which is the order they were added in.
    reqs.sort_by(|a, b| a.0.cmp(b.0));
    Ok(reqs
        .into_iter()
        .map(|(_, t)| t)
        .collect::<Vec<_>>()
        .join(","))
}

/// `metav1.FormatLabelSelector`: the selector string, `<none>` when it selects everything or
/// nothing, `<error>` when it is malformed.
pub(crate) fn label_selector(sel: Option<&LabelSelector>) -> String {
    match selector_string(sel) {
        Ok(s) if s.is_empty() => "<none>".to_string(),
        Ok(s) => s,
        Err(_) => "<error>".to_string(),
    }
}

/// `layoutContainerCells`: container names and images, each comma separated.
pub(crate) fn containers(containers: &[ContainerView<'_>]) -> (String, String) {
    let names: Vec<&str> = containers
        .iter()
        .map(|c| c.name.unwrap_or_default())
        .collect();
    let images: Vec<&str> = containers
        .iter()
        .map(|c| c.image.unwrap_or_default())
        .collect();
    (names.join(","), images.join(","))
}

/// `GetAccessModesAsString`: the short names in a fixed order, each once.
pub(crate) fn access_modes(modes: &[&str]) -> String {
    let has = |m: &str| modes.contains(&m);
    let mut out: Vec<&str> = Vec::new();
    for (long, short) in [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ] {
        if has(long) {
            out.push(short);
        }
    }
    out.join(",")
}

/// `listWithMoreString`: the first `max` items, then ` + N more...`; `<unset>` when empty.
pub(crate) fn list_with_more(list: &[String], total: usize, max: usize) -> String {
    let joined = list.join(",");
    if total > max {
        return format!("{joined} + {} more...", total - max);
    }
    if joined.is_empty() {
        return "<unset>".to_string();
    }
    joined
}

/// `net.JoinHostPort`: IPv6 addresses get brackets.
pub(crate) fn join_host_port(host: &str, port: i32) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// `printBoolPtr`: `True`, `False` or `<unset>`.
pub(crate) fn bool_ptr(b: Option<bool>) -> String {
    match b {
        Some(true) => "True".to_string(),
        Some(false) => "False".to_string(),
        None => "<unset>".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    fn req(key: &str, op: &str, values: &[&str]) -> LabelSelectorRequirement {
        LabelSelectorRequirement {
            key: key.to_string(),
            operator: op.to_string(),
            values: if values.is_empty() {
                None
            } else {
                Some(values.iter().map(|v| v.to_string()).collect())
            },
        }
    }

    #[test]
    fn label_sets() {
        assert_eq!(labels(None), "<none>");
        assert_eq!(labels(Some(&BTreeMap::new())), "<none>");
        let m = BTreeMap::from([("tier", "db"), ("app", "web")]);
        assert_eq!(labels(Some(&m)), "app=web,tier=db");
    }

    #[test]
    fn selectors() {
        assert_eq!(label_selector(None), "<none>");
        assert_eq!(label_selector(Some(&LabelSelector::default())), "<none>");
        let sel = LabelSelector {
            match_labels: Some(BTreeMap::from([("app".into(), "web".into())])),
            match_expressions: Some(vec![
                req("env", "In", &["prod", "dev"]),
                req("zone", "DoesNotExist", &[]),
                req("beta", "Exists", &[]),
                req("tier", "NotIn", &["cache"]),
            ]),
        };
        assert_eq!(
            label_selector(Some(&sel)),
            "app=web,beta,env in (dev,prod),tier notin (cache),!zone"
        );
        let bad = LabelSelector {
            match_expressions: Some(vec![req("a", "Near", &["b"])]),
            ..Default::default()
        };
        assert_eq!(label_selector(Some(&bad)), "<error>");
        let empty_in = LabelSelector {
            match_expressions: Some(vec![req("a", "In", &[])]),
            ..Default::default()
        };
        assert_eq!(label_selector(Some(&empty_in)), "<error>");
    }

    #[test]
    fn access_mode_order() {
        let modes = ["ReadWriteMany", "ReadWriteOnce", "ReadWriteOnce"];
        assert_eq!(access_modes(&modes), "RWO,RWX");
        assert_eq!(access_modes(&[]), "");
    }

    #[test]
    fn lists_with_more() {
        let three = ["a".to_string(), "b".to_string(), "c".to_string()];
        assert_eq!(list_with_more(&three, 3, 3), "a,b,c");
        assert_eq!(list_with_more(&three, 5, 3), "a,b,c + 2 more...");
        assert_eq!(list_with_more(&[], 0, 3), "<unset>");
    }

    #[test]
    fn host_ports() {
        assert_eq!(join_host_port("10.0.0.1", 80), "10.0.0.1:80");
        assert_eq!(join_host_port("fd00::1", 443), "[fd00::1]:443");
    }
}
