//! The root CA publisher: every active namespace has a ConfigMap `kube-root-ca.crt` whose
//! `ca.crt` is the cluster CA, so pods can verify the API server (upstream's
//! `pkg/controller/certificates/rootcacertpublisher`).
//!
//! Guarantees:
//! * The ConfigMap is recreated when deleted and repaired when edited: its data is exactly
//!   `{"ca.crt": <CA>}` (other keys are removed, as upstream) and it carries the
//!   `kubernetes.io/description` annotation. Other labels and annotations are kept.
//! * Without a configured CA (`Settings::root_ca_pem` is `None`) the controller does nothing.

use std::collections::BTreeMap;
use std::sync::Arc;

use controller_runtime::{Action, Context, Informer, Key, Reconcile, WorkQueue, spawn_workers};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PostParams};
use tokio::task::JoinSet;

use crate::serviceaccount::active;

pub const NAME: &str = "kube-root-ca.crt";
pub const KEY: &str = "ca.crt";
pub const DESCRIPTION_ANNOTATION: &str = "kubernetes.io/description";
/// Upstream's wording.
pub const DESCRIPTION: &str = "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.";

#[derive(Debug, thiserror::Error)]
pub enum RootCaError {
    #[error("writing ConfigMap {namespace}/kube-root-ca.crt")]
    Write {
        namespace: String,
        #[source]
        source: kube::Error,
    },
}

/// Starts the publisher for one term (nothing at all without a CA).
pub fn start(ctx: &Context, tasks: &mut JoinSet<()>) {
    let Some(pem) = ctx.settings.root_ca_pem.clone() else {
        tracing::info!("no cluster CA configured; not publishing kube-root-ca.crt");
        return;
    };
    let namespaces = ctx.informers.get::<Namespace>();
    let configmaps = ctx.informers.get::<ConfigMap>();
    let queue: Arc<WorkQueue<Key>> = WorkQueue::new();
    let q = queue.clone();
    namespaces.on_change(move |c| {
        if !matches!(c, controller_runtime::Change::Deleted(_)) {
            q.add(Key::of(c.object().as_ref()));
        }
    });
    let q = queue.clone();
    configmaps.on_change(move |c| {
        let cm = c.object();
        // Additions are our own creates (or someone else's, equally fine); deletions and
        // edits need repairs.
        if !matches!(c, controller_runtime::Change::Added(_))
            && cm.metadata.name.as_deref() == Some(NAME)
        {
            q.add(Key::cluster(
                cm.metadata.namespace.as_deref().unwrap_or_default(),
            ));
        }
    });
    let reconciler = Arc::new(RootCaPublisher {
        namespaces,
        configmaps,
        client: ctx.client.clone(),
        pem,
    });
    spawn_workers(
        "root-ca-cert-publisher",
        reconciler,
        queue,
        ctx.settings.workers,
        &ctx.informers,
        tasks,
    );
}

pub struct RootCaPublisher {
    namespaces: Informer<Namespace>,
    configmaps: Informer<ConfigMap>,
    client: kube::Client,
    pem: String,
}

/// The ConfigMap `current` should become, or `None` when it is right as it is.
pub fn desired(current: Option<&ConfigMap>, pem: &str) -> Option<ConfigMap> {
    let data: BTreeMap<String, String> = [(KEY.to_owned(), pem.to_owned())].into();
    let annotated = |cm: &ConfigMap| {
        cm.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(DESCRIPTION_ANNOTATION))
            .is_some_and(|d| !d.is_empty())
    };
    let mut cm = match current {
        Some(cm) if cm.data.as_ref() == Some(&data) && annotated(cm) => return None,
        Some(cm) => cm.clone(),
        None => ConfigMap {
            metadata: ObjectMeta {
                name: Some(NAME.to_owned()),
                ..ObjectMeta::default()
            },
            ..ConfigMap::default()
        },
    };
    cm.data = Some(data);
    cm.binary_data = None;
    cm.metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert(DESCRIPTION_ANNOTATION.to_owned(), DESCRIPTION.to_owned());
    Some(cm)
}

#[async_trait::async_trait]
impl Reconcile for RootCaPublisher {
    type Error = RootCaError;

    async fn reconcile(&self, key: &Key) -> Result<Action, RootCaError> {
        let Some(ns) = self.namespaces.get(key) else {
            return Ok(Action::Done);
        };
        if !active(&ns) {
            return Ok(Action::Done);
        }
        let current = self.configmaps.get(&Key::new(&key.name, NAME));
        let Some(cm) = desired(current.as_deref(), &self.pem) else {
            return Ok(Action::Done);
        };
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), &key.name);
        let result = if current.is_some() {
            api.replace(NAME, &PostParams::default(), &cm).await
        } else {
            api.create(&PostParams::default(), &cm).await
        };
        match result {
            Ok(_) => Ok(Action::Done),
            // Gone meanwhile, or the namespace is terminating: nothing to publish.
            Err(kube::Error::Api(s)) if [403, 404].contains(&s.code) => Ok(Action::Done),
            // A 409 (our cache lags) is retried with backoff on fresher data.
            Err(source) => Err(RootCaError::Write {
                namespace: key.name.clone(),
                source,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configmap_is_created_repaired_or_left_alone() {
        let fresh = desired(None, "PEM").unwrap();
        assert_eq!(fresh.metadata.name.as_deref(), Some(NAME));
        assert_eq!(fresh.data.as_ref().unwrap()[KEY], "PEM");
        assert_eq!(
            fresh.metadata.annotations.as_ref().unwrap()[DESCRIPTION_ANNOTATION],
            DESCRIPTION
        );
        assert_eq!(desired(Some(&fresh), "PEM"), None);

        let mut edited = fresh.clone();
        edited.data = Some([("ca.crt".into(), "X".into()), ("extra".into(), "y".into())].into());
        edited.metadata.labels = Some([("keep".into(), "me".into())].into());
        let repaired = desired(Some(&edited), "PEM").unwrap();
        assert_eq!(repaired.data, fresh.data);
        assert_eq!(repaired.metadata.labels, edited.metadata.labels);

        let mut bare = fresh.clone();
        bare.metadata.annotations = None;
        assert!(desired(Some(&bare), "PEM").is_some());
        // A new CA is published over the old one.
        assert!(desired(Some(&fresh), "OTHER").is_some());
    }
}
