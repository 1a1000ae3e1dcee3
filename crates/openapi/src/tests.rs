//! Whole-document checks: what kubectl 1.33 and kube-openapi's parsers look for.

use std::time::Instant;

use api::resources::RESOURCES;
use prost::Message;
use serde_json::{Value, json};

use crate::definitions::{GVK_EXTENSION, PATCH_MERGE_KEY_EXTENSION, PATCH_STRATEGY_EXTENSION};
use crate::routes::group_version_key;
use crate::{gnostic, v2_json, v2_protobuf, v3_document, v3_group_version, v3_hash, v3_index};

fn parse(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).expect("document is JSON")
}

fn gvk(group: &str, version: &str, kind: &str) -> Value {
    json!({ "group": group, "kind": kind, "version": version })
}

/// Calls `found` with every `$ref` string in `value`.
fn refs<'a>(value: &'a Value, found: &mut dyn FnMut(&'a str)) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                match v {
                    Value::String(r) if k == "$ref" => found(r),
                    _ => refs(v, found),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, found)),
        _ => {}
    }
}

/// The schema in `schemas` whose GVK list contains `wanted` (kubectl explain's search).
fn schema_with_gvk<'a>(schemas: &'a Value, wanted: &Value) -> Option<&'a str> {
    schemas.as_object()?.iter().find_map(|(name, s)| {
        s.get(GVK_EXTENSION)?
            .as_array()?
            .contains(wanted)
            .then_some(name.as_str())
    })
}

#[test]
fn v2_has_the_expected_shape() {
    let doc = parse(&v2_json().body());
    assert_eq!(doc["swagger"], "2.0");
    assert_eq!(doc["info"]["version"], crate::KUBERNETES_VERSION);
    let definitions = &doc["definitions"];
    for r in RESOURCES {
        for kind in [r.kind.to_string(), r.list_kind()] {
            assert!(
                schema_with_gvk(definitions, &gvk(r.group, r.version, &kind)).is_some(),
                "{}/{} {kind} has no definition",
                r.group,
                r.version
            );
        }
    }
    let pods = &doc["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"];
    assert_eq!(pods["patch"]["x-kubernetes-action"], "patch");
    assert_eq!(
        pods["patch"][GVK_EXTENSION],
        gvk("", "v1", "Pod"),
        "operation GVK is a single object"
    );
    assert_eq!(
        pods["patch"]["consumes"],
        json!([
            "application/apply-patch+yaml",
            "application/json-patch+json",
            "application/merge-patch+json",
            "application/strategic-merge-patch+json",
        ])
    );
    let names: Vec<&str> = pods["patch"]["parameters"]
        .as_array()
        .map(|ps| ps.iter().filter_map(|p| p["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        names,
        ["body", "dryRun", "fieldManager", "fieldValidation", "force"]
    );
    let scale = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"];
    assert_eq!(
        scale["put"][GVK_EXTENSION],
        gvk("autoscaling", "v1", "Scale")
    );
    let finalize = &doc["paths"]["/api/v1/namespaces/{name}/finalize"];
    assert_eq!(
        finalize["put"]["operationId"],
        "replaceCoreV1NamespaceFinalize"
    );
    assert!(doc["paths"]["/api/v1/namespaces"].get("delete").is_none());
    assert_eq!(
        doc["paths"]["/api/v1/pods"]["get"]["operationId"],
        "listCoreV1PodForAllNamespaces"
    );
    assert_eq!(
        doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments"]["delete"]["operationId"],
        "deleteAppsV1CollectionNamespacedDeployment"
    );
}

#[test]
fn v2_refs_resolve_and_suit_the_proto_parser() {
    let doc = parse(&v2_json().body());
    let definitions = doc["definitions"].as_object().expect("definitions");
    let mut count = 0;
    refs(&doc, &mut |r| {
        count += 1;
        let name = r.strip_prefix("#/definitions/").expect("v2 ref shape");
        assert!(definitions.contains_key(name), "dangling {r}");
    });
    assert!(count > 1000, "{count} refs");
    // kube-openapi's v2 parser rejects a `$ref` with a type or properties, an array without
    // exactly one items schema, and multi-typed schemas.
    fn check(path: &str, s: &Value) {
        let Some(map) = s.as_object() else { return };
        if map.contains_key("$ref") {
            assert!(
                !map.contains_key("type") && !map.contains_key("properties"),
                "{path}"
            );
        }
        if map.get("type") == Some(&json!("array")) {
            assert!(map.get("items").is_some_and(Value::is_object), "{path}");
        }
        assert!(!map.get("type").is_some_and(Value::is_array), "{path}");
        for (k, v) in map {
            match k.as_str() {
                "properties" => {
                    for (f, p) in v.as_object().into_iter().flatten() {
                        check(&format!("{path}.{f}"), p);
                    }
                }
                "items" | "additionalProperties" => check(&format!("{path}[]"), v),
                _ => {}
            }
        }
    }
    for (name, schema) in definitions {
        check(name, schema);
    }
}

#[test]
fn v3_index_lists_every_group_version_with_its_hash() {
    let index = parse(&v3_index().body());
    let paths = index["paths"].as_object().expect("paths");
    for (group, versions) in api::resources::groups() {
        for version in versions {
            let key = group_version_key(group, version);
            let hash = v3_hash(group, version).expect("hash");
            assert_eq!(hash.len(), 128);
            assert_eq!(
                paths[&key]["serverRelativeURL"],
                format!("/openapi/v3/{key}?hash={hash}")
            );
        }
    }
    for key in ["api", "apis", "apis/apps", "version"] {
        assert!(paths.contains_key(key), "{key}");
        assert!(v3_document(key).is_some(), "{key}");
    }
    assert!(v3_group_version("apps", "v2").is_none());
    assert!(v3_document("apis/apps/v1/").is_none());
}

#[test]
fn v3_documents_hold_only_their_group_version_and_resolve() {
    for (group, versions) in api::resources::groups() {
        for version in versions {
            let key = group_version_key(group, version);
            let doc = parse(&v3_group_version(group, version).expect("doc").body());
            assert_eq!(doc["openapi"], "3.0.0");
            let schemas = &doc["components"]["schemas"];
            refs(&doc, &mut |r| {
                let name = r
                    .strip_prefix("#/components/schemas/")
                    .unwrap_or_else(|| panic!("{key}: v3 ref shape {r}"));
                assert!(schemas.get(name).is_some(), "{key}: dangling {r}");
            });
            for path in doc["paths"].as_object().expect("paths").keys() {
                assert!(path.starts_with(&format!("/{key}/")), "{key}: {path}");
            }
        }
    }
    // apps/v1 does not carry core-only kinds, but does carry what its kinds reference.
    let apps = parse(&v3_group_version("apps", "v1").expect("apps").body());
    let schemas = &apps["components"]["schemas"];
    assert!(schemas.get("io.k8s.api.core.v1.Node").is_none());
    assert!(schemas.get("io.k8s.api.core.v1.PodTemplateSpec").is_some());
    assert!(schemas.get("io.k8s.api.autoscaling.v1.Scale").is_some());
}

/// What kubectl explain does: the GVK from the resource's list/object operations, then the
/// schema bearing it.
#[test]
fn explain_finds_every_kind() {
    for r in RESOURCES {
        let doc = parse(&v3_group_version(r.group, r.version).expect("doc").body());
        let base = format!("/{}", group_version_key(r.group, r.version));
        let path = if r.namespaced {
            format!("{base}/namespaces/{{namespace}}/{}", r.plural)
        } else {
            format!("{base}/{}", r.plural)
        };
        let found = doc["paths"][&path]["get"][GVK_EXTENSION].clone();
        assert_eq!(found, gvk(r.group, r.version, r.kind), "{path}");
        let name = schema_with_gvk(&doc["components"]["schemas"], &found)
            .unwrap_or_else(|| panic!("{path}: no schema"));
        assert!(name.ends_with(&format!(".{}", r.kind)), "{name}");
    }
    // A field behind a described `$ref` is an allOf wrapper, as upstream publishes it.
    let core = parse(&v3_group_version("", "v1").expect("core").body());
    let spec = &core["components"]["schemas"]["io.k8s.api.core.v1.Pod"]["properties"]["spec"];
    assert_eq!(
        spec["allOf"],
        json!([{ "$ref": "#/components/schemas/io.k8s.api.core.v1.PodSpec" }])
    );
    assert!(spec["description"].is_string());
}

/// What kubectl's `QueryParamVerifierV3` does for `--validate=strict`, and what apply's
/// patcher checks before building a strategic merge patch from v3.
#[test]
fn patch_operations_take_field_validation_and_strategic_merge() {
    for r in RESOURCES {
        let doc = parse(&v3_group_version(r.group, r.version).expect("doc").body());
        let wanted = gvk(r.group, r.version, r.kind);
        let patches: Vec<&Value> = doc["paths"]
            .as_object()
            .expect("paths")
            .values()
            .filter_map(|p| p.get("patch"))
            .filter(|op| op[GVK_EXTENSION] == wanted)
            .collect();
        assert!(!patches.is_empty(), "{} has no PATCH", r.kind);
        for op in patches {
            let params = op["parameters"].as_array().expect("parameters");
            assert!(
                params
                    .iter()
                    .any(|p| p["name"] == "fieldValidation" && p["in"] == "query"),
                "{}",
                r.kind
            );
            assert!(
                op["requestBody"]["content"]
                    .get("application/strategic-merge-patch+json")
                    .is_some()
            );
        }
    }
}

#[test]
fn protobuf_carries_the_same_document() {
    let json = parse(&v2_json().body());
    let doc = gnostic::Document::decode(v2_protobuf().body()).expect("decodes");
    assert_eq!(doc.swagger, "2.0");
    let definitions = doc.definitions.expect("definitions").additional_properties;
    assert_eq!(
        definitions.len(),
        json["definitions"]
            .as_object()
            .map(|d| d.len())
            .unwrap_or(0)
    );
    let pod = definitions
        .iter()
        .find(|d| d.name == "io.k8s.api.core.v1.Pod")
        .and_then(|d| d.value.clone())
        .expect("Pod");
    let ext = pod
        .vendor_extension
        .iter()
        .find(|e| e.name == GVK_EXTENSION)
        .and_then(|e| e.value.clone())
        .expect("gvk extension");
    assert_eq!(parse(ext.yaml.as_bytes()), json!([gvk("", "v1", "Pod")]));
    let spec = pod
        .properties
        .expect("properties")
        .additional_properties
        .into_iter()
        .find(|p| p.name == "spec")
        .and_then(|p| p.value)
        .expect("spec");
    assert_eq!(spec.r#ref, "#/definitions/io.k8s.api.core.v1.PodSpec");
    assert!(!spec.description.is_empty());

    // The PATCH operation kubectl's v2 verifier looks at.
    let paths = doc.paths.expect("paths").path;
    let item = paths
        .iter()
        .find(|p| p.name == "/api/v1/namespaces/{namespace}/pods/{name}")
        .and_then(|p| p.value.clone())
        .expect("pod path");
    let patch = item.patch.expect("patch");
    let names: Vec<String> = patch
        .parameters
        .iter()
        .filter_map(|p| match &p.oneof {
            Some(gnostic::parameters_item::Oneof::Parameter(gnostic::Parameter {
                oneof:
                    Some(gnostic::parameter::Oneof::NonBodyParameter(gnostic::NonBodyParameter {
                        oneof: Some(gnostic::non_body_parameter::Oneof::QueryParameterSubSchema(q)),
                    })),
            })) => Some(q.name.clone()),
            _ => None,
        })
        .collect();
    assert!(names.contains(&"fieldValidation".to_string()), "{names:?}");
    assert_eq!(item.parameters.len(), 3, "name, namespace, pretty");
}

#[test]
fn patch_extensions_reach_the_documents() {
    let v2 = parse(&v2_json().body());
    let core = parse(&v3_group_version("", "v1").expect("core").body());
    let apps = parse(&v3_group_version("apps", "v1").expect("apps").body());
    let v2_property =
        |definition: &str, field: &str| v2["definitions"][definition]["properties"][field].clone();
    let v3_property = |doc: &Value, definition: &str, field: &str| {
        doc["components"]["schemas"][definition]["properties"][field].clone()
    };
    let containers = [
        v2_property("io.k8s.api.core.v1.PodSpec", "containers"),
        v3_property(&core, "io.k8s.api.core.v1.PodSpec", "containers"),
        v3_property(&apps, "io.k8s.api.core.v1.PodSpec", "containers"),
    ];
    for c in &containers {
        assert_eq!(c[PATCH_STRATEGY_EXTENSION], "merge");
        assert_eq!(c[PATCH_MERGE_KEY_EXTENSION], "name");
    }
    let strategy = v3_property(&apps, "io.k8s.api.apps.v1.DeploymentSpec", "strategy");
    assert_eq!(strategy[PATCH_STRATEGY_EXTENSION], "retainKeys");
    assert!(strategy.get(PATCH_MERGE_KEY_EXTENSION).is_none());
    let finalizers = v2_property(
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        "finalizers",
    );
    assert_eq!(finalizers[PATCH_STRATEGY_EXTENSION], "merge");
    assert!(finalizers.get(PATCH_MERGE_KEY_EXTENSION).is_none());
    // Atomic fields carry nothing.
    let command = v2_property("io.k8s.api.core.v1.Container", "command");
    assert!(command.get(PATCH_STRATEGY_EXTENSION).is_none());
    // Every entry of the table lands on a property of a published definition.
    for (definition, field, meta) in patch::all_patch_meta() {
        if let Some(schema) = v2["definitions"].get(definition) {
            let property = &schema["properties"][field];
            assert_eq!(
                property[PATCH_STRATEGY_EXTENSION], meta.strategy,
                "{definition}.{field}"
            );
            assert_eq!(
                property[PATCH_MERGE_KEY_EXTENSION],
                json!(meta.merge_key),
                "{definition}.{field}"
            );
        }
    }
}

#[test]
fn serving_follows_kube_openapi() {
    use http::{HeaderMap, StatusCode, Uri, header};
    let get = |uri: &str, accept: Option<&str>| {
        let mut headers = HeaderMap::new();
        if let Some(a) = accept {
            headers.insert(header::ACCEPT, a.parse().expect("header"));
        }
        let uri: Uri = uri.parse().expect("uri");
        crate::respond(&uri, &headers)
    };
    assert!(get("/api/v1", None).is_none());

    let proto = get(
        "/openapi/v2",
        Some("application/com.github.proto-openapi.spec.v2@v1.0+protobuf"),
    )
    .expect("openapi path")
    .expect("ok");
    assert_eq!(proto.status(), StatusCode::OK);
    assert_eq!(
        proto.headers()[header::CONTENT_TYPE],
        crate::CONTENT_TYPE_V2_PROTOBUF
    );
    let etag = format!("\"{}\"", v2_json().etag());
    assert_eq!(proto.headers()[header::ETAG], etag.as_str());
    assert_eq!(proto.headers()[header::VARY], "Accept");

    let refused = get("/openapi/v2", Some("text/plain")).expect("openapi path");
    let refused = api::ApiError::from(refused.expect_err("refused"));
    assert_eq!(refused.to_status()["code"], 406);

    let hash = v3_hash("apps", "v1").expect("hash");
    let ok = get(
        &format!("/openapi/v3/apis/apps/v1?hash={hash}"),
        Some("application/json"),
    )
    .expect("openapi path")
    .expect("ok");
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(ok.headers()[header::CACHE_CONTROL], "public, immutable");
    assert!(ok.headers().contains_key(header::EXPIRES));

    let moved = get("/openapi/v3/apis/apps/v1?hash=OLD", None)
        .expect("openapi path")
        .expect("redirect");
    assert_eq!(moved.status(), StatusCode::MOVED_PERMANENTLY);
    assert_eq!(
        moved.headers()[header::LOCATION],
        format!("/openapi/v3/apis/apps/v1?hash={hash}").as_str()
    );

    let missing = get("/openapi/v3/apis/nope/v1", None).expect("openapi path");
    assert_eq!(missing.err(), Some(crate::ServeError::NotFound));
    let v3_protobuf = get(
        "/openapi/v3/api/v1",
        Some("application/com.github.proto-openapi.spec.v3@v1.0+protobuf"),
    )
    .expect("openapi path");
    assert_eq!(v3_protobuf.err(), Some(crate::ServeError::NotAcceptable));

    let mut headers = HeaderMap::new();
    headers.insert(header::IF_NONE_MATCH, etag.parse().expect("header"));
    let cached = crate::respond(&"/openapi/v2".parse().expect("uri"), &headers)
        .expect("openapi path")
        .expect("ok");
    assert_eq!(cached.status(), StatusCode::NOT_MODIFIED);
    assert!(cached.body().is_empty());

    let index = get("/openapi/v3", Some("application/json, */*"))
        .expect("openapi path")
        .expect("ok");
    assert_eq!(index.body(), &v3_index().body());
}

/// Not an assertion on time (tests never assert wall-clock): prints what a build costs.
#[test]
fn report_generation_cost() {
    let t = Instant::now();
    let catalog = crate::catalog();
    let catalog_time = t.elapsed();
    let t = Instant::now();
    let v2 = serde_json::to_vec(&crate::v2::document(&catalog)).unwrap_or_default();
    let v2_time = t.elapsed();
    let value: Value = serde_json::from_slice(&v2).unwrap_or_default();
    let t = Instant::now();
    let proto = gnostic::document(&value).encode_to_vec();
    let proto_time = t.elapsed();
    let t = Instant::now();
    let v3 = crate::build_v3();
    let v3_time = t.elapsed();
    let v3_sizes: Vec<String> = v3
        .documents
        .iter()
        .map(|(k, d)| format!("{k}={}", d.body().len()))
        .collect();
    let total_v3: usize = v3.documents.values().map(|d| d.body().len()).sum();
    println!(
        "catalog {catalog_time:?}; v2 json {} bytes in {v2_time:?}; v2 protobuf {} bytes in \
         {proto_time:?}; all v3 documents in {v3_time:?}, {total_v3} bytes in all: {}; \
         {} definitions",
        v2.len(),
        proto.len(),
        v3_sizes.join(" "),
        catalog.definitions.len()
    );
}
