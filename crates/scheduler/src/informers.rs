//! The watches that feed the scheduler: pods, nodes, namespaces, PodDisruptionBudgets and the
//! workloads default topology spreading needs (Services, ReplicaSets, ReplicationControllers,
//! StatefulSets), each a kube-runtime watcher that lists, then watches, and relists after a
//! gap.
//!
//! Every watch keeps the last version of each object it saw, so handlers get the old object
//! with each update, and a relist turns objects that vanished during a gap into deletions:
//! nothing stays in the cache because a DELETED event was missed. An object recreated under the
//! same name (new UID) is a deletion followed by an addition.
//!
//! What the events mean for scheduling (upstream's `eventhandlers.go`):
//! * a pod bound to a node goes to the [`Cache`] (confirming an assumed pod) and leaves the
//!   queue; a pending pod of one of our profiles, not being deleted and not assumed, goes to
//!   the [`SchedulingQueue`];
//! * changes that may let waiting pods fit (pods leaving, nodes changing, ...) are replayed to
//!   the queue as [`ClusterEvent`]s.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{Namespace, Node, Pod, ReplicationController, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::cache::{self, Cache, WorkloadKey};
use crate::framework::{ClusterEvent, WorkloadSelector};
use crate::profile::Frameworks;
use crate::queue::SchedulingQueue;

/// One change as a handler sees it.
#[derive(Debug)]
pub enum Delta<K> {
    /// Added (`old` is `None`) or updated.
    Upsert {
        old: Option<Arc<K>>,
        new: Arc<K>,
    },
    Deleted(Arc<K>),
}

/// Counts the watches that finished their first list; the scheduler waits for all of them
/// before its first cycle, so it never schedules against a half-listed cluster.
#[derive(Clone)]
pub struct Synced {
    tx: Arc<watch::Sender<usize>>,
}

impl Synced {
    fn new() -> (Synced, watch::Receiver<usize>) {
        let (tx, rx) = watch::channel(0);
        (Synced { tx: Arc::new(tx) }, rx)
    }

    fn mark(&self) {
        self.tx.send_modify(|n| *n += 1);
    }
}

fn key_of<K: Resource>(o: &K) -> String {
    let m = o.meta();
    format!(
        "{}/{}",
        m.namespace.as_deref().unwrap_or_default(),
        m.name.as_deref().unwrap_or_default()
    )
}

fn upsert<K: Resource, F: FnMut(Delta<K>)>(
    known: &mut HashMap<String, Arc<K>>,
    obj: K,
    handle: &mut F,
) {
    let key = key_of(&obj);
    let new = Arc::new(obj);
    let old = known.insert(key, new.clone());
    match old {
        Some(old) if old.meta().uid != new.meta().uid => {
            handle(Delta::Deleted(old));
            handle(Delta::Upsert { old: None, new });
        }
        old => handle(Delta::Upsert { old, new }),
    }
}

/// Runs one watch forever (kube-runtime retries with backoff), handing every change to
/// `handle`.
async fn run_informer<K, F>(api: Api<K>, config: watcher::Config, synced: Synced, mut handle: F)
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default,
    F: FnMut(Delta<K>) + Send,
{
    let kind = K::kind(&Default::default()).to_string();
    let mut known: HashMap<String, Arc<K>> = HashMap::new();
    // Keys listed so far in the current (re)list.
    let mut relisting: Option<HashMap<String, ()>> = None;
    let mut first_sync = true;
    let stream = watcher::watcher(api, config).default_backoff();
    futures::pin_mut!(stream);
    while let Some(event) = stream.next().await {
        match event {
            Ok(Event::Init) => relisting = Some(HashMap::new()),
            Ok(Event::InitApply(obj)) => {
                if let Some(seen) = relisting.as_mut() {
                    seen.insert(key_of(&obj), ());
                }
                upsert(&mut known, obj, &mut handle);
            }
            Ok(Event::InitDone) => {
                if let Some(seen) = relisting.take() {
                    let gone: Vec<String> = known
                        .keys()
                        .filter(|k| !seen.contains_key(*k))
                        .cloned()
                        .collect();
                    for key in gone {
                        if let Some(old) = known.remove(&key) {
                            handle(Delta::Deleted(old));
                        }
                    }
                }
                if first_sync {
                    first_sync = false;
                    tracing::debug!(kind = %kind, objects = known.len(), "scheduler watch synced");
                    synced.mark();
                }
            }
            Ok(Event::Apply(obj)) => upsert(&mut known, obj, &mut handle),
            Ok(Event::Delete(obj)) => {
                known.remove(&key_of(&obj));
                handle(Delta::Deleted(Arc::new(obj)));
            }
            Err(e) => {
                tracing::warn!(kind = %kind, error = %e, "scheduler watch failed; retrying");
            }
        }
    }
}

/// Where the watches deliver.
#[derive(Clone)]
pub struct Sinks {
    pub cache: Arc<Cache>,
    pub queue: Arc<SchedulingQueue>,
    pub frameworks: Arc<Frameworks>,
}

impl Sinks {
    fn event(&self, e: Option<ClusterEvent>) {
        if let Some(e) = e {
            self.queue.move_all_to_active_or_backoff(e);
        }
    }

    /// Whether a pending pod is ours to schedule.
    fn responsible_for(&self, pod: &Pod) -> bool {
        self.frameworks.get(cache::scheduler_name(pod)).is_some()
    }

    pub fn on_pod(&self, delta: Delta<Pod>) {
        match delta {
            Delta::Upsert { old, new } => {
                if cache::is_assigned(&new) {
                    // Bound (by us or anyone): it is no longer pending.
                    if old.as_deref().is_none_or(|o| !cache::is_assigned(o)) {
                        self.queue.delete(&new);
                    }
                    let e = self.cache.set_pod(new);
                    self.event(e);
                } else if self.responsible_for(&new) {
                    let uid = new.metadata.uid.as_deref().unwrap_or_default();
                    if cache::is_terminating(&new) {
                        self.queue.delete(&new);
                    } else if self.cache.is_assumed(uid) {
                        // Its binding is in flight; a late update of the pending version
                        // must not queue it again.
                    } else if old.is_some() {
                        self.queue.update(new);
                    } else {
                        self.queue.add(new);
                    }
                }
            }
            Delta::Deleted(pod) => {
                if self.cache.delete_pod(&pod) {
                    self.event(Some(ClusterEvent::PodDelete));
                }
                self.queue.delete(&pod);
            }
        }
    }

    pub fn on_node(&self, delta: Delta<Node>) {
        match delta {
            Delta::Upsert { new, .. } => {
                let e = self.cache.set_node(new);
                self.event(e);
            }
            Delta::Deleted(node) => {
                let name = node.metadata.name.as_deref().unwrap_or_default();
                if self.cache.delete_node(name) {
                    self.event(Some(ClusterEvent::NodeDelete));
                }
            }
        }
    }

    pub fn on_namespace(&self, delta: Delta<Namespace>) {
        let changed = match delta {
            Delta::Upsert { new, .. } => self.cache.set_namespace(&new),
            Delta::Deleted(ns) => self
                .cache
                .delete_namespace(ns.metadata.name.as_deref().unwrap_or_default()),
        };
        if changed {
            self.event(Some(ClusterEvent::NamespaceChange));
        }
    }

    pub fn on_pdb(&self, delta: Delta<PodDisruptionBudget>) {
        match delta {
            Delta::Upsert { new, .. } => self.cache.set_pdb(new),
            Delta::Deleted(pdb) => {
                self.cache.delete_pdb(
                    pdb.metadata.namespace.as_deref().unwrap_or_default(),
                    pdb.metadata.name.as_deref().unwrap_or_default(),
                );
            }
        }
        self.event(Some(ClusterEvent::PdbChange));
    }

    fn on_workload<K>(
        &self,
        delta: Delta<K>,
        selector: fn(&K) -> (WorkloadKey, Option<WorkloadSelector>),
    ) {
        match delta {
            Delta::Upsert { new, .. } => {
                let (key, sel) = selector(&new);
                self.cache.set_workload(key, sel);
            }
            Delta::Deleted(obj) => {
                let (key, _) = selector(&obj);
                self.cache.set_workload(key, None);
            }
        }
    }
}

/// How many watches [`spawn`] starts (the value [`Synced`] counts up to).
pub const WATCHES: usize = 8;

/// Starts every watch on `tasks`. The receiver counts the watches that have finished their
/// first list; scheduling may start once it reaches [`WATCHES`].
pub fn spawn(client: &Client, sinks: &Sinks, tasks: &mut JoinSet<()>) -> watch::Receiver<usize> {
    let (synced, rx) = Synced::new();
    // Lists may be served from the API server's watch cache: a slightly stale start is
    // corrected by the watch that follows.
    let cfg = || watcher::Config::default().any_semantic();
    // Terminal pods hold no resources; the API server reports a pod turning terminal as a
    // deletion from this selection.
    let pods_cfg = cfg().fields("status.phase!=Succeeded,status.phase!=Failed");

    let s = sinks.clone();
    tasks.spawn(run_informer(
        Api::<Pod>::all(client.clone()),
        pods_cfg,
        synced.clone(),
        move |d| s.on_pod(d),
    ));
    let s = sinks.clone();
    tasks.spawn(run_informer(
        Api::<Node>::all(client.clone()),
        cfg(),
        synced.clone(),
        move |d| s.on_node(d),
    ));
    let s = sinks.clone();
    tasks.spawn(run_informer(
        Api::<Namespace>::all(client.clone()),
        cfg(),
        synced.clone(),
        move |d| s.on_namespace(d),
    ));
    let s = sinks.clone();
    tasks.spawn(run_informer(
        Api::<PodDisruptionBudget>::all(client.clone()),
        cfg(),
        synced.clone(),
        move |d| s.on_pdb(d),
    ));
    let s = sinks.clone();
    tasks.spawn(run_informer(
        Api::<Service>::all(client.clone()),
        cfg(),
        synced.clone(),
        move |d| s.on_workload(d, cache::service_selector),
    ));
    let s = sinks.clone();
    tasks.spawn(run_informer(
        Api::<ReplicaSet>::all(client.clone()),
        cfg(),
        synced.clone(),
        move |d| s.on_workload(d, cache::replica_set_selector),
    ));
    let s = sinks.clone();
    tasks.spawn(run_informer(
        Api::<ReplicationController>::all(client.clone()),
        cfg(),
        synced.clone(),
        move |d| s.on_workload(d, cache::replication_controller_selector),
    ));
    let s = sinks.clone();
    tasks.spawn(run_informer(
        Api::<StatefulSet>::all(client.clone()),
        cfg(),
        synced,
        move |d| s.on_workload(d, cache::stateful_set_selector),
    ));
    rx
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SchedulerConfiguration;
    use crate::queue::QueueConfig;
    use crate::registry::Registry;
    use serde_json::json;

    fn sinks() -> Sinks {
        let frameworks = Frameworks::new(
            &SchedulerConfiguration::default(),
            &Registry::default_plugins(),
        )
        .unwrap();
        Sinks {
            cache: Arc::new(Cache::default()),
            queue: Arc::new(SchedulingQueue::new(
                QueueConfig::default(),
                frameworks.plugin_events(),
            )),
            frameworks: Arc::new(frameworks),
        }
    }

    fn pod(name: &str, v: serde_json::Value) -> Arc<Pod> {
        let mut p = json!({
            "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}")},
            "spec": {"containers": [{"name": "c"}]}
        });
        if let (Some(spec), Some(extra)) = (p["spec"].as_object_mut(), v.as_object()) {
            for (k, val) in extra {
                spec.insert(k.clone(), val.clone());
            }
        }
        Arc::new(serde_json::from_value(p).unwrap())
    }

    fn node(name: &str) -> Arc<Node> {
        Arc::new(
            serde_json::from_value(json!({"metadata": {"name": name},
                "status": {"allocatable": {"cpu": "1", "pods": "10"}}}))
            .unwrap(),
        )
    }

    fn queued(s: &Sinks) -> Vec<String> {
        let mut v: Vec<String> = s
            .queue
            .pending_pods()
            .into_iter()
            .map(|(p, _)| p.pod_info.name().to_string())
            .collect();
        v.sort();
        v
    }

    #[tokio::test]
    async fn pending_pods_of_our_profiles_are_queued_and_bound_ones_cached() {
        let s = sinks();
        s.on_node(Delta::Upsert {
            old: None,
            new: node("n1"),
        });
        let mine = pod("mine", json!({}));
        s.on_pod(Delta::Upsert {
            old: None,
            new: mine.clone(),
        });
        s.on_pod(Delta::Upsert {
            old: None,
            new: pod("other", json!({"schedulerName": "someone-else"})),
        });
        let mut dying = (*pod("dying", json!({}))).clone();
        dying.metadata.deletion_timestamp = Some(
            k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::now()),
        );
        s.on_pod(Delta::Upsert {
            old: None,
            new: Arc::new(dying),
        });
        assert_eq!(queued(&s), ["mine"]);

        // Bound by someone: out of the queue, into the node.
        let bound = pod("mine", json!({"nodeName": "n1"}));
        s.on_pod(Delta::Upsert {
            old: Some(mine),
            new: bound.clone(),
        });
        assert!(queued(&s).is_empty());
        assert_eq!(s.cache.pod_node("uid-mine").as_deref(), Some("n1"));

        s.on_pod(Delta::Deleted(bound));
        assert_eq!(s.cache.pod_node("uid-mine"), None);
    }

    #[tokio::test]
    async fn an_assumed_pod_is_not_queued_again() {
        let s = sinks();
        let p = pod("p", json!({}));
        s.cache
            .assume_pod(Arc::new(crate::framework::PodInfo::new(p.clone())), "n1")
            .unwrap();
        s.on_pod(Delta::Upsert {
            old: Some(p.clone()),
            new: p,
        });
        assert!(queued(&s).is_empty());
    }
}
