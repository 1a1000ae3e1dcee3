//! End-to-end: `keelson simulate` against a real server, checked with real kubectl — hollow
//! nodes register Ready, heartbeat through Leases, run the pods bound to them, finish graceful
//! deletions, come back when deleted, and clean up after themselves on SIGTERM.

// Integration tests unwrap freely: a panic is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, HashSet};
use std::process::Command;
use std::time::{Duration, Instant};

use common::Cluster;
use common::hollow::Simulator;
use serde_json::{Value, json};

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

fn ready_nodes(c: &Cluster) -> Vec<Value> {
    items(c, &["nodes"])
        .into_iter()
        .filter(|n| condition(n, "Ready")["status"] == "True")
        .collect()
}

/// A two-container pod, bound to `node` or, with `None`, left for the test to bind: its
/// scheduler name is one no scheduler serves, so a running scheduler does not race the test.
fn pod(name: &str, node: Option<&str>) -> String {
    let mut spec = json!({"containers": [{"name": "app", "image": "nginx:1.27"}, {"name": "side", "image": "busybox"}]});
    match node {
        Some(n) => spec["nodeName"] = json!(n),
        None => spec["schedulerName"] = json!("e2e-hollow-manual"),
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}).to_string()
}

fn running_and_ready(p: &Value) -> bool {
    p["status"]["phase"] == "Running"
        && condition(p, "Ready")["status"] == "True"
        && p["status"]["podIP"].is_string()
}

#[test]
fn hollow_nodes_register_heartbeat_run_pods_and_clean_up() {
    let c = Cluster::start();

    // Bad flags fail before anything is registered.
    let bad = Command::new(env!("CARGO_BIN_EXE_keelson"))
        .args([
            "simulate",
            "--nodes",
            "3",
            "--taints",
            "k=v:Never",
            "--kubeconfig",
        ])
        .arg(c.kubeconfig())
        .output()
        .unwrap();
    assert!(!bad.status.success());
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("--taints k=v:Never"), "{stderr}");
    assert!(items(&c, &["nodes"]).is_empty());

    let mut sim = Simulator::start(
        &c,
        &[
            "--nodes",
            "20",
            "--labels",
            "tier=sim",
            "--cpu",
            "8",
            "--cleanup",
        ],
    );

    // Twenty Ready nodes that look like kubelets registered them.
    c.eventually(Duration::from_secs(15), "20 Ready hollow nodes", || {
        ready_nodes(&c).len() == 20
    });
    let nodes = ready_nodes(&c);
    let mut internal_ips = HashSet::new();
    let mut cidrs = HashSet::new();
    let mut uids = BTreeMap::new();
    for n in &nodes {
        let name = n["metadata"]["name"].as_str().unwrap();
        assert!(name.starts_with("hollow-"), "{name}");
        let labels = &n["metadata"]["labels"];
        assert_eq!(labels["kubernetes.io/hostname"], name);
        assert_eq!(labels["kubernetes.io/os"], "linux");
        assert_eq!(labels["kubernetes.io/arch"], "amd64");
        assert_eq!(labels["tier"], "sim");
        let s = &n["status"];
        assert_eq!(s["capacity"]["cpu"], "8");
        assert_eq!(s["capacity"]["pods"], "110");
        assert!(s["allocatable"]["memory"].is_string());
        assert!(s["capacity"]["ephemeral-storage"].is_string());
        assert_eq!(condition(n, "Ready")["reason"], "KubeletReady");
        for pressure in ["MemoryPressure", "DiskPressure", "PIDPressure"] {
            assert_eq!(condition(n, pressure)["status"], "False", "{pressure}");
        }
        assert_eq!(s["nodeInfo"]["operatingSystem"], "linux");
        let ip = s["addresses"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["type"] == "InternalIP")
            .unwrap()["address"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(internal_ips.insert(ip), "InternalIPs are unique");
        assert!(cidrs.insert(n["spec"]["podCIDR"].as_str().unwrap().to_string()));
        uids.insert(
            name.to_string(),
            n["metadata"]["uid"].as_str().unwrap().to_string(),
        );
    }
    let wide = c.ok(&["get", "nodes", "-o", "wide"]);
    assert_eq!(
        wide.lines().filter(|l| l.contains(" Ready ")).count(),
        20,
        "{wide}"
    );

    // One Lease per node, owned by it, renewed every 10 s.
    let leases = items(&c, &["leases", "-n", "kube-node-lease"]);
    assert_eq!(leases.len(), 20);
    let mut first_renewal = BTreeMap::new();
    for l in &leases {
        let name = l["metadata"]["name"].as_str().unwrap();
        assert_eq!(l["spec"]["holderIdentity"], name);
        assert_eq!(l["spec"]["leaseDurationSeconds"], 40);
        let owner = &l["metadata"]["ownerReferences"][0];
        assert_eq!(
            (owner["kind"].as_str(), owner["name"].as_str()),
            (Some("Node"), Some(name))
        );
        assert_eq!(owner["uid"].as_str(), uids.get(name).map(String::as_str));
        first_renewal.insert(name.to_string(), l["spec"]["renewTime"].clone());
    }

    // Pods: two bound directly, one through the binding subresource (as a scheduler does).
    c.ok_stdin(&["create", "-f", "-"], &pod("a", Some("hollow-3")));
    c.ok_stdin(&["create", "-f", "-"], &pod("b", Some("hollow-3")));
    c.ok_stdin(&["create", "-f", "-"], &pod("c", None));
    let binding = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "c"}, "target": {"kind": "Node", "name": "hollow-7"}});
    let (code, body) = c.curl(
        "POST",
        "/api/v1/namespaces/default/pods/c/binding",
        Some(binding.to_string().as_bytes()),
        Some("application/json"),
    );
    assert_eq!(code, 201, "{body}");
    c.eventually(Duration::from_secs(10), "three Running, Ready pods", || {
        let pods = items(&c, &["pods"]);
        pods.len() == 3 && pods.iter().all(running_and_ready)
    });
    let pods = items(&c, &["pods"]);
    let node_ip = |node: &str| {
        nodes
            .iter()
            .find(|n| n["metadata"]["name"] == node)
            .map(|n| n["status"]["addresses"][0]["address"].clone())
            .unwrap()
    };
    let mut pod_ips = HashSet::new();
    for p in &pods {
        let node = p["spec"]["nodeName"].as_str().unwrap();
        let s = &p["status"];
        assert_eq!(s["hostIP"], node_ip(node), "{p}");
        let ip = s["podIP"].as_str().unwrap();
        let prefix = if node == "hollow-3" {
            "10.0.3."
        } else {
            "10.0.7."
        };
        assert!(ip.starts_with(prefix), "{node}: {ip}");
        assert_eq!(s["podIPs"][0]["ip"], ip);
        assert!(pod_ips.insert(ip.to_string()), "pod IPs are unique");
        assert!(s["startTime"].is_string());
        for t in ["PodScheduled", "Initialized", "ContainersReady", "Ready"] {
            assert_eq!(condition(p, t)["status"], "True", "{t}: {p}");
        }
        let cs = s["containerStatuses"].as_array().unwrap();
        assert_eq!(cs.len(), 2);
        for c in cs {
            assert!(c["state"]["running"].is_object(), "{c}");
            assert_eq!(
                (c["ready"].as_bool(), c["started"].as_bool()),
                (Some(true), Some(true))
            );
            for f in ["image", "imageID", "containerID"] {
                assert!(!c[f].as_str().unwrap_or("").is_empty(), "{f}: {c}");
            }
        }
    }
    let listed = c.ok(&["get", "pods", "-o", "wide"]);
    assert_eq!(
        listed
            .lines()
            .filter(|l| l.contains("2/2") && l.contains("Running"))
            .count(),
        3,
        "{listed}"
    );

    // A graceful delete (30 s grace) is finished by the hollow kubelet, not by the clock.
    let started = Instant::now();
    c.ok(&["delete", "pod", "a", "--timeout=15s"]);
    assert!(started.elapsed() < Duration::from_secs(15));
    let left: Vec<String> = items(&c, &["pods"])
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(left, ["b", "c"]);

    // A node deleted behind its kubelet's back comes back, with a new uid and a Lease it owns.
    c.ok(&["delete", "node", "hollow-11"]);
    c.eventually(
        Duration::from_secs(10),
        "hollow-11 registered again",
        || {
            let out = c.kubectl(&["get", "node", "hollow-11", "-o", "json"]);
            out.status.success() && {
                let n: Value = serde_json::from_slice(&out.stdout).unwrap();
                n["metadata"]["uid"].as_str() != uids.get("hollow-11").map(String::as_str)
                    && condition(&n, "Ready")["status"] == "True"
            }
        },
    );

    // Every lease renews within a period (10 s, jittered).
    c.eventually(Duration::from_secs(15), "every lease renewed", || {
        items(&c, &["leases", "-n", "kube-node-lease"])
            .iter()
            .all(|l| {
                let name = l["metadata"]["name"].as_str().unwrap();
                first_renewal.get(name) != Some(&l["spec"]["renewTime"])
            })
    });
    // The garbage collector may delete the Lease the old node owned (as upstream's does);
    // the kubelet writes it again, owned by the new node, at its next renewal.
    let new_uid = c.get_json(&["node", "hollow-11"])["metadata"]["uid"].clone();
    c.eventually(
        Duration::from_secs(15),
        "hollow-11's lease owned by the new node",
        || {
            let out = c.kubectl(&[
                "get",
                "lease",
                "-n",
                "kube-node-lease",
                "hollow-11",
                "-o",
                "json",
            ]);
            out.status.success() && {
                let l: Value = serde_json::from_slice(&out.stdout).unwrap();
                l["metadata"]["ownerReferences"][0]["uid"] == new_uid
            }
        },
    );

    // SIGTERM: heartbeats stop, and with --cleanup the nodes and leases go.
    let out = sim.stop();
    assert!(out.contains("registered 20/20 nodes"), "{out}");
    assert!(out.contains("all 20 nodes registered in"), "{out}");
    assert!(out.contains("stopped after"), "{out}");
    assert!(out.contains("1 re-registered after deletion"), "{out}");
    assert!(
        out.contains("cleanup:    20 nodes and their leases deleted"),
        "{out}"
    );
    assert!(items(&c, &["nodes"]).is_empty());
    assert!(items(&c, &["leases", "-n", "kube-node-lease"]).is_empty());
}
