//! End-to-end: the node controllers in `keelson server`, driven with the real `kubectl` —
//! pod CIDRs for new nodes (nodeipam), pod garbage collection (podgc), and node loss: hollow
//! nodes whose simulator is SIGKILLed go `Ready=Unknown` and are tainted unreachable
//! (nodelifecycle), their pods are evicted after their `tolerationSeconds`
//! (taint-eviction-controller), the taints go when the nodes come back, and a ReplicaSet
//! replaces the pods evicted from a lost node on one that is left.

// Integration tests unwrap freely: a panic is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::hollow::Simulator;
use common::{Cluster, ServerOptions};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

/// A server judging nodes after `grace` without a sign of life (which is also podgc's
/// quarantine for missing nodes).
fn server(grace: &str, extra: &[&str]) -> Cluster {
    let mut args = vec![
        "--node-monitor-grace-period",
        grace,
        "--node-monitor-period",
        "1s",
    ];
    args.extend_from_slice(extra);
    Cluster::start_with(ServerOptions {
        extra_args: args.into_iter().map(String::from).collect(),
        ..ServerOptions::default()
    })
}

fn condition<'a>(obj: &'a Value, type_: &str) -> &'a Value {
    obj["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == type_))
        .unwrap_or(&Value::Null)
}

/// `(key, effect)` of every taint on `node`, in order.
fn taints(node: &Value) -> Vec<(String, String)> {
    node["spec"]["taints"]
        .as_array()
        .map(|ts| {
            ts.iter()
                .map(|t| {
                    (
                        t["key"].as_str().unwrap_or("").to_string(),
                        t["effect"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A plain Node object (no kubelet behind it).
fn create_node(c: &Cluster, name: &str) {
    let n = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}});
    c.ok_stdin(&["create", "-f", "-"], &n.to_string());
}

/// A one-container pod bound to `node` with extra `tolerations`.
fn create_pod(c: &Cluster, name: &str, node: &str, tolerations: Value) {
    let p = json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {
            "nodeName": node,
            "containers": [{"name": "c", "image": "busybox"}],
            "tolerations": tolerations,
        },
    });
    c.ok_stdin(&["create", "-f", "-"], &p.to_string());
}

fn exists(c: &Cluster, kind: &str, name: &str) -> bool {
    !c.ok(&["get", kind, name, "--ignore-not-found", "-o", "name"])
        .trim()
        .is_empty()
}

fn pod_cidr(c: &Cluster, node: &str) -> String {
    let n = c.get_json(&["node", node]);
    let cidr = n["spec"]["podCIDR"].as_str().unwrap_or("").to_string();
    if !cidr.is_empty() {
        assert_eq!(n["spec"]["podCIDRs"], json!([cidr]), "{n}");
    }
    cidr
}

#[test]
fn pod_cidrs_are_allocated_and_pods_garbage_collected() {
    let c = server(
        "5s",
        &[
            "--cluster-cidr",
            "10.77.0.0/22",
            "--node-cidr-mask-size",
            "24",
            "--terminated-pod-gc-threshold",
            "2",
        ],
    );

    // nodeipam: each new node gets the next free /24 of the cluster CIDR (four of them).
    create_node(&c, "plain-a");
    c.eventually(WAIT, "plain-a to get a pod CIDR", || {
        !pod_cidr(&c, "plain-a").is_empty()
    });
    // A node that brings its own CIDR keeps it.
    let own = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "own"},
                     "spec": {"podCIDR": "10.77.2.0/24", "podCIDRs": ["10.77.2.0/24"]}});
    c.ok_stdin(&["create", "-f", "-"], &own.to_string());
    create_node(&c, "plain-b");
    c.eventually(WAIT, "plain-b to get a pod CIDR", || {
        !pod_cidr(&c, "plain-b").is_empty()
    });
    assert_eq!(pod_cidr(&c, "plain-a"), "10.77.0.0/24");
    assert_eq!(pod_cidr(&c, "plain-b"), "10.77.1.0/24");
    // A deleted node's block is released, and reused only after the untouched ones.
    c.ok(&["delete", "node", "plain-a"]);
    create_node(&c, "plain-c");
    c.eventually(WAIT, "plain-c to get a pod CIDR", || {
        !pod_cidr(&c, "plain-c").is_empty()
    });
    assert_eq!(pod_cidr(&c, "plain-c"), "10.77.3.0/24");
    assert_eq!(pod_cidr(&c, "own"), "10.77.2.0/24");
    create_node(&c, "plain-d");
    c.eventually(WAIT, "plain-d to get the released block", || {
        !pod_cidr(&c, "plain-d").is_empty()
    });
    assert_eq!(pod_cidr(&c, "plain-d"), "10.77.0.0/24");
    // Exhausted: no CIDR, and an Event saying so.
    create_node(&c, "plain-e");
    c.eventually(WAIT, "the CIDRNotAvailable Event", || {
        c.ok(&[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=plain-e",
            "-o",
            "jsonpath={.items[*].reason}",
        ])
        .contains("CIDRNotAvailable")
    });
    assert_eq!(pod_cidr(&c, "plain-e"), "");

    // podgc, terminated threshold: four finished pods on a node with no kubelet; the two
    // oldest (ties broken by name) go, the two newest stay; running pods are not counted.
    for name in ["done-1", "done-2", "done-3", "done-4", "running"] {
        create_pod(&c, name, "plain-b", json!([]));
    }
    for name in ["done-1", "done-2", "done-3", "done-4"] {
        c.ok(&[
            "patch",
            "pod",
            name,
            "--subresource=status",
            "--type=merge",
            "-p",
            r#"{"status":{"phase":"Succeeded"}}"#,
        ]);
    }
    c.eventually(WAIT, "the two oldest finished pods to be collected", || {
        !exists(&c, "pod", "done-1") && !exists(&c, "pod", "done-2")
    });
    for name in ["done-3", "done-4", "running"] {
        assert!(exists(&c, "pod", name), "{name} must stay");
    }

    // podgc, orphans: a pod bound to a node that is deleted is marked Failed with the
    // DisruptionTarget condition, then force-deleted after the quarantine.
    create_node(&c, "doomed");
    create_pod(&c, "orphan", "doomed", json!([]));
    let watch = c.watch_spawn(
        "/api/v1/namespaces/default/pods?watch=1&fieldSelector=metadata.name%3Dorphan",
        20,
    );
    c.ok(&["delete", "node", "doomed"]);
    c.eventually(WAIT, "the orphaned pod to be collected", || {
        !exists(&c, "pod", "orphan")
    });
    let events = Cluster::watch_collect(watch);
    let failed = events
        .iter()
        .find(|e| e["object"]["status"]["phase"] == "Failed")
        .unwrap_or_else(|| panic!("no Failed update in {events:?}"));
    let dt = condition(&failed["object"], "DisruptionTarget");
    assert_eq!(dt["status"], "True", "{failed}");
    assert_eq!(dt["reason"], "DeletionByPodGC");
    assert_eq!(dt["message"], "PodGC: node no longer exists");
    assert_eq!(events.last().unwrap()["type"], "DELETED", "{events:?}");
}

#[test]
fn lost_nodes_are_tainted_their_pods_evicted_and_recovered() {
    // Hollow kubelets renew their Leases every 10 s, so the grace must be longer than that.
    let c = server("15s", &[]);
    let sim = Simulator::start(&c, &["--nodes", "2"]);
    c.eventually(WAIT, "two Ready hollow nodes", || {
        c.get_json(&["nodes"])["items"]
            .as_array()
            .is_some_and(|ns| {
                ns.len() == 2 && ns.iter().all(|n| condition(n, "Ready")["status"] == "True")
            })
    });
    // Hollow nodes register with their own pod CIDRs (outside the cluster CIDR): kept.
    assert_eq!(pod_cidr(&c, "hollow-1"), "10.0.1.0/24");

    let unreachable = |seconds: Option<i64>| {
        let mut t = json!({"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                           "effect": "NoExecute"});
        if let Some(s) = seconds {
            t["tolerationSeconds"] = json!(s);
        }
        json!([t])
    };
    create_pod(&c, "short", "hollow-0", unreachable(Some(2)));
    create_pod(&c, "forever", "hollow-0", unreachable(None));
    create_pod(&c, "intolerant", "hollow-1", json!([]));
    c.eventually(WAIT, "three Running pods", || {
        c.get_json(&["pods"])["items"]
            .as_array()
            .is_some_and(|ps| ps.len() == 3 && ps.iter().all(|p| p["status"]["phase"] == "Running"))
    });
    // Admission gave every pod upstream's default 300 s not-ready/unreachable tolerations,
    // unless it had its own.
    let tolerations = c.get_json(&["pod", "intolerant"])["spec"]["tolerations"].clone();
    assert_eq!(
        tolerations.as_array().map(Vec::len),
        Some(2),
        "{tolerations}"
    );
    assert_eq!(tolerations[1]["tolerationSeconds"], 300, "{tolerations}");

    // A NoExecute taint the pod does not tolerate evicts it at once (the hollow kubelet,
    // still alive, finishes the deletion).
    c.ok(&[
        "taint",
        "node",
        "hollow-1",
        "example.com/drain=now:NoExecute",
    ]);
    c.eventually(WAIT, "the untolerating pod to be evicted", || {
        !exists(&c, "pod", "intolerant")
    });
    c.ok(&["taint", "node", "hollow-1", "example.com/drain-"]);
    create_pod(&c, "defaults", "hollow-1", json!([]));
    c.eventually(WAIT, "the new pod on hollow-1 to run", || {
        c.get_json(&["pod", "defaults"])["status"]["phase"] == "Running"
    });

    // SIGKILL: no cleanup, the Leases simply stop being renewed.
    drop(sim);
    c.eventually(WAIT, "hollow-0 to become Ready=Unknown and tainted", || {
        let n = c.get_json(&["node", "hollow-0"]);
        condition(&n, "Ready")["status"] == "Unknown"
            && taints(&n).contains(&("node.kubernetes.io/unreachable".into(), "NoExecute".into()))
    });
    let n = c.get_json(&["node", "hollow-0"]);
    let ready = condition(&n, "Ready");
    assert_eq!(ready["reason"], "NodeStatusUnknown", "{n}");
    assert_eq!(ready["message"], "Kubelet stopped posting node status.");
    for pressure in ["MemoryPressure", "DiskPressure", "PIDPressure"] {
        assert_eq!(condition(&n, pressure)["status"], "Unknown", "{pressure}");
    }
    assert!(
        taints(&n).contains(&("node.kubernetes.io/unreachable".into(), "NoSchedule".into())),
        "{n}"
    );
    let no_execute = n["spec"]["taints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["effect"] == "NoExecute")
        .unwrap();
    assert!(no_execute["timeAdded"].is_string(), "{n}");

    // A pod on the deleted node hollow-1 is garbage-collected (nobody will ever run it).
    c.ok(&["delete", "node", "hollow-1"]);

    // "short" tolerates unreachable for 2 s: evicted (it stays Terminating: no kubelet).
    c.eventually(WAIT, "pod short to be evicted", || {
        let p = c.get_json(&["pod", "short"]);
        p["metadata"]["deletionTimestamp"].is_string()
    });
    let p = c.get_json(&["pod", "short"]);
    let dt = condition(&p, "DisruptionTarget");
    assert_eq!(dt["status"], "True", "{p}");
    assert_eq!(dt["reason"], "DeletionByTaintManager");
    let events = c.ok(&[
        "get",
        "events",
        "--field-selector",
        "reason=TaintManagerEviction",
        "-o",
        "jsonpath={.items[*].message}",
    ]);
    assert!(
        events.contains("Marking for deletion Pod default/short"),
        "{events}"
    );

    // "forever" stays, marked not ready (its kubelet is gone).
    c.eventually(WAIT, "pod forever to be marked not ready", || {
        condition(&c.get_json(&["pod", "forever"]), "Ready")["status"] == "False"
    });
    let p = c.get_json(&["pod", "forever"]);
    assert!(p["metadata"]["deletionTimestamp"].is_null(), "{p}");

    c.eventually(WAIT, "the pod on the deleted node to be collected", || {
        !exists(&c, "pod", "defaults")
    });
    assert!(exists(&c, "pod", "forever"));

    // The node comes back (same names): Ready again, the controller's taints removed, and
    // the evicted pod's deletion completed by its kubelet.
    let _sim = Simulator::start(&c, &["--nodes", "2"]);
    c.eventually(WAIT, "hollow-0 to be Ready and untainted", || {
        let n = c.get_json(&["node", "hollow-0"]);
        condition(&n, "Ready")["status"] == "True" && taints(&n).is_empty()
    });
    c.eventually(WAIT, "the evicted pod to be gone", || {
        !exists(&c, "pod", "short")
    });
    assert!(exists(&c, "pod", "forever"));
}

#[test]
fn pods_of_a_lost_node_are_evicted_and_replaced_by_their_replicaset() {
    let c = server("15s", &[]);
    // All replicas start on the node that will be lost: it is the only one.
    let lost = Simulator::start(&c, &["--nodes", "1", "--name-prefix", "lost-"]);
    c.eventually(WAIT, "node lost-0 to be Ready", || {
        exists(&c, "node", "lost-0")
            && condition(&c.get_json(&["node", "lost-0"]), "Ready")["status"] == "True"
    });
    let rs = json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "web"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [{"name": "c", "image": "nginx"}],
                    "tolerations": [{"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                                     "effect": "NoExecute", "tolerationSeconds": 1}],
                },
            },
        },
    });
    c.ok_stdin(&["create", "-f", "-"], &rs.to_string());
    let pods = |c: &Cluster| -> Vec<Value> {
        c.get_json(&["pods", "-l", "app=web"])["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    let live_on = |ps: &[Value], node: &str| {
        ps.iter()
            .filter(|p| {
                p["spec"]["nodeName"] == node
                    && p["metadata"]["deletionTimestamp"].is_null()
                    && p["status"]["phase"] == "Running"
            })
            .count()
    };
    c.eventually(WAIT, "two replicas running on lost-0", || {
        live_on(&pods(&c), "lost-0") == 2
    });

    let _alive = Simulator::start(&c, &["--nodes", "1", "--name-prefix", "alive-"]);
    c.eventually(WAIT, "node alive-0 to be Ready", || {
        exists(&c, "node", "alive-0")
            && condition(&c.get_json(&["node", "alive-0"]), "Ready")["status"] == "True"
    });
    drop(lost);

    // Lost → unreachable → evicted after 1 s → replaced on the node that is left.
    c.eventually(
        Duration::from_secs(45),
        "two replicas running on alive-0",
        || live_on(&pods(&c), "alive-0") == 2,
    );
    let all = pods(&c);
    let evicted: Vec<&Value> = all
        .iter()
        .filter(|p| p["spec"]["nodeName"] == "lost-0")
        .collect();
    assert_eq!(evicted.len(), 2, "{all:?}");
    for p in evicted {
        assert!(p["metadata"]["deletionTimestamp"].is_string(), "{p}");
        assert_eq!(
            condition(p, "DisruptionTarget")["reason"],
            "DeletionByTaintManager",
            "{p}"
        );
    }
}
