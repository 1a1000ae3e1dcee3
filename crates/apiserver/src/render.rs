//! Turns stored objects into response bodies in the negotiated form and served version.
//!
//! The fast path — JSON, served version = storage version — copies the cached bytes without
//! parsing them: a list of 10,000 objects is one allocation and 10,000 `memcpy`s.

use std::sync::Arc;

use api::ApiError;
use api::resources::ResourceInfo;
use bytes::Bytes;
use serde_json::{Value, json};

use crate::codec::Output;
use crate::watchcache::{CachedObject, EventType};

/// How one request wants its objects.
#[derive(Clone, Copy, Debug)]
pub struct View {
    /// The resource as served (its version may differ from storage).
    pub served: &'static ResourceInfo,
    pub storage: &'static ResourceInfo,
    pub output: Output,
    pub include: printers::IncludeObject,
    pub pretty: bool,
}

impl View {
    fn same_version(&self) -> bool {
        std::ptr::eq(self.served, self.storage)
    }

    /// A stored object in the served version.
    pub fn served_value(&self, stored: Value) -> Result<Value, ApiError> {
        registry::convert::from_storage(self.served, stored)
    }

    fn served_from_cache(&self, o: &CachedObject) -> Result<Value, ApiError> {
        self.served_value(o.value())
    }

    fn finish<T: serde::Serialize>(&self, v: &T) -> Result<Bytes, ApiError> {
        let encoded = match self.output {
            Output::Yaml => serde_yaml::to_string(v)
                .map(Bytes::from)
                .map_err(|e| e.to_string()),
            _ if self.pretty => serde_json::to_vec_pretty(v)
                .map(Bytes::from)
                .map_err(|e| e.to_string()),
            _ => serde_json::to_vec(v)
                .map(Bytes::from)
                .map_err(|e| e.to_string()),
        };
        encoded.map_err(|e| ApiError::internal(format!("encoding the response: {e}")))
    }

    /// The Table of `objects`, serialized without copying them.
    fn table(&self, objects: &[Value], list_meta: &Value) -> Result<Bytes, ApiError> {
        let t = printers::Table::new(
            self.served.group,
            self.served.version,
            self.served.kind,
            objects,
            self.include,
            jiff::Timestamp::now(),
            list_meta,
        );
        self.finish(&t)
    }

    /// One object (storage version) as a response body.
    pub fn object(&self, stored: Value) -> Result<Bytes, ApiError> {
        let v = self.served_value(stored)?;
        match self.output {
            Output::Table => {
                let meta = json!({ "resourceVersion": crate::object::resource_version(&v) });
                self.table(std::slice::from_ref(&v), &meta)
            }
            Output::PartialObjectMetadata | Output::PartialObjectMetadataList => {
                self.finish(&partial_metadata(&v))
            }
            _ => self.finish(&v),
        }
    }

    /// One cached object as a response body: its bytes as they are when no conversion or
    /// transformation is asked for.
    pub fn cached_object(&self, o: &CachedObject) -> Result<Bytes, ApiError> {
        if self.output == Output::Json && self.same_version() && !self.pretty {
            return Ok(o.bytes.clone());
        }
        self.object(o.value())
    }

    /// A list response.
    pub fn list(
        &self,
        items: &[Arc<CachedObject>],
        resource_version: i64,
        continue_token: Option<&str>,
    ) -> Result<Bytes, ApiError> {
        let mut list_meta = json!({ "resourceVersion": resource_version.to_string() });
        if let Some(c) = continue_token {
            list_meta["continue"] = json!(c);
        }
        match self.output {
            Output::Json if self.same_version() && !self.pretty => {
                let head = serde_json::to_vec(&json!({
                    "kind": self.served.list_kind(),
                    "apiVersion": self.served.api_version(),
                    "metadata": list_meta,
                }))
                .unwrap_or_default();
                // `{"apiVersion":..,"kind":..,"metadata":{..}}` → drop the closing brace, append items.
                let total: usize = items.iter().map(|o| o.bytes.len() + 1).sum();
                let mut buf = Vec::with_capacity(head.len() + total + 16);
                buf.extend_from_slice(&head[..head.len() - 1]);
                buf.extend_from_slice(b",\"items\":[");
                for (i, o) in items.iter().enumerate() {
                    if i > 0 {
                        buf.push(b',');
                    }
                    buf.extend_from_slice(&o.bytes);
                }
                buf.extend_from_slice(b"]}");
                Ok(Bytes::from(buf))
            }
            Output::Table => {
                let values = items
                    .iter()
                    .map(|o| self.served_from_cache(o))
                    .collect::<Result<Vec<_>, _>>()?;
                self.table(&values, &list_meta)
            }
            Output::PartialObjectMetadata | Output::PartialObjectMetadataList => {
                let values: Vec<Value> = items
                    .iter()
                    .map(|o| self.served_from_cache(o).map(|v| partial_metadata(&v)))
                    .collect::<Result<_, _>>()?;
                self.finish(&json!({
                    "kind": "PartialObjectMetadataList",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": list_meta,
                    "items": values,
                }))
            }
            _ => {
                let values = items
                    .iter()
                    .map(|o| self.served_from_cache(o))
                    .collect::<Result<Vec<_>, _>>()?;
                self.finish(&json!({
                    "kind": self.served.list_kind(),
                    "apiVersion": self.served.api_version(),
                    "metadata": list_meta,
                    "items": values,
                }))
            }
        }
    }

    /// One watch event frame (newline-terminated JSON).
    pub fn watch_event(&self, kind: EventType, o: &CachedObject) -> Result<Bytes, ApiError> {
        let tag = kind.as_str();
        if self.output == Output::Json && self.same_version() {
            let mut buf = Vec::with_capacity(o.bytes.len() + 32);
            buf.extend_from_slice(b"{\"type\":\"");
            buf.extend_from_slice(tag.as_bytes());
            buf.extend_from_slice(b"\",\"object\":");
            buf.extend_from_slice(&o.bytes);
            buf.extend_from_slice(b"}\n");
            return Ok(Bytes::from(buf));
        }
        let v = self.served_from_cache(o)?;
        let object = match self.output {
            Output::Table => {
                let meta = json!({ "resourceVersion": o.rv.to_string() });
                printers::Table::new(
                    self.served.group,
                    self.served.version,
                    self.served.kind,
                    std::slice::from_ref(&v),
                    self.include,
                    jiff::Timestamp::now(),
                    &meta,
                )
                .to_value()
            }
            Output::PartialObjectMetadata | Output::PartialObjectMetadataList => {
                partial_metadata(&v)
            }
            _ => v,
        };
        Ok(frame(&json!({ "type": tag, "object": object })))
    }

    /// A BOOKMARK frame at `rv`; `initial_end` marks the end of `sendInitialEvents`.
    pub fn bookmark(&self, rv: i64, initial_end: bool) -> Bytes {
        let mut meta = json!({ "resourceVersion": rv.to_string() });
        if initial_end {
            meta["annotations"] = json!({ "k8s.io/initial-events-end": "true" });
        }
        let object = match self.output {
            Output::Table => json!({
                "kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": meta,
                "columnDefinitions": [], "rows": [],
            }),
            _ => {
                json!({ "kind": self.served.kind, "apiVersion": self.served.api_version(), "metadata": meta })
            }
        };
        frame(&json!({ "type": "BOOKMARK", "object": object }))
    }
}

/// An ERROR watch frame carrying a `Status`.
pub fn error_frame(e: &ApiError) -> Bytes {
    frame(&json!({ "type": "ERROR", "object": e.to_status() }))
}

fn frame(v: &Value) -> Bytes {
    let mut buf = serde_json::to_vec(v).unwrap_or_default();
    buf.push(b'\n');
    Bytes::from(buf)
}

/// `meta.k8s.io/v1 PartialObjectMetadata` of an object.
pub fn partial_metadata(v: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": v.get("metadata").cloned().unwrap_or_else(|| json!({})),
    })
}
