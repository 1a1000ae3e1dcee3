//! The OpenAPI documents keelson serves: `/openapi/v2` (JSON and gnostic protobuf) and
//! `/openapi/v3` (an index plus one JSON document per group version and discovery path).
//!
//! Everything is generated from the `k8s-openapi` types' schemas and the resource table
//! ([`api::resources::RESOURCES`]); nothing is copied from upstream's published specs. What
//! clients rely on, and this crate guarantees (tests check each):
//!
//! * every served kind and its `…List` is a definition carrying
//!   `x-kubernetes-group-version-kind`, with every `$ref` resolvable inside its document;
//! * every operation on a kind carries `x-kubernetes-action` and
//!   `x-kubernetes-group-version-kind`, and PATCH operations take `fieldValidation` (kubectl
//!   1.33's `--validate=strict` then leaves validation to the server);
//! * strategic-merge-patch directives (`x-kubernetes-patch-strategy`/`-merge-key`) sit on the
//!   properties the patch table names;
//! * the index's `?hash=` is the uppercase hex SHA-512 of the document bytes, which is also its
//!   ETag, so a client's cache stays valid across restarts of the same build.
//!
//! Documents are built on first request, not at startup, and then kept only as serialized
//! bytes ([`Document`]; about 5 MB once all are built). Building costs roughly 0.1 s of CPU for
//! v2 and as much for all of v3 in an optimised build (`report_generation_cost` prints
//! figures), so a server may prefer to call these from a blocking-task pool.
//! [`respond`] answers the HTTP requests the way kube-openapi's handlers do.

mod definitions;
mod gnostic;
mod params;
mod routes;
mod serve;
mod v2;
mod v3;

use std::collections::BTreeMap;
use std::sync::OnceLock;

use bytes::Bytes;
use prost::Message;

pub use serve::{CONTENT_TYPE_V2_PROTOBUF, ServeError, respond};

/// The Kubernetes version the documents describe (`info.version`).
pub const KUBERNETES_VERSION: &str = "v1.33.0";

/// One serialized document and its entity tag.
#[derive(Clone, Debug)]
pub struct Document {
    body: Bytes,
    etag: String,
}

impl Document {
    fn new(body: Vec<u8>) -> Document {
        let etag = hash(&body);
        Document {
            body: Bytes::from(body),
            etag,
        }
    }

    /// The bytes to send; cloning is cheap (reference counted).
    pub fn body(&self) -> Bytes {
        self.body.clone()
    }

    /// Uppercase hex SHA-512 of the JSON bytes, unquoted (as upstream computes it).
    pub fn etag(&self) -> &str {
        &self.etag
    }
}

fn hash(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let digest = ring::digest::digest(&ring::digest::SHA512, bytes);
    let mut out = String::with_capacity(128);
    for b in digest.as_ref() {
        // Writing to a String cannot fail.
        let _ = write!(out, "{b:02X}");
    }
    out
}

/// The strategic-merge-patch directives of a definition's JSON field: the same table the
/// server's strategic merge patch uses, so what kubectl computes is what the server applies.
fn patch_meta(definition: &str, field: &str) -> Option<patch::PatchMeta> {
    patch::field_patch_meta(definition, field)
}

fn catalog() -> definitions::Catalog {
    definitions::build(&patch_meta)
}

static V2_JSON: OnceLock<Document> = OnceLock::new();
static V2_PROTOBUF: OnceLock<Document> = OnceLock::new();
static V3: OnceLock<V3Documents> = OnceLock::new();

/// `/openapi/v2` as JSON.
pub fn v2_json() -> &'static Document {
    V2_JSON.get_or_init(|| {
        let doc = v2::document(&catalog());
        Document::new(serde_json::to_vec(&doc).unwrap_or_default())
    })
}

/// `/openapi/v2` as gnostic protobuf. Its ETag is the JSON form's (upstream does the same and
/// answers with `Vary: Accept`).
pub fn v2_protobuf() -> &'static Document {
    V2_PROTOBUF.get_or_init(|| {
        let json = v2_json();
        // Re-reading our own bytes is cheaper than keeping the tree around after the first build.
        let doc: serde_json::Value = serde_json::from_slice(&json.body).unwrap_or_default();
        Document {
            body: Bytes::from(gnostic::document(&doc).encode_to_vec()),
            etag: json.etag.clone(),
        }
    })
}

struct V3Documents {
    index: Document,
    /// By document key: `api/v1`, `apis/apps/v1`, `api`, `apis`, `apis/apps`, `version`.
    documents: BTreeMap<String, Document>,
}

fn v3_documents() -> &'static V3Documents {
    V3.get_or_init(build_v3)
}

/// Builds every v3 document at once: the index needs each one's hash.
fn build_v3() -> V3Documents {
    let catalog = catalog();
    let schemas = v3::schemas(&catalog);
    let mut documents = BTreeMap::new();
    let mut add = |key: String, paths: &[routes::PathItem]| {
        let doc = v3::document(&schemas, paths);
        let bytes = serde_json::to_vec(&doc).unwrap_or_default();
        documents.insert(key, Document::new(bytes));
    };
    for key in routes::discovery_keys() {
        if let Some(paths) = routes::discovery_paths(&key) {
            add(key, &paths);
        }
    }
    for (group, versions) in api::resources::groups() {
        for version in versions {
            let paths = routes::group_version_paths(group, version, &catalog.resources);
            add(routes::group_version_key(group, version), &paths);
        }
    }
    let index = v3::index(documents.iter().map(|(k, d)| (k.as_str(), d.etag())));
    V3Documents {
        index: Document::new(serde_json::to_vec(&index).unwrap_or_default()),
        documents,
    }
}

/// `/openapi/v3`: `{"paths": {"api/v1": {"serverRelativeURL": "/openapi/v3/api/v1?hash=…"}}}`.
pub fn v3_index() -> &'static Document {
    &v3_documents().index
}

/// `/openapi/v3/<key>`, key as listed in the index (`api/v1`, `apis/apps/v1`, `apis/apps`,
/// `api`, `apis`, `version`).
pub fn v3_document(key: &str) -> Option<&'static Document> {
    v3_documents().documents.get(key)
}

/// The v3 document of a group version; group `""` is the core group (`api/v1`).
pub fn v3_group_version(group: &str, version: &str) -> Option<&'static Document> {
    v3_document(&routes::group_version_key(group, version))
}

/// The `hash` the index gives a group version's document.
pub fn v3_hash(group: &str, version: &str) -> Option<&'static str> {
    v3_group_version(group, version).map(Document::etag)
}

#[cfg(test)]
mod tests;
