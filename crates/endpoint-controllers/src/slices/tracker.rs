//! What this controller has written to EndpointSlices and not yet seen in its cache
//! (upstream's `EndpointSliceTracker`).
//!
//! Slices are created with `generateName`, so a sync that reads a cache missing the slices
//! the previous sync created would create them again: duplicates, not conflicts. Hence:
//! * every write records an expectation (slice at least at the written resourceVersion, or
//!   slice gone); a sync whose snapshot of the cache misses one is refused as stale, and the
//!   informer event that catches the cache up triggers the retry ([`Seen::CaughtUp`]);
//! * informer events that meet an expectation are our own writes and need no resync; other
//!   changes to our slices (someone edited or deleted one) do ([`Seen::Foreign`]);
//! * expectations expire after [`TTL`], so a lost event delays, never wedges, a Service.
//!
//! Expectations are dropped only by [`SliceTracker::freshness`], against the snapshot the
//! sync actually read: an event handled between a sync's read and its check can therefore
//! never let a stale snapshot pass.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use controller_runtime::Key;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use tokio::time::Instant;

/// How long an unmet expectation holds a Service back.
pub const TTL: Duration = Duration::from_secs(30);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Want {
    /// Present at this resourceVersion or newer (`None`: not a number; any version will do).
    AtLeast(Option<u64>),
    Gone,
}

#[derive(Clone, Copy, Debug)]
struct Expectation {
    want: Want,
    /// An informer event has met it: the cache holds it now, whatever a sync's older
    /// snapshot says.
    seen: bool,
    at: Instant,
}

#[derive(Debug, Default)]
struct State {
    /// Expectations by Service, then slice name.
    by_service: HashMap<Key, HashMap<String, Expectation>>,
    /// Services whose last sync was refused as stale: resync them once caught up.
    waiting: HashSet<Key>,
}

/// What an informer event on one of our slices means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seen {
    /// Our own write (or an older version of it): nothing to do.
    Ours,
    /// Our own write, and the last one a refused sync was waiting for: resync now.
    CaughtUp,
    /// Someone else's change: resync to repair it.
    Foreign,
}

/// Whether a sync may act on its snapshot of the cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Freshness {
    Fresh,
    /// The snapshot misses our writes. `retry_now`: the informer has seen them since the
    /// snapshot was taken; otherwise an event will trigger the retry.
    Stale {
        retry_now: bool,
    },
}

/// What this controller wrote and has not yet seen in its cache, by Service.
#[derive(Debug, Default)]
pub struct SliceTracker {
    state: Mutex<State>,
}

/// resourceVersions are etcd-style revisions in keelson (and upstream); ordering them is
/// what lets a newer foreign write also satisfy an expectation.
fn version(s: &EndpointSlice) -> Option<u64> {
    s.metadata.resource_version.as_deref()?.parse().ok()
}

fn met(want: Want, cached: Option<&EndpointSlice>) -> bool {
    match (want, cached) {
        (Want::Gone, c) => c.is_none(),
        (Want::AtLeast(_), None) => false,
        (Want::AtLeast(None), Some(_)) => true,
        (Want::AtLeast(Some(v)), Some(s)) => version(s).is_none_or(|have| have >= v),
    }
}

impl SliceTracker {
    pub fn new() -> SliceTracker {
        SliceTracker::default()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn expect(&self, svc: &Key, name: &str, want: Want) {
        self.state()
            .by_service
            .entry(svc.clone())
            .or_default()
            .insert(
                name.to_owned(),
                Expectation {
                    want,
                    seen: false,
                    at: Instant::now(),
                },
            );
    }

    /// Records a slice as the API returned it from a create or update.
    pub fn written(&self, svc: &Key, slice: &EndpointSlice) {
        if let Some(name) = slice.metadata.name.as_deref() {
            self.expect(svc, name, Want::AtLeast(version(slice)));
        }
    }

    /// Records a deletion.
    pub fn deleted(&self, svc: &Key, name: &str) {
        self.expect(svc, name, Want::Gone);
    }

    /// An informer saw `slice` added or updated.
    pub fn observed(&self, svc: &Key, slice: &EndpointSlice) -> Seen {
        let name = slice.metadata.name.as_deref().unwrap_or_default();
        self.observe(svc, name, Some(slice))
    }

    /// An informer saw the slice `name` deleted.
    pub fn observed_deletion(&self, svc: &Key, name: &str) -> Seen {
        self.observe(svc, name, None)
    }

    fn observe(&self, svc: &Key, name: &str, slice: Option<&EndpointSlice>) -> Seen {
        let mut state = self.state();
        let Some(e) = state
            .by_service
            .get_mut(svc)
            .and_then(|entries| entries.get_mut(name))
        else {
            return Seen::Foreign;
        };
        let ours = met(e.want, slice);
        if ours {
            e.seen = true;
        } else if slice.is_none() {
            // Deleted by someone else: nothing left to wait for; the resync recreates it.
            e.want = Want::Gone;
            e.seen = true;
        } else {
            // An older version arriving before our write.
            return Seen::Ours;
        }
        let all_seen = state
            .by_service
            .get(svc)
            .is_some_and(|entries| entries.values().all(|e| e.seen));
        if !ours {
            state.waiting.remove(svc);
            Seen::Foreign
        } else if all_seen && state.waiting.remove(svc) {
            Seen::CaughtUp
        } else {
            Seen::Ours
        }
    }

    /// Whether `cached` (this Service's slices, as a sync read them) includes our writes.
    /// Met and expired expectations are dropped; a stale answer marks the Service as
    /// waiting for the event that catches the cache up.
    pub fn freshness(&self, svc: &Key, cached: &[Arc<EndpointSlice>]) -> Freshness {
        let mut state = self.state();
        let Some(entries) = state.by_service.get_mut(svc) else {
            return Freshness::Fresh;
        };
        entries.retain(|name, e| {
            let in_cache = cached
                .iter()
                .find(|s| s.metadata.name.as_deref() == Some(name.as_str()));
            !met(e.want, in_cache.map(|s| s.as_ref())) && e.at.elapsed() < TTL
        });
        if entries.is_empty() {
            state.by_service.remove(svc);
            state.waiting.remove(svc);
            return Freshness::Fresh;
        }
        let retry_now = entries.values().all(|e| e.seen);
        if !retry_now {
            state.waiting.insert(svc.clone());
        }
        Freshness::Stale { retry_now }
    }

    /// Forgets a deleted Service.
    pub fn forget(&self, svc: &Key) {
        let mut state = self.state();
        state.by_service.remove(svc);
        state.waiting.remove(svc);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn slice(name: &str, rv: &str) -> Arc<EndpointSlice> {
        Arc::new(EndpointSlice {
            metadata: ObjectMeta {
                name: Some(name.into()),
                resource_version: Some(rv.into()),
                ..Default::default()
            },
            address_type: "IPv4".into(),
            endpoints: Vec::new(),
            ports: None,
        })
    }

    const STALE_WAIT: Freshness = Freshness::Stale { retry_now: false };
    const STALE_NOW: Freshness = Freshness::Stale { retry_now: true };

    #[tokio::test(start_paused = true)]
    async fn writes_hold_the_service_until_seen() {
        let t = SliceTracker::new();
        let svc = Key::new("ns", "web");
        assert_eq!(t.freshness(&svc, &[]), Freshness::Fresh);
        t.written(&svc, &slice("web-a", "10"));
        t.deleted(&svc, "web-b");
        let old_b = slice("web-b", "3");
        assert_eq!(t.freshness(&svc, std::slice::from_ref(&old_b)), STALE_WAIT);
        // An older version of a created slice: not new, not foreign.
        assert_eq!(t.observed(&svc, &slice("web-a", "9")), Seen::Ours);
        // Our create arrives; the deletion is still awaited.
        assert_eq!(t.observed(&svc, &slice("web-a", "10")), Seen::Ours);
        // The deletion arrives: the waiting Service is caught up.
        assert_eq!(t.observed_deletion(&svc, "web-b"), Seen::CaughtUp);
        // A sync whose snapshot predates those events retries at once.
        assert_eq!(t.freshness(&svc, &[slice("web-a", "9"), old_b]), STALE_NOW);
        assert_eq!(t.freshness(&svc, &[slice("web-a", "10")]), Freshness::Fresh);
        // Foreign changes are not ours.
        assert_eq!(t.observed(&svc, &slice("web-a", "11")), Seen::Foreign);
        assert_eq!(t.observed_deletion(&svc, "web-a"), Seen::Foreign);
    }

    #[tokio::test(start_paused = true)]
    async fn expectations_met_in_the_cache_deleted_or_expired_are_dropped() {
        let t = SliceTracker::new();
        let svc = Key::new("ns", "web");
        // The watch event raced ahead of the response: the cache already has it.
        t.written(&svc, &slice("web-a", "10"));
        assert_eq!(t.freshness(&svc, &[slice("web-a", "12")]), Freshness::Fresh);
        // A slice we created and someone deleted: resync, nothing left to wait for.
        t.written(&svc, &slice("web-c", "20"));
        assert_eq!(t.observed_deletion(&svc, "web-c"), Seen::Foreign);
        assert_eq!(t.freshness(&svc, &[]), Freshness::Fresh);
        // A write whose event never comes holds the Service back only until it expires.
        t.written(&svc, &slice("web-d", "30"));
        assert_eq!(t.freshness(&svc, &[]), STALE_WAIT);
        tokio::time::advance(TTL).await;
        assert_eq!(t.freshness(&svc, &[]), Freshness::Fresh);
    }
}
