//! End-to-end: the `binding` subresource a scheduler uses, and the `eviction` subresource that
//! respects PodDisruptionBudgets (what `kubectl drain` uses).

// Integration tests unwrap freely: a panic is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use common::Cluster;
use serde_json::{Value, json};

fn post(c: &Cluster, path: &str, body: &Value) -> (u16, Value) {
    let (code, text) = c.curl(
        "POST",
        path,
        Some(&serde_json::to_vec(body).unwrap()),
        Some("application/json"),
    );
    (code, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn pod(name: &str, labels: Value) -> String {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": {"containers": [{"name": "c", "image": "busybox"}], "terminationGracePeriodSeconds": 0},
    })
    .to_string()
}

#[test]
fn binding_assigns_a_pod_once() {
    let c = Cluster::start();
    c.ok_stdin(&["create", "-f", "-"], &pod("p", json!({})));
    let binding = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p", "annotations": {"why": "test"}}, "target": {"kind": "Node", "name": "n1"}});
    let (code, status) = post(&c, "/api/v1/namespaces/default/pods/p/binding", &binding);
    assert_eq!(
        (code, status["status"].as_str()),
        (201, Some("Success")),
        "{status}"
    );
    let p = c.get_json(&["pod", "p"]);
    assert_eq!(p["spec"]["nodeName"], "n1");
    assert_eq!(p["metadata"]["annotations"]["why"], "test");
    let scheduled = p["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "PodScheduled")
        .unwrap();
    assert_eq!(scheduled["status"], "True");
    let wide = c.ok(&["get", "pod", "p", "-o", "wide"]);
    assert!(wide.lines().nth(1).unwrap().contains("n1"), "{wide}");

    // A second binding is a conflict; the first node stays.
    let again = json!({"metadata": {"name": "p"}, "target": {"name": "n2"}});
    let (code, status) = post(&c, "/api/v1/namespaces/default/pods/p/binding", &again);
    assert_eq!(code, 409, "{status}");
    assert!(
        status["message"]
            .as_str()
            .unwrap()
            .contains("already assigned to node \"n1\""),
        "{status}"
    );
    assert_eq!(c.get_json(&["pod", "p"])["spec"]["nodeName"], "n1");
    // Bad bindings.
    c.ok_stdin(&["create", "-f", "-"], &pod("q", json!({})));
    let (code, status) = post(
        &c,
        "/api/v1/namespaces/default/pods/q/binding",
        &json!({"target": {"kind": "Node"}}),
    );
    assert_eq!(code, 422, "{status}");
    assert_eq!(status["details"]["causes"][0]["field"], "target.name");
    let (code, _) = post(
        &c,
        "/api/v1/namespaces/default/pods/missing/binding",
        &json!({"target": {"name": "n1"}}),
    );
    assert_eq!(code, 404);
    // Discovery lists the subresources.
    let resources = c.ok(&["get", "--raw", "/api/v1"]);
    let v: Value = serde_json::from_str(&resources).unwrap();
    let names: Vec<&str> = v["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"pods/binding") && names.contains(&"pods/eviction"),
        "{names:?}"
    );
}

/// A running pod bound to a node, labelled `app=web`.
fn running_pod(c: &Cluster, name: &str) {
    c.ok_stdin(&["create", "-f", "-"], &pod(name, json!({"app": "web"})));
    let (code, _) = post(
        c,
        &format!("/api/v1/namespaces/default/pods/{name}/binding"),
        &json!({"target": {"name": "n1"}}),
    );
    assert_eq!(code, 201);
    c.ok(&[
        "patch",
        "pod",
        name,
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"phase":"Running","conditions":[{"type":"Ready","status":"True"}]}}"#,
    ]);
}

#[test]
fn eviction_respects_disruption_budgets() {
    let c = Cluster::start();
    running_pod(&c, "a");
    running_pod(&c, "b");
    c.ok(&[
        "create",
        "poddisruptionbudget",
        "web",
        "--selector=app=web",
        "--min-available=1",
    ]);
    let eviction = |name: &str| json!({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name}});
    // The budget's status has not been computed (no disruption controller ran): refuse.
    let (code, status) = post(
        &c,
        "/api/v1/namespaces/default/pods/a/eviction",
        &eviction("a"),
    );
    assert_eq!(code, 429, "{status}");
    assert_eq!(status["reason"], "TooManyRequests");
    assert_eq!(
        status["message"],
        "Cannot evict pod as it would violate the pod's disruption budget."
    );
    // One disruption allowed.
    let generation = c.get_json(&["pdb", "web"])["metadata"]["generation"].clone();
    let budget = json!({"status": {"observedGeneration": generation, "disruptionsAllowed": 1, "currentHealthy": 2, "desiredHealthy": 1, "expectedPods": 2}});
    c.ok(&[
        "patch",
        "pdb",
        "web",
        "--subresource=status",
        "--type=merge",
        "-p",
        &budget.to_string(),
    ]);
    let (code, status) = post(
        &c,
        "/api/v1/namespaces/default/pods/a/eviction",
        &eviction("a"),
    );
    assert_eq!(code, 201, "{status}");
    assert!(c.fails(&["get", "pod", "a"]).contains("NotFound"));
    let pdb = c.get_json(&["pdb", "web"]);
    assert_eq!(pdb["status"]["disruptionsAllowed"], 0);
    assert!(pdb["status"]["disruptedPods"]["a"].is_string());
    // The budget is spent.
    let (code, status) = post(
        &c,
        "/api/v1/namespaces/default/pods/b/eviction",
        &eviction("b"),
    );
    assert_eq!(code, 429, "{status}");
    assert!(
        status["details"]["causes"][0]["message"]
            .as_str()
            .unwrap()
            .contains("needs 1 healthy pods and has 2 currently"),
        "{status}"
    );
    assert_eq!(c.get_json(&["pod", "b"])["metadata"]["name"], "b");
    // A pod no budget covers is evicted directly; a pending one too.
    c.ok_stdin(
        &["create", "-f", "-"],
        &pod("free", json!({"app": "other"})),
    );
    let (code, _) = post(
        &c,
        "/api/v1/namespaces/default/pods/free/eviction",
        &eviction("free"),
    );
    assert_eq!(code, 201);
    assert!(c.fails(&["get", "pod", "free"]).contains("NotFound"));
    let (code, _) = post(
        &c,
        "/api/v1/namespaces/default/pods/b/eviction",
        &eviction("other-name"),
    );
    assert_eq!(code, 400);
}
