//! End-to-end: `keelson server --datastore etcd://...` against a real etcd. Two servers share
//! one etcd and serve the same objects (kubectl through either, a watch on one seeing writes
//! through the other); both keep working after etcd restarts; a server pointed at an etcd that
//! is not there fails at start-up naming the endpoint.

// Integration tests unwrap freely: a panic is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;
use std::time::Duration;

use common::etcd::Etcd;
use common::{Cluster, ServerOptions};
use serde_json::Value;

fn server_on(etcd: &Etcd, share_ca_with: Option<&Cluster>) -> Cluster {
    Cluster::start_with(ServerOptions {
        extra_args: vec!["--datastore".into(), etcd.datastore()],
        share_ca_with: share_ca_with.map(|c| c.data_dir().to_path_buf()),
    })
}

fn rv(v: &Value) -> &str {
    v["metadata"]["resourceVersion"].as_str().unwrap()
}

#[test]
fn two_servers_share_one_etcd() {
    let mut etcd = Etcd::start();
    let a = server_on(&etcd, None);
    let b = server_on(&etcd, Some(&a));
    // The second server reused the first one's CA, so each one's admin credentials work on
    // both.
    assert_eq!(
        std::fs::read(a.data_dir().join("tls/ca.crt")).unwrap(),
        std::fs::read(b.data_dir().join("tls/ca.crt")).unwrap()
    );

    // Written through A, read through B: same object, same resourceVersion.
    a.ok(&["create", "namespace", "shared"]);
    a.ok(&[
        "create",
        "configmap",
        "one",
        "-n",
        "shared",
        "--from-literal=k=v1",
    ]);
    let via_a = a.get_json(&["configmap", "one", "-n", "shared"]);
    let via_b = b.get_json(&["configmap", "one", "-n", "shared"]);
    assert_eq!(via_b["data"]["k"], "v1");
    assert_eq!(rv(&via_b), rv(&via_a));
    assert_eq!(via_b["metadata"]["uid"], via_a["metadata"]["uid"]);
    let listed = b.get_json(&["configmaps", "-n", "shared"]);
    let ours = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| common::made_by_test(i));
    assert_eq!(ours.count(), 1);

    // A watch opened on B sees a write made through A.
    let watch = b.watch_spawn(
        &format!(
            "/api/v1/namespaces/shared/configmaps?watch=1&resourceVersion={}",
            rv(&via_a)
        ),
        4,
    );
    std::thread::sleep(Duration::from_millis(500));
    a.ok(&[
        "create",
        "configmap",
        "two",
        "-n",
        "shared",
        "--from-literal=k=v2",
    ]);
    let events = Cluster::watch_collect(watch);
    let added: Vec<&Value> = events.iter().filter(|e| e["type"] == "ADDED").collect();
    assert_eq!(added.len(), 1, "{events:?}");
    assert_eq!(added[0]["object"]["metadata"]["name"], "two");
    assert_eq!(added[0]["object"]["data"]["k"], "v2");

    // A conflicting update through B, based on what A wrote before, is refused.
    let stale = b.kubectl(&[
        "patch",
        "configmap",
        "one",
        "-n",
        "shared",
        "--type=merge",
        "-p",
        &format!(
            r#"{{"metadata":{{"resourceVersion":"{}"}},"data":{{"k":"x"}}}}"#,
            rv(&via_a)
        ),
    ]);
    assert!(
        stale.status.success(),
        "a patch at the current version succeeds: {}",
        String::from_utf8_lossy(&stale.stderr)
    );
    let again = b.kubectl(&[
        "patch",
        "configmap",
        "one",
        "-n",
        "shared",
        "--type=merge",
        "-p",
        &format!(
            r#"{{"metadata":{{"resourceVersion":"{}"}},"data":{{"k":"y"}}}}"#,
            rv(&via_a)
        ),
    ]);
    assert!(
        !again.status.success(),
        "a patch at an old version conflicts"
    );
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("Conflict")
            || String::from_utf8_lossy(&again.stderr).contains("modified"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(
        a.get_json(&["configmap", "one", "-n", "shared"])["data"]["k"],
        "x"
    );

    // etcd restarts: both servers serve again on their own, old data intact, new writes shared.
    etcd.restart();
    for (name, server) in [("A", &a), ("B", &b)] {
        server.eventually(
            Duration::from_secs(30),
            &format!("kubectl on {name} after the etcd restart"),
            || {
                server
                    .kubectl(&["get", "configmap", "two", "-n", "shared"])
                    .status
                    .success()
            },
        );
    }
    b.eventually(
        Duration::from_secs(30),
        "a create through B after the restart",
        || {
            b.kubectl(&["create", "configmap", "three", "-n", "shared"])
                .status
                .success()
        },
    );
    a.eventually(Duration::from_secs(30), "A lists what B wrote", || {
        let out = a.kubectl(&["get", "configmaps", "-n", "shared", "-o", "name"]);
        String::from_utf8_lossy(&out.stdout).contains("configmap/three")
    });
    let names = a.ok(&["get", "configmaps", "-n", "shared", "-o", "name"]);
    assert_eq!(
        names
            .lines()
            .filter(|n| *n != "configmap/kube-root-ca.crt")
            .collect::<Vec<_>>(),
        ["configmap/one", "configmap/three", "configmap/two"]
    );
}

#[test]
fn server_start_fails_clearly_without_etcd() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_keelson"))
        .args(["server", "--data-dir"])
        .arg(dir.path())
        .args(["--bind", "127.0.0.1:0"])
        .args(["--datastore", &format!("etcd://127.0.0.1:{port}")])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("http://127.0.0.1:{port}")),
        "{stderr}"
    );
    assert!(stderr.contains("Connection refused"), "{stderr}");
    assert!(stderr.contains("--datastore"), "{stderr}");
}
