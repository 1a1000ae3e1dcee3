//! End-to-end: an etcd outage while `keelson server --datastore etcd://...` runs. Requests that
//! need etcd answer `Status` errors — 504 while etcd hangs (SIGSTOP), 503 while it is gone
//! (SIGKILL) — within the request timeout, the server keeps running, and service resumes by
//! itself when etcd returns: no restart, no lost objects, watches working again.

// Integration tests unwrap freely: a panic is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::etcd::Etcd;
use common::{Cluster, ServerOptions};
use serde_json::{Value, json};

const CMS: &str = "/api/v1/namespaces/outage/configmaps";

fn configmap(name: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name},
        "data": {"k": name},
    }))
    .unwrap()
}

/// A create that must fail with a `Status` of `code` naming the etcd endpoint, well within
/// the request timeout (10 s) plus slack: a client is never left hanging.
#[track_caller]
fn create_fails(c: &Cluster, etcd: &Etcd, name: &str, code: u16, reason: &str) -> Value {
    let started = Instant::now();
    let status = c.status(
        "POST",
        CMS,
        Some(&configmap(name)),
        Some("application/json"),
        code,
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the failing create took {:?}",
        started.elapsed()
    );
    assert_eq!(status["reason"], reason, "{status}");
    let message = status["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("127.0.0.1:{}", etcd.client_port)),
        "the message names the etcd endpoint: {message}"
    );
    status
}

#[track_caller]
fn creates_again(c: &Cluster, name: &str) {
    c.eventually(
        Duration::from_secs(30),
        &format!("creating {name} once etcd is back"),
        || {
            c.curl(
                "POST",
                CMS,
                Some(&configmap(name)),
                Some("application/json"),
            )
            .0 == 201
        },
    );
}

#[test]
fn etcd_outages_are_status_errors_and_service_resumes() {
    let mut etcd = Etcd::start();
    let c = Cluster::start_with(ServerOptions {
        extra_args: vec!["--datastore".into(), etcd.datastore()],
        share_ca_with: None,
    });
    c.ok(&["create", "namespace", "outage"]);
    c.ok(&["create", "configmap", "before", "-n", "outage"]);

    // etcd hangs: the write cannot be answered in time.
    etcd.signal("STOP");
    let hung = create_fails(&c, &etcd, "hung", 504, "Timeout");
    eprintln!("while etcd hangs: {}", hung["message"]);
    etcd.signal("CONT");
    creates_again(&c, "after-hang");

    // A watch opened before etcd goes away; it may end during the outage, but a new one from
    // its last resourceVersion must pick up the writes made after etcd is back.
    let list: Value = serde_json::from_str(&c.curl("GET", CMS, None, None).1).unwrap();
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();

    // etcd is gone: refused connections, reported as unavailable.
    etcd.kill();
    let gone = create_fails(&c, &etcd, "gone", 503, "ServiceUnavailable");
    eprintln!("while etcd is down: {}", gone["message"]);
    // Reads that need etcd fail the same way (a consistent list, and a list the watch cache
    // could have answered were it not relisting); never a hang or a crash.
    for path in [CMS.to_string(), format!("{CMS}?resourceVersion=0")] {
        let status = c.status("GET", &path, None, None, 503);
        assert_eq!(status["reason"], "ServiceUnavailable", "{status}");
    }
    assert!(c.pid().is_some(), "the server is still running");

    etcd.restart();
    creates_again(&c, "after-restart");
    // Nothing lost, nothing half-written. The create that timed out while etcd hung reached
    // etcd and may have taken effect once etcd resumed (as its 504 message warns); the one
    // refused while etcd was gone did not.
    let names = c.ok(&["get", "configmaps", "-n", "outage", "-o", "name"]);
    let names: Vec<&str> = names
        .lines()
        .filter(|n| *n != "configmap/hung" && *n != "configmap/kube-root-ca.crt")
        .collect();
    assert_eq!(
        names,
        [
            "configmap/after-hang",
            "configmap/after-restart",
            "configmap/before"
        ],
    );
    assert!(
        hung["message"]
            .as_str()
            .unwrap()
            .contains("may still take effect")
    );

    // Watches work again, resuming from before the outage.
    let events = c.watch_events(&format!("{CMS}?watch=1&resourceVersion={rv}"), 3);
    let added: Vec<&str> = events
        .iter()
        .filter(|e| e["type"] == "ADDED")
        .map(|e| e["object"]["metadata"]["name"].as_str().unwrap())
        .filter(|n| *n != "hung")
        .collect();
    assert_eq!(added, ["after-restart"], "{events:?}\n{}", c.log());
    let watch = c.watch_spawn(&format!("{CMS}?watch=1&resourceVersion={rv}"), 4);
    std::thread::sleep(Duration::from_millis(500));
    c.ok(&["create", "configmap", "live", "-n", "outage"]);
    let events = Cluster::watch_collect(watch);
    assert!(
        events
            .iter()
            .any(|e| e["type"] == "ADDED" && e["object"]["metadata"]["name"] == "live"),
        "{events:?}"
    );
    let log = c.log();
    assert!(!log.contains("panicked"), "{log}");
}
