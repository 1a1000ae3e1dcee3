//! The reconciler against a fake API server whose watches deliver nothing after the initial
//! list: the pod cache stays behind the controller's own writes, which is exactly when
//! expectations must keep it from creating or deleting twice.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use controller_runtime::{EventSink, Expectations, Informers, Key, Reconcile};
use http::{Request, Response};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use serde_json::{Value, json};

use crate::owner::ReplicaOwner;
use crate::sync::{EXPECTATIONS_RECHECK, Replicas, SyncError};
use controller_runtime::Action;

#[derive(Default)]
struct Fake {
    rs: Value,
    pods: Vec<Value>,
    /// Pod creations after this many successes are refused (403).
    allowed_creates: Option<usize>,
    created: usize,
    create_attempts: usize,
    deleted: Vec<String>,
    adopted: Vec<String>,
    status_patches: Vec<Value>,
}

type Shared = Arc<Mutex<Fake>>;
type Body = BoxBody<Bytes, Infallible>;

fn reply(code: u16, v: &Value) -> Response<Body> {
    Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(v.to_string())).boxed())
        .unwrap()
}

/// A watch that never sends an event.
fn silent_watch() -> Response<Body> {
    let events = futures::stream::pending::<Result<http_body::Frame<Bytes>, Infallible>>();
    Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(StreamBody::new(events).boxed())
        .unwrap()
}

fn list(kind: &str, api_version: &str, items: Vec<Value>) -> Value {
    json!({"kind": kind, "apiVersion": api_version, "metadata": {"resourceVersion": "1"}, "items": items})
}

fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code,
           "reason": reason, "message": message})
}

async fn handle(
    state: Shared,
    req: Request<kube::client::Body>,
) -> Result<Response<Body>, Infallible> {
    let method = req.method().as_str().to_owned();
    let path = req.uri().path().to_owned();
    let watch = req.uri().query().unwrap_or_default().contains("watch=true");
    let body: Value = match req.into_body().collect().await {
        Ok(b) => serde_json::from_slice(&b.to_bytes()).unwrap_or(Value::Null),
        Err(_) => Value::Null,
    };
    let mut s = state.lock().unwrap();
    const RS: &str = "/apis/apps/v1/namespaces/ns/replicasets/web";
    const PODS: &str = "/api/v1/namespaces/ns/pods";
    let response = match (method.as_str(), path.as_str()) {
        ("GET", "/apis/apps/v1/replicasets" | "/api/v1/pods") if watch => silent_watch(),
        ("GET", "/apis/apps/v1/replicasets") => {
            reply(200, &list("ReplicaSetList", "apps/v1", vec![s.rs.clone()]))
        }
        ("GET", "/api/v1/pods") => reply(200, &list("PodList", "v1", s.pods.clone())),
        ("GET", RS) => reply(200, &s.rs),
        ("PATCH", p) if p == format!("{RS}/status") => {
            s.status_patches.push(body);
            reply(200, &s.rs)
        }
        ("POST", PODS) => {
            s.create_attempts += 1;
            if s.allowed_creates.is_some_and(|n| s.created >= n) {
                reply(403, &status(403, "Forbidden", "exceeded quota: pods"))
            } else {
                s.created += 1;
                let mut pod = body;
                let name = format!("web-{}", s.created);
                pod["metadata"]["name"] = json!(name);
                pod["metadata"]["uid"] = json!(format!("uid-{name}"));
                reply(201, &pod)
            }
        }
        ("DELETE", p) if p.starts_with(PODS) => {
            let name = p
                .trim_start_matches(PODS)
                .trim_start_matches('/')
                .to_owned();
            s.deleted.push(name.clone());
            reply(200, &pod(&name, None, "Running", None))
        }
        ("PATCH", p) if p.starts_with(PODS) => {
            let name = p
                .trim_start_matches(PODS)
                .trim_start_matches('/')
                .to_owned();
            s.adopted.push(name.clone());
            let mut pod = s
                .pods
                .iter()
                .find(|p| p["metadata"]["name"] == name.as_str())
                .cloned()
                .unwrap_or(Value::Null);
            pod["metadata"]["ownerReferences"] = body["metadata"]["ownerReferences"].clone();
            reply(200, &pod)
        }
        _ => reply(404, &status(404, "NotFound", &format!("{method} {path}"))),
    };
    Ok(response)
}

fn replica_set(replicas: i32) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": "web", "namespace": "ns", "uid": "rs-uid", "generation": 1,
                     "resourceVersion": "1"},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "c", "image": "nginx"}]}}},
    })
}

/// A pod labeled `app=web` (owned by the ReplicaSet with `owned`), on `node` if given.
fn pod(name: &str, owner: Option<&str>, phase: &str, node: Option<&str>) -> Value {
    let refs = owner.map(|uid| {
        json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": uid,
                "controller": true, "blockOwnerDeletion": true}])
    });
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "ns", "uid": format!("uid-{name}"),
                     "labels": {"app": "web"}, "ownerReferences": refs, "resourceVersion": "1"},
        "spec": {"containers": [{"name": "c", "image": "nginx"}], "nodeName": node},
        "status": {"phase": phase},
    })
}

struct Harness {
    replicas: Replicas<ReplicaSet>,
    state: Shared,
    _informers: Informers,
}

impl Harness {
    async fn start(fake: Fake) -> Harness {
        let state = Arc::new(Mutex::new(fake));
        let s = state.clone();
        let service = tower::service_fn(move |req| handle(s.clone(), req));
        let client = kube::Client::new(service, "default");
        let informers = Informers::new(client.clone());
        let owners = informers.get::<ReplicaSet>();
        let pods = informers.get::<Pod>();
        informers.start();
        tokio::time::timeout(Duration::from_secs(10), informers.wait_synced())
            .await
            .expect("the fake lists");
        Harness {
            replicas: Replicas {
                owners,
                pods,
                client,
                recorder: EventSink::disabled().recorder(ReplicaSet::COMPONENT),
                expectations: Arc::new(Expectations::new()),
            },
            state,
            _informers: informers,
        }
    }

    async fn sync(&self) -> Result<controller_runtime::Action, SyncError> {
        self.replicas.reconcile(&key()).await
    }

    fn fake(&self) -> std::sync::MutexGuard<'_, Fake> {
        self.state.lock().unwrap()
    }
}

fn key() -> Key {
    Key::new("ns", "web")
}

#[tokio::test]
async fn a_lagging_cache_never_causes_double_creates() {
    let h = Harness::start(Fake {
        rs: replica_set(3),
        ..Fake::default()
    })
    .await;
    // The creations may never be observed: the sync comes back when they would expire.
    let recheck = Action::RequeueAfter(EXPECTATIONS_RECHECK);
    assert_eq!(h.sync().await.unwrap(), recheck);
    assert_eq!(h.fake().created, 3);
    // The cache has seen none of the three pods: without expectations this would make three more.
    assert_eq!(h.sync().await.unwrap(), recheck);
    h.sync().await.unwrap();
    assert_eq!(h.fake().created, 3);
    {
        let f = h.fake();
        let last = &f.status_patches.last().unwrap()["status"];
        assert_eq!(last["replicas"], 0, "status counts what the cache shows");
        assert_eq!(last["observedGeneration"], 1);
        assert_eq!(last["conditions"], Value::Null);
    }
    // Once the creations are observed the controller acts on the cache again (which here
    // still shows nothing, so it creates again: the expectations were the only guard).
    for _ in 0..3 {
        h.replicas.expectations.creation_observed(&key());
    }
    assert_eq!(h.sync().await.unwrap(), recheck);
    assert_eq!(h.fake().created, 6);
}

#[tokio::test]
async fn a_failed_batch_stops_creating_and_sets_replica_failure() {
    let h = Harness::start(Fake {
        rs: replica_set(5),
        allowed_creates: Some(1),
        ..Fake::default()
    })
    .await;
    let err = h.sync().await.unwrap_err();
    assert!(matches!(err, SyncError::Manage { .. }), "{err}");
    {
        let f = h.fake();
        // Batches of 1 (succeeds) and 2 (both refused); the last 2 are never tried.
        assert_eq!((f.created, f.create_attempts), (1, 3));
        let cond = &f.status_patches.last().unwrap()["status"]["conditions"][0];
        assert_eq!(cond["type"], "ReplicaFailure");
        assert_eq!(cond["status"], "True");
        assert_eq!(cond["reason"], "FailedCreate");
        assert_eq!(cond["message"], "exceeded quota: pods");
    }
    // The skipped and failed creations were un-expected; the one success is still awaited.
    assert!(!h.replicas.expectations.satisfied(&key()));
    h.sync().await.unwrap();
    assert_eq!(h.fake().create_attempts, 3);
    h.replicas.expectations.creation_observed(&key());
    assert!(h.replicas.expectations.satisfied(&key()));
}

#[tokio::test]
async fn scale_down_deletes_the_first_ranked_pods_once() {
    let h = Harness::start(Fake {
        rs: replica_set(1),
        pods: vec![
            pod("running", Some("rs-uid"), "Running", Some("n1")),
            pod("unscheduled", Some("rs-uid"), "Pending", None),
            pod("pending", Some("rs-uid"), "Pending", Some("n2")),
            pod("other-owner", Some("someone-else"), "Pending", None),
            pod("done", Some("rs-uid"), "Succeeded", Some("n1")),
        ],
        ..Fake::default()
    })
    .await;
    h.sync().await.unwrap();
    let mut deleted = h.fake().deleted.clone();
    deleted.sort();
    assert_eq!(deleted, ["pending", "unscheduled"]);
    assert_eq!(
        h.fake().status_patches.last().unwrap()["status"]["replicas"],
        3
    );
    h.sync().await.unwrap();
    assert_eq!(
        h.fake().deleted.len(),
        2,
        "no second round while deletions are pending"
    );
}

#[tokio::test]
async fn matching_orphans_are_adopted_and_counted() {
    let mut unlabeled = pod("unrelated", None, "Running", Some("n1"));
    unlabeled["metadata"]["labels"] = json!({"app": "db"});
    let h = Harness::start(Fake {
        rs: replica_set(2),
        pods: vec![
            pod("mine", Some("rs-uid"), "Running", Some("n1")),
            pod("orphan", None, "Running", Some("n2")),
            unlabeled,
        ],
        ..Fake::default()
    })
    .await;
    assert_eq!(
        h.sync().await.unwrap(),
        Action::Done,
        "nothing created or deleted: nothing to wait for"
    );
    let f = h.fake();
    assert_eq!(f.adopted, ["orphan"]);
    assert_eq!(f.created, 0, "the adopted orphan counts as a replica");
    assert_eq!(f.status_patches.last().unwrap()["status"]["replicas"], 2);
}
