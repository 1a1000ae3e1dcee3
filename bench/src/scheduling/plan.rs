//! What the scheduling benchmark runs: the node count, the workloads (after upstream's
//! `scheduler_perf` SchedulingBasic, SchedulingPodAntiAffinity and SchedulingPodTopologySpread)
//! and the order in which the two schedulers take their turns.

use std::time::Duration;

/// The scheduler that binds a phase's pods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheduler {
    /// keelson's in-process scheduler (profile `default-scheduler`, the pods' default).
    Keelson,
    /// Upstream kube-scheduler v1.20.2 as a separate process, profile `upstream-scheduler`.
    Upstream,
}

impl Scheduler {
    pub fn label(self) -> &'static str {
        match self {
            Scheduler::Keelson => "keelson",
            Scheduler::Upstream => "kube-scheduler 1.20.2",
        }
    }

    /// Short form for namespace names.
    pub fn tag(self) -> &'static str {
        match self {
            Scheduler::Keelson => "k",
            Scheduler::Upstream => "u",
        }
    }

    /// `spec.schedulerName` of the pods this scheduler takes (None: the API default,
    /// `default-scheduler`).
    pub fn scheduler_name(self) -> Option<&'static str> {
        match self {
            Scheduler::Keelson => None,
            Scheduler::Upstream => Some(super::upstream::PROFILE),
        }
    }
}

/// The shape of a workload's pods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Small requests, no constraints (upstream's pod-default).
    Basic,
    /// Required anti-affinity on `kubernetes.io/hostname` against pods of the same label.
    AntiAffinity,
    /// A DoNotSchedule spread constraint on `topology.kubernetes.io/zone`, maxSkew 1.
    TopologySpread,
}

/// One workload: optional init pods (bound first, not measured), then the measured pods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    pub name: &'static str,
    /// Short form for namespace names.
    pub tag: &'static str,
    pub kind: Kind,
    pub init_pods: usize,
    pub pods: usize,
}

#[derive(Debug, Clone)]
pub struct SchedPlan {
    pub quick: bool,
    pub nodes: usize,
    /// Zones the nodes are spread over (round robin), for the topology-spread workload.
    pub zones: usize,
    /// Concurrent pod-creating clients, each on its own connection.
    pub clients: usize,
    pub workloads: Vec<Workload>,
    /// How long a phase may go without a single new binding before it is given up.
    pub stall_timeout: Duration,
    /// How long keelson's own scheduler gets to bind the probe pod before it is reported as
    /// not available.
    pub probe_timeout: Duration,
    /// Quiet time after the pods of a phase are deleted, so the next phase starts on a server
    /// that finished reacting to the deletions.
    pub settle: Duration,
}

impl SchedPlan {
    /// Upstream's 5000Nodes parameters, plus a 50,000-pod SchedulingBasic.
    pub fn full() -> SchedPlan {
        SchedPlan {
            quick: false,
            nodes: 5_000,
            zones: 3,
            clients: 16,
            workloads: vec![
                basic("SchedulingBasic 10k", "b10k", 10_000),
                basic("SchedulingBasic 50k", "b50k", 50_000),
                Workload {
                    name: "PodAntiAffinity",
                    tag: "aa",
                    kind: Kind::AntiAffinity,
                    init_pods: 1_000,
                    pods: 1_000,
                },
                Workload {
                    name: "PodTopologySpread",
                    tag: "ts",
                    kind: Kind::TopologySpread,
                    init_pods: 5_000,
                    pods: 2_000,
                },
            ],
            stall_timeout: Duration::from_secs(60),
            probe_timeout: Duration::from_secs(20),
            settle: Duration::from_secs(3),
        }
    }

    /// A smoke run in under a minute: 500 nodes, no 50,000-pod variant.
    pub fn quick() -> SchedPlan {
        SchedPlan {
            quick: true,
            nodes: 500,
            zones: 3,
            clients: 16,
            workloads: vec![
                basic("SchedulingBasic 2k", "b2k", 2_000),
                Workload {
                    name: "PodAntiAffinity",
                    tag: "aa",
                    kind: Kind::AntiAffinity,
                    init_pods: 100,
                    pods: 300,
                },
                Workload {
                    name: "PodTopologySpread",
                    tag: "ts",
                    kind: Kind::TopologySpread,
                    init_pods: 200,
                    pods: 400,
                },
            ],
            stall_timeout: Duration::from_secs(20),
            probe_timeout: Duration::from_secs(8),
            settle: Duration::from_millis(500),
        }
    }

    /// Most pods present at once in any phase.
    #[cfg(test)]
    pub fn max_pods(&self) -> usize {
        self.workloads
            .iter()
            .map(|w| w.init_pods + w.pods)
            .max()
            .unwrap_or(0)
    }
}

fn basic(name: &'static str, tag: &'static str, pods: usize) -> Workload {
    Workload {
        name,
        tag,
        kind: Kind::Basic,
        init_pods: 0,
        pods,
    }
}

/// The order of the two schedulers for the `index`-th workload: they alternate who goes first,
/// so whatever drifts over the run (store history and compaction, the hollow nodes' lease
/// renewals coming into step, the page cache) favours neither side.
pub fn order(index: usize) -> [Scheduler; 2] {
    if index.is_multiple_of(2) {
        [Scheduler::Keelson, Scheduler::Upstream]
    } else {
        [Scheduler::Upstream, Scheduler::Keelson]
    }
}

/// The namespace of one stage of one phase, e.g. `sched-b10k-k` or `sched-aa-u-init`.
pub fn namespace(w: &Workload, s: Scheduler, init: bool) -> String {
    let suffix = if init { "-init" } else { "" };
    format!("sched-{}-{}{suffix}", w.tag, s.tag())
}

/// The zone label value of node `i` out of `zones`.
pub fn zone_of(i: usize, zones: usize) -> String {
    format!("zone-{}", i % zones.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedulers_alternate_who_goes_first() {
        let firsts: Vec<Scheduler> = (0..4).map(|i| order(i)[0]).collect();
        assert_eq!(
            firsts,
            vec![
                Scheduler::Keelson,
                Scheduler::Upstream,
                Scheduler::Keelson,
                Scheduler::Upstream
            ]
        );
        for i in 0..4 {
            let [a, b] = order(i);
            assert_ne!(a, b);
        }
    }

    #[test]
    fn plans_fit_their_nodes() {
        for plan in [SchedPlan::full(), SchedPlan::quick()] {
            // 100m / 500Mi pods on 4-cpu nodes: at most 40 per node (fewer with less memory).
            assert!(plan.max_pods() <= plan.nodes * 30, "{}", plan.max_pods());
            for w in &plan.workloads {
                if w.kind == Kind::AntiAffinity {
                    // One pod per node at most: every pod of the workload must find its own.
                    assert!(w.init_pods + w.pods <= plan.nodes, "{}", w.name);
                }
            }
            assert!(plan.clients >= 16);
        }
        assert_eq!(SchedPlan::full().max_pods(), 50_000);
        assert!(
            !SchedPlan::quick()
                .workloads
                .iter()
                .any(|w| w.pods >= 50_000)
        );
    }

    #[test]
    fn namespaces_and_zones() {
        let w = &SchedPlan::full().workloads[2];
        assert_eq!(namespace(w, Scheduler::Keelson, false), "sched-aa-k");
        assert_eq!(namespace(w, Scheduler::Upstream, true), "sched-aa-u-init");
        assert_eq!(zone_of(0, 3), "zone-0");
        assert_eq!(zone_of(4, 3), "zone-1");
        assert_eq!(zone_of(7, 0), "zone-0");
        assert_eq!(Scheduler::Keelson.scheduler_name(), None);
        assert_eq!(
            Scheduler::Upstream.scheduler_name(),
            Some("upstream-scheduler")
        );
    }
}
