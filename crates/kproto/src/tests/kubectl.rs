//! Bodies captured from real kubectl v1.33.1 (`testdata/kubectl-1.33/*.pb`, recorded with a
//! plain HTTP listener standing in for the apiserver).
//!
//! For every command that has a `--dry-run=client -o json` form, the same command's JSON output
//! is stored next to the capture (`*.json`): that is Go's own JSON encoding of the very object
//! kubectl sent as protobuf, so the decoder must reproduce it exactly (apart from the `null`s
//! Go writes for zero timestamps, which the decoder leaves out).

use serde_json::{Value, json};

use crate::decode;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/kubectl-1.33");

fn read(name: &str) -> Vec<u8> {
    let path = format!("{DIR}/{name}");
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn decoded(name: &str) -> Value {
    decode(&read(&format!("{name}.pb"))).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// `v` without `null` members (Go's rendering of zero `Time`s).
fn without_nulls(v: Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, without_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(without_nulls).collect()),
        other => other,
    }
}

#[test]
fn every_capture_matches_kubectls_own_json_for_the_same_object() {
    let mut names: Vec<String> = std::fs::read_dir(DIR)
        .expect("testdata")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|n| n.strip_suffix(".json").map(str::to_string))
        .collect();
    names.sort();
    assert!(names.len() >= 25, "only {} JSON twins", names.len());
    for name in names {
        let want: Value = serde_json::from_slice(&read(&format!("{name}.json"))).expect("json");
        let got = decoded(&name);
        let want = without_nulls(want);
        assert_eq!(got, want, "{name}\n got: {got:#}\nwant: {want:#}");
    }
}

#[test]
fn every_capture_decodes() {
    let mut count = 0;
    for entry in std::fs::read_dir(DIR).expect("testdata") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "pb") {
            let body = std::fs::read(&path).expect("read");
            let v = decode(&body).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(v["kind"].is_string() && v["apiVersion"].is_string());
            count += 1;
        }
    }
    assert_eq!(count, 34);
}

#[test]
fn create_namespace_is_exactly_this() {
    // The smallest real body, byte for byte as kubectl sent it.
    let body = read("create-namespace.pb");
    assert_eq!(body.len(), 52);
    assert_eq!(
        decode(&body).expect("decodes"),
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}, "spec": {}, "status": {}})
    );
}

#[test]
fn commands_without_a_dry_run_form() {
    let cases = [
        (
            "create-token",
            json!({
                "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                "metadata": {},
                "spec": {"audiences": ["a"], "expirationSeconds": 3600},
                "status": {"token": ""},
            }),
        ),
        (
            "create-token-bound",
            json!({
                "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                "metadata": {},
                "spec": {"boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": "p0", "uid": "u-2"}},
                "status": {"token": ""},
            }),
        ),
        (
            "auth-can-i",
            json!({
                "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
                "metadata": {},
                "spec": {"resourceAttributes": {"namespace": "default", "verb": "get", "resource": "pods"}},
                "status": {"allowed": false},
            }),
        ),
        (
            "auth-can-i-list",
            json!({
                "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectRulesReview",
                "metadata": {},
                "spec": {"namespace": "default"},
                "status": {"incomplete": false},
            }),
        ),
        (
            "auth-whoami",
            json!({
                "apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview",
                "metadata": {},
                "status": {"userInfo": {}},
            }),
        ),
        (
            // `kubectl drain --disable-eviction` deletes pods through the typed client, with
            // empty DeleteOptions as a protobuf body.
            "drain-disable-eviction-delete",
            json!({"apiVersion": "v1", "kind": "DeleteOptions"}),
        ),
        (
            "debug-node",
            json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "node-debugger-n1-vqtgx"},
                "spec": {
                    "containers": [{
                        "name": "debugger",
                        "image": "busybox",
                        "resources": {},
                        "terminationMessagePolicy": "File",
                        "volumeMounts": [{"name": "host-root", "mountPath": "/host"}],
                    }],
                    "hostIPC": true,
                    "hostNetwork": true,
                    "hostPID": true,
                    "nodeName": "n1",
                    "restartPolicy": "Never",
                    "tolerations": [{"operator": "Exists"}],
                    "volumes": [{"name": "host-root", "hostPath": {"path": "/"}}],
                },
                "status": {},
            }),
        ),
    ];
    for (name, want) in cases {
        let got = decoded(name);
        assert_eq!(got, want, "{name}\n got: {got:#}\nwant: {want:#}");
    }
}

#[test]
fn certificate_approval_is_a_whole_csr_with_the_new_condition() {
    let got = decoded("certificate-approve");
    assert_eq!(
        got,
        json!({
            "apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
            "metadata": {
                "name": "csr1", "uid": "u-1", "resourceVersion": "1",
                "creationTimestamp": "2024-01-01T00:00:00Z",
                "labels": {"app": "csr1"},
            },
            "spec": {
                // `request` is required, so Go writes the empty bytes too.
                "request": "",
                "signerName": "kubernetes.io/kube-apiserver-client",
                "usages": ["client auth"],
            },
            "status": {"conditions": [{
                "type": "Approved",
                "status": "True",
                "reason": "KubectlApprove",
                "message": "This CSR was approved by kubectl certificate approve.",
                "lastUpdateTime": "2026-11-22T03:49:32Z",
            }]},
        }),
        "{got:#}"
    );
}
