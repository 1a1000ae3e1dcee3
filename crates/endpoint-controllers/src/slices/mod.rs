//! The EndpointSlice controller (upstream's `pkg/controller/endpointslice`): for every
//! Service with a selector, EndpointSlices labeled `kubernetes.io/service-name` and managed
//! by `endpointslice-controller.k8s.io`, controlled by the Service (so the garbage collector
//! deletes them with it), holding at most [`DEFAULT_MAX_ENDPOINTS_PER_SLICE`] endpoints each.
//!
//! Guarantees:
//! * Level-triggered and frugal: a sync computes the wanted endpoints from the caches and
//!   writes only the slices that differ ([`plan`]), reusing slices rather than churning them.
//! * No duplicate slices while the cache catches up with our own writes ([`tracker`]).
//! * Slices of other managers (a `managed-by` label other than ours) are never touched;
//!   Services without a selector and `ExternalName` Services get no slices from us.
//! * No new slices for a Service being deleted (the garbage collector is removing them).

pub mod desired;
pub mod plan;
pub mod tracker;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use controller_runtime::{
    Action, Change, Context, Informer, Key, Reconcile, Recorder, WorkQueue, spawn_workers,
};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use tokio::task::JoinSet;

use crate::endpoints::object::rfc3339;
use crate::errors::{is_not_found, namespace_terminating};
use crate::membership::{self, selector};
use crate::trigger::{LAST_CHANGE_TRIGGER_TIME, TriggerTimes};
use desired::{CONTROLLER_NAME, MANAGED_BY_LABEL, SERVICE_NAME_LABEL};
use tracker::{Freshness, Seen, SliceTracker};

/// The controller's name in Events.
pub const COMPONENT: &str = "endpoint-slice-controller";
/// Upstream's `--max-endpoints-per-slice` default.
pub const DEFAULT_MAX_ENDPOINTS_PER_SLICE: usize = 100;
/// Changes to our slices by others are batched this long before the resync (upstream's
/// `endpointSliceChangeMinSyncDelay`).
const SLICE_CHANGE_DELAY: Duration = Duration::from_secs(1);
/// A sync refused because the cache lacks our writes is retried after this long if no event
/// retries it first.
const STALE_RETRY: Duration = Duration::from_secs(1);

/// Why a sync failed (it is retried with backoff).
#[derive(Debug, thiserror::Error)]
pub enum SliceError {
    #[error("failed to create EndpointSlice for Service {key}")]
    Create {
        key: Key,
        #[source]
        source: kube::Error,
    },
    #[error("failed to update {slice} EndpointSlice for Service {key}")]
    Update {
        key: Key,
        slice: String,
        #[source]
        source: kube::Error,
    },
    #[error("failed to delete {slice} EndpointSlice for Service {key}")]
    Delete {
        key: Key,
        slice: String,
        #[source]
        source: kube::Error,
    },
    #[error("skipping pods {pods:?} of Service {key}: their nodes were not found")]
    NodesNotFound { key: Key, pods: Vec<String> },
}

/// The EndpointSlice reconciler, keyed by Service.
pub struct SliceController {
    pub services: Informer<Service>,
    pub pods: Informer<Pod>,
    pub nodes: Informer<Node>,
    pub slices: Informer<EndpointSlice>,
    pub client: kube::Client,
    pub recorder: Recorder,
    pub max_endpoints_per_slice: usize,
    tracker: Arc<SliceTracker>,
    triggers: TriggerTimes,
}

/// Whether this controller manages `s`.
pub fn managed(s: &EndpointSlice) -> bool {
    s.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(MANAGED_BY_LABEL))
        .is_some_and(|v| v == CONTROLLER_NAME)
}

/// The key of the Service `s` belongs to, by its label.
pub fn service_key(s: &EndpointSlice) -> Option<Key> {
    let name = s.metadata.labels.as_ref()?.get(SERVICE_NAME_LABEL)?;
    (!name.is_empty()).then(|| Key::new(s.metadata.namespace.as_deref().unwrap_or_default(), name))
}

fn set_trigger_time(s: &mut EndpointSlice, trigger: Option<Timestamp>) {
    let mut a = s.metadata.annotations.take().unwrap_or_default();
    match trigger {
        Some(t) => a.insert(LAST_CHANGE_TRIGGER_TIME.to_owned(), rfc3339(t)),
        None => a.remove(LAST_CHANGE_TRIGGER_TIME),
    };
    s.metadata.annotations = (!a.is_empty()).then_some(a);
}

impl SliceController {
    fn api(&self, ns: &str) -> Api<EndpointSlice> {
        Api::namespaced(self.client.clone(), ns)
    }

    /// This Service's slices in the cache (ours, not being deleted).
    fn cached_slices(&self, key: &Key) -> Vec<Arc<EndpointSlice>> {
        self.slices
            .list_in(&key.namespace)
            .into_iter()
            .filter(|s| {
                managed(s)
                    && service_key(s).as_ref() == Some(key)
                    && s.metadata.deletion_timestamp.is_none()
            })
            .collect()
    }

    async fn write(&self, key: &Key, svc: &Service, plan: plan::Plan) -> Result<(), SliceError> {
        let api = self.api(&key.namespace);
        if svc.metadata.deletion_timestamp.is_none() {
            for s in plan.create {
                match api.create(&PostParams::default(), &s).await {
                    Ok(created) => self.tracker.written(key, &created),
                    Err(e) if namespace_terminating(&e) => return Ok(()),
                    Err(source) => {
                        return Err(SliceError::Create {
                            key: key.clone(),
                            source,
                        });
                    }
                }
            }
        }
        for s in plan.update {
            let name = s.metadata.name.clone().unwrap_or_default();
            match api.replace(&name, &PostParams::default(), &s).await {
                Ok(updated) => self.tracker.written(key, &updated),
                Err(source) => {
                    return Err(SliceError::Update {
                        key: key.clone(),
                        slice: name,
                        source,
                    });
                }
            }
        }
        for s in plan.delete {
            let name = s.metadata.name.clone().unwrap_or_default();
            match api.delete(&name, &DeleteParams::default()).await {
                Ok(_) => self.tracker.deleted(key, &name),
                Err(e) if is_not_found(&e) => {}
                Err(source) => {
                    return Err(SliceError::Delete {
                        key: key.clone(),
                        slice: name,
                        source,
                    });
                }
            }
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Reconcile for SliceController {
    type Error = SliceError;

    async fn reconcile(&self, key: &Key) -> Result<Action, SliceError> {
        let Some(svc) = self.services.get(key) else {
            // The garbage collector deletes the slices with their owner.
            self.triggers.forget(key);
            self.tracker.forget(key);
            return Ok(Action::Done);
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
        let existing = self.cached_slices(key);
        if let Freshness::Stale { retry_now } = self.tracker.freshness(key, &existing) {
            // Not an error: the informer is a moment behind our own writes. The event that
            // catches it up requeues the Service; the delay is only a fallback.
            tracing::debug!(%key, "EndpointSlice cache is behind our writes; retrying");
            return Ok(Action::RequeueAfter(if retry_now {
                Duration::ZERO
            } else {
                STALE_RETRY
            }));
        }
        let trigger = self.triggers.compute(key, &svc, &pods);

        let mut missing = Vec::new();
        let mut wanted = BTreeMap::new();
        for t in desired::address_types(&svc) {
            let w = desired::wanted(&svc, &pods, t, |n| self.nodes.get(&Key::cluster(n)));
            missing.extend(w.missing_nodes);
            wanted.insert(t, w.groups);
        }
        let mut plan = plan::plan_service(&svc, &existing, wanted, self.max_endpoints_per_slice);
        for s in plan.create.iter_mut().chain(plan.update.iter_mut()) {
            set_trigger_time(s, trigger);
        }
        if let Err(e) = self.write(key, &svc, plan).await {
            self.recorder.warning(
                svc.as_ref(),
                "FailedToUpdateEndpointSlices",
                &format!(
                    "Error updating Endpoint Slices for Service {key}: {e}: {}",
                    source_text(&e)
                ),
            );
            return Err(e);
        }
        if !missing.is_empty() {
            missing.sort();
            missing.dedup();
            return Err(SliceError::NodesNotFound {
                key: key.clone(),
                pods: missing,
            });
        }
        Ok(Action::Done)
    }
}

fn source_text(e: &SliceError) -> String {
    std::error::Error::source(e).map_or_else(String::new, |s| s.to_string())
}

/// Registers the handlers and spawns the workers of the EndpointSlice controller.
pub fn start(ctx: &Context, tasks: &mut JoinSet<()>) {
    let services = ctx.informers.get::<Service>();
    let pods = ctx.informers.get::<Pod>();
    let nodes = ctx.informers.get::<Node>();
    let slices = ctx.informers.get::<EndpointSlice>();
    let queue: Arc<WorkQueue<Key>> = WorkQueue::new();
    let tracker = Arc::new(SliceTracker::new());

    let q = queue.clone();
    services.on_change(move |c| q.add(Key::of(c.object().as_ref())));

    let (q, svcs) = (queue.clone(), services.clone());
    pods.on_change(move |c| {
        let ns = c.object().metadata.namespace.as_deref().unwrap_or_default();
        for key in membership::services_to_sync(c, &svcs.list_in(ns)) {
            q.add(key);
        }
    });

    // Our own writes coming back are expected; anything else done to our slices (edited,
    // deleted, relabeled) is repaired by a resync of their Service.
    let (q, t) = (queue.clone(), tracker.clone());
    slices.on_change(move |c| {
        let s = c.object();
        if let Change::Updated { old, new } = c
            && (service_key(old) != service_key(new) || managed(old) != managed(new))
        {
            for k in [service_key(old), service_key(new)].into_iter().flatten() {
                q.add_after(k, SLICE_CHANGE_DELAY);
            }
            return;
        }
        let Some(k) = service_key(s).filter(|_| managed(s)) else {
            return;
        };
        let seen = match c {
            Change::Deleted(_) => {
                t.observed_deletion(&k, s.metadata.name.as_deref().unwrap_or_default())
            }
            _ => t.observed(&k, s),
        };
        match seen {
            Seen::Ours => {}
            Seen::CaughtUp => q.add(k),
            Seen::Foreign => q.add_after(k, SLICE_CHANGE_DELAY),
        }
    });

    let reconciler = Arc::new(SliceController {
        services,
        pods,
        nodes,
        slices,
        client: ctx.client.clone(),
        recorder: ctx.events.recorder(COMPONENT),
        max_endpoints_per_slice: DEFAULT_MAX_ENDPOINTS_PER_SLICE,
        tracker,
        triggers: TriggerTimes::new(),
    });
    spawn_workers(
        "endpointslice",
        reconciler,
        queue,
        ctx.settings.workers,
        &ctx.informers,
        tasks,
    );
}
