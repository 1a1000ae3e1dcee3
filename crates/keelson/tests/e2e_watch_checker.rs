//! End-to-end watch cache correctness checker, on both backends.
//!
//! Eight writers create, update and delete ConfigMaps across four namespaces, recording the
//! `resourceVersion` of every acknowledged write and delete; twelve watchers (per namespace,
//! all namespaces, and label selectors — including a label that writers change, so objects
//! enter and leave selections) list and then watch the way client-go's reflector does. In the
//! middle of the writes the server is restarted twice: with SIGTERM, the watchers resuming at
//! once from their last seen `resourceVersion` (the store still has that history); then with
//! SIGKILL, the watchers held back until compaction has passed their position, so resuming
//! must answer `410 Expired` and they relist.
//!
//! A write whose answer was lost to a restart is settled afterwards by reading the object (its
//! writer is the only one touching it): it either took effect — at the `resourceVersion` the
//! object now carries — or it did not. A delete that took effect with its answer lost is the
//! one write whose revision stays unknown; it may be seen at most once.
//!
//! Then every watcher is checked against the writers' record:
//! * events arrive in strictly increasing `resourceVersion` order, so nothing is seen twice;
//! * every event is a real write in the watcher's scope, with the right type (ADDED/MODIFIED/
//!   DELETED, selector transitions included) and content, and no write that did not take
//!   effect is ever seen;
//! * between a (re)list and the furthest point the watcher reached before its next relist, it
//!   saw every acknowledged write in its scope — across reconnections and restarts;
//! * every list it made showed exactly the state at the list's `resourceVersion`;
//! * it ends with exactly the final state.

// Integration tests unwrap freely: a panic is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::etcd::Etcd;
use common::http::{Http, HttpError, Reply, resource_version};
use common::{Cluster, ServerOptions, TestRng};
use serde_json::{Value, json};
use tokio::sync::watch;

const NAMESPACES: usize = 4;
const WRITERS: usize = 8;
const OBJECTS_PER_WRITER: usize = 6;
/// Writes of an unknown outcome are settled within this (the server is back by then).
const SETTLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Watchers must reach their final target within this once it is known.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(30);

/// Compaction keeps 5 s of history: enough for the SIGTERM round's watchers to resume from
/// it, short enough that the SIGKILL round can wait for it to pass them.
const COMPACTION_FLAGS: [&str; 3] = [
    "--compaction-interval=250ms",
    "--compaction-min-age=5s",
    "--compaction-min-revisions=0",
];

fn ns_name(i: usize) -> String {
    format!("wc{i}")
}

// ---------------------------------------------------------------------------------------------
// What was written.

/// An object's content as the test wrote it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Content {
    /// Unique per write: identifies which write produced a state.
    token: String,
    /// Never changes for a given name.
    stable: String,
    /// Changes at random on every write: objects move in and out of `color` selections.
    color: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Create,
    Update,
    Delete,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Outcome {
    /// Took effect at this revision.
    At(i64),
    /// Took effect; the revision is unknown (a delete whose answer was lost).
    AtUnknown,
    /// Did not take effect.
    NotApplied,
}

#[derive(Clone, Debug)]
struct Write {
    ns: String,
    name: String,
    op: Op,
    /// The content written (for a delete: none).
    after: Option<Content>,
    outcome: Outcome,
    /// The answer was lost and the outcome settled by reading the object.
    settled: bool,
    /// How many restarts had completed when the write was made.
    phase: usize,
}

type Key = (String, String);

/// Every write, per object in the order it was made (which is revision order: one writer owns
/// each object and waits for each write before the next).
#[derive(Default)]
struct Record {
    objects: BTreeMap<Key, Vec<Write>>,
}

/// What a watcher sees of one write.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Visible {
    ty: &'static str,
    key: Key,
    /// The token of the content the event must carry.
    token: String,
    /// For an object leaving the selection: the token of its new content (which the event
    /// must *not* carry, see `check_watcher`).
    left_with: Option<String>,
}

impl Visible {
    fn same(&self, other: &Visible) -> bool {
        (self.ty, &self.key, &self.token) == (other.ty, &other.key, &other.token)
    }
}

/// An object's state at some revision, as far as the record can tell.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Known {
    Certain(Option<(i64, Content)>),
    /// A delete whose revision is unknown may or may not have happened by then.
    EitherOr(Option<(i64, Content)>),
}

impl Record {
    fn add(&mut self, w: Write) {
        self.objects
            .entry((w.ns.clone(), w.name.clone()))
            .or_default()
            .push(w);
    }

    /// The events a watcher of `scope` must see for acknowledged writes (by revision), those it
    /// may see once (effective writes of unknown revision), and the tokens it must never see.
    fn visible(&self, scope: &Scope) -> (BTreeMap<i64, Visible>, Vec<Visible>, HashSet<String>) {
        let mut by_rv = BTreeMap::new();
        let mut floating = Vec::new();
        let mut never = HashSet::new();
        for (key, writes) in &self.objects {
            let mut before: Option<&Content> = None;
            for w in writes {
                if w.outcome == Outcome::NotApplied {
                    if let Some(c) = &w.after {
                        never.insert(c.token.clone());
                    }
                    continue;
                }
                let was = before.is_some_and(|c| scope.matches(&key.0, c));
                let is = w.after.as_ref().is_some_and(|c| scope.matches(&key.0, c));
                // Upstream's cacher: entering the selection is ADDED, staying MODIFIED, and
                // leaving DELETED carrying the object's previous content.
                let seen = match (was, is) {
                    (false, true) => Some(("ADDED", w.after.as_ref())),
                    (true, true) => Some(("MODIFIED", w.after.as_ref())),
                    (true, false) => Some(("DELETED", before)),
                    (false, false) => None,
                };
                if let Some((ty, Some(content))) = seen {
                    let v = Visible {
                        ty,
                        key: key.clone(),
                        token: content.token.clone(),
                        left_with: w.after.as_ref().map(|c| c.token.clone()),
                    };
                    match w.outcome {
                        Outcome::At(rv) => {
                            by_rv.insert(rv, v);
                        }
                        _ => floating.push(v),
                    }
                }
                before = w.after.as_ref();
            }
        }
        (by_rv, floating, never)
    }

    /// Each object's state at revision `rv`.
    fn state_at(&self, rv: i64) -> BTreeMap<Key, Known> {
        let mut out = BTreeMap::new();
        for (key, writes) in &self.objects {
            let mut state: Option<(i64, Content)> = None;
            let mut pending_unknown = false;
            for w in writes {
                match w.outcome {
                    Outcome::NotApplied => {}
                    Outcome::AtUnknown => pending_unknown = true,
                    Outcome::At(r) if r <= rv => {
                        pending_unknown = false;
                        state = w.after.clone().map(|c| (r, c));
                    }
                    Outcome::At(_) => break,
                }
            }
            let known = if pending_unknown {
                Known::EitherOr(state)
            } else {
                Known::Certain(state)
            };
            out.insert(key.clone(), known);
        }
        out
    }

    /// Each object's final state (every outcome is settled, so this is certain).
    fn final_state(&self) -> BTreeMap<Key, (Option<i64>, Content)> {
        let mut out = BTreeMap::new();
        for (key, writes) in &self.objects {
            let last = writes
                .iter()
                .rev()
                .find(|w| w.outcome != Outcome::NotApplied);
            if let Some(w) = last
                && let Some(c) = &w.after
            {
                let rv = match w.outcome {
                    Outcome::At(r) => Some(r),
                    _ => None,
                };
                out.insert(key.clone(), (rv, c.clone()));
            }
        }
        out
    }
}

// ---------------------------------------------------------------------------------------------
// Writers.

fn configmap(name: &str, c: &Content, rv: Option<i64>) -> Value {
    let mut meta = json!({"name": name, "labels": {"stable": c.stable, "color": c.color}});
    if let Some(rv) = rv {
        meta["resourceVersion"] = json!(rv.to_string());
    }
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"token": c.token}})
}

/// A status that settles nothing: the write may or may not have happened.
fn unknown(r: &Result<Reply, HttpError>) -> bool {
    match r {
        Err(_) => true,
        Ok(reply) => reply.status >= 500 || reply.status == 429,
    }
}

struct Writer {
    id: usize,
    ns: String,
    http: Arc<Http>,
    rng: TestRng,
    /// What this writer believes each of its objects is now: revision and content.
    current: Vec<Option<(i64, Content)>>,
    seq: u64,
    log: Vec<Write>,
    /// Restarts completed so far (stamped on each write).
    phase: Arc<AtomicUsize>,
}

impl Writer {
    fn name(&self, k: usize) -> String {
        format!("w{}-o{k}", self.id)
    }

    fn path(&self, k: usize) -> String {
        format!("/api/v1/namespaces/{}/configmaps/{}", self.ns, self.name(k))
    }

    async fn run(mut self, stop: Arc<AtomicBool>) -> Vec<Write> {
        while !stop.load(Ordering::Relaxed) {
            let k = self.rng.below(OBJECTS_PER_WRITER as u64) as usize;
            match self.current[k].clone() {
                None => self.create(k).await,
                Some(cur) if self.rng.percent(25) => self.delete(k, cur).await,
                Some(cur) => self.update(k, cur).await,
            }
            // A short pause keeps the event volume moderate on a 2-core machine.
            tokio::time::sleep(self.rng.millis(0, 4)).await;
        }
        self.log
    }

    fn content(&mut self, k: usize) -> Content {
        self.seq += 1;
        Content {
            token: format!("w{}-o{k}-{}", self.id, self.seq),
            stable: if k.is_multiple_of(2) { "a" } else { "b" }.into(),
            color: if self.rng.percent(50) { "red" } else { "blue" }.into(),
        }
    }

    fn record(
        &mut self,
        k: usize,
        op: Op,
        after: Option<Content>,
        outcome: Outcome,
        settled: bool,
    ) {
        self.current[k] = match (&outcome, &after) {
            (Outcome::At(rv), Some(c)) => Some((*rv, c.clone())),
            (Outcome::At(_) | Outcome::AtUnknown, None) => None,
            _ => self.current[k].clone(),
        };
        let name = self.name(k);
        self.log.push(Write {
            ns: self.ns.clone(),
            name,
            op,
            after,
            outcome,
            settled,
            phase: self.phase.load(Ordering::SeqCst),
        });
    }

    async fn create(&mut self, k: usize) {
        let c = self.content(k);
        let path = format!("/api/v1/namespaces/{}/configmaps", self.ns);
        let r = self
            .http
            .post_json(&path, &configmap(&self.name(k), &c, None))
            .await;
        if unknown(&r) {
            let outcome = self.settle(k, Op::Create, Some(&c), None).await;
            return self.record(k, Op::Create, Some(c), outcome, true);
        }
        let reply = r.unwrap();
        assert_eq!(
            reply.status,
            201,
            "POST {path} ({}): {}",
            self.name(k),
            reply.text()
        );
        let rv =
            resource_version(&reply.json().unwrap()).expect("a created object's resourceVersion");
        self.record(k, Op::Create, Some(c), Outcome::At(rv), false);
    }

    async fn update(&mut self, k: usize, cur: (i64, Content)) {
        let c = self.content(k);
        let path = self.path(k);
        let r = self
            .http
            .put_json(&path, &configmap(&self.name(k), &c, Some(cur.0)))
            .await;
        if unknown(&r) {
            let outcome = self.settle(k, Op::Update, Some(&c), Some(&cur.1)).await;
            return self.record(k, Op::Update, Some(c), outcome, true);
        }
        let reply = r.unwrap();
        assert_eq!(
            reply.status,
            200,
            "PUT {path} at {}: {}",
            cur.0,
            reply.text()
        );
        let rv =
            resource_version(&reply.json().unwrap()).expect("an updated object's resourceVersion");
        assert!(
            rv > cur.0,
            "PUT {path}: new resourceVersion {rv} is not above {}",
            cur.0
        );
        self.record(k, Op::Update, Some(c), Outcome::At(rv), false);
    }

    async fn delete(&mut self, k: usize, cur: (i64, Content)) {
        let path = self.path(k);
        let options = json!({
            "apiVersion": "v1", "kind": "DeleteOptions",
            "preconditions": {"resourceVersion": cur.0.to_string()},
        });
        let r = self.http.delete(&path, Some(&options)).await;
        if unknown(&r) {
            let outcome = self.settle(k, Op::Delete, None, Some(&cur.1)).await;
            return self.record(k, Op::Delete, None, outcome, true);
        }
        let reply = r.unwrap();
        assert_eq!(
            reply.status,
            200,
            "DELETE {path} at {}: {}",
            cur.0,
            reply.text()
        );
        let body = reply.json().unwrap();
        // keelson answers with the deleted object stamped with the delete's revision; a bare
        // Status (what upstream sends for ConfigMaps) leaves the revision unknown.
        let outcome = match (body["kind"].as_str(), resource_version(&body)) {
            (Some("ConfigMap"), Some(rv)) => {
                assert!(
                    rv > cur.0,
                    "DELETE {path}: revision {rv} is not above {}",
                    cur.0
                );
                Outcome::At(rv)
            }
            _ => Outcome::AtUnknown,
        };
        self.record(k, Op::Delete, None, outcome, false);
    }

    /// Decides whether a write whose answer was lost took effect, by reading the object.
    async fn settle(
        &mut self,
        k: usize,
        op: Op,
        wrote: Option<&Content>,
        before: Option<&Content>,
    ) -> Outcome {
        let path = self.path(k);
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        loop {
            assert!(
                Instant::now() < deadline,
                "could not read {path} to settle a lost answer within {SETTLE_TIMEOUT:?}"
            );
            let reply = match self.http.get(&path).await {
                Ok(r) if r.status == 200 || r.status == 404 => r,
                _ => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let token = |r: &Reply| {
                let v = r.json().unwrap();
                (
                    v["data"]["token"].as_str().unwrap_or_default().to_string(),
                    resource_version(&v).unwrap(),
                )
            };
            return match (op, reply.status) {
                (Op::Create | Op::Update, 200) => {
                    let (got, rv) = token(&reply);
                    if Some(got.as_str()) == wrote.map(|c| c.token.as_str()) {
                        Outcome::At(rv)
                    } else if Some(got.as_str()) == before.map(|c| c.token.as_str()) {
                        Outcome::NotApplied
                    } else {
                        panic!(
                            "{path}: found token {got} after a lost {op:?}; expected one of {wrote:?} / {before:?}"
                        )
                    }
                }
                (Op::Create, 404) => Outcome::NotApplied,
                (Op::Delete, 404) => Outcome::AtUnknown,
                (Op::Delete, 200) => {
                    let (got, _) = token(&reply);
                    assert_eq!(
                        Some(got.as_str()),
                        before.map(|c| c.token.as_str()),
                        "{path} after a lost delete"
                    );
                    Outcome::NotApplied
                }
                (Op::Update, _) => panic!("{path} vanished after a lost update"),
                _ => unreachable!(),
            };
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Watchers.

/// What one watcher watches: a namespace or all, and an optional `label=value` selector.
#[derive(Clone, Debug)]
struct Scope {
    ns: Option<String>,
    selector: Option<(&'static str, &'static str)>,
}

impl Scope {
    fn matches(&self, ns: &str, c: &Content) -> bool {
        if self.ns.as_deref().is_some_and(|n| n != ns) {
            return false;
        }
        match self.selector {
            None => true,
            Some(("stable", v)) => c.stable == v,
            Some(("color", v)) => c.color == v,
            Some(_) => false,
        }
    }

    fn base(&self) -> String {
        let mut path = match &self.ns {
            Some(ns) => format!("/api/v1/namespaces/{ns}/configmaps?"),
            None => "/api/v1/configmaps?".to_string(),
        };
        if let Some((k, v)) = self.selector {
            path.push_str(&format!("labelSelector={k}%3D{v}&"));
        }
        path
    }

    fn list_path(&self) -> String {
        self.base()
    }

    fn watch_path(&self, rv: i64) -> String {
        format!(
            "{}watch=true&resourceVersion={rv}&allowWatchBookmarks=true",
            self.base()
        )
    }

    fn describe(&self) -> String {
        format!(
            "{}{}",
            self.ns.as_deref().unwrap_or("all namespaces"),
            self.selector
                .map(|(k, v)| format!(" {k}={v}"))
                .unwrap_or_default()
        )
    }
}

fn scopes() -> Vec<Scope> {
    let ns = |i: usize| Some(ns_name(i));
    let mut out: Vec<Scope> = (0..NAMESPACES)
        .map(|i| Scope {
            ns: ns(i),
            selector: None,
        })
        .collect();
    for selector in [
        None,
        Some(("stable", "a")),
        Some(("color", "red")),
        Some(("color", "blue")),
    ] {
        out.push(Scope { ns: None, selector });
    }
    out.push(Scope {
        ns: ns(0),
        selector: Some(("color", "red")),
    });
    out.push(Scope {
        ns: ns(1),
        selector: Some(("stable", "b")),
    });
    out.push(Scope {
        ns: ns(2),
        selector: Some(("color", "blue")),
    });
    out.push(Scope {
        ns: ns(3),
        selector: Some(("stable", "a")),
    });
    out
}

/// An object as a watcher saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Seen {
    key: Key,
    rv: i64,
    content: Content,
}

impl Seen {
    fn parse(v: &Value) -> Result<Seen, String> {
        let s = |p: &str| v.pointer(p).and_then(Value::as_str).map(str::to_string);
        let ns = s("/metadata/namespace").ok_or("no namespace")?;
        let name = s("/metadata/name").ok_or("no name")?;
        let rv = resource_version(v).ok_or("no resourceVersion")?;
        Ok(Seen {
            key: (ns, name),
            rv,
            content: Content {
                token: s("/data/token").unwrap_or_default(),
                stable: s("/metadata/labels/stable").unwrap_or_default(),
                color: s("/metadata/labels/color").unwrap_or_default(),
            },
        })
    }

    /// Objects this test made (others, like a namespace's root CA ConfigMap, are ignored).
    fn ours(&self) -> bool {
        self.key.0.starts_with("wc")
            && (self.key.1.starts_with('w') || self.key.1.starts_with("sentinel"))
    }
}

/// One entry of a watcher's log, in the order it happened.
#[derive(Debug)]
enum Entry {
    Listed {
        rv: i64,
        items: Vec<Seen>,
    },
    Event {
        ty: String,
        obj: Seen,
    },
    Bookmark(i64),
    /// A watch started.
    Watching,
    /// An ERROR event with 410: the watcher must relist.
    Expired(Value),
    /// Anything else unexpected: an ERROR event of another code, a malformed line.
    Anomaly(String),
    /// The watch was refused (e.g. 503 while the cache syncs); retried.
    Refused(u16, String),
}

struct WatchControl {
    /// While true, a watcher whose stream ended waits before reconnecting.
    hold: watch::Receiver<bool>,
    /// Per watcher: the revision it must reach (its last sentinel's), once known.
    targets: watch::Receiver<Option<Arc<Vec<i64>>>>,
}

struct Watcher {
    idx: usize,
    scope: Scope,
    http: Arc<Http>,
    control: WatchControl,
    cursor: Arc<AtomicI64>,
    watching: Arc<AtomicUsize>,
    log: Vec<Entry>,
}

impl Watcher {
    fn reached(&self, cursor: i64) -> bool {
        self.control
            .targets
            .borrow()
            .as_ref()
            .is_some_and(|t| cursor >= t[self.idx])
    }

    async fn wait_released(&mut self) {
        while *self.control.hold.borrow_and_update() {
            if self.control.hold.changed().await.is_err() {
                return;
            }
        }
    }

    /// Lists until it works; returns the list's revision.
    async fn relist(&mut self) -> i64 {
        loop {
            match self.http.get(&self.scope.list_path()).await {
                Ok(r) if r.status == 200 => {
                    let v = r.json().unwrap();
                    let rv: i64 = v["metadata"]["resourceVersion"]
                        .as_str()
                        .and_then(|s| s.parse().ok())
                        .expect("a list's resourceVersion");
                    let mut items = Vec::new();
                    for item in v["items"].as_array().into_iter().flatten() {
                        match Seen::parse(item) {
                            Ok(s) => items.push(s),
                            Err(e) => self
                                .log
                                .push(Entry::Anomaly(format!("list item: {e}: {item}"))),
                        }
                    }
                    self.log.push(Entry::Listed { rv, items });
                    self.cursor.store(rv, Ordering::SeqCst);
                    return rv;
                }
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    async fn run(mut self, give_up: Arc<AtomicBool>) -> (Scope, Vec<Entry>) {
        let mut cursor = self.relist().await;
        let mut first = true;
        'outer: loop {
            if self.reached(cursor) || give_up.load(Ordering::Relaxed) {
                break;
            }
            self.wait_released().await;
            let mut w = match self.http.watch(&self.scope.watch_path(cursor)).await {
                Ok(w) => w,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            if w.status != 200 {
                let status = w.status;
                let text = w.into_text().await;
                if status == 410 {
                    // Upstream starts the watch and sends the 410 as an ERROR event.
                    self.log.push(Entry::Anomaly(format!(
                        "watch refused with HTTP 410 instead of an ERROR event: {text}"
                    )));
                }
                self.log.push(Entry::Refused(status, text));
                if status == 410 {
                    cursor = self.relist().await;
                } else {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                continue;
            }
            self.log.push(Entry::Watching);
            if first {
                first = false;
                self.watching.fetch_add(1, Ordering::SeqCst);
            }
            loop {
                let next = tokio::select! {
                    n = w.next() => n,
                    _ = self.control.targets.changed() => {
                        if self.reached(cursor) { break 'outer; }
                        continue;
                    }
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {
                        if give_up.load(Ordering::Relaxed) { break 'outer; }
                        continue;
                    }
                };
                let ev = match next {
                    Ok(Some(ev)) => ev,
                    // The stream ended (restart, cache relist): resume from the cursor.
                    Ok(None) | Err(_) => break,
                };
                match ev["type"].as_str() {
                    Some(ty @ ("ADDED" | "MODIFIED" | "DELETED")) => {
                        match Seen::parse(&ev["object"]) {
                            Ok(obj) => {
                                cursor = obj.rv;
                                self.cursor.store(cursor, Ordering::SeqCst);
                                self.log.push(Entry::Event {
                                    ty: ty.to_string(),
                                    obj,
                                });
                            }
                            Err(e) => self
                                .log
                                .push(Entry::Anomaly(format!("{ty} event: {e}: {ev}"))),
                        }
                    }
                    Some("BOOKMARK") => match resource_version(&ev["object"]) {
                        Some(rv) => {
                            cursor = rv;
                            self.cursor.store(cursor, Ordering::SeqCst);
                            self.log.push(Entry::Bookmark(rv));
                        }
                        None => self
                            .log
                            .push(Entry::Anomaly(format!("bookmark without a revision: {ev}"))),
                    },
                    Some("ERROR") if ev["object"]["code"] == 410 => {
                        self.log.push(Entry::Expired(ev["object"].clone()));
                        cursor = self.relist().await;
                        break;
                    }
                    _ => {
                        self.log
                            .push(Entry::Anomaly(format!("unexpected watch event: {ev}")));
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        break;
                    }
                }
                if self.reached(cursor) {
                    break 'outer;
                }
            }
        }
        (self.scope, self.log)
    }
}

// ---------------------------------------------------------------------------------------------
// The check.

/// What the check found for one watcher.
#[derive(Debug, Default)]
struct Verdict {
    problems: Vec<String>,
    /// Events that break upstream's wire behaviour in a way reported to the lead (see below).
    deviations: Vec<String>,
    events: usize,
    /// Lists after the first.
    relists: usize,
}

/// Checks one watcher's log against the record.
fn check_watcher(
    scope: &Scope,
    log: &[Entry],
    record: &Record,
    target: i64,
    finals: &BTreeMap<Key, (Option<i64>, Content)>,
) -> Verdict {
    let (by_rv, floating, never) = record.visible(scope);
    let mut floating_left: Vec<Option<&Visible>> = floating.iter().map(Some).collect();
    let mut problems = Vec::new();
    let mut deviations = Vec::new();
    let mut state: BTreeMap<Key, (i64, Content)> = BTreeMap::new();
    let mut last_rv = 0i64;
    let mut cursor = 0i64;
    let mut segment_start: Option<i64> = None;
    let mut segment_seen: HashSet<i64> = HashSet::new();
    let mut events = 0;
    let mut relists = 0usize;

    let close_segment =
        |start: Option<i64>, end: i64, seen: &HashSet<i64>, problems: &mut Vec<String>| {
            if let Some(start) = start.filter(|s| *s < end) {
                for (rv, v) in by_rv.range(start + 1..=end) {
                    if !seen.contains(rv) {
                        problems.push(format!(
                        "missed {} of {}/{} at rv {rv} (token {}); watched from {start} to {end}",
                        v.ty, v.key.0, v.key.1, v.token
                    ));
                    }
                }
            }
        };

    for entry in log {
        match entry {
            Entry::Listed { rv, items } => {
                close_segment(segment_start, cursor, &segment_seen, &mut problems);
                if *rv < cursor {
                    problems.push(format!(
                        "relisted at rv {rv}, behind what was already seen ({cursor})"
                    ));
                }
                relists += 1;
                segment_start = Some(*rv);
                segment_seen.clear();
                cursor = *rv;
                last_rv = last_rv.max(*rv);
                state = items
                    .iter()
                    .filter(|s| s.ours())
                    .map(|s| (s.key.clone(), (s.rv, s.content.clone())))
                    .collect();
                for (key, known) in record.state_at(*rv) {
                    let want = |s: &Option<(i64, Content)>| {
                        s.clone().filter(|(_, c)| scope.matches(&key.0, c))
                    };
                    let got = state.get(&key).cloned();
                    let ok = match &known {
                        Known::Certain(s) => got == want(s),
                        Known::EitherOr(s) => got.is_none() || got == want(s),
                    };
                    if !ok {
                        problems.push(format!(
                            "list at rv {rv}: {}/{} is {got:?}, expected {known:?}",
                            key.0, key.1
                        ));
                    }
                }
                for key in state.keys() {
                    if !record.objects.contains_key(key) {
                        problems.push(format!(
                            "list at rv {rv}: unknown object {}/{}",
                            key.0, key.1
                        ));
                    }
                }
            }
            Entry::Event { ty, obj } => {
                events += 1;
                if obj.rv <= last_rv {
                    problems.push(format!(
                        "{ty} {}/{} at rv {} after rv {last_rv}: duplicate or out of order",
                        obj.key.0, obj.key.1, obj.rv
                    ));
                }
                last_rv = last_rv.max(obj.rv);
                cursor = cursor.max(obj.rv);
                if !obj.ours() {
                    continue;
                }
                segment_seen.insert(obj.rv);
                let got = Visible {
                    ty: match ty.as_str() {
                        "ADDED" => "ADDED",
                        "MODIFIED" => "MODIFIED",
                        _ => "DELETED",
                    },
                    key: obj.key.clone(),
                    token: obj.content.token.clone(),
                    left_with: None,
                };
                match by_rv.get(&obj.rv) {
                    Some(want) if want.same(&got) => {}
                    Some(want)
                        if got.ty == "DELETED"
                            && want.key == got.key
                            && want.left_with.as_deref() == Some(got.token.as_str()) =>
                    {
                        // SERVER BUG (reported to the lead): upstream's cacher sends an object
                        // leaving a selection as DELETED with its *previous* content (stamped
                        // with the event's resourceVersion); keelson (apiserver handler.rs,
                        // `visible` + `watch_loop`) sends the new content.
                        deviations.push(format!(
                            "DELETED {}/{} at rv {} (selection left) carries token {}, upstream carries the previous content {}",
                            obj.key.0, obj.key.1, obj.rv, got.token, want.token
                        ));
                    }
                    Some(want) => problems.push(format!(
                        "event at rv {}: got {got:?}, the write there was {want:?}",
                        obj.rv
                    )),
                    None => {
                        if let Some(slot) = floating_left
                            .iter_mut()
                            .find(|f| f.is_some_and(|f| f.same(&got)))
                        {
                            *slot = None;
                        } else if never.contains(&got.token) {
                            problems.push(format!(
                                "{ty} {}/{} at rv {} shows token {}, written by a request that did not take effect",
                                obj.key.0, obj.key.1, obj.rv, got.token
                            ));
                        } else {
                            problems.push(format!(
                                "{ty} {}/{} at rv {} (token {}) matches no write in scope",
                                obj.key.0, obj.key.1, obj.rv, got.token
                            ));
                        }
                    }
                }
                let present = state.contains_key(&obj.key);
                match (ty.as_str(), present) {
                    ("ADDED", true) => problems.push(format!(
                        "ADDED {}/{} at rv {} while already present",
                        obj.key.0, obj.key.1, obj.rv
                    )),
                    ("MODIFIED" | "DELETED", false) => problems.push(format!(
                        "{ty} {}/{} at rv {} while absent",
                        obj.key.0, obj.key.1, obj.rv
                    )),
                    _ => {}
                }
                if ty == "DELETED" {
                    state.remove(&obj.key);
                } else {
                    state.insert(obj.key.clone(), (obj.rv, obj.content.clone()));
                }
            }
            Entry::Bookmark(rv) => {
                if *rv < cursor {
                    problems.push(format!("bookmark at rv {rv} behind rv {cursor}"));
                }
                cursor = cursor.max(*rv);
            }
            Entry::Watching | Entry::Refused(..) => {}
            Entry::Expired(status) => {
                if status["reason"] != "Expired" || status["kind"] != "Status" {
                    problems.push(format!(
                        "410 ERROR event is not an Expired Status: {status}"
                    ));
                }
                // The watcher cannot vouch for anything past its cursor until it relists.
                close_segment(segment_start, cursor, &segment_seen, &mut problems);
                segment_start = None;
            }
            Entry::Anomaly(what) => problems.push(what.clone()),
        }
    }
    close_segment(segment_start, cursor, &segment_seen, &mut problems);
    if cursor < target {
        problems.push(format!(
            "stopped at rv {cursor}, never reached the final rv {target}"
        ));
    }
    let want: BTreeMap<Key, (Option<i64>, Content)> = finals
        .iter()
        .filter(|(k, (_, c))| scope.matches(&k.0, c))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (key, (rv, content)) in &want {
        match state.get(key) {
            None => problems.push(format!(
                "final state lacks {}/{} ({})",
                key.0, key.1, content.token
            )),
            Some((got_rv, got)) => {
                if got != content || rv.is_some_and(|rv| rv != *got_rv) {
                    problems.push(format!(
                        "final state of {}/{}: rv {got_rv} token {}, expected rv {rv:?} token {}",
                        key.0, key.1, got.token, content.token
                    ));
                }
            }
        }
    }
    for key in state.keys().filter(|k| !want.contains_key(*k)) {
        problems.push(format!(
            "final state has {}/{} which does not exist",
            key.0, key.1
        ));
    }
    Verdict {
        problems,
        deviations,
        events,
        relists: relists.saturating_sub(1),
    }
}

// ---------------------------------------------------------------------------------------------
// The run.

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

async fn create_namespace(http: &Http, name: &str) {
    let r = http
        .post_json(
            "/api/v1/namespaces",
            &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 201, "create namespace {name}: {}", r.text());
}

/// The watchers of a run and what steers them.
struct Watchers {
    scopes: Vec<Scope>,
    handles: Vec<tokio::task::JoinHandle<(Scope, Vec<Entry>)>>,
    hold: watch::Sender<bool>,
    targets: watch::Sender<Option<Arc<Vec<i64>>>>,
    cursors: Vec<Arc<AtomicI64>>,
    give_up: Arc<AtomicBool>,
}

impl Watchers {
    /// Starts one watcher per scope and waits until each has listed and is watching.
    fn start(rt: &tokio::runtime::Runtime, http: &Arc<Http>) -> Watchers {
        let (hold, hold_rx) = watch::channel(false);
        let (targets, targets_rx) = watch::channel(None::<Arc<Vec<i64>>>);
        let watching = Arc::new(AtomicUsize::new(0));
        let give_up = Arc::new(AtomicBool::new(false));
        let scopes = scopes();
        let cursors: Vec<_> = scopes.iter().map(|_| Arc::new(AtomicI64::new(0))).collect();
        let handles = scopes
            .iter()
            .enumerate()
            .map(|(idx, scope)| {
                let w = Watcher {
                    idx,
                    scope: scope.clone(),
                    http: http.clone(),
                    control: WatchControl {
                        hold: hold_rx.clone(),
                        targets: targets_rx.clone(),
                    },
                    cursor: cursors[idx].clone(),
                    watching: watching.clone(),
                    log: Vec::new(),
                };
                rt.spawn(w.run(give_up.clone()))
            })
            .collect();
        let deadline = Instant::now() + Duration::from_secs(20);
        while watching.load(Ordering::SeqCst) < scopes.len() {
            assert!(Instant::now() < deadline, "watchers did not start in 20 s");
            std::thread::sleep(Duration::from_millis(20));
        }
        Watchers {
            scopes,
            handles,
            hold,
            targets,
            cursors,
            give_up,
        }
    }

    /// The lowest revision any watcher has reached.
    fn lowest_cursor(&self) -> i64 {
        self.cursors
            .iter()
            .map(|c| c.load(Ordering::SeqCst))
            .min()
            .unwrap_or(0)
    }

    /// Tells each watcher where to stop and collects the logs (giving up after
    /// [`CATCH_UP_TIMEOUT`]; a watcher that gave up fails the check for not reaching its target).
    fn finish(self, rt: &tokio::runtime::Runtime, targets: &[i64]) -> Vec<(Scope, Vec<Entry>)> {
        self.targets.send_replace(Some(Arc::new(targets.to_vec())));
        let give_up_at = tokio::time::Instant::now() + CATCH_UP_TIMEOUT;
        let give_up = self.give_up;
        rt.block_on(async move {
            let mut out = Vec::new();
            for mut handle in self.handles {
                let result = tokio::select! {
                    r = &mut handle => r,
                    _ = tokio::time::sleep_until(give_up_at) => {
                        give_up.store(true, Ordering::SeqCst);
                        handle.await
                    }
                };
                out.push(result.unwrap());
            }
            out
        })
    }
}

/// Waits until compaction has passed `rv`: an exact list at it is refused with 410.
fn wait_compacted(rt: &tokio::runtime::Runtime, http: &Http, rv: i64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let path = format!(
        "/api/v1/namespaces/{}/configmaps?resourceVersion={rv}&resourceVersionMatch=Exact",
        ns_name(0)
    );
    loop {
        let r = rt.block_on(http.get(&path));
        if matches!(&r, Ok(r) if r.status == 410) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "compaction did not pass rv {rv} in 30 s (last answer {r:?})"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Creates, in every namespace, one object each scope sees; records them; returns each
/// scope's target (the revision of the last sentinel it sees).
fn write_sentinels(
    rt: &tokio::runtime::Runtime,
    http: &Http,
    scopes: &[Scope],
    record: &mut Record,
) -> Vec<i64> {
    let mut targets = vec![0i64; scopes.len()];
    for i in 0..NAMESPACES {
        let ns = ns_name(i);
        for (name, stable, color) in [("sentinel-a", "a", "red"), ("sentinel-b", "b", "blue")] {
            let c = Content {
                token: format!("{name}-{i}"),
                stable: stable.into(),
                color: color.into(),
            };
            let path = format!("/api/v1/namespaces/{ns}/configmaps");
            let r = rt
                .block_on(http.post_json(&path, &configmap(name, &c, None)))
                .unwrap();
            assert_eq!(r.status, 201, "sentinel {ns}/{name}: {}", r.text());
            let rv = resource_version(&r.json().unwrap()).unwrap();
            for (t, scope) in targets.iter_mut().zip(scopes) {
                if scope.matches(&ns, &c) {
                    *t = (*t).max(rv);
                }
            }
            record.add(Write {
                ns: ns.clone(),
                name: name.into(),
                op: Op::Create,
                after: Some(c),
                outcome: Outcome::At(rv),
                settled: false,
                phase: 2,
            });
        }
    }
    assert!(targets.iter().all(|t| *t > 0), "a scope sees no sentinel");
    targets
}

/// Compares the server's final list of all ConfigMaps with the record.
fn check_final_list(rt: &tokio::runtime::Runtime, http: &Http, record: &Record) -> Vec<String> {
    let reply = rt.block_on(http.get("/api/v1/configmaps")).unwrap();
    assert_eq!(reply.status, 200, "{}", reply.text());
    let listed: BTreeMap<Key, (i64, Content)> = reply.json().unwrap()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| Seen::parse(i).unwrap())
        .filter(Seen::ours)
        .map(|s| (s.key, (s.rv, s.content)))
        .collect();
    let expected = record.final_state();
    let mut problems = Vec::new();
    for (k, (rv, c)) in &expected {
        match listed.get(k) {
            Some((got_rv, got)) if got == c && rv.is_none_or(|rv| rv == *got_rv) => {}
            other => problems.push(format!(
                "final list: {}/{} is {other:?}, expected rv {rv:?} {c:?}",
                k.0, k.1
            )),
        }
    }
    for k in listed.keys().filter(|k| !expected.contains_key(*k)) {
        problems.push(format!("final list has {}/{}, which was deleted", k.0, k.1));
    }
    problems
}

fn run_checker(test: &str, mut c: Cluster) {
    let started = Instant::now();
    let mut rng = TestRng::from_env(test);
    let rt = runtime();
    let http = Http::for_cluster(&c);
    rt.block_on(async {
        for i in 0..NAMESPACES {
            create_namespace(&http, &ns_name(i)).await;
        }
    });
    let watchers = Watchers::start(&rt, &http);

    let stop = Arc::new(AtomicBool::new(false));
    let phase = Arc::new(AtomicUsize::new(0));
    let writers: Vec<_> = (0..WRITERS)
        .map(|id| {
            let w = Writer {
                id,
                ns: ns_name(id % NAMESPACES),
                http: http.clone(),
                rng: TestRng::seeded(rng.next_u64()),
                current: vec![None; OBJECTS_PER_WRITER],
                seq: 0,
                log: Vec::new(),
                phase: phase.clone(),
            };
            rt.spawn(w.run(stop.clone()))
        })
        .collect();

    // Restart 1: SIGTERM; watchers resume at once, from history the store still has.
    std::thread::sleep(rng.millis(1500, 2500));
    watchers.hold.send_replace(true);
    c.restart();
    phase.store(1, Ordering::SeqCst);
    watchers.hold.send_replace(false);
    eprintln!("{test}: SIGTERM restart done at {:?}", started.elapsed());

    // Restart 2: SIGKILL; watchers come back only once compaction has passed all of them, so
    // the ones behind the compaction must be told 410 and relist.
    std::thread::sleep(rng.millis(1500, 2500));
    watchers.hold.send_replace(true);
    c.kill9_and_restart();
    phase.store(2, Ordering::SeqCst);
    let behind = watchers.lowest_cursor();
    wait_compacted(&rt, &http, behind);
    watchers.hold.send_replace(false);
    eprintln!(
        "{test}: SIGKILL restart, and compaction past rv {behind}, done at {:?}",
        started.elapsed()
    );

    std::thread::sleep(rng.millis(800, 1200));
    stop.store(true, Ordering::SeqCst);
    let mut record = Record::default();
    let mut writes = 0;
    let mut lost = [0usize; 3];
    let mut ops = [0usize; 3];
    for w in writers {
        for write in rt.block_on(w).unwrap() {
            writes += 1;
            ops[write.op as usize] += 1;
            if write.settled {
                lost[write.phase] += 1;
            }
            record.add(write);
        }
    }
    let scopes = watchers.scopes.clone();
    let targets = write_sentinels(&rt, &http, &scopes, &mut record);
    let logs = watchers.finish(&rt, &targets);

    let mut problems = check_final_list(&rt, &http, &record);
    let mut deviations = Vec::new();
    let mut report = Vec::new();
    let mut relists = 0;
    let finals = record.final_state();
    for (idx, (scope, log)) in logs.iter().enumerate() {
        let v = check_watcher(scope, log, &record, targets[idx], &finals);
        relists += v.relists;
        let count = |f: fn(&Entry) -> bool| log.iter().filter(|e| f(e)).count();
        let refused: Vec<String> = log
            .iter()
            .filter_map(|e| match e {
                Entry::Refused(code, text) => Some(format!("{code} {}", text.trim())),
                _ => None,
            })
            .collect();
        report.push(format!(
            "  watcher {idx:2} [{}]: {} events, {} watches, {} relists, refused {refused:?}, {} problems, {} deviations",
            scope.describe(),
            v.events,
            count(|e| matches!(e, Entry::Watching)),
            v.relists,
            v.problems.len(),
            v.deviations.len(),
        ));
        let label = |p: String| format!("watcher {idx} [{}]: {p}", scope.describe());
        problems.extend(v.problems.into_iter().map(label));
        deviations.extend(v.deviations.into_iter().map(label));
    }
    eprintln!(
        "{test}: {writes} writes ({} creates, {} updates, {} deletes); answers lost: {} at the SIGTERM, {} at the SIGKILL; {:?} in all\n{}",
        ops[0],
        ops[1],
        ops[2],
        lost[0],
        lost[1],
        started.elapsed(),
        report.join("\n")
    );
    // The data directory goes away with the cluster: keep the server's log of a failed run.
    let server_log = std::env::temp_dir().join(format!("{test}-{}.log", std::process::id()));
    if !problems.is_empty() || !deviations.is_empty() {
        let _ = std::fs::copy(c.data_dir().join("server.log"), &server_log);
    }
    assert!(
        problems.is_empty(),
        "{test}: {} problems:\n{}\n(seed printed above; server log kept in {})",
        problems.len(),
        problems
            .iter()
            .take(40)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n"),
        server_log.display()
    );
    assert!(writes > 200, "too few writes to mean anything: {writes}");
    assert!(relists > 0, "no watcher had to relist after compaction");
    // SERVER BUG (reported to the lead), asserted last so that everything else is checked
    // first: an object leaving a label selection must come as DELETED with its previous
    // content, as upstream's cacher sends it.
    assert!(
        deviations.is_empty(),
        "{test}: {} DELETED events for objects leaving a selection carry the new content \
         instead of the previous one (upstream cacher behaviour), e.g.:\n{}",
        deviations.len(),
        deviations
            .iter()
            .take(5)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    drop(c);
}

#[test]
fn watch_cache_is_exact_across_restarts_embedded() {
    let c = Cluster::start_with(ServerOptions {
        extra_args: COMPACTION_FLAGS.map(String::from).to_vec(),
        share_ca_with: None,
    });
    run_checker("watch_cache_is_exact_across_restarts_embedded", c);
}

#[test]
fn watch_cache_is_exact_across_restarts_etcd() {
    let etcd = Etcd::start();
    let mut args: Vec<String> = vec!["--datastore".into(), etcd.datastore()];
    args.extend(COMPACTION_FLAGS.map(String::from));
    let c = Cluster::start_with(ServerOptions {
        extra_args: args,
        share_ca_with: None,
    });
    run_checker("watch_cache_is_exact_across_restarts_etcd", c);
    drop(etcd);
}

/// The checker itself must catch what it is for: gaps, duplicates, phantom writes, wrong
/// final states — and accept relists after a 410 and deletes of unknown revision.
#[test]
fn the_checker_catches_gaps_duplicates_and_phantoms() {
    let content = |token: &str, color: &str| Content {
        token: token.into(),
        stable: "a".into(),
        color: color.into(),
    };
    let write = |name: &str, op, after: Option<Content>, outcome| Write {
        ns: "wc0".into(),
        name: name.into(),
        op,
        after,
        outcome,
        settled: false,
        phase: 0,
    };
    let mut record = Record::default();
    record.add(write(
        "w0-o0",
        Op::Create,
        Some(content("c1", "red")),
        Outcome::At(10),
    ));
    record.add(write(
        "w0-o0",
        Op::Update,
        Some(content("u1", "blue")),
        Outcome::At(12),
    ));
    record.add(write("w0-o0", Op::Delete, None, Outcome::At(15)));
    record.add(write(
        "w0-o1",
        Op::Create,
        Some(content("c2", "red")),
        Outcome::At(11),
    ));
    record.add(write(
        "w0-o1",
        Op::Update,
        Some(content("lost", "red")),
        Outcome::NotApplied,
    ));
    record.add(write("w0-o1", Op::Delete, None, Outcome::AtUnknown));
    let finals = record.final_state();
    let seen = |name: &str, rv: i64, c: Content| Seen {
        key: ("wc0".into(), name.into()),
        rv,
        content: c,
    };
    let ev = |ty: &str, name: &str, rv: i64, c: Content| Entry::Event {
        ty: ty.into(),
        obj: seen(name, rv, c),
    };
    let listed = |rv: i64, items: Vec<Seen>| Entry::Listed { rv, items };
    let all = Scope {
        ns: Some("wc0".into()),
        selector: None,
    };
    let check = |scope: &Scope, log: Vec<Entry>| check_watcher(scope, &log, &record, 15, &finals);

    let good = || {
        vec![
            listed(5, vec![]),
            ev("ADDED", "w0-o0", 10, content("c1", "red")),
            ev("ADDED", "w0-o1", 11, content("c2", "red")),
            ev("MODIFIED", "w0-o0", 12, content("u1", "blue")),
            ev("DELETED", "w0-o1", 13, content("c2", "red")),
            ev("DELETED", "w0-o0", 15, content("u1", "blue")),
        ]
    };
    let v = check(&all, good());
    assert!(v.problems.is_empty(), "{:?}", v.problems);
    assert_eq!(v.events, 5);

    // A gap.
    let mut log = good();
    log.remove(3);
    let v = check(&all, log);
    assert!(
        v.problems
            .iter()
            .any(|p| p.starts_with("missed MODIFIED of wc0/w0-o0 at rv 12")),
        "{:?}",
        v.problems
    );
    // A duplicate.
    let mut log = good();
    log.insert(2, ev("ADDED", "w0-o0", 10, content("c1", "red")));
    let v = check(&all, log);
    assert!(
        v.problems
            .iter()
            .any(|p| p.contains("duplicate or out of order")),
        "{:?}",
        v.problems
    );
    // A write that did not take effect.
    let mut log = good();
    log[4] = ev("MODIFIED", "w0-o1", 14, content("lost", "red"));
    let v = check(&all, log);
    assert!(
        v.problems.iter().any(|p| p.contains("did not take effect")),
        "{:?}",
        v.problems
    );
    // The delete of unknown revision seen twice.
    let mut log = good();
    log.insert(5, ev("DELETED", "w0-o1", 14, content("c2", "red")));
    let v = check(&all, log);
    assert!(!v.problems.is_empty());
    // Never reaching the end, and a final state that is off.
    let mut log = good();
    log.truncate(5);
    let v = check(&all, log);
    assert!(
        v.problems
            .iter()
            .any(|p| p.contains("never reached the final rv 15")),
        "{:?}",
        v.problems
    );
    assert!(
        v.problems
            .iter()
            .any(|p| p.contains("final state has wc0/w0-o0")),
        "{:?}",
        v.problems
    );

    // A 410, then a relist showing the state at its revision: nothing before it is owed.
    let relisted = vec![
        listed(5, vec![]),
        ev("ADDED", "w0-o0", 10, content("c1", "red")),
        Entry::Expired(json!({"kind": "Status", "code": 410, "reason": "Expired"})),
        listed(
            12,
            vec![
                seen("w0-o0", 12, content("u1", "blue")),
                seen("w0-o1", 11, content("c2", "red")),
            ],
        ),
        ev("DELETED", "w0-o1", 13, content("c2", "red")),
        ev("DELETED", "w0-o0", 15, content("u1", "blue")),
    ];
    let v = check(&all, relisted);
    assert!(v.problems.is_empty(), "{:?}", v.problems);
    assert_eq!(v.relists, 1);
    // A relist that shows a wrong state is caught.
    let wrong = vec![
        listed(5, vec![]),
        Entry::Expired(json!({"kind": "Status", "code": 410, "reason": "Expired"})),
        listed(12, vec![seen("w0-o0", 10, content("c1", "red"))]),
    ];
    let v = check(&all, wrong);
    assert!(
        v.problems
            .iter()
            .any(|p| p.starts_with("list at rv 12: wc0/w0-o0")),
        "{:?}",
        v.problems
    );

    // Selector transitions: leaving `color=red` is a DELETED with the previous content.
    let red = Scope {
        ns: None,
        selector: Some(("color", "red")),
    };
    let upstream = vec![
        listed(5, vec![]),
        ev("ADDED", "w0-o0", 10, content("c1", "red")),
        ev("ADDED", "w0-o1", 11, content("c2", "red")),
        ev("DELETED", "w0-o0", 12, content("c1", "red")),
        ev("DELETED", "w0-o1", 13, content("c2", "red")),
    ];
    let check_red = |log: Vec<Entry>| check_watcher(&red, &log, &record, 13, &finals);
    let v = check_red(upstream);
    assert!(v.problems.is_empty() && v.deviations.is_empty(), "{v:?}");
    let new_content = vec![
        listed(5, vec![]),
        ev("ADDED", "w0-o0", 10, content("c1", "red")),
        ev("ADDED", "w0-o1", 11, content("c2", "red")),
        ev("DELETED", "w0-o0", 12, content("u1", "blue")),
        ev("DELETED", "w0-o1", 13, content("c2", "red")),
    ];
    let v = check_red(new_content);
    assert!(v.problems.is_empty(), "{:?}", v.problems);
    assert_eq!(v.deviations.len(), 1, "{v:?}");
}
