//! End-to-end: list paging and resourceVersion semantics, field selectors, and watches (resume,
//! selector transitions, initial events with bookmarks, 410 for a revision before the window).

// Integration tests unwrap freely: a panic is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::Cluster;
use serde_json::{Value, json};

fn create_cms(c: &Cluster, ns: &str, n: usize) {
    for i in 0..n {
        let body = serde_json::to_vec(&json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("cm-{i:03}")}})).unwrap();
        let (code, text) = c.curl(
            "POST",
            &format!("/api/v1/namespaces/{ns}/configmaps"),
            Some(&body),
            Some("application/json"),
        );
        assert_eq!(code, 201, "{text}");
    }
}

fn get(c: &Cluster, path: &str) -> Value {
    let (code, text) = c.curl("GET", path, None, None);
    assert_eq!(code, 200, "GET {path}: {text}");
    serde_json::from_str(&text).unwrap()
}

fn names(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| common::made_by_test(i))
        .map(|i| i["metadata"]["name"].as_str().unwrap().to_string())
        .collect()
}

fn rv(v: &Value) -> i64 {
    v["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn paging_is_a_consistent_snapshot() {
    let c = Cluster::start();
    c.ok(&["create", "namespace", "p"]);
    create_cms(&c, "p", 25);
    let base = "/api/v1/namespaces/p/configmaps";
    let first = get(&c, &format!("{base}?limit=10"));
    assert_eq!(names(&first).len(), 10);
    assert_eq!(first["kind"], "ConfigMapList");
    let token = first["metadata"]["continue"].as_str().unwrap().to_string();
    let snapshot = rv(&first);
    // Changes after the first page do not show up in later pages.
    c.ok(&["delete", "configmap", "cm-015", "-n", "p"]);
    c.ok(&["create", "configmap", "cm-999", "-n", "p"]);
    let mut all = names(&first);
    let mut token = Some(token);
    while let Some(t) = token {
        let page = get(&c, &format!("{base}?limit=10&continue={t}"));
        assert_eq!(rv(&page), snapshot);
        all.extend(names(&page));
        token = page["metadata"]["continue"]
            .as_str()
            .filter(|s| !s.is_empty())
            .map(str::to_string);
    }
    let expected: Vec<String> = (0..25).map(|i| format!("cm-{i:03}")).collect();
    assert_eq!(all, expected);
    // kubectl pages transparently.
    let out = c.ok(&[
        "get",
        "configmaps",
        "-n",
        "p",
        "--chunk-size=7",
        "-o",
        "name",
    ]);
    let ours = out.lines().filter(|n| *n != "configmap/kube-root-ca.crt");
    assert_eq!(ours.count(), 25);
    assert!(out.contains("configmap/cm-999") && !out.contains("configmap/cm-015"));
}

#[test]
fn resource_version_semantics() {
    let c = Cluster::start();
    c.ok(&["create", "namespace", "r"]);
    create_cms(&c, "r", 3);
    let base = "/api/v1/namespaces/r/configmaps";
    let before = get(&c, base);
    let at = rv(&before);
    c.ok(&["delete", "configmap", "cm-001", "-n", "r"]);
    // resourceVersion=0: any state will do; NotOlderThan: at least `at`; unset: the latest.
    assert_eq!(
        names(&get(&c, &format!("{base}?resourceVersion=0"))).len(),
        2
    );
    let newer = get(
        &c,
        &format!("{base}?resourceVersion={at}&resourceVersionMatch=NotOlderThan"),
    );
    assert!(rv(&newer) >= at);
    assert_eq!(names(&get(&c, base)), ["cm-000", "cm-002"]);
    // Exact: the list as it was.
    let exact = get(
        &c,
        &format!("{base}?resourceVersion={at}&resourceVersionMatch=Exact"),
    );
    assert_eq!(names(&exact), ["cm-000", "cm-001", "cm-002"]);
    assert_eq!(rv(&exact), at);
    // A revision from the future times out with 504.
    let s = c.status(
        "GET",
        &format!("{base}?resourceVersion={}", at + 1_000_000),
        None,
        None,
        504,
    );
    assert_eq!(s["reason"], "Timeout");
    // Exact needs a revision.
    c.status(
        "GET",
        &format!("{base}?resourceVersionMatch=Exact"),
        None,
        None,
        400,
    );
}

#[test]
fn field_selectors() {
    let c = Cluster::start();
    c.ok(&["run", "a", "--image=busybox"]);
    c.ok(&["run", "b", "--image=busybox"]);
    let pods = get(
        &c,
        "/api/v1/namespaces/default/pods?fieldSelector=metadata.name%3Db",
    );
    assert_eq!(names(&pods), ["b"]);
    let unscheduled = get(&c, "/api/v1/pods?fieldSelector=spec.nodeName%3D");
    assert_eq!(names(&unscheduled), ["a", "b"]);
    let pending = c.get_json(&[
        "pods",
        "--field-selector=status.phase=Pending,metadata.name!=a",
    ]);
    assert_eq!(names(&pending), ["b"]);
    let ns = c.get_json(&["namespaces", "--field-selector=metadata.name=kube-system"]);
    assert_eq!(names(&ns), ["kube-system"]);
}

#[test]
fn watch_resumes_and_follows_selectors() {
    let c = Cluster::start();
    c.ok(&["create", "configmap", "a"]);
    let start = rv(&c.get_json(&["configmap", "a"]));
    c.ok(&["create", "configmap", "b"]);
    c.ok(&["label", "configmap", "b", "x=1"]);
    // Resuming after `start` replays exactly what happened since.
    let events = c.watch_events(
        &format!("/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={start}"),
        2,
    );
    let seen: Vec<(String, String)> = events
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap().to_string(),
                e["object"]["metadata"]["name"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("ADDED".into(), "b".into()),
            ("MODIFIED".into(), "b".into())
        ]
    );
    let mut last = start;
    for e in &events {
        let r = rv(&e["object"]);
        assert!(r > last, "events out of order");
        last = r;
    }

    // A selector watch sees objects enter (ADDED) and leave (DELETED) its selection.
    let watch = c.watch_spawn(
        "/api/v1/namespaces/default/configmaps?watch=true&labelSelector=x%3D1&resourceVersion=0",
        4,
    );
    std::thread::sleep(Duration::from_millis(800));
    c.ok(&["label", "configmap", "a", "x=1"]);
    c.ok(&["label", "configmap", "b", "x-"]);
    c.ok(&["delete", "configmap", "a"]);
    let events = Cluster::watch_collect(watch);
    let seen: Vec<(String, String)> = events
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap().to_string(),
                e["object"]["metadata"]["name"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("ADDED".into(), "b".into()),   // initial state
            ("ADDED".into(), "a".into()),   // starts matching
            ("DELETED".into(), "b".into()), // stops matching
            ("DELETED".into(), "a".into()),
        ]
    );
}

#[test]
fn initial_events_end_with_a_bookmark() {
    let c = Cluster::start();
    c.ok(&["create", "configmap", "one"]);
    c.ok(&["create", "configmap", "two"]);
    let events = c.watch_events(
        "/api/v1/namespaces/default/configmaps?watch=true&sendInitialEvents=true&allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan&resourceVersion=",
        2,
    );
    let events: Vec<Value> = events
        .into_iter()
        .filter(|e| common::made_by_test(&e["object"]))
        .collect();
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["ADDED", "ADDED", "BOOKMARK"], "{events:?}");
    let bookmark = &events[2]["object"];
    assert_eq!(
        bookmark["metadata"]["annotations"]["k8s.io/initial-events-end"],
        "true"
    );
    assert!(rv(bookmark) >= rv(&events[1]["object"]));
}

#[test]
fn watch_resumes_across_a_restart() {
    let mut c = Cluster::start();
    c.ok(&["create", "configmap", "old"]);
    let old = rv(&c.get_json(&["configmap", "old"]));
    c.ok(&["create", "configmap", "newer"]);
    // After a restart the watch cache starts at the current revision; a client resuming from
    // before that is served from the store's history instead of being told to relist.
    c.restart();
    let watch = c.watch_spawn(
        &format!("/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={old}"),
        3,
    );
    std::thread::sleep(std::time::Duration::from_millis(800));
    c.ok(&["create", "configmap", "fresh"]);
    let events = Cluster::watch_collect(watch);
    let seen: Vec<(&str, &str)> = events
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap(),
                e["object"]["metadata"]["name"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(seen, [("ADDED", "newer"), ("ADDED", "fresh")], "{events:?}");
}

#[test]
fn compacted_revisions_are_gone_and_kubectl_relists() {
    let options = common::ServerOptions {
        extra_args: [
            "--compaction-interval=200ms",
            "--compaction-min-age=0s",
            "--compaction-min-revisions=0",
        ]
        .map(String::from)
        .to_vec(),
        share_ca_with: None,
    };
    let mut c = Cluster::start_with(options);
    c.ok(&["create", "configmap", "c"]);
    let first = rv(&c.get_json(&["configmap", "c"]));
    for i in 0..3 {
        c.ok(&[
            "label",
            "configmap",
            "c",
            &format!("step={i}"),
            "--overwrite",
        ]);
    }
    // Wait for automatic compaction to pass the first revision.
    c.eventually(std::time::Duration::from_secs(10), "compaction", || {
        c.curl("GET", &format!("/api/v1/namespaces/default/configmaps?resourceVersion={first}&resourceVersionMatch=Exact"), None, None).0 == 410
    });
    let s = c.status("GET", &format!("/api/v1/namespaces/default/configmaps?resourceVersion={first}&resourceVersionMatch=Exact"), None, None, 410);
    assert_eq!(s["reason"], "Expired");
    assert!(
        s["message"]
            .as_str()
            .unwrap()
            .starts_with(&format!("too old resource version: {first} (")),
        "{s}"
    );
    // After a restart the cache window starts now, and the store no longer has the history:
    // the watch gets the 410 ERROR event.
    c.restart();
    let events = c.watch_events(
        &format!("/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={first}"),
        2,
    );
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["type"], "ERROR");
    assert_eq!(events[0]["object"]["code"], 410);
    // kubectl get -w (a list, then a watch from it) is unaffected.
    let out = c.ok(&["get", "configmaps", "-o", "name"]);
    assert!(out.contains("configmap/c"));
}
