//! The status conditions a terminating namespace carries (upstream's
//! `namespace/deletion/status_condition_utils.go`): all five types are always present,
//! `False` with an "ok" reason and message unless this pass found a problem of that type.
//! A condition's `lastTransitionTime` moves only when its status flips.

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::NamespaceCondition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

pub const DISCOVERY_FAILURE: &str = "NamespaceDeletionDiscoveryFailure";
pub const GV_PARSING_FAILURE: &str = "NamespaceDeletionGroupVersionParsingFailure";
pub const CONTENT_FAILURE: &str = "NamespaceDeletionContentFailure";
pub const CONTENT_REMAINING: &str = "NamespaceContentRemaining";
pub const FINALIZERS_REMAINING: &str = "NamespaceFinalizersRemaining";

/// In the order upstream writes them.
const TYPES: [&str; 5] = [
    DISCOVERY_FAILURE,
    GV_PARSING_FAILURE,
    CONTENT_FAILURE,
    CONTENT_REMAINING,
    FINALIZERS_REMAINING,
];

fn ok(t: &str) -> (&'static str, &'static str) {
    match t {
        DISCOVERY_FAILURE => (
            "ResourcesDiscovered",
            "All resources successfully discovered",
        ),
        GV_PARSING_FAILURE => (
            "ParsedGroupVersions",
            "All legacy kube types successfully parsed",
        ),
        CONTENT_FAILURE => (
            "ContentDeleted",
            "All content successfully deleted, may be waiting on finalization",
        ),
        _ => ("ContentRemoved", "All content successfully removed"),
    }
}

/// What one deletion pass found wrong.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Findings {
    /// Discovery's failure message, if any group failed.
    pub discovery: Option<String>,
    /// One message per resource type whose content could not be deleted.
    pub content_errors: Vec<String>,
    /// `resource.group` → instances still present.
    pub remaining: BTreeMap<String, usize>,
    /// Finalizer → instances still carrying it.
    pub finalizers: BTreeMap<String, usize>,
}

impl Findings {
    /// The failing conditions (type, reason, message), as upstream words them.
    fn failing(&self) -> Vec<(&'static str, &'static str, String)> {
        let mut out = Vec::new();
        if let Some(m) = &self.discovery {
            out.push((DISCOVERY_FAILURE, "DiscoveryFailed", m.clone()));
        }
        if !self.content_errors.is_empty() {
            let mut msgs = self.content_errors.clone();
            msgs.sort();
            out.push((
                CONTENT_FAILURE,
                "ContentDeletionFailed",
                format!(
                    "Failed to delete all resource types, {} remaining: {}",
                    msgs.len(),
                    msgs.join(", ")
                ),
            ));
        }
        let remaining: Vec<String> = self
            .remaining
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(gr, n)| format!("{gr} has {n} resource instances"))
            .collect();
        if !remaining.is_empty() {
            out.push((
                CONTENT_REMAINING,
                "SomeResourcesRemain",
                format!("Some resources are remaining: {}", remaining.join(", ")),
            ));
        }
        let finalizers: Vec<String> = self
            .finalizers
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(f, n)| format!("{f} in {n} resource instances"))
            .collect();
        if !finalizers.is_empty() {
            out.push((
                FINALIZERS_REMAINING,
                "SomeFinalizerRemain",
                format!("Some finalizers are remaining: {}", finalizers.join(", ")),
            ));
        }
        out
    }
}

/// Merges this pass's findings into `conditions`; true when anything changed.
pub fn update(
    conditions: &mut Vec<NamespaceCondition>,
    findings: &Findings,
    now: Timestamp,
) -> bool {
    let failing = findings.failing();
    let mut changed = false;
    for t in TYPES {
        let (status, reason, message) = match failing.iter().find(|(ft, _, _)| *ft == t) {
            Some((_, r, m)) => ("True", r.to_string(), m.clone()),
            None => {
                let (r, m) = ok(t);
                ("False", r.to_owned(), m.to_owned())
            }
        };
        match conditions.iter_mut().find(|c| c.type_ == t) {
            None => {
                conditions.push(NamespaceCondition {
                    type_: t.to_owned(),
                    status: status.to_owned(),
                    reason: Some(reason),
                    message: Some(message),
                    last_transition_time: Some(Time(now)),
                });
                changed = true;
            }
            Some(c) => {
                if c.status != status
                    || c.reason.as_deref() != Some(reason.as_str())
                    || c.message.as_deref() != Some(message.as_str())
                {
                    if c.status != status {
                        c.last_transition_time = Some(Time(now));
                    }
                    c.status = status.to_owned();
                    c.reason = Some(reason);
                    c.message = Some(message);
                    changed = true;
                }
            }
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(cs: &[NamespaceCondition]) -> Vec<String> {
        cs.iter()
            .map(|c| {
                format!(
                    "{} {} {} {}",
                    c.type_,
                    c.status,
                    c.reason.as_deref().unwrap_or_default(),
                    c.message.as_deref().unwrap_or_default()
                )
            })
            .collect()
    }

    #[test]
    fn a_clean_pass_sets_all_five_ok_conditions() {
        let mut cs = Vec::new();
        assert!(update(&mut cs, &Findings::default(), Timestamp::UNIX_EPOCH));
        assert_eq!(
            summary(&cs),
            [
                "NamespaceDeletionDiscoveryFailure False ResourcesDiscovered All resources successfully discovered",
                "NamespaceDeletionGroupVersionParsingFailure False ParsedGroupVersions All legacy kube types successfully parsed",
                "NamespaceDeletionContentFailure False ContentDeleted All content successfully deleted, may be waiting on finalization",
                "NamespaceContentRemaining False ContentRemoved All content successfully removed",
                "NamespaceFinalizersRemaining False ContentRemoved All content successfully removed",
            ]
        );
        assert!(!update(&mut cs, &Findings::default(), Timestamp::MAX));
    }

    #[test]
    fn problems_are_worded_like_upstream_and_flip_transition_times() {
        let mut cs = Vec::new();
        update(&mut cs, &Findings::default(), Timestamp::UNIX_EPOCH);
        let later = Timestamp::from_second(100).unwrap();
        let f = Findings {
            discovery: None,
            content_errors: vec!["b failed".into(), "a failed".into()],
            remaining: [
                ("pods.".to_string(), 2),
                ("widgets.example.com".to_string(), 1),
            ]
            .into(),
            finalizers: [("example.com/keep".to_string(), 1), ("x".to_string(), 0)].into(),
        };
        assert!(update(&mut cs, &f, later));
        assert_eq!(
            summary(&cs)[2..],
            [
                "NamespaceDeletionContentFailure True ContentDeletionFailed Failed to delete all resource types, 2 remaining: a failed, b failed",
                "NamespaceContentRemaining True SomeResourcesRemain Some resources are remaining: pods. has 2 resource instances, widgets.example.com has 1 resource instances",
                "NamespaceFinalizersRemaining True SomeFinalizerRemain Some finalizers are remaining: example.com/keep in 1 resource instances",
            ]
        );
        assert_eq!(
            cs[0].last_transition_time,
            Some(Time(Timestamp::UNIX_EPOCH))
        );
        assert_eq!(cs[3].last_transition_time, Some(Time(later)));
    }
}
