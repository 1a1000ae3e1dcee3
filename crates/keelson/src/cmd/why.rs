//! `keelson why pod/NAME [-n NS]`: why a pod is pending, or why it runs where it runs.
//!
//! The answer is a *re-evaluation against the cluster as it is now*: the command lists nodes,
//! pods, namespaces, PodDisruptionBudgets and workloads through the API, builds the scheduler's
//! snapshot with the scheduler's own cache code, and runs the scheduler's plugins for the pod
//! (the profile its `schedulerName` names, in the configuration the leading scheduler published
//! in ConfigMap `kube-system/keelson-scheduler-config`, or `--scheduler-config`). The
//! scheduler keeps no per-pod record of its past decisions — that would cost a write per pod —
//! so if the cluster changed since the pod was scheduled, this shows what the scheduler would
//! decide today.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use k8s_openapi::api::apps::v1::{ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{Namespace, Node, Pod, ReplicationController, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::ListParams;
use kube::{Api, Client};
use scheduler::cache::{self, Cache};
use scheduler::config::SchedulerConfiguration;
use scheduler::diagnose::{self, Explanation};
use scheduler::profile::Frameworks;
use scheduler::published;
use scheduler::registry::Registry;

use crate::client;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The pod: `pod/NAME` (or just NAME).
    pub pod: String,
    /// Namespace of the pod.
    #[arg(short, long, default_value = "default")]
    pub namespace: String,
    /// Kubeconfig to use (default: $KUBECONFIG, then /var/lib/keelson/kubeconfig.yaml).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Evaluate with this scheduler configuration file instead of the one the leading
    /// scheduler published (ConfigMap kube-system/keelson-scheduler-config).
    #[arg(long)]
    pub scheduler_config: Option<PathBuf>,
    /// How many of the best-scoring nodes to show for a scheduled pod.
    #[arg(long, default_value_t = 5)]
    pub top: usize,
}

/// `pod/NAME`, `pods/NAME`, `po/NAME` or `NAME`.
fn pod_name(arg: &str) -> anyhow::Result<&str> {
    let name = match arg.split_once('/') {
        None => arg,
        Some(("pod" | "pods" | "po", name)) => name,
        Some((kind, _)) => bail!("{arg:?}: keelson why explains pods only (pod/NAME), not {kind}"),
    };
    if name.is_empty() {
        bail!("{arg:?}: name the pod, e.g. pod/web-0");
    }
    Ok(name)
}

pub async fn client_for(kubeconfig: Option<PathBuf>) -> anyhow::Result<Client> {
    let path = client::kubeconfig_path(kubeconfig);
    let kc = kube::config::Kubeconfig::read_from(&path)
        .with_context(|| format!("reading the kubeconfig {}", path.display()))?;
    let config =
        kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await
            .with_context(|| format!("using the kubeconfig {}", path.display()))?;
    Client::try_from(config).context("connecting to the API server")
}

/// Every object of kind `K`, in all namespaces for namespaced kinds.
async fn list<K>(client: &Client, params: &ListParams) -> anyhow::Result<Vec<K>>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    K::DynamicType: Default,
{
    let kind = K::kind(&Default::default()).to_string();
    Ok(Api::<K>::all(client.clone())
        .list(params)
        .await
        .with_context(|| format!("listing {kind}s"))?
        .items)
}

/// The scheduler's view of the cluster without `target` (it must not compete with itself).
async fn cluster_cache(client: &Client, target: &Pod) -> anyhow::Result<Cache> {
    let all = ListParams::default();
    let running = ListParams::default().fields("status.phase!=Succeeded,status.phase!=Failed");
    let (nodes, pods, namespaces) = tokio::try_join!(
        list::<Node>(client, &all),
        list::<Pod>(client, &running),
        list::<Namespace>(client, &all),
    )?;
    let (pdbs, services, replica_sets, controllers, stateful_sets) = tokio::try_join!(
        list::<PodDisruptionBudget>(client, &all),
        list::<Service>(client, &all),
        list::<ReplicaSet>(client, &all),
        list::<ReplicationController>(client, &all),
        list::<StatefulSet>(client, &all),
    )?;
    let c = Cache::default();
    for n in nodes {
        c.set_node(Arc::new(n));
    }
    for p in pods {
        if p.metadata.uid != target.metadata.uid {
            c.set_pod(Arc::new(p));
        }
    }
    for ns in &namespaces {
        c.set_namespace(ns);
    }
    for pdb in pdbs {
        c.set_pdb(Arc::new(pdb));
    }
    let workloads = services
        .iter()
        .map(cache::service_selector)
        .chain(replica_sets.iter().map(cache::replica_set_selector))
        .chain(
            controllers
                .iter()
                .map(cache::replication_controller_selector),
        )
        .chain(stateful_sets.iter().map(cache::stateful_set_selector));
    for (key, sel) in workloads {
        c.set_workload(key, sel);
    }
    Ok(c)
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let name = pod_name(&args.pod)?;
    let client = client_for(args.kubeconfig).await?;
    let (config, from) = match &args.scheduler_config {
        Some(path) => (
            SchedulerConfiguration::load(path)?,
            format!("--scheduler-config {}", path.display()),
        ),
        None => match published::fetch(&client).await? {
            Some((config, _publisher)) => (
                config,
                format!(
                    "the leading scheduler's, from ConfigMap {}/{}",
                    published::NAMESPACE,
                    published::NAME
                ),
            ),
            None => (
                SchedulerConfiguration::default(),
                "the defaults (no scheduler has published its own)".to_string(),
            ),
        },
    };
    let frameworks = Frameworks::new(&config, &Registry::default_plugins())
        .with_context(|| format!("building the scheduling profiles of {from}"))?;
    let pod = Api::<Pod>::namespaced(client.clone(), &args.namespace)
        .get(name)
        .await
        .with_context(|| format!("reading pod {name:?} in namespace {:?}", args.namespace))?;
    let profile = cache::scheduler_name(&pod).to_string();
    let Some(fw) = frameworks.get(&profile) else {
        bail!(
            "pod {}/{name} asks for scheduler {profile:?}, which is not a profile of the configuration used ({from}); pass the server's file with --scheduler-config",
            args.namespace
        );
    };
    let snapshot = cluster_cache(&client, &pod).await?.snapshot();
    let explanation = diagnose::explain(fw, &pod, &snapshot);
    print!("{}", render(&pod, &profile, &explanation, args.top));
    Ok(())
}

/// The report, as printed.
fn render(pod: &Pod, profile: &str, e: &Explanation, top: usize) -> String {
    let mut out = String::new();
    let key = cache::pod_key(pod);
    let node = cache::node_name(pod);
    let nodes = e.nodes;
    match node {
        Some(n) => {
            let _ = writeln!(out, "pod {key} runs on node {n} (scheduler {profile:?}).");
        }
        None => {
            let _ = writeln!(out, "pod {key} is not scheduled (scheduler {profile:?}).");
            let condition = pod
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .and_then(|c| c.iter().find(|c| c.type_ == "PodScheduled"));
            if let Some(m) = condition.and_then(|c| c.message.as_deref()) {
                let _ = writeln!(out, "The scheduler last said: {m}");
            }
            if let Some(n) = pod
                .status
                .as_ref()
                .and_then(|s| s.nominated_node_name.as_deref())
            {
                let _ = writeln!(out, "Nominated node (after preemption): {n}");
            }
        }
    }
    let _ = writeln!(
        out,
        "Re-evaluated now against the cluster's current state ({nodes} node{}); the scheduler's own attempt saw the cluster as it was then.\n",
        if nodes == 1 { "" } else { "s" }
    );
    if let Some(s) = &e.pre_filter {
        let plugin = s.plugin.unwrap_or("PreFilter");
        let _ = writeln!(
            out,
            "PreFilter plugin {plugin} rejects the pod on every node: {}",
            s.message()
        );
    }
    if !e.narrowed_out.is_empty() {
        let _ = writeln!(
            out,
            "PreFilter leaves out {} node(s): {}",
            e.narrowed_out.len(),
            e.narrowed_out.join(", ")
        );
    }
    if !e.filters.is_empty() {
        let _ = writeln!(out, "Filter plugins:");
        for (plugin, rejections) in &e.filters {
            if rejections.is_empty() {
                let _ = writeln!(out, "  {plugin}: passes every node");
                continue;
            }
            let _ = writeln!(out, "  {plugin}: rejects {} node(s)", rejections.len());
            for r in rejections {
                let _ = writeln!(out, "    {}: {}", r.node, r.reason);
            }
        }
        for plugin in &e.skipped {
            let _ = writeln!(out, "  {plugin}: nothing to check for this pod");
        }
        let _ = writeln!(
            out,
            "Feasible nodes: {}",
            if e.feasible.is_empty() {
                "none".to_string()
            } else {
                e.feasible.join(", ")
            }
        );
    }
    if let Some(s) = &e.summary {
        let _ = writeln!(out, "\n{s}");
    }
    if !e.scores.is_empty() {
        let mut rows: Vec<&diagnose::ScoredNode> = e.scores.iter().take(top.max(1)).collect();
        // The pod's own node always shows, even when it is not among the best now.
        if let Some(mine) = node.and_then(|n| e.score_of(n))
            && !rows.iter().any(|r| r.node == mine.node)
        {
            rows.push(mine);
        }
        let _ = writeln!(
            out,
            "\nScores (weighted, higher is better; * = the pod's node):"
        );
        let plugins: Vec<&str> = e.scores[0].plugins.iter().map(|p| p.plugin).collect();
        let width = rows.iter().map(|r| r.node.len()).max().unwrap_or(4).max(4);
        let _ = write!(out, "  {:<width$}  {:>6}", "NODE", "TOTAL");
        for p in &plugins {
            let _ = write!(out, "  {p}");
        }
        out.push('\n');
        for r in rows {
            let mark = if Some(r.node.as_str()) == node {
                "*"
            } else {
                " "
            };
            let _ = write!(out, "{mark} {:<width$}  {:>6}", r.node, r.total);
            for (p, name) in r.plugins.iter().zip(&plugins) {
                let _ = write!(out, "  {:>w$}", p.score, w = name.len());
            }
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use scheduler::diagnose::{Rejection, ScoredNode};
    use scheduler::profile::PluginScore;

    #[test]
    fn pod_names() {
        assert_eq!(pod_name("pod/web").unwrap(), "web");
        assert_eq!(pod_name("po/web").unwrap(), "web");
        assert_eq!(pod_name("web").unwrap(), "web");
        assert!(
            pod_name("deploy/web")
                .unwrap_err()
                .to_string()
                .contains("pods only")
        );
        assert!(pod_name("pod/").is_err());
    }

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn a_pending_pod_lists_rejections_per_plugin() {
        let p = pod(serde_json::json!({
            "metadata": {"name": "big", "namespace": "default"},
            "status": {"conditions": [{"type": "PodScheduled", "status": "False",
                "message": "0/2 nodes are available: 2 Insufficient cpu."}]}
        }));
        let e = Explanation {
            nodes: 2,
            filters: vec![
                ("NodeUnschedulable", vec![]),
                (
                    "NodeResourcesFit",
                    vec![
                        Rejection {
                            node: "n1".into(),
                            reason: "Insufficient cpu".into(),
                        },
                        Rejection {
                            node: "n2".into(),
                            reason: "Insufficient cpu".into(),
                        },
                    ],
                ),
            ],
            summary: Some("0/2 nodes are available: 2 Insufficient cpu.".into()),
            ..Explanation::default()
        };
        let text = render(&p, "default-scheduler", &e, 5);
        assert!(
            text.starts_with("pod default/big is not scheduled"),
            "{text}"
        );
        assert!(text.contains("Re-evaluated now"), "{text}");
        assert!(text.contains("  NodeResourcesFit: rejects 2 node(s)\n    n1: Insufficient cpu\n    n2: Insufficient cpu\n"), "{text}");
        assert!(
            text.contains("  NodeUnschedulable: passes every node\n"),
            "{text}"
        );
        assert!(text.contains("Feasible nodes: none"), "{text}");
        assert!(
            text.contains("\n0/2 nodes are available: 2 Insufficient cpu.\n"),
            "{text}"
        );
    }

    #[test]
    fn a_scheduled_pod_shows_its_node_among_the_scores() {
        let p = pod(serde_json::json!({
            "metadata": {"name": "web", "namespace": "shop"}, "spec": {"nodeName": "n3", "containers": []}
        }));
        let row = |n: &str, s: i64| ScoredNode {
            node: n.into(),
            total: s,
            plugins: vec![PluginScore {
                plugin: "NodeResourcesFit",
                weight: 1,
                score: s,
            }],
        };
        let e = Explanation {
            nodes: 3,
            feasible: vec!["n1".into(), "n2".into(), "n3".into()],
            scores: vec![row("n1", 90), row("n2", 80), row("n3", 10)],
            ..Explanation::default()
        };
        let text = render(&p, "default-scheduler", &e, 1);
        assert!(text.starts_with("pod shop/web runs on node n3"), "{text}");
        assert!(text.contains("\n  n1        90  "), "{text}");
        assert!(text.contains("\n* n3        10  "), "{text}");
        assert!(!text.contains("n2 "), "{text}");
    }
}
