#![allow(clippy::unwrap_used)]

use super::*;
use serde_json::{Value, json};

fn strategy() -> Arc<dyn DynStrategy> {
    super::strategy(api::resources::lookup("apps", "v1", "deployments").unwrap())
}

fn deployment() -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "uid": "u1"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "nginx", "image": "nginx:1.27"}]}
            }
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
fn minimal_deployment_shows_upstream_defaults() {
    // `kubectl get deploy web -o yaml` right after creation on 1.33, except that upstream also
    // prints `creationTimestamp: null` inside the template's metadata.
    let expected = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "uid": "u1", "generation": 1},
        "spec": {
            "progressDeadlineSeconds": 600,
            "replicas": 1,
            "revisionHistoryLimit": 10,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {
                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
                "type": "RollingUpdate"
            },
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [{
                        "image": "nginx:1.27",
                        "imagePullPolicy": "IfNotPresent",
                        "name": "nginx",
                        "resources": {},
                        "terminationMessagePath": "/dev/termination-log",
                        "terminationMessagePolicy": "File"
                    }],
                    "dnsPolicy": "ClusterFirst",
                    "restartPolicy": "Always",
                    "schedulerName": "default-scheduler",
                    "securityContext": {},
                    "terminationGracePeriodSeconds": 30
                }
            }
        },
        "status": {}
    });
    assert_eq!(
        strategy().admit_create(deployment(), false).unwrap().object,
        expected
    );
}

#[test]
fn typed_defaults_directly() {
    let mut d: Deployment = serde_json::from_value(deployment()).unwrap();
    DeploymentStrategy.set_defaults(&mut d);
    let spec = d.spec.unwrap();
    assert_eq!(spec.replicas, Some(1));
    assert_eq!(spec.progress_deadline_seconds, Some(600));
    let recreate: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "x"},
        "spec": {"selector": {}, "template": {}, "strategy": {"type": "Recreate"}}
    }))
    .unwrap();
    let mut r = recreate;
    DeploymentStrategy.set_defaults(&mut r);
    assert_eq!(r.spec.unwrap().strategy.unwrap().rolling_update, None);
}

#[test]
fn create_validation() {
    let mismatch = "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"web\"}: `selector` does not match template `labels`";
    type Edit = fn(&mut Value);
    let cases: Vec<(&str, Edit, Vec<String>)> = vec![
        (
            "missing selector",
            |d| {
                d["spec"].as_object_mut().unwrap().remove("selector");
            },
            vec!["spec.selector: Required value".into(), mismatch.into()],
        ),
        (
            "selector mismatch",
            |d| d["spec"]["selector"] = json!({"matchLabels": {"app": "db"}}),
            vec![mismatch.into()],
        ),
        (
            "empty selector",
            |d| d["spec"]["selector"] = json!({"matchLabels": {}}),
            vec!["spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for deployment".into()],
        ),
        (
            "unusable selector",
            |d| d["spec"]["selector"] = json!({"matchExpressions": [{"key": "app", "operator": "In"}]}),
            vec![
                "spec.selector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'".into(),
                "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), MatchExpressions:[]v1.LabelSelectorRequirement{v1.LabelSelectorRequirement{Key:\"app\", Operator:\"In\", Values:[]string(nil)}}}: invalid label selector".into(),
            ],
        ),
        (
            "negative replicas",
            |d| d["spec"]["replicas"] = json!(-1),
            vec!["spec.replicas: Invalid value: -1: must be greater than or equal to 0".into()],
        ),
        (
            "restart policy",
            |d| d["spec"]["template"]["spec"]["restartPolicy"] = json!("Never"),
            vec!["spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\"".into()],
        ),
        (
            "deadline",
            |d| d["spec"]["template"]["spec"]["activeDeadlineSeconds"] = json!(10),
            vec!["spec.template.spec.activeDeadlineSeconds: Forbidden: activeDeadlineSeconds in ReplicaSet is not Supported".into()],
        ),
        (
            "no containers in template",
            |d| d["spec"]["template"]["spec"]["containers"] = json!([]),
            vec!["spec.template.spec.containers: Required value".into()],
        ),
        (
            "zero surge and unavailable",
            |d| d["spec"]["strategy"] = json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}}),
            vec!["spec.strategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:0, IntVal:0, StrVal:\"\"}: may not be 0 when `maxSurge` is 0".into()],
        ),
        (
            "over 100%",
            |d| d["spec"]["strategy"] = json!({"rollingUpdate": {"maxUnavailable": "110%"}}),
            vec!["spec.strategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:\"110%\"}: must not be greater than 100%".into()],
        ),
        (
            "recreate with rolling update",
            |d| d["spec"]["strategy"] = json!({"type": "Recreate", "rollingUpdate": {"maxSurge": 1}}),
            vec!["spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is 'Recreate'".into()],
        ),
        (
            "progress deadline",
            |d| {
                d["spec"]["minReadySeconds"] = json!(700);
            },
            vec!["spec.progressDeadlineSeconds: Invalid value: 600: must be greater than minReadySeconds".into()],
        ),
        (
            "template labels",
            |d| d["spec"]["template"]["metadata"]["labels"]["bad key"] = json!("x"),
            vec!["spec.template.labels: Invalid value: \"bad key\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')".into()],
        ),
    ];
    for (name, edit, want) in cases {
        let mut d = deployment();
        edit(&mut d);
        assert_eq!(errors(d), want, "case {name}");
    }
}

#[test]
fn updates() {
    let s = strategy();
    let old = s.admit_create(deployment(), false).unwrap().object;
    let same = s.admit_update(old.clone(), &old, false).unwrap().object;
    assert_eq!(same["metadata"]["generation"], 1);
    let mut image = old.clone();
    image["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:1.28");
    let out = s.admit_update(image, &old, false).unwrap().object;
    assert_eq!(out["metadata"]["generation"], 2);
    // A replacement without status keeps the stored status.
    assert_eq!(out["status"], json!({}));

    let mut selector = old.clone();
    selector["spec"]["selector"]["matchLabels"]["tier"] = json!("front");
    selector["spec"]["template"]["metadata"]["labels"]["tier"] = json!("front");
    let err = s.admit_update(selector, &old, false).unwrap_err();
    assert_eq!(err.causes.len(), 1);
    assert_eq!(err.causes[0].field, "spec.selector");
    assert_eq!(
        err.causes[0].message,
        "Invalid value: v1.LabelSelector{MatchLabels:map[string]string{\"app\":\"web\", \"tier\":\"front\"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable"
    );
}

#[test]
fn status_updates() {
    let s = strategy();
    let old = s.admit_create(deployment(), false).unwrap().object;
    let mut ok = old.clone();
    ok["spec"]["replicas"] = json!(9);
    ok["status"] = json!({"replicas": 1, "readyReplicas": 1, "availableReplicas": 1, "observedGeneration": 1, "collisionCount": 2});
    ok["metadata"]["annotations"] = json!({"deployment.kubernetes.io/revision": "1"});
    ok["metadata"]["labels"] = json!({"changed": "no"});
    let out = s.admit_status_update(ok, &old).unwrap().object;
    assert_eq!(out["spec"]["replicas"], 1, "status writes keep the spec");
    assert_eq!(out["status"]["readyReplicas"], 1);
    // The controller's revision annotation goes through status; labels do not.
    assert_eq!(
        out["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "1"
    );
    assert_eq!(out["metadata"]["labels"], old["metadata"]["labels"]);
    assert_eq!(out["metadata"]["generation"], old["metadata"]["generation"]);

    let mut bad = out.clone();
    bad["status"] =
        json!({"replicas": 1, "readyReplicas": 2, "availableReplicas": 3, "collisionCount": 1});
    let err = s.admit_status_update(bad, &out).unwrap_err();
    let causes: Vec<String> = err
        .causes
        .iter()
        .map(|c| format!("{}: {}", c.field, c.message))
        .collect();
    assert_eq!(
        causes,
        [
            "status.readyReplicas: Invalid value: 2: cannot be greater than status.replicas",
            "status.availableReplicas: Invalid value: 3: cannot be greater than status.replicas",
            "status.availableReplicas: Invalid value: 3: cannot be greater than readyReplicas",
            "status.collisionCount: Invalid value: 1: cannot be decremented",
        ]
    );
}

#[test]
fn bad_template_quantity_is_a_bad_request() {
    let mut d = deployment();
    d["spec"]["template"]["spec"]["containers"][0]["resources"] =
        json!({"limits": {"memory": "1 Gi"}});
    let err = strategy().admit_create(d, false).unwrap_err();
    assert_eq!(err.code, 400);
    assert!(err.message.starts_with(
        "Deployment in version \"v1\" cannot be handled as a Deployment: quantities must match"
    ));
}

#[test]
fn annotation_changes_bump_generation_label_changes_do_not() {
    let s = strategy();
    let old = s.admit_create(deployment(), false).unwrap().object;
    let mut annotated = old.clone();
    annotated["metadata"]["annotations"] = json!({"note": "x"});
    assert_eq!(
        s.admit_update(annotated, &old, false).unwrap().object["metadata"]["generation"],
        2
    );
    let mut labelled = old.clone();
    labelled["metadata"]["labels"] = json!({"team": "a"});
    assert_eq!(
        s.admit_update(labelled, &old, false).unwrap().object["metadata"]["generation"],
        1
    );
}
