//! Decodes Kubernetes protobuf request bodies (`application/vnd.kubernetes.protobuf`) into the
//! JSON form the rest of keelson works with.
//!
//! kubectl's typed clients (`kubectl create namespace|configmap|secret|deployment|...`,
//! `kubectl autoscale`, `kubectl auth can-i`, `kubectl certificate approve`, `kubectl drain
//! --disable-eviction`...) send protobuf and do not fall back to JSON, so the apiserver must
//! accept it for every kind it serves. The body is the prefix `k8s\0` followed by a
//! `runtime.Unknown` envelope whose `typeMeta` names the kind and whose `raw` is the object.
//!
//! How: `raw` is decoded with prost into the `k8s-pb` message for the kind (so the wire format is
//! checked by the same generated code that defines it), the message's derived `Debug` rendering
//! is parsed back into a tree ([`debug`]), and that tree is walked next to the kind's
//! `k8s-openapi` JSON schema ([`schema`], [`convert`]), which restores the upstream JSON field
//! names and the JSON forms of the special apimachinery types ([`special`]). Nothing is written
//! per kind beyond one line in [`kinds`] pairing the two generated types (and, for the few
//! non-pointer Go fields, the facts listed in [`zero`]).
//!
//! The JSON produced is what Go's JSON encoder gives for the object upstream decodes from the
//! same bytes: zero values Go would omit are omitted ([`zero`]), and fields the v1.33 schema
//! does not know are dropped. The tests check this against kubectl's own JSON rendering of the
//! objects it sent as protobuf.
//!
//! Guarantees: [`decode`] never panics on any input; its result is an object with `apiVersion`
//! and `kind` taken from the envelope.

mod convert;
mod debug;
mod error;
mod kinds;
mod schema;
mod special;
mod zero;

pub use error::ProtoError;

use prost::Message;
use serde_json::Value;

/// The four bytes that open every Kubernetes protobuf message.
pub const MAGIC: &[u8] = b"k8s\0";

/// The media type of Kubernetes protobuf bodies.
pub const CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// Whether a `Content-Type` header value names Kubernetes protobuf (parameters and case
/// ignored).
pub fn is_protobuf(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case(CONTENT_TYPE)
}

/// Decodes a protobuf request body into its JSON object, with `apiVersion` and `kind` set from
/// the envelope. Every error is the client's: answer it with 400 BadRequest.
pub fn decode(body: &[u8]) -> Result<Value, ProtoError> {
    decode_embedded(body, 0)
}

/// How many protobuf envelopes may nest inside each other (through `RawExtension` fields).
/// Real objects embed JSON, or at most one level of protobuf; the limit keeps a hostile body
/// from recursing without bound.
const MAX_EMBEDDING: usize = 4;

/// [`decode`] for an object that sits `depth` envelopes deep.
fn decode_embedded(body: &[u8], depth: usize) -> Result<Value, ProtoError> {
    let envelope = body.strip_prefix(MAGIC).ok_or(ProtoError::MissingMagic)?;
    let unknown = k8s_pb::apimachinery::pkg::runtime::Unknown::decode(envelope)
        .map_err(ProtoError::Envelope)?;
    let type_meta = unknown.type_meta.unwrap_or_default();
    let api_version = type_meta.api_version.unwrap_or_default();
    let kind = type_meta.kind.unwrap_or_default();
    if kind.is_empty() {
        return Err(ProtoError::MissingKind);
    }
    if depth > MAX_EMBEDDING {
        return Err(ProtoError::Field {
            kind,
            path: "(object)".into(),
            reason: format!("protobuf objects nested more than {MAX_EMBEDDING} deep"),
        });
    }
    if let Some(encoding) = unknown.content_encoding.filter(|e| !e.is_empty()) {
        return Err(ProtoError::ContentEncoding(encoding));
    }
    let entry = kinds::lookup(&api_version, &kind).ok_or_else(|| ProtoError::UnknownKind {
        api_version: api_version.clone(),
        kind: kind.clone(),
    })?;
    let raw = unknown.raw.unwrap_or_default();
    let text = (entry.decode)(&raw).map_err(|source| ProtoError::Malformed {
        api_version: api_version.clone(),
        kind: kind.clone(),
        source,
    })?;
    // The text is our own Debug rendering of a message prost accepted; failing to parse it
    // would be a bug here, reported rather than panicked on.
    let tree = debug::parse(&text).map_err(|e| ProtoError::Field {
        kind: kind.clone(),
        path: "(object)".into(),
        reason: format!("internal error reading the decoded message: {e}"),
    })?;
    let definition = (entry.definition)();
    let mut object = convert::to_json(schema::schemas(), &kind, &definition, &tree, depth)?;
    if let Value::Object(map) = &mut object {
        map.insert("apiVersion".into(), Value::String(api_version));
        map.insert("kind".into(), Value::String(kind));
    }
    Ok(object)
}

/// The `(apiVersion, kind)` pairs [`decode`] understands; `None` as apiVersion means any
/// group version (option kinds such as `DeleteOptions`).
pub fn supported_kinds() -> impl Iterator<Item = (Option<&'static str>, &'static str)> {
    kinds::KINDS.iter().map(|k| (k.api_version, k.kind))
}

#[cfg(test)]
mod tests;
