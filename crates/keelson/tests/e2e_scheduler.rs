//! End-to-end: the scheduler `keelson server` runs in-process, driven with the real `kubectl`.
//! Nodes are plain Node objects (created with kubectl, their status written through the
//! `nodes/status` subresource); nothing runs the pods, which is all scheduling needs.

// Integration tests unwrap freely: a panic is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;
use std::time::Duration;

use common::{Cluster, ServerOptions};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(20);

/// Creates a Ready node with `cpu` cores, 8Gi and 110 pods allocatable.
fn node(c: &Cluster, name: &str, cpu: &str, labels: Value, taints: Value) {
    let mut all = json!({"kubernetes.io/hostname": name, "kubernetes.io/os": "linux"});
    for (k, v) in labels.as_object().unwrap() {
        all[k] = v.clone();
    }
    let obj = json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": all},
        "spec": {"taints": taints},
    });
    c.ok_stdin(&["apply", "-f", "-"], &obj.to_string());
    let resources = json!({"cpu": cpu, "memory": "8Gi", "pods": "110"});
    let status = json!({"status": {
        "capacity": resources, "allocatable": resources,
        "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "ready"}],
    }});
    c.ok(&[
        "patch",
        "node",
        name,
        "--subresource=status",
        "--type=merge",
        "-p",
        &status.to_string(),
    ]);
}

/// A pod manifest with `spec` fields merged into a one-container spec requesting `cpu`.
fn pod(name: &str, labels: Value, cpu: &str, spec: Value) -> String {
    let mut s = json!({
        "containers": [{"name": "c", "image": "busybox",
                        "resources": {"requests": {"cpu": cpu, "memory": "64Mi"}}}],
        "terminationGracePeriodSeconds": 0,
    });
    for (k, v) in spec.as_object().unwrap() {
        s[k] = v.clone();
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels}, "spec": s})
        .to_string()
}

fn create(c: &Cluster, manifest: &str) {
    c.ok_stdin(&["create", "-f", "-"], manifest);
}

fn pod_json(c: &Cluster, name: &str) -> Value {
    c.get_json(&["pod", name])
}

/// Waits until `name` is bound; returns its node.
#[track_caller]
fn scheduled(c: &Cluster, name: &str) -> String {
    let mut node = String::new();
    c.eventually(WAIT, &format!("pod {name} to be scheduled"), || {
        node = pod_json(c, name)["spec"]["nodeName"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        !node.is_empty()
    });
    node
}

fn pod_scheduled_condition(p: &Value) -> Value {
    p["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "PodScheduled").cloned())
        .unwrap_or(Value::Null)
}

/// Waits until `name` shows `PodScheduled=False` with a message containing `want`; returns
/// the message.
#[track_caller]
fn pending_with(c: &Cluster, name: &str, want: &str) -> String {
    let mut message = String::new();
    c.eventually(
        WAIT,
        &format!("pod {name} to be unschedulable with {want:?}"),
        || {
            let p = pod_json(c, name);
            let cond = pod_scheduled_condition(&p);
            message = cond["message"].as_str().unwrap_or_default().to_string();
            p["spec"]["nodeName"].is_null()
                && cond["status"] == "False"
                && cond["reason"] == "Unschedulable"
                && message.contains(want)
        },
    );
    message
}

fn events_for(c: &Cluster, pod: &str) -> Vec<Value> {
    let list = c.get_json(&["events"]);
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["involvedObject"]["name"] == pod)
        .cloned()
        .collect()
}

fn why(c: &Cluster, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_keelson"))
        .arg("why")
        .args(args)
        .arg("--kubeconfig")
        .arg(c.kubeconfig())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "keelson why {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Three nodes in two zones; n3 is reserved for databases by a taint.
fn three_nodes(c: &Cluster) {
    let zone = |z: &str| json!({"topology.kubernetes.io/zone": z});
    let mut ssd = zone("a");
    ssd["disk"] = json!("ssd");
    node(c, "n1", "2", ssd, json!([]));
    node(c, "n2", "2", zone("b"), json!([]));
    node(
        c,
        "n3",
        "2",
        zone("b"),
        json!([{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]),
    );
}

#[test]
fn node_constraints_and_resources() {
    let c = Cluster::start();
    three_nodes(&c);

    // nodeSelector.
    create(
        &c,
        &pod(
            "ssd",
            json!({}),
            "100m",
            json!({"nodeSelector": {"disk": "ssd"}}),
        ),
    );
    // Required node affinity: zone b, where only n2 is untainted.
    let zone_b = json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [
            {"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["b"]}]}]}}});
    create(
        &c,
        &pod("zone-b", json!({}), "100m", json!({"affinity": zone_b})),
    );
    // Taints: only a pod tolerating the taint may use n3.
    let on_n3 = json!({"kubernetes.io/hostname": "n3"});
    create(
        &c,
        &pod(
            "db",
            json!({}),
            "100m",
            json!({"nodeSelector": on_n3,
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "db", "effect": "NoSchedule"}]}),
        ),
    );
    create(
        &c,
        &pod("not-db", json!({}), "100m", json!({"nodeSelector": on_n3})),
    );

    assert_eq!(scheduled(&c, "ssd"), "n1");
    assert_eq!(scheduled(&c, "zone-b"), "n2");
    assert_eq!(scheduled(&c, "db"), "n3");
    let msg = pending_with(&c, "not-db", "untolerated taint {dedicated: db}");
    assert!(msg.starts_with("0/3 nodes are available: "), "{msg}");

    // The Scheduled event of a bound pod.
    let ev = events_for(&c, "ssd");
    assert!(
        ev.iter().any(|e| e["reason"] == "Scheduled"
            && e["message"] == "Successfully assigned default/ssd to n1"
            && e["source"]["component"] == "default-scheduler"),
        "{ev:?}"
    );

    // Resources: more cpu than any node has left.
    create(&c, &pod("big", json!({}), "3", json!({})));
    let msg = pending_with(&c, "big", "Insufficient cpu");
    assert!(msg.starts_with("0/3 nodes are available: "), "{msg}");
    // Upstream counts each node under the first plugin that rejected it.
    assert!(
        msg.contains("1 node(s) had untolerated taint {dedicated: db}, 2 Insufficient cpu."),
        "{msg}"
    );
    assert!(
        msg.contains(" preemption: 0/3 nodes are available: "),
        "{msg}"
    );
    c.eventually(WAIT, "a FailedScheduling event for big", || {
        events_for(&c, "big").iter().any(|e| {
            e["reason"] == "FailedScheduling"
                && e["type"] == "Warning"
                && e["message"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("Insufficient cpu")
        })
    });
    let described = c.ok(&["describe", "pod", "big"]);
    assert!(described.contains("FailedScheduling"), "{described}");

    // keelson why: every filter plugin's rejections, and upstream's summary.
    let text = why(&c, &["pod/big"]);
    assert!(text.contains("pod default/big is not scheduled"), "{text}");
    assert!(text.contains("Re-evaluated now"), "{text}");
    assert!(
        text.contains("NodeResourcesFit: rejects 3 node(s)"),
        "{text}"
    );
    assert!(text.contains("n1: Insufficient cpu"), "{text}");
    assert!(
        text.contains("TaintToleration: rejects 1 node(s)"),
        "{text}"
    );
    assert!(text.contains("\n0/3 nodes are available: "), "{text}");
    // ... and for a scheduled pod, its node and the scores.
    let text = why(&c, &["pod/zone-b"]);
    assert!(
        text.contains("pod default/zone-b runs on node n2"),
        "{text}"
    );
    assert!(text.contains("* n2"), "{text}");
    assert!(text.contains("NodeResourcesFit"), "{text}");
}

#[test]
fn pod_affinity_anti_affinity_and_topology_spread() {
    let c = Cluster::start();
    three_nodes(&c);
    create(
        &c,
        &pod(
            "cache",
            json!({"app": "cache"}),
            "100m",
            json!({"nodeSelector": {"kubernetes.io/hostname": "n2"}}),
        ),
    );
    assert_eq!(scheduled(&c, "cache"), "n2");

    let term =
        |key: &str| json!({"labelSelector": {"matchLabels": {"app": "cache"}}, "topologyKey": key});
    create(
        &c,
        &pod(
            "near",
            json!({}),
            "100m",
            json!({"affinity": {"podAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": [term("kubernetes.io/hostname")]}}}),
        ),
    );
    create(
        &c,
        &pod(
            "far",
            json!({}),
            "100m",
            json!({"affinity": {"podAntiAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": [term("topology.kubernetes.io/zone")]}}}),
        ),
    );
    assert_eq!(scheduled(&c, "near"), "n2");
    assert_eq!(
        scheduled(&c, "far"),
        "n1",
        "anti-affinity keeps it out of zone b"
    );

    // Anti-affinity nowhere satisfiable: upstream's message.
    create(
        &c,
        &pod(
            "nowhere",
            json!({}),
            "100m",
            json!({"nodeSelector": {"kubernetes.io/hostname": "n2"},
        "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term("kubernetes.io/hostname")]}}}),
        ),
    );
    pending_with(&c, "nowhere", "didn't match pod anti-affinity rules");

    // Topology spread over zones: two pods, one per zone (n3's taint leaves n2 for zone b).
    let spread = json!({"topologySpreadConstraints": [{"maxSkew": 1,
        "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "DoNotSchedule",
        "labelSelector": {"matchLabels": {"app": "spread"}}}]});
    create(
        &c,
        &pod("spread-1", json!({"app": "spread"}), "100m", spread.clone()),
    );
    let first = scheduled(&c, "spread-1");
    create(
        &c,
        &pod("spread-2", json!({"app": "spread"}), "100m", spread.clone()),
    );
    let second = scheduled(&c, "spread-2");
    let zone = |n: &str| if n == "n1" { "a" } else { "b" };
    assert_ne!(
        zone(&first),
        zone(&second),
        "{first} and {second} share a zone"
    );
}

#[test]
fn preemption_evicts_a_lower_priority_pod() {
    let c = Cluster::start();
    node(&c, "small", "1", json!({}), json!([]));
    create(&c, &pod("victim", json!({}), "800m", json!({})));
    assert_eq!(scheduled(&c, "victim"), "small");
    assert_eq!(pod_json(&c, "victim")["spec"]["priority"], 0);
    c.ok_stdin(
        &["create", "-f", "-"],
        &json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                "metadata": {"name": "high"}, "value": 1000})
        .to_string(),
    );
    // Priority admission resolves the class into the pod's priority.
    create(
        &c,
        &pod(
            "important",
            json!({}),
            "800m",
            json!({"priorityClassName": "high"}),
        ),
    );
    assert_eq!(pod_json(&c, "important")["spec"]["priority"], 1000);
    let refused = c.kubectl_stdin(
        &["create", "-f", "-"],
        &json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "classless"},
                "spec": {"priorityClassName": "missing",
                         "containers": [{"name": "c", "image": "busybox"}]}})
        .to_string(),
    );
    assert!(
        String::from_utf8_lossy(&refused.stderr)
            .contains("no PriorityClass with name missing was found"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    c.eventually(WAIT, "the victim to be deleted", || {
        c.kubectl(&["get", "pod", "victim"]).status.code() == Some(1)
    });
    let mut nominated = false;
    c.eventually(
        WAIT,
        "the preemptor to be scheduled on the freed node",
        || {
            let p = pod_json(&c, "important");
            nominated |= p["status"]["nominatedNodeName"] == "small";
            p["spec"]["nodeName"] == "small"
        },
    );
    let ev = events_for(&c, "victim");
    assert!(
        ev.iter().any(|e| e["reason"] == "Preempted"),
        "no Preempted event: {ev:?}"
    );
    // The nomination may have been replaced by the binding before a poll saw it; the
    // FailedScheduling event of the first attempt names preemption either way.
    let failed: Vec<Value> = events_for(&c, "important")
        .into_iter()
        .filter(|e| e["reason"] == "FailedScheduling")
        .collect();
    assert!(
        nominated || !failed.is_empty(),
        "neither a nomination nor a failed attempt was seen"
    );
}

#[test]
fn profiles_are_chosen_by_scheduler_name() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("scheduler.yaml");
    std::fs::write(
        &config,
        "apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
profiles:
- schedulerName: default-scheduler
- schedulerName: ignore-taints
  plugins:
    multiPoint:
      disabled:
      - name: TaintToleration
",
    )
    .unwrap();
    let c = Cluster::start_with(ServerOptions {
        extra_args: vec!["--scheduler-config".into(), config.display().to_string()],
        ..ServerOptions::default()
    });
    node(
        &c,
        "only",
        "2",
        json!({}),
        json!([{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]),
    );
    create(&c, &pod("default", json!({}), "100m", json!({})));
    create(
        &c,
        &pod(
            "custom",
            json!({}),
            "100m",
            json!({"schedulerName": "ignore-taints"}),
        ),
    );
    create(
        &c,
        &pod(
            "unknown",
            json!({}),
            "100m",
            json!({"schedulerName": "nobody"}),
        ),
    );
    assert_eq!(scheduled(&c, "custom"), "only");
    pending_with(&c, "default", "untolerated taint");
    let ev = events_for(&c, "custom");
    assert!(ev.iter().any(|e| e["reason"] == "Scheduled"), "{ev:?}");
    // No profile is named "nobody": the pod is left alone entirely.
    let p = pod_json(&c, "unknown");
    assert!(p["spec"]["nodeName"].is_null());
    assert_eq!(pod_scheduled_condition(&p), Value::Null, "{p}");

    // The scheduler holds upstream's Lease.
    let lease = c.get_json(&["lease", "kube-scheduler", "-n", "kube-system"]);
    assert!(
        !lease["spec"]["holderIdentity"]
            .as_str()
            .unwrap_or_default()
            .is_empty(),
        "{lease}"
    );

    // The leader published its configuration, so `keelson why` explains with the same
    // profiles without being given the file.
    let published = c.get_json(&["configmap", "keelson-scheduler-config", "-n", "kube-system"]);
    assert_eq!(
        published["data"]["config.yaml"],
        std::fs::read_to_string(&config).unwrap(),
        "{published}"
    );
    assert_eq!(
        published["metadata"]["annotations"]["keelson.io/scheduler-identity"],
        lease["spec"]["holderIdentity"]
    );
    let text = why(&c, &["pod/custom"]);
    assert!(
        text.contains("runs on node only (scheduler \"ignore-taints\")"),
        "{text}"
    );
    let text = why(&c, &["pod/default"]);
    assert!(text.contains("untolerated taint"), "{text}");
}

#[test]
fn disable_scheduler_leaves_pods_pending() {
    let c = Cluster::start_with(ServerOptions {
        extra_args: vec!["--disable-scheduler".into()],
        ..ServerOptions::default()
    });
    node(&c, "n1", "2", json!({}), json!([]));
    create(&c, &pod("p", json!({}), "100m", json!({})));
    std::thread::sleep(Duration::from_millis(1500));
    let p = pod_json(&c, "p");
    assert!(p["spec"]["nodeName"].is_null(), "{p}");
    assert!(
        c.kubectl(&["get", "lease", "kube-scheduler", "-n", "kube-system"])
            .status
            .code()
            == Some(1)
    );
}
