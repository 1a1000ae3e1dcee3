//! The controller manager: runs every enabled controller inside `keelson server`, as
//! kube-controller-manager does, but only while this process holds the
//! `kube-system/kube-controller-manager` Lease.
//!
//! Guarantees:
//! * At most one process runs the controllers at a time (the Lease's guarantee, see the
//!   `leader` crate): with several servers sharing one etcd, the others wait as candidates.
//! * Each leadership term starts from scratch — fresh informers (a full list), queues and
//!   expectations — and everything of a term is aborted the moment leadership is lost, so no
//!   controller acts on the state of a term it no longer leads.
//! * Controllers are level-triggered: a new term (after a restart or a failover) converges
//!   from whatever state the cluster is in, without duplicate work.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use controller_runtime::{Context, Controller, Settings};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// Where the Lease lives (upstream's names).
pub const LEASE_NAMESPACE: &str = "kube-system";
pub const LEASE_NAME: &str = "kube-controller-manager";

/// Why the manager could not start.
#[derive(Debug, thiserror::Error)]
pub enum ManagerError {
    #[error(
        "unknown controller {name:?} in --controllers (known: {known}; use `*` for all, `-NAME` to disable one)"
    )]
    UnknownController { name: String, known: String },
}

/// How to run.
#[derive(Clone, Debug)]
pub struct Options {
    /// This candidate's identity in the Lease.
    pub identity: String,
    /// Which controllers run, as upstream's `--controllers`: `*` (all), `NAME`, `-NAME`.
    pub controllers: Vec<String>,
    pub settings: Settings,
    /// Off: run at once, without a Lease (a single server that must not wait).
    pub leader_elect: bool,
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            identity: "keelson-controller-manager".to_owned(),
            controllers: vec!["*".to_owned()],
            settings: Settings::default(),
            leader_elect: true,
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// Every controller keelson has, in start order.
pub fn all_controllers() -> Vec<Controller> {
    [
        lifecycle_controllers::CONTROLLERS,
        replicaset_controller::CONTROLLERS,
        deployment_controller::CONTROLLERS,
        workload_controllers::CONTROLLERS,
        batch_controllers::CONTROLLERS,
        endpoint_controllers::CONTROLLERS,
        node_controllers::CONTROLLERS,
    ]
    .concat()
}

/// The controllers `spec` enables, in start order.
pub fn enabled(spec: &[String], all: &[Controller]) -> Result<Vec<Controller>, ManagerError> {
    let known: BTreeSet<&str> = all.iter().map(|c| c.name).collect();
    let mut star = false;
    let mut on = BTreeSet::new();
    let mut off = BTreeSet::new();
    for item in spec.iter().flat_map(|s| s.split(',')).map(str::trim) {
        let (set, name) = match item.strip_prefix('-') {
            Some(n) => (&mut off, n),
            None => (&mut on, item),
        };
        if name == "*" {
            star = true;
            continue;
        }
        if name.is_empty() {
            continue;
        }
        if !known.contains(name) {
            return Err(ManagerError::UnknownController {
                name: name.to_owned(),
                known: known.iter().copied().collect::<Vec<_>>().join(", "),
            });
        }
        set.insert(name.to_owned());
    }
    Ok(all
        .iter()
        .filter(|c| !off.contains(c.name) && (star || on.contains(c.name)))
        .copied()
        .collect())
}

/// Runs until `shutdown` turns true. Fails at once on an unknown controller name.
pub async fn run(
    client: kube::Client,
    options: Options,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), ManagerError> {
    let controllers = enabled(&options.controllers, &all_controllers())?;
    let names: Vec<&str> = controllers.iter().map(|c| c.name).collect();
    let settings = Arc::new(options.settings.clone());
    let mut leadership = options.leader_elect.then(|| {
        let mut lc = leader::Config::new(LEASE_NAMESPACE, LEASE_NAME, &options.identity);
        lc.lease_duration = options.lease_duration;
        lc.renew_deadline = options.renew_deadline;
        lc.retry_period = options.retry_period;
        let leases = Arc::new(leader::KubeLeases {
            client: client.clone(),
        });
        leader::LeaderElector::new(lc, leases)
            .spawn(shutdown.clone())
            .0
    });
    loop {
        if *shutdown.borrow() {
            return Ok(());
        }
        if let Some(l) = leadership.as_mut() {
            tokio::select! {
                _ = l.wait_for(true) => {}
                changed = shutdown.changed() => {
                    if changed.is_err() {
                        return Ok(());
                    }
                    continue;
                }
            }
        }
        tracing::info!(identity = %options.identity, controllers = ?names, "controller manager starting");
        let mut tasks = JoinSet::new();
        let ctx = Context::new(client.clone(), settings.clone(), &mut tasks);
        for c in &controllers {
            (c.start)(&ctx, &mut tasks);
        }
        ctx.informers.start();
        let lost = async {
            match leadership.as_mut() {
                Some(l) => l.wait_for(false).await,
                None => std::future::pending().await,
            }
        };
        let stop = tokio::select! {
            _ = lost => false,
            _ = shutdown.wait_for(|s| *s) => true,
        };
        ctx.informers.stop();
        tasks.abort_all();
        if stop {
            return Ok(());
        }
        tracing::warn!("controller manager lost leadership; controllers stopped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nothing(_: &Context, _: &mut JoinSet<()>) {}

    fn names(v: &[Controller]) -> Vec<&'static str> {
        v.iter().map(|c| c.name).collect()
    }

    #[test]
    fn controller_lists_follow_upstream_syntax() {
        let all = [
            Controller {
                name: "a",
                start: nothing,
            },
            Controller {
                name: "b",
                start: nothing,
            },
            Controller {
                name: "c",
                start: nothing,
            },
        ];
        let spec = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            names(&enabled(&spec(&["*"]), &all).unwrap()),
            ["a", "b", "c"]
        );
        assert_eq!(names(&enabled(&spec(&["*,-b"]), &all).unwrap()), ["a", "c"]);
        assert_eq!(
            names(&enabled(&spec(&["c", "a"]), &all).unwrap()),
            ["a", "c"]
        );
        assert_eq!(
            names(&enabled(&spec(&["-a"]), &all).unwrap()),
            Vec::<&str>::new()
        );
        let err = enabled(&spec(&["*", "-zz"]), &all).unwrap_err().to_string();
        assert!(err.contains("\"zz\"") && err.contains("a, b, c"), "{err}");
    }

    #[test]
    fn every_controller_name_is_unique() {
        let all = all_controllers();
        let unique: BTreeSet<&str> = all.iter().map(|c| c.name).collect();
        assert_eq!(unique.len(), all.len(), "{:?}", names(&all));
    }
}
