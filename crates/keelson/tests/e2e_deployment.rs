//! End-to-end: Deployments on hollow nodes, driven with the real kubectl — create, rolling
//! update, rollout history/undo/pause/resume/restart, Recreate, the progress deadline, and a
//! server restart in the middle of a rollout.

// Integration tests unwrap freely: a panic is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::Cluster;
use common::hollow::Simulator;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(60);

fn rollout_status(c: &Cluster, name: &str) -> String {
    c.ok(&[
        "rollout",
        "status",
        &format!("deployment/{name}"),
        "--timeout=60s",
    ])
}

fn replicasets(c: &Cluster, app: &str) -> Vec<Value> {
    c.get_json(&["rs", "-l", &format!("app={app}")])["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn pods(c: &Cluster, app: &str) -> Vec<Value> {
    c.get_json(&["pods", "-l", &format!("app={app}")])["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn images(c: &Cluster, app: &str) -> Vec<String> {
    let mut v: Vec<String> = pods(c, app)
        .iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .map(|p| {
            p["spec"]["containers"][0]["image"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    v.sort();
    v
}

fn condition(d: &Value, type_: &str) -> Value {
    d["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == type_).cloned())
        .unwrap_or(Value::Null)
}

#[test]
fn rolling_updates_history_undo_pause_and_restart() {
    let c = Cluster::start();
    let _sim = Simulator::start(&c, &["--nodes", "3"]);
    c.ok(&[
        "create",
        "deployment",
        "web",
        "--image=nginx:1.0",
        "--replicas=4",
    ]);
    let out = rollout_status(&c, "web");
    assert!(out.contains("successfully rolled out"), "{out}");
    let d = c.get_json(&["deployment", "web"]);
    assert_eq!(d["status"]["availableReplicas"], 4, "{d}");
    assert_eq!(condition(&d, "Available")["status"], "True");
    assert_eq!(
        condition(&d, "Progressing")["reason"],
        "NewReplicaSetAvailable"
    );
    assert_eq!(
        d["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "1"
    );
    let rs = replicasets(&c, "web");
    assert_eq!(rs.len(), 1);
    let hash = rs[0]["metadata"]["labels"]["pod-template-hash"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(rs[0]["metadata"]["name"], format!("web-{hash}"));
    assert_eq!(
        rs[0]["spec"]["selector"]["matchLabels"]["pod-template-hash"],
        hash.as_str()
    );
    assert_eq!(
        rs[0]["metadata"]["ownerReferences"][0]["kind"],
        "Deployment"
    );

    // Rolling update: never more than replicas + maxSurge (25% of 4 → 1) pods.
    c.ok(&["set", "image", "deployment/web", "nginx=nginx:2.0"]);
    let mut most = 0;
    c.eventually(WAIT, "the rollout to finish", || {
        let n = pods(&c, "web")
            .iter()
            .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
            .count();
        most = most.max(n);
        images(&c, "web") == vec!["nginx:2.0"; 4]
    });
    assert!(most <= 5, "{most} pods at once");
    rollout_status(&c, "web");
    let rs = replicasets(&c, "web");
    assert_eq!(rs.len(), 2);
    let old: Vec<&Value> = rs.iter().filter(|r| r["spec"]["replicas"] == 0).collect();
    assert_eq!(old.len(), 1, "the old ReplicaSet is scaled to zero");
    let history = c.ok(&["rollout", "history", "deployment/web"]);
    assert!(history.contains('1') && history.contains('2'), "{history}");
    let events = c.ok(&["describe", "deployment", "web"]);
    assert!(events.contains("ScalingReplicaSet"), "{events}");

    // Undo goes back to nginx:1.0 with the old ReplicaSet as revision 3.
    c.ok(&["rollout", "undo", "deployment/web"]);
    c.eventually(WAIT, "the undo to finish", || {
        images(&c, "web") == vec!["nginx:1.0"; 4]
    });
    rollout_status(&c, "web");
    assert_eq!(
        replicasets(&c, "web").len(),
        2,
        "the old ReplicaSet was reused"
    );
    let d = c.get_json(&["deployment", "web"]);
    assert_eq!(
        d["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "3"
    );

    // Paused: a new image does not roll, scaling still works; resume rolls.
    c.ok(&["rollout", "pause", "deployment/web"]);
    c.ok(&["set", "image", "deployment/web", "nginx=nginx:3.0"]);
    c.ok(&["scale", "deployment/web", "--replicas=5"]);
    c.eventually(WAIT, "the paused deployment to scale", || {
        images(&c, "web") == vec!["nginx:1.0"; 5]
    });
    let d = c.get_json(&["deployment", "web"]);
    assert_eq!(
        condition(&d, "Progressing")["reason"],
        "DeploymentPaused",
        "{d}"
    );
    c.ok(&["rollout", "resume", "deployment/web"]);
    c.eventually(WAIT, "the resumed rollout", || {
        images(&c, "web") == vec!["nginx:3.0"; 5]
    });
    rollout_status(&c, "web");

    // Restart: new pods from a new ReplicaSet (the restartedAt annotation).
    let before: Vec<String> = pods(&c, "web")
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    c.ok(&["rollout", "restart", "deployment/web"]);
    c.eventually(WAIT, "the restart", || {
        let now = pods(&c, "web");
        now.len() == 5
            && now.iter().all(|p| {
                !before.contains(&p["metadata"]["name"].as_str().unwrap().to_string())
                    && p["status"]["phase"] == "Running"
            })
    });
    rollout_status(&c, "web");
}

#[test]
fn recreate_deadlines_and_restarts() {
    let c = Cluster::start();
    let _sim = Simulator::start(&c, &["--nodes", "2"]);
    let manifest = r#"{"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "db"},
        "spec": {"replicas": 3, "strategy": {"type": "Recreate"},
                 "selector": {"matchLabels": {"app": "db"}},
                 "template": {"metadata": {"labels": {"app": "db"}},
                              "spec": {"containers": [{"name": "db", "image": "db:1"}]}}}}"#;
    c.ok_stdin(&["apply", "-f", "-"], manifest);
    rollout_status(&c, "db");
    // Recreate: no pod of the new version runs while an old one is still there.
    c.ok(&["set", "image", "deployment/db", "db=db:2"]);
    let mut mixed = false;
    c.eventually(WAIT, "the recreate", || {
        let imgs = images(&c, "db");
        mixed |= imgs.contains(&"db:1".to_string()) && imgs.contains(&"db:2".to_string());
        imgs == vec!["db:2"; 3]
    });
    assert!(!mixed, "old and new pods ran together under Recreate");

    // A rollout that cannot progress (a request no node fits) exceeds its deadline.
    c.ok(&[
        "patch",
        "deployment",
        "db",
        "--type=merge",
        "-p",
        r#"{"spec": {"progressDeadlineSeconds": 3, "strategy": {"type": "RollingUpdate"},
            "template": {"spec": {"containers": [{"name": "db", "image": "db:3",
              "resources": {"requests": {"cpu": "500"}}}]}}}}"#,
    ]);
    c.eventually(WAIT, "ProgressDeadlineExceeded", || {
        let d = c.get_json(&["deployment", "db"]);
        condition(&d, "Progressing")["reason"] == "ProgressDeadlineExceeded"
            && condition(&d, "Progressing")["status"] == "False"
    });
    let out = c.fails(&["rollout", "status", "deployment/db", "--timeout=20s"]);
    assert!(out.contains("exceeded its progress deadline"), "{out}");

    // A server restart in the middle of a rollout converges without extra pods.
    c.ok(&["rollout", "undo", "deployment/db"]);
    c.ok(&[
        "patch",
        "deployment",
        "db",
        "--type=merge",
        "-p",
        r#"{"spec": {"replicas": 6}}"#,
    ]);
    c.ok(&["set", "image", "deployment/db", "db=db:4"]);
    let mut c = c;
    c.restart();
    let mut most = 0;
    c.eventually(
        Duration::from_secs(90),
        "the rollout after the restart",
        || {
            let n = pods(&c, "db")
                .iter()
                .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
                .count();
            most = most.max(n);
            images(&c, "db") == vec!["db:4"; 6]
        },
    );
    // replicas 6 + maxSurge 25% (2) at most.
    assert!(most <= 8, "{most} pods at once");
    rollout_status(&c, "db");
}
