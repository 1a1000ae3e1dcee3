//! `keelson-bench`: the control-plane benchmark.
//!
//! Starts real `keelson server` processes on loopback (and a single-member etcd for
//! comparison), drives them with an HTTPS load generator, and prints one report: start-up time
//! and memory, create and get throughput with latency percentiles and server CPU per request,
//! LIST latency on 10,000 objects, watch fan-out latency and exactly-once delivery, and etcd's
//! own put figures side by side. Targets are printed next to the figures, never asserted.
//!
//! Progress goes to stderr; the report goes to stdout at the end.

mod backed;
mod client;
mod deployments;
mod disk;
mod etcd;
mod findings;
mod keelson;
mod layers;
mod procfs;
mod report;
mod scheduling;
mod stats;
mod workload;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use bytes::Bytes;
use clap::Parser;

use findings::{EtcdFindings, Findings, Phase, Plan, StartupFindings};
use keelson::Server;
use workload::suite::{self, CREATE_PREFIX, split_ns};
use workload::{Procs, configmap_json, object_name};

#[derive(Parser)]
#[command(
    name = "keelson-bench",
    about = "Control-plane benchmark of keelson (with etcd side by side)"
)]
struct Args {
    /// Smaller counts: checks that the bench works end to end in well under a minute.
    #[arg(long)]
    quick: bool,
    /// The keelson binary to benchmark [default: `keelson` next to this binary, i.e. the
    /// release build in the same target directory].
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// The etcd binary for the comparison (Debian package `etcd-server`).
    #[arg(long, default_value = "etcd")]
    etcd_bin: PathBuf,
    /// Skip the etcd comparison.
    #[arg(long)]
    no_etcd: bool,
    /// Where the servers' data directories are created [default: the system temp directory].
    /// Must be a real disk for write figures to mean anything (both stores fsync).
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Run the controllers' benchmark instead: a 1,000-replica Deployment on 100 hollow
    /// nodes, timed to Available and through a full rolling update (with --quick: 100 on 10).
    #[arg(long)]
    deployments: bool,
    /// Run the scheduling benchmark instead: keelson's scheduler and upstream kube-scheduler
    /// side by side on thousands of hollow nodes (with --quick: a smoke run on 500 nodes).
    #[arg(long)]
    scheduling: bool,
    /// The upstream kube-scheduler binary the scheduling benchmark compares against.
    #[arg(long, default_value = scheduling::DEFAULT_KUBE_SCHEDULER)]
    kube_scheduler_bin: PathBuf,
    /// Scheduling benchmark: run only these workloads (tags, e.g. `b10k,aa`; see the report).
    #[arg(long, value_delimiter = ',')]
    workloads: Vec<String>,
    /// Scheduling benchmark: run only this scheduler's phases (`keelson` or `upstream`), e.g.
    /// to profile one side.
    #[arg(long)]
    only: Option<String>,
}

/// Prints a progress line to stderr with the time since the bench started.
fn progress(t0: Instant, msg: &str) {
    eprintln!("[{:>6.1}s] {msg}", t0.elapsed().as_secs_f64());
}

fn default_server_bin() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("locating this binary")?;
    let dir = exe.parent().context("this binary has no directory")?;
    Ok(dir.join("keelson"))
}

/// Resolves a bare program name through PATH, as the shell would.
fn which(bin: &Path) -> Option<PathBuf> {
    if bin.components().count() > 1 {
        return bin.is_file().then(|| bin.to_path_buf());
    }
    std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join(bin))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default()
        .into_iter()
        .find(|p| p.is_file())
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // Two workers: the machine has two cores, shared with the server under test.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let t0 = Instant::now();
    let plan = if args.quick {
        Plan::quick()
    } else {
        Plan::full()
    };
    let server_bin = match args.server_bin {
        Some(p) => p,
        None => default_server_bin()?,
    };
    if !server_bin.is_file() {
        anyhow::bail!(
            "no keelson binary at {}: build it with `cargo build --release -p keelson` (bench/run does) or pass --server-bin",
            server_bin.display()
        );
    }
    let work_dir = args.work_dir.unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&work_dir)
        .with_context(|| format!("creating {}", work_dir.display()))?;
    if args.deployments {
        let opts = deployments::Options {
            quick: args.quick,
            server_bin,
            work_dir,
        };
        return deployments::run(opts, t0).await;
    }
    if args.scheduling {
        let opts = scheduling::Options {
            quick: args.quick,
            server_bin,
            kube_scheduler_bin: args.kube_scheduler_bin,
            work_dir,
            workloads: args.workloads,
            only: args.only,
        };
        return scheduling::run(opts, t0).await;
    }
    let mut f = Findings::new(plan.clone(), &server_bin, &work_dir);
    f.loadavg_start = procfs::loadavg();
    f.disk = disk::fsync_latency(&work_dir, 200).ok();

    progress(
        t0,
        &format!(
            "start-up: {} fresh starts, {} restarts",
            plan.fresh_starts, plan.restarts
        ),
    );
    f.startup = startup(&server_bin, &work_dir, &plan).await;

    let main_dir = tempfile::Builder::new()
        .prefix("keelson-bench-")
        .tempdir_in(&work_dir)?;
    progress(
        t0,
        &format!(
            "starting the server under test in {}",
            main_dir.path().display()
        ),
    );
    let mut server = Server::start(&server_bin, main_dir.path())
        .await
        .context("starting keelson for the workload")?;
    tokio::time::sleep(plan.idle_wait).await;
    f.idle_memory = server.memory();
    f.threads_idle = server.pid().and_then(procfs::threads);
    let procs = Procs::server(server.pid());
    if let Err(e) = suite::run(&mut f.work, &server, procs, &plan, true, t0).await {
        f.errors.push(format!("workload aborted: {e:#}"));
    }
    f.after_memory = server.memory();
    if let Some(how) = server.exited(15) {
        f.errors.push(format!("during the workload: {how}"));
    }
    f.threads_after = server.pid().and_then(procfs::threads);
    f.server_data_bytes = Some(procfs::dir_size(&main_dir.path().join("db")));

    progress(
        t0,
        &format!(
            "restarting with the stored data, {} times",
            plan.restarts_with_data
        ),
    );
    for _ in 0..plan.restarts_with_data {
        match server.restart().await {
            Ok(()) => f.startup.restart_with_data.push(server.ready_after),
            Err(e) => {
                f.errors.push(format!("restart with data: {e}"));
                break;
            }
        }
    }
    if server.pid().is_some() {
        tokio::time::sleep(plan.idle_wait).await;
        f.restarted_memory = server.memory();
    }
    server.stop().await;
    f.log_problems = keelson::log_problems(&server.log_path(), 8);
    drop(server);
    drop(main_dir);

    if args.no_etcd {
        f.backed = Phase::Skipped("skipped (--no-etcd)".to_string());
        f.etcd = EtcdFindings::Skipped("skipped (--no-etcd)".to_string());
    } else if let Some(etcd_bin) = which(&args.etcd_bin) {
        progress(t0, "keelson on etcd: starting a fresh etcd for it");
        f.backed = backed::run(&server_bin, &etcd_bin, &work_dir, &plan, t0).await;
        progress(t0, "etcd: starting and loading it with the same writes");
        f.etcd = etcd_phase(&etcd_bin, &work_dir, &plan, t0).await;
    } else {
        let why = format!(
            "etcd is not installed ({} not found): install Debian's etcd-server (bench/run does) to get the comparison",
            args.etcd_bin.display()
        );
        f.backed = Phase::Skipped(why.clone());
        f.etcd = EtcdFindings::Skipped(why);
    }
    f.total = t0.elapsed();
    progress(t0, "done");
    print!("{}", f.render());
    Ok(())
}

/// Fresh starts on new data directories, then restarts on the last one.
async fn startup(bin: &Path, work_dir: &Path, plan: &Plan) -> StartupFindings {
    let mut s = StartupFindings::default();
    let mut last_dir = None;
    for _ in 0..plan.fresh_starts {
        let dir = match tempfile::Builder::new()
            .prefix("keelson-start-")
            .tempdir_in(work_dir)
        {
            Ok(d) => d,
            Err(e) => {
                s.error = Some(format!("temp dir: {e}"));
                return s;
            }
        };
        match Server::start(bin, dir.path()).await {
            Ok(mut server) => {
                s.fresh.push(server.ready_after);
                if let Some(d) = server.stop().await {
                    s.stop.push(d);
                }
            }
            Err(e) => {
                s.error = Some(e.to_string());
                return s;
            }
        }
        last_dir = Some(dir);
    }
    let Some(dir) = last_dir else { return s };
    match Server::start(bin, dir.path()).await {
        Ok(mut server) => {
            for _ in 0..plan.restarts {
                match server.restart().await {
                    Ok(()) => s.restart.push(server.ready_after),
                    Err(e) => {
                        s.error = Some(e.to_string());
                        break;
                    }
                }
            }
            server.stop().await;
        }
        Err(e) => s.error = Some(e.to_string()),
    }
    s
}

/// etcd on its own: a fresh single-member etcd loaded with the creates' bytes as gRPC puts.
/// `bin` is already resolved.
async fn etcd_phase(bin: &Path, work_dir: &Path, plan: &Plan, t0: Instant) -> EtcdFindings {
    let version = etcd::version(bin).unwrap_or_else(|| "unknown version".to_string());
    let mut e = match etcd::Etcd::start(bin, work_dir).await {
        Ok(e) => e,
        Err(err) => return EtcdFindings::Failed(format!("{version}: {err}")),
    };
    tokio::time::sleep(plan.idle_wait).await;
    let pid = e.pid();
    let idle = pid.and_then(|p| procfs::memory(p).ok());
    // The same bytes keelson stored, under keys shaped like Kubernetes' registry keys.
    let puts = (0..plan.creates)
        .map(|i| {
            let name = object_name(CREATE_PREFIX, i);
            let req = etcd::grpc::PutRequest {
                key: Bytes::from(format!("/registry/configmaps/{}/{name}", split_ns(i))),
                value: configmap_json(&name),
            };
            etcd::grpc::frame(&req)
        })
        .collect();
    progress(
        t0,
        &format!("etcd: {} puts with {} clients", plan.creates, plan.clients),
    );
    let load = match etcd::put_load(&e.endpoint, plan.clients, puts, pid).await {
        Ok(l) => l,
        Err(err) => return EtcdFindings::Failed(format!("{version}: put load: {err}")),
    };
    let stored = match e.endpoint.connect().await {
        Ok(mut c) => c
            .count_prefix(&e.endpoint, b"/registry/configmaps/")
            .await
            .ok(),
        Err(_) => None,
    };
    let after = pid.and_then(|p| procfs::memory(p).ok());
    let data_bytes = procfs::dir_size(&e.data_dir());
    let ready_after = e.ready_after;
    e.stop().await;
    EtcdFindings::Ran(Box::new(findings::EtcdRun {
        version,
        ready_after,
        idle,
        after,
        load,
        stored,
        data_bytes,
    }))
}
