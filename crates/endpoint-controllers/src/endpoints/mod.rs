//! The Endpoints controller (upstream's `pkg/controller/endpoint`): for every Service with a
//! selector, an Endpoints object of the same name listing the selected pods' addresses.
//!
//! Guarantees:
//! * Level-triggered: a sync reads the Service, its pods and the current Endpoints from the
//!   caches and writes only when the subsets, labels or capacity annotation differ.
//! * Services without a selector (and `ExternalName` Services) are left alone: their
//!   Endpoints are the user's. A deleted Service's Endpoints are deleted, and once per term
//!   every Endpoints object is checked for a Service (deletions missed while no controller
//!   ran), except leader-election records.
//! * Never acts on a cache older than its own last write: after replacing resourceVersion
//!   `r` of an Endpoints, a sync that still reads `r` is put off until the informer brings
//!   the newer version (upstream's stale-endpoints tracker).

pub mod object;
pub mod subsets;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use controller_runtime::{
    Action, Change, Context, Informer, Key, Reconcile, Recorder, WorkQueue, spawn_workers,
};
use k8s_openapi::api::core::v1::{Endpoints, Pod, Service};
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use tokio::task::JoinSet;

use crate::errors::{is_not_found, namespace_terminating};
use crate::membership::{self, selector};
use crate::trigger::TriggerTimes;

/// The controller's name in Events.
pub const COMPONENT: &str = "endpoint-controller";

/// Annotation of the leader-election records some components keep in Endpoints objects;
/// those have no Service and must survive.
const LEADER_ANNOTATION: &str = "control-plane.alpha.kubernetes.io/leader";

/// A sync refused because the cache lacks our last write is retried after this long if no
/// event retries it first.
const STALE_RETRY: Duration = Duration::from_secs(1);

/// Why a sync failed (it is retried with backoff).
#[derive(Debug, thiserror::Error)]
pub enum EndpointsError {
    #[error("creating endpoints {key}")]
    Create {
        key: Key,
        #[source]
        source: kube::Error,
    },
    #[error("updating endpoints {key}")]
    Update {
        key: Key,
        #[source]
        source: kube::Error,
    },
    #[error("deleting endpoints {key} of a deleted service")]
    Delete {
        key: Key,
        #[source]
        source: kube::Error,
    },
}

/// The resourceVersions this controller has replaced, by Endpoints key (upstream's
/// `staleEndpointsTracker`): a sync that reads one of them from the cache is refused, and the
/// informer event bringing the newer version retries it.
#[derive(Debug, Default)]
struct Replaced(Mutex<ReplacedState>);

#[derive(Debug, Default)]
struct ReplacedState {
    /// Key → (replaced resourceVersion, whether the informer has seen a newer one).
    versions: HashMap<Key, (String, bool)>,
    /// Keys whose last sync was refused and waits for that event.
    waiting: HashSet<Key>,
}

impl Replaced {
    fn state(&self) -> std::sync::MutexGuard<'_, ReplacedState> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn replaced(&self, key: &Key, rv: String) {
        self.state().versions.insert(key.clone(), (rv, false));
    }

    fn forget(&self, key: &Key) {
        let mut s = self.state();
        s.versions.remove(key);
        s.waiting.remove(key);
    }

    /// `None`: `current` (as the sync read it) is newer than what we replaced. Otherwise
    /// stale, and whether to retry at once (the informer already has the newer version).
    fn stale(&self, key: &Key, current: &Endpoints) -> Option<bool> {
        let mut s = self.state();
        let (rv, seen) = s.versions.get(key)?.clone();
        if current.metadata.resource_version.as_ref() != Some(&rv) {
            s.versions.remove(key);
            s.waiting.remove(key);
            return None;
        }
        if !seen {
            s.waiting.insert(key.clone());
        }
        Some(seen)
    }

    /// The informer saw `e`; true if a refused sync was waiting for it.
    fn observed(&self, e: &Endpoints) -> bool {
        let key = Key::of(e);
        let mut s = self.state();
        match s.versions.get_mut(&key) {
            Some((rv, seen)) if e.metadata.resource_version.as_ref() != Some(rv) => {
                *seen = true;
                s.waiting.remove(&key)
            }
            _ => false,
        }
    }
}

/// The Endpoints reconciler, keyed by Service.
pub struct EndpointsController {
    pub services: Informer<Service>,
    pub pods: Informer<Pod>,
    pub endpoints: Informer<Endpoints>,
    pub client: kube::Client,
    pub recorder: Recorder,
    triggers: TriggerTimes,
    replaced: Replaced,
}

impl EndpointsController {
    pub fn new(
        services: Informer<Service>,
        pods: Informer<Pod>,
        endpoints: Informer<Endpoints>,
        client: kube::Client,
        recorder: Recorder,
    ) -> EndpointsController {
        EndpointsController {
            services,
            pods,
            endpoints,
            client,
            recorder,
            triggers: TriggerTimes::new(),
            replaced: Replaced::default(),
        }
    }

    fn api(&self, ns: &str) -> Api<Endpoints> {
        Api::namespaced(self.client.clone(), ns)
    }

    async fn service_gone(&self, key: &Key) -> Result<Action, EndpointsError> {
        self.triggers.forget(key);
        self.replaced.forget(key);
        // Deleted without looking at the cache: an Endpoints object written moments ago may
        // not be there yet.
        match self
            .api(&key.namespace)
            .delete(&key.name, &DeleteParams::default())
            .await
        {
            Ok(_) => Ok(Action::Done),
            Err(e) if is_not_found(&e) => Ok(Action::Done),
            Err(source) => Err(EndpointsError::Delete {
                key: key.clone(),
                source,
            }),
        }
    }
}

#[async_trait::async_trait]
impl Reconcile for EndpointsController {
    type Error = EndpointsError;

    async fn reconcile(&self, key: &Key) -> Result<Action, EndpointsError> {
        let Some(svc) = self.services.get(key) else {
            return self.service_gone(key).await;
        };
        let spec = svc.spec.as_ref();
        if spec.and_then(|s| s.type_.as_deref()) == Some("ExternalName") || selector(&svc).is_none()
        {
            return Ok(Action::Done);
        }
        let pods: Vec<Arc<Pod>> = self
            .pods
            .list_in(&key.namespace)
            .into_iter()
            .filter(|p| membership::selects_pod(&svc, p))
            .collect();
        // Computed before comparing so the tracker's memory advances on no-op syncs too.
        let trigger = self.triggers.compute(key, &svc, &pods);
        let current = self.endpoints.get(key);
        if let Some(cur) = &current
            && let Some(retry_now) = self.replaced.stale(key, cur)
        {
            // Not an error: the informer is a moment behind our own write. The event that
            // catches it up requeues the Service; the delay is only a fallback.
            tracing::debug!(%key, "Endpoints cache is behind our write; retrying");
            return Ok(Action::RequeueAfter(if retry_now {
                Duration::ZERO
            } else {
                STALE_RETRY
            }));
        }
        let subsets = subsets::repack(subsets::entries(&svc, &pods));
        let Some(desired) = object::desired(&svc, current.as_deref(), subsets, trigger) else {
            return Ok(Action::Done);
        };
        let api = self.api(&key.namespace);
        match current {
            None => match api.create(&PostParams::default(), &desired).await {
                Ok(_) => Ok(Action::Done),
                // A terminating namespace refuses creations for good: nothing to retry.
                Err(e) if namespace_terminating(&e) => Ok(Action::Done),
                Err(source) => {
                    self.recorder.warning(
                        &desired,
                        "FailedToCreateEndpoint",
                        &format!("Failed to create endpoint for service {key}: {source}"),
                    );
                    Err(EndpointsError::Create {
                        key: key.clone(),
                        source,
                    })
                }
            },
            Some(cur) => match api
                .replace(&key.name, &PostParams::default(), &desired)
                .await
            {
                Ok(written) => {
                    if written.metadata.resource_version != cur.metadata.resource_version
                        && let Some(rv) = cur.metadata.resource_version.clone()
                    {
                        self.replaced.replaced(key, rv);
                    }
                    Ok(Action::Done)
                }
                Err(source) => {
                    self.recorder.warning(
                        &desired,
                        "FailedToUpdateEndpoint",
                        &format!("Failed to update endpoint {key}: {source}"),
                    );
                    Err(EndpointsError::Update {
                        key: key.clone(),
                        source,
                    })
                }
            },
        }
    }
}

/// Registers the handlers and spawns the workers of the Endpoints controller.
pub fn start(ctx: &Context, tasks: &mut JoinSet<()>) {
    let services = ctx.informers.get::<Service>();
    let pods = ctx.informers.get::<Pod>();
    let endpoints = ctx.informers.get::<Endpoints>();
    let queue: Arc<WorkQueue<Key>> = WorkQueue::new();

    let q = queue.clone();
    services.on_change(move |c| q.add(Key::of(c.object().as_ref())));

    let (q, svcs) = (queue.clone(), services.clone());
    pods.on_change(move |c| {
        let ns = c.object().metadata.namespace.as_deref().unwrap_or_default();
        for key in membership::services_to_sync(c, &svcs.list_in(ns)) {
            q.add(key);
        }
    });

    // A deleted Endpoints object is recreated if its Service wants one. Objects of the first
    // list are all checked once, which finds Endpoints whose Service went away while no
    // controller ran (upstream's `checkLeftoverEndpoints`).
    let reconciler = Arc::new(EndpointsController::new(
        services,
        pods,
        endpoints.clone(),
        ctx.client.clone(),
        ctx.events.recorder(COMPONENT),
    ));
    let (q, eps, r) = (queue.clone(), endpoints.clone(), reconciler.clone());
    endpoints.on_change(move |c| match c {
        Change::Deleted(e) => q.add(Key::of(e.as_ref())),
        Change::Added(e) if !eps.has_synced() && !is_leader_record(e) => q.add(Key::of(e.as_ref())),
        Change::Added(e) | Change::Updated { new: e, .. } => {
            if r.replaced.observed(e) {
                q.add(Key::of(e.as_ref()));
            }
        }
    });

    spawn_workers(
        "endpoint",
        reconciler,
        queue,
        ctx.settings.workers,
        &ctx.informers,
        tasks,
    );
}

fn is_leader_record(e: &Endpoints) -> bool {
    e.metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(LEADER_ANNOTATION))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn ep(rv: &str) -> Endpoints {
        Endpoints {
            metadata: ObjectMeta {
                namespace: Some("ns".into()),
                name: Some("web".into()),
                resource_version: Some(rv.into()),
                ..Default::default()
            },
            subsets: None,
        }
    }

    #[test]
    fn replaced_versions_hold_syncs_until_the_newer_one_is_seen() {
        let r = Replaced::default();
        let key = Key::new("ns", "web");
        assert_eq!(r.stale(&key, &ep("5")), None);
        r.replaced(&key, "5".into());
        // The cache still has 5: wait for the event.
        assert_eq!(r.stale(&key, &ep("5")), Some(false));
        // Unrelated Endpoints and the old version itself do not release it.
        assert!(!r.observed(&ep("5")));
        // The newer version arrives: the waiting sync is retried.
        assert!(r.observed(&ep("6")));
        assert!(!r.observed(&ep("6")));
        // A sync holding a snapshot from before that event retries at once.
        assert_eq!(r.stale(&key, &ep("5")), Some(true));
        assert_eq!(r.stale(&key, &ep("6")), None);
        assert_eq!(r.stale(&key, &ep("5")), None);
    }
}
