//! Shared end-to-end harness: starts a real `keelson server` in a temporary directory and drives
//! it with the real `kubectl` (and `curl` for raw HTTP checks).
#![allow(dead_code)]

pub mod etcd;
pub mod hollow;
pub mod http;

use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const KUBECTL: &str = "/usr/bin/kubectl";

/// The ConfigMap the root-CA publisher puts in every namespace: tests that count their own
/// ConfigMaps leave it out.
pub const ROOT_CA_CONFIGMAP: &str = "kube-root-ca.crt";

/// Whether a listed item is one the test made (not the root-CA publisher's ConfigMap).
pub fn made_by_test(item: &serde_json::Value) -> bool {
    item["metadata"]["name"] != ROOT_CA_CONFIGMAP
}

/// A running server, killed when dropped.
pub struct Cluster {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub addr: SocketAddr,
    /// Time from spawn to the kubeconfig appearing and /readyz answering ok.
    pub start_time: Duration,
    /// Arguments added to `keelson server` (every start, restarts included).
    extra_args: Vec<String>,
}

/// How to start a server beyond the defaults.
#[derive(Clone, Debug, Default)]
pub struct ServerOptions {
    /// Arguments added to `keelson server`, e.g. `--datastore etcd://127.0.0.1:2379`.
    pub extra_args: Vec<String>,
    /// A data directory whose cluster CA (`tls/ca.crt`, `tls/ca.key`) the new server should
    /// use, so that servers sharing one etcd trust each other's clients.
    pub share_ca_with: Option<PathBuf>,
}

pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Cluster {
    pub fn start() -> Cluster {
        Cluster::start_with(ServerOptions::default())
    }

    /// Starts a server with extra arguments and, optionally, another server's CA.
    pub fn start_with(options: ServerOptions) -> Cluster {
        let dir = tempfile::tempdir().expect("temp dir");
        if let Some(other) = &options.share_ca_with {
            let tls = dir.path().join("tls");
            std::fs::create_dir_all(&tls).expect("tls dir");
            for file in ["ca.crt", "ca.key"] {
                std::fs::copy(other.join("tls").join(file), tls.join(file)).expect("copy the CA");
            }
        }
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
        let mut c = Cluster {
            child: None,
            dir,
            addr,
            start_time: Duration::ZERO,
            extra_args: options.extra_args,
        };
        c.spawn();
        c
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig.yaml")
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("server.log"))
            .expect("log file");
        let started = Instant::now();
        let child = Command::new(env!("CARGO_BIN_EXE_keelson"))
            .args(["server", "--data-dir"])
            .arg(self.dir.path())
            .args(["--bind", &self.addr.to_string()])
            .args(&self.extra_args)
            .env("KEELSON_LOG", "info")
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn keelson");
        self.child = Some(child);
        self.wait_ready(started);
    }

    fn wait_ready(&mut self, started: Instant) {
        let deadline = started + Duration::from_secs(60);
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!(
                    "keelson exited with {status} before becoming ready:\n{}",
                    self.log()
                );
            }
            if self.kubeconfig().exists() {
                let (code, body) = self.curl("GET", "/readyz", None, None);
                if code == 200 && body == "ok" {
                    self.start_time = started.elapsed();
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "keelson did not become ready in 60 s:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// Stops the server with SIGKILL (no chance to flush anything).
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stops the server gracefully (SIGTERM).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill").arg(c.id().to_string()).status();
            let _ = c.wait();
        }
    }

    pub fn restart(&mut self) {
        self.stop();
        std::fs::remove_file(self.kubeconfig()).ok();
        self.spawn();
    }

    pub fn kill9_and_restart(&mut self) {
        self.kill9();
        std::fs::remove_file(self.kubeconfig()).ok();
        self.spawn();
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    fn kubectl_cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(KUBECTL);
        cmd.args(args)
            .env("KUBECONFIG", self.kubeconfig())
            .env_remove("KUBECTL_EXTERNAL_DIFF");
        cmd
    }

    /// Runs kubectl and returns its output, whatever the exit code.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        self.kubectl_cmd(args).output().expect("run kubectl")
    }

    /// Runs kubectl with `stdin` as standard input.
    pub fn kubectl_stdin(&self, args: &[&str], stdin: &str) -> Output {
        let mut child = self
            .kubectl_cmd(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run kubectl");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin.as_bytes())
            .expect("write stdin");
        child.wait_with_output().expect("kubectl output")
    }

    /// Runs kubectl, asserts success, returns stdout.
    #[track_caller]
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert_success(args, &out);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `kubectl apply -f -` style: stdin, asserts success, returns stdout.
    #[track_caller]
    pub fn ok_stdin(&self, args: &[&str], stdin: &str) -> String {
        let out = self.kubectl_stdin(args, stdin);
        assert_success(args, &out);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs kubectl, asserts failure, returns stderr.
    #[track_caller]
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            !out.status.success(),
            "kubectl {args:?} unexpectedly succeeded:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// `kubectl get -o json` parsed.
    #[track_caller]
    pub fn get_json(&self, args: &[&str]) -> serde_json::Value {
        let mut a = vec!["get"];
        a.extend_from_slice(args);
        a.extend_from_slice(&["-o", "json"]);
        serde_json::from_str(&self.ok(&a)).expect("kubectl printed JSON")
    }

    /// A raw HTTPS request with the admin certificate (or none with `anonymous`).
    pub fn curl_as(
        &self,
        anonymous: bool,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
        content_type: Option<&str>,
    ) -> (u16, String) {
        let tls = self.dir.path().join("tls");
        let mut cmd = Command::new("curl");
        cmd.args([
            "-sS",
            "-o",
            "-",
            "-w",
            "\n%{http_code}",
            "-X",
            method,
            "--cacert",
        ])
        .arg(tls.join("ca.crt"));
        if !anonymous {
            cmd.arg("--cert")
                .arg(tls.join("admin.crt"))
                .arg("--key")
                .arg(tls.join("admin.key"));
        }
        if let Some(ct) = content_type {
            cmd.args(["-H", &format!("Content-Type: {ct}")]);
        }
        let body_file;
        if let Some(b) = body {
            body_file = self.dir.path().join(format!("body-{}", rand_suffix()));
            std::fs::write(&body_file, b).expect("body file");
            cmd.arg("--data-binary")
                .arg(format!("@{}", body_file.display()));
        }
        cmd.arg(format!("https://{}{path}", self.addr));
        let out = cmd.output().expect("run curl");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
        (code.trim().parse().unwrap_or(0), body.to_string())
    }

    pub fn curl(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
        content_type: Option<&str>,
    ) -> (u16, String) {
        self.curl_as(false, method, path, body, content_type)
    }

    /// Streams a watch for `seconds` and returns the events received (one JSON object each).
    pub fn watch_events(&self, path: &str, seconds: u32) -> Vec<serde_json::Value> {
        let child = self.watch_spawn(path, seconds);
        Self::watch_collect(child)
    }

    /// Starts a watch in the background (curl); collect it with [`Cluster::watch_collect`].
    pub fn watch_spawn(&self, path: &str, seconds: u32) -> Child {
        let tls = self.dir.path().join("tls");
        Command::new("curl")
            .args(["-sS", "-N", "--max-time", &seconds.to_string(), "--cacert"])
            .arg(tls.join("ca.crt"))
            .arg("--cert")
            .arg(tls.join("admin.crt"))
            .arg("--key")
            .arg(tls.join("admin.key"))
            .arg(format!("https://{}{path}", self.addr))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("run curl")
    }

    pub fn watch_collect(child: Child) -> Vec<serde_json::Value> {
        let out = child.wait_with_output().expect("curl output");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("watch line is not JSON ({e}): {l}"))
            })
            .collect()
    }

    /// A raw request whose response must be a `Status` with `code`; returns the Status.
    #[track_caller]
    pub fn status(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
        content_type: Option<&str>,
        code: u16,
    ) -> serde_json::Value {
        let (got, text) = self.curl(method, path, body, content_type);
        assert_eq!(
            got, code,
            "{method} {path}: expected HTTP {code}, got {got}: {text}"
        );
        let v: serde_json::Value = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("{method} {path}: not JSON: {text}"));
        assert_eq!(v["kind"], "Status", "{text}");
        assert_eq!(v["code"], code, "{text}");
        v
    }

    /// Polls `f` until it returns true, failing after `timeout`.
    #[track_caller]
    pub fn eventually(&self, timeout: Duration, what: &str, mut f: impl FnMut() -> bool) {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if f() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("timed out waiting for {what}\n{}", self.log());
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

#[track_caller]
pub fn assert_success(args: &[&str], out: &Output) {
    assert!(
        out.status.success(),
        "kubectl {args:?} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A small seeded random source (SplitMix64) for tests that pick moments and choices at random:
/// the seed is printed, and `KEELSON_TEST_SEED=<seed>` replays a failing run.
pub struct TestRng(u64);

impl TestRng {
    /// Seeds from `KEELSON_TEST_SEED`, else from the clock; prints the seed under `test`'s name.
    pub fn from_env(test: &str) -> TestRng {
        let seed = std::env::var("KEELSON_TEST_SEED")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(1)
            });
        eprintln!("{test}: seed {seed} (replay with KEELSON_TEST_SEED={seed})");
        TestRng(seed)
    }

    pub fn seeded(seed: u64) -> TestRng {
        TestRng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// True with probability `percent`/100.
    pub fn percent(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// Uniform in `lo..=hi` milliseconds.
    pub fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.below(hi.saturating_sub(lo) + 1))
    }
}
