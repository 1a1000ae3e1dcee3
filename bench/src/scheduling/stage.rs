//! One stage of a phase: create N pods in a fresh namespace from many clients at once, as fast
//! as they are answered, and time each pod from its create to its binding.
//!
//! A single watch on the namespace (opened from the resourceVersion of a list taken before the
//! first create, so nothing is missed however late it is established) stamps each network frame
//! on arrival and charges that instant to every pod the frame first shows with
//! `spec.nodeName` set. Should the server end the watch, it is opened again from the last
//! resourceVersion seen. The stage ends when every pod is bound, or when no pod has been bound
//! for the plan's stall timeout.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, StatusCode};
use http_body_util::BodyExt;
use serde::Deserialize;
use tokio::sync::watch as signal;

use crate::client::{self, Conn, Target};
use crate::procfs::{CpuMeter, MachineMeter};
use crate::stats::duration_nanos;
use crate::workload::ensure_namespace;

use super::api;
use super::figures::Stamps;
use super::objects::{PodShape, pod_index, pod_json};

/// How long creates may still be in flight after the stage ended (only a stalled stage has
/// any).
const CREATOR_GRACE: Duration = Duration::from_secs(30);

pub struct StageSpec {
    pub namespace: String,
    pub shape: PodShape,
    pub pods: usize,
    pub clients: usize,
    pub stall_timeout: Duration,
}

/// A process whose CPU time is measured over the stage.
#[derive(Debug, Clone)]
pub struct Proc {
    pub label: &'static str,
    pub pid: Option<u32>,
}

pub struct StageOutcome {
    pub stamps: Stamps,
    /// Every pod bound (else the stage stalled).
    pub complete: bool,
    pub errors: Vec<String>,
    /// CPU time of each measured process from the first create to the last binding, with the
    /// wall time the meters ran.
    pub cpu: Vec<(&'static str, Option<Duration>)>,
    pub meter_wall: Duration,
    /// Busy CPU time of the whole machine over the same window (everything that ran).
    pub machine: Option<Duration>,
}

/// Shared between the creators, the watcher and the waiting loop.
struct Shared {
    base: Instant,
    created: AtomicUsize,
    bound: AtomicUsize,
}

pub async fn run(
    target: &Target,
    spec: &StageSpec,
    procs: &[Proc],
    progress: &dyn Fn(&str),
) -> anyhow::Result<StageOutcome> {
    let n = spec.pods;
    let mut conn = target.connect().await?;
    ensure_namespace(&mut conn, &spec.namespace).await?;
    let list_path = format!("/api/v1/namespaces/{}/pods", spec.namespace);
    let rv = api::list_rv(&mut conn, &list_path).await?;

    let shared = Arc::new(Shared {
        base: Instant::now(),
        created: AtomicUsize::new(0),
        bound: AtomicUsize::new(0),
    });
    let (stop_tx, stop_rx) = signal::channel(false);
    let (up_tx, mut up_rx) = signal::channel(false);
    let watcher = tokio::spawn(watch(
        target.clone(),
        list_path.clone(),
        rv,
        n,
        shared.clone(),
        stop_rx,
        up_tx,
    ));
    // Creates may start before the watch is established (it starts from the list's revision),
    // but waiting a little keeps the first bindings from queueing behind the watch set-up.
    let _ = tokio::time::timeout(Duration::from_secs(2), up_rx.wait_for(|up| *up)).await;

    // Bodies are built before the clock starts; pod i goes to client i % clients.
    let clients = spec.clients.max(1);
    let mut batches: Vec<Vec<(usize, Bytes)>> = vec![Vec::new(); clients];
    for i in 0..n {
        batches[i % clients].push((i, pod_json(&spec.shape, i)));
    }
    let mut conns = Vec::with_capacity(clients);
    for _ in 0..clients {
        conns.push(target.connect().await?);
    }
    let meters: Vec<Option<CpuMeter>> = procs
        .iter()
        .map(|p| p.pid.and_then(CpuMeter::start))
        .collect();
    let machine_meter = MachineMeter::start();
    let meter_start = Instant::now();
    let mut creators = Vec::with_capacity(clients);
    for (conn, batch) in conns.into_iter().zip(batches) {
        creators.push(tokio::spawn(create(
            target.clone(),
            conn,
            list_path.clone(),
            batch,
            shared.clone(),
        )));
    }

    let mut last_bound = 0;
    let mut last_change = Instant::now();
    let mut last_report = Instant::now();
    let complete = loop {
        tokio::time::sleep(Duration::from_millis(10)).await;
        let bound = shared.bound.load(Ordering::Acquire);
        if bound >= n {
            break true;
        }
        if bound != last_bound {
            last_bound = bound;
            last_change = Instant::now();
        } else if last_change.elapsed() > spec.stall_timeout {
            break false;
        }
        if watcher.is_finished() {
            break false;
        }
        if last_report.elapsed() > Duration::from_secs(3) {
            progress(&format!(
                "{}: {} created, {bound} of {n} bound",
                spec.namespace,
                shared.created.load(Ordering::Acquire)
            ));
            last_report = Instant::now();
        }
    };
    let meter_wall = meter_start.elapsed();
    let machine = machine_meter.and_then(|m| m.read());
    let cpu = procs
        .iter()
        .zip(&meters)
        .map(|(p, m)| (p.label, m.as_ref().and_then(CpuMeter::read)))
        .collect();

    let mut stamps = Stamps::new(n);
    let mut errors = Vec::new();
    for c in creators {
        // A stalled stage may have creates still waiting on a server that stopped answering:
        // give them a moment, then leave them.
        let abort = c.abort_handle();
        let out = match tokio::time::timeout(CREATOR_GRACE, c).await {
            Ok(out) => out?,
            Err(_) => {
                abort.abort();
                errors.push(format!(
                    "a client's creates were still unanswered {CREATOR_GRACE:?} after the stage ended"
                ));
                continue;
            }
        };
        for (i, sent, created) in out.stamps {
            if let Some(s) = stamps.sent.get_mut(i) {
                *s = Some(sent);
            }
            if let Some(c) = stamps.created.get_mut(i) {
                *c = created;
            }
        }
        if out.errors > 0 {
            errors.push(format!(
                "{} failed creates, e.g. {}",
                out.errors,
                out.first_error.unwrap_or_default()
            ));
        }
    }
    let _ = stop_tx.send(true);
    let w = watcher.await?;
    stamps.bound = w.bound;
    if let Some(e) = w.error {
        errors.push(e);
    }
    if !complete {
        errors.push(format!(
            "{}: only {} of {n} pods bound (no new binding for {:?})",
            spec.namespace,
            shared.bound.load(Ordering::Acquire),
            spec.stall_timeout
        ));
    }
    Ok(StageOutcome {
        stamps,
        complete,
        errors,
        cpu,
        meter_wall,
        machine,
    })
}

struct CreatorOut {
    /// (pod, sent, created) in nanoseconds after the base.
    stamps: Vec<(usize, u64, Option<u64>)>,
    errors: usize,
    first_error: Option<String>,
}

/// One client: its pods one after the other, each sent as soon as the previous was answered.
async fn create(
    target: Target,
    mut conn: Conn,
    path: String,
    batch: Vec<(usize, Bytes)>,
    shared: Arc<Shared>,
) -> CreatorOut {
    let uri = client::uri(&path);
    let mut out = CreatorOut {
        stamps: Vec::with_capacity(batch.len()),
        errors: 0,
        first_error: None,
    };
    let now = || duration_nanos(shared.base.elapsed());
    for (i, body) in batch {
        let sent = now();
        let created = match conn.call(Method::POST, uri.clone(), body).await {
            Ok((StatusCode::CREATED, _)) => {
                shared.created.fetch_add(1, Ordering::AcqRel);
                Some(now())
            }
            Ok((status, resp)) => {
                out.errors += 1;
                out.first_error.get_or_insert_with(|| {
                    format!("pod {i}: HTTP {status}: {}", client::excerpt(&resp))
                });
                None
            }
            Err(e) => {
                out.errors += 1;
                out.first_error
                    .get_or_insert_with(|| format!("pod {i}: {e}"));
                match target.connect().await {
                    Ok(c) => conn = c,
                    Err(_) => {
                        out.stamps.push((i, sent, None));
                        break;
                    }
                }
                None
            }
        };
        out.stamps.push((i, sent, created));
    }
    out
}

#[derive(Deserialize)]
struct Event {
    #[serde(rename = "type")]
    kind: String,
    object: EventObject,
}

#[derive(Deserialize)]
struct EventObject {
    #[serde(default)]
    metadata: Meta,
    #[serde(default)]
    spec: Option<Spec>,
    /// Set on ERROR events (a Status).
    #[serde(default)]
    message: Option<String>,
}

#[derive(Deserialize, Default)]
struct Meta {
    #[serde(default)]
    name: String,
    #[serde(default, rename = "resourceVersion")]
    resource_version: String,
}

#[derive(Deserialize)]
struct Spec {
    #[serde(default, rename = "nodeName")]
    node_name: Option<String>,
}

struct WatchOut {
    bound: Vec<Option<u64>>,
    error: Option<String>,
}

/// What one watch event means for the stage.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    /// Pod `i` is bound.
    Bound(usize, String),
    /// Nothing to record; the resourceVersion to resume from, if any.
    Other(String),
    /// The server reported an error (e.g. 410 Gone): the watch cannot go on.
    Error(String),
}

fn interpret(line: &[u8]) -> Result<Seen, serde_json::Error> {
    let ev: Event = serde_json::from_slice(line)?;
    let rv = ev.object.metadata.resource_version;
    if ev.kind == "ERROR" {
        return Ok(Seen::Error(ev.object.message.unwrap_or_default()));
    }
    let bound = ev.kind != "DELETED"
        && ev
            .object
            .spec
            .and_then(|s| s.node_name)
            .is_some_and(|n| !n.is_empty());
    match pod_index(&ev.object.metadata.name) {
        Some(i) if bound => Ok(Seen::Bound(i, rv)),
        _ => Ok(Seen::Other(rv)),
    }
}

async fn watch(
    target: Target,
    list_path: String,
    mut rv: String,
    n: usize,
    shared: Arc<Shared>,
    mut stop: signal::Receiver<bool>,
    up: signal::Sender<bool>,
) -> WatchOut {
    let mut out = WatchOut {
        bound: vec![None; n],
        error: None,
    };
    let mut reopened = 0;
    'reopen: loop {
        let path = format!(
            "{list_path}?watch=true&allowWatchBookmarks=true&resourceVersion={}",
            crate::workload::list::query_escape(&rv)
        );
        let resp = match target.connect().await {
            Ok(mut c) => c.send(Method::GET, client::uri(&path), Bytes::new()).await,
            Err(e) => Err(e),
        };
        let resp = match resp {
            Ok(r) if r.status() == StatusCode::OK => r,
            Ok(r) => {
                out.error = Some(format!("watch {path}: HTTP {}", r.status()));
                return out;
            }
            Err(e) => {
                out.error = Some(format!("watch {path}: {e}"));
                return out;
            }
        };
        let _ = up.send(true);
        let mut body = resp.into_body();
        let mut buf: Vec<u8> = Vec::with_capacity(256 * 1024);
        loop {
            let frame = tokio::select! {
                f = body.frame() => f,
                _ = stop.changed() => return out,
            };
            let data = match frame {
                Some(Ok(f)) => match f.into_data() {
                    Ok(d) => d,
                    Err(_) => continue,
                },
                Some(Err(_)) | None => {
                    // The server ended the watch (timeout, restart of its cache): go on from
                    // the last revision seen, a few times at most.
                    reopened += 1;
                    if reopened > 20 {
                        out.error = Some("the pod watch kept ending".to_string());
                        return out;
                    }
                    continue 'reopen;
                }
            };
            let arrived = duration_nanos(shared.base.elapsed());
            buf.extend_from_slice(&data);
            let mut start = 0;
            while let Some(nl) = buf[start..].iter().position(|b| *b == b'\n') {
                let line = &buf[start..start + nl];
                start += nl + 1;
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                match interpret(line) {
                    Ok(Seen::Bound(i, v)) => {
                        if let Some(slot @ None) = out.bound.get_mut(i) {
                            *slot = Some(arrived);
                            shared.bound.fetch_add(1, Ordering::AcqRel);
                        }
                        rv = v;
                    }
                    Ok(Seen::Other(v)) => {
                        if !v.is_empty() {
                            rv = v;
                        }
                    }
                    Ok(Seen::Error(msg)) => {
                        out.error = Some(format!("the pod watch failed: {msg}"));
                        return out;
                    }
                    Err(e) => {
                        out.error = Some(format!("undecodable watch event: {e}"));
                        return out;
                    }
                }
            }
            buf.drain(..start);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interprets_watch_events() {
        let added = br#"{"type":"ADDED","object":{"kind":"Pod","metadata":{"name":"pod-000003","resourceVersion":"10"},"spec":{"containers":[]}}}"#;
        assert_eq!(interpret(added).unwrap(), Seen::Other("10".into()));
        let bound = br#"{"type":"MODIFIED","object":{"metadata":{"name":"pod-000003","resourceVersion":"11"},"spec":{"nodeName":"n-1"},"status":{}}}"#;
        assert_eq!(interpret(bound).unwrap(), Seen::Bound(3, "11".into()));
        let created_bound = br#"{"type":"ADDED","object":{"metadata":{"name":"pod-000004","resourceVersion":"12"},"spec":{"nodeName":"n-1"}}}"#;
        assert_eq!(
            interpret(created_bound).unwrap(),
            Seen::Bound(4, "12".into())
        );
        let deleted = br#"{"type":"DELETED","object":{"metadata":{"name":"pod-000003","resourceVersion":"13"},"spec":{"nodeName":"n-1"}}}"#;
        assert_eq!(interpret(deleted).unwrap(), Seen::Other("13".into()));
        let other = br#"{"type":"MODIFIED","object":{"metadata":{"name":"probe","resourceVersion":"14"},"spec":{"nodeName":"n-1"}}}"#;
        assert_eq!(interpret(other).unwrap(), Seen::Other("14".into()));
        let bookmark =
            br#"{"type":"BOOKMARK","object":{"kind":"Pod","metadata":{"resourceVersion":"20"}}}"#;
        assert_eq!(interpret(bookmark).unwrap(), Seen::Other("20".into()));
        let gone = br#"{"type":"ERROR","object":{"kind":"Status","code":410,"message":"too old resource version"}}"#;
        assert_eq!(
            interpret(gone).unwrap(),
            Seen::Error("too old resource version".into())
        );
        assert!(interpret(b"{not json").is_err());
    }
}
