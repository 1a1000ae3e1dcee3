//! The scheduler's core/v1 Events (`Scheduled`, `FailedScheduling`, `Preempted`), written in
//! the background so that recording never slows a scheduling cycle down.
//!
//! Write load is bounded, which matters at thousands of pods per second (each Event is one more
//! write than the binding itself):
//! * a token bucket caps the Events written per second ([`EventLimits`]); what exceeds it, or
//!   finds the bounded buffer full, is dropped and counted — a summary is logged every few
//!   seconds. Dropping an Event never loses scheduling state: the pod's `PodScheduled`
//!   condition and `spec.nodeName` carry the outcome;
//! * a `FailedScheduling` Event with the same message as the last one for that pod is not
//!   written again within [`EventLimits::repeat_after`] (upstream's event correlator aggregates
//!   such repeats into a count; keelson does not rewrite Events, it skips them).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use kube::api::PostParams;
use kube::{Api, Client};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// Upstream's reporting component for the default profile (all profiles report as it).
pub const COMPONENT: &str = "default-scheduler";

/// How many Events may be written, how fast.
#[derive(Clone, Debug)]
pub struct EventLimits {
    /// Sustained Events per second.
    pub per_second: f64,
    /// Events that may be written at once after a quiet spell.
    pub burst: f64,
    /// Events waiting to be written; more are dropped.
    pub buffer: usize,
    /// Concurrent Event writes.
    pub in_flight: usize,
    /// A repeated `FailedScheduling` message for a pod is written again after this long.
    pub repeat_after: Duration,
}

impl Default for EventLimits {
    fn default() -> Self {
        EventLimits {
            per_second: 200.0,
            burst: 1000.0,
            buffer: 4096,
            in_flight: 4,
            repeat_after: Duration::from_secs(600),
        }
    }
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

struct Shared {
    limits: EventLimits,
    bucket: Mutex<Bucket>,
    /// The last FailedScheduling message written per pod UID, and when.
    last_failure: Mutex<HashMap<String, (String, Instant)>>,
    dropped: AtomicU64,
    instance: String,
}

/// Hands Events to the background writer. Cheap to clone.
#[derive(Clone)]
pub struct EventRecorder {
    tx: mpsc::Sender<Event>,
    shared: Arc<Shared>,
}

/// Builds a core/v1 Event about `pod` as the scheduler reports it. The name follows client-go's
/// recorder: the pod's name and the time in hex nanoseconds.
pub fn pod_event(
    pod: &Pod,
    type_: &str,
    reason: &str,
    action: &str,
    message: &str,
    instance: &str,
) -> Event {
    let now = Timestamp::now();
    let name = pod.metadata.name.clone().unwrap_or_default();
    let namespace = pod
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| "default".to_string());
    Event {
        metadata: ObjectMeta {
            name: Some(format!("{name}.{:x}", now.as_nanosecond())),
            namespace: Some(namespace.clone()),
            ..Default::default()
        },
        involved_object: ObjectReference {
            api_version: Some("v1".to_string()),
            kind: Some("Pod".to_string()),
            name: Some(name),
            namespace: Some(namespace),
            uid: pod.metadata.uid.clone(),
            resource_version: pod.metadata.resource_version.clone(),
            ..Default::default()
        },
        type_: Some(type_.to_string()),
        reason: Some(reason.to_string()),
        action: Some(action.to_string()),
        message: Some(message.to_string()),
        source: Some(EventSource {
            component: Some(COMPONENT.to_string()),
            host: None,
        }),
        reporting_component: Some(COMPONENT.to_string()),
        reporting_instance: Some(instance.to_string()),
        first_timestamp: Some(Time(now)),
        last_timestamp: Some(Time(now)),
        event_time: Some(MicroTime(now)),
        count: Some(1),
        ..Default::default()
    }
}

/// `Successfully assigned NS/NAME to NODE` (upstream's text).
pub fn scheduled_message(pod: &Pod, node: &str) -> String {
    format!(
        "Successfully assigned {}/{} to {node}",
        pod.metadata.namespace.as_deref().unwrap_or_default(),
        pod.metadata.name.as_deref().unwrap_or_default()
    )
}

impl EventRecorder {
    /// Starts the writer on `tasks`; `instance` identifies this scheduler (its lease identity).
    pub fn start(
        client: Client,
        instance: &str,
        limits: EventLimits,
        tasks: &mut JoinSet<()>,
    ) -> EventRecorder {
        let (tx, rx) = mpsc::channel(limits.buffer.max(1));
        let shared = Arc::new(Shared {
            bucket: Mutex::new(Bucket {
                tokens: limits.burst,
                at: Instant::now(),
            }),
            limits,
            last_failure: Mutex::new(HashMap::new()),
            dropped: AtomicU64::new(0),
            instance: instance.to_string(),
        });
        tasks.spawn(write_events(client, rx, shared.clone()));
        EventRecorder { tx, shared }
    }

    /// A recorder that writes nothing (tests, `keelson why`).
    pub fn disabled() -> EventRecorder {
        let (tx, _) = mpsc::channel(1);
        EventRecorder {
            tx,
            shared: Arc::new(Shared {
                limits: EventLimits::default(),
                bucket: Mutex::new(Bucket {
                    tokens: 0.0,
                    at: Instant::now(),
                }),
                last_failure: Mutex::new(HashMap::new()),
                dropped: AtomicU64::new(0),
                instance: String::new(),
            }),
        }
    }

    pub fn scheduled(&self, pod: &Pod, node: &str) {
        if let Some(uid) = pod.metadata.uid.as_deref() {
            self.shared.forget_failure(uid);
        }
        let msg = scheduled_message(pod, node);
        self.send(pod_event(
            pod,
            "Normal",
            "Scheduled",
            "Binding",
            &msg,
            &self.shared.instance,
        ));
    }

    pub fn failed_scheduling(&self, pod: &Pod, message: &str) {
        if !self.shared.failure_is_news(pod, message, Instant::now()) {
            return;
        }
        self.send(pod_event(
            pod,
            "Warning",
            "FailedScheduling",
            "Scheduling",
            message,
            &self.shared.instance,
        ));
    }

    /// On a victim of preemption (upstream: `Preempted by pod UID on node NODE`).
    pub fn preempted(&self, victim: &Pod, preemptor: &Pod, node: &str) {
        let msg = format!(
            "Preempted by pod {} on node {node}",
            preemptor.metadata.uid.as_deref().unwrap_or_default()
        );
        self.send(pod_event(
            victim,
            "Normal",
            "Preempted",
            "Preempting",
            &msg,
            &self.shared.instance,
        ));
    }

    /// Forgets what was recorded about a pod (it was deleted).
    pub fn forget(&self, uid: &str) {
        self.shared.forget_failure(uid);
    }

    fn send(&self, event: Event) {
        if !self.shared.take_token(Instant::now()) || self.tx.try_send(event).is_err() {
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Events dropped so far (rate limit or full buffer).
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }
}

impl Shared {
    fn take_token(&self, now: Instant) -> bool {
        let mut b = self.bucket.lock().unwrap_or_else(|e| e.into_inner());
        let refill = now.duration_since(b.at).as_secs_f64() * self.limits.per_second;
        b.tokens = (b.tokens + refill).min(self.limits.burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Whether a FailedScheduling message differs from the last written for the pod (or that
    /// one is old enough to repeat); records it if so.
    fn failure_is_news(&self, pod: &Pod, message: &str, now: Instant) -> bool {
        let Some(uid) = pod.metadata.uid.as_deref() else {
            return true;
        };
        let mut last = self.last_failure.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((m, at)) = last.get(uid)
            && m == message
            && now.duration_since(*at) < self.limits.repeat_after
        {
            return false;
        }
        // Bounded: pods deleted without notice cannot make this grow without limit.
        if last.len() >= 100_000 {
            last.clear();
        }
        last.insert(uid.to_string(), (message.to_string(), now));
        true
    }

    fn forget_failure(&self, uid: &str) {
        self.last_failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(uid);
    }
}

async fn write_events(client: Client, mut rx: mpsc::Receiver<Event>, shared: Arc<Shared>) {
    let mut writes = JoinSet::new();
    let mut reported = 0u64;
    let mut report = tokio::time::interval(Duration::from_secs(10));
    loop {
        tokio::select! {
            event = rx.recv() => {
                let Some(event) = event else { break };
                while writes.len() >= shared.limits.in_flight.max(1) {
                    writes.join_next().await;
                }
                let api: Api<Event> = Api::namespaced(
                    client.clone(),
                    event.metadata.namespace.as_deref().unwrap_or("default"),
                );
                writes.spawn(async move {
                    if let Err(e) = api.create(&PostParams::default(), &event).await {
                        tracing::debug!(error = %e, reason = ?event.reason, "writing a scheduler event failed");
                    }
                });
            }
            _ = report.tick() => {
                let dropped = shared.dropped.load(Ordering::Relaxed);
                if dropped > reported {
                    tracing::info!(dropped = dropped - reported, "scheduler events skipped by the rate limit");
                    reported = dropped;
                }
            }
            Some(_) = writes.join_next(), if !writes.is_empty() => {}
        }
    }
    while writes.join_next().await.is_some() {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod() -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "shop", "uid": "u1", "resourceVersion": "7"}
        }))
        .unwrap()
    }

    fn shared(per_second: f64, burst: f64) -> Shared {
        Shared {
            limits: EventLimits {
                per_second,
                burst,
                ..EventLimits::default()
            },
            bucket: Mutex::new(Bucket {
                tokens: burst,
                at: Instant::now(),
            }),
            last_failure: Mutex::new(HashMap::new()),
            dropped: AtomicU64::new(0),
            instance: "me".into(),
        }
    }

    #[test]
    fn events_look_like_upstreams() {
        let p = pod();
        let e = pod_event(
            &p,
            "Normal",
            "Scheduled",
            "Binding",
            &scheduled_message(&p, "n1"),
            "me",
        );
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["message"], "Successfully assigned shop/web to n1");
        assert_eq!(v["involvedObject"]["kind"], "Pod");
        assert_eq!(v["involvedObject"]["uid"], "u1");
        assert_eq!(v["metadata"]["namespace"], "shop");
        assert!(v["metadata"]["name"].as_str().unwrap().starts_with("web."));
        assert_eq!(v["source"]["component"], "default-scheduler");
        assert_eq!(v["reportingComponent"], "default-scheduler");
        assert_eq!(v["count"], 1);
    }

    #[tokio::test(start_paused = true)]
    async fn the_bucket_refills_at_the_configured_rate() {
        let s = shared(10.0, 3.0);
        let t0 = Instant::now();
        let granted = (0..5).filter(|_| s.take_token(t0)).count();
        assert_eq!(granted, 3, "the burst");
        assert!(!s.take_token(t0 + Duration::from_millis(50)));
        assert!(
            s.take_token(t0 + Duration::from_millis(160)),
            "one token per 100 ms"
        );
        assert!(!s.take_token(t0 + Duration::from_millis(170)));
    }

    #[tokio::test(start_paused = true)]
    async fn repeated_failures_are_written_once_per_interval() {
        let s = shared(10.0, 3.0);
        let p = pod();
        let t0 = Instant::now();
        assert!(s.failure_is_news(&p, "0/1 nodes are available: 1 Insufficient cpu.", t0));
        assert!(!s.failure_is_news(
            &p,
            "0/1 nodes are available: 1 Insufficient cpu.",
            t0 + Duration::from_secs(5)
        ));
        assert!(s.failure_is_news(
            &p,
            "0/2 nodes are available: 2 Insufficient cpu.",
            t0 + Duration::from_secs(6)
        ));
        assert!(s.failure_is_news(
            &p,
            "0/2 nodes are available: 2 Insufficient cpu.",
            t0 + Duration::from_secs(700)
        ));
        s.forget_failure("u1");
        assert!(s.failure_is_news(
            &p,
            "0/2 nodes are available: 2 Insufficient cpu.",
            t0 + Duration::from_secs(701)
        ));
    }
}
