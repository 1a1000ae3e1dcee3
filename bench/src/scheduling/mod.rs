//! `keelson-bench --scheduling`: scheduling throughput and latency at thousands of nodes,
//! keelson's in-process scheduler side by side with upstream kube-scheduler v1.20.2 on the same
//! API server and the same nodes (after upstream's scheduler_perf workloads).
//!
//! One `keelson server` on a fresh data directory; hollow nodes from `keelson simulate` (or
//! plain API-made nodes in a build without it); then, per workload, one phase per scheduler in
//! alternating order. A phase creates its pods from many clients at once and times each from
//! create to binding through a watch (see [`stage`]); between phases every pod is deleted, so
//! each phase starts from empty nodes. The peer scheduler runs only during its own phases: its
//! informers would otherwise take CPU from keelson's phases on a two-core machine.
//!
//! Progress goes to stderr, the report to stdout; targets are printed next to the figures,
//! never asserted.

pub mod api;
mod figures;
mod nodes;
mod objects;
mod plan;
mod render;
mod stage;
mod upstream;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::client::Target;
use crate::keelson::Server;
use crate::procfs::{self, Memory};

use figures::Figures;
use objects::PodShape;
use plan::{SchedPlan, Scheduler, Workload};
use stage::{Proc, StageSpec};

pub use upstream::DEFAULT_BIN as DEFAULT_KUBE_SCHEDULER;

/// What `main` passes in.
pub struct Options {
    pub quick: bool,
    pub server_bin: PathBuf,
    pub kube_scheduler_bin: PathBuf,
    pub work_dir: PathBuf,
    /// Workload tags to run (all when empty).
    pub workloads: Vec<String>,
    /// Only this scheduler's phases (`keelson` or `upstream`).
    pub only: Option<String>,
}

/// How long the peer gets from its start to binding a probe pod (it lists every node first).
const UPSTREAM_READY_TIMEOUT: Duration = Duration::from_secs(120);
/// How long the pods of a phase may take to disappear after their deletecollection.
const DELETE_TIMEOUT: Duration = Duration::from_secs(300);
/// Namespace of the single-pod probes.
const PROBE_NS: &str = "sched-probe";

/// The outcome of one phase (one workload under one scheduler).
pub enum Outcome {
    NotAvailable(String),
    Failed(String),
    Ran(Box<Ran>),
}

pub struct Ran {
    pub figures: Figures,
    /// CPU time per process over the measured stage, and the wall time it was measured over.
    pub cpu: Vec<(&'static str, Option<Duration>)>,
    pub wall: Duration,
    /// Busy CPU time of the whole machine over `wall`.
    pub machine: Option<Duration>,
    /// The server's memory with every pod of the phase present (init and measured).
    pub server_mem: Option<Memory>,
    /// The peer's memory at the same moment (None for keelson's own scheduler).
    pub peer_mem: Option<Memory>,
    /// Pods present when `server_mem` was read.
    pub pods_present: usize,
    /// Init pods: bound of created, and the time they took.
    pub init: Option<(usize, usize, Duration)>,
    pub errors: Vec<String>,
}

pub struct PhaseResult {
    pub workload: Workload,
    pub scheduler: Scheduler,
    pub outcome: Outcome,
}

/// Everything the report is made from.
pub struct Findings {
    pub plan: SchedPlan,
    pub server_bin: PathBuf,
    pub peer_bin: PathBuf,
    pub nodes: String,
    pub server_idle: Option<Memory>,
    pub server_with_nodes: Option<Memory>,
    pub simulator_mem: Option<Memory>,
    pub keelson_available: Result<(), String>,
    pub phases: Vec<PhaseResult>,
    pub errors: Vec<String>,
    pub log_problems: (usize, Vec<String>),
    pub total: Duration,
}

struct Ctx<'a> {
    opts: &'a Options,
    plan: &'a SchedPlan,
    server: &'a Server,
    target: Target,
    kubeconfig: PathBuf,
    dir: &'a Path,
    simulator_pid: Option<u32>,
    keelson_available: Result<(), String>,
    t0: Instant,
    probes: usize,
}

impl Ctx<'_> {
    fn progress(&self, msg: &str) {
        crate::progress(self.t0, msg);
    }
}

pub async fn run(opts: Options, t0: Instant) -> anyhow::Result<()> {
    let mut plan = if opts.quick {
        SchedPlan::quick()
    } else {
        SchedPlan::full()
    };
    if !opts.workloads.is_empty() {
        plan.workloads
            .retain(|w| opts.workloads.iter().any(|t| t == w.tag));
        anyhow::ensure!(
            !plan.workloads.is_empty(),
            "--workloads {:?} matches none of this plan's workloads",
            opts.workloads
        );
    }
    let only = match opts.only.as_deref() {
        None => None,
        Some("keelson") => Some(Scheduler::Keelson),
        Some("upstream") => Some(Scheduler::Upstream),
        Some(other) => anyhow::bail!("--only {other}: expected `keelson` or `upstream`"),
    };
    let dir = tempfile::Builder::new()
        .prefix("keelson-sched-")
        .tempdir_in(&opts.work_dir)?;
    crate::progress(
        t0,
        &format!("scheduling: starting keelson in {}", dir.path().display()),
    );
    let mut server = Server::start(&opts.server_bin, dir.path())
        .await
        .context("starting keelson for the scheduling benchmark")?;
    let target = server.target()?;
    let kubeconfig = dir.path().join("kubeconfig.yaml");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let server_idle = server.memory();

    let say = |m: &str| crate::progress(t0, m);
    let mut nodes = nodes::start(
        &opts.server_bin,
        &kubeconfig,
        dir.path(),
        &target,
        &plan,
        &say,
    )
    .await
    .context("bringing up the nodes")?;
    say(&nodes.describe());
    tokio::time::sleep(plan.settle).await;
    let server_with_nodes = server.memory();

    say("probing keelson's own scheduler with one pod");
    let keelson_available = probe_keelson(&target, &plan).await;
    if let Err(why) = &keelson_available {
        say(&format!("keelson's scheduler: not available: {why}"));
    }

    let mut ctx = Ctx {
        opts: &opts,
        plan: &plan,
        server: &server,
        target,
        kubeconfig,
        dir: dir.path(),
        simulator_pid: nodes.pid(),
        keelson_available: keelson_available.clone(),
        t0,
        probes: 0,
    };
    let mut phases = Vec::new();
    let mut errors = Vec::new();
    for (i, w) in plan.workloads.iter().enumerate() {
        for s in plan::order(i) {
            if only.is_some_and(|o| o != s) {
                continue;
            }
            ctx.progress(&format!("{} with {}", w.name, s.label()));
            let outcome = phase(&mut ctx, w, s).await;
            if let Outcome::Failed(e) = &outcome {
                ctx.progress(&format!("{} with {} failed: {e}", w.name, s.label()));
            }
            let created_pods = !matches!(outcome, Outcome::NotAvailable(_));
            phases.push(PhaseResult {
                workload: w.clone(),
                scheduler: s,
                outcome,
            });
            if created_pods && let Err(e) = clean_up(&ctx, w, s).await {
                errors.push(format!(
                    "deleting the pods of {} / {}: {e:#}",
                    w.name,
                    s.label()
                ));
            }
            if let Some(how) = nodes.exited() {
                errors.push(how);
            }
        }
    }
    let simulator_mem = nodes.pid().and_then(|p| procfs::memory(p).ok());
    nodes.stop().await;
    if let Some(how) = server.exited(15) {
        errors.push(format!("during the run: {how}"));
    }
    server.stop().await;
    let f = Findings {
        plan: plan.clone(),
        server_bin: opts.server_bin.clone(),
        peer_bin: opts.kube_scheduler_bin.clone(),
        nodes: nodes.describe(),
        server_idle,
        server_with_nodes,
        simulator_mem,
        keelson_available,
        phases,
        errors,
        log_problems: crate::keelson::log_problems(&server.log_path(), 8),
        total: t0.elapsed(),
    };
    crate::progress(t0, "done");
    print!("{}", render::render(&f));
    Ok(())
}

/// Whether keelson's own scheduler binds a default-scheduler pod in time.
async fn probe_keelson(target: &Target, plan: &SchedPlan) -> Result<(), String> {
    let mut conn = target.connect().await.map_err(|e| e.to_string())?;
    crate::workload::ensure_namespace(&mut conn, PROBE_NS)
        .await
        .map_err(|e| format!("{e:#}"))?;
    match api::probe_pod(
        &mut conn,
        PROBE_NS,
        "probe-keelson",
        None,
        plan.probe_timeout,
    )
    .await
    {
        Ok(true) => Ok(()),
        Ok(false) => Err(format!(
            "a pod for `default-scheduler` was not bound within {:?} (this keelson server runs no scheduler yet?)",
            plan.probe_timeout
        )),
        Err(e) => Err(format!("probe pod: {e}")),
    }
}

async fn phase(ctx: &mut Ctx<'_>, w: &Workload, s: Scheduler) -> Outcome {
    let mut peer = None;
    match s {
        Scheduler::Keelson => {
            if let Err(why) = &ctx.keelson_available {
                return Outcome::NotAvailable(why.clone());
            }
        }
        Scheduler::Upstream => match start_peer(ctx).await {
            Ok(p) => peer = Some(p),
            Err(why) => return Outcome::NotAvailable(why),
        },
    }
    let out = measure(ctx, w, s, peer.as_mut()).await;
    if let Some(mut p) = peer {
        if let Some(how) = p.exited() {
            p.stop().await;
            return Outcome::Failed(how);
        }
        p.stop().await;
    }
    match out {
        Ok(r) => Outcome::Ran(Box::new(r)),
        Err(e) => Outcome::Failed(format!("{e:#}")),
    }
}

/// Starts the peer and waits until it has bound a probe pod (its caches are then synced).
async fn start_peer(ctx: &mut Ctx<'_>) -> Result<upstream::Upstream, String> {
    let bin = &ctx.opts.kube_scheduler_bin;
    if !bin.is_file() {
        return Err(format!("no kube-scheduler binary at {}", bin.display()));
    }
    let mut peer =
        upstream::Upstream::start(bin, &ctx.kubeconfig, ctx.dir).map_err(|e| e.to_string())?;
    ctx.probes += 1;
    let name = format!("probe-upstream-{}", ctx.probes);
    let mut conn = ctx.target.connect().await.map_err(|e| e.to_string())?;
    let bound = api::probe_pod(
        &mut conn,
        PROBE_NS,
        &name,
        Some(upstream::PROFILE),
        UPSTREAM_READY_TIMEOUT,
    )
    .await
    .map_err(|e| format!("probe pod: {e}"))?;
    if let Some(how) = peer.exited() {
        return Err(how);
    }
    if !bound {
        let tail = peer.log_tail(10);
        peer.stop().await;
        return Err(format!(
            "kube-scheduler did not bind a probe pod within {UPSTREAM_READY_TIMEOUT:?}; its log ends:\n{tail}"
        ));
    }
    Ok(peer)
}

async fn measure(
    ctx: &Ctx<'_>,
    w: &Workload,
    s: Scheduler,
    peer: Option<&mut upstream::Upstream>,
) -> anyhow::Result<Ran> {
    let init_ns = plan::namespace(w, s, true);
    let ns = plan::namespace(w, s, false);
    let shape = |kind| PodShape {
        kind,
        scheduler_name: s.scheduler_name(),
        affinity_namespaces: vec![init_ns.clone(), ns.clone()],
    };
    let peer_pid = peer.as_ref().and_then(|p| p.pid());
    let mut procs = vec![Proc {
        label: "server",
        pid: ctx.server.pid(),
    }];
    if s == Scheduler::Upstream {
        procs.push(Proc {
            label: "kube-scheduler",
            pid: peer_pid,
        });
    }
    procs.push(Proc {
        label: "simulator",
        pid: ctx.simulator_pid,
    });
    procs.push(Proc {
        label: "bench",
        pid: Some(std::process::id()),
    });
    let say = |m: &str| ctx.progress(m);
    let mut errors = Vec::new();
    let mut init = None;
    if w.init_pods > 0 {
        // Upstream's workloads: anti-affinity init pods are of the same shape as the measured
        // ones; spreading init pods are plain (they only take room).
        let kind = match w.kind {
            plan::Kind::AntiAffinity => plan::Kind::AntiAffinity,
            _ => plan::Kind::Basic,
        };
        let spec = StageSpec {
            namespace: init_ns.clone(),
            shape: shape(kind),
            pods: w.init_pods,
            clients: ctx.plan.clients,
            stall_timeout: ctx.plan.stall_timeout,
        };
        let out = stage::run(&ctx.target, &spec, &[], &say).await?;
        let f = out.stamps.figures();
        init = Some((f.bound, w.init_pods, f.span));
        errors.extend(out.errors);
        if !out.complete {
            anyhow::bail!("init pods: {}", errors.join("; "));
        }
        say(&format!(
            "{}: {} init pods bound in {:.2} s",
            w.name,
            f.bound,
            f.span.as_secs_f64()
        ));
    }
    let spec = StageSpec {
        namespace: ns.clone(),
        shape: shape(w.kind),
        pods: w.pods,
        clients: ctx.plan.clients,
        stall_timeout: ctx.plan.stall_timeout,
    };
    let out = stage::run(&ctx.target, &spec, &procs, &say).await?;
    let server_mem = ctx.server.memory();
    let peer_mem = peer_pid.and_then(|p| procfs::memory(p).ok());
    let figures = out.stamps.figures();
    errors.extend(out.errors);
    say(&format!(
        "{} / {}: {} of {} bound, {:.0} pods/s, p50 {:.1} ms, p99 {:.1} ms",
        w.name,
        s.label(),
        figures.bound,
        figures.pods,
        figures.pods_per_sec,
        figures.latency.median().as_secs_f64() * 1e3,
        figures.latency.percentile(99.0).as_secs_f64() * 1e3,
    ));
    Ok(Ran {
        pods_present: init.map_or(0, |(b, _, _)| b) + figures.bound,
        figures,
        cpu: out.cpu,
        wall: out.meter_wall,
        machine: out.machine,
        server_mem,
        peer_mem,
        init,
        errors,
    })
}

/// Deletes the phase's pods (both namespaces) and lets the server settle.
async fn clean_up(ctx: &Ctx<'_>, w: &Workload, s: Scheduler) -> anyhow::Result<()> {
    let t = Instant::now();
    let mut conn = ctx.target.connect().await?;
    for init in [true, false] {
        let ns = plan::namespace(w, s, init);
        if init && w.init_pods == 0 {
            continue;
        }
        api::delete_pods(&mut conn, &ns, DELETE_TIMEOUT).await?;
    }
    ctx.progress(&format!(
        "deleted the pods of {} / {} in {:.1} s",
        w.name,
        s.label(),
        t.elapsed().as_secs_f64()
    ));
    tokio::time::sleep(ctx.plan.settle).await;
    Ok(())
}
