//! End-to-end: the DaemonSet controller inside `keelson server`, pods run by hollow nodes
//! (`keelson simulate`), driven with the real `kubectl`.
//!
//! Covered: one pod per eligible node (bound by the scheduler through the pod's node
//! affinity), a node tainted NoSchedule gets none, a nodeSelector restricts and follows
//! label changes, a joining node gets a pod and a leaving node's pod goes (the pod garbage
//! collector removes pods of deleted nodes, as upstream), status, ControllerRevisions, a
//! rolling update of the template and `kubectl rollout status daemonset`.

// Integration tests unwrap freely: a panic is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::hollow::Simulator;
use common::{Cluster, ServerOptions};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(60);

fn condition<'a>(obj: &'a Value, type_: &str) -> &'a Value {
    obj["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == type_))
        .unwrap_or(&Value::Null)
}

fn items(c: &Cluster, args: &[&str]) -> Vec<Value> {
    c.get_json(args)["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn running_and_ready(p: &Value) -> bool {
    p["status"]["phase"] == "Running" && condition(p, "Ready")["status"] == "True"
}

fn ready_nodes(c: &Cluster) -> usize {
    items(c, &["nodes"])
        .iter()
        .filter(|n| condition(n, "Ready")["status"] == "True")
        .count()
}

fn daemon_set(name: &str, image: &str, node_selector: Option<Value>) -> String {
    let mut spec = json!({"containers": [{"name": "c", "image": image}],
                          "terminationGracePeriodSeconds": 0});
    if let Some(sel) = node_selector {
        spec["nodeSelector"] = sel;
    }
    json!({
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": name},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": spec},
        },
    })
    .to_string()
}

/// Running, not terminating pods of `app`, by node.
fn placed(c: &Cluster, app: &str) -> BTreeMap<String, Value> {
    items(c, &["pods", "-l", &format!("app={app}")])
        .into_iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .map(|p| (p["spec"]["nodeName"].as_str().unwrap_or("").to_string(), p))
        .collect()
}

/// Waits until `app` has exactly one running pod on each of `nodes` and no other pod.
#[track_caller]
fn on_nodes(c: &Cluster, app: &str, nodes: &[&str]) -> BTreeMap<String, Value> {
    let mut got = BTreeMap::new();
    c.eventually(WAIT, &format!("{app} pods on {nodes:?}"), || {
        let all = items(c, &["pods", "-l", &format!("app={app}")]);
        got = placed(c, app);
        all.len() == nodes.len()
            && got.len() == nodes.len()
            && nodes
                .iter()
                .all(|n| got.get(*n).is_some_and(running_and_ready))
    });
    got
}

#[test]
fn daemonsets_follow_nodes_selectors_taints_and_roll() {
    // A short node monitor grace period makes the pod garbage collector's quarantine for
    // deleted nodes short too (hollow nodes renew their Leases every 10 s).
    let c = Cluster::start_with(ServerOptions {
        extra_args: vec!["--node-monitor-grace-period".into(), "15s".into()],
        ..Default::default()
    });
    let _sim = Simulator::start(&c, &["--nodes", "3"]);
    c.eventually(WAIT, "3 Ready hollow nodes", || ready_nodes(&c) == 3);
    c.ok(&["taint", "nodes", "hollow-2", "dedicated=infra:NoSchedule"]);
    c.ok(&["label", "nodes", "hollow-1", "role=edge"]);

    c.ok_stdin(
        &["apply", "-f", "-"],
        &daemon_set("agent", "busybox:1.36", None),
    );
    c.ok_stdin(
        &["apply", "-f", "-"],
        &daemon_set("edge", "busybox:1.36", Some(json!({"role": "edge"}))),
    );
    let pods = on_nodes(&c, "agent", &["hollow-0", "hollow-1"]);
    on_nodes(&c, "edge", &["hollow-1"]);

    // Pods are pinned by node affinity and carry the revision hash and the daemon tolerations.
    let p = &pods["hollow-0"];
    assert_eq!(
        p["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
            [0]["matchFields"][0],
        json!({"key": "metadata.name", "operator": "In", "values": ["hollow-0"]})
    );
    let tolerations = p["spec"]["tolerations"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for key in [
        "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unreachable",
        "node.kubernetes.io/unschedulable",
    ] {
        assert!(
            tolerations.iter().any(|t| t["key"] == key),
            "{key}: {tolerations:?}"
        );
    }
    let revs = items(&c, &["controllerrevisions", "-l", "app=agent"]);
    assert_eq!(revs.len(), 1, "{revs:?}");
    let hash1 = revs[0]["metadata"]["labels"]["controller-revision-hash"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        p["metadata"]["labels"]["controller-revision-hash"],
        hash1.as_str()
    );
    c.eventually(WAIT, "agent status", || {
        let st = &c.get_json(&["ds", "agent"])["status"];
        st["desiredNumberScheduled"] == 2
            && st["currentNumberScheduled"] == 2
            && st["numberReady"] == 2
            && st["numberAvailable"] == 2
            && st["updatedNumberScheduled"] == 2
            && st["numberMisscheduled"] == 0
            && st["observedGeneration"] == 1
    });
    let out = c.ok(&["rollout", "status", "daemonset/agent", "--timeout=60s"]);
    assert!(
        out.contains("daemon set \"agent\" successfully rolled out"),
        "{out}"
    );

    // Label changes move the selected set; untainting admits the node.
    c.ok(&["label", "nodes", "hollow-0", "role=edge"]);
    on_nodes(&c, "edge", &["hollow-0", "hollow-1"]);
    c.ok(&["taint", "nodes", "hollow-2", "dedicated-"]);
    on_nodes(&c, "agent", &["hollow-0", "hollow-1", "hollow-2"]);

    // A joining node gets a pod; when it leaves, its pod goes.
    let mut other = Simulator::start(
        &c,
        &["--name-prefix", "other-", "--nodes", "1", "--cleanup"],
    );
    c.eventually(WAIT, "4 Ready nodes", || ready_nodes(&c) == 4);
    on_nodes(
        &c,
        "agent",
        &["hollow-0", "hollow-1", "hollow-2", "other-0"],
    );
    on_nodes(&c, "edge", &["hollow-0", "hollow-1"]);
    other.stop();
    c.eventually(WAIT, "other-0 deleted", || {
        items(&c, &["nodes"])
            .iter()
            .all(|n| n["metadata"]["name"] != "other-0")
    });
    on_nodes(&c, "agent", &["hollow-0", "hollow-1", "hollow-2"]);
    c.eventually(WAIT, "agent desires 3", || {
        c.get_json(&["ds", "agent"])["status"]["desiredNumberScheduled"] == 3
    });

    // A rolling update replaces every pod, one node at a time (maxUnavailable 1).
    let before: Vec<String> = placed(&c, "agent")
        .values()
        .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    c.ok(&["set", "image", "daemonset/agent", "c=busybox:1.37"]);
    let out = c.ok(&["rollout", "status", "daemonset/agent", "--timeout=60s"]);
    assert!(out.contains("successfully rolled out"), "{out}");
    let after = on_nodes(&c, "agent", &["hollow-0", "hollow-1", "hollow-2"]);
    let revs = items(&c, &["controllerrevisions", "-l", "app=agent"]);
    assert_eq!(revs.len(), 2, "{revs:?}");
    let hash2 = revs
        .iter()
        .map(|r| {
            r["metadata"]["labels"]["controller-revision-hash"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .find(|h| *h != hash1)
        .unwrap();
    for p in after.values() {
        assert!(!before.contains(&p["metadata"]["name"].as_str().unwrap().to_string()));
        assert_eq!(
            p["metadata"]["labels"]["controller-revision-hash"],
            hash2.as_str()
        );
        assert_eq!(p["spec"]["containers"][0]["image"], "busybox:1.37");
    }
    let reasons: Vec<String> = items(
        &c,
        &["events", "--field-selector", "involvedObject.name=agent"],
    )
    .iter()
    .map(|e| e["reason"].as_str().unwrap_or_default().to_string())
    .collect();
    assert!(
        reasons.contains(&"SuccessfulCreate".to_string()),
        "{reasons:?}"
    );
    assert!(
        reasons.contains(&"SuccessfulDelete".to_string()),
        "{reasons:?}"
    );
}
