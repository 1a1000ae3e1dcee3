//! End-to-end: a fresh server, discovery, health, authentication, and the basic verbs on
//! namespaced and cluster-scoped resources, all through the real kubectl.

// Integration tests unwrap freely: a panic is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use common::Cluster;
use serde_json::Value;

#[test]
fn starts_with_builtin_namespaces_and_kubernetes_service() {
    let c = Cluster::start();
    let ns = c.get_json(&["namespaces"]);
    let names: Vec<&str> = ns["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["metadata"]["name"].as_str().unwrap())
        .collect();
    for want in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        assert!(names.contains(&want), "missing namespace {want}: {names:?}");
    }
    let default = c.get_json(&["namespace", "default"]);
    assert_eq!(default["status"]["phase"], "Active");
    assert_eq!(default["spec"]["finalizers"][0], "kubernetes");
    assert_eq!(
        default["metadata"]["labels"]["kubernetes.io/metadata.name"],
        "default"
    );

    let svc = c.get_json(&["service", "kubernetes", "-n", "default"]);
    assert_eq!(svc["spec"]["clusterIP"], "10.43.0.1");
    assert_eq!(svc["spec"]["ports"][0]["port"], 443);

    let out = c.ok(&["get", "namespaces"]);
    let header: Vec<&str> = out.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "STATUS", "AGE"]);
    assert!(
        out.lines()
            .any(|l| l.starts_with("kube-system") && l.contains("Active")),
        "{out}"
    );
}

#[test]
fn version_health_and_discovery() {
    let c = Cluster::start();
    let (code, body) = c.curl_as(true, "GET", "/version", None, None);
    assert_eq!(code, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["major"], "1");
    assert_eq!(v["minor"], "33");
    for path in ["/healthz", "/livez", "/readyz"] {
        assert_eq!(
            c.curl_as(true, "GET", path, None, None),
            (200, "ok".to_string()),
            "{path}"
        );
    }
    let out = c.ok(&["version", "-o", "json"]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["serverVersion"]["minor"], "33");

    let versions = c.ok(&["api-versions"]);
    for gv in [
        "v1",
        "apps/v1",
        "batch/v1",
        "autoscaling/v1",
        "autoscaling/v2",
        "policy/v1",
        "networking.k8s.io/v1",
        "rbac.authorization.k8s.io/v1",
        "storage.k8s.io/v1",
        "coordination.k8s.io/v1",
        "discovery.k8s.io/v1",
        "scheduling.k8s.io/v1",
        "events.k8s.io/v1",
    ] {
        assert!(
            versions.lines().any(|l| l == gv),
            "api-versions lacks {gv}:\n{versions}"
        );
    }
    let resources = c.ok(&["api-resources"]);
    let pods = resources
        .lines()
        .find(|l| l.starts_with("pods "))
        .unwrap_or_else(|| panic!("{resources}"));
    let cols: Vec<&str> = pods.split_whitespace().collect();
    assert_eq!(cols, ["pods", "po", "v1", "true", "Pod"]);
    let deploy = resources
        .lines()
        .find(|l| l.starts_with("deployments "))
        .unwrap();
    assert_eq!(
        deploy.split_whitespace().collect::<Vec<_>>(),
        ["deployments", "deploy", "apps/v1", "true", "Deployment"]
    );
    let nodes = resources.lines().find(|l| l.starts_with("nodes ")).unwrap();
    assert!(nodes.contains("false"), "{nodes}");
    // Every resource of the issue is listed.
    let count = resources.lines().count() - 1;
    assert!(count >= 39, "only {count} resources:\n{resources}");
}

#[test]
fn requests_without_a_client_certificate_are_unauthorized() {
    let c = Cluster::start();
    let (code, body) = c.curl_as(true, "GET", "/api/v1/namespaces", None, None);
    assert_eq!(code, 401, "{body}");
    let s: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(s["kind"], "Status");
    assert_eq!(s["reason"], "Unauthorized");
    let (code, _) = c.curl_as(
        true,
        "POST",
        "/api/v1/namespaces",
        Some(br#"{"metadata":{"name":"x"}}"#),
        Some("application/json"),
    );
    assert_eq!(code, 401);
    // Nothing was written.
    assert!(c.fails(&["get", "namespace", "x"]).contains("NotFound"));
}

#[test]
fn configmap_lifecycle_with_kubectl() {
    let c = Cluster::start();
    c.ok(&["create", "namespace", "demo"]);
    c.ok(&[
        "create",
        "configmap",
        "settings",
        "-n",
        "demo",
        "--from-literal=color=blue",
        "--from-literal=size=3",
    ]);
    let cm = c.get_json(&["configmap", "settings", "-n", "demo"]);
    assert_eq!(cm["data"]["color"], "blue");
    assert!(!cm["metadata"]["uid"].as_str().unwrap().is_empty());
    assert!(
        cm["metadata"]["creationTimestamp"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    let rv: i64 = cm["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(rv > 0);

    assert!(
        c.fails(&["create", "configmap", "settings", "-n", "demo"])
            .contains("already exists")
    );

    let out = c.ok(&["get", "configmaps", "-n", "demo"]);
    assert!(
        out.lines()
            .next()
            .unwrap()
            .split_whitespace()
            .eq(["NAME", "DATA", "AGE"]),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("settings") && l.split_whitespace().nth(1) == Some("2")),
        "{out}"
    );

    c.ok(&["label", "configmap", "settings", "-n", "demo", "tier=web"]);
    c.ok(&[
        "annotate",
        "configmap",
        "settings",
        "-n",
        "demo",
        "note=hello",
    ]);
    let cm = c.get_json(&["configmap", "settings", "-n", "demo"]);
    assert_eq!(cm["metadata"]["labels"]["tier"], "web");
    assert_eq!(cm["metadata"]["annotations"]["note"], "hello");
    let rv2: i64 = cm["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(rv2 > rv);

    let listed = c.get_json(&["configmaps", "-n", "demo", "-l", "tier=web"]);
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    let none = c.get_json(&["configmaps", "-n", "demo", "-l", "tier=db"]);
    assert_eq!(none["items"].as_array().unwrap().len(), 0);

    let out = c.ok(&["delete", "configmap", "settings", "-n", "demo"]);
    assert!(out.contains("configmap \"settings\" deleted"), "{out}");
    assert!(
        c.fails(&["get", "configmap", "settings", "-n", "demo"])
            .contains("NotFound")
    );
}

#[test]
fn objects_and_certificates_survive_restart() {
    let mut c = Cluster::start();
    c.ok(&["create", "namespace", "keep"]);
    c.ok(&[
        "create",
        "configmap",
        "a",
        "-n",
        "keep",
        "--from-literal=k=v",
    ]);
    let before = c.get_json(&["configmap", "a", "-n", "keep"]);
    let ca_before = std::fs::read_to_string(c.data_dir().join("tls/ca.crt")).unwrap();
    c.restart();
    let after = c.get_json(&["configmap", "a", "-n", "keep"]);
    assert_eq!(before["metadata"]["uid"], after["metadata"]["uid"]);
    assert_eq!(
        before["metadata"]["resourceVersion"],
        after["metadata"]["resourceVersion"]
    );
    assert_eq!(
        ca_before,
        std::fs::read_to_string(c.data_dir().join("tls/ca.crt")).unwrap()
    );
    // New writes continue the revision sequence.
    c.ok(&["create", "configmap", "b", "-n", "keep"]);
    let b = c.get_json(&["configmap", "b", "-n", "keep"]);
    let rv_a: i64 = after["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let rv_b: i64 = b["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(rv_b > rv_a);
}
