//! Automatic compaction of etcd history, coordinated between the keelson servers that share
//! the cluster.
//!
//! Every [`CompactionPolicy::interval`] each server samples etcd's head revision and works out
//! the same target the embedded store would: the newest revision that was already the head
//! `min_age` ago, and at least `min_revisions_behind` below the head. If that is above the
//! compacted revision, the server tries to take the turn: a transaction
//! `if mod_revision(compaction key) == what I saw last time then put(key, target)`. Only the
//! server whose view of the key is current wins; the others see the key move and sit the round
//! out (upstream's apiserver coordinates its compactors the same way, with `compact_rev_key`).
//! So each round compacts once however many servers run, a server that dies hands the turn to
//! the others within a round, and a server never compacts in the round it first looks at the
//! key. The winner then compacts physically at the target. The key's value is the target, in
//! decimal; its write takes one revision per compaction. Rounds in which nothing is due write
//! nothing.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use etcd_client::{CompactionOptions, Compare, CompareOp, KvClient, Txn, TxnOp};

use super::Shared;
use super::error::map;
use crate::embedded::CompactionPolicy;
use crate::{Revision, StoreError};

/// The head revisions seen at each round, to know which revisions are old enough.
#[derive(Debug)]
pub(super) struct Sampler {
    policy: CompactionPolicy,
    /// `(when, head then)`, oldest first; at most one sample older than `min_age` is kept.
    samples: VecDeque<(Instant, Revision)>,
}

impl Sampler {
    pub(super) fn new(policy: CompactionPolicy) -> Sampler {
        Sampler {
            policy,
            samples: VecDeque::new(),
        }
    }

    /// Records `head` at `now`; returns the revision to compact at, if it is above
    /// `compacted`.
    pub(super) fn target(
        &mut self,
        now: Instant,
        head: Revision,
        compacted: Revision,
    ) -> Option<Revision> {
        self.samples.push_back((now, head));
        let aged = |t: &Instant| now.saturating_duration_since(*t) >= self.policy.min_age;
        // Keep only the newest sample that is old enough, and everything after it.
        while self.samples.get(1).is_some_and(|(t, _)| aged(t)) {
            self.samples.pop_front();
        }
        let &(t, old_head) = self.samples.front()?;
        if !aged(&t) {
            return None;
        }
        let target = old_head.min(head - self.policy.min_revisions_behind);
        (target > compacted).then_some(target)
    }
}

/// The compaction loop of one store.
pub(super) struct Compactor {
    kv: KvClient,
    shared: Arc<Shared>,
    policy: CompactionPolicy,
    sampler: Sampler,
    /// The compaction key's mod revision when this server last looked (0: absent), or `None`
    /// before the first look or after losing a race.
    seen: Option<Revision>,
}

impl Compactor {
    pub(super) fn new(kv: KvClient, shared: Arc<Shared>, policy: CompactionPolicy) -> Compactor {
        Compactor {
            kv,
            shared,
            policy,
            sampler: Sampler::new(policy),
            seen: None,
        }
    }

    pub(super) async fn run(mut self) {
        let interval = self
            .policy
            .interval
            .max(std::time::Duration::from_millis(10));
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            if let Err(e) = self.round().await {
                tracing::warn!(error = %e, "etcd compaction round failed; will try again");
            }
        }
    }

    /// One round: sample, and compact if due and it is this server's turn.
    async fn round(&mut self) -> Result<(), StoreError> {
        let timeout = self.shared.options.request_timeout;
        let endpoints = self.shared.endpoints.clone();
        let key = self.shared.options.compaction_key.clone();
        let what = "automatic compaction";
        let in_time = |e: tokio::time::error::Elapsed| {
            let _ = e;
            StoreError::Timeout(format!(
                "{what} on etcd at {endpoints}: no answer within {timeout:?}"
            ))
        };
        let resp = tokio::time::timeout(timeout, self.kv.get(key.as_str(), None))
            .await
            .map_err(in_time)?
            .map_err(|e| map(e, &endpoints, what))?;
        let head = resp
            .header()
            .map(|h| h.revision())
            .ok_or_else(|| StoreError::Internal(format!("{what}: etcd sent no header")))?;
        let (key_revision, recorded) = match resp.kvs().first() {
            Some(kv) => (
                kv.mod_revision(),
                std::str::from_utf8(kv.value())
                    .ok()
                    .and_then(|v| v.trim().parse::<Revision>().ok())
                    .unwrap_or(0),
            ),
            None => (0, 0),
        };
        self.shared.note_etcd_compacted(recorded - 1);
        let compacted = self.shared.compacted();
        // A store compaction at 1 or below has nothing to drop in etcd (see `target - 1` below).
        let due = self.sampler.target(Instant::now(), head, compacted);
        let Some(target) = due.filter(|&t| t >= 2) else {
            self.seen = Some(key_revision);
            return Ok(());
        };
        if self.seen != Some(key_revision) {
            // Another server compacted since this one last looked (or this is its first look):
            // it has the turn this round.
            self.seen = Some(key_revision);
            return Ok(());
        }
        let claim = Txn::new()
            .when([Compare::mod_revision(
                key.as_str(),
                CompareOp::Equal,
                key_revision,
            )])
            .and_then([TxnOp::put(key.as_str(), target.to_string(), None)]);
        let won = tokio::time::timeout(timeout, self.kv.txn(claim))
            .await
            .map_err(in_time)?
            .map_err(|e| map(e, &endpoints, what))?;
        if !won.succeeded() {
            self.seen = None;
            return Ok(());
        }
        self.seen = won.header().map(|h| h.revision());
        let opts = CompactionOptions::new().with_physical();
        // Physical compaction of a large history can take a while; give it several timeouts.
        // The store's revision `target` is etcd's `target - 1` (see the store's module docs).
        let etcd_target = target - 1;
        match tokio::time::timeout(timeout * 6, self.kv.compact(etcd_target, Some(opts))).await {
            Ok(Ok(_)) => {
                self.shared.note_etcd_compacted(etcd_target);
                self.shared.compactions.fetch_add(1, Ordering::Relaxed);
                tracing::info!(revision = target, head, "compacted etcd history");
                Ok(())
            }
            Ok(Err(e)) => match super::error::classify(e, &endpoints, what) {
                // Someone (an operator, etcd's own auto-compaction) got further already.
                super::error::Failure::Compacted => Ok(()),
                super::error::Failure::FutureRevision => Err(StoreError::Internal(format!(
                    "{what}: etcd at {endpoints} says revision {target} is in the future"
                ))),
                super::error::Failure::Other(e) => Err(e),
            },
            Err(e) => Err(in_time(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    #[test]
    fn busy_cluster_compacts_what_is_five_minutes_old() {
        let t0 = Instant::now();
        let mut s = Sampler::new(CompactionPolicy::default());
        // 30,000 revisions a minute; nothing is 5 minutes old before minute 5.
        for minute in 0..5u32 {
            let head = 30_000 * Revision::from(minute);
            assert_eq!(
                s.target(t0 + MIN * minute, head, 0),
                None,
                "minute {minute}"
            );
        }
        // Minute 5: the head of minute 0 (0) is old enough but not above the compacted 0.
        assert_eq!(s.target(t0 + MIN * 5, 150_000, 0), None);
        assert_eq!(s.target(t0 + MIN * 6, 180_000, 0), Some(30_000));
        assert_eq!(s.target(t0 + MIN * 7, 210_000, 30_000), Some(60_000));
        assert!(s.samples.len() <= 7, "{:?}", s.samples);
    }

    #[test]
    fn quiet_cluster_keeps_ten_thousand_revisions() {
        let t0 = Instant::now();
        let mut s = Sampler::new(CompactionPolicy::default());
        assert_eq!(s.target(t0, 12_000, 0), None);
        assert_eq!(s.target(t0 + MIN * 10, 12_500, 0), Some(2_500));
        assert_eq!(s.target(t0 + MIN * 11, 12_500, 2_500), None);
        let mut small = Sampler::new(CompactionPolicy::default());
        assert_eq!(small.target(t0, 100, 0), None);
        assert_eq!(small.target(t0 + MIN * 10, 9_000, 0), None);
    }

    #[test]
    fn zero_age_policy_compacts_right_away() {
        let t0 = Instant::now();
        let mut s = Sampler::new(CompactionPolicy {
            interval: Duration::from_millis(100),
            min_age: Duration::ZERO,
            min_revisions_behind: 5,
        });
        assert_eq!(s.target(t0, 20, 0), Some(15));
        assert_eq!(s.target(t0, 20, 15), None);
    }
}
