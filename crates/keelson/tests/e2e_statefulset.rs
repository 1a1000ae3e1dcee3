//! End-to-end: the StatefulSet controller inside `keelson server`, pods run by hollow nodes
//! (`keelson simulate`), driven with the real `kubectl`.
//!
//! Covered: OrderedReady creation (seen through a watch: no pod is created before the one
//! below it is Running and Ready), identity labels and hostname, Events, ControllerRevisions
//! and status, `kubectl rollout status`, a partitioned rolling update (only ordinals at or
//! above the partition move to the new revision, highest first) and its completion, scale
//! down from the highest ordinal one at a time, and — with `Parallel` management —
//! claims created per ordinal from volumeClaimTemplates and kept on scale down.

// Integration tests unwrap freely: a panic is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Child;
use std::time::Duration;

use common::Cluster;
use common::hollow::Simulator;
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

fn label<'a>(obj: &'a Value, key: &str) -> &'a str {
    obj["metadata"]["labels"][key].as_str().unwrap_or_default()
}

fn stateful_set(name: &str, replicas: u32, image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "serviceName": name,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": image}],
                         "terminationGracePeriodSeconds": 0},
            },
        },
    })
}

/// Kills a background watch and returns the events it had received.
fn stop_watch(mut child: Child) -> Vec<Value> {
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn event_pod(e: &Value) -> (&str, &str, &Value) {
    let o = &e["object"];
    (
        e["type"].as_str().unwrap_or_default(),
        o["metadata"]["name"].as_str().unwrap_or_default(),
        o,
    )
}

/// The index of the first watch event for which `f(type, name, pod)` holds.
fn first(events: &[Value], f: impl Fn(&str, &str, &Value) -> bool) -> Option<usize> {
    events.iter().position(|e| {
        let (t, n, o) = event_pod(e);
        f(t, n, o)
    })
}

fn set_status(c: &Cluster, name: &str) -> Value {
    c.get_json(&["statefulset", name])["status"].clone()
}

fn pods_of(c: &Cluster, app: &str) -> Vec<Value> {
    items(c, &["pods", "-l", &format!("app={app}")])
}

#[test]
fn statefulsets_order_update_scale_and_keep_claims() {
    let c = Cluster::start();
    let _sim = Simulator::start(&c, &["--nodes", "3"]);
    c.eventually(WAIT, "3 Ready hollow nodes", || {
        items(&c, &["nodes"])
            .iter()
            .filter(|n| condition(n, "Ready")["status"] == "True")
            .count()
            == 3
    });

    // Ordered creation, watched from before the set exists.
    let watch = c.watch_spawn(
        "/api/v1/namespaces/default/pods?watch=1&labelSelector=app%3Dweb",
        120,
    );
    std::thread::sleep(Duration::from_millis(300));
    c.ok_stdin(
        &["apply", "-f", "-"],
        &stateful_set("web", 3, "nginx:1.27").to_string(),
    );
    c.eventually(WAIT, "3 ready web pods", || {
        let pods = pods_of(&c, "web");
        pods.len() == 3 && pods.iter().all(running_and_ready)
    });
    let out = c.ok(&["rollout", "status", "statefulset/web", "--timeout=60s"]);
    // The server defaults `rollingUpdate.partition` to 0, so kubectl reports a partitioned
    // roll out, as it does against upstream.
    assert!(
        out.contains("partitioned roll out complete: 3 new pods have been updated"),
        "{out}"
    );
    let events = stop_watch(watch);
    for (lower, upper) in [("web-0", "web-1"), ("web-1", "web-2")] {
        let created = first(&events, |t, n, _| t == "ADDED" && n == upper)
            .unwrap_or_else(|| panic!("no ADDED event for {upper}: {events:?}"));
        let ready = first(&events, |_, n, o| n == lower && running_and_ready(o))
            .unwrap_or_else(|| panic!("{lower} never Ready in the watch"));
        assert!(
            ready < created,
            "{upper} was created (event {created}) before {lower} was Ready (event {ready})"
        );
    }

    // Identity, revision label, status and Events.
    let web1 = c.get_json(&["pod", "web-1"]);
    assert_eq!(label(&web1, "statefulset.kubernetes.io/pod-name"), "web-1");
    assert_eq!(label(&web1, "apps.kubernetes.io/pod-index"), "1");
    assert_eq!(web1["spec"]["hostname"], "web-1");
    assert_eq!(web1["spec"]["subdomain"], "web");
    let owner = &web1["metadata"]["ownerReferences"][0];
    assert_eq!(
        (owner["kind"].as_str(), owner["controller"].as_bool()),
        (Some("StatefulSet"), Some(true))
    );
    let st = set_status(&c, "web");
    let rev1 = st["currentRevision"].as_str().unwrap().to_string();
    assert_eq!(st["updateRevision"], rev1.as_str());
    assert_eq!(label(&web1, "controller-revision-hash"), rev1);
    assert_eq!(
        (
            st["replicas"].as_i64(),
            st["readyReplicas"].as_i64(),
            st["availableReplicas"].as_i64()
        ),
        (Some(3), Some(3), Some(3))
    );
    assert_eq!(st["observedGeneration"], 1);
    let revs = items(&c, &["controllerrevisions", "-l", "app=web"]);
    assert_eq!(revs.len(), 1, "{revs:?}");
    assert_eq!(revs[0]["metadata"]["name"], rev1.as_str());
    assert_eq!(revs[0]["revision"], 1);
    let messages: Vec<String> = items(
        &c,
        &["events", "--field-selector", "involvedObject.name=web"],
    )
    .iter()
    .map(|e| {
        format!(
            "{} {}",
            e["reason"].as_str().unwrap_or_default(),
            e["message"].as_str().unwrap_or_default()
        )
    })
    .collect();
    assert!(
        messages.contains(
            &"SuccessfulCreate create Pod web-0 in StatefulSet web successful".to_string()
        ),
        "{messages:?}"
    );

    // A partitioned rolling update moves only ordinals >= 2.
    c.ok(&[
        "patch", "statefulset", "web", "--type=merge", "-p",
        r#"{"spec":{"updateStrategy":{"type":"RollingUpdate","rollingUpdate":{"partition":2}},"template":{"spec":{"containers":[{"name":"c","image":"nginx:1.28"}]}}}}"#,
    ]);
    let mut rev2 = String::new();
    c.eventually(WAIT, "web-2 at the update revision", || {
        let st = set_status(&c, "web");
        rev2 = st["updateRevision"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        rev2 != rev1
            && st["updatedReplicas"] == 1
            && st["readyReplicas"] == 3
            && pods_of(&c, "web").iter().any(|p| {
                p["metadata"]["name"] == "web-2"
                    && label(p, "controller-revision-hash") == rev2
                    && running_and_ready(p)
            })
    });
    let out = c.ok(&["rollout", "status", "statefulset/web", "--timeout=60s"]);
    assert!(
        out.contains("partitioned roll out complete: 1 new pods have been updated"),
        "{out}"
    );
    for p in pods_of(&c, "web") {
        let want = if p["metadata"]["name"] == "web-2" {
            &rev2
        } else {
            &rev1
        };
        assert_eq!(
            label(&p, "controller-revision-hash"),
            want,
            "{}",
            p["metadata"]["name"]
        );
    }
    let st = set_status(&c, "web");
    assert_eq!(st["currentRevision"], rev1.as_str());
    assert_eq!(st["currentReplicas"], 2);
    assert_eq!(
        items(&c, &["controllerrevisions", "-l", "app=web"]).len(),
        2
    );

    // Partition 0 finishes it; the update revision becomes current.
    c.ok(&[
        "patch",
        "statefulset",
        "web",
        "--type=merge",
        "-p",
        r#"{"spec":{"updateStrategy":{"rollingUpdate":{"partition":0}}}}"#,
    ]);
    let out = c.ok(&["rollout", "status", "statefulset/web", "--timeout=60s"]);
    assert!(
        out.contains("partitioned roll out complete: 3 new pods have been updated"),
        "{out}"
    );
    c.eventually(WAIT, "every web pod updated and current", || {
        let st = set_status(&c, "web");
        st["currentRevision"] == rev2.as_str()
            && st["currentReplicas"] == 3
            && pods_of(&c, "web")
                .iter()
                .all(|p| label(p, "controller-revision-hash") == rev2 && running_and_ready(p))
    });

    // Scale down: web-2 goes first, and is gone before web-1 starts going.
    let watch = c.watch_spawn(
        "/api/v1/namespaces/default/pods?watch=1&labelSelector=app%3Dweb",
        120,
    );
    std::thread::sleep(Duration::from_millis(300));
    c.ok(&["scale", "statefulset", "web", "--replicas=1"]);
    c.eventually(WAIT, "one web pod left", || {
        let pods = pods_of(&c, "web");
        pods.len() == 1 && pods[0]["metadata"]["name"] == "web-0"
    });
    let events = stop_watch(watch);
    // Going: a deletionTimestamp, or straight to DELETED (grace period 0).
    let going = |name: &'static str| {
        move |t: &str, n: &str, o: &Value| {
            n == name && (t == "DELETED" || !o["metadata"]["deletionTimestamp"].is_null())
        }
    };
    let two_gone = first(&events, |t, n, _| t == "DELETED" && n == "web-2").expect("web-2 deleted");
    let one_going = first(&events, going("web-1")).expect("web-1 deleted");
    let two_going = first(&events, going("web-2")).expect("web-2 deleted");
    assert!(
        two_going <= two_gone && two_gone < one_going,
        "web-1 started terminating before web-2 was gone: {events:?}"
    );
    assert!(first(&events, going("web-0")).is_none());

    // Parallel management with claim templates: one claim per ordinal, kept on scale down.
    // (The scheduler does not bind pods with claims yet, so these pods stay Pending, which
    // Parallel management does not wait for.)
    let mut db = stateful_set("db", 2, "postgres:17");
    db["spec"]["podManagementPolicy"] = json!("Parallel");
    db["spec"]["volumeClaimTemplates"] = json!([{
        "metadata": {"name": "data", "labels": {"tier": "storage"}},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }]);
    c.ok_stdin(&["apply", "-f", "-"], &db.to_string());
    c.eventually(WAIT, "db pods and claims", || {
        pods_of(&c, "db").len() == 2 && items(&c, &["pvc", "-l", "app=db"]).len() == 2
    });
    let claims: Vec<String> = items(&c, &["pvc", "-l", "app=db,tier=storage"])
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(claims, ["data-db-0", "data-db-1"]);
    let db0 = c.get_json(&["pod", "db-0"]);
    let vols = db0["spec"]["volumes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        vols.iter()
            .any(|v| v["name"] == "data" && v["persistentVolumeClaim"]["claimName"] == "data-db-0"),
        "{vols:?}"
    );
    c.ok(&["scale", "statefulset", "db", "--replicas=1"]);
    c.eventually(WAIT, "db scaled to one pod", || {
        let pods = pods_of(&c, "db");
        pods.len() == 1 && pods[0]["metadata"]["name"] == "db-0"
    });
    assert_eq!(
        items(&c, &["pvc", "-l", "app=db"]).len(),
        2,
        "claims are retained on scale down by default"
    );
}
