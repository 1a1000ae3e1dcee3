//! Expectations: what a controller has asked the API for and not yet seen in its cache
//! (upstream's `ControllerExpectations` and `UIDTrackingControllerExpectations`).
//!
//! A controller that creates three pods would, on its next sync, still see the old count in
//! its cache and create three more. So before acting it records what it expects to observe;
//! the informer handlers count observations down; and a sync that finds expectations
//! outstanding does not create or delete anything (it may still write status).
//!
//! Guarantees:
//! * Deletions are tracked by pod UID, so a deletion observed twice (the update that sets
//!   `deletionTimestamp`, then the delete) is counted once.
//! * Expectations expire after [`TTL`]: a lost watch event can delay a controller, never
//!   wedge it.
//! * A write that failed must be un-expected by the caller ([`Expectations::creation_observed`]
//!   for a failed create, [`Expectations::deletion_observed`] for a failed delete), as upstream.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::key::Key;

/// How long unmet expectations hold a controller back (upstream's `ExpectationsTimeout`).
pub const TTL: Duration = Duration::from_secs(300);

#[derive(Debug)]
struct Entry {
    adds: i64,
    deleting: HashSet<String>,
    set_at: Instant,
}

/// Per-controller-object expectations, keyed by the controller's key.
#[derive(Debug, Default)]
pub struct Expectations {
    entries: Mutex<HashMap<Key, Entry>>,
}

impl Expectations {
    pub fn new() -> Expectations {
        Expectations::default()
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records that `adds` creations and the deletions of `deleting` (pod UIDs) are about to
    /// be requested, replacing whatever was expected before.
    pub fn expect(&self, key: &Key, adds: usize, deleting: impl IntoIterator<Item = String>) {
        self.entries().insert(
            key.clone(),
            Entry {
                adds: i64::try_from(adds).unwrap_or(i64::MAX),
                deleting: deleting.into_iter().collect(),
                set_at: Instant::now(),
            },
        );
    }

    /// One expected creation was observed (or failed, so will never be).
    pub fn creation_observed(&self, key: &Key) {
        if let Some(e) = self.entries().get_mut(key) {
            e.adds -= 1;
        }
    }

    /// `count` expected creations will never be observed (their requests were skipped).
    pub fn creations_skipped(&self, key: &Key, count: usize) {
        if let Some(e) = self.entries().get_mut(key) {
            e.adds -= i64::try_from(count).unwrap_or(i64::MAX);
        }
    }

    /// The deletion of the pod with `uid` was observed (or failed).
    pub fn deletion_observed(&self, key: &Key, uid: &str) {
        if let Some(e) = self.entries().get_mut(key) {
            e.deleting.remove(uid);
        }
    }

    /// Whether the controller may act: nothing outstanding, nothing recorded, or expired.
    pub fn satisfied(&self, key: &Key) -> bool {
        match self.entries().get(key) {
            None => true,
            Some(e) => (e.adds <= 0 && e.deleting.is_empty()) || e.set_at.elapsed() > TTL,
        }
    }

    /// Forgets `key` (its controller object was deleted).
    pub fn delete(&self, key: &Key) {
        self.entries().remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn creations_and_deletions_count_down_and_expire() {
        let x = Expectations::new();
        let k = Key::new("ns", "rs");
        assert!(x.satisfied(&k));
        x.expect(&k, 2, ["a".to_string()]);
        assert!(!x.satisfied(&k));
        x.creation_observed(&k);
        x.creation_observed(&k);
        assert!(!x.satisfied(&k), "a deletion is still outstanding");
        x.deletion_observed(&k, "a");
        x.deletion_observed(&k, "a");
        assert!(x.satisfied(&k));

        x.expect(&k, 5, []);
        x.creations_skipped(&k, 4);
        assert!(!x.satisfied(&k));
        tokio::time::sleep(TTL + Duration::from_secs(1)).await;
        assert!(
            x.satisfied(&k),
            "expired expectations do not hold the controller back"
        );
        x.delete(&k);
        assert!(x.satisfied(&k));
    }

    #[test]
    fn observations_for_other_keys_do_not_count() {
        let x = Expectations::new();
        let (a, b) = (Key::new("ns", "a"), Key::new("ns", "b"));
        x.expect(&a, 1, []);
        x.creation_observed(&b);
        assert!(!x.satisfied(&a));
        assert!(x.satisfied(&b));
    }
}
