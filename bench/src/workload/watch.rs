//! Watch fan-out: many watchers on the ConfigMaps of one namespace while a writer creates
//! objects at a steady rate; measures write-to-event latency at every watcher and checks that
//! every watcher saw every event exactly once.
//!
//! Each watcher is its own HTTP/1.1 connection (as independent clients would be) and starts
//! from the resourceVersion of a list taken before the first write, so a watch that is
//! established late still owes every event.
//!
//! Before the list, one "primer" ConfigMap is written, so that the newest revision in the
//! store is a ConfigMap write. Without it, a list taken right after a write to another
//! resource (here: creating the namespace) returns a revision the ConfigMap watch cache has
//! not seen, and a watch from it waits for that revision (see [`QuietProbe`], which checks that
//! case on its own and reports it). The primer keeps the fan-out figures about delivery. The send time of object `i` is stored before its
//! create request goes out; a watcher stamps each network frame once on arrival and charges
//! that instant to every event the frame completes.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, StatusCode};
use http_body_util::BodyExt;
use serde::Deserialize;
use tokio::sync::watch as signal;

use crate::client::{self, Target};
use crate::procfs;
use crate::stats::{Latencies, duration_nanos};
use crate::workload::{configmap_json, object_name};

/// Name prefix of the objects the writer creates.
const PREFIX: &str = "w";
/// How long to wait, after the last write, for every watcher to have every event.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(20);
/// Extra listening after completion, to catch duplicate deliveries.
const DUPLICATE_GRACE: Duration = Duration::from_millis(500);

pub struct WatchPlan {
    pub namespace: String,
    pub watchers: usize,
    pub events: usize,
    pub rate_per_sec: f64,
}

/// The plain informer pattern on a quiet resource: a write to another resource, then a list of
/// ConfigMaps and a watch from the list's resourceVersion. Upstream answers the watch at once.
pub struct QuietProbe {
    pub status: StatusCode,
    /// Watch request sent → response headers.
    pub after: Duration,
    /// The Status message of a failed watch.
    pub message: String,
}

#[derive(Default)]
pub struct WatchResult {
    pub quiet_probe: Option<Result<QuietProbe, String>>,
    pub watchers: usize,
    pub events: usize,
    /// Watchers whose response headers had arrived before the first write.
    pub established: usize,
    /// Every (watcher, event) delivery latency.
    pub latencies: Latencies,
    /// Watchers that received every event exactly once and nothing else.
    pub exact_watchers: usize,
    /// (watcher, event) pairs never delivered.
    pub missing: u64,
    /// Deliveries beyond the first of the same object to the same watcher.
    pub duplicates: u64,
    /// Events that were not ADDED of one of our objects (ERROR, BOOKMARK, MODIFIED...).
    pub unexpected: u64,
    /// Watch streams that ended or failed before the end of the run.
    pub broken_streams: usize,
    pub first_error: Option<String>,
    /// Create latency of the writer.
    pub writes: Latencies,
    pub write_errors: u64,
    /// Writes per second actually achieved.
    pub write_rate: f64,
    /// Last write sent → last event received by the slowest watcher.
    pub drain: Duration,
    pub server_cpu: Option<Duration>,
}

#[derive(Deserialize)]
struct Event<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow)]
    object: Option<EventObject<'a>>,
}

#[derive(Deserialize)]
struct EventObject<'a> {
    #[serde(default, borrow)]
    metadata: Option<EventMeta<'a>>,
}

#[derive(Deserialize)]
struct EventMeta<'a> {
    #[serde(default, borrow)]
    name: Option<Cow<'a, str>>,
}

/// The index of one of our objects named in a watch event line, if it is an ADDED event.
fn added_index(line: &[u8]) -> Option<usize> {
    let ev: Event = serde_json::from_slice(line).ok()?;
    if ev.kind != "ADDED" {
        return None;
    }
    let name = ev.object?.metadata?.name?;
    name.strip_prefix(PREFIX)?.strip_prefix('-')?.parse().ok()
}

/// What one watcher saw.
struct WatcherOutcome {
    nanos: Vec<u64>,
    counts: Vec<u8>,
    unexpected: u64,
    broken: Option<String>,
    last_event: Option<Instant>,
}

struct Shared {
    base: Instant,
    /// Nanoseconds after `base` at which object i was sent, plus one (0: not sent yet).
    sent_at: Vec<AtomicU64>,
    established: AtomicUsize,
    complete: AtomicUsize,
    broken: AtomicUsize,
}

/// Runs the [`QuietProbe`] in namespace `ns` (created here, which is the write to another
/// resource).
async fn quiet_probe(target: &Target, ns: &str) -> anyhow::Result<QuietProbe> {
    let mut conn = target.connect().await?;
    crate::workload::ensure_namespace(&mut conn, ns).await?;
    let list_path = format!("/api/v1/namespaces/{ns}/configmaps");
    let rv = list_rv(&mut conn, &list_path).await?;
    let path = format!(
        "{list_path}?watch=true&timeoutSeconds=10&resourceVersion={}",
        super::list::query_escape(&rv)
    );
    let t = Instant::now();
    let resp = tokio::time::timeout(
        Duration::from_secs(15),
        conn.send(Method::GET, client::uri(&path), Bytes::new()),
    )
    .await??;
    let after = t.elapsed();
    let status = resp.status();
    let mut message = String::new();
    if status != StatusCode::OK {
        let body = resp.into_body().collect().await?.to_bytes();
        message = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["message"].as_str().map(str::to_string))
            .unwrap_or_else(|| client::excerpt(&body));
    }
    Ok(QuietProbe {
        status,
        after,
        message,
    })
}

/// The resourceVersion of a list of `path`.
async fn list_rv(conn: &mut client::Conn, path: &str) -> anyhow::Result<String> {
    let (status, body) = conn.get(client::uri(path)).await?;
    if status != StatusCode::OK {
        anyhow::bail!("GET {path}: HTTP {status}: {}", client::excerpt(&body));
    }
    let list: serde_json::Value = serde_json::from_slice(&body)?;
    Ok(list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or_default()
        .to_string())
}

pub async fn run(
    target: &Target,
    plan: &WatchPlan,
    server_pid: Option<u32>,
) -> anyhow::Result<WatchResult> {
    let quiet = quiet_probe(target, &format!("{}-quiet", plan.namespace))
        .await
        .map_err(|e| format!("{e:#}"));
    let mut writer = target.connect().await?;
    crate::workload::ensure_namespace(&mut writer, &plan.namespace).await?;
    let list_path = format!("/api/v1/namespaces/{}/configmaps", plan.namespace);
    let primer = configmap_json("primer");
    let (status, body) = writer
        .call(Method::POST, client::uri(&list_path), primer)
        .await?;
    if status != StatusCode::CREATED {
        anyhow::bail!(
            "creating the primer ConfigMap: HTTP {status}: {}",
            client::excerpt(&body)
        );
    }
    let rv = list_rv(&mut writer, &list_path).await?;

    let shared = Arc::new(Shared {
        base: Instant::now(),
        sent_at: (0..plan.events).map(|_| AtomicU64::new(0)).collect(),
        established: AtomicUsize::new(0),
        complete: AtomicUsize::new(0),
        broken: AtomicUsize::new(0),
    });
    let (stop_tx, stop_rx) = signal::channel(false);
    let watch_path = format!(
        "{list_path}?watch=true&resourceVersion={}",
        super::list::query_escape(&rv)
    );
    let mut tasks = Vec::with_capacity(plan.watchers);
    for _ in 0..plan.watchers {
        let conn = target.connect().await?;
        tasks.push(tokio::spawn(watcher(
            conn,
            watch_path.clone(),
            plan.events,
            shared.clone(),
            stop_rx.clone(),
        )));
    }
    // Not too long: should the server hold watches until it sees a newer revision (see the
    // module doc), the writes that follow are what releases them, and it gives up after 3 s.
    let deadline = Instant::now() + Duration::from_secs(2);
    while shared.established.load(Ordering::Acquire) < plan.watchers && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut result = WatchResult {
        watchers: plan.watchers,
        events: plan.events,
        established: shared.established.load(Ordering::Acquire),
        quiet_probe: Some(quiet),
        ..WatchResult::default()
    };

    // Bodies are built before the clock starts.
    let bodies: Vec<Bytes> = (0..plan.events)
        .map(|i| configmap_json(&object_name(PREFIX, i)))
        .collect();
    let create_uri = client::uri(&list_path);
    let meter = server_pid.and_then(procfs::CpuMeter::start);
    let interval = Duration::from_secs_f64(1.0 / plan.rate_per_sec.max(0.001));
    let start = tokio::time::Instant::now();
    let mut write_nanos = Vec::with_capacity(plan.events);
    let mut last_send = Instant::now();
    for (i, body) in bodies.into_iter().enumerate() {
        // A fixed schedule (not "sleep after each write"), so a slow write does not lower the rate.
        tokio::time::sleep_until(start + interval * i as u32).await;
        let t = Instant::now();
        last_send = t;
        shared.sent_at[i].store(duration_nanos(t - shared.base) + 1, Ordering::Release);
        match writer.call(Method::POST, create_uri.clone(), body).await {
            Ok((StatusCode::CREATED, _)) => write_nanos.push(duration_nanos(t.elapsed())),
            Ok((status, body)) => {
                result.write_errors += 1;
                result.first_error.get_or_insert_with(|| {
                    format!("create {i}: HTTP {status}: {}", client::excerpt(&body))
                });
            }
            Err(e) => {
                result.write_errors += 1;
                result
                    .first_error
                    .get_or_insert_with(|| format!("create {i}: {e}"));
                writer = target.connect().await?;
            }
        }
    }
    let writes_done = Instant::now();
    result.write_rate = plan.events as f64 / start.elapsed().as_secs_f64().max(1e-9);
    result.writes = Latencies::from_nanos(write_nanos);

    let deadline = writes_done + DRAIN_TIMEOUT;
    let finished =
        || shared.complete.load(Ordering::Acquire) + shared.broken.load(Ordering::Acquire);
    while finished() < plan.watchers && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    tokio::time::sleep(DUPLICATE_GRACE).await;
    result.server_cpu = meter.and_then(|m| m.read());
    let _ = stop_tx.send(true);

    let mut all = Vec::with_capacity(plan.watchers * plan.events);
    let mut last_event: Option<Instant> = None;
    for t in tasks {
        let out = t.await?;
        all.extend_from_slice(&out.nanos);
        result.unexpected += out.unexpected;
        let mut exact = out.unexpected == 0;
        for c in &out.counts {
            match c {
                0 => result.missing += 1,
                1 => {}
                n => result.duplicates += u64::from(n - 1),
            }
            exact &= *c == 1;
        }
        if exact {
            result.exact_watchers += 1;
        }
        if let Some(b) = out.broken {
            result.broken_streams += 1;
            result.first_error.get_or_insert(b);
        }
        last_event = last_event.max(out.last_event);
    }
    result.drain = last_event.map_or(Duration::ZERO, |l| l.saturating_duration_since(last_send));
    result.latencies = Latencies::from_nanos(all);
    Ok(result)
}

async fn watcher(
    mut conn: client::Conn,
    path: String,
    events: usize,
    shared: Arc<Shared>,
    mut stop: signal::Receiver<bool>,
) -> WatcherOutcome {
    let mut out = WatcherOutcome {
        nanos: Vec::with_capacity(events),
        counts: vec![0; events],
        unexpected: 0,
        broken: None,
        last_event: None,
    };
    watch_stream(&mut conn, &path, events, &shared, &mut stop, &mut out).await;
    if out.broken.is_some() {
        shared.broken.fetch_add(1, Ordering::AcqRel);
    }
    out
}

/// Opens the watch and reads it until `stop`, recording into `out`.
async fn watch_stream(
    conn: &mut client::Conn,
    path: &str,
    events: usize,
    shared: &Shared,
    stop: &mut signal::Receiver<bool>,
    out: &mut WatcherOutcome,
) {
    let resp = match conn
        .send(Method::GET, client::uri(path), Bytes::new())
        .await
    {
        Ok(r) if r.status() == StatusCode::OK => r,
        Ok(r) => {
            out.broken = Some(format!("watch: HTTP {}", r.status()));
            return;
        }
        Err(e) => {
            out.broken = Some(format!("watch: {e}"));
            return;
        }
    };
    shared.established.fetch_add(1, Ordering::AcqRel);
    let mut body = resp.into_body();
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut distinct = 0usize;
    loop {
        let frame = tokio::select! {
            f = body.frame() => f,
            _ = stop.changed() => break,
        };
        let data = match frame {
            Some(Ok(f)) => match f.into_data() {
                Ok(d) => d,
                Err(_) => continue, // trailers
            },
            Some(Err(e)) => {
                out.broken = Some(format!("watch stream failed: {e}"));
                break;
            }
            None => {
                out.broken = Some("watch stream ended before the run did".to_string());
                break;
            }
        };
        let arrived = Instant::now();
        let arrived_nanos = duration_nanos(arrived - shared.base);
        buf.extend_from_slice(&data);
        let mut start = 0;
        while let Some(nl) = buf[start..].iter().position(|b| *b == b'\n') {
            let line = &buf[start..start + nl];
            start += nl + 1;
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match added_index(line).filter(|i| *i < events) {
                Some(i) => {
                    out.counts[i] = out.counts[i].saturating_add(1);
                    if out.counts[i] == 1 {
                        distinct += 1;
                        let sent = shared.sent_at[i].load(Ordering::Acquire);
                        // sent == 0 would be an event for an object not written yet: impossible
                        // unless names collide with leftovers, which `unexpected` would hide.
                        if sent > 0 {
                            out.nanos.push(arrived_nanos.saturating_sub(sent - 1));
                        }
                        out.last_event = Some(arrived);
                        if distinct == events {
                            shared.complete.fetch_add(1, Ordering::AcqRel);
                        }
                    }
                }
                None => out.unexpected += 1,
            }
        }
        buf.drain(..start);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_object_index_of_added_events_only() {
        let added = br#"{"type":"ADDED","object":{"kind":"ConfigMap","metadata":{"name":"w-000042","namespace":"x"},"data":{}}}"#;
        assert_eq!(added_index(added), Some(42));
        let modified = br#"{"type":"MODIFIED","object":{"metadata":{"name":"w-000042"}}}"#;
        assert_eq!(added_index(modified), None);
        let other = br#"{"type":"ADDED","object":{"metadata":{"name":"cm-000001"}}}"#;
        assert_eq!(added_index(other), None);
        let error = br#"{"type":"ERROR","object":{"kind":"Status","code":410}}"#;
        assert_eq!(added_index(error), None);
        assert_eq!(added_index(b"not json"), None);
        // Escaped characters force the owned branch of Cow; still parsed.
        let escaped = br#"{"type":"ADDED","object":{"metadata":{"name":"w-\u0030\u0030\u0030\u0030\u0030\u0037"}}}"#;
        assert_eq!(added_index(escaped), Some(7));
    }
}
