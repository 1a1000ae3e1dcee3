//! The nodes the pods are scheduled onto: hollow nodes from `keelson simulate` (a separate
//! process that registers them, renews their Leases and plays the kubelet for bound pods), or,
//! in a build without the simulator, plain Node objects made through the API with a Ready
//! status and node-default capacity (nothing then answers for the bound pods, which the
//! schedulers do not need).
//!
//! Either way every node ends up labelled with a zone, round robin over the plan's zones, for
//! the topology-spread workload.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::client::Target;

use super::api;
use super::plan::{SchedPlan, zone_of};

/// Where the nodes came from.
pub enum Source {
    Simulator { child: Child, log: PathBuf },
    SelfMade { why: String },
}

pub struct Nodes {
    pub source: Source,
    pub count: usize,
    /// From start to every node Ready and labelled.
    pub ready_after: Duration,
}

impl Nodes {
    pub fn pid(&self) -> Option<u32> {
        match &self.source {
            Source::Simulator { child, .. } => Some(child.id()),
            Source::SelfMade { .. } => None,
        }
    }

    pub fn describe(&self) -> String {
        match &self.source {
            Source::Simulator { .. } => format!(
                "{} hollow nodes from `keelson simulate` (a separate process), ready and zone-labelled in {:.1} s",
                self.count,
                self.ready_after.as_secs_f64()
            ),
            Source::SelfMade { why } => format!(
                "{} nodes made by the bench through the API (Ready status, 4 cpu / 32Gi / 110 pods, no kubelet) because {why}",
                self.count
            ),
        }
    }

    /// If the simulator exited on its own: how, with its last log lines.
    pub fn exited(&mut self) -> Option<String> {
        let Source::Simulator { child, log } = &mut self.source else {
            return None;
        };
        let status = child.try_wait().ok()??;
        Some(format!(
            "keelson simulate exited with {status}:\n{}",
            log_tail(log, 15)
        ))
    }

    /// Stops the simulator (SIGTERM, then SIGKILL after 10 s).
    pub async fn stop(&mut self) {
        let Source::Simulator { child, .. } = &mut self.source else {
            return;
        };
        crate::procfs::terminate(child, Duration::from_secs(10)).await;
    }
}

impl Drop for Nodes {
    fn drop(&mut self) {
        if let Source::Simulator { child, .. } = &mut self.source
            && let Ok(None) = child.try_wait()
        {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub fn log_tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Why `keelson simulate` cannot be used, or None when it can.
pub fn simulator_missing(bin: &Path) -> Option<String> {
    match Command::new(bin)
        .args(["simulate", "--help"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(s) if s.success() => None,
        Ok(s) => Some(format!(
            "`{} simulate --help` exited with {s} (no simulator in this build)",
            bin.display()
        )),
        Err(e) => Some(format!("running {}: {e}", bin.display())),
    }
}

/// Brings up `plan.nodes` Ready, zone-labelled nodes.
pub async fn start(
    bin: &Path,
    kubeconfig: &Path,
    dir: &Path,
    target: &Target,
    plan: &SchedPlan,
    progress: &dyn Fn(&str),
) -> anyhow::Result<Nodes> {
    let t0 = Instant::now();
    let n = plan.nodes;
    let source = match simulator_missing(bin) {
        None => {
            let log = dir.join("simulate.log");
            let out = std::fs::File::create(&log)?;
            let err = out.try_clone()?;
            progress(&format!("starting `keelson simulate --nodes {n}`"));
            let child = Command::new(bin)
                .arg("simulate")
                .arg("--nodes")
                .arg(n.to_string())
                .arg("--kubeconfig")
                .arg(kubeconfig)
                // Upstream's node-default capacity (4 cpu and 110 pods are the defaults).
                .arg("--memory")
                .arg("32Gi")
                .env("NO_COLOR", "1")
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err)
                .spawn()?;
            Source::Simulator { child, log }
        }
        Some(why) => {
            progress(&format!("making {n} nodes through the API ({why})"));
            let zones = plan.zones;
            api::fan_out(target, plan.clients, n, move |mut conn, i| async move {
                let name = format!("node-{i:05}");
                api::make_node(&mut conn, &name, &zone_of(i, zones)).await?;
                Ok(conn)
            })
            .await?;
            Source::SelfMade { why }
        }
    };
    let mut nodes = Nodes {
        source,
        count: n,
        ready_after: Duration::ZERO,
    };
    let mut conn = target.connect().await?;
    // Registration of thousands of hollow nodes takes a while on two cores; give up only when
    // it has clearly stalled.
    let deadline = t0 + Duration::from_secs(60) + Duration::from_millis(40) * n as u32;
    let mut last_report = Instant::now();
    let names = loop {
        if let Some(how) = nodes.exited() {
            anyhow::bail!("{how}");
        }
        let (names, ready) = api::nodes(&mut conn).await?;
        if ready >= n {
            break names;
        }
        if Instant::now() > deadline {
            anyhow::bail!(
                "only {ready} of {n} nodes Ready after {:.0} s ({} registered)",
                t0.elapsed().as_secs_f64(),
                names.len()
            );
        }
        if last_report.elapsed() > Duration::from_secs(5) {
            progress(&format!("{ready} of {n} nodes Ready"));
            last_report = Instant::now();
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    if matches!(nodes.source, Source::Simulator { .. }) {
        progress(&format!(
            "labelling {} nodes with {} zones",
            names.len(),
            plan.zones
        ));
        let zones = plan.zones;
        let names = std::sync::Arc::new(names);
        let count = names.len();
        api::fan_out(target, plan.clients, count, move |mut conn, i| {
            let names = names.clone();
            async move {
                if let Some(name) = names.get(i) {
                    api::label_zone(&mut conn, name, &zone_of(i, zones)).await?;
                }
                Ok(conn)
            }
        })
        .await?;
    }
    nodes.ready_after = t0.elapsed();
    Ok(nodes)
}
