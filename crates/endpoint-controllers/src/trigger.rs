//! The `endpoints.kubernetes.io/last-change-trigger-time` annotation: when the change that
//! caused an Endpoints (or EndpointSlice) write happened, so that latency from a pod turning
//! ready to its endpoint being published can be measured (upstream's `TriggerTimeTracker`).
//!
//! A pod's trigger time is its `Ready` condition's last transition; a Service's is its
//! creation. Each sync remembers the times it saw; the annotation is the earliest time that
//! is newer than what the previous sync of the same Service saw. The first sync of a Service
//! reports its creation. Like upstream, several changes of one object between two syncs are
//! reported as the last one — an accepted approximation.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use controller_runtime::Key;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Pod, Service};

use crate::pods::ready_transition_time;

/// The annotation's name.
pub const LAST_CHANGE_TRIGGER_TIME: &str = "endpoints.kubernetes.io/last-change-trigger-time";

#[derive(Debug, Default)]
struct State {
    service: Option<Timestamp>,
    pods: HashMap<String, Timestamp>,
}

/// Per-Service memory of the trigger times seen by the last sync. Safe to share between
/// workers: the queue never syncs one Service in two workers at once.
#[derive(Debug, Default)]
pub struct TriggerTimes {
    states: Mutex<HashMap<Key, State>>,
}

impl TriggerTimes {
    pub fn new() -> TriggerTimes {
        TriggerTimes::default()
    }

    fn states(&self) -> std::sync::MutexGuard<'_, HashMap<Key, State>> {
        self.states.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records what this sync sees and returns the time to publish (`None`: remove the
    /// annotation).
    pub fn compute(&self, key: &Key, svc: &Service, pods: &[Arc<Pod>]) -> Option<Timestamp> {
        let previous = self.states().remove(key);
        let known = previous.is_some();
        let previous = previous.unwrap_or_default();
        let mut earliest: Option<Timestamp> = None;
        let mut note = |t: Timestamp| earliest = Some(earliest.map_or(t, |e| e.min(t)));
        let mut seen = HashMap::new();
        for pod in pods {
            let Some(t) = ready_transition_time(pod) else {
                continue;
            };
            let name = pod.metadata.name.clone().unwrap_or_default();
            if previous.pods.get(&name).is_none_or(|before| t > *before) {
                note(t);
            }
            seen.insert(name, t);
        }
        let created = svc.metadata.creation_timestamp.as_ref().map(|t| t.0);
        if let Some(t) = created
            && previous.service.is_none_or(|before| t > before)
        {
            note(t);
        }
        self.states().insert(
            key.clone(),
            State {
                service: created,
                pods: seen,
            },
        );
        if known { earliest } else { created }
    }

    /// Forgets a deleted Service.
    pub fn forget(&self, key: &Key) {
        self.states().remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pods::tests::pod;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(s).unwrap()
    }

    fn ready_at(name: &str, s: i64) -> Arc<Pod> {
        let mut p = pod(name, "10.0.0.1", true);
        p.status.as_mut().unwrap().conditions.as_mut().unwrap()[0].last_transition_time =
            Some(Time(at(s)));
        Arc::new(p)
    }

    #[test]
    fn reports_the_earliest_new_change() {
        let t = TriggerTimes::new();
        let key = Key::new("ns", "web");
        let svc = Service {
            metadata: ObjectMeta {
                creation_timestamp: Some(Time(at(100))),
                ..Default::default()
            },
            ..Default::default()
        };
        // First sync: the Service's creation.
        assert_eq!(t.compute(&key, &svc, &[ready_at("a", 150)]), Some(at(100)));
        // Nothing new: no annotation.
        assert_eq!(t.compute(&key, &svc, &[ready_at("a", 150)]), None);
        // Two pods changed since: the earlier one.
        assert_eq!(
            t.compute(&key, &svc, &[ready_at("a", 300), ready_at("b", 200)]),
            Some(at(200))
        );
        // A forgotten Service starts over.
        t.forget(&key);
        assert_eq!(t.compute(&key, &svc, &[]), Some(at(100)));
    }
}
