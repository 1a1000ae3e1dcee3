#![allow(clippy::unwrap_used)]

use super::*;
use serde_json::{Value, json};

fn strategy() -> Arc<dyn DynStrategy> {
    super::strategy(api::resources::lookup("batch", "v1", "jobs").unwrap())
}

fn job() -> Value {
    json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "pi", "namespace": "default", "uid": "u1"},
        "spec": {
            "backoffLimit": 4,
            "template": {"spec": {
                "containers": [{"name": "pi", "image": "perl:5.34.0", "command": ["perl", "-e", "1"]}],
                "restartPolicy": "Never"
            }}
        }
    })
}

fn errors(v: Value) -> Vec<String> {
    let err = strategy().admit_create(v, false).unwrap_err();
    assert_eq!(err.code, 422, "{}", err.message);
    err.causes
        .iter()
        .map(|c| format!("{}: {}", c.field, c.message))
        .collect()
}

#[test]
fn defaults_and_generated_selector() {
    let generated = json!({
        "batch.kubernetes.io/controller-uid": "u1",
        "batch.kubernetes.io/job-name": "pi",
        "controller-uid": "u1",
        "job-name": "pi"
    });
    let expected = json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "pi", "namespace": "default", "uid": "u1", "generation": 1, "labels": generated},
        "spec": {
            "backoffLimit": 4,
            "completionMode": "NonIndexed",
            "completions": 1,
            "manualSelector": false,
            "parallelism": 1,
            "podReplacementPolicy": "TerminatingOrFailed",
            "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "u1"}},
            "suspend": false,
            "template": {
                "metadata": {"labels": generated},
                "spec": {
                    "containers": [{
                        "command": ["perl", "-e", "1"],
                        "image": "perl:5.34.0",
                        "imagePullPolicy": "IfNotPresent",
                        "name": "pi",
                        "resources": {},
                        "terminationMessagePath": "/dev/termination-log",
                        "terminationMessagePolicy": "File"
                    }],
                    "dnsPolicy": "ClusterFirst",
                    "restartPolicy": "Never",
                    "schedulerName": "default-scheduler",
                    "securityContext": {},
                    "terminationGracePeriodSeconds": 30
                }
            }
        },
        "status": {}
    });
    assert_eq!(
        strategy().admit_create(job(), false).unwrap().object,
        expected
    );

    // With template labels of its own, the Job keeps exactly those as its labels.
    let mut labelled = job();
    labelled["spec"]["template"]["metadata"] = json!({"labels": {"app": "pi"}});
    let out = strategy().admit_create(labelled, false).unwrap().object;
    assert_eq!(out["metadata"]["labels"], json!({"app": "pi"}));
    assert_eq!(out["spec"]["template"]["metadata"]["labels"]["app"], "pi");
    assert_eq!(
        out["spec"]["template"]["metadata"]["labels"]["job-name"],
        "pi"
    );

    let mut d: Job = serde_json::from_value(job()).unwrap();
    d.spec.as_mut().unwrap().pod_failure_policy = Some(Default::default());
    JobStrategy.set_defaults(&mut d);
    assert_eq!(
        d.spec.unwrap().pod_replacement_policy.as_deref(),
        Some("Failed")
    );
}

#[test]
fn create_validation() {
    type Edit = fn(&mut Value);
    let cases: Vec<(&str, Edit, Vec<String>)> = vec![
        (
            "restart policy missing",
            |j| {
                j["spec"]["template"]["spec"].as_object_mut().unwrap().remove("restartPolicy");
            },
            vec!["spec.template.spec.restartPolicy: Required value: valid values: \"OnFailure\", \"Never\"".into()],
        ),
        (
            "negative counts",
            |j| {
                j["spec"]["completions"] = json!(-1);
                j["spec"]["backoffLimit"] = json!(-2);
            },
            vec![
                "spec.completions: Invalid value: -1: must be greater than or equal to 0".into(),
                "spec.backoffLimit: Invalid value: -2: must be greater than or equal to 0".into(),
            ],
        ),
        (
            "indexed without completions",
            |j| {
                j["spec"]["completionMode"] = json!("Indexed");
                j["spec"]["parallelism"] = json!(2);
            },
            vec!["spec.completions: Required value: when completion mode is Indexed".into()],
        ),
        (
            "per-index backoff needs indexed mode",
            |j| j["spec"]["backoffLimitPerIndex"] = json!(1),
            vec!["spec.backoffLimitPerIndex: Invalid value: 1: requires indexed completion mode".into()],
        ),
        (
            "conflicting generated label",
            |j| j["spec"]["template"]["metadata"] = json!({"labels": {"job-name": "other"}}),
            vec!["spec.template.metadata.labels[job-name]: Invalid value: map[string]string{\"batch.kubernetes.io/controller-uid\":\"u1\", \"batch.kubernetes.io/job-name\":\"pi\", \"controller-uid\":\"u1\", \"job-name\":\"other\"}: must be 'pi'".into()],
        ),
        (
            "manual selector without selector",
            |j| j["spec"]["manualSelector"] = json!(true),
            vec![
                "spec.selector: Required value".into(),
                "spec.template.metadata.labels: Invalid value: map[string]string(nil): `selector` does not match template `labels`".into(),
            ],
        ),
        (
            "pod failure policy needs Never",
            |j| {
                j["spec"]["template"]["spec"]["restartPolicy"] = json!("OnFailure");
                j["spec"]["podFailurePolicy"] = json!({"rules": [{"action": "FailJob", "onExitCodes": {"operator": "In", "values": [3, 1]}}]});
            },
            vec![
                "spec.podFailurePolicy.rules[0].onExitCodes.values: Invalid value: [3,1]: must be ordered".into(),
                "spec.template.spec.restartPolicy: Invalid value: \"OnFailure\": only \"Never\" is supported when podFailurePolicy is specified".into(),
            ],
        ),
        (
            "pod failure policy rule needs a requirement",
            |j| j["spec"]["podFailurePolicy"] = json!({"rules": [{"action": "Ignore"}]}),
            vec!["spec.podFailurePolicy.rules[0]: Invalid value: specifying one of OnExitCodes and OnPodConditions is required".into()],
        ),
    ];
    for (name, edit, want) in cases {
        let mut j = job();
        edit(&mut j);
        assert_eq!(errors(j), want, "case {name}");
    }
}

#[test]
fn updates() {
    let s = strategy();
    let old = s.admit_create(job(), false).unwrap().object;
    let causes = |new: Value, old: &Value| -> Vec<(String, String)> {
        let err = s.admit_update(new, old, false).unwrap_err();
        err.causes
            .iter()
            .map(|c| (c.field.clone(), c.message.clone()))
            .collect()
    };
    let mut image = old.clone();
    image["spec"]["template"]["spec"]["containers"][0]["image"] = json!("perl:5.36");
    let c = causes(image, &old);
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].0, "spec.template");
    assert!(c[0].1.ends_with(": field is immutable"), "{c:?}");

    let mut completions = old.clone();
    completions["spec"]["completions"] = json!(3);
    assert_eq!(
        causes(completions, &old),
        [(
            "spec.completions".to_string(),
            "Invalid value: 3: field is immutable".to_string()
        )]
    );

    let mut backoff = old.clone();
    backoff["spec"]["backoffLimit"] = json!(2);
    assert_eq!(
        s.admit_update(backoff, &old, false).unwrap().object["metadata"]["generation"],
        2
    );

    // A suspended Job that never started may get new scheduling directives.
    let mut suspended = job();
    suspended["spec"]["suspend"] = json!(true);
    let old = s.admit_create(suspended, false).unwrap().object;
    let mut placed = old.clone();
    placed["spec"]["template"]["spec"]["nodeSelector"] = json!({"disk": "ssd"});
    assert!(s.admit_update(placed, &old, false).is_ok());
}

#[test]
fn status_updates() {
    let s = strategy();
    let old = s.admit_create(job(), false).unwrap().object;
    let mut ok = old.clone();
    ok["status"] = json!({"active": 1, "startTime": "2025-01-01T00:00:00Z"});
    assert!(s.admit_status_update(ok, &old).is_ok());
    let mut bad = old.clone();
    bad["status"] =
        json!({"active": -1, "uncountedTerminatedPods": {"succeeded": ["a"], "failed": ["a"]}});
    let err = s.admit_status_update(bad, &old).unwrap_err();
    let causes: Vec<String> = err
        .causes
        .iter()
        .map(|c| format!("{}: {}", c.field, c.message))
        .collect();
    assert_eq!(
        causes,
        [
            "status.active: Invalid value: -1: must be greater than or equal to 0",
            "status.uncountedTerminatedPods.failed[0]: Duplicate value: \"a\"",
        ]
    );
}
