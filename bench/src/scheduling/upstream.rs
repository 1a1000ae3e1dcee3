//! The peer: upstream kube-scheduler v1.20.2 as a separate process against the same keelson
//! API server, with one profile named [`PROFILE`] so that it takes only the pods that ask for
//! it (and keelson's own `default-scheduler` leaves them alone).
//!
//! DefaultPreemption is disabled in that profile: v1.20 lists policy/v1beta1
//! PodDisruptionBudgets for it, which keelson does not serve, and no pod in these workloads
//! ever needs preempting. Its health and metrics servers are bound to free loopback ports (the
//! insecure port 10251 would otherwise be taken, whatever `--port=0` says next to `--config`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::keelson::free_ports;

/// The profile (`schedulerName`) of the peer scheduler.
pub const PROFILE: &str = "upstream-scheduler";
/// Where the release binary is cached on these machines.
pub const DEFAULT_BIN: &str = "/var/cache/keelson-upstream/v1.20.2/kube-scheduler";

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("writing {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("starting {bin}: {source}")]
    Spawn { bin: String, source: std::io::Error },
    #[error("no free loopback port: {0}")]
    Port(String),
}

/// The KubeSchedulerConfiguration the peer runs with.
pub fn config_yaml(kubeconfig: &Path, healthz_port: u16, metrics_port: u16) -> String {
    format!(
        "apiVersion: kubescheduler.config.k8s.io/v1beta1
kind: KubeSchedulerConfiguration
leaderElection:
  leaderElect: false
clientConnection:
  kubeconfig: {kubeconfig}
  contentType: application/json
  qps: 5000
  burst: 5000
healthzBindAddress: 127.0.0.1:{healthz_port}
metricsBindAddress: 127.0.0.1:{metrics_port}
profiles:
- schedulerName: {PROFILE}
  plugins:
    postFilter:
      disabled:
      - name: DefaultPreemption
",
        kubeconfig = kubeconfig.display(),
    )
}

/// A running kube-scheduler. Dropping it kills the process.
pub struct Upstream {
    child: Option<Child>,
    pub log: PathBuf,
}

impl Upstream {
    /// Writes the configuration into `dir` and starts the scheduler; its log goes to
    /// `dir/kube-scheduler.log` (appended, one file for every start).
    pub fn start(bin: &Path, kubeconfig: &Path, dir: &Path) -> Result<Upstream, UpstreamError> {
        let ports = free_ports(2).map_err(|e| UpstreamError::Port(e.to_string()))?;
        let (h, m) = match ports.as_slice() {
            [h, m] => (*h, *m),
            _ => return Err(UpstreamError::Port("asked for two, got fewer".into())),
        };
        let write_err = |path: &Path| {
            let path = path.display().to_string();
            move |source| UpstreamError::Write { path, source }
        };
        let config = dir.join("kube-scheduler.yaml");
        std::fs::write(&config, config_yaml(kubeconfig, h, m)).map_err(write_err(&config))?;
        let log = dir.join("kube-scheduler.log");
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(write_err(&log))?;
        let err = out.try_clone().map_err(write_err(&log))?;
        let child = Command::new(bin)
            .arg("--config")
            .arg(&config)
            .arg("--secure-port=0")
            .arg("--port=0")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|source| UpstreamError::Spawn {
                bin: bin.display().to_string(),
                source,
            })?;
        Ok(Upstream {
            child: Some(child),
            log,
        })
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// If it exited on its own: how, with its last log lines.
    pub fn exited(&mut self) -> Option<String> {
        let status = self.child.as_mut()?.try_wait().ok()??;
        self.child = None;
        Some(format!(
            "kube-scheduler exited with {status}:\n{}",
            super::nodes::log_tail(&self.log, 15)
        ))
    }

    pub fn log_tail(&self, n: usize) -> String {
        super::nodes::log_tail(&self.log, n)
    }

    /// SIGTERM, then SIGKILL after 10 s.
    pub async fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        crate::procfs::terminate(&mut child, Duration::from_secs(10)).await;
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_names_the_profile_and_disables_preemption() {
        let y = config_yaml(Path::new("/d/kubeconfig.yaml"), 4001, 4002);
        assert!(y.contains("kind: KubeSchedulerConfiguration\n"));
        assert!(y.contains("  leaderElect: false\n"));
        assert!(y.contains("  kubeconfig: /d/kubeconfig.yaml\n"));
        assert!(y.contains("  contentType: application/json\n"));
        assert!(y.contains("  qps: 5000\n  burst: 5000\n"));
        assert!(y.contains("healthzBindAddress: 127.0.0.1:4001\n"));
        assert!(y.contains("metricsBindAddress: 127.0.0.1:4002\n"));
        assert!(y.contains("- schedulerName: upstream-scheduler\n"));
        assert!(y.contains("      disabled:\n      - name: DefaultPreemption\n"));
    }
}
