//! The patches kubectl sends — client-side `apply` (three-way patches with `$setElementOrder`,
//! `$retainKeys`, deletion directives), `patch`, `edit`, `set image`, `rollout restart` —
//! applied to a live Deployment and Service as the server stores them (defaults filled in).

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use serde_json::{Value, json};

use super::*;

fn live_deployment() -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "namespace": "default",
            "uid": "0b1c",
            "resourceVersion": "41",
            "generation": 3,
            "labels": {"app": "web", "tier": "frontend"},
            "annotations": {
                "deployment.kubernetes.io/revision": "3",
                "kubectl.kubernetes.io/last-applied-configuration": "{\"old\":true}"
            }
        },
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "revisionHistoryLimit": 10,
            "progressDeadlineSeconds": 600,
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [{
                        "name": "app",
                        "image": "nginx:1.24",
                        "imagePullPolicy": "IfNotPresent",
                        "ports": [{"containerPort": 80, "protocol": "TCP"}],
                        "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                        "resources": {"limits": {"cpu": "1"}},
                        "terminationMessagePath": "/dev/termination-log",
                        "terminationMessagePolicy": "File"
                    }],
                    "volumes": [{"name": "data", "emptyDir": {}}],
                    "restartPolicy": "Always",
                    "dnsPolicy": "ClusterFirst",
                    "schedulerName": "default-scheduler",
                    "securityContext": {},
                    "terminationGracePeriodSeconds": 30
                }
            }
        },
        "status": {"observedGeneration": 3, "replicas": 2, "conditions": [{"type": "Available", "status": "True"}]}
    })
}

/// `want` is the live object with the values at the given JSON pointers replaced (or removed,
/// for `None`).
fn live_with(changes: &[(&str, Option<Value>)]) -> Value {
    let mut want = live_deployment();
    for (pointer, value) in changes {
        match value {
            Some(value) => *want.pointer_mut(pointer).expect(pointer) = value.clone(),
            None => {
                let (parent, key) = pointer.rsplit_once('/').expect(pointer);
                let removed = want
                    .pointer_mut(parent)
                    .and_then(Value::as_object_mut)
                    .and_then(|m| m.remove(key));
                assert!(removed.is_some(), "{pointer}");
            }
        }
    }
    want
}

const CONTAINER: &str = "/spec/template/spec/containers/0";

fn template_spec(spec: Value) -> Value {
    json!({"spec": {"template": {"spec": spec}}})
}

#[test]
fn kubectl_apply_three_way_patches() {
    let cases: Vec<(&str, Value, Value)> = vec![
        (
            "image changed",
            json!({
                "metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{\"new\":true}"}},
                "spec": {"template": {"spec": {"$setElementOrder/containers": [{"name": "app"}], "containers": [{"image": "nginx:1.25", "name": "app"}]}}}
            }),
            live_with(&[
                (
                    "/metadata/annotations/kubectl.kubernetes.io~1last-applied-configuration",
                    Some(json!("{\"new\":true}")),
                ),
                (&format!("{CONTAINER}/image"), Some(json!("nginx:1.25"))),
            ]),
        ),
        (
            "env var removed",
            template_spec(json!({
                "$setElementOrder/containers": [{"name": "app"}],
                "containers": [{"$setElementOrder/env": [{"name": "A"}], "env": [{"$patch": "delete", "name": "B"}], "name": "app"}]
            })),
            live_with(&[(
                &format!("{CONTAINER}/env"),
                Some(json!([{"name": "A", "value": "1"}])),
            )]),
        ),
        (
            "env var added between two others",
            template_spec(json!({
                "$setElementOrder/containers": [{"name": "app"}],
                "containers": [{"$setElementOrder/env": [{"name": "A"}, {"name": "C"}, {"name": "B"}], "env": [{"name": "C", "value": "3"}], "name": "app"}]
            })),
            live_with(&[(
                &format!("{CONTAINER}/env"),
                Some(
                    json!([{"name": "A", "value": "1"}, {"name": "C", "value": "3"}, {"name": "B", "value": "2"}]),
                ),
            )]),
        ),
        (
            "label removed",
            json!({"metadata": {"labels": {"tier": null}}}),
            live_with(&[("/metadata/labels/tier", None)]),
        ),
        (
            "sidecar container added",
            template_spec(json!({
                "$setElementOrder/containers": [{"name": "app"}, {"name": "sidecar"}],
                "containers": [{"image": "busybox", "name": "sidecar"}]
            })),
            {
                let mut want = live_deployment();
                let containers = want
                    .pointer_mut("/spec/template/spec/containers")
                    .and_then(Value::as_array_mut)
                    .expect("containers");
                containers.push(json!({"image": "busybox", "name": "sidecar"}));
                want
            },
        ),
        (
            "container renamed (one deleted, one added)",
            template_spec(json!({
                "$setElementOrder/containers": [{"name": "web"}],
                "containers": [{"image": "nginx:1.24", "name": "web"}, {"$patch": "delete", "name": "app"}]
            })),
            live_with(&[(
                "/spec/template/spec/containers",
                Some(json!([{"image": "nginx:1.24", "name": "web"}])),
            )]),
        ),
        (
            "container port changed",
            template_spec(json!({
                "$setElementOrder/containers": [{"name": "app"}],
                "containers": [{
                    "$setElementOrder/ports": [{"containerPort": 8080}],
                    "name": "app",
                    "ports": [{"containerPort": 8080, "protocol": "TCP"}, {"$patch": "delete", "containerPort": 80}]
                }]
            })),
            live_with(&[(
                &format!("{CONTAINER}/ports"),
                Some(json!([{"containerPort": 8080, "protocol": "TCP"}])),
            )]),
        ),
        (
            "limits removed from resources",
            template_spec(json!({
                "$setElementOrder/containers": [{"name": "app"}],
                "containers": [{"name": "app", "resources": {"limits": null}}]
            })),
            live_with(&[(&format!("{CONTAINER}/resources"), Some(json!({})))]),
        ),
        (
            "strategy switched to Recreate (retainKeys clears the defaulted rollingUpdate)",
            json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}),
            live_with(&[("/spec/strategy", Some(json!({"type": "Recreate"})))]),
        ),
        (
            "volume switched from emptyDir to configMap",
            template_spec(json!({
                "$setElementOrder/volumes": [{"name": "data"}],
                "volumes": [{"$retainKeys": ["configMap", "name"], "configMap": {"name": "cfg"}, "emptyDir": null, "name": "data"}]
            })),
            live_with(&[(
                "/spec/template/spec/volumes",
                Some(json!([{"name": "data", "configMap": {"name": "cfg"}}])),
            )]),
        ),
    ];
    for (name, patch, want) in cases {
        let got = strategic_merge_patch::<Deployment>(&live_deployment(), &patch);
        assert_eq!(got, Ok(want), "case: {name}");
    }
}

#[test]
fn kubectl_apply_keeps_what_others_added() {
    // Someone else (a webhook, another manager) inserted env X; apply adds C at the end of its
    // own list. X stays where it was relative to A and B.
    let mut live = live_deployment();
    *live.pointer_mut(&format!("{CONTAINER}/env")).expect("env") = json!([{"name": "A", "value": "1"}, {"name": "X", "value": "x"}, {"name": "B", "value": "2"}]);
    let patch = template_spec(json!({
        "$setElementOrder/containers": [{"name": "app"}],
        "containers": [{"$setElementOrder/env": [{"name": "A"}, {"name": "B"}, {"name": "C"}], "env": [{"name": "C", "value": "3"}], "name": "app"}]
    }));
    let got = strategic_merge_patch::<Deployment>(&live, &patch);
    let env = got.map(|v| v.pointer(&format!("{CONTAINER}/env")).cloned());
    assert_eq!(
        env,
        Ok(Some(json!([
            {"name": "A", "value": "1"}, {"name": "X", "value": "x"},
            {"name": "B", "value": "2"}, {"name": "C", "value": "3"}
        ])))
    );
}

#[test]
fn kubectl_patch_edit_set_image_and_restart() {
    let cases: Vec<(&str, Value, Value)> = vec![
        (
            "kubectl patch -p '{\"spec\":{\"replicas\":5}}'",
            json!({"spec": {"replicas": 5}}),
            live_with(&[("/spec/replicas", Some(json!(5)))]),
        ),
        (
            "kubectl set image (no order directive)",
            template_spec(json!({"containers": [{"image": "nginx:1.26", "name": "app"}]})),
            live_with(&[(&format!("{CONTAINER}/image"), Some(json!("nginx:1.26")))]),
        ),
        (
            "kubectl rollout restart",
            json!({"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "2025-01-01T00:00:00Z"}}}}}),
            live_with(&[(
                "/spec/template/metadata",
                Some(
                    json!({"labels": {"app": "web"}, "annotations": {"kubectl.kubernetes.io/restartedAt": "2025-01-01T00:00:00Z"}}),
                ),
            )]),
        ),
        (
            "kubectl edit: two-way patch dropping a label and the env list",
            json!({
                "metadata": {"labels": {"tier": null}},
                "spec": {"template": {"spec": {"$setElementOrder/containers": [{"name": "app"}], "containers": [{"env": null, "name": "app"}]}}}
            }),
            live_with(&[
                ("/metadata/labels/tier", None),
                (&format!("{CONTAINER}/env"), None),
            ]),
        ),
    ];
    for (name, patch, want) in cases {
        let got = strategic_merge_patch::<Deployment>(&live_deployment(), &patch);
        assert_eq!(got, Ok(want), "case: {name}");
    }
}

#[test]
fn finalizer_removal_by_apply() {
    let live = json!({"metadata": {"name": "x", "finalizers": ["example.com/a", "example.com/b"]}});
    let patch = json!({"metadata": {
        "$setElementOrder/finalizers": ["example.com/a"],
        "$deleteFromPrimitiveList/finalizers": ["example.com/b"]
    }});
    assert_eq!(
        strategic_merge_patch::<Deployment>(&live, &patch),
        Ok(json!({"metadata": {"name": "x", "finalizers": ["example.com/a"]}}))
    );
}

#[test]
fn service_apply_keeps_allocated_node_port() {
    // The reason kubectl uses strategic merge patch: the allocated nodePort survives a change
    // to another field of the same port.
    let live = json!({"spec": {"type": "NodePort", "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP", "nodePort": 30001}]}});
    let patch = json!({"spec": {"$setElementOrder/ports": [{"port": 80}], "ports": [{"port": 80, "targetPort": 9090}]}});
    assert_eq!(
        strategic_merge_patch::<Service>(&live, &patch),
        Ok(
            json!({"spec": {"type": "NodePort", "ports": [{"port": 80, "targetPort": 9090, "protocol": "TCP", "nodePort": 30001}]}})
        )
    );
}
