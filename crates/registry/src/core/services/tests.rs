//! Service strategy tests, driven through `DynStrategy` as the API server calls it.

use std::net::Ipv4Addr;

use serde_json::{Value, json};

use super::*;
use crate::core::testing::*;

fn info() -> &'static ResourceInfo {
    api::resources::lookup("", "v1", "services").unwrap()
}

fn s() -> Arc<dyn DynStrategy> {
    strategy(info(), &Config::default())
}

fn small() -> Arc<dyn DynStrategy> {
    strategy(
        info(),
        &Config {
            service_cidr: (Ipv4Addr::new(10, 0, 0, 0), 29),
            node_port_range: 30000..=30002,
        },
    )
}

fn svc(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": "default"}, "spec": spec})
}

fn web(name: &str) -> Value {
    svc(
        name,
        json!({"selector": {"app": name}, "ports": [{"port": 80}]}),
    )
}

#[test]
fn cluster_ip_defaults() {
    let s = s();
    let out = create(&*s, web("web")).unwrap();
    assert_eq!(
        out["spec"],
        json!({
            "clusterIP": "10.43.0.2",
            "clusterIPs": ["10.43.0.2"],
            "internalTrafficPolicy": "Cluster",
            "ipFamilies": ["IPv4"],
            "ipFamilyPolicy": "SingleStack",
            "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}],
            "selector": {"app": "web"},
            "sessionAffinity": "None",
            "type": "ClusterIP",
        })
    );
    assert_eq!(out["status"], json!({"loadBalancer": {}}));
    assert!(s.allow_create_on_update() && s.allow_unconditional_update());
    assert!(!s.tracks_generation());
}

#[test]
fn node_port_and_load_balancer_defaults() {
    let s = s();
    let out = create(
        &*s,
        svc(
            "dns",
            json!({"type": "NodePort", "selector": {"a": "b"}, "ports": [
                {"name": "tcp", "port": 53, "targetPort": "dns"},
                {"name": "udp", "port": 53, "protocol": "UDP"},
                {"name": "other", "port": 80}]}),
        ),
    )
    .unwrap();
    assert_eq!(out["spec"]["externalTrafficPolicy"], "Cluster");
    let ports = &out["spec"]["ports"];
    // Ports of the same number share a node port.
    assert_eq!(ports[0]["nodePort"], 30000);
    assert_eq!(ports[1]["nodePort"], 30000);
    assert_eq!(ports[2]["nodePort"], 30001);
    assert_eq!(ports[0]["targetPort"], "dns");

    let lb = create(
        &*s,
        svc(
            "lb",
            json!({"type": "LoadBalancer", "externalTrafficPolicy": "Local",
                "selector": {"a": "b"}, "ports": [{"port": 443}]}),
        ),
    )
    .unwrap();
    assert_eq!(lb["spec"]["allocateLoadBalancerNodePorts"], true);
    assert_eq!(lb["spec"]["ports"][0]["nodePort"], 30002);
    assert_eq!(lb["spec"]["healthCheckNodePort"], 30003);

    let client_ip = create(
        &*s,
        svc(
            "aff",
            json!({"sessionAffinity": "ClientIP", "ports": [{"port": 1}]}),
        ),
    )
    .unwrap();
    assert_eq!(
        client_ip["spec"]["sessionAffinityConfig"],
        json!({"clientIP": {"timeoutSeconds": 10800}})
    );
}

#[test]
fn requested_cluster_ips() {
    let s = s();
    // The first address is reserved for `kubernetes` but may be asked for.
    let k = create(
        &*s,
        svc(
            "kubernetes",
            json!({"clusterIP": "10.43.0.1", "ports": [{"name": "https", "port": 443}]}),
        ),
    )
    .unwrap();
    assert_eq!(k["spec"]["clusterIPs"], json!(["10.43.0.1"]));
    let err = s
        .admit_create(
            svc(
                "dup",
                json!({"clusterIP": "10.43.0.1", "ports": [{"port": 1}]}),
            ),
            false,
        )
        .unwrap_err();
    assert_eq!(err.code, 422);
    assert_eq!(
        err.message,
        "Service \"dup\" is invalid: spec.clusterIPs: Invalid value: []string{\"10.43.0.1\"}: failed to allocate IP 10.43.0.1: provided IP is already allocated"
    );
    assert_eq!(
        causes(&s.admit_create(svc("far", json!({"clusterIPs": ["1.1.1.1"], "clusterIP": "1.1.1.1", "ports": [{"port": 1}]})), false).unwrap_err()),
        ["spec.clusterIPs: Invalid value: []string{\"1.1.1.1\"}: failed to allocate IP 1.1.1.1: the provided IP (1.1.1.1) is not in the valid range. The range of valid IPs is 10.43.0.0/16"]
    );
    assert!(
        s.admit_create(
            svc(
                "net",
                json!({"clusterIP": "10.43.0.0", "ports": [{"port": 1}]})
            ),
            false
        )
        .unwrap_err()
        .message
        .contains("is not in the valid range")
    );
    assert_eq!(
        create_err(
            &*s,
            svc(
                "bad",
                json!({"clusterIP": "10.43.0.300", "ports": [{"port": 1}]})
            )
        ),
        [
            "spec.clusterIPs[0]: Invalid value: \"10.43.0.300\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
        ]
    );
}

#[test]
fn headless_services() {
    let s = s();
    let h = create(
        &*s,
        svc("h", json!({"clusterIP": "None", "selector": {"a": "b"}})),
    )
    .unwrap();
    assert_eq!(h["spec"]["clusterIPs"], json!(["None"]));
    assert_eq!(h["spec"]["ipFamilies"], json!(["IPv4"]));
    assert_eq!(h["spec"]["ipFamilyPolicy"], "SingleStack");
    let bare = create(&*s, svc("bare", json!({"clusterIP": "None"}))).unwrap();
    assert_eq!(bare["spec"]["ipFamilyPolicy"], "RequireDualStack");
    assert_eq!(bare["spec"]["ipFamilies"], json!(["IPv4", "IPv6"]));
    assert_eq!(
        create_err(
            &*s,
            svc(
                "np",
                json!({"type": "NodePort", "clusterIP": "None", "ports": [{"port": 1}]})
            )
        ),
        [
            "spec.clusterIPs[0]: Invalid value: \"None\": may not be set to 'None' for NodePort services"
        ]
    );
}

#[test]
fn families_this_cluster_cannot_serve() {
    let s = s();
    assert_eq!(
        create_err(
            &*s,
            svc(
                "v6",
                json!({"ipFamilies": ["IPv6"], "ports": [{"port": 1}]})
            )
        ),
        ["spec.ipFamilies[0]: Invalid value: \"IPv6\": not configured on this cluster"]
    );
    assert_eq!(
        create_err(
            &*s,
            svc(
                "ds",
                json!({"ipFamilyPolicy": "RequireDualStack", "ports": [{"port": 1}]})
            )
        ),
        [
            "spec.ipFamilyPolicy: Invalid value: \"RequireDualStack\": this cluster is not configured for dual-stack services"
        ]
    );
    let prefer = create(
        &*s,
        svc(
            "p",
            json!({"ipFamilyPolicy": "PreferDualStack", "ports": [{"port": 1}]}),
        ),
    )
    .unwrap();
    assert_eq!(prefer["spec"]["ipFamilies"], json!(["IPv4"]));
    assert_eq!(
        create_err(
            &*s,
            svc(
                "v6ip",
                json!({"clusterIP": "fd00::1", "ports": [{"port": 1}]})
            )
        ),
        [
            "spec.clusterIPs[0]: Invalid value: []string{\"fd00::1\"}: IPv6 is not configured on this cluster"
        ]
    );
}

#[test]
fn spec_validation() {
    let s = s();
    assert!(create_err(&*s, web("1web"))[0].starts_with(
        "metadata.name: Invalid value: \"1web\": a DNS-1035 label must consist of lower case alphanumeric characters"
    ));
    assert_eq!(
        create_err(&*s, svc("a", json!({}))),
        ["spec.ports: Required value"]
    );
    assert_eq!(
        create_err(
            &*s,
            svc(
                "a",
                json!({"ports": [
                {"port": 80}, {"name": "x", "port": 0, "protocol": "ICMP"}, {"name": "x", "port": 81, "targetPort": "Bad_Name"}]})
            )
        ),
        [
            "spec.ports[0].name: Required value",
            "spec.ports[1].port: Invalid value: 0: must be between 1 and 65535, inclusive",
            "spec.ports[1].protocol: Unsupported value: \"ICMP\": supported values: \"SCTP\", \"TCP\", \"UDP\"",
            // The target port defaulted to the (invalid) port.
            "spec.ports[1].targetPort: Invalid value: 0: must be between 1 and 65535, inclusive",
            "spec.ports[2].name: Duplicate value: \"x\"",
            "spec.ports[2].targetPort: Invalid value: \"Bad_Name\": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)",
        ]
    );
    assert_eq!(
        create_err(
            &*s,
            svc("a", json!({"type": "Magic", "ports": [{"port": 1}]}))
        ),
        [
            "spec.type: Unsupported value: \"Magic\": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\""
        ]
    );
    assert_eq!(
        create_err(
            &*s,
            svc(
                "a",
                json!({"ports": [{"name": "a", "port": 1}, {"name": "b", "port": 1}]})
            )
        ),
        [
            "spec.ports[1]: Duplicate value: core.ServicePort{Name:\"\", Protocol:\"TCP\", AppProtocol:(*string)(nil), Port:1, TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:\"\"}, NodePort:0}"
        ]
    );
    assert_eq!(
        create_err(
            &*s,
            svc("a", json!({"ports": [{"port": 1, "nodePort": 30000}]}))
        ),
        ["spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"]
    );
    assert_eq!(
        create_err(
            &*s,
            svc(
                "a",
                json!({"externalTrafficPolicy": "Local", "ports": [{"port": 1}]})
            )
        ),
        [
            "spec.externalTrafficPolicy: Invalid value: \"Local\": may only be set for externally-accessible services"
        ]
    );
    assert_eq!(
        create_err(
            &*s,
            svc(
                "a",
                json!({"loadBalancerSourceRanges": ["10.0.0.0/8"], "ports": [{"port": 1}]})
            )
        ),
        [
            "spec.LoadBalancerSourceRanges: Forbidden: may only be used when `type` is 'LoadBalancer'"
        ]
    );
    assert_eq!(
        create_err(
            &*s,
            svc(
                "a",
                json!({"externalIPs": ["127.0.0.1"], "ports": [{"port": 1}]})
            )
        ),
        [
            "spec.externalIPs[0]: Invalid value: \"127.0.0.1\": may not be in the loopback range (127.0.0.0/8, ::1/128)"
        ]
    );
}

#[test]
fn external_name_services() {
    let s = s();
    let out = create(
        &*s,
        svc(
            "ext",
            json!({"type": "ExternalName", "externalName": "example.com."}),
        ),
    )
    .unwrap();
    assert!(out["spec"].get("clusterIP").is_none());
    assert!(out["spec"].get("ipFamilies").is_none());
    assert!(out["spec"].get("internalTrafficPolicy").is_none());
    assert_eq!(
        create_err(
            &*s,
            svc(
                "ext",
                json!({"type": "ExternalName", "externalName": "Bad_Name", "clusterIP": "10.43.0.9"})
            )
        ),
        [
            "spec.clusterIPs: Forbidden: may not be set for ExternalName services",
            "spec.externalName: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
        ]
    );
    assert_eq!(
        create_err(&*s, svc("ext", json!({"type": "ExternalName"}))),
        ["spec.externalName: Required value"]
    );
}

#[test]
fn cluster_ip_is_immutable_and_kept() {
    let s = s();
    let old = create(&*s, web("web")).unwrap();
    assert_eq!(
        update_err(
            &*s,
            merged(&old, json!({"spec": {"clusterIP": "10.43.0.9"}})),
            &old
        ),
        ["spec.clusterIPs[0]: Invalid value: []string{\"10.43.0.9\"}: may not change once set"]
    );
    // A client that leaves the allocated values out keeps them.
    let new = merged(
        &old,
        json!({"spec": {"clusterIP": null, "clusterIPs": null, "ipFamilies": null, "ipFamilyPolicy": null}}),
    );
    let out = update(&*s, new, &old).unwrap();
    assert_eq!(out["spec"], old["spec"]);
}

#[test]
fn type_changes_move_allocations() {
    let s = s();
    let np = create(
        &*s,
        svc(
            "np",
            json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}]}),
        ),
    )
    .unwrap();
    // Another Service may not take the same node port.
    assert_eq!(
        causes(
            &s.admit_create(
                svc(
                    "np2",
                    json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}]})
                ),
                false
            )
            .unwrap_err()
        ),
        ["spec.ports[0].nodePort: Invalid value: 30080: provided port is already allocated"]
    );
    assert_eq!(
        causes(
            &s.admit_create(
                svc(
                    "np3",
                    json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 80}]})
                ),
                false
            )
            .unwrap_err()
        ),
        [
            "spec.ports[0].nodePort: Invalid value: 80: provided port is not in the valid range. The range of valid ports is 30000-32767"
        ]
    );
    // NodePort → ClusterIP: node ports are dropped and released after the write.
    let cip = update(
        &*s,
        merged(
            &np,
            json!({"spec": {"type": "ClusterIP", "externalTrafficPolicy": null}}),
        ),
        &np,
    )
    .unwrap();
    assert!(cip["spec"]["ports"][0].get("nodePort").is_none());
    s.after_write(&cip, Some(&np));
    assert!(
        create(
            &*s,
            svc(
                "np2",
                json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}]})
            )
        )
        .is_ok()
    );

    // ClusterIP → ExternalName releases the cluster IP; back again allocates a new one.
    let ip = cip["spec"]["clusterIP"].as_str().unwrap().to_string();
    let ext = update(
        &*s,
        merged(
            &cip,
            json!({"spec": {"type": "ExternalName", "externalName": "x.example"}}),
        ),
        &cip,
    )
    .unwrap();
    assert!(ext["spec"].get("clusterIPs").is_none() && ext["spec"].get("ipFamilyPolicy").is_none());
    s.after_write(&ext, Some(&cip));
    let again = create(
        &*s,
        svc(
            "reuse",
            json!({"clusterIP": ip.clone(), "ports": [{"port": 1}]}),
        ),
    )
    .unwrap();
    assert_eq!(again["spec"]["clusterIP"], ip.as_str());
    let back = update(
        &*s,
        merged(
            &ext,
            json!({"spec": {"type": "ClusterIP", "externalName": null, "ports": [{"port": 80}]}}),
        ),
        &ext,
    )
    .unwrap();
    assert_eq!(back["spec"]["ipFamilies"], json!(["IPv4"]));
    assert_ne!(back["spec"]["clusterIP"], ip.as_str());
}

#[test]
fn rollback_dry_run_delete_and_restart() {
    let s = small();
    // 10.0.0.0/29: .2 to .6 are handed out automatically.
    let dry = s.admit_create(web("dry"), true).unwrap().object;
    assert_eq!(dry["spec"]["clusterIP"], "10.0.0.2");
    let a = create(&*s, web("a")).unwrap();
    assert_eq!(
        a["spec"]["clusterIP"], "10.0.0.2",
        "a dry run reserves nothing"
    );
    let b = create(&*s, web("b")).unwrap();
    s.rollback_write(&b, None);
    let c = create(
        &*s,
        svc(
            "c",
            json!({"clusterIP": b["spec"]["clusterIP"].clone(), "ports": [{"port": 1}]}),
        ),
    );
    assert!(c.is_ok(), "a rolled-back IP is free again");
    s.after_delete(&a);
    assert!(
        create(
            &*s,
            svc(
                "d",
                json!({"clusterIP": "10.0.0.2", "ports": [{"port": 1}]})
            )
        )
        .is_ok()
    );

    // A fresh strategy learns what stored Services hold.
    let restarted = small();
    restarted.observe_existing(&a);
    assert!(
        restarted
            .admit_create(
                svc(
                    "e",
                    json!({"clusterIP": "10.0.0.2", "ports": [{"port": 1}]})
                ),
                false
            )
            .is_err()
    );
}

#[test]
fn exhaustion() {
    let s = small();
    for i in 0..5 {
        create(&*s, web(&format!("s{i}"))).unwrap();
    }
    let err = s.admit_create(web("full"), false).unwrap_err();
    assert_eq!(err.code, 500);
    assert_eq!(
        err.message,
        "Internal error occurred: failed to allocate a serviceIP: range is full"
    );
    let ports = |name: &str| {
        svc(
            name,
            json!({"type": "NodePort", "clusterIP": "None", "ports": [{"port": 1}]}),
        )
    };
    // Headless NodePort Services are invalid; use the reserved IP instead.
    assert!(s.admit_create(ports("x"), false).is_err());
    let np = |name: &str, n: usize| {
        let ps: Vec<Value> = (0..n)
            .map(|i| json!({"name": format!("p{i}"), "port": 100 + i}))
            .collect();
        svc(
            name,
            json!({"type": "NodePort", "clusterIP": "10.0.0.1", "ports": ps}),
        )
    };
    let err = s.admit_create(np("many", 4), false).unwrap_err();
    assert_eq!(
        err.message,
        "Internal error occurred: failed to allocate a nodePort: range is full"
    );
    // The failed create gave back its IP and the three ports it had taken.
    let ok = create(&*s, np("three", 3)).unwrap();
    assert_eq!(ok["spec"]["ports"][2]["nodePort"], 30002);
}

#[test]
fn status_updates() {
    let s = s();
    let old = create(&*s, web("web")).unwrap();
    let err = s
        .admit_status_update(
            merged(
                &old,
                json!({"status": {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}}}),
            ),
            &old,
        )
        .unwrap_err();
    assert_eq!(
        causes(&err),
        [
            "status.loadBalancer.ingress: Forbidden: may only be used when `spec.type` is 'LoadBalancer'"
        ]
    );
    let lb = create(
        &*s,
        svc(
            "lb",
            json!({"type": "LoadBalancer", "ports": [{"port": 80}]}),
        ),
    )
    .unwrap();
    let out = s
        .admit_status_update(
            merged(&lb, json!({"spec": {"type": "ClusterIP"}, "status": {"loadBalancer": {"ingress": [{"ip": "1.2.3.4", "ipMode": "VIP"}]}}})),
            &lb,
        )
        .unwrap()
        .object;
    assert_eq!(out["spec"]["type"], "LoadBalancer");
    assert_eq!(out["status"]["loadBalancer"]["ingress"][0]["ip"], "1.2.3.4");
    // A controller that leaves out ipMode gets the default rather than an error.
    let out = s
        .admit_status_update(
            merged(
                &lb,
                json!({"status": {"loadBalancer": {"ingress": [{"ip": "1.2.3.5"}]}}}),
            ),
            &lb,
        )
        .unwrap()
        .object;
    assert_eq!(out["status"]["loadBalancer"]["ingress"][0]["ipMode"], "VIP");
}
