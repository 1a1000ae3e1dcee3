//! `spec.successPolicy` of Indexed Jobs (upstream's `matchSuccessPolicy`): the Job succeeds
//! early once any rule is met — a set of indexes all succeeded (or at least
//! `succeededCount` of them), or at least `succeededCount` indexes succeeded overall.

use k8s_openapi::api::batch::v1::SuccessPolicy;

use super::indexes::Intervals;

/// The `SuccessCriteriaMet` message if a rule is met by `succeeded`.
pub fn matched(policy: &SuccessPolicy, completions: i32, succeeded: &Intervals) -> Option<String> {
    if succeeded.total() == 0 {
        return None;
    }
    policy.rules.iter().enumerate().find_map(|(index, rule)| {
        let met = match rule.succeeded_indexes.as_deref() {
            Some(text) => {
                let required = Intervals::parse(text, completions);
                if required.total() == 0 {
                    // Nothing valid to require: the rule cannot be met.
                    return None;
                }
                let done = required.iter().filter(|i| succeeded.has(*i)).count();
                let done = i32::try_from(done).unwrap_or(i32::MAX);
                match rule.succeeded_count {
                    Some(n) => done >= n,
                    None => done == required.total(),
                }
            }
            None => rule.succeeded_count.is_some_and(|n| succeeded.total() >= n),
        };
        met.then(|| format!("Matched rules at index {index}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::batch::v1::SuccessPolicyRule;

    fn rule(indexes: Option<&str>, count: Option<i32>) -> SuccessPolicyRule {
        SuccessPolicyRule {
            succeeded_indexes: indexes.map(Into::into),
            succeeded_count: count,
        }
    }

    #[test]
    fn rules_match_like_upstream() {
        let policy = SuccessPolicy {
            rules: vec![
                rule(Some("0-2"), None),
                rule(Some("3-9"), Some(2)),
                rule(None, Some(5)),
            ],
        };
        let cases = [
            ("", None),
            ("0,1", None),
            ("0-2", Some("Matched rules at index 0")),
            ("3,7", Some("Matched rules at index 1")),
            ("3", None),
            ("1,2,3,5,8", Some("Matched rules at index 1")),
            ("1,2,4", None),
            ("0,1,3,10,11", Some("Matched rules at index 2")),
        ];
        for (done, want) in cases {
            let got = matched(&policy, 12, &Intervals::parse(done, 12));
            assert_eq!(got.as_deref(), want, "{done}");
        }
        // Required indexes beyond completions are ignored; a rule left empty never matches.
        let beyond = SuccessPolicy {
            rules: vec![rule(Some("20-30"), None)],
        };
        assert_eq!(matched(&beyond, 12, &Intervals::parse("0-11", 12)), None);
    }
}
