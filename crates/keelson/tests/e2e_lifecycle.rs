//! End-to-end: the lifecycle controllers in `keelson server` (garbage collector, namespace
//! controller, ServiceAccount controller, root CA publisher), driven with the real `kubectl`.
//! Owners and dependents are ConfigMaps and Secrets with ownerReferences set by hand, so no
//! other controller takes part.

// Integration tests unwrap freely: a panic is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::Cluster;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

/// Creates ConfigMap `name` in `ns` and returns its UID.
fn configmap(c: &Cluster, ns: &str, name: &str) -> String {
    c.ok(&["create", "configmap", name, "-n", ns]);
    uid(c, ns, "configmap", name)
}

fn uid(c: &Cluster, ns: &str, kind: &str, name: &str) -> String {
    c.get_json(&[kind, name, "-n", ns])["metadata"]["uid"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// An owner reference to ConfigMap `name` with `uid`.
fn owner(name: &str, uid: &str, block: bool) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "name": name, "uid": uid,
           "blockOwnerDeletion": block})
}

/// Creates a `kind` (ConfigMap or Secret) `name` in `ns` owned through `owners`.
fn dependent(c: &Cluster, ns: &str, kind: &str, name: &str, owners: Value, finalizers: Value) {
    let obj = json!({
        "apiVersion": "v1", "kind": kind,
        "metadata": {"name": name, "namespace": ns, "ownerReferences": owners,
                     "finalizers": finalizers},
    });
    c.ok_stdin(&["create", "-f", "-"], &obj.to_string());
}

fn exists(c: &Cluster, ns: &str, kind: &str, name: &str) -> bool {
    let out = c.kubectl(&[
        "get",
        kind,
        name,
        "-n",
        ns,
        "--ignore-not-found",
        "-o",
        "name",
    ]);
    !String::from_utf8_lossy(&out.stdout).trim().is_empty()
}

fn owner_uids(c: &Cluster, ns: &str, kind: &str, name: &str) -> Vec<String> {
    c.get_json(&[kind, name, "-n", ns])["metadata"]["ownerReferences"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|r| r["uid"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn garbage_collection_in_all_three_modes() {
    let c = Cluster::start();
    let ns = "gc";
    c.ok(&["create", "namespace", ns]);

    // Background: dependents of both kinds go once the owner is gone.
    let o = configmap(&c, ns, "bg-owner");
    dependent(
        &c,
        ns,
        "ConfigMap",
        "bg-cm",
        json!([owner("bg-owner", &o, true)]),
        json!([]),
    );
    dependent(
        &c,
        ns,
        "Secret",
        "bg-secret",
        json!([owner("bg-owner", &o, false)]),
        json!([]),
    );
    c.ok(&[
        "delete",
        "configmap",
        "bg-owner",
        "-n",
        ns,
        "--cascade=background",
    ]);
    c.eventually(WAIT, "background dependents collected", || {
        !exists(&c, ns, "configmap", "bg-cm") && !exists(&c, ns, "secret", "bg-secret")
    });

    // Foreground: the owner stays, with its foregroundDeletion finalizer, while a blocking
    // dependent exists (held here by a finalizer of ours).
    let o = configmap(&c, ns, "fg-owner");
    dependent(
        &c,
        ns,
        "ConfigMap",
        "fg-dep",
        json!([owner("fg-owner", &o, true)]),
        json!(["example.com/hold"]),
    );
    c.ok(&[
        "delete",
        "configmap",
        "fg-owner",
        "-n",
        ns,
        "--cascade=foreground",
        "--wait=false",
    ]);
    c.eventually(WAIT, "the blocking dependent being deleted", || {
        c.get_json(&["configmap", "fg-dep", "-n", ns])["metadata"]["deletionTimestamp"].is_string()
    });
    let owner_now = c.get_json(&["configmap", "fg-owner", "-n", ns]);
    assert!(
        owner_now["metadata"]["deletionTimestamp"].is_string(),
        "{owner_now}"
    );
    assert_eq!(
        owner_now["metadata"]["finalizers"],
        json!(["foregroundDeletion"])
    );
    c.ok(&[
        "patch",
        "configmap",
        "fg-dep",
        "-n",
        ns,
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ]);
    c.eventually(
        WAIT,
        "the foreground owner removed after its dependent",
        || !exists(&c, ns, "configmap", "fg-dep") && !exists(&c, ns, "configmap", "fg-owner"),
    );

    // Orphan: the owner goes, the dependent stays without its reference.
    let o = configmap(&c, ns, "or-owner");
    dependent(
        &c,
        ns,
        "ConfigMap",
        "or-dep",
        json!([owner("or-owner", &o, true)]),
        json!([]),
    );
    c.ok(&[
        "delete",
        "configmap",
        "or-owner",
        "-n",
        ns,
        "--cascade=orphan",
    ]);
    assert!(!exists(&c, ns, "configmap", "or-owner"));
    assert!(exists(&c, ns, "configmap", "or-dep"));
    assert!(owner_uids(&c, ns, "configmap", "or-dep").is_empty());

    // A dangling reference (an owner that never existed) is collected.
    dependent(
        &c,
        ns,
        "ConfigMap",
        "dangling",
        json!([owner(
            "ghost",
            "0b4d2d8e-0000-4000-8000-00000000dead",
            false
        )]),
        json!([]),
    );
    c.eventually(WAIT, "the dependent of a missing owner collected", || {
        !exists(&c, ns, "configmap", "dangling")
    });

    // Two owners: kept while one remains, the reference to the gone one dropped.
    let a = configmap(&c, ns, "owner-a");
    let b = configmap(&c, ns, "owner-b");
    dependent(
        &c,
        ns,
        "ConfigMap",
        "shared",
        json!([owner("owner-a", &a, false), owner("owner-b", &b, false)]),
        json!([]),
    );
    c.ok(&["delete", "configmap", "owner-a", "-n", ns]);
    c.eventually(WAIT, "the reference to the deleted owner dropped", || {
        owner_uids(&c, ns, "configmap", "shared") == [b.clone()]
    });
    assert!(exists(&c, ns, "configmap", "shared"));
    c.ok(&["delete", "configmap", "owner-b", "-n", ns]);
    c.eventually(WAIT, "the dependent collected after its last owner", || {
        !exists(&c, ns, "configmap", "shared")
    });
    // A cluster-scoped owner of a namespaced dependent.
    c.ok(&["create", "priorityclass", "gc-owner", "--value=7"]);
    let pc = c.get_json(&["priorityclass", "gc-owner"])["metadata"]["uid"]
        .as_str()
        .unwrap()
        .to_owned();
    let pc_ref = json!([{"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                         "name": "gc-owner", "uid": pc}]);
    dependent(&c, ns, "ConfigMap", "of-cluster-owner", pc_ref, json!([]));
    c.ok(&["delete", "priorityclass", "gc-owner"]);
    c.eventually(
        WAIT,
        "the dependent of a cluster-scoped owner collected",
        || !exists(&c, ns, "configmap", "of-cluster-owner"),
    );

    // An owner reference names its owner in the dependent's own namespace: a ConfigMap that
    // exists only in another namespace does not count, and the dependent is collected.
    c.ok(&["create", "namespace", "elsewhere"]);
    let far = configmap(&c, "elsewhere", "far-owner");
    dependent(
        &c,
        ns,
        "ConfigMap",
        "cross-ns",
        json!([owner("far-owner", &far, false)]),
        json!([]),
    );
    c.eventually(
        WAIT,
        "the dependent of an owner in another namespace collected",
        || !exists(&c, ns, "configmap", "cross-ns"),
    );
    assert!(exists(&c, "elsewhere", "configmap", "far-owner"));

    // The orphaned dependent was never touched again.
    assert!(exists(&c, ns, "configmap", "or-dep"));
}

#[test]
fn deleting_a_namespace_deletes_its_content_then_the_namespace() {
    let c = Cluster::start();
    let ns = "doomed";
    c.ok(&["create", "namespace", ns]);
    c.ok(&["create", "configmap", "plain", "-n", ns]);
    c.ok(&[
        "create",
        "secret",
        "generic",
        "s",
        "-n",
        ns,
        "--from-literal=a=b",
    ]);
    c.ok(&["run", "p", "--image=busybox", "-n", ns]);
    dependent(
        &c,
        ns,
        "ConfigMap",
        "held",
        json!([]),
        json!(["example.com/hold"]),
    );
    c.ok(&["delete", "namespace", ns, "--wait=false"]);

    // Held by a finalizer: the conditions say what remains and why.
    c.eventually(WAIT, "terminating conditions", || {
        let conds = c.get_json(&["namespace", ns])["status"]["conditions"].clone();
        let find = |t: &str| {
            conds
                .as_array()
                .and_then(|a| a.iter().find(|x| x["type"] == t).cloned())
                .unwrap_or(Value::Null)
        };
        find("NamespaceFinalizersRemaining")["message"]
            == "Some finalizers are remaining: example.com/hold in 1 resource instances"
            && find("NamespaceContentRemaining")["message"]
                == "Some resources are remaining: configmaps. has 1 resource instances"
            && find("NamespaceDeletionDiscoveryFailure")["status"] == "False"
            && find("NamespaceDeletionContentFailure")["reason"] == "ContentDeleted"
    });
    for (kind, name) in [("configmap", "plain"), ("secret", "s"), ("pod", "p")] {
        assert!(!exists(&c, ns, kind, name), "{kind} {name} still there");
    }
    assert_eq!(
        c.get_json(&["namespace", ns])["status"]["phase"],
        "Terminating"
    );

    c.ok(&[
        "patch",
        "configmap",
        "held",
        "-n",
        ns,
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ]);
    c.ok(&["wait", "--for=delete", "namespace/doomed", "--timeout=30s"]);
    assert!(c.fails(&["get", "namespace", ns]).contains("NotFound"));
}

#[test]
fn every_namespace_gets_a_default_service_account_and_the_root_ca() {
    let c = Cluster::start();
    let ns = "fresh";
    c.ok(&["create", "namespace", ns]);
    c.eventually(WAIT, "default ServiceAccount and kube-root-ca.crt", || {
        exists(&c, ns, "serviceaccount", "default")
            && exists(&c, ns, "configmap", "kube-root-ca.crt")
    });
    let cm = c.get_json(&["configmap", "kube-root-ca.crt", "-n", ns]);
    let pem = cm["data"]["ca.crt"].as_str().unwrap().to_owned();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
    assert!(
        cm["metadata"]["annotations"]["kubernetes.io/description"]
            .as_str()
            .unwrap()
            .starts_with("Contains a CA bundle that can be used to verify the kube-apiserver")
    );
    // The existing namespaces have them too.
    for existing in ["default", "kube-system"] {
        c.eventually(WAIT, "content in the built-in namespaces", || {
            exists(&c, existing, "serviceaccount", "default")
                && exists(&c, existing, "configmap", "kube-root-ca.crt")
        });
    }

    // Deleted: both come back (as new objects).
    let sa_uid = uid(&c, ns, "serviceaccount", "default");
    let cm_uid = uid(&c, ns, "configmap", "kube-root-ca.crt");
    c.ok(&["delete", "serviceaccount", "default", "-n", ns]);
    c.ok(&["delete", "configmap", "kube-root-ca.crt", "-n", ns]);
    c.eventually(WAIT, "both recreated", || {
        exists(&c, ns, "serviceaccount", "default")
            && exists(&c, ns, "configmap", "kube-root-ca.crt")
            && uid(&c, ns, "serviceaccount", "default") != sa_uid
            && uid(&c, ns, "configmap", "kube-root-ca.crt") != cm_uid
    });

    // Edited: repaired.
    c.ok(&[
        "patch",
        "configmap",
        "kube-root-ca.crt",
        "-n",
        ns,
        "--type=merge",
        "-p",
        r#"{"data":{"ca.crt":"tampered","extra":"x"}}"#,
    ]);
    c.eventually(WAIT, "kube-root-ca.crt repaired", || {
        c.get_json(&["configmap", "kube-root-ca.crt", "-n", ns])["data"] == json!({"ca.crt": pem})
    });
}
