//! Reconcile workers: take keys from a [`WorkQueue`], call a [`Reconcile`], and requeue as
//! the result says (upstream's `processNextWorkItem` loop).
//!
//! Guarantees:
//! * No reconcile runs before the informers the controller created have listed once, so a
//!   controller never acts on a half-known cluster (it would, say, create pods it already has).
//! * The same key is never reconciled by two workers at once (the queue's guarantee).
//! * A failed reconcile is retried with per-key exponential backoff; a successful one resets
//!   the backoff. Conflicts (HTTP 409: someone wrote the object first) are expected and only
//!   logged at debug level — the retry reads the newer version from the cache.

use std::error::Error as StdError;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;

use crate::informer::Informers;
use crate::key::Key;
use crate::queue::WorkQueue;

/// What to do with a key after a successful reconcile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Nothing until the next change.
    Done,
    /// Reconcile again after this long even without a change (deadlines, TTLs, schedules).
    RequeueAfter(Duration),
}

/// One controller's level-triggered sync: read the state behind `key` from the caches, make
/// the cluster match, write status. It may be called any number of times on the same state.
#[async_trait::async_trait]
pub trait Reconcile: Send + Sync + 'static {
    type Error: StdError + Send + Sync + 'static;

    async fn reconcile(&self, key: &Key) -> Result<Action, Self::Error>;
}

/// Whether `e` (or its cause) is an HTTP 409 from the API server.
pub fn is_conflict(e: &(dyn StdError + 'static)) -> bool {
    let mut cur: Option<&(dyn StdError + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(kube::Error::Api(s)) = err.downcast_ref::<kube::Error>()
            && s.code == 409
        {
            return true;
        }
        cur = err.source();
    }
    false
}

/// `e` and its causes, joined with ": ".
pub fn chain(e: &(dyn StdError + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(err) = cur {
        let s = err.to_string();
        if !out.contains(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cur = err.source();
    }
    out
}

/// Starts `workers` workers for `controller` (a name for logs, e.g. `replicaset`). They wait
/// for every informer created so far in `informers`, then drain `queue` until it shuts down.
pub fn spawn_workers<R: Reconcile>(
    controller: &'static str,
    reconciler: Arc<R>,
    queue: Arc<WorkQueue<Key>>,
    workers: usize,
    informers: &Informers,
    tasks: &mut JoinSet<()>,
) {
    let synced = {
        let informers = informers.clone();
        futures::FutureExt::shared(futures::FutureExt::boxed(async move {
            informers.wait_synced().await
        }))
    };
    for _ in 0..workers.max(1) {
        let (r, q, synced) = (reconciler.clone(), queue.clone(), synced.clone());
        tasks.spawn(async move {
            synced.await;
            while let Some(key) = q.get().await {
                process(controller, r.as_ref(), &q, &key).await;
                q.done(&key);
            }
        });
    }
}

async fn process<R: Reconcile>(controller: &str, r: &R, q: &Arc<WorkQueue<Key>>, key: &Key) {
    match r.reconcile(key).await {
        Ok(action) => {
            q.forget(key);
            if let Action::RequeueAfter(d) = action {
                q.add_after(key.clone(), d);
            }
        }
        Err(e) => {
            if is_conflict(&e) {
                tracing::debug!(controller, %key, error = %chain(&e), "conflict; retrying");
            } else {
                tracing::warn!(
                    controller,
                    %key,
                    error = %chain(&e),
                    retries = q.failures(key),
                    "sync failed; will retry with backoff"
                );
            }
            q.add_rate_limited(key.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("writing the object")]
    struct Wrapped(#[source] kube::Error);

    fn api_error(code: u16) -> kube::Error {
        kube::Error::Api(
            kube::core::Status::failure("the object has been modified", "Conflict")
                .with_code(code)
                .boxed(),
        )
    }

    #[test]
    fn conflicts_are_found_through_sources() {
        assert!(is_conflict(&Wrapped(api_error(409))));
        assert!(!is_conflict(&Wrapped(api_error(500))));
        assert_eq!(
            chain(&Wrapped(api_error(409))),
            format!("writing the object: {}", api_error(409))
        );
    }
}
