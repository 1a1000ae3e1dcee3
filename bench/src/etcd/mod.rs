//! etcd for comparison: a single-member etcd (Debian's `etcd-server`) started on free loopback
//! ports with a temporary data directory, and the same closed-loop write workload as keelson's
//! creates, as gRPC `Put`s of the same bytes.
//!
//! Readiness is the first successful linearizable `Range`, which needs an elected leader: the
//! moment a client could first write.

pub mod grpc;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::keelson::free_ports;
use crate::procfs;
use crate::stats::{Latencies, duration_nanos, rate_by_slice};
use crate::workload::LoadResult;
use grpc::{Endpoint, GrpcConn, GrpcError};

const READY_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum EtcdError {
    #[error("starting {bin}: {source}")]
    Spawn { bin: String, source: std::io::Error },
    #[error("etcd exited with {status} before becoming ready; log:\n{log}")]
    Exited {
        status: std::process::ExitStatus,
        log: String,
    },
    #[error("etcd was not ready after {0:?}; log:\n{1}")]
    Timeout(Duration, String),
    #[error("preparing etcd's directory: {0}")]
    Dir(std::io::Error),
    #[error("no free loopback port: {0}")]
    Port(String),
    #[error(transparent)]
    Grpc(#[from] GrpcError),
}

/// `etcd --version`'s first line, or None when the binary cannot be run.
pub fn version(bin: &Path) -> Option<String> {
    let out = Command::new(bin).arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .next()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
}

/// A running single-member etcd; dropping it kills the process (its directory is removed).
pub struct Etcd {
    child: Option<Child>,
    dir: tempfile::TempDir,
    pub endpoint: Endpoint,
    pub ready_after: Duration,
}

impl Etcd {
    pub async fn start(bin: &Path, under: &Path) -> Result<Etcd, EtcdError> {
        let dir = tempfile::Builder::new()
            .prefix("etcd-")
            .tempdir_in(under)
            .map_err(EtcdError::Dir)?;
        let ports = free_ports(2).map_err(|e| EtcdError::Port(e.to_string()))?;
        let (client_port, peer_port) = (ports[0], ports[1]);
        let client_url = format!("http://127.0.0.1:{client_port}");
        let peer_url = format!("http://127.0.0.1:{peer_port}");
        let log = std::fs::File::create(dir.path().join("etcd.log")).map_err(EtcdError::Dir)?;
        let log_err = log.try_clone().map_err(EtcdError::Dir)?;
        let endpoint = Endpoint::new(SocketAddr::from(([127, 0, 0, 1], client_port)))?;
        let started = Instant::now();
        let child = Command::new(bin)
            .arg("--name=bench")
            .arg(format!("--data-dir={}", dir.path().join("data").display()))
            .arg(format!("--listen-client-urls={client_url}"))
            .arg(format!("--advertise-client-urls={client_url}"))
            .arg(format!("--listen-peer-urls={peer_url}"))
            .arg(format!("--initial-advertise-peer-urls={peer_url}"))
            .arg(format!("--initial-cluster=bench={peer_url}"))
            .arg("--initial-cluster-state=new")
            .args(["--logger=zap", "--log-outputs=stderr", "--log-level=warn"])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(|source| EtcdError::Spawn {
                bin: bin.display().to_string(),
                source,
            })?;
        let mut etcd = Etcd {
            child: Some(child),
            dir,
            endpoint,
            ready_after: Duration::ZERO,
        };
        etcd.ready_after = etcd.wait_ready(started).await?;
        Ok(etcd)
    }

    async fn wait_ready(&mut self, started: Instant) -> Result<Duration, EtcdError> {
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                return Err(EtcdError::Exited {
                    status,
                    log: self.log(),
                });
            }
            if let Ok(mut conn) = self.endpoint.connect().await
                && conn.count_prefix(&self.endpoint, b"/").await.is_ok()
            {
                return Ok(started.elapsed());
            }
            if started.elapsed() > READY_TIMEOUT {
                return Err(EtcdError::Timeout(READY_TIMEOUT, self.log()));
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("etcd.log")).unwrap_or_default()
    }

    /// SIGTERM, then SIGKILL after 10 s.
    pub async fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        procfs::terminate(&mut child, Duration::from_secs(10)).await;
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Puts every pre-framed request in `puts` with `clients` connections, each sending its next
/// put as soon as the previous one answered (the same closed loop as keelson's creates).
pub async fn put_load(
    ep: &Endpoint,
    clients: usize,
    puts: Vec<Bytes>,
    pid: Option<u32>,
) -> Result<LoadResult, EtcdError> {
    let mut conns = Vec::with_capacity(clients);
    for _ in 0..clients {
        conns.push(ep.connect().await?);
    }
    let puts = Arc::new(puts);
    let next = Arc::new(AtomicUsize::new(0));
    let (server_meter, client_meter) = (
        pid.and_then(procfs::CpuMeter::start),
        procfs::CpuMeter::start_own(),
    );
    let machine_meter = procfs::MachineMeter::start();
    let t0 = Instant::now();
    let tasks: Vec<_> = conns
        .into_iter()
        .map(|conn| tokio::spawn(put_client(conn, ep.clone(), puts.clone(), next.clone(), t0)))
        .collect();
    let mut all = PutOutcome::default();
    for t in tasks {
        let out = t
            .await
            .map_err(|e| EtcdError::Port(format!("a client task failed: {e}")))?;
        all.nanos.extend_from_slice(&out.nanos);
        all.ends.extend_from_slice(&out.ends);
        all.errors += out.errors;
        all.first_error = all.first_error.or(out.first_error);
    }
    let wall = t0.elapsed();
    Ok(LoadResult {
        clients,
        ok: all.nanos.len() as u64,
        errors: all.errors,
        first_error: all.first_error,
        wall,
        latencies: Latencies::from_nanos(all.nanos),
        quarters: rate_by_slice(all.ends, 4),
        server_cpu: server_meter.and_then(|m| m.read()),
        // etcd is the server here: there is no store behind it.
        store_cpu: None,
        client_cpu: client_meter.and_then(|m| m.read()),
        machine_cpu: machine_meter.and_then(|m| m.read()),
    })
}

#[derive(Default)]
struct PutOutcome {
    nanos: Vec<u64>,
    /// Completion times, nanoseconds after the run started.
    ends: Vec<u64>,
    errors: u64,
    first_error: Option<String>,
}

async fn put_client(
    mut conn: GrpcConn,
    ep: Endpoint,
    puts: Arc<Vec<Bytes>>,
    next: Arc<AtomicUsize>,
    t0: Instant,
) -> PutOutcome {
    let mut out = PutOutcome {
        nanos: Vec::with_capacity(puts.len() / 8 + 16),
        ends: Vec::with_capacity(puts.len() / 8 + 16),
        ..PutOutcome::default()
    };
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let Some(framed) = puts.get(i) else { break };
        let t = Instant::now();
        match conn.put(&ep, framed.clone()).await {
            Ok(_) => {
                out.nanos.push(duration_nanos(t.elapsed()));
                out.ends.push(duration_nanos(t0.elapsed()));
            }
            Err(e) => {
                out.errors += 1;
                out.first_error
                    .get_or_insert_with(|| format!("put {i}: {e}"));
                match ep.connect().await {
                    Ok(c) => conn = c,
                    Err(_) => break,
                }
            }
        }
    }
    out
}
