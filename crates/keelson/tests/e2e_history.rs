//! End-to-end: `keelson history KIND/NAME` shows every retained revision of an object — who
//! changed it, when, and a diff between consecutive versions — including deletion and
//! re-creation.

// Integration tests unwrap freely: a panic is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;

use common::Cluster;

fn history(c: &Cluster, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_keelson"))
        .arg("history")
        .args(args)
        .env("KUBECONFIG", c.kubeconfig())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn history_shows_revisions_authors_and_diffs() {
    let c = Cluster::start();
    c.ok(&["create", "namespace", "h"]);
    c.ok(&[
        "create",
        "configmap",
        "settings",
        "-n",
        "h",
        "--from-literal=color=blue",
    ]);
    c.ok(&[
        "patch",
        "configmap",
        "settings",
        "-n",
        "h",
        "-p",
        r#"{"data":{"color":"red"}}"#,
    ]);
    c.ok(&["label", "configmap", "settings", "-n", "h", "tier=web"]);
    c.ok(&["delete", "configmap", "settings", "-n", "h"]);
    c.ok(&[
        "create",
        "configmap",
        "settings",
        "-n",
        "h",
        "--from-literal=color=green",
    ]);

    let (ok, out, err) = history(&c, &["cm/settings", "-n", "h"]);
    assert!(ok, "{err}");
    assert!(
        out.starts_with("configmaps/settings in h: 5 retained revision(s)"),
        "{out}"
    );
    let headers: Vec<&str> = out.lines().filter(|l| l.starts_with("revision ")).collect();
    assert_eq!(headers.len(), 5, "{out}");
    let kinds: Vec<&str> = headers
        .iter()
        .map(|h| h.split_whitespace().nth(2).unwrap())
        .collect();
    assert_eq!(kinds, ["ADDED", "MODIFIED", "MODIFIED", "DELETED", "ADDED"]);
    assert!(
        headers[0].contains("by keelson-admin [create]"),
        "{}",
        headers[0]
    );
    assert!(
        headers[1].contains("by keelson-admin [update]"),
        "{}",
        headers[1]
    );
    // Diffs between consecutive versions.
    assert!(
        out.contains("-  color: blue") && out.contains("+  color: red"),
        "{out}"
    );
    assert!(out.contains("+    tier: web"), "{out}");
    assert!(out.contains("+  color: green"), "{out}");
    // Revisions are increasing.
    let revs: Vec<i64> = headers
        .iter()
        .map(|h| h.split_whitespace().nth(1).unwrap().parse().unwrap())
        .collect();
    assert!(revs.windows(2).all(|w| w[0] < w[1]), "{revs:?}");

    // Cluster-scoped objects and kubectl-style names.
    let (ok, out, _) = history(&c, &["namespace/h"]);
    assert!(
        ok && out.starts_with("namespaces/h: 1 retained revision(s)"),
        "{out}"
    );

    // Clear errors.
    let (ok, _, err) = history(&c, &["cm/missing", "-n", "h"]);
    assert!(
        !ok && err.contains("configmaps \"missing\" not found"),
        "{err}"
    );
    let (ok, _, err) = history(&c, &["widgets/x"]);
    assert!(
        !ok && err.contains("\"widgets\" is not a resource"),
        "{err}"
    );
    let (ok, _, err) = history(&c, &["settings"]);
    assert!(!ok && err.contains("KIND/NAME"), "{err}");
}
