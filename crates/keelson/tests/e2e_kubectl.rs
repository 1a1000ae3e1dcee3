//! End-to-end: the everyday kubectl workflows — apply (twice, with changes), get in every output
//! format, describe, patch (all three types), scale, edit, diff, explain, wait --for=delete —
//! across namespaced and cluster-scoped kinds.

// Integration tests unwrap freely: a panic is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::Cluster;
use serde_json::Value;

const DEPLOYMENT: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: nginx
        image: nginx:1.25
        ports:
        - containerPort: 80
        env:
        - {name: A, value: "1"}
        - {name: B, value: "2"}
"#;

#[test]
fn apply_twice_with_changes_keeps_one_object_and_merges() {
    let c = Cluster::start();
    c.ok(&["create", "namespace", "shop"]);
    let out = c.ok_stdin(&["apply", "-f", "-"], DEPLOYMENT);
    assert!(out.contains("deployment.apps/web created"), "{out}");
    let first = c.get_json(&["deployment", "web", "-n", "shop"]);
    assert_eq!(first["metadata"]["generation"], 1);
    // Defaults are visible as on a real cluster.
    assert_eq!(first["spec"]["strategy"]["type"], "RollingUpdate");
    assert_eq!(
        first["spec"]["strategy"]["rollingUpdate"]["maxSurge"],
        "25%"
    );
    assert_eq!(first["spec"]["revisionHistoryLimit"], 10);
    assert_eq!(
        first["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"],
        "IfNotPresent"
    );
    assert_eq!(first["spec"]["template"]["spec"]["restartPolicy"], "Always");

    // Re-applying the same manifest changes nothing.
    let out = c.ok_stdin(&["apply", "-f", "-"], DEPLOYMENT);
    assert!(out.contains("deployment.apps/web unchanged"), "{out}");
    // (The Deployment controller writes status meanwhile, so compare what apply could change.)
    let same = c.get_json(&["deployment", "web", "-n", "shop"]);
    assert_eq!(
        same["metadata"]["generation"],
        first["metadata"]["generation"]
    );
    assert_eq!(same["spec"], first["spec"]);
    assert_eq!(
        same["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"],
        first["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
    );

    // Change the image, drop env B, add a label: a strategic merge patch computed by kubectl.
    let changed = DEPLOYMENT
        .replace("nginx:1.25", "nginx:1.26")
        .replace("        - {name: B, value: \"2\"}\n", "")
        .replace(
            "labels: {app: web}\nspec:\n  replicas",
            "labels: {app: web, tier: front}\nspec:\n  replicas",
        );
    let out = c.ok_stdin(&["apply", "-f", "-"], &changed);
    assert!(out.contains("deployment.apps/web configured"), "{out}");
    let after = c.get_json(&["deployment", "web", "-n", "shop"]);
    assert_eq!(after["metadata"]["uid"], first["metadata"]["uid"]);
    assert_eq!(after["metadata"]["generation"], 2);
    assert_eq!(after["metadata"]["labels"]["tier"], "front");
    let container = &after["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["image"], "nginx:1.26");
    let env: Vec<&str> = container["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(env, ["A"]);
    // A field set by someone else survives (three-way merge): scale, then re-apply.
    c.ok(&["scale", "deployment", "web", "-n", "shop", "--replicas=4"]);
    assert_eq!(
        c.get_json(&["deployment", "web", "-n", "shop"])["spec"]["replicas"],
        4
    );
    c.ok_stdin(&["apply", "-f", "-"], &changed);
    assert_eq!(
        c.get_json(&["deployment", "web", "-n", "shop"])["spec"]["replicas"],
        2
    );
}

#[test]
fn get_output_formats() {
    let c = Cluster::start();
    c.ok(&["create", "namespace", "shop"]);
    c.ok_stdin(&["apply", "-f", "-"], DEPLOYMENT);
    let yaml = c.ok(&["get", "deployment", "web", "-n", "shop", "-o", "yaml"]);
    assert!(
        yaml.contains("kind: Deployment") && yaml.contains("image: nginx:1.25"),
        "{yaml}"
    );
    let name = c.ok(&[
        "get",
        "deployment",
        "web",
        "-n",
        "shop",
        "-o",
        "jsonpath={.metadata.name}:{.spec.replicas}",
    ]);
    assert_eq!(name, "web:2");
    let names = c.ok(&["get", "deployments", "-A", "-o", "name"]);
    assert_eq!(names.trim(), "deployment.apps/web");
    let table = c.ok(&["get", "deployments", "-n", "shop"]);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]);
    let wide = c.ok(&["get", "deployments", "-n", "shop", "-o", "wide"]);
    let header: Vec<&str> = wide.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "NAME",
            "READY",
            "UP-TO-DATE",
            "AVAILABLE",
            "AGE",
            "CONTAINERS",
            "IMAGES",
            "SELECTOR"
        ]
    );
    assert!(
        wide.contains("nginx:1.25") && wide.contains("app=web"),
        "{wide}"
    );
    let all_ns = c.ok(&["get", "deployments", "-A"]);
    assert!(
        all_ns.lines().next().unwrap().starts_with("NAMESPACE"),
        "{all_ns}"
    );
    let labels = c.ok(&["get", "deployments", "-n", "shop", "--show-labels"]);
    assert!(labels.contains("app=web"), "{labels}");
    let custom = c.ok(&[
        "get",
        "deployments",
        "-n",
        "shop",
        "-o",
        "custom-columns=N:.metadata.name,IMG:.spec.template.spec.containers[0].image",
    ]);
    assert!(
        custom
            .lines()
            .nth(1)
            .unwrap()
            .split_whitespace()
            .eq(["web", "nginx:1.25"]),
        "{custom}"
    );
    let described = c.ok(&["describe", "deployment", "web", "-n", "shop"]);
    for want in [
        "Name:",
        "web",
        "Namespace:",
        "shop",
        "Selector:",
        "app=web",
        "Replicas:",
        "2 desired",
        "nginx:1.25",
    ] {
        assert!(
            described.contains(want),
            "describe lacks {want:?}:\n{described}"
        );
    }
}

#[test]
fn patch_in_all_three_types() {
    let c = Cluster::start();
    c.ok(&[
        "create",
        "configmap",
        "p",
        "--from-literal=a=1",
        "--from-literal=b=2",
    ]);
    c.ok(&["patch", "configmap", "p", "-p", r#"{"data":{"c":"3"}}"#]);
    c.ok(&[
        "patch",
        "configmap",
        "p",
        "--type=merge",
        "-p",
        r#"{"data":{"a":null}}"#,
    ]);
    c.ok(&[
        "patch",
        "configmap",
        "p",
        "--type=json",
        "-p",
        r#"[{"op":"replace","path":"/data/b","value":"20"}]"#,
    ]);
    let cm = c.get_json(&["configmap", "p"]);
    assert_eq!(cm["data"], serde_json::json!({"b": "20", "c": "3"}));

    // Strategic merge on a merge-keyed list: containers by name.
    c.ok(&["run", "pp", "--image=busybox:1.36", "--", "sleep", "3600"]);
    c.ok(&[
        "patch",
        "pod",
        "pp",
        "-p",
        r#"{"spec":{"containers":[{"name":"pp","image":"busybox:1.37"}]}}"#,
    ]);
    let pod = c.get_json(&["pod", "pp"]);
    assert_eq!(pod["spec"]["containers"].as_array().unwrap().len(), 1);
    assert_eq!(pod["spec"]["containers"][0]["image"], "busybox:1.37");
    assert_eq!(pod["spec"]["containers"][0]["args"][0], "sleep");

    // A failing JSON patch test leaves the object untouched.
    let err = c.fails(&[
        "patch",
        "configmap",
        "p",
        "--type=json",
        "-p",
        r#"[{"op":"test","path":"/data/b","value":"nope"},{"op":"remove","path":"/data/c"}]"#,
    ]);
    assert!(!err.is_empty());
    assert_eq!(c.get_json(&["configmap", "p"])["data"]["c"], "3");
}

#[test]
fn scale_edit_diff_and_explain() {
    let c = Cluster::start();
    c.ok(&["create", "namespace", "shop"]);
    c.ok_stdin(&["apply", "-f", "-"], DEPLOYMENT);
    c.ok(&["scale", "deployment/web", "-n", "shop", "--replicas=7"]);
    let scale = c.get_json(&["deployment", "web", "-n", "shop", "--subresource=scale"]);
    assert_eq!(scale["kind"], "Scale");
    assert_eq!(scale["spec"]["replicas"], 7);
    assert_eq!(scale["status"]["selector"], "app=web");
    // Scale with a stale precondition fails.
    let err = c.fails(&[
        "scale",
        "deployment/web",
        "-n",
        "shop",
        "--replicas=3",
        "--current-replicas=5",
    ]);
    assert!(
        err.to_lowercase().contains("expected replicas to be 5"),
        "{err}"
    );
    assert_eq!(
        c.get_json(&["deployment", "web", "-n", "shop"])["spec"]["replicas"],
        7
    );

    let out = c.kubectl_cmd_env_edit(
        &["edit", "deployment", "web", "-n", "shop"],
        "s/nginx:1.25/nginx:1.27/",
    );
    assert!(out.contains("edited"), "{out}");
    let d = c.get_json(&["deployment", "web", "-n", "shop"]);
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.27"
    );

    // diff shows the change and exits 1; no change → exit 0.
    let changed = DEPLOYMENT.replace("nginx:1.25", "nginx:1.28");
    let out = c.kubectl_stdin(&["diff", "-f", "-"], &changed);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("+        image: nginx:1.28"), "{text}");
    // diff is a dry run: nothing changed on the server (the controllers may still write
    // status, so compare what diff could have changed).
    let d2 = c.get_json(&["deployment", "web", "-n", "shop"]);
    assert_eq!(d2["metadata"]["generation"], d["metadata"]["generation"]);
    assert_eq!(d2["spec"], d["spec"]);

    let explain = c.ok(&["explain", "pod.spec.containers"]);
    assert!(
        explain.contains("KIND:") && explain.contains("Pod"),
        "{explain}"
    );
    assert!(
        explain.contains("FIELD: containers <[]Container>"),
        "{explain}"
    );
    assert!(explain.contains("image"), "{explain}");
    let explain = c.ok(&["explain", "deployments.spec.strategy"]);
    assert!(explain.contains("rollingUpdate"), "{explain}");
}

#[test]
fn cluster_scoped_kinds_and_wait_for_delete() {
    let c = Cluster::start();
    let pc = "apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata:\n  name: high\nvalue: 1000\ndescription: important\n";
    assert!(
        c.ok_stdin(&["apply", "-f", "-"], pc)
            .contains("priorityclass.scheduling.k8s.io/high created")
    );
    let got = c.get_json(&["priorityclass", "high"]);
    assert_eq!(got["value"], 1000);
    assert!(got["metadata"].get("namespace").is_none());
    c.ok(&["label", "priorityclass", "high", "team=a"]);
    assert_eq!(
        c.get_json(&["pc", "-l", "team=a"])["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    let role = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: reader\nrules:\n- apiGroups: [\"\"]\n  resources: [pods]\n  verbs: [get, list]\n";
    c.ok_stdin(&["apply", "-f", "-"], role);
    c.ok(&[
        "create",
        "clusterrolebinding",
        "rb",
        "--clusterrole=reader",
        "--user=alice",
    ]);
    assert_eq!(
        c.get_json(&["clusterrolebinding", "rb"])["roleRef"]["name"],
        "reader"
    );
    let sc = "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata:\n  name: local\nprovisioner: kubernetes.io/no-provisioner\n";
    c.ok_stdin(&["apply", "-f", "-"], sc);
    assert_eq!(
        c.get_json(&["storageclass", "local"])["reclaimPolicy"],
        "Delete"
    );

    // kubectl wait --for=delete returns once the object is gone.
    let waiter = {
        let kc = c.kubeconfig();
        std::thread::spawn(move || {
            std::process::Command::new(common::KUBECTL)
                .args([
                    "wait",
                    "--for=delete",
                    "priorityclass/high",
                    "--timeout=30s",
                ])
                .env("KUBECONFIG", kc)
                .output()
                .expect("kubectl wait")
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    c.ok(&["delete", "priorityclass", "high"]);
    let out = waiter.join().unwrap();
    common::assert_success(&["wait"], &out);
    assert!(
        c.fails(&["get", "priorityclass", "high"])
            .contains("NotFound")
    );
    c.ok(&["delete", "clusterrolebinding", "rb"]);
    c.ok(&["delete", "clusterrole", "reader"]);
}

#[test]
fn get_watch_streams_changes() {
    let c = Cluster::start();
    c.ok(&["create", "configmap", "w0"]);
    let kc = c.kubeconfig();
    let watcher = std::thread::spawn(move || {
        std::process::Command::new(common::KUBECTL)
            .args([
                "get",
                "configmaps",
                "-w",
                "--request-timeout=6s",
                "-o",
                "name",
            ])
            .env("KUBECONFIG", kc)
            .output()
            .expect("kubectl get -w")
    });
    std::thread::sleep(Duration::from_millis(1500));
    c.ok(&["create", "configmap", "w1"]);
    c.ok(&["label", "configmap", "w1", "x=y"]);
    c.ok(&["delete", "configmap", "w1"]);
    let out = watcher.join().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.contains(&"configmap/w0"), "{text}");
    assert!(
        lines.iter().filter(|l| **l == "configmap/w1").count() >= 3,
        "{text}"
    );
    let json = c.get_json(&["configmaps"]);
    let v: Vec<&Value> = json["items"].as_array().unwrap().iter().collect();
    assert!(v.iter().all(|i| i["metadata"]["name"] != "w1"));
}

trait EditExt {
    fn kubectl_cmd_env_edit(&self, args: &[&str], sed: &str) -> String;
}

impl EditExt for Cluster {
    /// Runs `kubectl edit` with an EDITOR that applies a sed expression to the file.
    fn kubectl_cmd_env_edit(&self, args: &[&str], sed: &str) -> String {
        let out = std::process::Command::new(common::KUBECTL)
            .args(args)
            .env("KUBECONFIG", self.kubeconfig())
            .env("EDITOR", format!("sed -i {sed}"))
            .output()
            .expect("kubectl edit");
        common::assert_success(args, &out);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}
