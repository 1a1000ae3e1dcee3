//! The OpenAPI 3.0 documents served under `/openapi/v3`: one per group version (plus the
//! discovery documents `api`, `apis`, `apis/<group>` and `version`), each holding only its own
//! paths and the schemas they reach, and the index that lists them with a content hash.
//!
//! kubectl 1.33 reads these as JSON (never protobuf): `explain` finds the kind through the
//! `x-kubernetes-group-version-kind` on the resource's list/object operations and then the
//! schema carrying the same GVK; `--validate` looks for `fieldValidation` on the kind's PATCH
//! operation; apply and diff build their strategic merge patches from the
//! `x-kubernetes-patch-*` extensions (`edit` uses its compiled-in types instead). References take the v3 shape: `#/components/schemas/…`,
//! and a reference with a sibling (a field's description) is wrapped as
//! `allOf: [{$ref}]` the way upstream publishes it, which kubectl's explain templates and
//! patch-meta lookup both unwrap.

use std::collections::{BTreeSet, VecDeque};

use serde_json::{Map, Value, json};

use crate::KUBERNETES_VERSION;
use crate::definitions::{Catalog, GVK_EXTENSION, REF_PREFIX};
use crate::params::Param;
use crate::routes::{Operation, PathItem};
use crate::v2::{ACTION_EXTENSION, gvk_extension};

pub(crate) const COMPONENTS_PREFIX: &str = "#/components/schemas/";

/// Every definition in v3 form, converted once for all the documents that share them.
pub(crate) fn schemas(catalog: &Catalog) -> Map<String, Value> {
    catalog
        .definitions
        .iter()
        .map(|(name, schema)| (name.clone(), to_v3(schema)))
        .collect()
}

/// One document from its paths; `all` is [`schemas`], of which the document holds the ones
/// its paths reach.
pub(crate) fn document(all: &Map<String, Value>, items: &[PathItem]) -> Value {
    let mut paths = Map::new();
    for item in items {
        paths.insert(item.path.clone(), path_item(item));
    }
    let mut schemas = Map::new();
    for name in reachable(all, items) {
        if let Some(schema) = all.get(&name) {
            schemas.insert(name, schema.clone());
        }
    }
    json!({
        "openapi": "3.0.0",
        "info": { "title": "Kubernetes", "version": KUBERNETES_VERSION },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "BearerToken": {
                    "type": "apiKey",
                    "description": "Bearer Token authentication",
                    "name": "authorization",
                    "in": "header",
                },
            },
        },
        "security": [{ "BearerToken": [] }],
    })
}

/// The index: `{"paths": {"api/v1": {"serverRelativeURL": "/openapi/v3/api/v1?hash=…"}}}`.
pub(crate) fn index<'a>(hashes: impl Iterator<Item = (&'a str, &'a str)>) -> Value {
    let mut paths = Map::new();
    for (key, hash) in hashes {
        paths.insert(
            key.to_string(),
            json!({ "serverRelativeURL": format!("/openapi/v3/{key}?hash={hash}") }),
        );
    }
    json!({ "paths": paths })
}

fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("{COMPONENTS_PREFIX}{name}") })
}

fn path_item(item: &PathItem) -> Value {
    let mut out = Map::new();
    for op in &item.operations {
        out.insert(op.method.as_str().to_string(), operation(op));
    }
    if !item.params.is_empty() {
        out.insert("parameters".into(), item.params.iter().map(param).collect());
    }
    Value::Object(out)
}

fn operation(op: &Operation) -> Value {
    let mut responses = Map::new();
    for r in &op.responses {
        let mut resp = json!({ "description": r.description });
        if let Some(schema) = &r.schema {
            let content: Map<String, Value> = op
                .produces
                .iter()
                .map(|mt| (mt.to_string(), json!({ "schema": schema_ref(schema) })))
                .collect();
            resp["content"] = Value::Object(content);
        }
        responses.insert(r.code.to_string(), resp);
    }
    let mut out = json!({
        "tags": [op.tag],
        "description": op.description,
        "operationId": op.id,
        "responses": responses,
    });
    if !op.params.is_empty() {
        out["parameters"] = op.params.iter().map(param).collect();
    }
    if let Some(body) = &op.body {
        let types: &[&str] = body.media_types.unwrap_or(&["*/*"]);
        let content: Map<String, Value> = types
            .iter()
            .map(|mt| {
                (
                    mt.to_string(),
                    json!({ "schema": schema_ref(&body.schema) }),
                )
            })
            .collect();
        let mut request = json!({ "content": content });
        if body.required {
            request["required"] = json!(true);
        }
        out["requestBody"] = request;
    }
    if let Some(action) = op.action {
        out[ACTION_EXTENSION] = json!(action);
    }
    if let Some(gvk) = gvk_extension(op) {
        out[GVK_EXTENSION] = gvk;
    }
    out
}

fn param(p: &Param) -> Value {
    let mut out = json!({
        "name": p.name,
        "in": p.location.as_str(),
        "description": p.description,
        "schema": { "type": p.ty, "uniqueItems": true },
    });
    if p.required {
        out["required"] = json!(true);
    }
    out
}

/// Names of the definitions the paths refer to, directly or through other definitions.
fn reachable(all: &Map<String, Value>, items: &[PathItem]) -> BTreeSet<String> {
    let mut queue: VecDeque<String> = VecDeque::new();
    for op in items.iter().flat_map(|i| &i.operations) {
        queue.extend(op.body.iter().map(|b| b.schema.clone()));
        queue.extend(op.responses.iter().filter_map(|r| r.schema.clone()));
    }
    let mut seen = BTreeSet::new();
    while let Some(name) = queue.pop_front() {
        if !seen.insert(name.clone()) {
            continue;
        }
        if let Some(schema) = all.get(&name) {
            collect_refs(schema, &mut |r| queue.push_back(r.to_string()));
        }
    }
    seen
}

/// Calls `found` with the schema name of every (v3) `$ref` inside `value`.
fn collect_refs(value: &Value, found: &mut dyn FnMut(&str)) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("$ref", Value::String(r)) => {
                        if let Some(name) = r.strip_prefix(COMPONENTS_PREFIX) {
                            found(name);
                        }
                    }
                    _ => collect_refs(v, found),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, found)),
        _ => {}
    }
}

/// Rewrites a v2 schema into v3 form.
fn to_v3(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut out: Map<String, Value> = Map::new();
            let mut reference = None;
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("$ref", Value::String(r)) => {
                        let name = r.strip_prefix(REF_PREFIX).unwrap_or(r);
                        reference = Some(schema_ref(name));
                    }
                    // Extensions carry data, not schemas: copy them untouched.
                    (k, v) if k.starts_with("x-") => {
                        out.insert(k.to_string(), v.clone());
                    }
                    (k, v) => {
                        out.insert(k.to_string(), to_v3(v));
                    }
                }
            }
            match reference {
                Some(r) if out.is_empty() => r,
                Some(r) => {
                    out.insert("allOf".into(), json!([r]));
                    Value::Object(out)
                }
                None => Value::Object(out),
            }
        }
        Value::Array(items) => Value::Array(items.iter().map(to_v3).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs_take_the_v3_shape() {
        let v2 = json!({
            "type": "object",
            "properties": {
                "a": { "$ref": "#/definitions/io.k8s.X" },
                "b": { "$ref": "#/definitions/io.k8s.Y", "description": "why" },
                "c": { "type": "array", "items": { "$ref": "#/definitions/io.k8s.X" } },
            },
            "x-kubernetes-group-version-kind": [{ "group": "", "kind": "K", "version": "v1" }],
        });
        assert_eq!(
            to_v3(&v2),
            json!({
                "type": "object",
                "properties": {
                    "a": { "$ref": "#/components/schemas/io.k8s.X" },
                    "b": {
                        "allOf": [{ "$ref": "#/components/schemas/io.k8s.Y" }],
                        "description": "why",
                    },
                    "c": {
                        "type": "array",
                        "items": { "$ref": "#/components/schemas/io.k8s.X" },
                    },
                },
                "x-kubernetes-group-version-kind": [{ "group": "", "kind": "K", "version": "v1" }],
            })
        );
    }

    #[test]
    fn index_urls_carry_the_hash() {
        let index = index([("api/v1", "AB"), ("apis/apps/v1", "CD")].into_iter());
        assert_eq!(
            index,
            json!({ "paths": {
                "api/v1": { "serverRelativeURL": "/openapi/v3/api/v1?hash=AB" },
                "apis/apps/v1": { "serverRelativeURL": "/openapi/v3/apis/apps/v1?hash=CD" },
            }})
        );
    }
}
