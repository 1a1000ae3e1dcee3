//! The sequence of workloads one server goes through, the same for every way of running it
//! (embedded store, etcd behind it): namespaces, a warm-up, the timed creates, GETs by name,
//! LISTs of the namespace holding half of the creates, and optionally the watch fan-out.
//!
//! Every server sees the same objects, the same client count and the same request order
//! (the GETs' pseudo-random sequence has a fixed seed), so their figures compare directly.

use std::time::Instant;

use bytes::Bytes;
use http::{Method, StatusCode};

use crate::client;
use crate::findings::Plan;
use crate::keelson::Server;
use crate::workload::list::{self, ListResult};
use crate::workload::watch::{self, WatchResult};
use crate::workload::{self, Job, LoadResult, Procs, configmap_json, object_name};

/// Namespace holding the objects the LIST phase reads (every even-numbered create).
pub const LIST_NS: &str = "bench-list";
/// Namespace holding the odd-numbered creates.
pub const LOAD_NS: &str = "bench-load";
const WARM_NS: &str = "bench-warmup";
const WATCH_NS: &str = "bench-watch";
/// Name prefix of the timed creates (`cm-000000`...).
pub const CREATE_PREFIX: &str = "cm";

/// What the workloads measured on one server.
#[derive(Default)]
pub struct Workload {
    pub creates: Option<LoadResult>,
    pub gets: Option<LoadResult>,
    pub lists: Vec<ListResult>,
    pub watch: Option<WatchResult>,
    /// Failures that did not stop the sequence (a failed warm-up create).
    pub errors: Vec<String>,
}

impl Workload {
    /// Objects the sequence stored: warm-up, creates and watch writes.
    pub fn stored_objects(&self, plan: &Plan) -> u64 {
        self.creates.as_ref().map_or(0, |c| c.ok)
            + self.watch.as_ref().map_or(0, |w| w.writes.len() as u64)
            + plan.warmup as u64
    }
}

fn create_job(i: usize, prefix: &str, ns_for: impl Fn(usize) -> &'static str) -> Job {
    let ns = ns_for(i);
    Job {
        method: Method::POST,
        uri: client::uri(&format!("/api/v1/namespaces/{ns}/configmaps")),
        body: configmap_json(&object_name(prefix, i)),
    }
}

/// The namespace of create `i`: even ones go to the namespace the LIST phase reads.
pub fn split_ns(i: usize) -> &'static str {
    if i.is_multiple_of(2) {
        LIST_NS
    } else {
        LOAD_NS
    }
}

/// Runs the sequence against `server`, charging CPU to `procs`, filling `out` as it goes (so
/// a failure part-way keeps what was measured before it). The watch fan-out only runs when
/// `with_watch` is set.
pub async fn run(
    out: &mut Workload,
    server: &Server,
    procs: Procs,
    plan: &Plan,
    with_watch: bool,
    t0: Instant,
) -> anyhow::Result<()> {
    let target = server.target()?;
    let mut conn = target.connect().await?;
    for ns in [LIST_NS, LOAD_NS, WARM_NS] {
        workload::ensure_namespace(&mut conn, ns).await?;
    }
    drop(conn);

    crate::progress(t0, &format!("warm-up: {} creates", plan.warmup));
    let jobs = (0..plan.warmup)
        .map(|i| create_job(i, "warm", |_| WARM_NS))
        .collect();
    let warm =
        workload::closed_loop(&target, plan.clients, jobs, StatusCode::CREATED, procs).await?;
    if warm.errors > 0 {
        out.errors.push(format!(
            "warm-up: {} of {} creates failed: {}",
            warm.errors,
            plan.warmup,
            warm.first_error.unwrap_or_default()
        ));
    }

    crate::progress(
        t0,
        &format!(
            "creates: {} ConfigMaps with {} clients",
            plan.creates, plan.clients
        ),
    );
    let jobs = (0..plan.creates)
        .map(|i| create_job(i, CREATE_PREFIX, split_ns))
        .collect();
    out.creates =
        Some(workload::closed_loop(&target, plan.clients, jobs, StatusCode::CREATED, procs).await?);

    crate::progress(
        t0,
        &format!(
            "gets: {} GETs by name with {} clients",
            plan.gets, plan.clients
        ),
    );
    let uris: Vec<http::Uri> = (0..plan.creates)
        .map(|i| {
            client::uri(&format!(
                "/api/v1/namespaces/{}/configmaps/{}",
                split_ns(i),
                object_name(CREATE_PREFIX, i)
            ))
        })
        .collect();
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let jobs = (0..plan.gets)
        .filter_map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let uri = uris.get((seed % uris.len().max(1) as u64) as usize)?;
            Some(Job {
                method: Method::GET,
                uri: uri.clone(),
                body: Bytes::new(),
            })
        })
        .collect();
    out.gets =
        Some(workload::closed_loop(&target, plan.clients, jobs, StatusCode::OK, procs).await?);

    let listed = plan.creates.div_ceil(2);
    crate::progress(
        t0,
        &format!(
            "lists: {listed} objects, {} repetitions per shape",
            plan.list_reps
        ),
    );
    out.lists = list::run(&target, LIST_NS, listed, plan.list_reps, procs).await?;

    if !with_watch {
        return Ok(());
    }
    crate::progress(
        t0,
        &format!(
            "watch: {} watchers, {} events at {}/s",
            plan.watchers, plan.watch_events, plan.watch_rate
        ),
    );
    let wplan = watch::WatchPlan {
        namespace: WATCH_NS.to_string(),
        watchers: plan.watchers,
        events: plan.watch_events,
        rate_per_sec: plan.watch_rate,
    };
    out.watch = Some(watch::run(&target, &wplan, procs.server).await?);
    Ok(())
}
