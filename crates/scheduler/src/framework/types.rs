//! The scheduler's view of the cluster: resources, pods with their precomputed requests and
//! affinity terms, nodes with what runs on them, and the snapshot one cycle works on.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use api::quantity::Quantity as Q;
use api::selector::{LabelSelector, Operator, Requirement};
use k8s_openapi::api::core::v1::{Container, Node, Pod, PodAffinityTerm};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// Requests assumed for a container that sets none, when spreading pods by load (upstream's
/// `DefaultMilliCPURequest` / `DefaultMemoryRequest`); not used for fit.
pub const DEFAULT_MILLI_CPU_REQUEST: i64 = 100;
pub const DEFAULT_MEMORY_REQUEST: i64 = 200 * 1024 * 1024;

/// Amounts of the resources the scheduler accounts for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resource {
    pub milli_cpu: i64,
    /// Bytes.
    pub memory: i64,
    /// Bytes.
    pub ephemeral_storage: i64,
    /// Pods a node allows (allocatable only).
    pub allowed_pods: i64,
    /// Extended resources, hugepages and anything else, in whole units.
    pub scalar: BTreeMap<String, i64>,
}

impl Resource {
    /// Parses a resource list (requests, capacity, allocatable). Unparsable quantities count as
    /// zero (the API server validated them already).
    pub fn from_list(list: Option<&BTreeMap<String, Quantity>>) -> Resource {
        let mut r = Resource::default();
        for (name, q) in list.into_iter().flatten() {
            let Ok(q) = Q::parse(&q.0) else { continue };
            match name.as_str() {
                "cpu" => r.milli_cpu = clamp(q.as_milli()),
                "memory" => r.memory = clamp(q.as_value()),
                "ephemeral-storage" => r.ephemeral_storage = clamp(q.as_value()),
                "pods" => r.allowed_pods = clamp(q.as_value()),
                other => {
                    r.scalar.insert(other.to_string(), clamp(q.as_value()));
                }
            }
        }
        r
    }

    pub fn get(&self, name: &str) -> i64 {
        match name {
            "cpu" => self.milli_cpu,
            "memory" => self.memory,
            "ephemeral-storage" => self.ephemeral_storage,
            "pods" => self.allowed_pods,
            other => self.scalar.get(other).copied().unwrap_or(0),
        }
    }

    pub fn add(&mut self, other: &Resource) {
        self.milli_cpu = self.milli_cpu.saturating_add(other.milli_cpu);
        self.memory = self.memory.saturating_add(other.memory);
        self.ephemeral_storage = self
            .ephemeral_storage
            .saturating_add(other.ephemeral_storage);
        self.allowed_pods = self.allowed_pods.saturating_add(other.allowed_pods);
        for (k, v) in &other.scalar {
            let e = self.scalar.entry(k.clone()).or_insert(0);
            *e = e.saturating_add(*v);
        }
    }

    pub fn sub(&mut self, other: &Resource) {
        self.milli_cpu = self.milli_cpu.saturating_sub(other.milli_cpu);
        self.memory = self.memory.saturating_sub(other.memory);
        self.ephemeral_storage = self
            .ephemeral_storage
            .saturating_sub(other.ephemeral_storage);
        self.allowed_pods = self.allowed_pods.saturating_sub(other.allowed_pods);
        for (k, v) in &other.scalar {
            let e = self.scalar.entry(k.clone()).or_insert(0);
            *e = e.saturating_sub(*v);
        }
    }

    /// Each resource the larger of the two.
    pub fn set_max(&mut self, other: &Resource) {
        self.milli_cpu = self.milli_cpu.max(other.milli_cpu);
        self.memory = self.memory.max(other.memory);
        self.ephemeral_storage = self.ephemeral_storage.max(other.ephemeral_storage);
        self.allowed_pods = self.allowed_pods.max(other.allowed_pods);
        for (k, v) in &other.scalar {
            let e = self.scalar.entry(k.clone()).or_insert(0);
            *e = (*e).max(*v);
        }
    }
}

fn clamp(n: i128) -> i64 {
    n.clamp(i64::MIN as i128, i64::MAX as i128) as i64
}

fn container_requests(c: &Container) -> Resource {
    Resource::from_list(c.resources.as_ref().and_then(|r| r.requests.as_ref()))
}

/// `container_requests` with the non-zero defaults for unset cpu and memory.
fn container_non_zero(c: &Container) -> Resource {
    let mut r = container_requests(c);
    let requests = c.resources.as_ref().and_then(|r| r.requests.as_ref());
    if !requests.is_some_and(|m| m.contains_key("cpu")) {
        r.milli_cpu = DEFAULT_MILLI_CPU_REQUEST;
    }
    if !requests.is_some_and(|m| m.contains_key("memory")) {
        r.memory = DEFAULT_MEMORY_REQUEST;
    }
    r
}

fn is_sidecar(c: &Container) -> bool {
    c.restart_policy.as_deref() == Some("Always")
}

/// A pod's effective requests, as upstream computes them (`resource.PodRequests`): the sum of
/// its containers and sidecars (restartable init containers), or — if larger — what any init
/// container needs while the sidecars started before it run; plus the pod overhead.
/// `non_zero` substitutes the scoring defaults for unset cpu/memory.
pub fn pod_requests(pod: &Pod, non_zero: bool) -> Resource {
    let Some(spec) = pod.spec.as_ref() else {
        return Resource::default();
    };
    let per = |c: &Container| {
        if non_zero {
            container_non_zero(c)
        } else {
            container_requests(c)
        }
    };
    let mut total = Resource::default();
    for c in &spec.containers {
        total.add(&per(c));
    }
    let mut sidecars = Resource::default();
    let mut init_max = Resource::default();
    for c in spec.init_containers.iter().flatten() {
        let r = per(c);
        if is_sidecar(c) {
            sidecars.add(&r);
            total.add(&r);
            init_max.set_max(&sidecars);
        } else {
            let mut during = sidecars.clone();
            during.add(&r);
            init_max.set_max(&during);
        }
    }
    total.set_max(&init_max);
    if let Some(overhead) = spec.overhead.as_ref() {
        total.add(&Resource::from_list(Some(overhead)));
    }
    total
}

/// One pod (anti-)affinity term, parsed.
#[derive(Clone, Debug)]
pub struct AffinityTerm {
    pub selector: LabelSelector,
    /// Namespaces listed explicitly (the pod's own when the term names none and has no
    /// namespace selector).
    pub namespaces: BTreeSet<String>,
    /// `None`: only `namespaces`; an empty selector matches every namespace.
    pub namespace_selector: Option<LabelSelector>,
    pub topology_key: String,
}

impl AffinityTerm {
    /// Parses a term of `owner` (whose namespace and labels fill in the defaults and the
    /// `matchLabelKeys`/`mismatchLabelKeys`). `None` if its selectors do not parse.
    pub fn new(term: &PodAffinityTerm, owner: &Pod) -> Option<AffinityTerm> {
        let owner_ns = owner.metadata.namespace.clone().unwrap_or_default();
        let owner_labels = owner.metadata.labels.clone().unwrap_or_default();
        let mut selector = match term.label_selector.as_ref() {
            // A term without a selector matches no pod.
            None => LabelSelector::nothing(),
            Some(s) => LabelSelector::from_k8s(s).ok()?,
        };
        if term.label_selector.is_some() {
            for key in term.match_label_keys.iter().flatten() {
                if let Some(v) = owner_labels.get(key) {
                    selector.add(Requirement::new(key, Operator::In, vec![v.clone()]).ok()?);
                }
            }
            for key in term.mismatch_label_keys.iter().flatten() {
                if let Some(v) = owner_labels.get(key) {
                    selector.add(Requirement::new(key, Operator::NotIn, vec![v.clone()]).ok()?);
                }
            }
        }
        let namespace_selector = match term.namespace_selector.as_ref() {
            None => None,
            Some(s) => Some(LabelSelector::from_k8s(s).ok()?),
        };
        let mut namespaces: BTreeSet<String> = term.namespaces.iter().flatten().cloned().collect();
        if namespaces.is_empty() && namespace_selector.is_none() {
            namespaces.insert(owner_ns);
        }
        Some(AffinityTerm {
            selector,
            namespaces,
            namespace_selector,
            topology_key: term.topology_key.clone(),
        })
    }

    /// Whether `pod` is one this term selects; `namespace_labels` are the labels of the
    /// namespaces (for namespace selectors).
    pub fn matches(&self, pod: &Pod, namespace_labels: &NamespaceLabels) -> bool {
        let ns = pod.metadata.namespace.as_deref().unwrap_or_default();
        let in_namespace = self.namespaces.contains(ns)
            || self.namespace_selector.as_ref().is_some_and(|sel| {
                namespace_labels
                    .get(ns)
                    .is_some_and(|labels| sel.matches(labels))
            });
        in_namespace && self.selector.matches(&pod.metadata.labels)
    }
}

/// A weighted (preferred) affinity term.
#[derive(Clone, Debug)]
pub struct WeightedAffinityTerm {
    pub term: AffinityTerm,
    pub weight: i32,
}

/// Labels of every namespace, by name.
pub type NamespaceLabels = HashMap<String, BTreeMap<String, String>>;

/// A pod with what the scheduler computes from it once.
#[derive(Clone, Debug)]
pub struct PodInfo {
    pub pod: Arc<Pod>,
    pub requests: Resource,
    pub non_zero_requests: Resource,
    pub required_affinity: Vec<AffinityTerm>,
    pub required_anti_affinity: Vec<AffinityTerm>,
    pub preferred_affinity: Vec<WeightedAffinityTerm>,
    pub preferred_anti_affinity: Vec<WeightedAffinityTerm>,
    /// Some affinity term did not parse (the pod cannot be scheduled by affinity rules).
    pub affinity_parse_error: bool,
}

impl PodInfo {
    pub fn new(pod: Arc<Pod>) -> PodInfo {
        let mut info = PodInfo {
            requests: pod_requests(&pod, false),
            non_zero_requests: pod_requests(&pod, true),
            required_affinity: Vec::new(),
            required_anti_affinity: Vec::new(),
            preferred_affinity: Vec::new(),
            preferred_anti_affinity: Vec::new(),
            affinity_parse_error: false,
            pod,
        };
        let affinity = info.pod.spec.as_ref().and_then(|s| s.affinity.as_ref());
        let mut error = false;
        let mut required = |terms: Option<&Vec<PodAffinityTerm>>| -> Vec<AffinityTerm> {
            terms
                .into_iter()
                .flatten()
                .filter_map(|t| {
                    let parsed = AffinityTerm::new(t, &info.pod);
                    error |= parsed.is_none();
                    parsed
                })
                .collect()
        };
        if let Some(a) = affinity.and_then(|a| a.pod_affinity.as_ref()) {
            info.required_affinity = required(
                a.required_during_scheduling_ignored_during_execution
                    .as_ref(),
            );
        }
        if let Some(a) = affinity.and_then(|a| a.pod_anti_affinity.as_ref()) {
            info.required_anti_affinity = required(
                a.required_during_scheduling_ignored_during_execution
                    .as_ref(),
            );
        }
        let mut preferred =
            |terms: Option<&Vec<k8s_openapi::api::core::v1::WeightedPodAffinityTerm>>| {
                terms
                    .into_iter()
                    .flatten()
                    .filter_map(|w| {
                        let parsed = AffinityTerm::new(&w.pod_affinity_term, &info.pod);
                        error |= parsed.is_none();
                        Some(WeightedAffinityTerm {
                            term: parsed?,
                            weight: w.weight,
                        })
                    })
                    .collect::<Vec<_>>()
            };
        let (pa, paa) = (
            affinity.and_then(|a| a.pod_affinity.as_ref()).map(|a| {
                preferred(
                    a.preferred_during_scheduling_ignored_during_execution
                        .as_ref(),
                )
            }),
            affinity
                .and_then(|a| a.pod_anti_affinity.as_ref())
                .map(|a| {
                    preferred(
                        a.preferred_during_scheduling_ignored_during_execution
                            .as_ref(),
                    )
                }),
        );
        info.preferred_affinity = pa.unwrap_or_default();
        info.preferred_anti_affinity = paa.unwrap_or_default();
        info.affinity_parse_error = error;
        info
    }

    pub fn uid(&self) -> &str {
        self.pod.metadata.uid.as_deref().unwrap_or_default()
    }

    pub fn namespace(&self) -> &str {
        self.pod.metadata.namespace.as_deref().unwrap_or_default()
    }

    pub fn name(&self) -> &str {
        self.pod.metadata.name.as_deref().unwrap_or_default()
    }

    /// `spec.priority`, 0 when unset.
    pub fn priority(&self) -> i32 {
        pod_priority(&self.pod)
    }

    pub fn has_affinity(&self) -> bool {
        !self.required_affinity.is_empty()
            || !self.required_anti_affinity.is_empty()
            || !self.preferred_affinity.is_empty()
            || !self.preferred_anti_affinity.is_empty()
    }
}

/// `spec.priority`, 0 when unset.
pub fn pod_priority(pod: &Pod) -> i32 {
    pod.spec.as_ref().and_then(|s| s.priority).unwrap_or(0)
}

/// A host port a pod uses: `(hostIP, protocol, port)`; hostIP `0.0.0.0` when unset.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HostPort {
    pub ip: String,
    pub protocol: String,
    pub port: i32,
}

/// The host ports `pod`'s containers (and init containers) ask for.
pub fn host_ports(pod: &Pod) -> Vec<HostPort> {
    let Some(spec) = pod.spec.as_ref() else {
        return Vec::new();
    };
    spec.containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .flat_map(|c| c.ports.iter().flatten())
        .filter_map(|p| {
            let port = p.host_port.filter(|&p| p > 0)?;
            Some(HostPort {
                ip: p
                    .host_ip
                    .clone()
                    .filter(|ip| !ip.is_empty())
                    .unwrap_or_else(|| "0.0.0.0".to_string()),
                protocol: p.protocol.clone().unwrap_or_else(|| "TCP".to_string()),
                port,
            })
        })
        .collect()
}

/// One node and the pods on it (bound, or assumed by the scheduler).
#[derive(Clone, Debug)]
pub struct NodeInfo {
    pub node: Arc<Node>,
    pub pods: Vec<Arc<PodInfo>>,
    /// Pods with any pod (anti-)affinity term.
    pub pods_with_affinity: Vec<Arc<PodInfo>>,
    /// Pods with a required anti-affinity term.
    pub pods_with_required_anti_affinity: Vec<Arc<PodInfo>>,
    pub used_ports: Vec<HostPort>,
    /// Sum of the pods' requests.
    pub requested: Resource,
    /// Sum with the scoring defaults for unset cpu/memory.
    pub non_zero_requested: Resource,
    pub allocatable: Resource,
    /// Bumped on every change; lets snapshots skip unchanged nodes.
    pub generation: u64,
}

impl NodeInfo {
    pub fn new(node: Arc<Node>) -> NodeInfo {
        let allocatable = Resource::from_list(
            node.status
                .as_ref()
                .and_then(|s| s.allocatable.as_ref().or(s.capacity.as_ref())),
        );
        NodeInfo {
            node,
            pods: Vec::new(),
            pods_with_affinity: Vec::new(),
            pods_with_required_anti_affinity: Vec::new(),
            used_ports: Vec::new(),
            requested: Resource::default(),
            non_zero_requested: Resource::default(),
            allocatable,
            generation: 0,
        }
    }

    pub fn name(&self) -> &str {
        self.node.metadata.name.as_deref().unwrap_or_default()
    }

    pub fn labels(&self) -> &BTreeMap<String, String> {
        static EMPTY: BTreeMap<String, String> = BTreeMap::new();
        self.node.metadata.labels.as_ref().unwrap_or(&EMPTY)
    }

    /// Replaces the Node object (its pods stay).
    pub fn set_node(&mut self, node: Arc<Node>) {
        let pods = std::mem::take(&mut self.pods);
        let generation = self.generation;
        *self = NodeInfo::new(node);
        for p in pods {
            self.add_pod(p);
        }
        self.generation = generation + 1;
    }

    pub fn add_pod(&mut self, pod: Arc<PodInfo>) {
        self.requested.add(&pod.requests);
        self.non_zero_requested.add(&pod.non_zero_requests);
        self.used_ports.extend(host_ports(&pod.pod));
        if pod.has_affinity() {
            self.pods_with_affinity.push(pod.clone());
        }
        if !pod.required_anti_affinity.is_empty() {
            self.pods_with_required_anti_affinity.push(pod.clone());
        }
        self.pods.push(pod);
        self.generation += 1;
    }

    /// Removes the pod with `uid`; false if it is not here.
    pub fn remove_pod(&mut self, uid: &str) -> bool {
        let Some(at) = self.pods.iter().position(|p| p.uid() == uid) else {
            return false;
        };
        let pod = self.pods.swap_remove(at);
        self.requested.sub(&pod.requests);
        self.non_zero_requested.sub(&pod.non_zero_requests);
        for port in host_ports(&pod.pod) {
            if let Some(i) = self.used_ports.iter().position(|p| *p == port) {
                self.used_ports.swap_remove(i);
            }
        }
        self.pods_with_affinity.retain(|p| p.uid() != uid);
        self.pods_with_required_anti_affinity
            .retain(|p| p.uid() != uid);
        self.generation += 1;
        true
    }

    /// Image names on the node (every tag and digest name) with their sizes in bytes.
    pub fn images(&self) -> impl Iterator<Item = (&str, i64)> {
        self.node
            .status
            .as_ref()
            .and_then(|s| s.images.as_ref())
            .into_iter()
            .flatten()
            .flat_map(|i| {
                let size = i.size_bytes.unwrap_or(0);
                i.names.iter().flatten().map(move |n| (n.as_str(), size))
            })
    }
}

/// The cluster as one scheduling cycle sees it.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub nodes: Vec<Arc<NodeInfo>>,
    index: HashMap<String, usize>,
    /// Nodes with at least one pod with pod (anti-)affinity terms.
    pub have_pods_with_affinity: Vec<Arc<NodeInfo>>,
    /// Nodes with at least one pod with a required anti-affinity term.
    pub have_pods_with_required_anti_affinity: Vec<Arc<NodeInfo>>,
    /// How many nodes have each image (by every name it is known under).
    pub image_nodes: HashMap<String, usize>,
    pub namespace_labels: NamespaceLabels,
    pub pdbs: Vec<Arc<PodDisruptionBudget>>,
    /// Selectors of the Services, ReplicaSets, ReplicationControllers and StatefulSets (for
    /// PodTopologySpread's default constraints).
    pub workload_selectors: Vec<WorkloadSelector>,
}

/// The pod selector of one Service, ReplicaSet, ReplicationController or StatefulSet.
#[derive(Clone, Debug)]
pub struct WorkloadSelector {
    pub kind: &'static str,
    pub namespace: String,
    pub selector: LabelSelector,
}

impl Snapshot {
    pub fn new(
        nodes: Vec<Arc<NodeInfo>>,
        namespace_labels: NamespaceLabels,
        pdbs: Vec<Arc<PodDisruptionBudget>>,
    ) -> Snapshot {
        let mut s = Snapshot {
            namespace_labels,
            pdbs,
            ..Snapshot::default()
        };
        for n in &nodes {
            s.index.insert(n.name().to_string(), s.index.len());
            if !n.pods_with_affinity.is_empty() {
                s.have_pods_with_affinity.push(n.clone());
            }
            if !n.pods_with_required_anti_affinity.is_empty() {
                s.have_pods_with_required_anti_affinity.push(n.clone());
            }
            let names: BTreeSet<&str> = n.images().map(|(name, _)| name).collect();
            for name in names {
                *s.image_nodes.entry(name.to_string()).or_insert(0) += 1;
            }
        }
        s.nodes = nodes;
        s
    }

    /// A snapshot of bare nodes and pods (tests): each pod goes to its `spec.nodeName`.
    pub fn from_objects(nodes: Vec<Node>, pods: Vec<Pod>) -> Snapshot {
        let mut infos: Vec<NodeInfo> = nodes
            .into_iter()
            .map(|n| NodeInfo::new(Arc::new(n)))
            .collect();
        for pod in pods {
            let on = pod.spec.as_ref().and_then(|s| s.node_name.clone());
            if let Some(n) = infos.iter_mut().find(|n| Some(n.name()) == on.as_deref()) {
                n.add_pod(Arc::new(PodInfo::new(Arc::new(pod))));
            }
        }
        Snapshot::new(
            infos.into_iter().map(Arc::new).collect(),
            NamespaceLabels::new(),
            Vec::new(),
        )
    }

    pub fn get(&self, name: &str) -> Option<&Arc<NodeInfo>> {
        self.index.get(name).and_then(|&i| self.nodes.get(i))
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn requests_follow_upstream_rules() {
        // Containers sum; a bigger init container wins; sidecars add up and run during the
        // init containers after them; overhead adds on top.
        let p = pod(json!({
            "metadata": {"name": "p", "namespace": "d"},
            "spec": {
                "containers": [
                    {"name": "a", "resources": {"requests": {"cpu": "100m", "memory": "1Gi"}}},
                    {"name": "b", "resources": {"requests": {"cpu": "200m"}}}
                ],
                "initContainers": [
                    {"name": "side", "restartPolicy": "Always",
                     "resources": {"requests": {"cpu": "50m"}}},
                    {"name": "init", "resources": {"requests": {"cpu": "1", "memory": "10Mi"}}}
                ],
                "overhead": {"cpu": "10m"}
            }
        }));
        let r = pod_requests(&p, false);
        assert_eq!(r.milli_cpu, 1050 + 10);
        assert_eq!(r.memory, 1 << 30);
        let nz = pod_requests(&p, true);
        // "b" has no memory request: the 200Mi default counts when scoring.
        assert_eq!(
            nz.memory,
            (1 << 30) + DEFAULT_MEMORY_REQUEST + DEFAULT_MEMORY_REQUEST
        );
    }

    #[test]
    fn node_info_tracks_pods() {
        let node: Node = serde_json::from_value(json!({
            "metadata": {"name": "n1"},
            "status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"}}
        }))
        .unwrap();
        let mut n = NodeInfo::new(Arc::new(node));
        assert_eq!(n.allocatable.milli_cpu, 4000);
        assert_eq!(n.allocatable.allowed_pods, 110);
        let p = Arc::new(PodInfo::new(Arc::new(pod(json!({
            "metadata": {"name": "p", "namespace": "d", "uid": "u1"},
            "spec": {"containers": [{"name": "c",
                "ports": [{"containerPort": 80, "hostPort": 8080}],
                "resources": {"requests": {"cpu": "500m"}}}]}
        })))));
        n.add_pod(p);
        assert_eq!(n.requested.milli_cpu, 500);
        assert_eq!(n.used_ports.len(), 1);
        assert!(n.remove_pod("u1"));
        assert_eq!(n.requested, Resource::default());
        assert!(n.used_ports.is_empty());
        assert!(!n.remove_pod("u1"));
    }

    #[test]
    fn affinity_terms_default_to_the_pods_namespace() {
        let p = pod(json!({
            "metadata": {"name": "p", "namespace": "d", "labels": {"app": "web", "v": "1"}},
            "spec": {"containers": [], "affinity": {"podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [{
                    "labelSelector": {"matchLabels": {"app": "web"}},
                    "matchLabelKeys": ["v"],
                    "topologyKey": "kubernetes.io/hostname"
                }]
            }}}
        }));
        let info = PodInfo::new(Arc::new(p.clone()));
        assert_eq!(info.required_anti_affinity.len(), 1);
        let term = &info.required_anti_affinity[0];
        assert!(term.matches(&p, &NamespaceLabels::new()));
        let mut other = p.clone();
        other.metadata.namespace = Some("elsewhere".into());
        assert!(!term.matches(&other, &NamespaceLabels::new()));
        let mut v2 = p;
        v2.metadata
            .labels
            .as_mut()
            .unwrap()
            .insert("v".into(), "2".into());
        assert!(
            !term.matches(&v2, &NamespaceLabels::new()),
            "matchLabelKeys"
        );
    }
}
