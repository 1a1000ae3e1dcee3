//! The ServiceAccount controller: every active namespace has a `default` ServiceAccount,
//! recreated if deleted (upstream's `pkg/controller/serviceaccount`, `ServiceAccountsController`).
//!
//! Guarantees:
//! * Terminating namespaces are left alone (the API server would refuse the create anyway).
//! * An existing `default` ServiceAccount is never modified: only its absence is repaired.

use std::sync::Arc;

use controller_runtime::{Action, Context, Informer, Key, Reconcile, WorkQueue, spawn_workers};
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PostParams};
use tokio::task::JoinSet;

/// The ServiceAccount every namespace gets.
pub const DEFAULT: &str = "default";

#[derive(Debug, thiserror::Error)]
pub enum ServiceAccountError {
    #[error("creating ServiceAccount {namespace}/default")]
    Create {
        namespace: String,
        #[source]
        source: kube::Error,
    },
}

/// Whether `ns` may receive new content.
pub fn active(ns: &Namespace) -> bool {
    ns.metadata.deletion_timestamp.is_none()
        && ns.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Terminating")
}

/// Starts the controller for one term.
pub fn start(ctx: &Context, tasks: &mut JoinSet<()>) {
    let namespaces = ctx.informers.get::<Namespace>();
    let accounts = ctx.informers.get::<ServiceAccount>();
    let queue: Arc<WorkQueue<Key>> = WorkQueue::new();
    let q = queue.clone();
    namespaces.on_change(move |c| {
        if !matches!(c, controller_runtime::Change::Deleted(_)) {
            q.add(Key::of(c.object().as_ref()));
        }
    });
    let q = queue.clone();
    accounts.on_change(move |c| {
        let sa = c.object();
        if matches!(c, controller_runtime::Change::Deleted(_))
            && sa.metadata.name.as_deref() == Some(DEFAULT)
        {
            q.add(Key::cluster(
                sa.metadata.namespace.as_deref().unwrap_or_default(),
            ));
        }
    });
    let reconciler = Arc::new(ServiceAccounts {
        namespaces,
        accounts,
        client: ctx.client.clone(),
    });
    // Upstream's --concurrent-serviceaccount-syncs default.
    spawn_workers(
        "serviceaccount",
        reconciler,
        queue,
        5,
        &ctx.informers,
        tasks,
    );
}

pub struct ServiceAccounts {
    namespaces: Informer<Namespace>,
    accounts: Informer<ServiceAccount>,
    client: kube::Client,
}

#[async_trait::async_trait]
impl Reconcile for ServiceAccounts {
    type Error = ServiceAccountError;

    async fn reconcile(&self, key: &Key) -> Result<Action, ServiceAccountError> {
        let Some(ns) = self.namespaces.get(key) else {
            return Ok(Action::Done);
        };
        if !active(&ns) || self.accounts.get(&Key::new(&key.name, DEFAULT)).is_some() {
            return Ok(Action::Done);
        }
        let sa = ServiceAccount {
            metadata: ObjectMeta {
                name: Some(DEFAULT.to_owned()),
                ..ObjectMeta::default()
            },
            ..ServiceAccount::default()
        };
        let api: Api<ServiceAccount> = Api::namespaced(self.client.clone(), &key.name);
        match api.create(&PostParams::default(), &sa).await {
            Ok(_) => Ok(Action::Done),
            // Already there (our cache lags), or the namespace is going or gone.
            Err(kube::Error::Api(s)) if [403, 404, 409].contains(&s.code) => Ok(Action::Done),
            Err(source) => Err(ServiceAccountError::Create {
                namespace: key.name.clone(),
                source,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::NamespaceStatus;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    #[test]
    fn only_active_namespaces_get_content() {
        let mut ns = Namespace::default();
        assert!(active(&ns));
        ns.status = Some(NamespaceStatus {
            phase: Some("Active".into()),
            ..Default::default()
        });
        assert!(active(&ns));
        ns.metadata.deletion_timestamp = Some(Time(jiff::Timestamp::UNIX_EPOCH));
        assert!(!active(&ns));
        ns.metadata.deletion_timestamp = None;
        ns.status = Some(NamespaceStatus {
            phase: Some("Terminating".into()),
            ..Default::default()
        });
        assert!(!active(&ns));
    }
}
