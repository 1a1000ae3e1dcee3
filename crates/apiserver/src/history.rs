//! `GET /keelson/v1/history`: every retained revision of one object, from the store's MVCC
//! history, with who made each write (see [`crate::record`]).
//!
//! Query parameters: `apiVersion` (e.g. `apps/v1`), `resource` (plural), `namespace` (for
//! namespaced resources) and `name`. The history is read by watching the object's key from the
//! oldest retained revision and asking the store for a progress report, so it works the same
//! on every backend and includes deletions and re-creations.

use std::time::Duration;

use api::ApiError;
use futures::StreamExt;
use serde_json::{Value, json};
use store::EventKind;

use crate::handler::Api;
use crate::request::Query;

/// Longest time the store may take to replay one object's history.
const REPLAY_TIMEOUT: Duration = Duration::from_secs(10);

pub async fn history(api: &Api, q: &Query) -> Result<Value, ApiError> {
    let param = |k: &str| q.get(k).filter(|v| !v.is_empty());
    let api_version =
        param("apiVersion").ok_or_else(|| ApiError::bad_request("apiVersion is required"))?;
    let resource =
        param("resource").ok_or_else(|| ApiError::bad_request("resource is required"))?;
    let name = param("name").ok_or_else(|| ApiError::bad_request("name is required"))?;
    let (group, version) = api::resources::split_api_version(api_version);
    let served = api::resources::lookup(group, version, resource).ok_or_else(|| {
        ApiError::new(
            api::Reason::NotFound,
            format!("the server does not serve {resource} in {api_version}"),
        )
    })?;
    let ns = if served.namespaced {
        param("namespace").ok_or_else(|| {
            ApiError::bad_request(format!("{resource} are namespaced: namespace is required"))
        })?
    } else {
        ""
    };
    let store = api.store_for(served);
    let kv = api.kv();
    let key = store.info.storage_key(ns, name);
    let map_err = |e| store.store_error(e, name);
    let compacted = kv.compacted_revision().await.map_err(map_err)?;
    let current = kv.current_revision().await.map_err(map_err)?;
    let mut stream = kv
        .watch(&key, (compacted - 1).max(0))
        .await
        .map_err(map_err)?;
    kv.request_progress().await.map_err(map_err)?;
    let mut revisions = Vec::new();
    let replay = async {
        while let Some(ev) = stream.next().await {
            let ev = ev.map_err(map_err)?;
            if ev.kind == EventKind::Progress {
                if ev.revision() >= current {
                    break;
                }
                continue;
            }
            // The watch is on a prefix: `web` also matches `web-2`.
            if ev.kv.key != key || ev.revision() > current {
                continue;
            }
            revisions.push(entry(served, &ev)?);
        }
        Ok::<(), ApiError>(())
    };
    tokio::time::timeout(REPLAY_TIMEOUT, replay)
        .await
        .map_err(|_| {
            ApiError::timeout("the store did not replay the object's history in time")
        })??;
    if revisions.is_empty() {
        return Err(ApiError::not_found(served.group, served.plural, name));
    }
    Ok(json!({
        "kind": "History",
        "apiVersion": "keelson/v1",
        "resource": served.plural,
        "namespace": ns,
        "name": name,
        "oldestRetainedRevision": compacted.max(1),
        "revisions": revisions,
    }))
}

/// One revision: the object as served, its event type, and the write record if there is one.
fn entry(served: &'static api::ResourceInfo, ev: &store::WatchEvent) -> Result<Value, ApiError> {
    let mut obj: Value = serde_json::from_slice(&ev.kv.value).map_err(|e| {
        ApiError::internal(format!(
            "stored revision {} is not JSON: {e}",
            ev.revision()
        ))
    })?;
    let record = crate::record::strip(&mut obj);
    crate::object::set_resource_version(&mut obj, ev.revision());
    let obj = registry::convert::from_storage(served, obj)?;
    let (kind, record) = match ev.kind {
        // A delete's value is the last state; its record is that earlier write's.
        EventKind::Delete => ("DELETED", None),
        _ if ev.prev.is_none() => ("ADDED", record),
        _ => ("MODIFIED", record),
    };
    let mut e = json!({ "revision": ev.revision(), "type": kind, "object": obj });
    if let Some(r) = record {
        e["by"] = json!(r.by);
        e["operation"] = json!(r.op);
        e["time"] = json!(r.at);
    }
    Ok(e)
}
