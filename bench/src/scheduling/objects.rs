//! The JSON bodies the scheduling benchmark sends: its pods (upstream's pod-default,
//! pod-with-pod-anti-affinity and pod-with-topology-spreading shapes) and, when no simulator
//! is available, its nodes (upstream's node-default: 4 cpu, 32Gi, 110 pods).

use bytes::Bytes;
use serde_json::{Value, json};

use super::plan::Kind;

/// Name prefix of every benchmark pod; the index follows, zero-padded.
pub const POD_PREFIX: &str = "pod";

/// The label every anti-affinity pod carries and avoids.
const AA_LABEL: (&str, &str) = ("color", "green");
/// The label every spreading pod carries and counts.
const SPREAD_LABEL: (&str, &str) = ("color", "blue");

pub const HOSTNAME_KEY: &str = "kubernetes.io/hostname";
pub const ZONE_KEY: &str = "topology.kubernetes.io/zone";

/// The name of pod `i`.
pub fn pod_name(i: usize) -> String {
    format!("{POD_PREFIX}-{i:06}")
}

/// The index back from a benchmark pod's name; None for anything else.
pub fn pod_index(name: &str) -> Option<usize> {
    let digits = name.strip_prefix(POD_PREFIX)?.strip_prefix('-')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// What the pods of one stage look like.
#[derive(Debug, Clone)]
pub struct PodShape {
    pub kind: Kind,
    pub scheduler_name: Option<&'static str>,
    /// The namespaces an anti-affinity term looks at (the workload's init and measured ones).
    pub affinity_namespaces: Vec<String>,
}

/// The pause container with upstream's default requests (and equal limits): 100m, 500Mi.
fn container() -> Value {
    let r = json!({"cpu": "100m", "memory": "500Mi"});
    json!({
        "name": "pause",
        "image": "registry.k8s.io/pause:3.9",
        "ports": [{"containerPort": 80}],
        "resources": {"requests": r, "limits": r},
    })
}

/// Pod `i` of the given shape, as the JSON body of a create.
pub fn pod_json(shape: &PodShape, i: usize) -> Bytes {
    let mut labels = serde_json::Map::new();
    let mut spec = json!({"containers": [container()]});
    match shape.kind {
        Kind::Basic => {}
        Kind::AntiAffinity => {
            labels.insert(AA_LABEL.0.into(), AA_LABEL.1.into());
            spec["affinity"] = json!({"podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [{
                    "labelSelector": {"matchLabels": {AA_LABEL.0: AA_LABEL.1}},
                    "topologyKey": HOSTNAME_KEY,
                    "namespaces": shape.affinity_namespaces,
                }]
            }});
        }
        Kind::TopologySpread => {
            labels.insert(SPREAD_LABEL.0.into(), SPREAD_LABEL.1.into());
            spec["topologySpreadConstraints"] = json!([{
                "maxSkew": 1,
                "topologyKey": ZONE_KEY,
                "whenUnsatisfiable": "DoNotSchedule",
                "labelSelector": {"matchLabels": {SPREAD_LABEL.0: SPREAD_LABEL.1}},
            }]);
        }
    }
    if let Some(s) = shape.scheduler_name {
        spec["schedulerName"] = s.into();
    }
    let mut meta = json!({"name": pod_name(i)});
    if !labels.is_empty() {
        meta["labels"] = Value::Object(labels);
    }
    Bytes::from(
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}).to_string(),
    )
}

/// A node as the simulator would register it, with its hostname and zone labels.
pub fn node_json(name: &str, zone: &str) -> Bytes {
    Bytes::from(
        json!({
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": name, "labels": {
                HOSTNAME_KEY: name,
                "kubernetes.io/os": "linux",
                ZONE_KEY: zone,
            }},
        })
        .to_string(),
    )
}

/// The created node `node` with a Ready status and node-default capacity, for a PUT to
/// `nodes/NAME/status`.
pub fn node_with_status(mut node: Value, now: &str) -> Value {
    let capacity = json!({"cpu": "4", "memory": "32Gi", "pods": "110"});
    node["status"] = json!({
        "capacity": capacity,
        "allocatable": capacity,
        "conditions": [{
            "type": "Ready",
            "status": "True",
            "reason": "KubeletReady",
            "message": "keelson-bench node (no kubelet)",
            "lastHeartbeatTime": now,
            "lastTransitionTime": now,
        }],
    });
    node
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(b: &Bytes) -> Value {
        serde_json::from_slice(b).expect("valid JSON")
    }

    #[test]
    fn names_round_trip() {
        assert_eq!(pod_name(42), "pod-000042");
        assert_eq!(pod_index("pod-000042"), Some(42));
        assert_eq!(pod_index("pod-1234567"), Some(1_234_567));
        for bad in ["pod-", "pod-12a", "probe-1", "pod000001", "xpod-1"] {
            assert_eq!(pod_index(bad), None, "{bad}");
        }
    }

    #[test]
    fn basic_pod_has_default_requests_and_no_constraints() {
        let shape = PodShape {
            kind: Kind::Basic,
            scheduler_name: None,
            affinity_namespaces: vec![],
        };
        let p = parse(&pod_json(&shape, 7));
        assert_eq!(p["metadata"]["name"], "pod-000007");
        assert!(p["metadata"].get("labels").is_none());
        assert!(p["spec"].get("schedulerName").is_none());
        assert!(p["spec"].get("affinity").is_none());
        let res = &p["spec"]["containers"][0]["resources"];
        assert_eq!(res["requests"]["cpu"], "100m");
        assert_eq!(res["requests"]["memory"], "500Mi");
    }

    #[test]
    fn constrained_pods_carry_their_terms() {
        let shape = PodShape {
            kind: Kind::AntiAffinity,
            scheduler_name: Some("upstream-scheduler"),
            affinity_namespaces: vec!["a-init".into(), "a".into()],
        };
        let p = parse(&pod_json(&shape, 1));
        assert_eq!(p["spec"]["schedulerName"], "upstream-scheduler");
        assert_eq!(p["metadata"]["labels"]["color"], "green");
        let term = &p["spec"]["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
            [0];
        assert_eq!(term["topologyKey"], "kubernetes.io/hostname");
        assert_eq!(term["labelSelector"]["matchLabels"]["color"], "green");
        assert_eq!(term["namespaces"], json!(["a-init", "a"]));

        let shape = PodShape {
            kind: Kind::TopologySpread,
            scheduler_name: None,
            affinity_namespaces: vec![],
        };
        let p = parse(&pod_json(&shape, 1));
        let c = &p["spec"]["topologySpreadConstraints"][0];
        assert_eq!(c["maxSkew"], 1);
        assert_eq!(c["topologyKey"], "topology.kubernetes.io/zone");
        assert_eq!(c["whenUnsatisfiable"], "DoNotSchedule");
        assert_eq!(p["metadata"]["labels"]["color"], "blue");
    }

    #[test]
    fn nodes_are_ready_with_default_capacity() {
        let n = parse(&node_json("n-1", "zone-2"));
        assert_eq!(n["metadata"]["labels"]["kubernetes.io/hostname"], "n-1");
        assert_eq!(
            n["metadata"]["labels"]["topology.kubernetes.io/zone"],
            "zone-2"
        );
        let s = node_with_status(n, "2025-01-01T00:00:00Z");
        assert_eq!(s["status"]["allocatable"]["pods"], "110");
        assert_eq!(s["status"]["conditions"][0]["type"], "Ready");
        assert_eq!(s["status"]["conditions"][0]["status"], "True");
    }
}
