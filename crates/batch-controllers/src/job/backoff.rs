//! The delay before a Job replaces failed pods (upstream's `backoffStore`): 10 s after the
//! first failure since the last success, doubling with each further one, capped at
//! [`MAX_DELAY`]. A success resets it. Kept in memory, as upstream: a new leader starts
//! without delays, which only makes it retry sooner.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use controller_runtime::Key;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;

use super::pods::finish_time;
use crate::clock::until;

/// The first delay (upstream's `DefaultJobPodFailureBackOff`).
pub const BASE_DELAY: Duration = Duration::from_secs(10);
/// The longest delay (upstream's `MaxJobPodFailureBackOff`, 10 minutes since v1.28; the
/// documentation's "six minutes" predates that).
pub const MAX_DELAY: Duration = Duration::from_secs(600);

/// Failures since the last success, and when the latest happened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Record {
    pub failures: u32,
    pub last_failure: Option<Timestamp>,
}

impl Record {
    /// The record after observing newly finished pods.
    pub fn observe(self, succeeded: &[&Pod], failed: &[&Pod]) -> Record {
        if succeeded.is_empty() && failed.is_empty() {
            return self;
        }
        let last_success = succeeded.iter().filter_map(|p| finish_time(p)).max();
        let mut failure_times: Vec<Option<Timestamp>> =
            failed.iter().map(|p| finish_time(p)).collect();
        failure_times.sort();
        let latest_failure = failure_times.iter().flatten().max().copied();
        match last_success {
            // Only failures after the latest success count.
            Some(success) => {
                let after = failure_times
                    .iter()
                    .filter(|t| t.is_some_and(|t| t > success))
                    .count();
                Record {
                    failures: u32::try_from(after).unwrap_or(u32::MAX),
                    last_failure: latest_failure.filter(|t| *t > success),
                }
            }
            None if !succeeded.is_empty() => Record::default(),
            None => Record {
                failures: self
                    .failures
                    .saturating_add(u32::try_from(failed.len()).unwrap_or(u32::MAX)),
                last_failure: latest_failure.max(self.last_failure),
            },
        }
    }

    /// How long to wait at `now` before creating replacement pods.
    pub fn remaining(&self, now: Timestamp) -> Duration {
        if self.failures == 0 {
            return Duration::ZERO;
        }
        let delay = delay_after(self.failures);
        match self.last_failure {
            Some(at) => delay.saturating_sub(until(at, now)),
            None => Duration::ZERO,
        }
    }
}

/// The delay after `failures` consecutive failures: 10 s · 2^(failures-1), capped.
pub fn delay_after(failures: u32) -> Duration {
    if failures == 0 {
        return Duration::ZERO;
    }
    let shift = (failures - 1).min(20);
    BASE_DELAY.saturating_mul(1u32 << shift).min(MAX_DELAY)
}

/// Records per Job.
#[derive(Debug, Default)]
pub struct Store(Mutex<HashMap<Key, Record>>);

impl Store {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Record>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn get(&self, key: &Key) -> Record {
        self.map().get(key).copied().unwrap_or_default()
    }

    pub fn set(&self, key: &Key, r: Record) {
        self.map().insert(key.clone(), r);
    }

    pub fn remove(&self, key: &Key) {
        self.map().remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        ContainerState, ContainerStateTerminated, ContainerStatus, PodStatus,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn finished(at: &str) -> Pod {
        Pod {
            status: Some(PodStatus {
                container_statuses: Some(vec![ContainerStatus {
                    state: Some(ContainerState {
                        terminated: Some(ContainerStateTerminated {
                            finished_at: Some(Time(at.parse().unwrap())),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn delays_double_from_ten_seconds_up_to_the_cap() {
        let want = [0, 10, 20, 40, 80, 160, 320, 600, 600];
        for (n, secs) in want.iter().enumerate() {
            assert_eq!(
                delay_after(n as u32),
                Duration::from_secs(*secs),
                "{n} failures"
            );
        }
        assert_eq!(delay_after(u32::MAX), MAX_DELAY);
    }

    #[test]
    fn failures_accumulate_and_successes_reset() {
        let f1 = finished("2025-01-01T00:00:00Z");
        let f2 = finished("2025-01-01T00:00:05Z");
        let s = finished("2025-01-01T00:00:10Z");
        let f3 = finished("2025-01-01T00:00:20Z");
        let r = Record::default().observe(&[], &[&f1]);
        assert_eq!(r.failures, 1);
        let r = r.observe(&[], &[&f2]);
        assert_eq!(r.failures, 2);
        assert_eq!(
            r.last_failure,
            Some("2025-01-01T00:00:05Z".parse().unwrap())
        );
        // 20 s after the second failure's 5 s mark: 5 s to go at 00:00:20.
        assert_eq!(
            r.remaining("2025-01-01T00:00:20Z".parse().unwrap()),
            Duration::from_secs(5)
        );
        assert_eq!(
            r.remaining("2025-01-01T00:01:00Z".parse().unwrap()),
            Duration::ZERO
        );
        // A success in the same batch as a later failure keeps only that failure.
        let r2 = r.observe(&[&s], &[&f3]);
        assert_eq!(r2.failures, 1);
        assert_eq!(
            r.observe(&[&s], &[]),
            Record {
                failures: 0,
                last_failure: None
            }
        );
        assert_eq!(
            Record::default().remaining(Timestamp::UNIX_EPOCH),
            Duration::ZERO
        );
    }
}
