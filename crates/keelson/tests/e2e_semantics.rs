//! End-to-end: upstream semantics of metadata (generateName, generation, finalizers, graceful
//! deletion, dry runs), subresources, Service allocation, namespace lifecycle and multi-version
//! resources.

// Integration tests unwrap freely: a panic is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Cluster, ServerOptions};
use serde_json::{Value, json};

fn post(c: &Cluster, path: &str, obj: &Value) -> Value {
    let (code, text) = c.curl(
        "POST",
        path,
        Some(&serde_json::to_vec(obj).unwrap()),
        Some("application/json"),
    );
    assert_eq!(code, 201, "POST {path}: {text}");
    serde_json::from_str(&text).unwrap()
}

fn request(c: &Cluster, method: &str, path: &str, body: &Value, ct: &str) -> (u16, Value) {
    let (code, text) = c.curl(
        method,
        path,
        Some(&serde_json::to_vec(body).unwrap()),
        Some(ct),
    );
    (code, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[test]
fn generate_name_generation_and_owner_references() {
    let c = Cluster::start();
    let a = post(
        &c,
        "/api/v1/namespaces/default/configmaps",
        &json!({"metadata": {"generateName": "gen-"}}),
    );
    let b = post(
        &c,
        "/api/v1/namespaces/default/configmaps",
        &json!({"metadata": {"generateName": "gen-"}}),
    );
    let (na, nb) = (
        a["metadata"]["name"].as_str().unwrap(),
        b["metadata"]["name"].as_str().unwrap(),
    );
    assert!(na.starts_with("gen-") && na.len() == 9, "{na}");
    assert_ne!(na, nb);

    let owner = json!([{"apiVersion": "v1", "kind": "ConfigMap", "name": na, "uid": a["metadata"]["uid"], "controller": true}]);
    let owned = post(
        &c,
        "/api/v1/namespaces/default/configmaps",
        &json!({"metadata": {"name": "owned", "ownerReferences": owner}}),
    );
    assert_eq!(owned["metadata"]["ownerReferences"], owner);

    c.ok(&["create", "deployment", "g", "--image=nginx"]);
    let d = c.get_json(&["deployment", "g"]);
    assert_eq!(d["metadata"]["generation"], 1);
    c.ok(&["label", "deployment", "g", "x=y"]);
    assert_eq!(
        c.get_json(&["deployment", "g"])["metadata"]["generation"],
        1,
        "labels are not spec"
    );
    c.ok(&["set", "image", "deployment/g", "nginx=nginx:2"]);
    assert_eq!(
        c.get_json(&["deployment", "g"])["metadata"]["generation"],
        2
    );
}

#[test]
fn finalizers_hold_deletion_until_removed() {
    let c = Cluster::start();
    post(
        &c,
        "/api/v1/namespaces/default/configmaps",
        &json!({"metadata": {"name": "held", "finalizers": ["example.com/hold"]}}),
    );
    let out = c.ok(&["delete", "configmap", "held", "--wait=false"]);
    assert!(out.contains("deleted"), "{out}");
    let held = c.get_json(&["configmap", "held"]);
    assert!(held["metadata"]["deletionTimestamp"].is_string());
    assert_eq!(held["metadata"]["deletionGracePeriodSeconds"], 0);
    // No new finalizers while deleting.
    let err = c.fails(&[
        "patch",
        "configmap",
        "held",
        "--type=json",
        "-p",
        r#"[{"op":"add","path":"/metadata/finalizers/-","value":"example.com/more"}]"#,
    ]);
    assert!(err.contains("no new finalizers"), "{err}");
    // Removing the last finalizer lets the object go.
    c.ok(&[
        "patch",
        "configmap",
        "held",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ]);
    assert!(c.fails(&["get", "configmap", "held"]).contains("NotFound"));

    // Propagation policies add the garbage collector's finalizers.
    post(
        &c,
        "/api/v1/namespaces/default/configmaps",
        &json!({"metadata": {"name": "fg"}}),
    );
    let (code, v) = request(
        &c,
        "DELETE",
        "/api/v1/namespaces/default/configmaps/fg",
        &json!({"propagationPolicy": "Foreground"}),
        "application/json",
    );
    assert_eq!(code, 202, "{v}");
    assert_eq!(v["metadata"]["finalizers"], json!(["foregroundDeletion"]));
    let (code, _) = request(
        &c,
        "DELETE",
        "/api/v1/namespaces/default/configmaps/fg",
        &json!({"propagationPolicy": "Bogus"}),
        "application/json",
    );
    assert_eq!(code, 422);
}

#[test]
fn graceful_deletion_of_a_bound_pod() {
    let c = Cluster::start();
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "bound"},
        "spec": {"nodeName": "node-1", "terminationGracePeriodSeconds": 45, "containers": [{"name": "c", "image": "busybox"}]},
    });
    post(&c, "/api/v1/namespaces/default/pods", &pod);
    let (code, text) = c.curl(
        "DELETE",
        "/api/v1/namespaces/default/pods/bound",
        None,
        None,
    );
    assert_eq!(code, 202, "{text}");
    let p = c.get_json(&["pod", "bound"]);
    assert_eq!(p["metadata"]["deletionGracePeriodSeconds"], 45);
    assert!(p["metadata"]["deletionTimestamp"].is_string());
    let table = c.ok(&["get", "pod", "bound"]);
    assert!(table.contains("Terminating"), "{table}");
    // The node reporting its containers terminated during the grace period keeps the pod.
    let (code, text) = c.curl(
        "PATCH",
        "/api/v1/namespaces/default/pods/bound/status",
        Some(br#"{"status":{"phase":"Succeeded"}}"#),
        Some("application/merge-patch+json"),
    );
    assert_eq!(code, 200, "{text}");
    let p = c.get_json(&["pod", "bound"]);
    assert_eq!(p["status"]["phase"], "Succeeded");
    // The node (or a forced delete) finishes it with a zero grace period.
    c.ok(&["delete", "pod", "bound", "--grace-period=0", "--force"]);
    assert!(c.fails(&["get", "pod", "bound"]).contains("NotFound"));
    // An unscheduled pod goes at once.
    c.ok(&["run", "loose", "--image=busybox"]);
    let (code, _) = c.curl(
        "DELETE",
        "/api/v1/namespaces/default/pods/loose",
        None,
        None,
    );
    assert_eq!(code, 200);
    assert!(c.fails(&["get", "pod", "loose"]).contains("NotFound"));
}

#[test]
fn dry_run_writes_nothing() {
    let c = Cluster::start();
    let out = c.ok(&[
        "create",
        "configmap",
        "dry",
        "--from-literal=a=b",
        "--dry-run=server",
        "-o",
        "json",
    ]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["data"]["a"], "b");
    assert!(c.fails(&["get", "configmap", "dry"]).contains("NotFound"));
    c.ok(&["create", "configmap", "real", "--from-literal=a=b"]);
    let before = c.get_json(&["configmap", "real"]);
    c.ok(&["label", "configmap", "real", "x=1", "--dry-run=server"]);
    c.ok(&["delete", "configmap", "real", "--dry-run=server"]);
    let after = c.get_json(&["configmap", "real"]);
    assert_eq!(before, after);
    // Dry-run Service creates allocate nothing.
    c.ok(&[
        "create",
        "service",
        "nodeport",
        "np",
        "--tcp=80:8080",
        "--dry-run=server",
    ]);
    assert!(c.fails(&["get", "service", "np"]).contains("NotFound"));
}

#[test]
fn status_subresource_splits_spec_and_status() {
    // The Deployment controller would overwrite the status this test writes by hand.
    let c = Cluster::start_with(ServerOptions {
        extra_args: vec!["--controllers=*,-deployment".into()],
        ..Default::default()
    });
    c.ok(&["create", "deployment", "s", "--image=nginx", "--replicas=3"]);
    let status_patch = r#"{"status":{"replicas":3,"readyReplicas":2},"spec":{"replicas":9}}"#;
    c.ok(&[
        "patch",
        "deployment",
        "s",
        "--subresource=status",
        "--type=merge",
        "-p",
        status_patch,
    ]);
    let d = c.get_json(&["deployment", "s"]);
    assert_eq!(d["status"]["readyReplicas"], 2);
    assert_eq!(
        d["spec"]["replicas"], 3,
        "spec does not change through status"
    );
    c.ok(&[
        "patch",
        "deployment",
        "s",
        "--type=merge",
        "-p",
        r#"{"status":{"readyReplicas":0},"spec":{"replicas":4}}"#,
    ]);
    let d = c.get_json(&["deployment", "s"]);
    assert_eq!(
        d["status"]["readyReplicas"], 2,
        "status does not change through the main resource"
    );
    assert_eq!(d["spec"]["replicas"], 4);
    let out = c.ok(&["get", "deployment", "s"]);
    assert!(
        out.lines().nth(1).unwrap().split_whitespace().nth(1) == Some("2/4"),
        "{out}"
    );
}

#[test]
fn scale_on_every_scalable_kind() {
    let c = Cluster::start();
    let rs = r#"{"apiVersion":"apps/v1","kind":"ReplicaSet","metadata":{"name":"rs"},"spec":{"replicas":1,"selector":{"matchLabels":{"a":"b"}},"template":{"metadata":{"labels":{"a":"b"}},"spec":{"containers":[{"name":"c","image":"nginx"}]}}}}"#;
    let sts = r#"{"apiVersion":"apps/v1","kind":"StatefulSet","metadata":{"name":"sts"},"spec":{"replicas":1,"serviceName":"x","selector":{"matchLabels":{"a":"s"}},"template":{"metadata":{"labels":{"a":"s"}},"spec":{"containers":[{"name":"c","image":"nginx"}]}}}}"#;
    let rc = r#"{"apiVersion":"v1","kind":"ReplicationController","metadata":{"name":"rc"},"spec":{"replicas":1,"template":{"metadata":{"labels":{"a":"r"}},"spec":{"containers":[{"name":"c","image":"nginx"}]}}}}"#;
    for m in [rs, sts, rc] {
        c.ok_stdin(&["create", "-f", "-"], m);
    }
    for (kind, sel) in [
        ("replicaset/rs", "a=b"),
        ("statefulset/sts", "a=s"),
        ("replicationcontroller/rc", "a=r"),
    ] {
        c.ok(&["scale", kind, "--replicas=5"]);
        let scale = c.get_json(&[kind, "--subresource=scale"]);
        assert_eq!(scale["spec"]["replicas"], 5, "{kind}");
        assert_eq!(scale["status"]["selector"], sel, "{kind}");
    }
    let err = c.fails(&["scale", "replicaset/rs", "--replicas=-1"]);
    assert!(!err.is_empty());
    assert_eq!(c.get_json(&["replicaset", "rs"])["spec"]["replicas"], 5);
}

#[test]
fn pod_defaults_and_immutable_spec() {
    let c = Cluster::start();
    c.ok_stdin(&["create", "-f", "-"], "apiVersion: v1\nkind: Pod\nmetadata:\n  name: d\nspec:\n  containers:\n  - name: c\n    image: busybox\n    ports: [{containerPort: 80}]\n");
    let p = c.get_json(&["pod", "d"]);
    let spec = &p["spec"];
    assert_eq!(spec["restartPolicy"], "Always");
    assert_eq!(spec["dnsPolicy"], "ClusterFirst");
    assert_eq!(spec["terminationGracePeriodSeconds"], 30);
    assert_eq!(spec["schedulerName"], "default-scheduler");
    assert_eq!(spec["serviceAccountName"], "default");
    assert_eq!(spec["containers"][0]["imagePullPolicy"], "Always");
    assert_eq!(
        spec["containers"][0]["terminationMessagePath"],
        "/dev/termination-log"
    );
    assert_eq!(spec["containers"][0]["ports"][0]["protocol"], "TCP");
    assert_eq!(p["status"]["phase"], "Pending");
    assert_eq!(p["status"]["qosClass"], "BestEffort");
    // Only the image may change.
    c.ok(&["set", "image", "pod/d", "c=busybox:1.36"]);
    let err = c.fails(&[
        "patch",
        "pod",
        "d",
        "-p",
        r#"{"spec":{"containers":[{"name":"c","command":["sh"]}]}}"#,
    ]);
    assert!(
        err.contains("pod updates may not change fields other than"),
        "{err}"
    );
    let out = c.ok(&["get", "pods"]);
    let header: Vec<&str> = out.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]);
    assert!(
        out.lines()
            .nth(1)
            .unwrap()
            .split_whitespace()
            .take(4)
            .eq(["d", "0/1", "Pending", "0"]),
        "{out}"
    );
}

#[test]
fn service_ips_and_node_ports_are_allocated_and_released() {
    let c = Cluster::start();
    c.ok(&["create", "service", "clusterip", "a", "--tcp=80:8080"]);
    let a = c.get_json(&["service", "a"]);
    let ip = a["spec"]["clusterIP"].as_str().unwrap().to_string();
    assert!(ip.starts_with("10.43.") && ip != "10.43.0.1", "{ip}");
    assert_eq!(a["spec"]["clusterIPs"][0], ip.as_str());
    c.ok(&["create", "service", "nodeport", "n", "--tcp=80:8080"]);
    let n = c.get_json(&["service", "n"]);
    let port = n["spec"]["ports"][0]["nodePort"].as_i64().unwrap();
    assert!((30000..=32767).contains(&port), "{port}");
    let out = c.ok(&["get", "services"]);
    let header: Vec<&str> = out.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "NAME",
            "TYPE",
            "CLUSTER-IP",
            "EXTERNAL-IP",
            "PORT(S)",
            "AGE"
        ]
    );
    assert!(out.contains(&format!("80:{port}/TCP")), "{out}");

    // The cluster IP is immutable.
    let err = c.fails(&[
        "patch",
        "service",
        "a",
        "-p",
        r#"{"spec":{"clusterIP":"10.43.9.9","clusterIPs":["10.43.9.9"]}}"#,
    ]);
    assert!(err.contains("may not change once set"), "{err}");
    // Taken addresses and ports are refused; released ones can be taken again.
    let taken = format!(
        r#"{{"apiVersion":"v1","kind":"Service","metadata":{{"name":"b"}},"spec":{{"clusterIP":"{ip}","ports":[{{"port":80}}]}}}}"#
    );
    let err = c.kubectl_stdin(&["create", "-f", "-"], &taken);
    assert!(String::from_utf8_lossy(&err.stderr).contains("already allocated"));
    c.ok(&["delete", "service", "a"]);
    c.ok_stdin(&["create", "-f", "-"], &taken);
    assert_eq!(
        c.get_json(&["service", "b"])["spec"]["clusterIP"],
        ip.as_str()
    );
    let wanted = format!(
        r#"{{"apiVersion":"v1","kind":"Service","metadata":{{"name":"m"}},"spec":{{"type":"NodePort","ports":[{{"port":81,"nodePort":{port}}}]}}}}"#
    );
    assert!(
        !c.kubectl_stdin(&["create", "-f", "-"], &wanted)
            .status
            .success()
    );
    c.ok(&["delete", "service", "n"]);
    c.ok_stdin(&["create", "-f", "-"], &wanted);
}

#[test]
fn terminating_namespaces_refuse_new_content() {
    // The namespace controller would empty and finalize the namespace at once; this test plays
    // its part by hand to see the API's side of a terminating namespace.
    let c = Cluster::start_with(ServerOptions {
        extra_args: vec!["--controllers=*,-namespace".into()],
        ..Default::default()
    });
    c.ok(&["create", "namespace", "doomed"]);
    c.ok(&["create", "configmap", "x", "-n", "doomed"]);
    c.ok(&["delete", "namespace", "doomed", "--wait=false"]);
    let ns = c.get_json(&["namespace", "doomed"]);
    assert_eq!(ns["status"]["phase"], "Terminating");
    assert!(ns["metadata"]["deletionTimestamp"].is_string());
    let err = c.fails(&["create", "configmap", "y", "-n", "doomed"]);
    assert!(err.contains("because it is being terminated"), "{err}");
    let s = c.status(
        "POST",
        "/api/v1/namespaces/doomed/configmaps",
        Some(br#"{"metadata":{"name":"z"}}"#),
        Some("application/json"),
        403,
    );
    assert_eq!(s["reason"], "Forbidden");
    // Updates of existing content are still allowed.
    c.ok(&["label", "configmap", "x", "-n", "doomed", "a=b"]);
    // Finalizing the namespace (what the namespace controller does once it is empty) removes it.
    c.ok(&["delete", "configmap", "x", "-n", "doomed"]);
    let mut ns = ns;
    ns["spec"]["finalizers"] = json!([]);
    let (code, text) = c.curl(
        "PUT",
        "/api/v1/namespaces/doomed/finalize",
        Some(&serde_json::to_vec(&ns).unwrap()),
        Some("application/json"),
    );
    assert_eq!(code, 200, "{text}");
    assert!(
        c.fails(&["get", "namespace", "doomed"])
            .contains("NotFound")
    );
}

#[test]
fn served_versions_share_storage() {
    let c = Cluster::start();
    c.ok(&["create", "deployment", "t", "--image=nginx"]);
    c.ok(&[
        "autoscale",
        "deployment",
        "t",
        "--min=2",
        "--max=5",
        "--cpu-percent=60",
    ]);
    let v1 = c.get_json(&["horizontalpodautoscalers.v1.autoscaling", "t"]);
    assert_eq!(v1["apiVersion"], "autoscaling/v1");
    assert_eq!(v1["spec"]["targetCPUUtilizationPercentage"], 60);
    let v2 = c.get_json(&["horizontalpodautoscalers.v2.autoscaling", "t"]);
    assert_eq!(
        v2["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
        60
    );
    let out = c.ok(&["get", "hpa"]);
    assert!(out.contains("cpu: <unknown>/60%"), "{out}");

    let ev = json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": "e1"},
        "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"},
        "reason": "Started", "message": "hello", "type": "Normal",
        "source": {"component": "kubelet"}, "count": 1,
    });
    post(&c, "/api/v1/namespaces/default/events", &ev);
    let (code, text) = c.curl(
        "GET",
        "/apis/events.k8s.io/v1/namespaces/default/events/e1",
        None,
        None,
    );
    assert_eq!(code, 200, "{text}");
    let newer: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(newer["apiVersion"], "events.k8s.io/v1");
    assert_eq!(newer["note"], "hello");
    assert_eq!(newer["regarding"]["name"], "p");
    let (code, text) = c.curl(
        "GET",
        "/apis/events.k8s.io/v1/namespaces/default/events?fieldSelector=regarding.name%3Dp",
        None,
        None,
    );
    assert_eq!(code, 200, "{text}");
    let list: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    let out = c.ok(&["get", "events"]);
    assert!(out.contains("Started") && out.contains("pod/p"), "{out}");
}

#[test]
fn service_allocations_survive_restart() {
    let mut c = Cluster::start();
    c.ok(&["create", "service", "nodeport", "keep", "--tcp=80:8080"]);
    let svc = c.get_json(&["service", "keep"]);
    let (ip, port) = (
        svc["spec"]["clusterIP"].as_str().unwrap().to_string(),
        svc["spec"]["ports"][0]["nodePort"].as_i64().unwrap(),
    );
    c.restart();
    // The pools are rebuilt from what is stored: the same address and port are still taken.
    let same_ip = format!(
        r#"{{"apiVersion":"v1","kind":"Service","metadata":{{"name":"dup-ip"}},"spec":{{"clusterIP":"{ip}","ports":[{{"port":80}}]}}}}"#
    );
    let out = c.kubectl_stdin(&["create", "-f", "-"], &same_ip);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("already allocated"),
        "{out:?}"
    );
    let same_port = format!(
        r#"{{"apiVersion":"v1","kind":"Service","metadata":{{"name":"dup-port"}},"spec":{{"type":"NodePort","ports":[{{"port":80,"nodePort":{port}}}]}}}}"#
    );
    let out = c.kubectl_stdin(&["create", "-f", "-"], &same_port);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("already allocated"),
        "{out:?}"
    );
    // And fresh allocations avoid them.
    c.ok(&["create", "service", "nodeport", "other", "--tcp=80:8080"]);
    let other = c.get_json(&["service", "other"]);
    assert_ne!(other["spec"]["clusterIP"], ip.as_str());
    assert_ne!(other["spec"]["ports"][0]["nodePort"], port);
}

#[test]
fn delete_collection_deletes_the_selected_and_lists_them() {
    let c = Cluster::start();
    for i in 0..30 {
        let tier = if i % 3 == 0 { "db" } else { "web" };
        post(
            &c,
            "/api/v1/namespaces/default/configmaps",
            &json!({"metadata": {"name": format!("cm-{i:02}"), "labels": {"tier": tier}},
                    "data": {"i": i.to_string()}}),
        );
    }
    let (code, text) = c.curl(
        "DELETE",
        "/api/v1/namespaces/default/configmaps?labelSelector=tier%3Dweb",
        None,
        None,
    );
    assert_eq!(code, 200, "{text}");
    let list: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(list["kind"], "ConfigMapList", "{text}");
    let mut gone: Vec<String> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            assert_eq!(o["metadata"]["labels"]["tier"], "web", "{o}");
            assert!(o["data"]["i"].is_string(), "{o}");
            o["metadata"]["name"].as_str().unwrap().to_string()
        })
        .collect();
    gone.sort();
    let web: Vec<String> = (0..30)
        .filter(|i| i % 3 != 0)
        .map(|i| format!("cm-{i:02}"))
        .collect();
    assert_eq!(gone, web);
    let left = c.ok(&[
        "get",
        "configmaps",
        "-l",
        "tier",
        "-o",
        "jsonpath={.items[*].metadata.name}",
    ]);
    let left: Vec<&str> = left.split_whitespace().collect();
    assert_eq!(
        left,
        [
            "cm-00", "cm-03", "cm-06", "cm-09", "cm-12", "cm-15", "cm-18", "cm-21", "cm-24",
            "cm-27"
        ]
    );
}
