//! Real etcd processes for the etcd backend's tests: single members and 3-member clusters on
//! free loopback ports, each with its own temporary data directory, killed when dropped (so a
//! failing test does not leave etcd running).
#![allow(dead_code)]

use std::collections::HashSet;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use store::etcd::{EtcdOptions, EtcdStore, EtcdTls};
use store::{KvStore, StoreError};

pub const ETCD: &str = "/usr/bin/etcd";

/// Ports handed out in this process: the OS may offer a just-released port again, and two tests
/// starting etcd at the same time must not both get it.
static TAKEN: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// A loopback port nothing listens on now and that this process has not handed out before.
pub fn free_port() -> u16 {
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let mut taken = TAKEN.lock().unwrap_or_else(|e| e.into_inner());
        if taken.get_or_insert_with(HashSet::new).insert(port) {
            return port;
        }
    }
}

/// PEM files for a TLS-serving etcd that requires client certificates, and for a client.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

/// One etcd member.
pub struct Member {
    pub name: String,
    pub client_port: u16,
    pub peer_port: u16,
    data_dir: PathBuf,
    log: PathBuf,
    initial_cluster: String,
    tls: Option<TlsFiles>,
    child: Option<Child>,
    /// Whether the member has started once (a restart joins the existing cluster).
    started: bool,
}

impl Member {
    pub fn client_url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.client_port)
    }

    fn peer_url(port: u16) -> String {
        format!("http://127.0.0.1:{port}")
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    pub fn start(&mut self) {
        assert!(self.child.is_none(), "{} is already running", self.name);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("etcd log file");
        let client = self.client_url();
        let peer = Self::peer_url(self.peer_port);
        let mut cmd = Command::new(ETCD);
        cmd.arg("--name")
            .arg(&self.name)
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(["--listen-client-urls", &client])
            .args(["--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &self.initial_cluster])
            .args(["--initial-cluster-token", "keelson-test"])
            .args(["--initial-cluster-state", "new"])
            // Fast elections: members on one machine answer heartbeats in microseconds.
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
            .stdout(log.try_clone().expect("log"))
            .stderr(log);
        if let Some(tls) = &self.tls {
            cmd.arg("--client-cert-auth")
                .arg("--trusted-ca-file")
                .arg(&tls.ca)
                .arg("--cert-file")
                .arg(&tls.cert)
                .arg("--key-file")
                .arg(&tls.key);
        }
        self.child = Some(cmd.spawn().expect("spawn etcd"));
        self.started = true;
    }

    /// SIGKILL: no chance to flush or say goodbye to its peers.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Fails the test with the member's log if it exited.
    fn check_alive(&mut self) {
        if let Some(child) = self.child.as_mut()
            && let Ok(Some(status)) = child.try_wait()
        {
            panic!("etcd {} exited with {status}:\n{}", self.name, self.log());
        }
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A running etcd cluster (one or three members) in a temporary directory.
pub struct Cluster {
    pub members: Vec<Member>,
    pub dir: tempfile::TempDir,
}

impl Cluster {
    /// A single member, started and serving.
    pub async fn single() -> Cluster {
        Self::start(1, None).await
    }

    /// Three members, started and serving (a leader is elected).
    pub async fn three() -> Cluster {
        Self::start(3, None).await
    }

    /// A single member serving TLS with `tls`, requiring client certificates.
    pub async fn single_tls(tls: TlsFiles) -> Cluster {
        Self::start(1, Some(tls)).await
    }

    async fn start(n: usize, tls: Option<TlsFiles>) -> Cluster {
        let dir = tempfile::tempdir().expect("temp dir");
        let names: Vec<String> = (0..n).map(|i| format!("m{i}")).collect();
        let peers: Vec<u16> = (0..n).map(|_| free_port()).collect();
        let initial_cluster = names
            .iter()
            .zip(&peers)
            .map(|(name, port)| format!("{name}={}", Member::peer_url(*port)))
            .collect::<Vec<_>>()
            .join(",");
        let members = names
            .into_iter()
            .zip(peers)
            .map(|(name, peer_port)| Member {
                data_dir: dir.path().join(&name),
                log: dir.path().join(format!("{name}.log")),
                name,
                client_port: free_port(),
                peer_port,
                initial_cluster: initial_cluster.clone(),
                tls: tls.clone(),
                child: None,
                started: false,
            })
            .collect();
        let mut cluster = Cluster { members, dir };
        for m in &mut cluster.members {
            m.start();
        }
        cluster.wait_serving().await;
        cluster
    }

    pub fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(Member::client_url).collect()
    }

    pub fn tls(&self) -> Option<EtcdTls> {
        let files = self.members.first()?.tls.as_ref()?;
        Some(
            EtcdTls::from_files(
                Some(&files.ca),
                Some(&files.client_cert),
                Some(&files.client_key),
            )
            .expect("read the test certificates"),
        )
    }

    /// A store on this cluster with automatic compaction off (the conformance suite's
    /// assumption) and short timeouts (so outage tests finish quickly).
    pub async fn store(&self) -> Arc<EtcdStore> {
        EtcdStore::connect(&self.endpoints(), self.tls(), test_options())
            .await
            .unwrap_or_else(|e| panic!("connect to etcd: {e}\n{}", self.logs()))
    }

    pub fn logs(&self) -> String {
        self.members
            .iter()
            .map(|m| format!("--- {} ---\n{}", m.name, m.log()))
            .collect()
    }

    pub fn kill(&mut self, i: usize) {
        self.members[i].kill();
    }

    pub fn restart(&mut self, i: usize) {
        self.members[i].kill();
        self.members[i].start();
    }

    /// Waits until a linearizable read succeeds through every running member.
    pub async fn wait_serving(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        for i in 0..self.members.len() {
            if !self.members[i].is_running() {
                continue;
            }
            loop {
                self.members[i].check_alive();
                let endpoint = [self.members[i].client_url()];
                let ready = match EtcdStore::connect(&endpoint, self.tls(), probe_options()).await {
                    Ok(store) => store.current_revision().await.is_ok(),
                    Err(_) => false,
                };
                if ready {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "etcd did not start serving within 30 s:\n{}",
                    self.logs()
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

pub fn test_options() -> EtcdOptions {
    EtcdOptions {
        auto_compaction: None,
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(3),
        unavailable_retry: Duration::from_secs(2),
        ..EtcdOptions::default()
    }
}

fn probe_options() -> EtcdOptions {
    EtcdOptions {
        connect_timeout: Duration::from_millis(500),
        request_timeout: Duration::from_secs(1),
        unavailable_retry: Duration::from_millis(500),
        ..test_options()
    }
}

/// Asserts `e` is a transient failure (etcd down, no leader, slow), as an outage must produce.
#[track_caller]
pub fn assert_transient(e: &StoreError) {
    assert!(
        matches!(e, StoreError::Unavailable(_) | StoreError::Timeout(_)),
        "expected Unavailable or Timeout, got {e:?}"
    );
}

/// Retries `f` until it succeeds or `timeout` passes.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        match f().await {
            Ok(v) => return v,
            Err(e) if Instant::now() < deadline => {
                if std::env::var_os("ETCD_TEST_VERBOSE").is_some() {
                    eprintln!("{what}: {e}");
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("{what}: still failing after {timeout:?}: {e}"),
        }
    }
}
