//! The `scale` subresource (`autoscaling/v1` `Scale`) of deployments, replica sets, stateful
//! sets and replication controllers: a view of `spec.replicas`, `status.replicas` and the
//! selector, written back through the main resource so validation and generation apply.

use api::resources::ResourceInfo;
use api::{ApiError, FieldError};
use bytes::Bytes;
use http::Response;
use serde_json::{Value, json};

use crate::codec::{self, BodyType};
use crate::object;
use crate::render::View;
use crate::request::{Query, WriteOptions};
use crate::response::{self, Body};
use crate::storage::{ResourceStore, Subresource};

pub struct ScaleRequest<'a> {
    pub served: &'static ResourceInfo,
    pub store: &'a ResourceStore,
    pub ns: &'a str,
    pub name: &'a str,
    pub query: &'a Query,
    pub content_type: Option<&'a str>,
    pub body: Bytes,
    pub view: View,
    pub user: &'a str,
}

/// The label selector of a scalable object as `status.selector` shows it.
fn selector_string(info: &ResourceInfo, obj: &Value) -> Result<String, ApiError> {
    let Some(sel) = obj.pointer("/spec/selector") else {
        return Ok(String::new());
    };
    if info.kind == "ReplicationController" {
        // A plain map; rendered sorted by key like upstream's labels.Set.
        let mut pairs: Vec<String> = sel
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                    .collect()
            })
            .unwrap_or_default();
        pairs.sort();
        return Ok(pairs.join(","));
    }
    let typed: k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector =
        serde_json::from_value(sel.clone())
            .map_err(|e| ApiError::internal(format!("stored selector is malformed: {e}")))?;
    api::selector::LabelSelector::from_k8s(&typed)
        .map(|s| s.to_string())
        .map_err(|e| ApiError::internal(format!("stored selector is invalid: {e}")))
}

/// The `Scale` of a stored object.
pub fn scale_of(info: &ResourceInfo, obj: &Value) -> Result<Value, ApiError> {
    let meta = obj.get("metadata").cloned().unwrap_or_else(|| json!({}));
    let pick = |k: &str| meta.get(k).cloned().unwrap_or(Value::Null);
    let mut m = serde_json::Map::new();
    for k in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
    ] {
        let v = pick(k);
        if !v.is_null() {
            m.insert(k.into(), v);
        }
    }
    Ok(json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": m,
        "spec": { "replicas": obj.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(0) },
        "status": {
            "replicas": obj.pointer("/status/replicas").and_then(Value::as_i64).unwrap_or(0),
            "selector": selector_string(info, obj)?,
        },
    }))
}

fn scale_response(
    info: &ResourceInfo,
    obj: &Value,
    pretty: bool,
) -> Result<Response<Body>, ApiError> {
    let s = scale_of(info, obj)?;
    let body = if pretty {
        serde_json::to_vec_pretty(&s)
    } else {
        serde_json::to_vec(&s)
    }
    .unwrap_or_default();
    Ok(response::bytes(200, "application/json", body))
}

/// The replica count a `Scale` asks for, validated as upstream does.
fn wanted_replicas(name: &str, scale: &Value) -> Result<i64, ApiError> {
    if scale
        .get("kind")
        .and_then(Value::as_str)
        .is_some_and(|k| k != "Scale")
    {
        return Err(ApiError::bad_request(
            "the body of a scale request must be a Scale object",
        ));
    }
    let replicas = scale.pointer("/spec/replicas");
    let n = match replicas {
        None | Some(Value::Null) => 0,
        Some(v) => v
            .as_i64()
            .ok_or_else(|| ApiError::bad_request("Scale spec.replicas must be an integer"))?,
    };
    if n < 0 || n > i64::from(i32::MAX) {
        return Err(ApiError::invalid(
            "autoscaling",
            "Scale",
            name,
            vec![FieldError::invalid(
                "spec.replicas",
                n,
                "must be greater than or equal to 0",
            )],
        ));
    }
    Ok(n)
}

/// Applies a replica count to the stored object; the Scale's resourceVersion, if any, is the
/// precondition.
fn with_replicas(cur: &Value, replicas: i64, rv: &str) -> Value {
    let mut o = cur.clone();
    if let Value::Object(root) = &mut o {
        let spec = root.entry("spec").or_insert_with(|| json!({}));
        if let Value::Object(spec) = spec {
            spec.insert("replicas".into(), json!(replicas));
        }
    }
    if rv.is_empty() {
        object::clear_resource_version(&mut o);
    } else {
        object::meta_mut(&mut o).insert("resourceVersion".into(), json!(rv));
    }
    o
}

pub async fn get(
    store: &ResourceStore,
    view: View,
    ns: &str,
    name: &str,
) -> Result<Response<Body>, ApiError> {
    let obj = store.get(ns, name).await?;
    scale_response(store.info, &obj, view.pretty)
}

pub async fn update(r: &ScaleRequest<'_>) -> Result<Response<Body>, ApiError> {
    let mut opts = WriteOptions::from_query(r.query)?;
    opts.user = r.user.to_string();
    let ty = BodyType::from_content_type(r.content_type)?;
    let (scale, _) = codec::decode_object(&r.body, ty, false)?;
    if !object::name(&scale).is_empty() && object::name(&scale) != r.name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({}) does not match the name on the URL ({})",
            object::name(&scale),
            r.name
        )));
    }
    let replicas = wanted_replicas(r.name, &scale)?;
    let rv = object::resource_version(&scale).to_string();
    let result = r
        .store
        .update_with(r.ns, r.name, Subresource::Main, &opts, false, |cur| {
            Ok(with_replicas(cur, replicas, &rv))
        })
        .await?;
    scale_response(r.store.info, &result.object, r.view.pretty)
}

pub async fn patch(r: &ScaleRequest<'_>) -> Result<Response<Body>, ApiError> {
    let mut opts = WriteOptions::from_query(r.query)?;
    opts.user = r.user.to_string();
    let ty = BodyType::from_content_type(r.content_type)?;
    let doc = crate::patching::parse_patch(ty, &r.body)?;
    let info = r.store.info;
    let name = r.name;
    let result = r
        .store
        .update_with(r.ns, r.name, Subresource::Main, &opts, false, |cur| {
            let scale = scale_of(info, cur)?;
            // A Scale has no merge-keyed lists, so a strategic merge patch is a merge patch.
            let patched = crate::patching::apply_untyped(ty, &scale, &doc)?;
            let replicas = wanted_replicas(name, &patched)?;
            let rv = object::resource_version(&patched);
            let rv = if rv == object::resource_version(&scale) {
                ""
            } else {
                rv
            };
            Ok(with_replicas(cur, replicas, rv))
        })
        .await?;
    scale_response(info, &result.object, r.view.pretty)
}
