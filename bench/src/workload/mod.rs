//! The request workloads run against a live server, and what they share: object bodies,
//! namespaces, and the closed-loop runner (N clients, each on its own connection, each sending
//! its next request as soon as the previous one answered).

pub mod list;
pub mod suite;
pub mod watch;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, StatusCode, Uri};

use crate::client::{self, Conn, Target};
use crate::procfs;
use crate::stats::{Latencies, duration_nanos, rate_by_slice};

/// Bytes of `data` in every benchmark ConfigMap: three values of this many characters each.
const VALUE_LEN: usize = 100;

/// The name of object `i` (zero-padded so that names sort like their indexes).
pub fn object_name(prefix: &str, i: usize) -> String {
    format!("{prefix}-{i:06}")
}

/// A ConfigMap with ~300 bytes of data (three 100-character values), as JSON.
///
/// The values are pseudo-random letters seeded by the name, so no two objects are alike and
/// nothing on the path can shortcut identical payloads.
pub fn configmap_json(name: &str) -> Bytes {
    let mut seed = name.bytes().fold(0x9e37_79b9_7f4a_7c15u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let mut value = || {
        (0..VALUE_LEN)
            .map(|_| {
                // xorshift64: cheap and good enough to make each value distinct.
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                char::from(b'a' + (seed % 26) as u8)
            })
            .collect::<String>()
    };
    let (a, b, c) = (value(), value(), value());
    Bytes::from(format!(
        r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"{name}","labels":{{"app":"keelson-bench"}}}},"data":{{"alpha":"{a}","bravo":"{b}","charlie":"{c}"}}}}"#
    ))
}

/// Creates namespace `name` (an existing one is fine).
pub async fn ensure_namespace(conn: &mut Conn, name: &str) -> anyhow::Result<()> {
    let body = Bytes::from(format!(
        r#"{{"apiVersion":"v1","kind":"Namespace","metadata":{{"name":"{name}"}}}}"#
    ));
    let (status, resp) = conn
        .call(Method::POST, client::uri("/api/v1/namespaces"), body)
        .await?;
    if status != StatusCode::CREATED && status != StatusCode::CONFLICT {
        anyhow::bail!(
            "creating namespace {name}: HTTP {status}: {}",
            client::excerpt(&resp)
        );
    }
    Ok(())
}

/// The processes whose CPU time a run charges to the server side: the API server, and the
/// separate store it keeps its state in (etcd), if any.
#[derive(Debug, Clone, Copy, Default)]
pub struct Procs {
    pub server: Option<u32>,
    pub store: Option<u32>,
}

impl Procs {
    /// A server that keeps its state in its own process (the embedded store).
    pub fn server(pid: Option<u32>) -> Procs {
        Procs {
            server: pid,
            store: None,
        }
    }
}

/// One request of a closed-loop run; built before the clock starts.
pub struct Job {
    pub method: Method,
    pub uri: Uri,
    pub body: Bytes,
}

/// The outcome of a closed-loop run.
pub struct LoadResult {
    pub clients: usize,
    pub ok: u64,
    pub errors: u64,
    /// The first failure, for the report.
    pub first_error: Option<String>,
    pub wall: Duration,
    /// Latencies of the successful requests.
    pub latencies: Latencies,
    /// Throughput in each quarter of the run (by completion order).
    pub quarters: Vec<f64>,
    /// CPU time the server process used during the run (utime+stime delta).
    pub server_cpu: Option<Duration>,
    /// CPU time the server's separate store process (etcd) used during the run; None when the
    /// server keeps its state itself.
    pub store_cpu: Option<Duration>,
    /// CPU time the load generator used during the run.
    pub client_cpu: Option<Duration>,
    /// CPU time every process on the machine used during the run.
    pub machine_cpu: Option<Duration>,
}

impl LoadResult {
    pub fn per_sec(&self) -> f64 {
        self.ok as f64 / self.wall.as_secs_f64().max(1e-9)
    }

    /// Server CPU per successful request.
    pub fn server_cpu_per_req(&self) -> Option<Duration> {
        self.per_req(self.server_cpu)
    }

    /// The store process's CPU per successful request.
    pub fn store_cpu_per_req(&self) -> Option<Duration> {
        self.per_req(self.store_cpu)
    }

    /// Server and store CPU together per successful request: everything the server side
    /// spent (just the server's figure when it has no separate store).
    pub fn server_side_cpu_per_req(&self) -> Option<Duration> {
        let total = match (self.server_cpu, self.store_cpu) {
            (Some(s), Some(st)) => Some(s + st),
            (s, None) => s,
            (None, Some(_)) => None,
        };
        self.per_req(total)
    }

    pub fn client_cpu_per_req(&self) -> Option<Duration> {
        self.per_req(self.client_cpu)
    }

    fn per_req(&self, cpu: Option<Duration>) -> Option<Duration> {
        cpu.filter(|_| self.ok > 0)
            .map(|c| c / u32::try_from(self.ok).unwrap_or(u32::MAX))
    }
}

struct ClientOutcome {
    nanos: Vec<u64>,
    /// Completion times of the successful requests, nanoseconds after the run started.
    ends: Vec<u64>,
    errors: u64,
    first_error: Option<String>,
}

/// Runs `jobs` with `clients` concurrent connections, each taking the next job as soon as its
/// previous request answered. A response whose status is not `expect` counts as an error.
/// The `procs` are sampled for CPU time just before the first and after the last request.
pub async fn closed_loop(
    target: &Target,
    clients: usize,
    jobs: Vec<Job>,
    expect: StatusCode,
    procs: Procs,
) -> anyhow::Result<LoadResult> {
    // Connections are opened before the clock starts: the TLS handshakes are not the workload.
    let mut conns = Vec::with_capacity(clients);
    for _ in 0..clients {
        conns.push(target.connect().await?);
    }
    let jobs = Arc::new(jobs);
    let next = Arc::new(AtomicUsize::new(0));
    let (server_meter, store_meter, client_meter) = (
        procs.server.and_then(procfs::CpuMeter::start),
        procs.store.and_then(procfs::CpuMeter::start),
        procfs::CpuMeter::start_own(),
    );
    let machine_meter = procfs::MachineMeter::start();
    let t0 = Instant::now();
    let mut tasks = Vec::with_capacity(clients);
    for conn in conns {
        let (jobs, next, target) = (jobs.clone(), next.clone(), target.clone());
        tasks.push(tokio::spawn(run_client(
            conn, target, jobs, next, expect, t0,
        )));
    }
    let mut nanos = Vec::with_capacity(jobs.len());
    let mut ends = Vec::with_capacity(jobs.len());
    let (mut errors, mut first_error) = (0, None);
    for t in tasks {
        let out = t.await?;
        nanos.extend_from_slice(&out.nanos);
        ends.extend_from_slice(&out.ends);
        errors += out.errors;
        first_error = first_error.or(out.first_error);
    }
    let wall = t0.elapsed();
    Ok(LoadResult {
        clients,
        ok: nanos.len() as u64,
        errors,
        first_error,
        wall,
        latencies: Latencies::from_nanos(nanos),
        quarters: rate_by_slice(ends, 4),
        server_cpu: server_meter.and_then(|m| m.read()),
        store_cpu: store_meter.and_then(|m| m.read()),
        client_cpu: client_meter.and_then(|m| m.read()),
        machine_cpu: machine_meter.and_then(|m| m.read()),
    })
}

async fn run_client(
    mut conn: Conn,
    target: Target,
    jobs: Arc<Vec<Job>>,
    next: Arc<AtomicUsize>,
    expect: StatusCode,
    t0: Instant,
) -> ClientOutcome {
    let mut out = ClientOutcome {
        nanos: Vec::with_capacity(jobs.len() / 8 + 16),
        ends: Vec::with_capacity(jobs.len() / 8 + 16),
        errors: 0,
        first_error: None,
    };
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let Some(job) = jobs.get(i) else { break };
        let t = Instant::now();
        match conn
            .call(job.method.clone(), job.uri.clone(), job.body.clone())
            .await
        {
            Ok((status, _)) if status == expect => {
                out.nanos.push(duration_nanos(t.elapsed()));
                out.ends.push(duration_nanos(t0.elapsed()));
            }
            Ok((status, body)) => {
                out.errors += 1;
                out.first_error.get_or_insert_with(|| {
                    format!(
                        "{} {}: HTTP {status}: {}",
                        job.method,
                        job.uri,
                        client::excerpt(&body)
                    )
                });
            }
            Err(e) => {
                // The connection is gone: count it, and carry on with a new one if we can.
                out.errors += 1;
                out.first_error
                    .get_or_insert_with(|| format!("{} {}: {e}", job.method, job.uri));
                match target.connect().await {
                    Ok(c) => conn = c,
                    Err(_) => break,
                }
            }
        }
    }
    out
}

/// A finished run with the given figures, for tests of what is computed and printed from one.
#[cfg(test)]
pub fn fake_result(
    ok: u64,
    wall: Duration,
    latencies_ms: &[u64],
    cpu: [Option<Duration>; 4],
) -> LoadResult {
    let [server_cpu, store_cpu, client_cpu, machine_cpu] = cpu;
    LoadResult {
        clients: 16,
        ok,
        errors: 0,
        first_error: None,
        wall,
        latencies: Latencies::from_nanos(latencies_ms.iter().map(|m| m * 1_000_000).collect()),
        quarters: Vec::new(),
        server_cpu,
        store_cpu,
        client_cpu,
        machine_cpu,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_per_request_splits_server_and_store() {
        let s = Some(Duration::from_secs(2));
        let st = Some(Duration::from_secs(1));
        let r = fake_result(1000, Duration::from_secs(1), &[1], [s, st, s, None]);
        assert_eq!(r.server_cpu_per_req(), Some(Duration::from_millis(2)));
        assert_eq!(r.store_cpu_per_req(), Some(Duration::from_millis(1)));
        assert_eq!(r.server_side_cpu_per_req(), Some(Duration::from_millis(3)));
        // Without a store process the server side is the server alone.
        let r = fake_result(1000, Duration::from_secs(1), &[1], [s, None, s, None]);
        assert_eq!(r.store_cpu_per_req(), None);
        assert_eq!(r.server_side_cpu_per_req(), Some(Duration::from_millis(2)));
        // Nothing answered: no per-request figure at all.
        let r = fake_result(0, Duration::from_secs(1), &[], [s, st, s, None]);
        assert_eq!(r.server_side_cpu_per_req(), None);
    }

    #[test]
    fn configmap_bodies_are_valid_distinct_and_about_300_bytes_of_data() {
        let a = configmap_json(&object_name("cm", 1));
        let b = configmap_json(&object_name("cm", 2));
        assert_ne!(a, b);
        let v: serde_json::Value = serde_json::from_slice(&a).expect("valid JSON");
        assert_eq!(v["kind"], "ConfigMap");
        assert_eq!(v["metadata"]["name"], "cm-000001");
        let data = v["data"].as_object().expect("data map");
        let data_bytes: usize = data
            .iter()
            .map(|(k, v)| k.len() + v.as_str().map_or(0, str::len))
            .sum();
        assert_eq!(data_bytes, 3 * VALUE_LEN + "alphabravocharlie".len());
        // Deterministic: the same name gives the same body.
        assert_eq!(configmap_json("cm-000001"), a);
    }

    #[test]
    fn object_names_are_zero_padded() {
        assert_eq!(object_name("cm", 7), "cm-000007");
        assert_eq!(object_name("w", 123_456), "w-123456");
    }
}
