//! End-to-end: the ReplicaSet and ReplicationController controllers inside `keelson server`,
//! with pods run by hollow nodes (`keelson simulate`), driven with the real `kubectl`.
//!
//! Covered: scale up and down (scale-down takes unscheduled pods first), replacement of a
//! deleted pod, adoption of a matching orphan (which then counts as a replica), release of a
//! relabeled pod (which is then replaced), the printed columns and Events, the same for a
//! ReplicationController, and no over-creation while a burst of creations is in flight.

// Integration tests unwrap freely: a panic is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::Cluster;
use common::hollow::Simulator;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

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

/// The pods with `app=<app>` that are not being deleted.
fn active_pods(c: &Cluster, app: &str) -> Vec<Value> {
    items(c, &["pods", "-l", &format!("app={app}")])
        .into_iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .collect()
}

fn name(obj: &Value) -> String {
    obj["metadata"]["name"].as_str().unwrap().to_string()
}

fn names(pods: &[Value]) -> BTreeSet<String> {
    pods.iter().map(name).collect()
}

fn running_and_ready(p: &Value) -> bool {
    p["status"]["phase"] == "Running" && condition(p, "Ready")["status"] == "True"
}

fn start_nodes(c: &Cluster, nodes: &str) -> Simulator {
    let sim = Simulator::start(c, &["--nodes", nodes]);
    let want: usize = nodes.parse().unwrap();
    c.eventually(WAIT, &format!("{nodes} Ready hollow nodes"), || {
        items(c, &["nodes"])
            .iter()
            .filter(|n| condition(n, "Ready")["status"] == "True")
            .count()
            == want
    });
    sim
}

fn template(app: &str) -> Value {
    json!({
        "metadata": {"labels": {"app": app}, "annotations": {"note": app}},
        "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}],
                 "terminationGracePeriodSeconds": 0},
    })
}

fn replica_set(name: &str, app: &str, replicas: u32) -> String {
    json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": app}},
                 "template": template(app)},
    })
    .to_string()
}

/// The DESIRED, CURRENT and READY columns of `kubectl get <kind> <name>`.
fn columns(c: &Cluster, kind: &str, name: &str) -> Vec<String> {
    let out = c.ok(&["get", kind, name, "--no-headers"]);
    out.split_whitespace()
        .skip(1)
        .take(3)
        .map(str::to_string)
        .collect()
}

/// Waits for exactly `n` active `app` pods, all Running and Ready; returns them.
#[track_caller]
fn converged(c: &Cluster, app: &str, n: usize) -> Vec<Value> {
    let mut pods = Vec::new();
    c.eventually(WAIT, &format!("{n} running {app} pods"), || {
        pods = active_pods(c, app);
        pods.len() == n && pods.iter().all(running_and_ready)
    });
    pods
}

/// The controller reference of a pod, if any.
fn controller(p: &Value) -> Value {
    p["metadata"]["ownerReferences"]
        .as_array()
        .and_then(|rs| rs.iter().find(|r| r["controller"] == true).cloned())
        .unwrap_or(Value::Null)
}

fn events(c: &Cluster, kind: &str, name: &str, reason: &str) -> Vec<Value> {
    items(c, &["events"])
        .into_iter()
        .filter(|e| {
            e["involvedObject"]["kind"] == kind
                && e["involvedObject"]["name"] == name
                && e["reason"] == reason
        })
        .collect()
}

#[test]
fn replica_sets_scale_replace_adopt_and_release() {
    let c = Cluster::start();
    let _sim = start_nodes(&c, "3");

    // Three replicas, made from the template and owned by the ReplicaSet.
    c.ok_stdin(&["create", "-f", "-"], &replica_set("web", "web", 3));
    let uid = c.get_json(&["rs", "web"])["metadata"]["uid"].clone();
    let pods = converged(&c, "web", 3);
    for p in &pods {
        assert!(name(p).starts_with("web-"), "{p}");
        assert_eq!(p["metadata"]["generateName"], "web-");
        assert_eq!(p["metadata"]["annotations"]["note"], "web");
        let owner = controller(p);
        assert_eq!(owner["kind"], "ReplicaSet");
        assert_eq!(owner["name"], "web");
        assert_eq!(owner["uid"], uid);
        assert_eq!(owner["blockOwnerDeletion"], true);
    }
    c.eventually(WAIT, "kubectl get rs to show 3/3/3", || {
        columns(&c, "rs", "web") == ["3", "3", "3"]
    });
    let rs = c.get_json(&["rs", "web"]);
    assert_eq!(rs["status"]["availableReplicas"], 3);
    assert_eq!(rs["status"]["fullyLabeledReplicas"], 3);
    assert_eq!(
        rs["status"]["observedGeneration"],
        rs["metadata"]["generation"]
    );
    c.eventually(WAIT, "SuccessfulCreate events in describe", || {
        let d = c.ok(&["describe", "rs", "web"]);
        d.contains("SuccessfulCreate") && d.contains("Created pod: web-")
    });
    let created = events(&c, "ReplicaSet", "web", "SuccessfulCreate");
    assert_eq!(created[0]["source"]["component"], "replicaset-controller");

    // With every node cordoned, two more replicas stay Pending and unscheduled.
    let running = names(&pods);
    c.ok(&["cordon", "hollow-0", "hollow-1", "hollow-2"]);
    c.ok(&["scale", "rs", "web", "--replicas=5"]);
    let mut pending = BTreeSet::new();
    c.eventually(WAIT, "5 web pods, 2 of them pending", || {
        let pods = active_pods(&c, "web");
        pending = pods
            .iter()
            .filter(|p| p["spec"]["nodeName"].is_null())
            .map(name)
            .collect();
        pods.len() == 5 && pending.len() == 2
    });
    c.eventually(WAIT, "status to count 5 replicas, 3 ready", || {
        let s = c.get_json(&["rs", "web"])["status"].clone();
        s["replicas"] == 5 && s["readyReplicas"] == 3
    });

    // Scale-down takes an unscheduled pod first, then the other, then running ones.
    c.ok(&["scale", "rs", "web", "--replicas=4"]);
    c.eventually(WAIT, "4 web pods", || active_pods(&c, "web").len() == 4);
    let now = names(&active_pods(&c, "web"));
    assert!(running.is_subset(&now), "running pods kept: {now:?}");
    assert_eq!(now.difference(&running).count(), 1, "{now:?} {pending:?}");
    c.ok(&["scale", "rs", "web", "--replicas=1"]);
    c.eventually(WAIT, "1 web pod", || active_pods(&c, "web").len() == 1);
    let last = names(&active_pods(&c, "web"));
    assert!(last.is_subset(&running), "a running pod is kept: {last:?}");
    c.eventually(WAIT, "SuccessfulDelete events", || {
        c.ok(&["describe", "rs", "web"])
            .contains("Deleted pod: web-")
    });
    c.ok(&["uncordon", "hollow-0", "hollow-1", "hollow-2"]);

    // A deleted pod is replaced.
    let victim = last.iter().next().unwrap().clone();
    c.ok(&["delete", "pod", &victim, "--wait=false"]);
    let replacement = converged(&c, "web", 1);
    assert_ne!(name(&replacement[0]), victim);
    c.eventually(WAIT, "kubectl get rs to show 1/1/1", || {
        columns(&c, "rs", "web") == ["1", "1", "1"]
    });

    // A running orphan with matching labels is adopted and counts: the ReplicaSet creates
    // only two pods for three replicas.
    let stray = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "stray", "labels": {"app": "adopt"}},
        "spec": template("adopt")["spec"].clone(),
    });
    c.ok_stdin(&["create", "-f", "-"], &stray.to_string());
    converged(&c, "adopt", 1);
    c.ok_stdin(&["create", "-f", "-"], &replica_set("adopter", "adopt", 3));
    let adopter = c.get_json(&["rs", "adopter"])["metadata"]["uid"].clone();
    let pods = converged(&c, "adopt", 3);
    c.eventually(WAIT, "stray to be adopted", || {
        controller(&c.get_json(&["pod", "stray"]))["uid"] == adopter
    });
    let made: Vec<String> = names(&pods)
        .into_iter()
        .filter(|n| n.starts_with("adopter-"))
        .collect();
    assert_eq!(made.len(), 2, "{:?}", names(&pods));
    c.eventually(WAIT, "adopter status to count 3 ready", || {
        columns(&c, "rs", "adopter") == ["3", "3", "3"]
    });

    // Relabeling an owned pod releases it, and a replacement is made.
    let released = made[0].clone();
    c.ok(&["label", "pod", &released, "app=gone", "--overwrite"]);
    c.eventually(WAIT, "the relabeled pod to be released", || {
        controller(&c.get_json(&["pod", &released])).is_null()
    });
    let pods = converged(&c, "adopt", 3);
    assert!(!names(&pods).contains(&released));
    assert_eq!(
        active_pods(&c, "gone").len(),
        1,
        "the released pod lives on"
    );
    c.eventually(WAIT, "adopter status back to 3 ready", || {
        columns(&c, "rs", "adopter") == ["3", "3", "3"]
    });
}

#[test]
fn replication_controllers_scale_and_bursts_never_over_create() {
    let c = Cluster::start();
    let _sim = start_nodes(&c, "3");

    // A ReplicationController: the same logic, a map selector, its own Event source.
    let rc = json!({
        "apiVersion": "v1", "kind": "ReplicationController",
        "metadata": {"name": "legacy"},
        "spec": {"replicas": 2, "selector": {"app": "legacy"}, "template": template("legacy")},
    });
    c.ok_stdin(&["create", "-f", "-"], &rc.to_string());
    let pods = converged(&c, "legacy", 2);
    for p in &pods {
        assert!(name(p).starts_with("legacy-"));
        assert_eq!(controller(p)["kind"], "ReplicationController");
        assert_eq!(controller(p)["apiVersion"], "v1");
    }
    c.eventually(WAIT, "kubectl get rc to show 2/2/2", || {
        columns(&c, "rc", "legacy") == ["2", "2", "2"]
    });
    c.ok(&["scale", "rc", "legacy", "--replicas=4"]);
    converged(&c, "legacy", 4);
    c.ok(&["scale", "rc", "legacy", "--replicas=1"]);
    converged(&c, "legacy", 1);
    c.eventually(WAIT, "kubectl get rc to show 1/1/1", || {
        columns(&c, "rc", "legacy") == ["1", "1", "1"]
    });
    c.eventually(WAIT, "RC events from the replication-controller", || {
        let created = events(&c, "ReplicationController", "legacy", "SuccessfulCreate");
        let deleted = events(&c, "ReplicationController", "legacy", "SuccessfulDelete");
        created.len() == 4
            && deleted.len() == 3
            && created
                .iter()
                .all(|e| e["source"]["component"] == "replication-controller")
    });

    // minReadySeconds: pods count as available only after being ready that long. Nothing
    // changes once they are ready, so getting there takes the controller's own requeue.
    let mut slow: Value = serde_json::from_str(&replica_set("slow", "slow", 2)).unwrap();
    slow["spec"]["minReadySeconds"] = json!(2);
    c.ok_stdin(&["create", "-f", "-"], &slow.to_string());
    converged(&c, "slow", 2);
    c.eventually(WAIT, "2 available slow replicas", || {
        let s = c.get_json(&["rs", "slow"])["status"].clone();
        s["readyReplicas"] == 2 && s["availableReplicas"] == 2
    });

    // 0 → 50 at once: however the creations interleave with the cache catching up, there
    // are never more than 50 pods, and exactly 50 are ever created.
    c.ok_stdin(&["create", "-f", "-"], &replica_set("burst", "burst", 0));
    c.eventually(WAIT, "burst status to be observed", || {
        c.get_json(&["rs", "burst"])["status"]["observedGeneration"] == 1
    });
    c.ok(&["scale", "rs", "burst", "--replicas=50"]);
    let mut most = 0;
    c.eventually(Duration::from_secs(60), "50 ready burst replicas", || {
        let pods = items(&c, &["pods", "-l", "app=burst"]);
        most = most.max(pods.len());
        assert!(most <= 50, "{most} burst pods exist");
        let ready = c.get_json(&["rs", "burst"])["status"]["readyReplicas"].clone();
        pods.len() == 50 && ready == 50
    });
    c.eventually(WAIT, "50 SuccessfulCreate events", || {
        events(&c, "ReplicaSet", "burst", "SuccessfulCreate").len() >= 50
    });
    assert_eq!(
        events(&c, "ReplicaSet", "burst", "SuccessfulCreate").len(),
        50
    );
    assert_eq!(items(&c, &["pods", "-l", "app=burst"]).len(), 50);
}
