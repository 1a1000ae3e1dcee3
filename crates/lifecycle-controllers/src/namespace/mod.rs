//! The namespace controller: empties a namespace being deleted, then removes its `kubernetes`
//! finalizer so the API server can remove it (upstream's `pkg/controller/namespace`).
//!
//! Guarantees:
//! * Only namespaces with a deletionTimestamp and `kubernetes` in `spec.finalizers` are
//!   touched; content of a live namespace is never deleted.
//! * Every namespaced type discovery reports as deletable is emptied (`deletecollection` where
//!   served, else one delete per object, both with background propagation), so CustomResources
//!   go too. A pass leaves the five upstream status conditions on the namespace saying what
//!   remains and why (see [`conditions`]). `NamespaceDeletionGroupVersionParsingFailure` is
//!   always `False`: discovery hands us structured group versions, there is nothing to parse.
//! * Content is counted by a metadata-only list; the wait before the next pass is the longest
//!   `deletionGracePeriodSeconds` still running, capped at 5 s (upstream waits the whole
//!   estimate; a shorter poll releases namespaces sooner and costs one pass).
//! * The finalizer is removed (through `PUT .../finalize`) only after a pass in which discovery
//!   fully succeeded, every deletion succeeded and a fresh list of every type came back empty:
//!   a namespace is never released with content the controller did not see go.
//! * Until then the namespace is looked at again: soon when content is only waiting for a
//!   graceful deletion or a finalizer, with backoff when something failed.

pub mod conditions;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use controller_runtime::{Action, Context, Informer, Key, Reconcile, WorkQueue, spawn_workers};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, PostParams, PropagationPolicy};
use tokio::task::JoinSet;

use crate::discovery::{self, DiscoveryError, Served};
use conditions::Findings;

/// The finalizer this controller owns.
pub const FINALIZER: &str = "kubernetes";
/// Longest wait between passes while content is still going away.
const MAX_POLL: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum NamespaceError {
    #[error("discovering the resource types to delete in namespace {namespace}")]
    Discovery {
        namespace: String,
        #[source]
        source: DiscoveryError,
    },
    #[error("deleting the content of namespace {namespace}: {summary}")]
    Content { namespace: String, summary: String },
    #[error("writing the status of namespace {namespace}")]
    Status {
        namespace: String,
        #[source]
        source: kube::Error,
    },
    #[error("finalizing namespace {namespace}")]
    Finalize {
        namespace: String,
        #[source]
        source: kube::Error,
    },
}

/// Starts the controller for one term.
pub fn start(ctx: &Context, tasks: &mut JoinSet<()>) {
    let namespaces = ctx.informers.get::<Namespace>();
    let queue: Arc<WorkQueue<Key>> = WorkQueue::new();
    let q = queue.clone();
    namespaces.on_change(move |c| {
        if c.object().metadata.deletion_timestamp.is_some() {
            q.add(Key::of(c.object().as_ref()));
        }
    });
    let reconciler = Arc::new(NamespaceDeleter {
        namespaces,
        client: ctx.client.clone(),
    });
    // Upstream's --concurrent-namespace-syncs default.
    spawn_workers("namespace", reconciler, queue, 10, &ctx.informers, tasks);
}

pub struct NamespaceDeleter {
    namespaces: Informer<Namespace>,
    client: kube::Client,
}

/// What one type's deletion left behind.
#[derive(Default)]
struct Leftover {
    count: usize,
    finalizers: BTreeMap<String, usize>,
    /// Longest graceful deletion still running, in seconds.
    grace: i64,
}

fn is_status(e: &kube::Error, codes: &[u16]) -> bool {
    matches!(e, kube::Error::Api(s) if codes.contains(&s.code))
}

impl NamespaceDeleter {
    /// Deletes everything of type `s` in `ns`, then lists what is left.
    async fn delete_type(&self, s: &Served, ns: &str) -> Result<Leftover, String> {
        let api: Api<DynamicObject> = Api::namespaced_with(self.client.clone(), ns, &s.api);
        let dp = DeleteParams {
            propagation_policy: Some(PropagationPolicy::Background),
            ..DeleteParams::default()
        };
        let mut one_by_one = !s.supports("deletecollection");
        if !one_by_one {
            match api.delete_collection(&dp, &ListParams::default()).await {
                Ok(_) => {}
                // Not actually served: fall back as upstream does.
                Err(e) if is_status(&e, &[404, 405]) => one_by_one = true,
                Err(e) => return Err(format!("{}: {e}", s.group_resource())),
            }
        }
        if !s.supports("list") {
            return Ok(Leftover::default());
        }
        let listed = api
            .list_metadata(&ListParams::default())
            .await
            .map_err(|e| format!("{}: {e}", s.group_resource()))?;
        let mut left = Leftover::default();
        for item in &listed.items {
            let m = &item.metadata;
            let name = m.name.as_deref().unwrap_or_default();
            if one_by_one && m.deletion_timestamp.is_none() {
                match api.delete(name, &dp).await {
                    Ok(either) if either.is_right() => continue,
                    Ok(_) => {}
                    Err(e) if is_status(&e, &[404]) => continue,
                    Err(e) => return Err(format!("{}: {e}", s.group_resource())),
                }
            }
            left.count += 1;
            for f in m.finalizers.iter().flatten() {
                *left.finalizers.entry(f.clone()).or_default() += 1;
            }
            left.grace = left.grace.max(m.deletion_grace_period_seconds.unwrap_or(0));
        }
        Ok(left)
    }

    async fn write_status(
        &self,
        ns: &Namespace,
        findings: &Findings,
    ) -> Result<(), NamespaceError> {
        let name = ns.metadata.name.clone().unwrap_or_default();
        let mut updated = ns.clone();
        let status = updated.status.get_or_insert_with(Default::default);
        let mut conds = status.conditions.clone().unwrap_or_default();
        let changed = conditions::update(&mut conds, findings, jiff::Timestamp::now());
        let terminating = status.phase.as_deref() == Some("Terminating");
        if !changed && terminating {
            return Ok(());
        }
        status.conditions = Some(conds);
        status.phase = Some("Terminating".to_owned());
        let api: Api<Namespace> = Api::all(self.client.clone());
        match api
            .replace_status(&name, &PostParams::default(), &updated)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_status(&e, &[404]) => Ok(()),
            Err(source) => Err(NamespaceError::Status {
                namespace: name,
                source,
            }),
        }
    }

    async fn finalize(&self, ns: &Namespace) -> Result<(), NamespaceError> {
        let name = ns.metadata.name.clone().unwrap_or_default();
        let api: Api<Namespace> = Api::all(self.client.clone());
        // The cached copy is older than our own status write: finalize the live one.
        let mut updated = match api.get_opt(&name).await {
            Ok(Some(live)) if live.metadata.uid == ns.metadata.uid => live,
            Ok(_) => return Ok(()),
            Err(source) => {
                return Err(NamespaceError::Finalize {
                    namespace: name,
                    source,
                });
            }
        };
        if let Some(f) = updated.spec.as_mut().and_then(|s| s.finalizers.as_mut()) {
            f.retain(|x| x != FINALIZER);
        }
        match api
            .replace_subresource("finalize", &name, &PostParams::default(), &updated)
            .await
        {
            Ok(_) => {
                tracing::info!(namespace = %name, "namespace emptied; removed the kubernetes finalizer");
                Ok(())
            }
            Err(e) if is_status(&e, &[404]) => Ok(()),
            Err(source) => Err(NamespaceError::Finalize {
                namespace: name,
                source,
            }),
        }
    }
}

#[async_trait::async_trait]
impl Reconcile for NamespaceDeleter {
    type Error = NamespaceError;

    async fn reconcile(&self, key: &Key) -> Result<Action, NamespaceError> {
        let Some(ns) = self.namespaces.get(key) else {
            return Ok(Action::Done);
        };
        let name = key.name.clone();
        if ns.metadata.deletion_timestamp.is_none() {
            return Ok(Action::Done);
        }
        let has_finalizer = ns
            .spec
            .as_ref()
            .and_then(|s| s.finalizers.as_ref())
            .is_some_and(|f| f.iter().any(|x| x == FINALIZER));
        if !has_finalizer {
            return Ok(Action::Done);
        }
        let catalog = match discovery::discover(&self.client).await {
            Ok(c) => c,
            Err(source) => {
                let findings = Findings {
                    discovery: Some(controller_runtime::worker::chain(&source)),
                    ..Findings::default()
                };
                self.write_status(&ns, &findings).await?;
                return Err(NamespaceError::Discovery {
                    namespace: name,
                    source,
                });
            }
        };
        let mut findings = Findings {
            discovery: catalog.failure_message(),
            ..Findings::default()
        };
        let mut grace = 0;
        for s in catalog
            .resources
            .iter()
            .filter(|s| s.namespaced && s.supports("delete"))
        {
            match self.delete_type(s, &name).await {
                Ok(left) => {
                    if left.count > 0 {
                        findings.remaining.insert(s.group_resource(), left.count);
                    }
                    for (f, n) in left.finalizers {
                        *findings.finalizers.entry(f).or_default() += n;
                    }
                    grace = grace.max(left.grace);
                }
                Err(msg) => findings.content_errors.push(msg),
            }
        }
        self.write_status(&ns, &findings).await?;
        if !findings.content_errors.is_empty() {
            return Err(NamespaceError::Content {
                namespace: name,
                summary: findings.content_errors.join(", "),
            });
        }
        if !findings.remaining.is_empty() || findings.discovery.is_some() {
            let wait = Duration::from_secs(grace.clamp(1, MAX_POLL.as_secs() as i64) as u64);
            tracing::debug!(namespace = %name, remaining = ?findings.remaining, "content remains; looking again soon");
            return Ok(Action::RequeueAfter(wait));
        }
        self.finalize(&ns).await?;
        Ok(Action::Done)
    }
}
