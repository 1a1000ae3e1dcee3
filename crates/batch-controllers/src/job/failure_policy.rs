//! `spec.podFailurePolicy`: what a failed pod means for its Job (upstream's
//! `matchPodFailurePolicy`). Rules are tried in order; the first that matches decides.

use k8s_openapi::api::batch::v1::{PodFailurePolicy, PodFailurePolicyOnExitCodesRequirement};
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};

/// The verdict of the policy on one failed pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The whole Job fails, with this message.
    FailJob(String),
    /// The failure is not counted against `backoffLimit`.
    Ignore,
    /// Counted as usual (a `Count` or `FailIndex` rule).
    Count,
    /// No rule matched: counted as usual.
    NoMatch,
}

impl Verdict {
    /// Whether the failure counts towards `status.failed` and the backoff limit.
    pub fn counts(&self) -> bool {
        !matches!(self, Verdict::Ignore)
    }
}

/// Applies `policy` to the failed `pod`.
pub fn check(policy: &PodFailurePolicy, pod: &Pod) -> Verdict {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or_default();
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    for (index, rule) in policy.rules.iter().enumerate() {
        let matched = if let Some(req) = &rule.on_exit_codes {
            matching_container(pod, req).map(|(container, code)| {
                format!(
                    "Container {container} for pod {namespace}/{name} failed with exit code {code} matching {} rule at index {index}",
                    rule.action
                )
            })
        } else {
            rule.on_pod_conditions.iter().flatten().find_map(|pattern| {
                let has = pod
                    .status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|cs| {
                        cs.iter()
                            .any(|c| c.type_ == pattern.type_ && c.status == pattern.status)
                    });
                has.then(|| {
                    format!(
                        "Pod {namespace}/{name} has condition {} matching {} rule at index {index}",
                        pattern.type_, rule.action
                    )
                })
            })
        };
        let Some(message) = matched else {
            continue;
        };
        return match rule.action.as_str() {
            "FailJob" => Verdict::FailJob(message),
            "Ignore" => Verdict::Ignore,
            // FailIndex needs backoffLimitPerIndex, which keelson does not implement yet; its
            // failure still counts, as a Count rule's does.
            _ => Verdict::Count,
        };
    }
    Verdict::NoMatch
}

/// The first container (regular ones before init containers) that terminated with a
/// non-zero exit code the requirement matches.
fn matching_container(
    pod: &Pod,
    req: &PodFailurePolicyOnExitCodesRequirement,
) -> Option<(String, i32)> {
    let status = pod.status.as_ref()?;
    let find = |list: Option<&Vec<ContainerStatus>>| {
        list.into_iter().flatten().find_map(|cs| {
            if req.container_name.as_ref().is_some_and(|n| *n != cs.name) {
                return None;
            }
            let code = cs.state.as_ref()?.terminated.as_ref()?.exit_code;
            let listed = req.values.contains(&code);
            let hit = match req.operator.as_str() {
                "In" => listed,
                "NotIn" => !listed,
                _ => false,
            };
            (code != 0 && hit).then(|| (cs.name.clone(), code))
        })
    };
    find(status.container_statuses.as_ref())
        .or_else(|| find(status.init_container_statuses.as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::batch::v1::{
        PodFailurePolicyOnPodConditionsPattern, PodFailurePolicyRule,
    };
    use k8s_openapi::api::core::v1::{
        ContainerState, ContainerStateTerminated, PodCondition, PodStatus,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn pod(exit: &[(&str, i32)], conditions: &[(&str, &str)]) -> Pod {
        Pod {
            metadata: ObjectMeta {
                namespace: Some("ns".into()),
                name: Some("p".into()),
                ..Default::default()
            },
            spec: None,
            status: Some(PodStatus {
                phase: Some("Failed".into()),
                container_statuses: Some(
                    exit.iter()
                        .map(|(n, code)| ContainerStatus {
                            name: n.to_string(),
                            state: Some(ContainerState {
                                terminated: Some(ContainerStateTerminated {
                                    exit_code: *code,
                                    ..Default::default()
                                }),
                                ..Default::default()
                            }),
                            ..Default::default()
                        })
                        .collect(),
                ),
                conditions: Some(
                    conditions
                        .iter()
                        .map(|(t, s)| PodCondition {
                            type_: t.to_string(),
                            status: s.to_string(),
                            ..Default::default()
                        })
                        .collect(),
                ),
                ..Default::default()
            }),
        }
    }

    fn exit_rule(
        action: &str,
        container: Option<&str>,
        op: &str,
        values: &[i32],
    ) -> PodFailurePolicyRule {
        PodFailurePolicyRule {
            action: action.into(),
            on_exit_codes: Some(PodFailurePolicyOnExitCodesRequirement {
                container_name: container.map(Into::into),
                operator: op.into(),
                values: values.to_vec(),
            }),
            on_pod_conditions: None,
        }
    }

    fn condition_rule(action: &str, type_: &str) -> PodFailurePolicyRule {
        PodFailurePolicyRule {
            action: action.into(),
            on_exit_codes: None,
            on_pod_conditions: Some(vec![PodFailurePolicyOnPodConditionsPattern {
                type_: type_.into(),
                status: "True".into(),
            }]),
        }
    }

    #[test]
    fn first_matching_rule_decides() {
        let policy = PodFailurePolicy {
            rules: vec![
                condition_rule("Ignore", "DisruptionTarget"),
                exit_rule("FailJob", Some("main"), "In", &[42]),
                exit_rule("Count", None, "NotIn", &[1]),
            ],
        };
        let cases = [
            (pod(&[("main", 42)], &[]), Verdict::FailJob(
                "Container main for pod ns/p failed with exit code 42 matching FailJob rule at index 1".into(),
            )),
            (pod(&[("main", 42)], &[("DisruptionTarget", "True")]), Verdict::Ignore),
            (pod(&[("side", 42)], &[]), Verdict::Count),
            (pod(&[("main", 1)], &[]), Verdict::NoMatch),
            // Exit code 0 never matches, even under NotIn.
            (pod(&[("main", 0)], &[]), Verdict::NoMatch),
            (pod(&[("main", 42)], &[("DisruptionTarget", "False")]), Verdict::FailJob(
                "Container main for pod ns/p failed with exit code 42 matching FailJob rule at index 1".into(),
            )),
        ];
        for (i, (p, want)) in cases.into_iter().enumerate() {
            assert_eq!(check(&policy, &p), want, "case {i}");
        }
    }

    #[test]
    fn condition_rules_name_the_condition() {
        let policy = PodFailurePolicy {
            rules: vec![condition_rule("FailJob", "ConfigIssue")],
        };
        assert_eq!(
            check(&policy, &pod(&[], &[("ConfigIssue", "True")])),
            Verdict::FailJob(
                "Pod ns/p has condition ConfigIssue matching FailJob rule at index 0".into()
            )
        );
        assert!(Verdict::Count.counts() && Verdict::NoMatch.counts() && !Verdict::Ignore.counts());
    }
}
