//! Events the controllers record (`kubectl get events`, `kubectl describe`), written in the
//! background so recording never slows a reconcile.
//!
//! Like upstream's event recorder, a repeat of the same Event (same object, component, type,
//! reason and message) within [`AGGREGATE_WINDOW`] does not create a new object: the existing
//! Event's `count` and `lastTimestamp` are bumped, which `kubectl describe` shows as
//! `(x3 over 2m)`. Writes are bounded: a token bucket caps them per second and what exceeds
//! it, or finds the buffer full, is dropped (and counted in a periodic log line). Dropping an
//! Event never loses state: status fields carry every outcome.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client, Resource};
use serde_json::json;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// Repeats within this window update the existing Event (upstream's is 10 minutes).
pub const AGGREGATE_WINDOW: Duration = Duration::from_secs(600);
const PER_SECOND: f64 = 50.0;
const BURST: f64 = 500.0;
const BUFFER: usize = 2048;
/// Aggregation entries kept; older ones are forgotten first.
const REMEMBERED: usize = 4096;

/// `Normal` or `Warning`, as upstream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    Normal,
    Warning,
}

impl EventType {
    fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

struct Pending {
    component: &'static str,
    object: ObjectReference,
    type_: EventType,
    reason: String,
    message: String,
    at: Timestamp,
}

/// The background writer all controllers of a term share.
#[derive(Clone)]
pub struct EventSink {
    tx: mpsc::Sender<Pending>,
    dropped: Arc<AtomicU64>,
    bucket: Arc<Mutex<(f64, Instant)>>,
}

/// Records Events as one component (`deployment-controller`, ...).
#[derive(Clone)]
pub struct Recorder {
    sink: EventSink,
    component: &'static str,
}

/// A reference to `obj` for `involvedObject`.
pub fn object_reference<K: Resource<DynamicType = ()>>(obj: &K) -> ObjectReference {
    let m = obj.meta();
    ObjectReference {
        api_version: Some(K::api_version(&()).to_string()),
        kind: Some(K::kind(&()).to_string()),
        namespace: m.namespace.clone(),
        name: m.name.clone(),
        uid: m.uid.clone(),
        resource_version: m.resource_version.clone(),
        field_path: None,
    }
}

impl EventSink {
    /// Starts the writer on `tasks`; it stops when they are aborted.
    pub fn start(client: Client, tasks: &mut JoinSet<()>) -> EventSink {
        let (tx, rx) = mpsc::channel(BUFFER);
        let sink = EventSink {
            tx,
            dropped: Arc::new(AtomicU64::new(0)),
            bucket: Arc::new(Mutex::new((BURST, Instant::now()))),
        };
        tasks.spawn(write_events(client, rx));
        let dropped = sink.dropped.clone();
        tasks.spawn(async move {
            let mut reported = 0;
            let mut tick = tokio::time::interval(Duration::from_secs(30));
            loop {
                tick.tick().await;
                let now = dropped.load(Ordering::Relaxed);
                if now > reported {
                    tracing::info!(
                        dropped = now - reported,
                        "controller Events over the rate limit were not written"
                    );
                    reported = now;
                }
            }
        });
        sink
    }

    /// A sink that drops everything (unit tests).
    pub fn disabled() -> EventSink {
        let (tx, _) = mpsc::channel(1);
        EventSink {
            tx,
            dropped: Arc::new(AtomicU64::new(0)),
            bucket: Arc::new(Mutex::new((0.0, Instant::now()))),
        }
    }

    /// A recorder reporting as `component`.
    pub fn recorder(&self, component: &'static str) -> Recorder {
        Recorder {
            sink: self.clone(),
            component,
        }
    }

    fn take_token(&self) -> bool {
        let mut b = self.bucket.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let refill = now.duration_since(b.1).as_secs_f64() * PER_SECOND;
        b.0 = (b.0 + refill).min(BURST);
        b.1 = now;
        if b.0 >= 1.0 {
            b.0 -= 1.0;
            true
        } else {
            false
        }
    }
}

impl Recorder {
    pub fn normal<K: Resource<DynamicType = ()>>(&self, obj: &K, reason: &str, message: &str) {
        self.record(obj, EventType::Normal, reason, message);
    }

    pub fn warning<K: Resource<DynamicType = ()>>(&self, obj: &K, reason: &str, message: &str) {
        self.record(obj, EventType::Warning, reason, message);
    }

    pub fn record<K: Resource<DynamicType = ()>>(
        &self,
        obj: &K,
        type_: EventType,
        reason: &str,
        message: &str,
    ) {
        if !self.sink.take_token() {
            self.sink.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let pending = Pending {
            component: self.component,
            object: object_reference(obj),
            type_,
            reason: reason.to_owned(),
            message: truncate(message),
            at: Timestamp::now(),
        };
        if self.sink.tx.try_send(pending).is_err() {
            self.sink.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Upstream caps Event messages at 1 KiB.
fn truncate(message: &str) -> String {
    const LIMIT: usize = 1024;
    if message.len() <= LIMIT {
        return message.to_owned();
    }
    let mut end = LIMIT - 3;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &message[..end])
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct Aggregate {
    namespace: String,
    uid: String,
    name: String,
    component: &'static str,
    type_: &'static str,
    reason: String,
    message: String,
}

struct Written {
    event_name: String,
    count: i32,
    at: Instant,
}

/// The namespace an Event about `object` lives in (cluster-scoped objects' go to `default`).
fn event_namespace(object: &ObjectReference) -> String {
    match object.namespace.as_deref() {
        Some(ns) if !ns.is_empty() => ns.to_owned(),
        _ => "default".to_owned(),
    }
}

/// A unique Event name for `object`, as upstream: `<name>.<hex nanoseconds>`.
fn event_name(object: &ObjectReference, at: Timestamp) -> String {
    format!(
        "{}.{:x}",
        object.name.as_deref().unwrap_or("unknown"),
        at.as_nanosecond().max(0)
    )
}

async fn write_events(client: Client, mut rx: mpsc::Receiver<Pending>) {
    let mut written: HashMap<Aggregate, Written> = HashMap::new();
    while let Some(p) = rx.recv().await {
        let namespace = event_namespace(&p.object);
        let key = Aggregate {
            namespace: namespace.clone(),
            uid: p.object.uid.clone().unwrap_or_default(),
            name: p.object.name.clone().unwrap_or_default(),
            component: p.component,
            type_: p.type_.as_str(),
            reason: p.reason.clone(),
            message: p.message.clone(),
        };
        let api: Api<Event> = Api::namespaced(client.clone(), &namespace);
        if let Some(w) = written.get_mut(&key)
            && w.at.elapsed() < AGGREGATE_WINDOW
        {
            let count = w.count + 1;
            let patch = json!({"count": count, "lastTimestamp": p.at.to_string()});
            match api
                .patch(
                    &w.event_name,
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await
            {
                Ok(_) => {
                    w.count = count;
                    w.at = Instant::now();
                    continue;
                }
                Err(e) => {
                    // Gone (or never written): write a new one below.
                    tracing::debug!(error = %e, event = %w.event_name, "could not update an Event; creating a new one");
                }
            }
        }
        let name = event_name(&p.object, p.at);
        let event = Event {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(namespace.clone()),
                ..Default::default()
            },
            involved_object: p.object.clone(),
            reason: Some(p.reason.clone()),
            message: Some(p.message.clone()),
            type_: Some(p.type_.as_str().to_owned()),
            source: Some(EventSource {
                component: Some(p.component.to_owned()),
                host: None,
            }),
            first_timestamp: Some(Time(p.at)),
            last_timestamp: Some(Time(p.at)),
            count: Some(1),
            reporting_component: Some(p.component.to_owned()),
            reporting_instance: Some(p.component.to_owned()),
            ..Default::default()
        };
        match api.create(&PostParams::default(), &event).await {
            Ok(_) => {
                if written.len() >= REMEMBERED {
                    forget_oldest(&mut written);
                }
                written.insert(
                    key,
                    Written {
                        event_name: name,
                        count: 1,
                        at: Instant::now(),
                    },
                );
            }
            Err(e) => {
                // A terminating namespace refuses new Events; that is expected and harmless.
                tracing::debug!(
                    error = %e,
                    reason = %p.reason,
                    object = ?p.object.name,
                    "could not write an Event"
                );
            }
        }
    }
}

/// Drops the half of the entries that were written longest ago.
fn forget_oldest(written: &mut HashMap<Aggregate, Written>) {
    let mut ages: Vec<Instant> = written.values().map(|w| w.at).collect();
    ages.sort();
    if let Some(cut) = ages.get(ages.len() / 2).copied() {
        written.retain(|_, w| w.at > cut);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Node;

    #[test]
    fn names_and_namespaces_follow_upstream() {
        let node = Node {
            metadata: ObjectMeta {
                name: Some("n1".into()),
                uid: Some("u".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let r = object_reference(&node);
        assert_eq!(r.kind.as_deref(), Some("Node"));
        assert_eq!(r.api_version.as_deref(), Some("v1"));
        assert_eq!(event_namespace(&r), "default");
        let at: Timestamp = "2025-01-01T00:00:00.000000255Z".parse().unwrap();
        assert_eq!(event_name(&r, at), format!("n1.{:x}", at.as_nanosecond()));
        assert!(event_name(&r, at).ends_with("ff"));
    }

    #[test]
    fn long_messages_are_cut_on_a_character_boundary() {
        let m = "é".repeat(600);
        let t = truncate(&m);
        assert!(t.len() <= 1024, "{}", t.len());
        assert!(t.ends_with("..."));
        assert_eq!(truncate("short"), "short");
    }

    #[tokio::test(start_paused = true)]
    async fn the_bucket_refills_at_the_sustained_rate() {
        let sink = EventSink::disabled();
        *sink.bucket.lock().unwrap() = (2.0, Instant::now());
        assert!(sink.take_token());
        assert!(sink.take_token());
        assert!(!sink.take_token());
        tokio::time::sleep(Duration::from_millis(1000 / PER_SECOND as u64 + 1)).await;
        assert!(sink.take_token());
        assert!(!sink.take_token());
    }
}
