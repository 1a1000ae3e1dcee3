//! The work queue between event handlers and reconcile workers (upstream's
//! `workqueue.RateLimitingInterface`).
//!
//! Guarantees:
//! * A key waits in the queue at most once, however often it is added: ten changes to one
//!   object before a worker gets to it are one reconcile.
//! * A key is never handed to two workers at once. A key added while it is being processed
//!   is queued again when its worker calls [`WorkQueue::done`], so the change is not lost.
//! * Keys come out in the order they were first added.
//! * [`WorkQueue::add_rate_limited`] delays a key by 5 ms × 2^failures (at most 1000 s, as
//!   upstream's default controller rate limiter); [`WorkQueue::forget`] resets the count once
//!   a reconcile succeeds.

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

use crate::key::Key;

/// First retry delay after a failure.
pub const BASE_DELAY: Duration = Duration::from_millis(5);
/// Longest retry delay.
pub const MAX_DELAY: Duration = Duration::from_secs(1000);

struct State<T> {
    queue: VecDeque<T>,
    /// Keys waiting in `queue`, or added again while being processed.
    dirty: HashSet<T>,
    processing: HashSet<T>,
    failures: HashMap<T, u32>,
    shut_down: bool,
}

/// A de-duplicating, rate-limiting queue of keys.
pub struct WorkQueue<T = Key> {
    state: Mutex<State<T>>,
    ready: Notify,
}

impl<T: Clone + Eq + Hash + Send + 'static> WorkQueue<T> {
    pub fn new() -> Arc<WorkQueue<T>> {
        Arc::new(WorkQueue {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                dirty: HashSet::new(),
                processing: HashSet::new(),
                failures: HashMap::new(),
                shut_down: false,
            }),
            ready: Notify::new(),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `key` unless it is already waiting.
    pub fn add(&self, key: T) {
        let mut s = self.state();
        if s.shut_down || !s.dirty.insert(key.clone()) {
            return;
        }
        if !s.processing.contains(&key) {
            s.queue.push_back(key);
            drop(s);
            self.ready.notify_one();
        }
    }

    /// Queues `key` after `delay` (at once for a zero delay).
    pub fn add_after(self: &Arc<Self>, key: T, delay: Duration) {
        if delay.is_zero() {
            return self.add(key);
        }
        let queue = Arc::downgrade(self);
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            if let Some(q) = queue.upgrade() {
                q.add(key);
            }
        });
    }

    /// Queues `key` after its backoff, and counts one more failure for it.
    pub fn add_rate_limited(self: &Arc<Self>, key: T) {
        let delay = {
            let mut s = self.state();
            let n = s.failures.entry(key.clone()).or_insert(0);
            let delay = backoff(*n);
            *n = n.saturating_add(1);
            delay
        };
        self.add_after(key, delay);
    }

    /// Failures counted for `key` since its last [`WorkQueue::forget`].
    pub fn failures(&self, key: &T) -> u32 {
        self.state().failures.get(key).copied().unwrap_or(0)
    }

    /// Resets `key`'s backoff.
    pub fn forget(&self, key: &T) {
        self.state().failures.remove(key);
    }

    /// The next key to process, waiting for one; `None` once the queue is shut down. The
    /// caller must call [`WorkQueue::done`] with the key when finished.
    pub async fn get(&self) -> Option<T> {
        loop {
            let notified = self.ready.notified();
            tokio::pin!(notified);
            // Registered before looking, so an add between the look and the wait wakes us.
            notified.as_mut().enable();
            {
                let mut s = self.state();
                if s.shut_down {
                    return None;
                }
                if let Some(key) = s.queue.pop_front() {
                    s.dirty.remove(&key);
                    s.processing.insert(key.clone());
                    let more = !s.queue.is_empty();
                    drop(s);
                    if more {
                        // Pass the wake-up on: several workers may be waiting.
                        self.ready.notify_one();
                    }
                    return Some(key);
                }
            }
            notified.await;
        }
    }

    /// Marks `key` processed; queues it again if it was added meanwhile.
    pub fn done(&self, key: &T) {
        let mut s = self.state();
        s.processing.remove(key);
        if s.dirty.contains(key) && !s.shut_down {
            s.queue.push_back(key.clone());
            drop(s);
            self.ready.notify_one();
        }
    }

    /// Keys waiting to be processed.
    pub fn len(&self) -> usize {
        self.state().queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Wakes every waiting worker with `None`; later adds are ignored.
    pub fn shut_down(&self) {
        self.state().shut_down = true;
        self.ready.notify_waiters();
    }
}

/// The delay after `failures` earlier failures.
pub fn backoff(failures: u32) -> Duration {
    let factor = 1u64.checked_shl(failures.min(40)).unwrap_or(u64::MAX);
    let nanos = (BASE_DELAY.as_nanos() as u64).saturating_mul(factor);
    Duration::from_nanos(nanos).min(MAX_DELAY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        assert_eq!(backoff(0), Duration::from_millis(5));
        assert_eq!(backoff(1), Duration::from_millis(10));
        assert_eq!(backoff(10), Duration::from_millis(5120));
        assert_eq!(backoff(30), MAX_DELAY);
        assert_eq!(backoff(u32::MAX), MAX_DELAY);
    }

    #[tokio::test]
    async fn duplicates_collapse_and_keep_first_add_order() {
        let q = WorkQueue::<&str>::new();
        for k in ["a", "b", "a", "c", "b"] {
            q.add(k);
        }
        assert_eq!(q.len(), 3);
        let mut out = Vec::new();
        for _ in 0..3 {
            let k = q.get().await.unwrap();
            q.done(&k);
            out.push(k);
        }
        assert_eq!(out, ["a", "b", "c"]);
        assert!(q.is_empty());
    }

    #[tokio::test]
    async fn a_key_being_processed_is_not_handed_out_again_until_done() {
        let q = WorkQueue::<&str>::new();
        q.add("a");
        let k = q.get().await.unwrap();
        q.add("a");
        q.add("b");
        // "a" is processing: only "b" is available.
        assert_eq!(q.get().await, Some("b"));
        assert_eq!(q.len(), 0);
        q.done(&k);
        assert_eq!(q.len(), 1);
        assert_eq!(q.get().await, Some("a"));
    }

    #[tokio::test(start_paused = true)]
    async fn rate_limited_adds_back_off_and_forget_resets() {
        let q = WorkQueue::<&str>::new();
        q.add_rate_limited("a");
        q.add_rate_limited("a");
        assert_eq!(q.failures(&"a"), 2);
        tokio::time::sleep(Duration::from_millis(4)).await;
        assert!(q.is_empty());
        tokio::time::sleep(Duration::from_millis(2)).await;
        assert_eq!(q.len(), 1);
        q.forget(&"a");
        assert_eq!(q.failures(&"a"), 0);
    }

    #[tokio::test]
    async fn shut_down_wakes_waiting_workers() {
        let q = WorkQueue::<&str>::new();
        let waiter = {
            let q = q.clone();
            tokio::spawn(async move { q.get().await })
        };
        tokio::task::yield_now().await;
        q.shut_down();
        assert_eq!(waiter.await.unwrap(), None);
        q.add("x");
        assert!(q.is_empty());
    }
}
