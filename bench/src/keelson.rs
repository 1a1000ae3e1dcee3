//! A `keelson server` child process: spawn it on a free loopback port, time it to readiness,
//! stop it gracefully, and read its resource figures.
//!
//! Readiness is what a client sees: the first `GET /readyz` that answers 200 `ok` over HTTPS
//! with the admin certificate. On a fresh data directory the certificates only exist once the
//! server wrote them, so the probe keeps retrying until they can be read and a handshake works.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::client::{self, Target};
use crate::procfs;

/// Time between readiness probes: small against a start-up of ~100 ms, large enough that the
/// probing does not steal the CPU the server is starting on.
const PROBE_INTERVAL: Duration = Duration::from_millis(2);
/// A server that is not ready in this time is reported as failed.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// SIGTERM, then SIGKILL after this long.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("starting {bin}: {source}")]
    Spawn { bin: String, source: std::io::Error },
    #[error("keelson exited with {status} before becoming ready; last log lines:\n{log}")]
    Exited {
        status: std::process::ExitStatus,
        log: String,
    },
    #[error("keelson was not ready after {0:?}; last log lines:\n{1}")]
    Timeout(Duration, String),
    #[error("opening the server log {path}: {source}")]
    Log {
        path: String,
        source: std::io::Error,
    },
    #[error("no free loopback port: {0}")]
    Port(std::io::Error),
}

/// A running server. Dropping it kills the process.
pub struct Server {
    child: Option<Child>,
    bin: PathBuf,
    data_dir: PathBuf,
    /// `--datastore` (None: the embedded store in the data directory).
    datastore: Option<String>,
    pub addr: SocketAddr,
    /// Spawn to first `ok` from /readyz.
    pub ready_after: Duration,
}

/// `n` distinct free TCP ports on 127.0.0.1: all are held bound at once (so they differ), then
/// released for the child process to bind right after.
pub fn free_ports(n: usize) -> Result<Vec<u16>, ServerError> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()
        .map_err(ServerError::Port)?;
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()).map_err(ServerError::Port))
        .collect()
}

impl Server {
    /// Starts `bin server --data-dir data_dir` on a free port and waits until it is ready.
    pub async fn start(bin: &Path, data_dir: &Path) -> Result<Server, ServerError> {
        Server::start_on(bin, data_dir, None).await
    }

    /// Like [`Server::start`], with `--datastore datastore` when given (e.g.
    /// `etcd://127.0.0.1:2379`); restarts keep it.
    pub async fn start_on(
        bin: &Path,
        data_dir: &Path,
        datastore: Option<&str>,
    ) -> Result<Server, ServerError> {
        let port = free_ports(1)?.first().copied().unwrap_or(0);
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut s = Server {
            child: None,
            bin: bin.to_path_buf(),
            data_dir: data_dir.to_path_buf(),
            datastore: datastore.map(str::to_string),
            addr,
            ready_after: Duration::ZERO,
        };
        s.spawn().await?;
        Ok(s)
    }

    /// Stops the server (SIGTERM) and starts it again on the same data directory and port.
    pub async fn restart(&mut self) -> Result<(), ServerError> {
        self.stop().await;
        self.spawn().await
    }

    async fn spawn(&mut self) -> Result<(), ServerError> {
        let log_path = self.log_path();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|source| ServerError::Log {
                path: log_path.display().to_string(),
                source,
            })?;
        let log_err = log.try_clone().map_err(|source| ServerError::Log {
            path: log_path.display().to_string(),
            source,
        })?;
        let mut cmd = Command::new(&self.bin);
        cmd.arg("server")
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--bind")
            .arg(self.addr.to_string());
        if let Some(ds) = &self.datastore {
            cmd.arg("--datastore").arg(ds);
        }
        let started = Instant::now();
        let child = cmd
            // Plain log lines (tracing-subscriber honours NO_COLOR) so they can be scanned.
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(|source| ServerError::Spawn {
                bin: self.bin.display().to_string(),
                source,
            })?;
        self.child = Some(child);
        self.ready_after = self.wait_ready(started).await?;
        Ok(())
    }

    async fn wait_ready(&mut self, started: Instant) -> Result<Duration, ServerError> {
        let readyz = client::uri("/readyz");
        let mut target: Option<Target> = None;
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                return Err(ServerError::Exited {
                    status,
                    log: self.log_tail(20),
                });
            }
            if target.is_none() {
                // Fails until the server has written its certificates (fresh data directory).
                target = Target::load(self.addr, &self.tls_dir()).ok();
            }
            if let Some(t) = &target {
                match t.connect().await {
                    Ok(mut conn) => {
                        if let Ok((status, body)) = conn.get(readyz.clone()).await
                            && status.is_success()
                            && body.as_ref() == b"ok"
                        {
                            return Ok(started.elapsed());
                        }
                    }
                    // A half-written certificate fails the handshake: read the files again.
                    Err(client::ClientError::Handshake { .. }) => target = None,
                    Err(_) => {}
                }
            }
            if started.elapsed() > READY_TIMEOUT {
                return Err(ServerError::Timeout(READY_TIMEOUT, self.log_tail(20)));
            }
            tokio::time::sleep(PROBE_INTERVAL).await;
        }
    }

    /// Graceful stop: SIGTERM, then SIGKILL if it does not exit in time. Returns how long the
    /// exit took.
    pub async fn stop(&mut self) -> Option<Duration> {
        let mut child = self.child.take()?;
        procfs::terminate(&mut child, STOP_TIMEOUT).await
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn tls_dir(&self) -> PathBuf {
        self.data_dir.join("tls")
    }

    pub fn target(&self) -> Result<Target, client::ClientError> {
        Target::load(self.addr, &self.tls_dir())
    }

    pub fn memory(&self) -> Option<procfs::Memory> {
        procfs::memory(self.pid()?).ok()
    }

    pub fn log_path(&self) -> PathBuf {
        self.data_dir.join("server.log")
    }

    /// If the server process has exited on its own (crashed, or shut itself down), how it
    /// exited and the last lines of its log; the process is then forgotten, so `pid` is None
    /// and a `restart` starts a new one.
    pub fn exited(&mut self, log_lines: usize) -> Option<String> {
        let status = self.child.as_mut()?.try_wait().ok()??;
        self.child = None;
        Some(format!(
            "keelson exited with {status}; last log lines:\n{}",
            self.log_tail(log_lines)
        ))
    }

    fn log_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Lines of a server log at WARN or ERROR level (tracing's default format puts the level in
/// the second column), and how many there were in all.
pub fn log_problems(path: &Path, keep: usize) -> (usize, Vec<String>) {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut count = 0;
    let mut kept = Vec::new();
    for raw in text.lines() {
        let line = strip_ansi(raw);
        // The readiness probe polls /readyz before the caches are synced: those 500s are the
        // expected "not yet", not a problem.
        if line.contains("path=/readyz") {
            continue;
        }
        if line.contains(" WARN ") || line.contains(" ERROR ") || line.contains("panicked") {
            count += 1;
            if kept.len() < keep {
                kept.push(line.chars().take(240).collect());
            }
        }
    }
    (count, kept)
}

/// Removes ANSI colour sequences (ESC '[' ... letter), in case the log was written coloured.
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_problems_counts_warnings_errors_and_panics() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("server.log");
        std::fs::write(
            &path,
            "2026-01-01T00:00:00Z  INFO apiserver: listening\n\
             2026-01-01T00:00:00Z  WARN apiserver::handler: request failed method=GET path=/readyz status=500\n\
             2026-01-01T00:00:01Z  WARN apiserver: slow watcher\n\
             2026-01-01T00:00:02Z \u{1b}[31mERROR\u{1b}[0m store: fsync failed\n\
             thread 'main' panicked at src/x.rs:1:1\n",
        )
        .expect("write log");
        let (n, kept) = log_problems(&path, 2);
        assert_eq!(n, 3);
        assert_eq!(kept.len(), 2);
        assert!(kept[0].contains("slow watcher"));
        assert_eq!(log_problems(&dir.path().join("missing"), 5), (0, vec![]));
    }
}
