//! The eviction reconciler against a fake API server (lists once, then silent watches): what
//! it writes, and that a failed eviction stays due.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use controller_runtime::{EventSink, Informers};
use http::{Request, Response};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use serde_json::{Value, json};

use super::*;

#[derive(Default)]
struct Fake {
    /// Status patches refused (500) before one is accepted.
    failing_patches: usize,
    patches: Vec<Value>,
    deleted: Vec<String>,
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

fn silent_watch() -> Response<Body> {
    let events = futures::stream::pending::<Result<http_body::Frame<Bytes>, Infallible>>();
    Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(StreamBody::new(events).boxed())
        .unwrap()
}

fn list(kind: &str, items: Vec<Value>) -> Value {
    json!({"kind": kind, "apiVersion": "v1", "metadata": {"resourceVersion": "1"}, "items": items})
}

fn status(code: u16, reason: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code,
           "reason": reason, "message": reason})
}

/// Pod `ns/p` on `n1`, tolerating `unreachable` for 2 s.
fn pod() -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "namespace": "ns", "uid": "uid-p", "resourceVersion": "1"},
        "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "x"}],
                 "tolerations": [{"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                                  "effect": "NoExecute", "tolerationSeconds": 2}]},
    })
}

fn node() -> Value {
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": "n1", "uid": "uid-n1", "resourceVersion": "1"},
        "spec": {"taints": [{"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}]},
    })
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
    let response = match (method.as_str(), path.as_str()) {
        ("GET", "/api/v1/pods" | "/api/v1/nodes") if watch => silent_watch(),
        ("GET", "/api/v1/pods") => reply(200, &list("PodList", vec![pod()])),
        ("GET", "/api/v1/nodes") => reply(200, &list("NodeList", vec![node()])),
        ("PATCH", "/api/v1/namespaces/ns/pods/p/status") => {
            s.patches.push(body);
            if s.failing_patches > 0 {
                s.failing_patches -= 1;
                reply(500, &status(500, "InternalError"))
            } else {
                reply(200, &pod())
            }
        }
        ("DELETE", "/api/v1/namespaces/ns/pods/p") => {
            s.deleted.push(
                body["preconditions"]["uid"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned(),
            );
            reply(200, &pod())
        }
        _ => reply(404, &status(404, "NotFound")),
    };
    Ok(response)
}

async fn start(fake: Fake) -> (TaintEviction, Shared, Informers) {
    let state = Arc::new(Mutex::new(fake));
    let s = state.clone();
    let client = kube::Client::new(tower::service_fn(move |r| handle(s.clone(), r)), "default");
    let informers = Informers::new(client.clone());
    let (nodes, pods) = (informers.get::<Node>(), informers.get::<Pod>());
    informers.start();
    informers.wait_synced().await;
    let r = TaintEviction {
        client,
        nodes,
        pods,
        recorder: EventSink::disabled().recorder("taint-eviction-controller"),
        timers: Mutex::new(HashMap::new()),
    };
    (r, state, informers)
}

#[tokio::test(start_paused = true)]
async fn a_failed_eviction_stays_due_and_is_guarded_by_uid() {
    let (r, state, _informers) = start(Fake {
        failing_patches: 1,
        ..Fake::default()
    })
    .await;
    let key = Key::new("ns", "p");
    assert_eq!(
        r.reconcile(&key).await.unwrap(),
        Action::RequeueAfter(Duration::from_secs(2))
    );
    tokio::time::advance(Duration::from_secs(2)).await;
    // The DisruptionTarget patch fails: nothing deleted yet.
    assert!(matches!(
        r.reconcile(&key).await,
        Err(EvictionError::Condition { .. })
    ));
    assert!(state.lock().unwrap().deleted.is_empty());
    // The retry evicts at once instead of waiting out the toleration again.
    assert_eq!(r.reconcile(&key).await.unwrap(), Action::Done);
    let f = state.lock().unwrap();
    assert_eq!(f.deleted, ["uid-p"], "the delete is conditional on the UID");
    assert_eq!(f.patches.len(), 2);
    assert_eq!(f.patches[1]["metadata"]["uid"], "uid-p");
    let cond = &f.patches[1]["status"]["conditions"][0];
    assert_eq!(
        (&cond["type"], &cond["reason"]),
        (&json!("DisruptionTarget"), &json!("DeletionByTaintManager"))
    );
    assert!(r.timers().is_empty(), "the timer goes with the pod");
}
