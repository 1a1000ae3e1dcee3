//! The Swagger 2.0 document served at `/openapi/v2`: every path and every definition.
//!
//! kubectl 1.33 reads it (as protobuf, see [`crate::gnostic`]) only when the v3 documents cannot
//! answer: client-side validation of `kind: List` manifests or when a group version lacks the
//! `fieldValidation` parameter, `explain --output plaintext-openapiv2`, and apply's fallback
//! patch-type lookup. Its quirks are therefore the ones kube-openapi's v2 parser tolerates:
//! a `$ref` schema has no `type`, arrays have exactly one `items` schema.

use serde_json::{Map, Value, json};

use crate::KUBERNETES_VERSION;
use crate::definitions::{Catalog, GVK_EXTENSION, reference};
use crate::params::Param;
use crate::routes::{self, Operation, PathItem};

pub(crate) const ACTION_EXTENSION: &str = "x-kubernetes-action";

/// Builds the whole document.
pub(crate) fn document(catalog: &Catalog) -> Value {
    let mut paths = Map::new();
    for item in all_paths(catalog) {
        paths.insert(item.path.clone(), path_item(&item));
    }
    json!({
        "swagger": "2.0",
        "info": { "title": "Kubernetes", "version": KUBERNETES_VERSION },
        "paths": paths,
        "definitions": catalog.definitions,
        "securityDefinitions": {
            "BearerToken": {
                "description": "Bearer Token authentication",
                "type": "apiKey",
                "name": "authorization",
                "in": "header",
            },
        },
        "security": [{ "BearerToken": [] }],
    })
}

/// Every path the server describes: discovery documents and all group versions.
pub(crate) fn all_paths(catalog: &Catalog) -> Vec<PathItem> {
    let mut items = Vec::new();
    for key in routes::discovery_keys() {
        items.extend(routes::discovery_paths(&key).unwrap_or_default());
    }
    for (group, versions) in api::resources::groups() {
        for version in versions {
            items.extend(routes::group_version_paths(
                group,
                version,
                &catalog.resources,
            ));
        }
    }
    items
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

pub(crate) fn gvk_extension(op: &Operation) -> Option<Value> {
    op.gvk
        .as_ref()
        .map(|g| json!({ "group": g.group, "kind": g.kind, "version": g.version }))
}

fn operation(op: &Operation) -> Value {
    let mut params: Vec<Value> = Vec::new();
    if let Some(body) = &op.body {
        params.push(json!({
            "name": "body",
            "in": "body",
            "required": body.required,
            "schema": reference(&body.schema),
        }));
    }
    params.extend(op.params.iter().map(param));
    let consumes: Vec<&str> = match op.body.as_ref().and_then(|b| b.media_types) {
        Some(types) => types.to_vec(),
        None => vec!["*/*"],
    };
    let mut responses = Map::new();
    for r in &op.responses {
        let mut resp = json!({ "description": r.description });
        if let Some(schema) = &r.schema {
            resp["schema"] = reference(schema);
        }
        responses.insert(r.code.to_string(), resp);
    }
    let mut out = json!({
        "description": op.description,
        "consumes": consumes,
        "produces": op.produces,
        "schemes": ["https"],
        "tags": [op.tag],
        "operationId": op.id,
        "responses": responses,
    });
    if !params.is_empty() {
        out["parameters"] = Value::Array(params);
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
        "type": p.ty,
        "uniqueItems": true,
    });
    if p.required {
        out["required"] = json!(true);
    }
    out
}
