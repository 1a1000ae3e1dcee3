//! End-to-end: bad input gets a Kubernetes `Status` with the right code, and nothing is
//! written. Raw requests go through curl with the admin certificate; kubectl is used where it
//! is the natural client.

// Integration tests unwrap freely: a panic is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use common::Cluster;
use serde_json::{Value, json};

const CM_PATH: &str = "/api/v1/namespaces/default/configmaps";

fn cm(name: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": "v"}})).unwrap()
}

/// The ConfigMaps in `default`, by name.
fn configmaps(c: &Cluster) -> Vec<String> {
    let v = c.get_json(&["configmaps", "-n", "default"]);
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| common::made_by_test(i))
        .map(|i| i["metadata"]["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn malformed_bodies_are_400() {
    let c = Cluster::start();
    let s = c.status(
        "POST",
        CM_PATH,
        Some(b"{\"metadata\": {"),
        Some("application/json"),
        400,
    );
    assert_eq!(s["reason"], "BadRequest");
    c.status(
        "POST",
        CM_PATH,
        Some(b"metadata: [unclosed"),
        Some("application/yaml"),
        400,
    );
    c.status(
        "POST",
        CM_PATH,
        Some(b"[1,2]"),
        Some("application/json"),
        400,
    );
    c.status("POST", CM_PATH, Some(b""), Some("application/json"), 400);
    c.status(
        "POST",
        CM_PATH,
        Some(b"k8s\0garbage"),
        Some("application/vnd.kubernetes.protobuf"),
        400,
    );
    // Wrong types: data must be a map of strings.
    let s = c.status(
        "POST",
        CM_PATH,
        Some(br#"{"metadata":{"name":"t"},"data":{"k":5}}"#),
        Some("application/json"),
        400,
    );
    assert!(s["message"].as_str().unwrap().contains("data"), "{s}");
    c.status(
        "POST",
        CM_PATH,
        Some(br#"{"metadata":{"name":["x"]}}"#),
        Some("application/json"),
        400,
    );
    // An unknown media type is 415.
    c.status("POST", CM_PATH, Some(&cm("t")), Some("text/plain"), 415);
    assert!(configmaps(&c).iter().all(|n| n != "t"));
}

#[test]
fn body_must_agree_with_the_url() {
    let c = Cluster::start();
    c.ok(&["create", "namespace", "other"]);
    let wrong_kind = serde_json::to_vec(
        &json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}}),
    )
    .unwrap();
    c.status(
        "POST",
        CM_PATH,
        Some(&wrong_kind),
        Some("application/json"),
        400,
    );
    let wrong_version = serde_json::to_vec(
        &json!({"apiVersion": "apps/v1", "kind": "ConfigMap", "metadata": {"name": "x"}}),
    )
    .unwrap();
    c.status(
        "POST",
        CM_PATH,
        Some(&wrong_version),
        Some("application/json"),
        400,
    );
    let wrong_ns = serde_json::to_vec(&json!({"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "x", "namespace": "other"}})).unwrap();
    let s = c.status(
        "POST",
        CM_PATH,
        Some(&wrong_ns),
        Some("application/json"),
        400,
    );
    assert!(s["message"].as_str().unwrap().contains("namespace"), "{s}");
    c.ok(&["create", "configmap", "real"]);
    let renamed = cm("other-name");
    let s = c.status(
        "PUT",
        &format!("{CM_PATH}/real"),
        Some(&renamed),
        Some("application/json"),
        400,
    );
    assert!(
        s["message"]
            .as_str()
            .unwrap()
            .contains("does not match the name on the URL"),
        "{s}"
    );
    assert_eq!(configmaps(&c), ["real"]);
}

#[test]
fn unknown_fields_strict_and_warn() {
    let c = Cluster::start();
    let body = br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"u","bogus":1},"data":{},"extra":true}"#;
    let s = c.status(
        "POST",
        &format!("{CM_PATH}?fieldValidation=Strict"),
        Some(body),
        Some("application/json"),
        400,
    );
    let msg = s["message"].as_str().unwrap();
    assert!(
        msg.contains("unknown field \"extra\"") && msg.contains("unknown field \"metadata.bogus\""),
        "{msg}"
    );
    let dup = br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"u"},"data":{"a":"1","a":"2"}}"#;
    let s = c.status(
        "POST",
        &format!("{CM_PATH}?fieldValidation=Strict"),
        Some(dup),
        Some("application/json"),
        400,
    );
    assert!(
        s["message"]
            .as_str()
            .unwrap()
            .contains("duplicate field \"data.a\""),
        "{s}"
    );
    assert!(configmaps(&c).is_empty());
    // Default (Warn): created, unknown fields dropped.
    let (code, text) = c.curl("POST", CM_PATH, Some(body), Some("application/json"));
    assert_eq!(code, 201, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert!(v.get("extra").is_none() && v["metadata"].get("bogus").is_none());
    // kubectl validates strictly by default.
    let manifest = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: k\nsurprise: 1\n";
    let err = c.kubectl_stdin(&["apply", "-f", "-"], manifest);
    assert!(!err.status.success());
    let stderr = String::from_utf8_lossy(&err.stderr);
    assert!(stderr.contains("surprise"), "{stderr}");
    assert!(c.fails(&["get", "configmap", "k"]).contains("NotFound"));
}

#[test]
fn oversize_body_is_413() {
    let c = Cluster::start();
    let big = format!(
        r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"big"}},"data":{{"k":"{}"}}}}"#,
        "x".repeat(3 * 1024 * 1024 + 10)
    );
    let s = c.status(
        "POST",
        CM_PATH,
        Some(big.as_bytes()),
        Some("application/json"),
        413,
    );
    assert_eq!(s["reason"], "RequestEntityTooLarge");
    assert!(configmaps(&c).is_empty());
}

#[test]
fn conflicts_and_missing_objects() {
    let c = Cluster::start();
    c.ok(&["create", "configmap", "a"]);
    let s = c.status(
        "POST",
        CM_PATH,
        Some(&cm("a")),
        Some("application/json"),
        409,
    );
    assert_eq!(s["reason"], "AlreadyExists");
    assert_eq!(s["details"]["name"], "a");
    assert_eq!(s["message"], "configmaps \"a\" already exists");

    let current = c.get_json(&["configmap", "a"]);
    let stale = serde_json::to_vec(&json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "a", "resourceVersion": "1"},
        "data": {"changed": "yes"},
    }))
    .unwrap();
    let s = c.status(
        "PUT",
        &format!("{CM_PATH}/a"),
        Some(&stale),
        Some("application/json"),
        409,
    );
    assert_eq!(s["reason"], "Conflict");
    assert!(
        s["message"]
            .as_str()
            .unwrap()
            .contains("the object has been modified"),
        "{s}"
    );
    assert_eq!(
        c.get_json(&["configmap", "a"])["metadata"]["resourceVersion"],
        current["metadata"]["resourceVersion"]
    );

    let s = c.status("GET", &format!("{CM_PATH}/nope"), None, None, 404);
    assert_eq!(s["reason"], "NotFound");
    assert_eq!(s["message"], "configmaps \"nope\" not found");
    c.status("DELETE", &format!("{CM_PATH}/nope"), None, None, 404);
    c.status(
        "PUT",
        &format!("{CM_PATH}/nope"),
        Some(&cm("nope")),
        Some("application/json"),
        404,
    );
    c.status(
        "PATCH",
        &format!("{CM_PATH}/nope"),
        Some(b"{}"),
        Some("application/merge-patch+json"),
        404,
    );
    c.status("GET", "/apis/nosuch.group/v1/things", None, None, 404);
    c.status(
        "GET",
        "/api/v1/namespaces/default/nosuchresource",
        None,
        None,
        404,
    );
    // Creating in a missing namespace is a 404 for the namespace.
    let s = c.status(
        "POST",
        "/api/v1/namespaces/ghost/configmaps",
        Some(&cm("x")),
        Some("application/json"),
        404,
    );
    assert_eq!(s["details"]["kind"], "namespaces");
    assert!(
        c.fails(&["create", "configmap", "x", "-n", "ghost"])
            .contains("not found")
    );
}

#[test]
fn invalid_selectors_are_400() {
    let c = Cluster::start();
    c.status(
        "GET",
        &format!("{CM_PATH}?labelSelector=a%20in%20(b"),
        None,
        None,
        400,
    );
    c.status(
        "GET",
        &format!("{CM_PATH}?labelSelector=-bad-=x"),
        None,
        None,
        400,
    );
    let s = c.status(
        "GET",
        "/api/v1/pods?fieldSelector=spec.bogus%3Dx",
        None,
        None,
        400,
    );
    assert!(
        s["message"]
            .as_str()
            .unwrap()
            .contains("field label not supported"),
        "{s}"
    );
    c.status(
        "GET",
        &format!("{CM_PATH}?fieldSelector=nonsense"),
        None,
        None,
        400,
    );
    assert!(
        c.fails(&["get", "pods", "-l", "a in (b"])
            .contains("unable to parse requirement")
    );
    c.status(
        "GET",
        &format!("{CM_PATH}?resourceVersion=abc"),
        None,
        None,
        400,
    );
    c.status(
        "GET",
        &format!("{CM_PATH}?limit=5&continue=garbage"),
        None,
        None,
        400,
    );
}

#[test]
fn invalid_objects_are_422_with_causes() {
    let c = Cluster::start();
    let s = c.status(
        "POST",
        CM_PATH,
        Some(&cm("Not_Valid")),
        Some("application/json"),
        422,
    );
    assert_eq!(s["reason"], "Invalid");
    assert_eq!(s["details"]["causes"][0]["field"], "metadata.name");
    assert_eq!(s["details"]["causes"][0]["reason"], "FieldValueInvalid");
    let pod = br#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"c"}]}}"#;
    let s = c.status(
        "POST",
        "/api/v1/namespaces/default/pods",
        Some(pod),
        Some("application/json"),
        422,
    );
    let causes = s["details"]["causes"].as_array().unwrap();
    assert!(
        causes.iter().any(
            |c| c["field"] == "spec.containers[0].image" && c["reason"] == "FieldValueRequired"
        ),
        "{s}"
    );
    let no_containers =
        br#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[]}}"#;
    let s = c.status(
        "POST",
        "/api/v1/namespaces/default/pods",
        Some(no_containers),
        Some("application/json"),
        422,
    );
    assert!(
        s["message"]
            .as_str()
            .unwrap()
            .contains("spec.containers: Required value"),
        "{s}"
    );
    let labels = br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"l","labels":{"bad key!":"v"}}}"#;
    let s = c.status("POST", CM_PATH, Some(labels), Some("application/json"), 422);
    assert_eq!(s["details"]["causes"][0]["field"], "metadata.labels");
    // Immutable fields: a deployment's selector.
    c.ok(&["create", "deployment", "d", "--image=nginx"]);
    let err = c.fails(&["patch", "deployment", "d", "-p", r#"{"spec":{"selector":{"matchLabels":{"app":"other"}},"template":{"metadata":{"labels":{"app":"other"}}}}}"#]);
    assert!(err.contains("field is immutable"), "{err}");
    // Nothing half-written.
    assert!(c.fails(&["get", "pod", "p"]).contains("NotFound"));
    assert_eq!(
        c.get_json(&["deployment", "d"])["spec"]["selector"]["matchLabels"]["app"],
        "d"
    );
}

#[test]
fn unsupported_methods_and_media() {
    let c = Cluster::start();
    c.status(
        "POST",
        "/api/v1/pods",
        Some(b"{}"),
        Some("application/json"),
        404,
    );
    c.ok(&["create", "configmap", "m"]);
    let s = c.status(
        "PATCH",
        &format!("{CM_PATH}/m"),
        Some(b"{}"),
        Some("application/json"),
        415,
    );
    assert_eq!(s["reason"], "UnsupportedMediaType");
    c.status(
        "PATCH",
        &format!("{CM_PATH}/m"),
        Some(b"{\"op\":1}"),
        Some("application/json-patch+json"),
        400,
    );
    c.status(
        "PATCH",
        &format!("{CM_PATH}/m"),
        Some(b"not json"),
        Some("application/merge-patch+json"),
        400,
    );
}
