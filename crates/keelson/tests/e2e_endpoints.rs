//! End-to-end: the Endpoints and EndpointSlice controllers inside `keelson server`, driven
//! with the real `kubectl`.
//!
//! `endpoints_and_slices_follow_pods` needs no kubelet: it registers a Node object itself,
//! binds pods to it through `spec.nodeName` (the scheduler leaves bound pods alone) and
//! writes their status through the status subresource. Covered: ready and not-ready
//! addresses, a named targetPort resolved per pod (a pod without it is left out of that
//! port), `publishNotReadyAddresses`, a headless Service without ports (with a pod's
//! hostname), a terminating pod (gone from Endpoints, `terminating` in slices), a deleted
//! pod, user-managed Endpoints of a selector-less Service left alone, `kubectl get
//! endpoints` / `describe svc`, and deleting a Service removing its Endpoints and slices.
//!
//! `a_hundred_and_fifty_pods_make_two_slices` runs pods on a hollow node (`keelson
//! simulate`) and checks the 100-endpoint cap, then that the slices shrink back as pods go.

// Integration tests unwrap freely: a panic is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::hollow::Simulator;
use common::{Cluster, ServerOptions};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

/// A server whose node lifecycle controller is off: the test's Node has no kubelet renewing
/// its Lease, and must not turn NotReady (which would mark its pods not ready) mid-test.
fn cluster() -> Cluster {
    Cluster::start_with(ServerOptions {
        extra_args: vec!["--controllers".into(), "*,-nodelifecycle".into()],
        ..Default::default()
    })
}

/// A Ready node in zone `zone`.
fn node(c: &Cluster, name: &str, zone: &str) {
    let obj = json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {
            "kubernetes.io/hostname": name, "topology.kubernetes.io/zone": zone}},
    });
    c.ok_stdin(&["apply", "-f", "-"], &obj.to_string());
    let resources = json!({"cpu": "4", "memory": "8Gi", "pods": "110"});
    let status = json!({"status": {
        "capacity": resources, "allocatable": resources,
        "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "ready"}],
    }});
    c.ok(&[
        "patch",
        "node",
        name,
        "--subresource=status",
        "--type=merge",
        "-p",
        &status.to_string(),
    ]);
}

/// A pod bound to `n1` with a container port named `http` (8080) unless `named_port` is off.
fn pod(name: &str, named_port: bool, extra_spec: Value) -> Value {
    let ports = if named_port {
        json!([{"name": "http", "containerPort": 8080}])
    } else {
        json!([{"name": "other", "containerPort": 9999}])
    };
    let mut spec = json!({
        "nodeName": "n1",
        "containers": [{"name": "c", "image": "busybox", "ports": ports}],
        "terminationGracePeriodSeconds": 0,
    });
    for (k, v) in extra_spec.as_object().unwrap() {
        spec[k] = v.clone();
    }
    json!({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, "labels": {"app": "web"}}, "spec": spec})
}

/// Makes `name` Running with `ip`, ready or not.
fn set_status(c: &Cluster, name: &str, ip: &str, ready: bool) {
    let status = json!({"status": {
        "phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
        "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}],
    }});
    c.ok(&[
        "patch",
        "pod",
        name,
        "--subresource=status",
        "--type=merge",
        "-p",
        &status.to_string(),
    ]);
}

fn apply_list(c: &Cluster, items: Vec<Value>) {
    let list = json!({"apiVersion": "v1", "kind": "List", "items": items});
    c.ok_stdin(&["apply", "-f", "-"], &list.to_string());
}

fn endpoints(c: &Cluster, name: &str) -> Value {
    let out = c.kubectl(&["get", "endpoints", name, "-o", "json"]);
    if !out.status.success() {
        return Value::Null;
    }
    serde_json::from_slice(&out.stdout).unwrap()
}

/// IPs of one address list (`addresses` or `notReadyAddresses`) over all subsets.
fn ips(ep: &Value, field: &str) -> BTreeSet<String> {
    ep["subsets"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| s[field].as_array().cloned().unwrap_or_default())
        .map(|a| a["ip"].as_str().unwrap().to_string())
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn slices(c: &Cluster, service: &str) -> Vec<Value> {
    c.get_json(&[
        "endpointslices",
        "-l",
        &format!("kubernetes.io/service-name={service}"),
    ])["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// The endpoints of all slices of `service`, by pod name.
fn slice_endpoints(c: &Cluster, service: &str) -> Vec<(String, Value)> {
    let mut out: Vec<(String, Value)> = slices(c, service)
        .iter()
        .flat_map(|s| s["endpoints"].as_array().cloned().unwrap_or_default())
        .map(|e| (e["targetRef"]["name"].as_str().unwrap().to_string(), e))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn conditions(e: &Value) -> (bool, bool, bool) {
    let c = &e["conditions"];
    (
        c["ready"].as_bool().unwrap(),
        c["serving"].as_bool().unwrap(),
        c["terminating"].as_bool().unwrap(),
    )
}

#[test]
fn endpoints_and_slices_follow_pods() {
    let c = cluster();
    node(&c, "n1", "zone-a");
    apply_list(
        &c,
        vec![
            pod("a", true, json!({})),
            pod("b", true, json!({})),
            pod("c", true, json!({})),
            // No `http` port: only in the Service port that is numeric.
            pod("d", false, json!({})),
            // Known to the headless Service's DNS by name.
            pod(
                "h",
                true,
                json!({"hostname": "h0", "subdomain": "web-headless"}),
            ),
            // Graceful deletion takes 60 s here, so it is seen terminating.
            pod("slow", true, json!({"terminationGracePeriodSeconds": 60})),
            // Never gets an IP.
            pod("pending", true, json!({})),
        ],
    );
    for (name, ip, ready) in [
        ("a", "10.42.0.5", true),
        ("b", "10.42.0.6", true),
        ("c", "10.42.0.7", false),
        ("d", "10.42.0.8", true),
        ("h", "10.42.0.9", true),
        ("slow", "10.42.0.10", true),
    ] {
        set_status(&c, name, ip, ready);
    }
    let services = json!({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": "web", "labels": {"team": "blue"}},
         "spec": {"selector": {"app": "web"}, "ports": [
             {"name": "http", "port": 80, "targetPort": "http"},
             {"name": "admin", "port": 9000, "targetPort": 9000}]}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web-pub"},
         "spec": {"selector": {"app": "web"}, "publishNotReadyAddresses": true,
                  "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web-headless"},
         "spec": {"selector": {"app": "web"}, "clusterIP": "None"}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "manual"},
         "spec": {"ports": [{"port": 80}]}},
        {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "manual"},
         "subsets": [{"addresses": [{"ip": "10.99.0.1"}], "ports": [{"port": 80}]}]},
    ]});
    c.ok_stdin(&["apply", "-f", "-"], &services.to_string());

    // Endpoints of `web`: ready pods as addresses, the unready one apart; the named port
    // resolved to 8080 on the pods that have it, `d` only behind the numeric port.
    let all_ready = set(&[
        "10.42.0.5",
        "10.42.0.6",
        "10.42.0.8",
        "10.42.0.9",
        "10.42.0.10",
    ]);
    c.eventually(WAIT, "the Endpoints of web", || {
        let ep = endpoints(&c, "web");
        ips(&ep, "addresses") == all_ready && ips(&ep, "notReadyAddresses") == set(&["10.42.0.7"])
    });
    let ep = endpoints(&c, "web");
    assert_eq!(ep["metadata"]["labels"]["team"], "blue", "{ep}");
    assert!(
        ep["metadata"]["annotations"]["endpoints.kubernetes.io/last-change-trigger-time"]
            .is_string(),
        "{ep}"
    );
    let mut shapes: Vec<(Vec<String>, Vec<i64>)> = ep["subsets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let mut ips: Vec<String> = s["addresses"]
                .as_array()
                .into_iter()
                .chain(s["notReadyAddresses"].as_array())
                .flatten()
                .map(|a| a["ip"].as_str().unwrap().to_string())
                .collect();
            ips.sort();
            let mut ports: Vec<i64> = s["ports"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["port"].as_i64().unwrap())
                .collect();
            ports.sort();
            (ips, ports)
        })
        .collect();
    shapes.sort();
    let strings = |v: &[&str]| -> Vec<String> { v.iter().map(|s| s.to_string()).collect() };
    let with_http = [
        "10.42.0.10",
        "10.42.0.5",
        "10.42.0.6",
        "10.42.0.7",
        "10.42.0.9",
    ];
    let with_admin = [
        "10.42.0.10",
        "10.42.0.5",
        "10.42.0.6",
        "10.42.0.7",
        "10.42.0.8",
        "10.42.0.9",
    ];
    // One subset per distinct address set: `d` serves only the numeric port.
    assert_eq!(
        shapes,
        [
            (strings(&with_admin), vec![9000]),
            (strings(&with_http), vec![8080]),
        ],
        "{ep}"
    );
    let a = ep["subsets"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["addresses"].as_array().cloned().unwrap_or_default())
        .find(|a| a["ip"] == "10.42.0.5")
        .unwrap();
    assert_eq!(a["nodeName"], "n1");
    assert_eq!(a["targetRef"]["kind"], "Pod");
    assert_eq!(a["targetRef"]["name"], "a");
    assert!(a.get("hostname").is_none(), "{a}");

    // publishNotReadyAddresses: every pod with an IP is an address.
    c.eventually(WAIT, "the Endpoints of web-pub", || {
        let ep = endpoints(&c, "web-pub");
        ips(&ep, "addresses")
            == set(&[
                "10.42.0.10",
                "10.42.0.5",
                "10.42.0.6",
                "10.42.0.7",
                "10.42.0.9",
            ])
            && ips(&ep, "notReadyAddresses").is_empty()
    });

    // Headless without ports: bare addresses, the headless label, `h` with its hostname.
    c.eventually(WAIT, "the Endpoints of web-headless", || {
        let ep = endpoints(&c, "web-headless");
        ips(&ep, "addresses") == all_ready
    });
    let hl = endpoints(&c, "web-headless");
    assert_eq!(
        hl["metadata"]["labels"]["service.kubernetes.io/headless"], "",
        "{hl}"
    );
    let subsets = hl["subsets"].as_array().unwrap();
    assert!(subsets.iter().all(|s| s.get("ports").is_none()), "{hl}");
    let h = subsets
        .iter()
        .flat_map(|s| s["addresses"].as_array().cloned().unwrap_or_default())
        .find(|a| a["ip"] == "10.42.0.9")
        .unwrap();
    assert_eq!(h["hostname"], "h0", "{hl}");

    // kubectl shows them.
    let table = c.ok(&["get", "endpoints", "web-pub"]);
    assert!(
        table.contains("10.42.0.10:8080,10.42.0.5:8080,10.42.0.6:8080 + 2 more..."),
        "{table}"
    );
    let described = c.ok(&["describe", "svc", "web-pub"]);
    assert!(described.contains("10.42.0.5:8080"), "{described}");

    // EndpointSlices of `web`: one slice per port set, owned by the Service.
    c.eventually(WAIT, "the EndpointSlices of web", || {
        slice_endpoints(&c, "web").len() == 6
    });
    let web_slices = slices(&c, "web");
    assert_eq!(web_slices.len(), 2, "{web_slices:?}");
    let svc_uid = c.get_json(&["svc", "web"])["metadata"]["uid"].clone();
    for s in &web_slices {
        assert_eq!(s["addressType"], "IPv4");
        assert_eq!(
            s["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"],
            "endpointslice-controller.k8s.io"
        );
        assert_eq!(s["metadata"]["labels"]["team"], "blue");
        assert_eq!(s["metadata"]["generateName"], "web-");
        let owner = &s["metadata"]["ownerReferences"][0];
        assert_eq!(
            (&owner["kind"], &owner["uid"], &owner["controller"]),
            (&json!("Service"), &svc_uid, &json!(true))
        );
    }
    let eps = slice_endpoints(&c, "web");
    let (_, a) = eps.iter().find(|(n, _)| n == "a").unwrap();
    assert_eq!(a["addresses"], json!(["10.42.0.5"]));
    assert_eq!(a["nodeName"], "n1");
    assert_eq!(a["zone"], "zone-a");
    assert_eq!(conditions(a), (true, true, false));
    let (_, cc) = eps.iter().find(|(n, _)| n == "c").unwrap();
    assert_eq!(conditions(cc), (false, false, false));
    assert!(!eps.iter().any(|(n, _)| n == "pending"));
    let headless = slices(&c, "web-headless");
    assert!(
        headless
            .iter()
            .all(|s| s["metadata"]["labels"]["service.kubernetes.io/headless"] == ""),
        "{headless:?}"
    );

    // `c` turns ready: an address in both.
    set_status(&c, "c", "10.42.0.7", true);
    c.eventually(WAIT, "c ready in Endpoints and slices", || {
        ips(&endpoints(&c, "web"), "addresses").contains("10.42.0.7")
            && slice_endpoints(&c, "web")
                .iter()
                .any(|(n, e)| n == "c" && conditions(e) == (true, true, false))
    });

    // `slow` starts terminating: out of Endpoints (but kept by publishNotReadyAddresses),
    // terminating and serving in slices.
    c.ok(&["delete", "pod", "slow", "--wait=false"]);
    c.eventually(WAIT, "slow terminating", || {
        !ips(&endpoints(&c, "web"), "addresses").contains("10.42.0.10")
            && ips(&endpoints(&c, "web-pub"), "addresses").contains("10.42.0.10")
            && slice_endpoints(&c, "web")
                .iter()
                .any(|(n, e)| n == "slow" && conditions(e) == (false, true, true))
    });

    // `a` deleted: gone everywhere.
    c.ok(&["delete", "pod", "a", "--grace-period=0", "--force"]);
    c.eventually(WAIT, "a gone", || {
        !ips(&endpoints(&c, "web"), "addresses").contains("10.42.0.5")
            && !ips(&endpoints(&c, "web-headless"), "addresses").contains("10.42.0.5")
            && !slice_endpoints(&c, "web").iter().any(|(n, _)| n == "a")
    });

    // The selector-less Service's Endpoints are the user's.
    let manual = endpoints(&c, "manual");
    assert_eq!(ips(&manual, "addresses"), set(&["10.99.0.1"]), "{manual}");
    assert!(slices(&c, "manual").is_empty());

    // Deleting the Service removes its Endpoints and (through the garbage collector) slices.
    c.ok(&["delete", "svc", "web"]);
    c.eventually(WAIT, "web's Endpoints and slices gone", || {
        endpoints(&c, "web").is_null() && slices(&c, "web").is_empty()
    });
    assert!(!endpoints(&c, "web-pub").is_null());
    c.ok(&["delete", "pod", "slow", "--grace-period=0", "--force"]);
}

#[test]
fn a_hundred_and_fifty_pods_make_two_slices() {
    let c = Cluster::start();
    let _sim = Simulator::start(
        &c,
        &[
            "--nodes",
            "1",
            "--pods-per-node",
            "200",
            "--labels",
            "topology.kubernetes.io/zone=z1",
        ],
    );
    c.eventually(WAIT, "a Ready hollow node", || {
        c.get_json(&["nodes"])["items"]
            .as_array()
            .is_some_and(|n| n.len() == 1)
    });
    c.ok_stdin(
        &["apply", "-f", "-"],
        &json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "big"},
                "spec": {"selector": {"app": "big"}, "ports": [{"port": 80}]}})
        .to_string(),
    );
    let pods: Vec<Value> = (0..150)
        .map(|i| {
            json!({"apiVersion": "v1", "kind": "Pod",
                   "metadata": {"name": format!("big-{i:03}"), "labels": {"app": "big"}},
                   "spec": {"containers": [{"name": "c", "image": "busybox"}],
                            "terminationGracePeriodSeconds": 0}})
        })
        .collect();
    apply_list(&c, pods);

    let sizes = |c: &Cluster| -> Vec<usize> {
        let mut v: Vec<usize> = slices(c, "big")
            .iter()
            .map(|s| s["endpoints"].as_array().map_or(0, Vec::len))
            .collect();
        v.sort();
        v
    };
    let ready = |c: &Cluster| {
        slice_endpoints(c, "big")
            .iter()
            .filter(|(_, e)| conditions(e).0)
            .count()
    };
    c.eventually(Duration::from_secs(60), "150 ready endpoints", || {
        ready(&c) == 150
    });
    let v = sizes(&c);
    assert_eq!(v.len(), 2, "{v:?}");
    assert!(v.iter().all(|n| *n <= 100), "{v:?}");
    assert_eq!(v.iter().sum::<usize>(), 150);
    let eps = slice_endpoints(&c, "big");
    assert_eq!(eps[0].1["zone"], "z1");
    let ep = endpoints(&c, "big");
    assert_eq!(ips(&ep, "addresses").len(), 150);

    // Scale down to 30: the slices shrink, one goes.
    let doomed: Vec<String> = (30..150).map(|i| format!("big-{i:03}")).collect();
    let mut args = vec![
        "delete",
        "pod",
        "--grace-period=0",
        "--force",
        "--wait=false",
    ];
    args.extend(doomed.iter().map(String::as_str));
    c.ok(&args);
    c.eventually(WAIT, "30 endpoints in one slice", || sizes(&c) == [30]);
    c.eventually(WAIT, "30 addresses in Endpoints", || {
        ips(&endpoints(&c, "big"), "addresses").len() == 30
    });

    c.ok(&["delete", "svc", "big"]);
    c.eventually(WAIT, "big's Endpoints and slices gone", || {
        endpoints(&c, "big").is_null() && slices(&c, "big").is_empty()
    });
}
