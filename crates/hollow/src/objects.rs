//! The objects a hollow kubelet writes, built as pure functions of the configuration, the
//! node's index and the clock, so they can be rebuilt on every write instead of being kept in
//! memory for each of thousands of nodes.
//!
//! Field values follow what a v1.33 kubelet reports: the four node conditions with its reasons
//! and messages, the labels it sets on itself, allocatable memory and storage reduced by its
//! default hard-eviction thresholds (`memory.available<100Mi`, `nodefs.available<10%`), a
//! Lease in `kube-node-lease` owned by the Node, and pod statuses with the conditions in the
//! order the kubelet lists them.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use api::quantity::Quantity as Amount;
use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting,
    ContainerStatus, DaemonEndpoint, HostIP, Node, NodeAddress, NodeCondition, NodeDaemonEndpoints,
    NodeSpec, NodeStatus, NodeSystemInfo, PodCondition, PodIP, PodStatus,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, OwnerReference, Time};

use crate::config::Config;
use crate::ipam::Addressing;
use crate::view::ContainerView;

/// Namespace of the node heartbeat Leases.
pub const LEASE_NAMESPACE: &str = "kube-node-lease";
/// The kubelet version the hollow nodes claim (the API server's).
pub const KUBELET_VERSION: &str = "v1.33.0";
/// Memory the kubelet's default hard-eviction threshold keeps out of allocatable.
const EVICTION_MEMORY: i128 = 100 * 1024 * 1024;

/// A 64-bit mix of `parts` (FNV-1a then a SplitMix64 finaliser): stable across runs and
/// platforms, unlike `std`'s hasher, so made-up ids stay the same for the same input.
fn mix(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.iter().chain([0xffu8].iter()) {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// `chars` hex digits derived from `parts`.
pub fn fake_hex(parts: &[&[u8]], chars: usize) -> String {
    let mut out = String::with_capacity(chars + 16);
    let mut round = 0u64;
    while out.len() < chars {
        let r = round.to_le_bytes();
        let mut all: Vec<&[u8]> = parts.to_vec();
        all.push(&r);
        out.push_str(&format!("{:016x}", mix(&all)));
        round += 1;
    }
    out.truncate(chars);
    out
}

/// A UUID-shaped id derived from `parts`.
fn fake_uuid(parts: &[&[u8]]) -> String {
    let h = fake_hex(parts, 32);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// `a - b`, not below zero, in `a`'s format.
fn minus(a: &str, b: Amount) -> Quantity {
    match Amount::parse(a) {
        Ok(q) => {
            let left = q.checked_sub(&b).filter(|l| l.signum() > 0);
            let left = left.unwrap_or_else(|| Amount::from_value(0, q.format()));
            left.to_k8s()
        }
        Err(_) => Quantity(a.to_string()),
    }
}

/// Canonical form of a validated quantity (`4000m` → `4`), as the API server would store it.
fn canonical(s: &str) -> Quantity {
    Amount::parse(s).map_or_else(|_| Quantity(s.to_string()), |q| q.to_k8s())
}

fn resources(cfg: &Config, allocatable: bool) -> BTreeMap<String, Quantity> {
    let (memory, storage) = if allocatable {
        let tenth = Amount::parse(&cfg.ephemeral_storage)
            .map(|q| Amount::from_milli(q.as_milli() / 10))
            .unwrap_or_default();
        (
            minus(
                &cfg.memory,
                Amount::from_value(EVICTION_MEMORY, Default::default()),
            ),
            minus(&cfg.ephemeral_storage, tenth),
        )
    } else {
        (canonical(&cfg.memory), canonical(&cfg.ephemeral_storage))
    };
    BTreeMap::from([
        ("cpu".to_string(), canonical(&cfg.cpu)),
        ("memory".to_string(), memory),
        ("ephemeral-storage".to_string(), storage),
        ("pods".to_string(), Quantity(cfg.pods_per_node.to_string())),
    ])
}

fn condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    since: Timestamp,
    now: Timestamp,
) -> NodeCondition {
    NodeCondition {
        type_: type_.to_string(),
        status: status.to_string(),
        reason: Some(reason.to_string()),
        message: Some(message.to_string()),
        last_heartbeat_time: Some(Time(now)),
        last_transition_time: Some(Time(since)),
    }
}

/// The node's status: healthy since `since`, reported at `now`. `boot` makes the boot id
/// change when the simulator restarts, as a real node's does when it reboots.
pub fn node_status(
    cfg: &Config,
    addr: &Addressing,
    index: u32,
    boot: u64,
    since: Timestamp,
    now: Timestamp,
) -> NodeStatus {
    let name = cfg.node_name(index);
    let id = name.as_bytes();
    NodeStatus {
        capacity: Some(resources(cfg, false)),
        allocatable: Some(resources(cfg, true)),
        conditions: Some(vec![
            condition(
                "MemoryPressure",
                "False",
                "KubeletHasSufficientMemory",
                "kubelet has sufficient memory available",
                since,
                now,
            ),
            condition(
                "DiskPressure",
                "False",
                "KubeletHasNoDiskPressure",
                "kubelet has no disk pressure",
                since,
                now,
            ),
            condition(
                "PIDPressure",
                "False",
                "KubeletHasSufficientPID",
                "kubelet has sufficient PID available",
                since,
                now,
            ),
            condition(
                "Ready",
                "True",
                "KubeletReady",
                "kubelet is posting ready status",
                since,
                now,
            ),
        ]),
        addresses: Some(vec![
            NodeAddress {
                type_: "InternalIP".to_string(),
                address: addr.node_ip(index).to_string(),
            },
            NodeAddress {
                type_: "Hostname".to_string(),
                address: name.clone(),
            },
        ]),
        daemon_endpoints: Some(NodeDaemonEndpoints {
            kubelet_endpoint: Some(DaemonEndpoint { port: 10250 }),
        }),
        node_info: Some(NodeSystemInfo {
            machine_id: fake_hex(&[b"machine", id], 32),
            system_uuid: fake_uuid(&[b"system", id]),
            boot_id: fake_uuid(&[b"boot", id, &boot.to_le_bytes()]),
            kernel_version: "6.1.0-hollow".to_string(),
            os_image: "keelson hollow node".to_string(),
            container_runtime_version: "hollow://1.0.0".to_string(),
            kubelet_version: KUBELET_VERSION.to_string(),
            kube_proxy_version: String::new(),
            operating_system: "linux".to_string(),
            architecture: "amd64".to_string(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The Node the kubelet registers: its labels, taints and pod CIDR, with its status.
pub fn node(
    cfg: &Config,
    addr: &Addressing,
    index: u32,
    boot: u64,
    since: Timestamp,
    now: Timestamp,
) -> Node {
    let name = cfg.node_name(index);
    let mut labels = cfg.labels.clone();
    for (k, v) in [
        ("kubernetes.io/hostname", name.as_str()),
        ("kubernetes.io/os", "linux"),
        ("kubernetes.io/arch", "amd64"),
        ("beta.kubernetes.io/os", "linux"),
        ("beta.kubernetes.io/arch", "amd64"),
    ] {
        labels.insert(k.to_string(), v.to_string());
    }
    let cidr = addr.pod_cidr(index);
    Node {
        metadata: ObjectMeta {
            name: Some(name),
            labels: Some(labels),
            annotations: Some(BTreeMap::from([(
                "volumes.kubernetes.io/controller-managed-attach-detach".to_string(),
                "true".to_string(),
            )])),
            ..Default::default()
        },
        spec: Some(NodeSpec {
            pod_cidr: Some(cidr.clone()),
            pod_cidrs: Some(vec![cidr]),
            taints: (!cfg.taints.is_empty()).then(|| cfg.taints.clone()),
            ..Default::default()
        }),
        status: Some(node_status(cfg, addr, index, boot, since, now)),
    }
}

/// The node's heartbeat Lease, renewed at `now`; `resource_version` makes the write a
/// compare-and-swap, as the kubelet's lease controller does it.
pub fn lease(
    cfg: &Config,
    index: u32,
    node_uid: &str,
    resource_version: Option<&str>,
    now: Timestamp,
) -> Lease {
    let name = cfg.node_name(index);
    Lease {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(LEASE_NAMESPACE.to_string()),
            resource_version: resource_version.map(str::to_string),
            owner_references: Some(vec![OwnerReference {
                api_version: "v1".to_string(),
                kind: "Node".to_string(),
                name: name.clone(),
                uid: node_uid.to_string(),
                ..Default::default()
            }]),
            ..Default::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(name),
            lease_duration_seconds: Some(
                i32::try_from(cfg.lease_duration.as_secs()).unwrap_or(i32::MAX),
            ),
            renew_time: Some(MicroTime(now)),
            ..Default::default()
        }),
    }
}

/// `nginx` → `docker.io/library/nginx:latest`: the fully qualified reference a container
/// runtime reports for an image.
pub fn normalize_image(image: &str) -> String {
    let (first, rest) = image.split_once('/').unwrap_or(("", image));
    let has_domain =
        !first.is_empty() && (first.contains('.') || first.contains(':') || first == "localhost");
    let mut out = match (has_domain, first.is_empty()) {
        (true, _) => image.to_string(),
        (false, true) => format!("docker.io/library/{rest}"),
        (false, false) => format!("docker.io/{image}"),
    };
    let last = out.rsplit('/').next().unwrap_or("");
    if !last.contains(':') && !last.contains('@') {
        out.push_str(":latest");
    }
    out
}

/// The image id a runtime would report: the repository and a made-up digest of the reference.
fn image_id(image: &str) -> String {
    let repo = image.split('@').next().unwrap_or(image);
    let repo = match repo.rsplit_once(':') {
        Some((r, tag)) if !tag.contains('/') => r,
        _ => repo,
    };
    format!("{repo}@sha256:{}", fake_hex(&[image.as_bytes()], 64))
}

/// The stage of a pod's life a status describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PodStage {
    /// Admitted; the sandbox and containers are being created.
    Pending,
    /// Every container started and ready.
    Running,
    /// Being deleted: every container stopped (exit 0), the pod terminal.
    Terminated,
}

/// What a pod status is built from.
#[derive(Clone, Copy, Debug)]
pub struct PodFacts<'a> {
    pub uid: &'a str,
    pub containers: &'a [ContainerView],
    pub init_containers: &'a [ContainerView],
    pub host_ip: Ipv4Addr,
    /// The pod's address; `None` only for a pod deleted before it ever started.
    pub pod_ip: Option<Ipv4Addr>,
    /// When the kubelet admitted the pod (`status.startTime`).
    pub start: Timestamp,
}

fn pod_condition(
    type_: &str,
    ok: bool,
    reason: Option<&str>,
    message: Option<String>,
    at: Timestamp,
) -> PodCondition {
    PodCondition {
        type_: type_.to_string(),
        status: if ok { "True" } else { "False" }.to_string(),
        reason: reason.map(str::to_string),
        message,
        last_transition_time: Some(Time(at)),
        ..Default::default()
    }
}

fn container_status(
    pod: &PodFacts<'_>,
    c: &ContainerView,
    stage: PodStage,
    init: bool,
    now: Timestamp,
) -> ContainerStatus {
    let image = normalize_image(c.image.as_deref().unwrap_or(""));
    let created = stage != PodStage::Pending || init;
    let state = match (stage, init) {
        (PodStage::Pending, false) => ContainerState {
            waiting: Some(ContainerStateWaiting {
                reason: Some("ContainerCreating".to_string()),
                message: None,
            }),
            ..Default::default()
        },
        (PodStage::Running, false) => ContainerState {
            running: Some(ContainerStateRunning {
                started_at: Some(Time(pod.start)),
            }),
            ..Default::default()
        },
        // Init containers ran to completion before the others started; the others stop
        // when the pod is deleted.
        (_, true) | (PodStage::Terminated, false) => ContainerState {
            terminated: Some(ContainerStateTerminated {
                exit_code: 0,
                reason: Some("Completed".to_string()),
                started_at: Some(Time(pod.start)),
                finished_at: Some(Time(if init { pod.start } else { now })),
                container_id: Some(container_id(pod.uid, &c.name)),
                ..Default::default()
            }),
            ..Default::default()
        },
    };
    let running = stage == PodStage::Running && !init;
    ContainerStatus {
        name: c.name.clone(),
        image_id: if created {
            image_id(&image)
        } else {
            String::new()
        },
        container_id: created.then(|| container_id(pod.uid, &c.name)),
        image,
        ready: running,
        started: Some(running),
        restart_count: 0,
        state: Some(state),
        ..Default::default()
    }
}

fn container_id(pod_uid: &str, name: &str) -> String {
    format!(
        "containerd://{}",
        fake_hex(&[pod_uid.as_bytes(), name.as_bytes()], 64)
    )
}

/// The pod's status at `stage`, reported at `now`.
pub fn pod_status(pod: &PodFacts<'_>, stage: PodStage, now: Timestamp) -> PodStatus {
    let names: Vec<&str> = pod.containers.iter().map(|c| c.name.as_str()).collect();
    let unready = Some(format!(
        "containers with unready status: [{}]",
        names.join(" ")
    ));
    let (phase, sandbox, ready, reason, message) = match stage {
        PodStage::Pending => ("Pending", false, false, Some("ContainersNotReady"), unready),
        PodStage::Running => ("Running", true, true, None, None),
        PodStage::Terminated => ("Succeeded", false, false, Some("PodCompleted"), None),
    };
    let at = if stage == PodStage::Pending {
        pod.start
    } else {
        now
    };
    let host = pod.host_ip.to_string();
    let ip = pod
        .pod_ip
        .filter(|_| stage != PodStage::Pending)
        .map(|ip| ip.to_string());
    PodStatus {
        phase: Some(phase.to_string()),
        conditions: Some(vec![
            pod_condition("PodReadyToStartContainers", sandbox, None, None, at),
            pod_condition("Initialized", true, None, None, pod.start),
            pod_condition("Ready", ready, reason, message.clone(), at),
            pod_condition("ContainersReady", ready, reason, message, at),
            pod_condition("PodScheduled", true, None, None, pod.start),
        ]),
        host_ip: Some(host.clone()),
        host_ips: Some(vec![HostIP { ip: host }]),
        pod_ip: ip.clone(),
        pod_ips: ip.map(|ip| vec![PodIP { ip }]),
        start_time: Some(Time(pod.start)),
        init_container_statuses: (!pod.init_containers.is_empty()).then(|| {
            pod.init_containers
                .iter()
                .map(|c| container_status(pod, c, stage, true, now))
                .collect()
        }),
        container_statuses: Some(
            pod.containers
                .iter()
                .map(|c| container_status(pod, c, stage, false, now))
                .collect(),
        ),
        ..Default::default()
    }
}

/// A merge patch for the pods/status subresource. The uid makes it fail (the uid is
/// immutable) if the pod was replaced by another of the same name, as the kubelet's status
/// manager guards its patches.
pub fn pod_status_patch(uid: &str, status: &PodStatus) -> serde_json::Value {
    serde_json::json!({"metadata": {"uid": uid}, "status": status})
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + s).unwrap()
    }

    fn cfg() -> Config {
        Config {
            nodes: 3,
            labels: BTreeMap::from([("zone".to_string(), "z1".to_string())]),
            taints: crate::config::parse_taints("dedicated=sim:NoSchedule").unwrap(),
            ..Config::default()
        }
    }

    #[test]
    fn node_looks_like_a_healthy_kubelet_registered_it() {
        let cfg = cfg();
        let addr = cfg.validate().unwrap();
        let n = node(&cfg, &addr, 2, 7, at(0), at(5));
        let v = serde_json::to_value(&n).unwrap();
        assert_eq!(v["metadata"]["name"], "hollow-2");
        let labels = &v["metadata"]["labels"];
        for (k, want) in [
            ("kubernetes.io/hostname", "hollow-2"),
            ("kubernetes.io/os", "linux"),
            ("kubernetes.io/arch", "amd64"),
            ("zone", "z1"),
        ] {
            assert_eq!(labels[k], want, "{k}");
        }
        assert_eq!(v["spec"]["podCIDR"], "10.0.2.0/24");
        assert_eq!(v["spec"]["taints"][0]["effect"], "NoSchedule");
        let s = &v["status"];
        assert_eq!(s["capacity"]["cpu"], "4");
        assert_eq!(s["capacity"]["memory"], "16Gi");
        assert_eq!(s["capacity"]["pods"], "110");
        assert_eq!(s["capacity"]["ephemeral-storage"], "100Gi");
        assert_eq!(s["allocatable"]["memory"], "16284Mi");
        assert_eq!(s["allocatable"]["ephemeral-storage"], "90Gi");
        assert_eq!(s["allocatable"]["cpu"], "4");
        let conds: Vec<(&str, &str, &str)> = s["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["type"].as_str().unwrap(),
                    c["status"].as_str().unwrap(),
                    c["reason"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            conds,
            [
                ("MemoryPressure", "False", "KubeletHasSufficientMemory"),
                ("DiskPressure", "False", "KubeletHasNoDiskPressure"),
                ("PIDPressure", "False", "KubeletHasSufficientPID"),
                ("Ready", "True", "KubeletReady"),
            ]
        );
        assert_eq!(
            s["conditions"][3]["lastTransitionTime"],
            "2023-11-14T22:13:20Z"
        );
        assert_eq!(
            s["conditions"][3]["lastHeartbeatTime"],
            "2023-11-14T22:13:25Z"
        );
        assert_eq!(
            s["addresses"][0],
            serde_json::json!({"type": "InternalIP", "address": "172.16.0.3"})
        );
        assert_eq!(s["nodeInfo"]["kubeletVersion"], KUBELET_VERSION);
        assert_eq!(s["nodeInfo"]["operatingSystem"], "linux");
        // Ids are per node; the boot id changes with the boot.
        let other = node_status(&cfg, &addr, 1, 7, at(0), at(5))
            .node_info
            .unwrap();
        let same = n.status.unwrap().node_info.unwrap();
        assert_ne!(other.machine_id, same.machine_id);
        let rebooted = node_status(&cfg, &addr, 2, 8, at(0), at(5))
            .node_info
            .unwrap();
        assert_eq!(rebooted.machine_id, same.machine_id);
        assert_ne!(rebooted.boot_id, same.boot_id);
    }

    #[test]
    fn allocatable_never_goes_negative() {
        let cases = [
            ("16Gi", "16284Mi"),
            ("1Gi", "924Mi"),
            ("50Mi", "0"),
            ("2G", "1895142400"),
        ];
        for (memory, want) in cases {
            let cfg = Config {
                memory: memory.to_string(),
                ..Config::default()
            };
            let got = resources(&cfg, true);
            assert_eq!(got["memory"].0, want, "{memory}");
        }
    }

    #[test]
    fn lease_is_owned_by_its_node() {
        let cfg = Config {
            lease_duration: Duration::from_secs(40),
            ..cfg()
        };
        let l = serde_json::to_value(lease(&cfg, 1, "uid-1", Some("42"), at(3))).unwrap();
        assert_eq!(l["metadata"]["namespace"], LEASE_NAMESPACE);
        assert_eq!(l["metadata"]["name"], "hollow-1");
        assert_eq!(l["metadata"]["resourceVersion"], "42");
        assert_eq!(
            l["metadata"]["ownerReferences"][0],
            serde_json::json!({"apiVersion": "v1", "kind": "Node", "name": "hollow-1", "uid": "uid-1"})
        );
        assert_eq!(l["spec"]["holderIdentity"], "hollow-1");
        assert_eq!(l["spec"]["leaseDurationSeconds"], 40);
        assert!(
            l["spec"]["renewTime"]
                .as_str()
                .unwrap()
                .starts_with("2023-11-14T22:13:23")
        );
    }

    #[test]
    fn images_are_normalized() {
        let cases = [
            ("nginx", "docker.io/library/nginx:latest"),
            ("nginx:1.27", "docker.io/library/nginx:1.27"),
            ("bitnami/redis", "docker.io/bitnami/redis:latest"),
            ("registry.k8s.io/pause:3.10", "registry.k8s.io/pause:3.10"),
            ("localhost:5000/app", "localhost:5000/app:latest"),
            ("localhost/app@sha256:abc", "localhost/app@sha256:abc"),
        ];
        for (image, want) in cases {
            assert_eq!(normalize_image(image), want, "{image}");
        }
        assert!(
            image_id("docker.io/library/nginx:1.27").starts_with("docker.io/library/nginx@sha256:")
        );
        assert!(image_id("localhost:5000/app:latest").starts_with("localhost:5000/app@sha256:"));
    }

    #[test]
    fn pod_status_through_its_stages() {
        let containers = vec![
            ContainerView {
                name: "a".into(),
                image: Some("nginx".into()),
            },
            ContainerView {
                name: "b".into(),
                image: Some("busybox".into()),
            },
        ];
        let init = vec![ContainerView {
            name: "setup".into(),
            image: Some("busybox".into()),
        }];
        let facts = PodFacts {
            uid: "u",
            containers: &containers,
            init_containers: &init,
            host_ip: "172.16.0.1".parse().unwrap(),
            pod_ip: Some("10.0.0.2".parse().unwrap()),
            start: at(0),
        };
        // (stage, phase, ready, reason, pod IP, first container's state)
        let cases = [
            (
                PodStage::Pending,
                "Pending",
                "False",
                Some("ContainersNotReady"),
                None,
                "waiting",
            ),
            (
                PodStage::Running,
                "Running",
                "True",
                None,
                Some("10.0.0.2"),
                "running",
            ),
            (
                PodStage::Terminated,
                "Succeeded",
                "False",
                Some("PodCompleted"),
                Some("10.0.0.2"),
                "terminated",
            ),
        ];
        for (stage, phase, ready, reason, ip, state) in cases {
            let s = serde_json::to_value(pod_status(&facts, stage, at(9))).unwrap();
            assert_eq!(s["phase"], phase, "{stage:?}");
            let types: Vec<&str> = s["conditions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["type"].as_str().unwrap())
                .collect();
            assert_eq!(
                types,
                [
                    "PodReadyToStartContainers",
                    "Initialized",
                    "Ready",
                    "ContainersReady",
                    "PodScheduled"
                ]
            );
            assert_eq!(s["conditions"][2]["status"], ready, "{stage:?}");
            assert_eq!(s["conditions"][3]["status"], ready, "{stage:?}");
            assert_eq!(s["conditions"][2]["reason"].as_str(), reason, "{stage:?}");
            assert_eq!(s["podIP"].as_str(), ip, "{stage:?}");
            assert_eq!(s["podIPs"][0]["ip"].as_str(), ip, "{stage:?}");
            assert_eq!(s["hostIP"], "172.16.0.1");
            assert_eq!(s["startTime"], "2023-11-14T22:13:20Z");
            let cs = s["containerStatuses"].as_array().unwrap();
            assert_eq!(cs.len(), 2);
            assert!(cs[0]["state"][state].is_object(), "{stage:?}: {}", cs[0]);
            assert_eq!(cs[0]["image"], "docker.io/library/nginx:latest");
            let running = stage == PodStage::Running;
            assert_eq!(cs[1]["ready"], running);
            assert_eq!(cs[1]["started"], running);
            assert_eq!(cs[0]["containerID"].is_string(), stage != PodStage::Pending);
            assert_eq!(
                s["initContainerStatuses"][0]["state"]["terminated"]["reason"],
                "Completed"
            );
        }
        let pending = serde_json::to_value(pod_status(&facts, PodStage::Pending, at(9))).unwrap();
        assert_eq!(
            pending["conditions"][2]["message"],
            "containers with unready status: [a b]"
        );
        // Ids are stable per pod and container, distinct across them.
        let a = container_id("u", "a");
        assert_eq!(a, container_id("u", "a"));
        assert_ne!(a, container_id("u", "b"));
        assert_ne!(a, container_id("v", "a"));
        assert_eq!(a.len(), "containerd://".len() + 64);
    }

    #[test]
    fn status_patch_carries_the_uid() {
        let p = pod_status_patch("u-1", &PodStatus::default());
        assert_eq!(p["metadata"]["uid"], "u-1");
        assert!(p["status"].is_object());
    }
}
