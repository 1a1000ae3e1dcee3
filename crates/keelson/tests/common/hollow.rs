//! `keelson simulate` as a test fixture: hollow nodes that register, heartbeat and run the
//! pods bound to them, so controllers and the scheduler can be tested without containers.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::Cluster;

/// A running `keelson simulate`, killed if the test ends early.
pub struct Simulator {
    child: Option<Child>,
    out: PathBuf,
    err: PathBuf,
}

impl Simulator {
    pub fn start(c: &Cluster, args: &[&str]) -> Simulator {
        let out = c.data_dir().join("simulate.out");
        let err = c.data_dir().join("simulate.err");
        let child = Command::new(env!("CARGO_BIN_EXE_keelson"))
            .arg("simulate")
            .args(args)
            .arg("--kubeconfig")
            .arg(c.kubeconfig())
            .env("KEELSON_LOG", "info")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap())
            .spawn()
            .unwrap();
        Simulator {
            child: Some(child),
            out,
            err,
        }
    }

    pub fn output(&self) -> String {
        format!(
            "stdout:\n{}\nstderr:\n{}",
            std::fs::read_to_string(&self.out).unwrap_or_default(),
            std::fs::read_to_string(&self.err).unwrap_or_default()
        )
    }

    /// SIGTERM, then waits (at most 20 s) for a clean exit; returns stdout.
    pub fn stop(&mut self) -> String {
        let mut child = self.child.take().unwrap();
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                assert!(
                    status.success(),
                    "simulate exited with {status}\n{}",
                    self.output()
                );
                return std::fs::read_to_string(&self.out).unwrap();
            }
            assert!(
                Instant::now() < deadline,
                "simulate did not stop\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
