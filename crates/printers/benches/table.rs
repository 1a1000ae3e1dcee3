//! How long building a Table takes for a large listing. Prints figures; asserts nothing.
//!
//! Run with `cargo bench -p printers` (release build). The target is well under 100 ms for
//! 10,000 pods with `includeObject=Metadata`, the request `kubectl get pods -A` makes.

use std::hint::black_box;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use printers::{IncludeObject, Table, table};
use serde_json::{Value, json};

const PODS: usize = 10_000;
const RUNS: usize = 7;

/// A pod shaped like one a Deployment's ReplicaSet creates and a kubelet reports on, with
/// managed fields, probes, env, volumes and full status.
fn pod(i: usize) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": format!("web-7f9c8d6b5-{i:05}"),
            "generateName": "web-7f9c8d6b5-",
            "namespace": format!("team-{}", i % 20),
            "uid": format!("8d0c5b1e-0000-4000-8000-{i:012}"),
            "resourceVersion": (100_000 + i).to_string(),
            "creationTimestamp": "2025-05-28T09:30:00Z",
            "labels": {"app": "web", "pod-template-hash": "7f9c8d6b5", "tier": "frontend"},
            "annotations": {"kubectl.kubernetes.io/restartedAt": "2025-05-28T09:29:58Z"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7f9c8d6b5",
                                 "uid": "11111111-2222-4333-8444-555555555555", "controller": true,
                                 "blockOwnerDeletion": true}],
            "managedFields": [
                {"manager": "kube-controller-manager", "operation": "Update", "apiVersion": "v1",
                 "time": "2025-05-28T09:30:00Z", "fieldsType": "FieldsV1",
                 "fieldsV1": {"f:metadata": {"f:generateName": {}, "f:labels": {".": {}, "f:app": {}}},
                              "f:spec": {"f:containers": {"k:{\"name\":\"app\"}": {".": {}, "f:image": {}}}}}},
                {"manager": "kubelet", "operation": "Update", "apiVersion": "v1",
                 "time": "2025-05-28T09:30:05Z", "fieldsType": "FieldsV1", "subresource": "status",
                 "fieldsV1": {"f:status": {"f:conditions": {}, "f:containerStatuses": {}, "f:podIP": {}}}}
            ]
        },
        "spec": {
            "containers": [
                {"name": "app", "image": "registry.example.com/web:1.4.2", "imagePullPolicy": "IfNotPresent",
                 "ports": [{"containerPort": 8080, "name": "http", "protocol": "TCP"}],
                 "env": [{"name": "MODE", "value": "production"},
                         {"name": "POD_IP", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "status.podIP"}}}],
                 "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
                 "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080, "scheme": "HTTP"},
                                    "periodSeconds": 10, "timeoutSeconds": 1, "successThreshold": 1, "failureThreshold": 3},
                 "volumeMounts": [{"name": "kube-api-access", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": true}],
                 "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File"},
                {"name": "log", "image": "busybox:1.36", "args": ["tail", "-f", "/var/log/app.log"],
                 "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File"}
            ],
            "volumes": [{"name": "kube-api-access", "projected": {"defaultMode": 420, "sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}}]}}],
            "restartPolicy": "Always", "dnsPolicy": "ClusterFirst", "serviceAccountName": "default",
            "nodeName": format!("node-{}", i % 50), "schedulerName": "default-scheduler",
            "terminationGracePeriodSeconds": 30, "enableServiceLinks": true, "preemptionPolicy": "PreemptLowerPriority",
            "priority": 0,
            "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}]
        },
        "status": {
            "phase": "Running",
            "qosClass": "Burstable",
            "hostIP": "192.168.1.10", "hostIPs": [{"ip": "192.168.1.10"}],
            "podIP": format!("10.42.{}.{}", i / 250, i % 250), "podIPs": [{"ip": format!("10.42.{}.{}", i / 250, i % 250)}],
            "startTime": "2025-05-28T09:30:00Z",
            "conditions": [
                {"type": "PodReadyToStartContainers", "status": "True", "lastTransitionTime": "2025-05-28T09:30:02Z"},
                {"type": "Initialized", "status": "True", "lastTransitionTime": "2025-05-28T09:30:00Z"},
                {"type": "Ready", "status": "True", "lastTransitionTime": "2025-05-28T09:30:05Z"},
                {"type": "ContainersReady", "status": "True", "lastTransitionTime": "2025-05-28T09:30:05Z"},
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": "2025-05-28T09:30:00Z"}
            ],
            "containerStatuses": [
                {"name": "app", "ready": true, "started": true, "restartCount": i % 3,
                 "image": "registry.example.com/web:1.4.2", "imageID": "registry.example.com/web@sha256:abc",
                 "containerID": "runc://0123456789abcdef",
                 "state": {"running": {"startedAt": "2025-05-28T09:30:04Z"}},
                 "lastState": if i.is_multiple_of(3) { json!({}) } else {
                     json!({"terminated": {"exitCode": 137, "reason": "OOMKilled", "startedAt": "2025-05-28T09:30:01Z",
                                           "finishedAt": "2025-05-28T09:30:03Z", "containerID": "runc://fedcba"}}) }},
                {"name": "log", "ready": true, "started": true, "restartCount": 0,
                 "image": "busybox:1.36", "imageID": "busybox@sha256:def", "containerID": "runc://abcdef0123456789",
                 "state": {"running": {"startedAt": "2025-05-28T09:30:04Z"}}, "lastState": {}}
            ]
        }
    })
}

/// Best-of-RUNS wall time of `f`, printed per row.
fn time<T>(label: &str, rows: usize, mut f: impl FnMut() -> T) -> Duration {
    let mut best = Duration::MAX;
    for _ in 0..RUNS {
        let start = Instant::now();
        black_box(f());
        best = best.min(start.elapsed());
    }
    println!(
        "{label:<52} best of {RUNS}: {:>8.2} ms  ({:.2} µs/row)",
        best.as_secs_f64() * 1e3,
        best.as_secs_f64() * 1e6 / rows.max(1) as f64
    );
    best
}

fn main() {
    let pods: Vec<Value> = (0..PODS).map(pod).collect();
    let now: Timestamp = "2025-06-01T12:00:00Z".parse().expect("valid time");
    let list_meta = json!({"resourceVersion": "200000"});
    // The first call builds the column definitions; keep it out of the figures.
    black_box(Table::new(
        "",
        "v1",
        "Pod",
        &pods[..1],
        IncludeObject::None,
        now,
        &list_meta,
    ));

    println!("printers: Table for {PODS} pods (release build; figures, not assertions)");
    for include in [
        IncludeObject::Metadata,
        IncludeObject::None,
        IncludeObject::Object,
    ] {
        time(
            &format!("Table::new, includeObject={include:?}"),
            PODS,
            || Table::new("", "v1", "Pod", &pods, include, now, &list_meta),
        );
    }
    let bytes = serde_json::to_vec(&Table::new(
        "",
        "v1",
        "Pod",
        &pods,
        IncludeObject::Metadata,
        now,
        &list_meta,
    ))
    .map_or(0, |b| b.len());
    time(
        &format!("Table::new + serialize, Metadata ({} KiB)", bytes / 1024),
        PODS,
        || {
            let t = Table::new(
                "",
                "v1",
                "Pod",
                &pods,
                IncludeObject::Metadata,
                now,
                &list_meta,
            );
            serde_json::to_vec(&t).map_or(0, |b| b.len())
        },
    );
    time("table() as serde_json::Value, Metadata", PODS, || {
        table(
            "",
            "v1",
            "Pod",
            &pods,
            IncludeObject::Metadata,
            now,
            list_meta.clone(),
        )
    });
}
