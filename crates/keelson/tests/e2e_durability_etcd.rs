//! End-to-end durability on etcd: `keelson server --datastore etcd://m0,m1,m2` on a real
//! 3-member etcd cluster while 16 clients create and patch ConfigMaps.
//!
//! Rounds, in an order and at moments picked from a logged seed:
//! * the keelson server is SIGKILLed mid-flight and restarted;
//! * one etcd member (leader or not) is SIGKILLed mid-flight; the writers keep going on the
//!   other two — writes must keep being acknowledged — and the member is restarted and must
//!   catch up.
//!
//! After every round, every write that was ever acknowledged is there with its exact content
//! (an object's content may only be that of its last acknowledged write or of a later write
//! whose answer was lost), and nothing is torn: every stored payload is one a client sent, whole.

// Integration tests unwrap freely: a panic is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::http::{Http, HttpError, Reply};
use common::{Cluster, ServerOptions, TestRng};
use serde_json::{Value, json};

const WRITERS: usize = 16;
const NS: &str = "crash";
/// The filler that makes a payload long enough to be torn by a partial write.
const FILL: usize = 200;

// ---------------------------------------------------------------------------------------------
// A 3-member etcd cluster.

struct Member {
    name: String,
    client_port: u16,
    peer_port: u16,
    child: Option<Child>,
}

struct EtcdCluster {
    dir: tempfile::TempDir,
    members: Vec<Member>,
    initial_cluster: String,
}

impl EtcdCluster {
    fn start() -> EtcdCluster {
        let members: Vec<Member> = (0..3)
            .map(|i| Member {
                name: format!("m{i}"),
                client_port: common::free_port(),
                peer_port: common::free_port(),
                child: None,
            })
            .collect();
        let initial_cluster = members
            .iter()
            .map(|m| format!("{}=http://127.0.0.1:{}", m.name, m.peer_port))
            .collect::<Vec<_>>()
            .join(",");
        let mut cluster = EtcdCluster {
            dir: tempfile::tempdir().unwrap(),
            members,
            initial_cluster,
        };
        for i in 0..3 {
            cluster.start_member(i);
        }
        for i in 0..3 {
            cluster.wait_healthy(i);
        }
        cluster
    }

    fn log_path(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("m{i}.log"))
    }

    fn logs(&self) -> String {
        (0..3)
            .map(|i| {
                let log = std::fs::read_to_string(self.log_path(i)).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(20).collect();
                format!(
                    "--- m{i} (last lines) ---\n{}\n",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                )
            })
            .collect()
    }

    /// Starts member `i` (on its existing data directory, if any: it rejoins).
    fn start_member(&mut self, i: usize) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(i))
            .unwrap();
        let m = &self.members[i];
        let client = format!("http://127.0.0.1:{}", m.client_port);
        let peer = format!("http://127.0.0.1:{}", m.peer_port);
        let child = Command::new(common::etcd::ETCD)
            .args(["--name", &m.name, "--data-dir"])
            .arg(self.dir.path().join(&m.name))
            .args([
                "--listen-client-urls",
                &client,
                "--advertise-client-urls",
                &client,
            ])
            .args([
                "--listen-peer-urls",
                &peer,
                "--initial-advertise-peer-urls",
                &peer,
            ])
            .args(["--initial-cluster", &self.initial_cluster])
            .args(["--initial-cluster-token", "keelson-durability"])
            .args(["--initial-cluster-state", "new"])
            .args(["--heartbeat-interval", "50", "--election-timeout", "500"])
            .args([
                "--logger",
                "zap",
                "--log-level",
                "warn",
                "--log-outputs",
                "stderr",
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn etcd");
        self.members[i].child = Some(child);
    }

    /// SIGKILL member `i`.
    fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.members[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// `GET /health` on member `i` (etcd's own HTTP endpoint; true once it has a leader).
    fn healthy(&self, i: usize) -> bool {
        let port = self.members[i].client_port;
        if TcpStream::connect(("127.0.0.1", port)).is_err() {
            return false;
        }
        let out = Command::new("curl")
            .args(["-sS", "--max-time", "2"])
            .arg(format!("http://127.0.0.1:{port}/health"))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).contains("\"health\":\"true\"")
    }

    fn wait_healthy(&mut self, i: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.healthy(i) {
            if let Some(c) = self.members[i].child.as_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                panic!("etcd m{i} exited with {status}:\n{}", self.logs());
            }
            assert!(
                Instant::now() < deadline,
                "etcd m{i} not healthy in 30 s:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn datastore(&self) -> String {
        let endpoints: Vec<String> = self
            .members
            .iter()
            .map(|m| format!("127.0.0.1:{}", m.client_port))
            .collect();
        format!("etcd://{}", endpoints.join(","))
    }

    /// How many keys under `prefix` member `i` holds, read from that member alone
    /// (`serializable`), through etcd's JSON gateway.
    fn local_count(&self, i: usize, prefix: &str) -> Option<u64> {
        use base64::Engine as _;
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        let mut end = prefix.as_bytes().to_vec();
        if let Some(last) = end.last_mut() {
            *last += 1;
        }
        let body = json!({
            "key": b64(prefix.as_bytes()), "range_end": b64(&end),
            "count_only": true, "serializable": true,
        });
        let out = Command::new("curl")
            .args([
                "-sS",
                "--max-time",
                "2",
                "-X",
                "POST",
                "-d",
                &body.to_string(),
            ])
            .arg(format!(
                "http://127.0.0.1:{}/v3/kv/range",
                self.members[i].client_port
            ))
            .output()
            .ok()?;
        let v: Value = serde_json::from_slice(&out.stdout).ok()?;
        // proto3 JSON leaves a zero count out.
        match &v["count"] {
            Value::String(s) => s.parse().ok(),
            Value::Null if v.get("header").is_some() => Some(0),
            _ => None,
        }
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Writers and what they were told.

#[derive(Clone, Debug, PartialEq, Eq)]
enum Fate {
    Acked,
    /// No answer, or one that says nothing about the outcome (5xx, 429).
    Unknown,
    Refused(u16, String),
}

#[derive(Clone, Debug)]
struct Attempt {
    payload: String,
    fate: Fate,
    at: Instant,
}

/// Every write attempted, per object name, in the order made (one writer per object).
type Attempts = BTreeMap<String, Vec<Attempt>>;

fn payload(name: &str, seq: u64) -> String {
    format!("{name}:{seq}:{}", "x".repeat(FILL))
}

fn fate(r: &Result<Reply, HttpError>, ok: u16) -> Fate {
    match r {
        Ok(reply) if reply.status == ok => Fate::Acked,
        Ok(reply) if reply.status >= 500 || reply.status == 429 => Fate::Unknown,
        Ok(reply) => Fate::Refused(reply.status, reply.text()),
        Err(_) => Fate::Unknown,
    }
}

async fn writer(
    http: Arc<Http>,
    round: usize,
    w: usize,
    stop: Arc<AtomicBool>,
    mut rng: TestRng,
) -> Attempts {
    let mut attempts = Attempts::new();
    // Objects whose create was acknowledged: patched later in the round.
    let mut mine: Vec<String> = Vec::new();
    let mut seq = 0u64;
    let mut next = 0usize;
    while !stop.load(Ordering::Relaxed) {
        seq += 1;
        let (name, r, ok) = if mine.is_empty() || rng.percent(60) {
            let name = format!("r{round}-w{w}-{next}");
            next += 1;
            let body = json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": name}, "data": {"payload": payload(&name, seq)},
            });
            let r = http
                .post_json(&format!("/api/v1/namespaces/{NS}/configmaps"), &body)
                .await;
            (name, r, 201)
        } else {
            let name = mine[rng.below(mine.len() as u64) as usize].clone();
            let patch = json!({"data": {"payload": payload(&name, seq)}});
            let r = http
                .merge_patch(
                    &format!("/api/v1/namespaces/{NS}/configmaps/{name}"),
                    &patch,
                )
                .await;
            (name, r, 200)
        };
        let fate = fate(&r, ok);
        if fate == Fate::Acked && ok == 201 {
            mine.push(name.clone());
        }
        if fate == Fate::Unknown {
            // The server or the store is down: do not spin.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        attempts.entry(name.clone()).or_default().push(Attempt {
            payload: payload(&name, seq),
            fate,
            at: Instant::now(),
        });
    }
    attempts
}

/// Runs 16 writers until `action` (run on this thread, while they write) returns, then for
/// `after` more; returns what they attempted.
fn write_while(
    rt: &tokio::runtime::Runtime,
    http: &Arc<Http>,
    round: usize,
    rng: &mut TestRng,
    after: Duration,
    action: impl FnOnce(),
) -> Attempts {
    let stop = Arc::new(AtomicBool::new(false));
    let handles: Vec<_> = (0..WRITERS)
        .map(|w| {
            rt.spawn(writer(
                http.clone(),
                round,
                w,
                stop.clone(),
                TestRng::seeded(rng.next_u64()),
            ))
        })
        .collect();
    action();
    std::thread::sleep(after);
    stop.store(true, Ordering::SeqCst);
    let mut all = Attempts::new();
    for h in handles {
        all.extend(rt.block_on(h).unwrap());
    }
    all
}

/// Checks the stored ConfigMaps against every attempt so far; returns the problems.
fn verify(rt: &tokio::runtime::Runtime, http: &Http, attempts: &Attempts) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let reply = loop {
        match rt.block_on(http.get(&format!("/api/v1/namespaces/{NS}/configmaps"))) {
            Ok(r) if r.status == 200 => break r,
            other => {
                assert!(
                    Instant::now() < deadline,
                    "cannot list to verify: {other:?}"
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    };
    let list = reply.json().unwrap();
    let stored: BTreeMap<String, Value> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| common::made_by_test(i))
        .map(|i| {
            (
                i["metadata"]["name"].as_str().unwrap().to_string(),
                i.clone(),
            )
        })
        .collect();
    let mut problems = Vec::new();
    for (name, obj) in &stored {
        let p = obj["data"]["payload"].as_str().unwrap_or_default();
        let whole = p.starts_with(&format!("{name}:"))
            && p.ends_with(&"x".repeat(FILL))
            && obj["data"].as_object().is_some_and(|d| d.len() == 1);
        if !whole {
            problems.push(format!("{name} is torn: {obj}"));
        }
        if !attempts.contains_key(name) {
            problems.push(format!("{name} exists but nobody wrote it: {obj}"));
        }
    }
    for (name, tries) in attempts {
        let last_acked = tries.iter().rposition(|a| a.fate == Fate::Acked);
        for a in tries {
            if let Fate::Refused(code, text) = &a.fate {
                problems.push(format!("a write of {name} was refused with {code}: {text}"));
            }
        }
        let got = stored.get(name).and_then(|o| o["data"]["payload"].as_str());
        match (last_acked, got) {
            (Some(i), None) => problems.push(format!(
                "acknowledged write of {name} (#{i}, {}) is lost",
                &tries[i].payload[..tries[i].payload.len() - FILL]
            )),
            (_, Some(p)) => {
                // Only the last acknowledged write, or a later one whose answer was lost.
                let from = last_acked.unwrap_or(0);
                let allowed = tries[from..].iter().enumerate().any(|(k, a)| {
                    a.payload == p && (k == 0 && last_acked.is_some() || a.fate == Fate::Unknown)
                });
                if !allowed {
                    problems.push(format!(
                        "{name} holds {}, but its last acknowledged write was {:?}",
                        &p[..p.len().saturating_sub(FILL)],
                        last_acked.map(|i| &tries[i].payload[..tries[i].payload.len() - FILL])
                    ));
                }
            }
            (None, None) => {}
        }
    }
    problems
}

fn count_acked(attempts: &Attempts) -> usize {
    attempts
        .values()
        .flatten()
        .filter(|a| a.fate == Fate::Acked)
        .count()
}

#[derive(Clone, Copy, Debug)]
enum Round {
    KillServer,
    KillMember(usize),
}

#[test]
fn acknowledged_writes_survive_server_and_member_kills() {
    let started = Instant::now();
    let mut rng = TestRng::from_env("acknowledged_writes_survive_server_and_member_kills");
    let mut etcd = EtcdCluster::start();
    // The write path is under test: the controllers' ~60 watches relisting after every
    // member kill would compete with it for the one etcd leader on a 2-core machine.
    let mut c = Cluster::start_with(ServerOptions {
        extra_args: vec![
            "--datastore".into(),
            etcd.datastore(),
            "--disable-controller-manager".into(),
        ],
        share_ca_with: None,
    });
    c.ok(&["create", "namespace", NS]);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let http = Http::for_cluster(&c);

    // Two rounds of each kind, in a random order; the two member kills hit different members.
    let first = rng.below(3) as usize;
    let second = (first + 1 + rng.below(2) as usize) % 3;
    let mut rounds = [
        Round::KillServer,
        Round::KillMember(first),
        Round::KillServer,
        Round::KillMember(second),
    ];
    if rng.percent(50) {
        rounds.swap(0, 1);
    }
    if rng.percent(50) {
        rounds.swap(2, 3);
    }
    eprintln!("rounds: {rounds:?}");

    let mut attempts = Attempts::new();
    let prefix = format!("/registry/core/configmaps/{NS}/");
    for (round, kind) in rounds.into_iter().enumerate() {
        let round_started = Instant::now();
        let delay = rng.millis(800, 2000);
        let mut killed_at = None;
        let got = match kind {
            Round::KillServer => {
                let pid = c.pid().unwrap();
                let got = write_while(
                    &rt,
                    &http,
                    round,
                    &mut rng,
                    Duration::from_millis(300),
                    || {
                        std::thread::sleep(delay);
                        Command::new("kill")
                            .args(["-9", &pid.to_string()])
                            .status()
                            .unwrap();
                    },
                );
                c.kill9_and_restart();
                got
            }
            Round::KillMember(m) => {
                let etcd = &mut etcd;
                let killed = &mut killed_at;
                write_while(
                    &rt,
                    &http,
                    round,
                    &mut rng,
                    // When the killed member was the leader, the others need an election
                    // (1 s timeout, more on a loaded 2-core machine) and the server's client a
                    // reconnect before writes go on: 2 s was once not enough in CI, and 5 s
                    // failed twice in a row on a loaded machine.
                    Duration::from_millis(12_000),
                    || {
                        std::thread::sleep(delay);
                        etcd.kill(m);
                        *killed = Some(Instant::now());
                    },
                )
            }
        };
        let acked = count_acked(&got);
        let lost: usize = got
            .values()
            .flatten()
            .filter(|a| a.fate == Fate::Unknown)
            .count();
        assert!(
            acked > 0,
            "round {round} ({kind:?}): no write was acknowledged"
        );
        if let Some(at) = killed_at {
            // One member down of three: the cluster keeps a quorum, so writes go on.
            let after = got
                .values()
                .flatten()
                .filter(|a| a.fate == Fate::Acked && a.at > at + Duration::from_millis(200))
                .count();
            assert!(
                after > 0,
                "round {round}: no write was acknowledged while member {kind:?} was down\n{}",
                etcd.logs()
            );
            eprintln!(
                "round {round} ({kind:?}): {acked} acknowledged ({after} with the member down), {lost} answers lost"
            );
        } else {
            eprintln!("round {round} ({kind:?}): {acked} acknowledged, {lost} answers lost");
        }
        for (name, tries) in got {
            attempts.entry(name).or_default().extend(tries);
        }
        let problems = verify(&rt, &http, &attempts);
        assert!(
            problems.is_empty(),
            "round {round} ({kind:?}): {} problems:\n{}",
            problems.len(),
            problems
                .iter()
                .take(30)
                .cloned()
                .collect::<Vec<_>>()
                .join("\n")
        );
        if let Round::KillMember(m) = kind {
            // The member comes back and catches up with everything written without it.
            etcd.start_member(m);
            etcd.wait_healthy(m);
            let expected = rt
                .block_on(http.get(&format!("/api/v1/namespaces/{NS}/configmaps")))
                .unwrap()
                .json()
                .unwrap()["items"]
                .as_array()
                .unwrap()
                .len() as u64;
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let n = etcd.local_count(m, &prefix);
                if n == Some(expected) {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "member m{m} did not catch up: {n:?} of {expected} keys\n{}",
                    etcd.logs()
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        eprintln!("round {round} done in {:?}", round_started.elapsed());
    }
    let total = count_acked(&attempts);
    assert!(
        total >= WRITERS * rounds.len(),
        "too few writes acknowledged to mean anything: {total}"
    );
    eprintln!(
        "{total} acknowledged writes survived; {:?} in all",
        started.elapsed()
    );
}
