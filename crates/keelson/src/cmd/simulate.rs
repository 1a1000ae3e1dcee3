//! `keelson simulate --nodes N`: hollow nodes — simulated kubelets that register, heartbeat and
//! run the pods bound to them through the API — until interrupted.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

use crate::client;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// How many nodes to simulate.
    #[arg(long)]
    pub nodes: u32,
    /// Pod capacity of each node (also sizes its pod CIDR).
    #[arg(long, default_value_t = 110)]
    pub pods_per_node: u32,
    /// CPU capacity of each node.
    #[arg(long, default_value = "4")]
    pub cpu: String,
    /// Memory capacity of each node.
    #[arg(long, default_value = "16Gi")]
    pub memory: String,
    /// Extra node labels, `key=value,...`.
    #[arg(long, default_value = "")]
    pub labels: String,
    /// Taints to register with, `key=value:Effect,...` or `key:Effect`.
    #[arg(long, default_value = "")]
    pub taints: String,
    /// Kubeconfig to use (default: $KUBECONFIG, then /var/lib/keelson/kubeconfig.yaml).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Node names are this prefix and a number from 0.
    #[arg(long, default_value = "hollow-")]
    pub name_prefix: String,
    /// Most API writes in flight at once, for all nodes together.
    #[arg(long, default_value_t = 64)]
    pub max_in_flight: usize,
    /// On SIGINT/SIGTERM, delete the nodes and their leases before exiting.
    #[arg(long)]
    pub cleanup: bool,
}

/// Resolves on SIGINT or SIGTERM.
async fn interrupted() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; stop with Ctrl-C");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}

fn secs(d: Duration) -> String {
    format!("{:.2}s", d.as_secs_f64())
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let config = hollow::Config {
        nodes: args.nodes,
        name_prefix: args.name_prefix,
        pods_per_node: args.pods_per_node,
        cpu: args.cpu,
        memory: args.memory,
        labels: hollow::parse_labels(&args.labels)?,
        taints: hollow::parse_taints(&args.taints)?,
        max_in_flight: args.max_in_flight,
        ..hollow::Config::default()
    };
    let path = client::kubeconfig_path(args.kubeconfig);
    let kube = hollow::client::from_kubeconfig(&path).await?;
    let cluster = hollow::HollowCluster::new(kube, config)?;
    // About five progress lines, at most one per thousand nodes.
    let step = (args.nodes / 5).clamp(1, 1000);
    let summary = cluster
        .run(interrupted(), args.cleanup, |p| match p {
            hollow::Progress::Registered { done, total } => {
                if done % step == 0 || done == total {
                    println!("registered {done}/{total} nodes");
                }
            }
            hollow::Progress::AllRegistered { elapsed } => {
                println!(
                    "all {} nodes registered in {}; heartbeating until SIGINT/SIGTERM",
                    args.nodes,
                    secs(elapsed)
                );
            }
        })
        .await
        .context("simulating nodes")?;
    let s = summary;
    println!("stopped after {}", secs(s.uptime));
    println!(
        "  nodes:      {} of {} registered{}, {} re-registered after deletion",
        s.registered,
        s.nodes,
        s.registration_time
            .map(|d| format!(" (all in {})", secs(d)))
            .unwrap_or_default(),
        s.nodes_recreated
    );
    println!(
        "  heartbeats: {} lease renewals ({} failed), {} status reports",
        s.lease_renewals, s.lease_failures, s.status_reports
    );
    println!(
        "  pods:       {} started, {} adopted, {} deletions finished, {} failed writes, {} without an address",
        s.pods_started,
        s.pods_adopted,
        s.pods_deleted,
        s.pod_write_failures,
        s.pods_without_address
    );
    if let Some(n) = s.cleaned_up {
        println!("  cleanup:    {n} nodes and their leases deleted");
    }
    Ok(())
}
