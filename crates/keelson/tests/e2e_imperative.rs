//! End-to-end: kubectl's imperative `create` commands, which send protobuf bodies, for every
//! kind they support, and the Table columns `kubectl get` shows for them.

// Integration tests unwrap freely: a panic is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use common::Cluster;

fn header(out: &str) -> Vec<&str> {
    out.lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect()
}

#[test]
fn every_imperative_create_round_trips() {
    let c = Cluster::start();
    c.ok(&["create", "namespace", "imp"]);
    let n = ["-n", "imp"];
    // The namespace goes before any `--` (after which everything is the container's command).
    let run = |args: &[&str]| {
        let mut a = n.to_vec();
        a.extend_from_slice(args);
        c.ok(&a)
    };
    run(&[
        "create",
        "secret",
        "generic",
        "s1",
        "--from-literal=password=hunter2",
    ]);
    run(&[
        "create",
        "secret",
        "docker-registry",
        "reg",
        "--docker-server=r.example",
        "--docker-username=u",
        "--docker-password=p",
    ]);
    run(&[
        "create",
        "service",
        "clusterip",
        "svc",
        "--tcp=80:8080,443:8443",
    ]);
    run(&[
        "create",
        "service",
        "externalname",
        "ext",
        "--external-name=example.com",
    ]);
    run(&[
        "create",
        "deployment",
        "dep",
        "--image=nginx:1.27",
        "--replicas=0",
        "--port=80",
    ]);
    run(&[
        "create",
        "job",
        "once",
        "--image=busybox",
        "--",
        "echo",
        "hi",
    ]);
    run(&[
        "create",
        "cronjob",
        "tick",
        "--image=busybox",
        "--schedule=*/5 * * * *",
    ]);
    run(&["create", "quota", "q", "--hard=pods=10,requests.cpu=2"]);
    run(&["create", "role", "r", "--verb=get,list", "--resource=pods"]);
    run(&[
        "create",
        "rolebinding",
        "rb",
        "--role=r",
        "--serviceaccount=imp:default",
    ]);
    run(&["create", "serviceaccount", "robot"]);
    run(&[
        "create",
        "poddisruptionbudget",
        "pdb",
        "--selector=app=x",
        "--min-available=50%",
    ]);
    run(&["create", "ingress", "ing", "--rule=foo.example/bar=svc:80"]);
    c.ok(&[
        "create",
        "clusterrole",
        "cr",
        "--verb=get",
        "--resource=nodes",
    ]);
    c.ok(&[
        "create",
        "priorityclass",
        "pc",
        "--value=100",
        "--description=test",
    ]);

    let secret = c.get_json(&["secret", "s1", "-n", "imp"]);
    assert_eq!(secret["data"]["password"], "aHVudGVyMg==");
    assert_eq!(secret["type"], "Opaque");
    assert_eq!(
        c.get_json(&["secret", "reg", "-n", "imp"])["type"],
        "kubernetes.io/dockerconfigjson"
    );
    let svc = c.get_json(&["service", "svc", "-n", "imp"]);
    assert_eq!(svc["spec"]["ports"][1]["targetPort"], 8443);
    assert_eq!(svc["spec"]["ports"][0]["name"], "80-8080");
    assert_eq!(
        c.get_json(&["service", "ext", "-n", "imp"])["spec"]["type"],
        "ExternalName"
    );
    // replicas: 0 is kept (a pointer field set to zero), not defaulted to 1.
    let dep = c.get_json(&["deployment", "dep", "-n", "imp"]);
    assert_eq!(dep["spec"]["replicas"], 0);
    assert_eq!(
        dep["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"],
        80
    );
    assert!(
        dep["spec"]["template"]["spec"]["containers"][0]
            .get("stdin")
            .is_none(),
        "Go zero values are not stored: {dep}"
    );
    let job = c.get_json(&["job", "once", "-n", "imp"]);
    assert_eq!(job["spec"]["template"]["spec"]["restartPolicy"], "Never");
    assert_eq!(job["spec"]["backoffLimit"], 6);
    assert!(
        job["spec"]["selector"]["matchLabels"]["batch.kubernetes.io/controller-uid"].is_string()
    );
    assert_eq!(
        c.get_json(&["cronjob", "tick", "-n", "imp"])["spec"]["schedule"],
        "*/5 * * * *"
    );
    assert_eq!(
        c.get_json(&["quota", "q", "-n", "imp"])["spec"]["hard"]["requests.cpu"],
        "2"
    );
    assert_eq!(
        c.get_json(&["role", "r", "-n", "imp"])["rules"][0]["verbs"],
        serde_json::json!(["get", "list"])
    );
    assert_eq!(
        c.get_json(&["rolebinding", "rb", "-n", "imp"])["subjects"][0]["name"],
        "default"
    );
    assert_eq!(
        c.get_json(&["pdb", "pdb", "-n", "imp"])["spec"]["minAvailable"],
        "50%"
    );
    assert_eq!(
        c.get_json(&["ingress", "ing", "-n", "imp"])["spec"]["rules"][0]["host"],
        "foo.example"
    );
    assert_eq!(
        c.get_json(&["clusterrole", "cr"])["rules"][0]["resources"][0],
        "nodes"
    );
    assert_eq!(c.get_json(&["priorityclass", "pc"])["value"], 100);

    // Tables look like upstream's.
    assert_eq!(
        header(&run(&["get", "secrets"])),
        ["NAME", "TYPE", "DATA", "AGE"]
    );
    assert_eq!(
        header(&run(&["get", "jobs"])),
        ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"]
    );
    assert_eq!(
        header(&run(&["get", "cronjobs"])),
        [
            "NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST", "SCHEDULE", "AGE"
        ]
    );
    assert_eq!(
        header(&run(&["get", "serviceaccounts"])),
        ["NAME", "SECRETS", "AGE"]
    );
    assert_eq!(
        header(&run(&["get", "pdb"])),
        [
            "NAME",
            "MIN",
            "AVAILABLE",
            "MAX",
            "UNAVAILABLE",
            "ALLOWED",
            "DISRUPTIONS",
            "AGE"
        ]
    );
    assert_eq!(
        header(&run(&["get", "ingress"])),
        ["NAME", "CLASS", "HOSTS", "ADDRESS", "PORTS", "AGE"]
    );
    assert_eq!(
        header(&c.ok(&["get", "priorityclasses"])),
        ["NAME", "VALUE", "GLOBAL-DEFAULT", "AGE", "PREEMPTIONPOLICY"]
    );
    let svcs = run(&["get", "services"]);
    assert!(
        svcs.lines().any(|l| l.starts_with("ext")
            && l.contains("ExternalName")
            && l.contains("example.com")),
        "{svcs}"
    );
    assert!(
        svcs.lines()
            .any(|l| l.starts_with("svc") && l.contains("80/TCP,443/TCP")),
        "{svcs}"
    );

    // --dry-run=server with protobuf bodies writes nothing.
    run(&["create", "configmap", "ghost", "--dry-run=server"]);
    assert!(
        c.fails(&["get", "configmap", "ghost", "-n", "imp"])
            .contains("NotFound")
    );
}

#[test]
fn protobuf_delete_options_are_understood() {
    let c = Cluster::start();
    // `kubectl drain --disable-eviction` deletes pods with a protobuf DeleteOptions body.
    c.ok_stdin(
        &["create", "-f", "-"],
        "apiVersion: v1\nkind: Node\nmetadata:\n  name: n1\n",
    );
    c.ok_stdin(
        &["create", "-f", "-"],
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  nodeName: n1\n  terminationGracePeriodSeconds: 1\n  containers:\n  - {name: c, image: busybox}\n",
    );
    let out = c.kubectl(&[
        "drain",
        "n1",
        "--disable-eviction",
        "--force",
        "--grace-period=0",
        "--timeout=5s",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("pod/p deleted") || stdout.contains("evicting pod"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let node = c.get_json(&["node", "n1"]);
    assert_eq!(node["spec"]["unschedulable"], true);
    assert!(c.fails(&["get", "pod", "p"]).contains("NotFound"));
}
