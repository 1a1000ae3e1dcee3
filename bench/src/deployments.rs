//! `--deployments`: the controllers' benchmark. One `keelson server` (controllers, scheduler
//! and API in one process) and 100 hollow nodes; a 1,000-replica Deployment is created and
//! timed to all Available, then its image is changed and the full rolling update timed.
//! Reports the server's CPU time per phase and its memory, since the controllers run inside
//! it (as do the scheduler and the API handling the hollow kubelets' writes).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::client::Conn;
use crate::keelson::Server;
use crate::procfs::{self, CpuMeter};
use crate::scheduling::api;

pub struct Options {
    pub quick: bool,
    pub server_bin: PathBuf,
    pub work_dir: PathBuf,
}

const NS: &str = "default";
const NAME: &str = "bench";

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

async fn deployment(conn: &mut Conn) -> anyhow::Result<Value> {
    let path = format!("/apis/apps/v1/namespaces/{NS}/deployments/{NAME}");
    let body = api::call(conn, Method::GET, &path, Bytes::new(), &[StatusCode::OK]).await?;
    Ok(serde_json::from_slice(&body)?)
}

/// Waits until every replica runs the template of the Deployment's current generation.
async fn wait_rolled_out(
    conn: &mut Conn,
    replicas: i64,
    limit: Duration,
    say: &dyn Fn(&str),
) -> anyhow::Result<Duration> {
    let t = Instant::now();
    let mut last_report = Instant::now();
    loop {
        let d = deployment(conn).await?;
        let s = &d["status"];
        let n = |f: &str| s[f].as_i64().unwrap_or(0);
        let current = s["observedGeneration"].as_i64() >= d["metadata"]["generation"].as_i64();
        if current
            && n("updatedReplicas") == replicas
            && n("availableReplicas") == replicas
            && n("replicas") == replicas
        {
            return Ok(t.elapsed());
        }
        anyhow::ensure!(
            t.elapsed() < limit,
            "not rolled out after {limit:?}: status {s}"
        );
        if last_report.elapsed() > Duration::from_secs(5) {
            say(&format!(
                "  {} updated, {} available, {} total",
                n("updatedReplicas"),
                n("availableReplicas"),
                n("replicas")
            ));
            last_report = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub async fn run(opts: Options, t0: Instant) -> anyhow::Result<()> {
    let (nodes, replicas) = if opts.quick { (10, 100) } else { (100, 1000) };
    let say = |m: &str| crate::progress(t0, m);
    let dir = tempfile::Builder::new()
        .prefix("keelson-deploy-")
        .tempdir_in(&opts.work_dir)?;
    say(&format!(
        "deployments: starting keelson in {}",
        dir.path().display()
    ));
    let mut server = Server::start(&opts.server_bin, dir.path())
        .await
        .context("starting keelson")?;
    let target = server.target()?;
    let pid = server.pid().context("the server has no pid")?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle = procfs::memory(pid)?;

    say(&format!("starting `keelson simulate --nodes {nodes}`"));
    let log = dir.path().join("simulate.log");
    let out = std::fs::File::create(&log)?;
    let mut sim = Command::new(&opts.server_bin)
        .args(["simulate", "--nodes", &nodes.to_string(), "--kubeconfig"])
        .arg(dir.path().join("kubeconfig.yaml"))
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .spawn()
        .context("starting keelson simulate")?;
    let mut conn = target.connect().await?;
    let t = Instant::now();
    loop {
        let (_, ready) = api::nodes(&mut conn).await?;
        if ready >= nodes {
            break;
        }
        anyhow::ensure!(
            t.elapsed() < Duration::from_secs(120),
            "only {ready} of {nodes} nodes Ready after 120 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    say(&format!(
        "{nodes} nodes Ready in {:.1} s",
        t.elapsed().as_secs_f64()
    ));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let with_nodes = procfs::memory(pid)?;

    let manifest = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": NAME, "namespace": NS},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": NAME}},
            "template": {"metadata": {"labels": {"app": NAME}},
                         "spec": {"containers": [{"name": "app", "image": "bench:1"}]}},
        },
    });
    let cpu = CpuMeter::start(pid).context("reading the server's CPU time")?;
    let path = format!("/apis/apps/v1/namespaces/{NS}/deployments");
    api::call(
        &mut conn,
        Method::POST,
        &path,
        Bytes::from(manifest.to_string()),
        &[StatusCode::CREATED],
    )
    .await?;
    say(&format!("created a {replicas}-replica Deployment"));
    let limit = Duration::from_secs(600);
    let available = wait_rolled_out(&mut conn, replicas, limit, &say).await?;
    let cpu_create = cpu.read().unwrap_or_default();
    say(&format!(
        "all {replicas} Available in {:.1} s",
        available.as_secs_f64()
    ));
    let after_create = procfs::memory(pid)?;

    let cpu = CpuMeter::start(pid).context("reading the server's CPU time")?;
    // A PUT of the object with the new image (the bench's client speaks JSON only).
    let mut d = deployment(&mut conn).await?;
    d["spec"]["template"]["spec"]["containers"][0]["image"] = json!("bench:2");
    api::call(
        &mut conn,
        Method::PUT,
        &format!("{path}/{NAME}"),
        Bytes::from(d.to_string()),
        &[StatusCode::OK],
    )
    .await?;
    say("changed the image: rolling update");
    let rolled = wait_rolled_out(&mut conn, replicas, limit, &say).await?;
    let cpu_roll = cpu.read().unwrap_or_default();
    let after_roll = procfs::memory(pid)?;
    say(&format!(
        "rolling update complete in {:.1} s",
        rolled.as_secs_f64()
    ));

    procfs::terminate(&mut sim, Duration::from_secs(10)).await;
    let (problems, lines) = crate::keelson::log_problems(&server.log_path(), 5);
    server.stop().await;

    println!(
        "\n== Deployment benchmark: {replicas} replicas on {nodes} hollow nodes (one keelson server: API, scheduler, controllers) =="
    );
    println!(
        "time to all Available:     {:>8.1} s   server CPU {:>6.1} s",
        available.as_secs_f64(),
        cpu_create.as_secs_f64()
    );
    println!(
        "full rolling update:       {:>8.1} s   server CPU {:>6.1} s   (maxSurge/maxUnavailable 25%)",
        rolled.as_secs_f64(),
        cpu_roll.as_secs_f64()
    );
    println!(
        "server RSS: idle {:.1} MiB, with nodes {:.1} MiB, after create {:.1} MiB, after rollout {:.1} MiB (peak {:.1} MiB)",
        mib(idle.rss),
        mib(with_nodes.rss),
        mib(after_create.rss),
        mib(after_roll.rss),
        mib(after_roll.peak)
    );
    println!("server log: {problems} warnings/errors");
    for l in lines {
        println!("  {l}");
    }
    Ok(())
}
