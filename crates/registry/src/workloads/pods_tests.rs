#![allow(clippy::unwrap_used)]

use super::*;
use serde_json::{Value, json};

fn strategy() -> Arc<dyn DynStrategy> {
    super::strategy(api::resources::lookup("", "v1", "pods").unwrap())
}

fn pod() -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "nginx", "namespace": "default", "uid": "u1"},
        "spec": {"containers": [{"name": "nginx", "image": "nginx"}]}
    })
}

fn create(v: Value) -> Value {
    strategy().admit_create(v, false).unwrap().object
}

/// "field: message" for every cause of a refused create.
fn errors(v: Value) -> Vec<String> {
    let err = strategy().admit_create(v, false).unwrap_err();
    assert_eq!(err.code, 422, "{}", err.message);
    err.causes
        .iter()
        .map(|c| format!("{}: {}", c.field, c.message))
        .collect()
}

#[test]
fn minimal_pod_shows_upstream_defaults() {
    // What `kubectl get pod -o yaml` shows right after creating a one-container pod on 1.33
    // (minus the service account token volume, which keelson does not inject yet).
    let expected = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "nginx", "namespace": "default", "uid": "u1", "generation": 1},
        "spec": {
            "containers": [{
                "image": "nginx",
                "imagePullPolicy": "Always",
                "name": "nginx",
                "resources": {},
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File"
            }],
            "dnsPolicy": "ClusterFirst",
            "enableServiceLinks": true,
            "preemptionPolicy": "PreemptLowerPriority",
            "priority": 0,
            "restartPolicy": "Always",
            "schedulerName": "default-scheduler",
            "securityContext": {},
            "serviceAccount": "default",
            "serviceAccountName": "default",
            "terminationGracePeriodSeconds": 30,
            "tolerations": [
                {"effect": "NoExecute", "key": "node.kubernetes.io/not-ready", "operator": "Exists", "tolerationSeconds": 300},
                {"effect": "NoExecute", "key": "node.kubernetes.io/unreachable", "operator": "Exists", "tolerationSeconds": 300}
            ]
        },
        "status": {"phase": "Pending", "qosClass": "BestEffort"}
    });
    assert_eq!(create(pod()), expected);
}

#[test]
fn nested_defaults() {
    let mut p = pod();
    p["spec"]["containers"][0] = json!({
        "name": "web", "image": "registry.local/web:1.2",
        "ports": [{"containerPort": 8080}],
        "env": [{"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
        "livenessProbe": {"httpGet": {"port": 8080}},
        "readinessProbe": {"grpc": {"port": 9000}},
        "resources": {"limits": {"cpu": "0.5", "memory": "1024Mi"}, "requests": {"cpu": "0.0001"}},
        "volumeMounts": [{"name": "cfg", "mountPath": "/cfg"}]
    });
    p["spec"]["volumes"] = json!([
        {"name": "cfg", "configMap": {"name": "c"}},
        {"name": "scratch"},
        {"name": "host", "hostPath": {"path": "/var/log"}},
        {"name": "token", "projected": {"sources": [{"serviceAccountToken": {"path": "t"}}]}}
    ]);
    let out = create(p);
    let c = &out["spec"]["containers"][0];
    assert_eq!(c["imagePullPolicy"], "IfNotPresent");
    assert_eq!(c["ports"][0]["protocol"], "TCP");
    assert_eq!(c["env"][0]["valueFrom"]["fieldRef"]["apiVersion"], "v1");
    assert_eq!(
        c["livenessProbe"],
        json!({"httpGet": {"path": "/", "port": 8080, "scheme": "HTTP"}, "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3})
    );
    assert_eq!(
        c["readinessProbe"]["grpc"],
        json!({"port": 9000, "service": ""})
    );
    assert_eq!(
        c["resources"],
        json!({"limits": {"cpu": "500m", "memory": "1Gi"}, "requests": {"cpu": "1m", "memory": "1Gi"}})
    );
    let v = &out["spec"]["volumes"];
    assert_eq!(v[0]["configMap"]["defaultMode"], 420);
    assert_eq!(v[1]["emptyDir"], json!({}));
    assert_eq!(v[2]["hostPath"]["type"], "");
    assert_eq!(v[3]["projected"]["defaultMode"], 420);
    assert_eq!(
        v[3]["projected"]["sources"][0]["serviceAccountToken"]["expirationSeconds"],
        3600
    );
    assert_eq!(out["status"]["qosClass"], "Burstable");
}

#[test]
fn qos_from_defaulted_requests() {
    let mut p = pod();
    p["spec"]["containers"][0]["resources"] = json!({"limits": {"cpu": "1", "memory": "1Gi"}});
    assert_eq!(create(p)["status"]["qosClass"], "Guaranteed");
}

#[test]
fn admission_effects() {
    let mut p = pod();
    p["spec"]["serviceAccount"] = json!("builder");
    p["spec"]["priorityClassName"] = json!("system-node-critical");
    p["spec"]["tolerations"] =
        json!([{"key": "node.kubernetes.io/not-ready", "operator": "Exists"}]);
    p["spec"]["schedulingGates"] = json!([{"name": "example.com/wait"}]);
    let out = create(p);
    assert_eq!(out["spec"]["serviceAccountName"], "builder");
    assert_eq!(out["spec"]["serviceAccount"], "builder");
    assert_eq!(out["spec"]["priority"], 2_000_001_000);
    let tolerations = out["spec"]["tolerations"].as_array().unwrap();
    assert_eq!(
        tolerations.len(),
        2,
        "not-ready is already tolerated: {tolerations:?}"
    );
    assert_eq!(tolerations[1]["key"], "node.kubernetes.io/unreachable");
    assert_eq!(
        out["status"]["conditions"],
        json!([{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated", "message": "Scheduling is blocked due to non-empty scheduling gates"}])
    );

    let mut p = pod();
    p["spec"]["priority"] = json!(5);
    let err = strategy().admit_create(p, false).unwrap_err();
    assert_eq!(err.code, 403);
    assert_eq!(
        err.message,
        "pods \"nginx\" is forbidden: the integer value of priority (5) must not be provided in pod spec; priority admission controller computed 0 from the given PriorityClass name"
    );
    let mut p = pod();
    p["spec"]["preemptionPolicy"] = json!("Never");
    assert_eq!(strategy().admit_create(p, false).unwrap_err().code, 403);
}

#[test]
fn pod_affinity_label_keys_become_requirements() {
    let mut p = pod();
    p["metadata"]["labels"] = json!({"app": "web", "tenant": "a"});
    p["spec"]["affinity"] = json!({"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{
        "labelSelector": {"matchLabels": {"app": "web"}},
        "topologyKey": "kubernetes.io/hostname",
        "matchLabelKeys": ["tenant"]
    }]}});
    let out = create(p);
    assert_eq!(
        out["spec"]["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
            [0]["labelSelector"]["matchExpressions"],
        json!([{"key": "tenant", "operator": "In", "values": ["a"]}])
    );
}

#[test]
fn unparseable_quantities_are_a_bad_request() {
    let mut p = pod();
    p["spec"]["containers"][0]["resources"] = json!({"requests": {"cpu": "lots"}});
    let err = strategy().admit_create(p, false).unwrap_err();
    assert_eq!(err.code, 400);
    assert_eq!(
        err.message,
        "Pod in version \"v1\" cannot be handled as a Pod: quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
    );
}

#[test]
fn create_validation() {
    let c0 = "spec.containers[0]";
    let label_msg = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
    type Edit = fn(&mut Value);
    let cases: Vec<(&str, Edit, Vec<String>)> = vec![
        ("no containers", |p| p["spec"]["containers"] = json!([]), vec!["spec.containers: Required value".into()]),
        (
            "bad container name",
            |p| p["spec"]["containers"][0]["name"] = json!("Web_1"),
            vec![format!("{c0}.name: Invalid value: \"Web_1\": {label_msg}")],
        ),
        ("no image", |p| p["spec"]["containers"][0]["image"] = json!(""), vec![format!("{c0}.image: Required value")]),
        (
            "image whitespace",
            |p| p["spec"]["containers"][0]["image"] = json!(" nginx"),
            vec![format!("{c0}.image: Invalid value: \" nginx\": must not have leading or trailing whitespace")],
        ),
        (
            "init name clash",
            |p| p["spec"]["initContainers"] = json!([{"name": "nginx", "image": "busybox"}]),
            vec!["spec.initContainers[0].name: Duplicate value: \"nginx\"".into()],
        ),
        (
            "port range",
            |p| p["spec"]["containers"][0]["ports"] = json!([{"containerPort": 70000}]),
            vec![format!("{c0}.ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive")],
        ),
        (
            "port protocol",
            |p| p["spec"]["containers"][0]["ports"] = json!([{"containerPort": 80, "protocol": "HTTP"}]),
            vec![format!("{c0}.ports[0].protocol: Unsupported value: \"HTTP\": supported values: \"SCTP\", \"TCP\", \"UDP\"")],
        ),
        (
            "port names",
            |p| p["spec"]["containers"][0]["ports"] = json!([{"containerPort": 80, "name": "web"}, {"containerPort": 81, "name": "web"}, {"containerPort": 82, "name": "8080"}]),
            vec![
                format!("{c0}.ports[1].name: Duplicate value: \"web\""),
                format!("{c0}.ports[2].name: Invalid value: \"8080\": must contain at least one letter (a-z)"),
            ],
        ),
        (
            "host port conflict",
            |p| p["spec"]["containers"][0]["ports"] = json!([{"containerPort": 80, "hostPort": 8080}, {"containerPort": 81, "hostPort": 8080}]),
            vec![format!("{c0}.ports[1].hostPort: Duplicate value: \"TCP//8080\"")],
        ),
        (
            "env name",
            |p| p["spec"]["containers"][0]["env"] = json!([{"name": "A=B", "value": "x"}, {"name": ""}]),
            vec![
                format!("{c0}.env[0].name: Invalid value: \"A=B\": a valid environment variable name must consist only of printable ASCII characters other than '='"),
                format!("{c0}.env[1].name: Required value"),
            ],
        ),
        (
            "env source",
            |p| p["spec"]["containers"][0]["env"] = json!([{"name": "A", "value": "x", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]),
            vec![format!("{c0}.env[0].valueFrom: Invalid value: \"\": may not be specified when `value` is not empty")],
        ),
        (
            "mount without volume",
            |p| p["spec"]["containers"][0]["volumeMounts"] = json!([{"name": "data", "mountPath": "/data"}]),
            vec![format!("{c0}.volumeMounts[0].name: Not found: \"data\"")],
        ),
        (
            "duplicate volumes",
            |p| p["spec"]["volumes"] = json!([{"name": "a", "emptyDir": {}}, {"name": "a", "emptyDir": {}}]),
            vec!["spec.volumes[1].name: Duplicate value: \"a\"".into()],
        ),
        (
            "restart policy",
            |p| p["spec"]["restartPolicy"] = json!("Sometimes"),
            vec!["spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\"".into()],
        ),
        (
            "dns policy",
            |p| p["spec"]["dnsPolicy"] = json!("Weird"),
            vec!["spec.dnsPolicy: Unsupported value: \"Weird\": supported values: \"ClusterFirstWithHostNet\", \"ClusterFirst\", \"Default\", \"None\"".into()],
        ),
        (
            "requests above limits",
            |p| p["spec"]["containers"][0]["resources"] = json!({"requests": {"memory": "2Gi"}, "limits": {"memory": "1Gi"}}),
            vec![format!("{c0}.resources.requests: Invalid value: \"2Gi\": must be less than or equal to memory limit of 1Gi")],
        ),
        (
            "liveness success threshold",
            |p| p["spec"]["containers"][0]["livenessProbe"] = json!({"exec": {"command": ["true"]}, "successThreshold": 2}),
            vec![format!("{c0}.livenessProbe.successThreshold: Invalid value: 2: must be 1")],
        ),
        (
            "probe without handler",
            |p| p["spec"]["containers"][0]["readinessProbe"] = json!({"periodSeconds": 5}),
            vec![format!("{c0}.readinessProbe: Required value: must specify a handler type")],
        ),
        (
            "two handlers",
            |p| p["spec"]["containers"][0]["startupProbe"] = json!({"exec": {"command": ["true"]}, "tcpSocket": {"port": "http"}}),
            vec![format!("{c0}.startupProbe.tcpSocket: Forbidden: may not specify more than 1 handler type")],
        ),
        (
            "host network ports",
            |p| {
                p["spec"]["hostNetwork"] = json!(true);
                p["spec"]["containers"][0]["ports"] = json!([{"containerPort": 80, "hostPort": 81}]);
            },
            vec![format!("{c0}.ports[0].hostPort: Invalid value: 81: must match `containerPort` when `hostNetwork` is true")],
        ),
        (
            "node name",
            |p| p["spec"]["nodeName"] = json!("Node_1"),
            vec!["spec.nodeName: Invalid value: \"Node_1\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')".into()],
        ),
        (
            "active deadline",
            |p| p["spec"]["activeDeadlineSeconds"] = json!(0),
            vec!["spec.activeDeadlineSeconds: Invalid value: 0: must be between 1 and 2147483647, inclusive".into()],
        ),
        (
            "ephemeral containers on create",
            |p| p["spec"]["ephemeralContainers"] = json!([{"name": "debug", "image": "busybox"}]),
            vec!["spec.ephemeralContainers: Forbidden: cannot be set on create".into()],
        ),
        (
            "node name with gates",
            |p| {
                p["spec"]["nodeName"] = json!("node-1");
                p["spec"]["schedulingGates"] = json!([{"name": "example.com/gate"}]);
            },
            vec!["spec.nodeName: Forbidden: cannot be set until all schedulingGates have been cleared".into()],
        ),
        (
            "deletion cost",
            |p| p["metadata"]["annotations"] = json!({"controller.kubernetes.io/pod-deletion-cost": "high"}),
            vec!["metadata.annotations[controller.kubernetes.io/pod-deletion-cost]: Invalid value: \"high\": must be a 32bit integer".into()],
        ),
    ];
    for (name, edit, want) in cases {
        let mut p = pod();
        edit(&mut p);
        assert_eq!(errors(p), want, "case {name}");
    }
}

#[test]
fn update_rules() {
    let s = strategy();
    let mut base = pod();
    base["spec"]["activeDeadlineSeconds"] = json!(100);
    let old = s.admit_create(base, false).unwrap().object;

    let mut image = old.clone();
    image["spec"]["containers"][0]["image"] = json!("nginx:1.27");
    let out = s.admit_update(image, &old, false).unwrap().object;
    assert_eq!(out["metadata"]["generation"], 2);
    // Admission set priority at creation; an update that omits it keeps it.
    let mut no_priority = old.clone();
    no_priority["spec"]
        .as_object_mut()
        .unwrap()
        .remove("priority");
    assert_eq!(
        s.admit_update(no_priority, &old, false).unwrap().object["spec"]["priority"],
        0
    );

    let msgs = |new: Value| -> Vec<String> {
        let err = s.admit_update(new, &old, false).unwrap_err();
        err.causes
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect()
    };
    let mut renamed = old.clone();
    renamed["spec"]["containers"][0]["command"] = json!(["sh"]);
    let m = msgs(renamed);
    assert_eq!(m.len(), 1);
    assert!(m[0].starts_with("spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)\n"), "{m:?}");
    assert!(
        m[0].contains("+ spec.containers[0].command: [\"sh\"]"),
        "{m:?}"
    );

    let mut added = old.clone();
    added["spec"]["containers"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "b", "image": "b"}));
    assert_eq!(
        msgs(added),
        ["spec.containers: Forbidden: pod updates may not add or remove containers"]
    );

    let mut longer = old.clone();
    longer["spec"]["activeDeadlineSeconds"] = json!(200);
    assert_eq!(
        msgs(longer),
        [
            "spec.activeDeadlineSeconds: Invalid value: 200: must be less than or equal to previous value"
        ]
    );
    let mut shorter = old.clone();
    shorter["spec"]["activeDeadlineSeconds"] = json!(50);
    assert!(s.admit_update(shorter, &old, false).is_ok());

    let mut more = old.clone();
    more["spec"]["tolerations"]
        .as_array_mut()
        .unwrap()
        .push(json!({"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}));
    assert!(s.admit_update(more, &old, false).is_ok());
    // Only tolerationSeconds of an existing toleration may change; editing the admission-added
    // ones just makes admission add them again, so use one of the user's.
    let mut with_gpu = old.clone();
    with_gpu["spec"]["tolerations"]
        .as_array_mut()
        .unwrap()
        .push(json!({"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}));
    let old_gpu = s.admit_update(with_gpu, &old, false).unwrap().object;
    let mut seconds = old_gpu.clone();
    seconds["spec"]["tolerations"][0]["tolerationSeconds"] = json!(60);
    assert!(s.admit_update(seconds, &old_gpu, false).is_ok());
    let mut changed = old_gpu.clone();
    changed["spec"]["tolerations"][2]["key"] = json!("tpu");
    let err = s.admit_update(changed, &old_gpu, false).unwrap_err();
    let m: Vec<String> = err
        .causes
        .iter()
        .map(|c| format!("{}: {}", c.field, c.message))
        .collect();
    assert_eq!(
        m,
        [
            "spec.tolerations: Forbidden: existing toleration can not be modified except its tolerationSeconds"
        ]
    );

    let mut annotated = old.clone();
    annotated["metadata"]["annotations"] = json!({"kubernetes.io/config.mirror": "x"});
    annotated["spec"]["nodeName"] = old["spec"]["nodeName"].clone();
    let m = msgs(annotated);
    assert!(m.contains(&"metadata.annotations[kubernetes.io/config.mirror]: Forbidden: may not add mirror pod annotation".to_string()), "{m:?}");
}

#[test]
fn scheduling_gates_may_only_be_removed() {
    let s = strategy();
    let mut gated = pod();
    gated["spec"]["schedulingGates"] =
        json!([{"name": "example.com/a"}, {"name": "example.com/b"}]);
    let old = s.admit_create(gated, false).unwrap().object;
    let mut fewer = old.clone();
    fewer["spec"]["schedulingGates"] = json!([{"name": "example.com/b"}]);
    assert!(s.admit_update(fewer, &old, false).is_ok());
    let mut more = old.clone();
    more["spec"]["schedulingGates"] = json!([{"name": "example.com/c"}]);
    let err = s.admit_update(more, &old, false).unwrap_err();
    assert_eq!(err.causes[0].field, "spec.schedulingGates[0].name");
    assert_eq!(
        err.causes[0].message,
        "Forbidden: only deletion is allowed, but found new scheduling gate 'example.com/c'"
    );
}

#[test]
fn status_subresource() {
    let s = strategy();
    let mut bound = pod();
    bound["spec"]["nodeName"] = json!("node-1");
    bound["spec"]["restartPolicy"] = json!("Never");
    let old = s.admit_create(bound, false).unwrap().object;

    let mut up = old.clone();
    up["spec"]["nodeName"] = json!("node-2");
    up["status"] = json!({"phase": "Running", "podIP": "10.42.0.5", "qosClass": "BestEffort"});
    let out = s.admit_status_update(up, &old).unwrap().object;
    assert_eq!(
        out["spec"]["nodeName"], "node-1",
        "status writes never change the spec"
    );
    assert_eq!(out["status"]["podIPs"], json!([{"ip": "10.42.0.5"}]));
    assert_eq!(out["status"]["phase"], "Running");

    // An empty qosClass is backfilled from the stored one.
    let mut no_qos = old.clone();
    no_qos["status"] = json!({"phase": "Running"});
    assert_eq!(
        s.admit_status_update(no_qos, &old).unwrap().object["status"]["qosClass"],
        "BestEffort"
    );

    let causes = |new: Value, old: &Value| -> Vec<String> {
        let err = s.admit_status_update(new, old).unwrap_err();
        err.causes
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect()
    };
    let mut qos = old.clone();
    qos["status"]["qosClass"] = json!("Guaranteed");
    assert_eq!(
        causes(qos, &old),
        ["status.qosClass: Invalid value: \"Guaranteed\": field is immutable"]
    );
    let mut ip = old.clone();
    ip["status"]["podIPs"] = json!([{"ip": "10.0.0.300"}]);
    assert_eq!(
        causes(ip, &old),
        [
            "status.podIPs[0].ip: Invalid value: \"10.0.0.300\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
        ]
    );
    let mut done = old.clone();
    done["status"]["containerStatuses"] = json!([{"name": "nginx", "image": "nginx", "imageID": "", "ready": false, "restartCount": 0,
        "state": {"terminated": {"exitCode": 0}}}]);
    let finished = s.admit_status_update(done, &old).unwrap().object;
    let mut revived = finished.clone();
    revived["status"]["containerStatuses"][0]["state"] = json!({"running": {}});
    assert_eq!(
        causes(revived, &finished),
        [
            "status.containerStatuses[0].state: Forbidden: may not be transitioned to non-terminated state"
        ]
    );
}

#[test]
fn graceful_deletion() {
    let s = strategy();
    let unbound = create(pod());
    assert_eq!(s.graceful_delete(&unbound, None), None);
    assert_eq!(s.graceful_delete(&unbound, Some(30)), None);
    let mut bound = pod();
    bound["spec"]["nodeName"] = json!("node-1");
    let bound = create(bound);
    assert_eq!(s.graceful_delete(&bound, None), Some(30));
    assert_eq!(s.graceful_delete(&bound, Some(5)), Some(5));
    assert_eq!(s.graceful_delete(&bound, Some(0)), None);
    assert_eq!(s.graceful_delete(&bound, Some(-3)), Some(1));
    let mut done = bound.clone();
    done["status"]["phase"] = json!("Succeeded");
    assert_eq!(s.graceful_delete(&done, None), None);
    // Direct use of the typed strategy gives the same answer.
    let typed: Pod = serde_json::from_value(bound).unwrap();
    assert_eq!(PodStrategy.graceful_delete(&typed, Some(7)), Some(7));
}

#[test]
fn host_network_ports_and_grace_period_update() {
    let s = strategy();
    let mut p = pod();
    p["spec"]["hostNetwork"] = json!(true);
    p["spec"]["containers"][0]["ports"] = json!([{"containerPort": 80}]);
    p["spec"]["terminationGracePeriodSeconds"] = json!(-5);
    let old = s.admit_create(p, false).unwrap().object;
    assert_eq!(old["spec"]["containers"][0]["ports"][0]["hostPort"], 80);
    // A negative grace period may be raised to 1, and to nothing else.
    let mut one = old.clone();
    one["spec"]["terminationGracePeriodSeconds"] = json!(1);
    assert!(s.admit_update(one, &old, false).is_ok());
    let mut ten = old.clone();
    ten["spec"]["terminationGracePeriodSeconds"] = json!(10);
    let err = s.admit_update(ten, &old, false).unwrap_err();
    assert_eq!(err.causes[0].field, "spec");
    assert!(
        err.causes[0]
            .message
            .contains("- spec.terminationGracePeriodSeconds: -5")
    );
}

#[test]
fn pod_ip_is_authoritative_over_pod_ips() {
    let s = strategy();
    let mut bound = pod();
    bound["spec"]["nodeName"] = json!("node-1");
    let old = s.admit_create(bound, false).unwrap().object;
    let mut up = old.clone();
    up["status"]["podIP"] = json!("10.42.0.6");
    up["status"]["podIPs"] = json!([{"ip": "10.42.0.7"}]);
    up["status"]["observedGeneration"] = json!(1);
    let out = s.admit_status_update(up, &old).unwrap().object;
    assert_eq!(out["status"]["podIPs"], json!([{"ip": "10.42.0.6"}]));
    assert_eq!(out["status"]["podIP"], "10.42.0.6");
    assert!(out["status"].get("observedGeneration").is_none());
}
