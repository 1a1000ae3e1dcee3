//! One object as the watch cache keeps it: the JSON every reader is served (encoded once), and
//! just enough decoded to filter by namespace, labels and selectable fields.
//!
//! Building one is on the path of every write (the cache applies each event) and of start-up
//! (the cache lists everything), so it avoids a full parse-and-re-encode: the stored JSON is
//! scanned shallowly with borrowed raw values, and `metadata.resourceVersion` is spliced into
//! the bytes. Objects the fast path cannot handle (a stored `resourceVersion`, escaped keys)
//! take the slow, general path; both produce the same result.
//!
//! The layout is compact because a cluster's cache holds every object: the key is shared with
//! the cache's map, name and namespace are slices of the key, labels are one sorted boxed slice.

use std::collections::BTreeMap;
use std::sync::Arc;

use api::resources::{ResourceInfo, SelectableField};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::object;

/// Labels as a sorted slice: smaller than a map, and lookups are a binary search.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LabelSet(Box<[(Box<str>, Box<str>)]>);

impl LabelSet {
    fn from_map(map: BTreeMap<String, String>) -> LabelSet {
        LabelSet(
            map.into_iter()
                .map(|(k, v)| (k.into_boxed_str(), v.into_boxed_str()))
                .collect(),
        )
    }
}

impl api::selector::Labels for LabelSet {
    fn label(&self, key: &str) -> Option<&str> {
        self.0
            .binary_search_by(|(k, _)| (**k).cmp(key))
            .ok()
            .map(|i| &*self.0[i].1)
    }
}

#[derive(Debug)]
pub struct CachedObject {
    /// The store key (`/registry/<group>/<resource>/[<namespace>/]<name>`).
    pub key: Arc<str>,
    /// Where the namespace and the name sit in `key`.
    namespace_at: (u32, u32),
    name_at: u32,
    pub rv: i64,
    /// The object's JSON (storage version) with `metadata.resourceVersion` set.
    pub bytes: Bytes,
    pub labels: LabelSet,
    /// Values of the resource's selectable fields, in the order of `ResourceInfo::fields`.
    fields: Box<[Box<str>]>,
}

#[derive(Deserialize)]
struct Meta<'a> {
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
    #[serde(rename = "resourceVersion", borrow, default)]
    resource_version: Option<&'a RawValue>,
}

/// The top-level members of an object, borrowed from its JSON.
type Members<'a> = BTreeMap<&'a str, &'a RawValue>;

impl CachedObject {
    /// Builds the cached form of a stored value at revision `rv`. Fails only on corrupt storage.
    pub fn from_store(
        info: &'static ResourceInfo,
        key: &str,
        value: &[u8],
        rv: i64,
    ) -> Result<CachedObject, String> {
        match Self::fast(info, key, value, rv) {
            Some(o) => Ok(o),
            None => {
                let mut v: Value = serde_json::from_slice(value)
                    .map_err(|e| format!("stored object {key} is not JSON: {e}"))?;
                crate::record::strip(&mut v);
                object::set_resource_version(&mut v, rv);
                Ok(Self::from_value(info, key, &v, rv))
            }
        }
    }

    /// The shallow path; `None` sends the caller to the general one.
    fn fast(info: &'static ResourceInfo, key: &str, value: &[u8], rv: i64) -> Option<CachedObject> {
        let top: Members<'_> = serde_json::from_slice(value).ok()?;
        let meta_raw = top.get("metadata")?;
        let meta: Meta<'_> = serde_json::from_str(meta_raw.get()).ok()?;
        if meta.resource_version.is_some() {
            return None;
        }
        let body = meta_raw.get();
        let start = offset_in(value, body)?;
        if !body.starts_with('{') {
            return None;
        }
        // The write record (see `record`) leads the stored value; it is not served.
        let cut = match top.get(crate::record::MEMBER) {
            Some(raw) => {
                crate::record::member_span(value, offset_in(value, raw.get())? + raw.get().len())?
            }
            None => 1..1,
        };
        if cut.end > start {
            return None;
        }
        let member = format!("\"resourceVersion\":\"{rv}\"");
        let mut out = Vec::with_capacity(value.len() + member.len() + 1);
        out.extend_from_slice(&value[..cut.start]);
        out.extend_from_slice(&value[cut.end..=start]);
        out.extend_from_slice(member.as_bytes());
        if body.trim_start_matches('{').trim_start().starts_with('}') {
            // `{}`: no separator needed.
        } else {
            out.push(b',');
        }
        out.extend_from_slice(&value[start + 1..]);
        let fields = info.fields.iter().map(|f| raw_field(&top, f)).collect();
        Some(Self::build(
            info,
            key,
            rv,
            Bytes::from(out),
            meta.labels.unwrap_or_default(),
            fields,
        ))
    }

    /// Builds the cached form of an object already decoded (with its `resourceVersion` set).
    pub fn from_value(info: &'static ResourceInfo, key: &str, v: &Value, rv: i64) -> CachedObject {
        let labels = v
            .pointer("/metadata/labels")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        let fields = info
            .fields
            .iter()
            .map(|f| api::selector::field_value(v, f).into_boxed_str())
            .collect();
        let bytes = Bytes::from(serde_json::to_vec(v).unwrap_or_default());
        Self::build(info, key, rv, bytes, labels, fields)
    }

    fn build(
        info: &ResourceInfo,
        key: &str,
        rv: i64,
        bytes: Bytes,
        labels: BTreeMap<String, String>,
        fields: Box<[Box<str>]>,
    ) -> CachedObject {
        // Keys are written by the generic store as prefix + [namespace "/"] + name.
        let prefix = info.storage_prefix();
        let rest_at = if key.starts_with(&prefix) {
            prefix.len()
        } else {
            key.len()
        };
        let rest = &key[rest_at..];
        let (namespace_at, name_at) = match rest.find('/').filter(|_| info.namespaced) {
            Some(slash) => ((rest_at, rest_at + slash), rest_at + slash + 1),
            None => ((rest_at, rest_at), rest_at),
        };
        let to32 = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        CachedObject {
            key: Arc::from(key),
            namespace_at: (to32(namespace_at.0), to32(namespace_at.1)),
            name_at: to32(name_at),
            rv,
            bytes,
            labels: LabelSet::from_map(labels),
            fields,
        }
    }

    pub fn namespace(&self) -> &str {
        self.key
            .get(self.namespace_at.0 as usize..self.namespace_at.1 as usize)
            .unwrap_or("")
    }

    pub fn name(&self) -> &str {
        self.key.get(self.name_at as usize..).unwrap_or("")
    }

    /// The value of a selectable field (including `metadata.name`/`metadata.namespace`).
    pub fn field(&self, info: &ResourceInfo, name: &str) -> Option<&str> {
        match name {
            "metadata.name" => Some(self.name()),
            "metadata.namespace" => Some(self.namespace()),
            _ => info
                .fields
                .iter()
                .position(|f| f.name == name)
                .and_then(|i| self.fields.get(i))
                .map(|s| &**s),
        }
    }

    /// This object's content carrying another `resourceVersion`: what a watcher whose
    /// selection the object left receives (its last state it saw, at the leaving revision).
    pub fn restamped(&self, rv: i64) -> CachedObject {
        let mut v = self.value();
        object::set_resource_version(&mut v, rv);
        CachedObject {
            key: self.key.clone(),
            namespace_at: self.namespace_at,
            name_at: self.name_at,
            rv,
            bytes: Bytes::from(serde_json::to_vec(&v).unwrap_or_default()),
            labels: self.labels.clone(),
            fields: self.fields.clone(),
        }
    }

    /// Parses the cached JSON (for conversions and tables).
    pub fn value(&self) -> Value {
        serde_json::from_slice(&self.bytes).unwrap_or(Value::Null)
    }
}

/// Where `part` (a slice borrowed from `whole`) starts in `whole`, checked.
fn offset_in(whole: &[u8], part: &str) -> Option<usize> {
    let at = (part.as_ptr() as usize).checked_sub(whole.as_ptr() as usize)?;
    whole.get(at..)?.starts_with(part.as_bytes()).then_some(at)
}

/// A selectable field's value read from borrowed raw JSON, as `api::selector::field_value`
/// renders it: strings as they are, booleans and numbers in their JSON text, anything else
/// (or nothing) as the field's default.
fn raw_field(top: &Members<'_>, field: &SelectableField) -> Box<str> {
    let mut parts = field.path.split('.');
    let Some(first) = parts.next() else {
        return field.default.into();
    };
    let mut current: Option<&RawValue> = top.get(first).copied();
    for part in parts {
        current = current.and_then(|raw| {
            let members: Members<'_> = serde_json::from_str(raw.get()).ok()?;
            members.get(part).copied()
        });
    }
    let Some(raw) = current else {
        return field.default.into();
    };
    let text = raw.get();
    match text.as_bytes().first() {
        Some(b'"') => serde_json::from_str::<String>(text)
            .map(String::into_boxed_str)
            .unwrap_or_else(|_| field.default.into()),
        Some(b't' | b'f' | b'-' | b'0'..=b'9') => text.into(),
        _ => field.default.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use api::selector::Labels;
    use serde_json::json;

    fn pods() -> &'static ResourceInfo {
        api::resources::lookup("", "v1", "pods").unwrap()
    }

    #[test]
    fn fast_and_general_paths_agree() {
        let info = pods();
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web", "namespace": "prod", "labels": {"app": "web", "tier": "front"}},
            "spec": {"nodeName": "n1", "hostNetwork": true, "containers": [{"name": "c", "image": "x"}]},
            "status": {"phase": "Running"},
        });
        let stored = serde_json::to_vec(&pod).unwrap();
        let key = info.storage_key("prod", "web");
        let fast = CachedObject::fast(info, &key, &stored, 42).unwrap();
        let mut with_rv = pod.clone();
        object::set_resource_version(&mut with_rv, 42);
        let slow = CachedObject::from_value(info, &key, &with_rv, 42);
        assert_eq!(
            serde_json::from_slice::<Value>(&fast.bytes).unwrap(),
            with_rv
        );
        assert_eq!(fast.labels, slow.labels);
        assert_eq!(fast.fields, slow.fields);
        assert_eq!((fast.namespace(), fast.name()), ("prod", "web"));
        assert_eq!(fast.field(info, "spec.nodeName"), Some("n1"));
        assert_eq!(fast.field(info, "spec.hostNetwork"), Some("true"));
        assert_eq!(fast.field(info, "status.podIP"), Some(""));
        assert_eq!(fast.field(info, "metadata.namespace"), Some("prod"));
        assert_eq!(fast.labels.label("tier"), Some("front"));
        assert_eq!(fast.labels.label("nope"), None);
    }

    #[test]
    fn write_records_are_not_served() {
        let info = pods();
        let rec = crate::record::WriteRecord {
            by: "alice".into(),
            op: "create".into(),
            at: "t".into(),
        };
        let obj = json!({"kind": "Pod", "metadata": {"name": "p", "namespace": "d"}});
        let stored = crate::record::wrap(&serde_json::to_vec(&obj).unwrap(), &rec);
        let fast = CachedObject::fast(info, &info.storage_key("d", "p"), &stored, 3).unwrap();
        let mut want = obj.clone();
        object::set_resource_version(&mut want, 3);
        assert_eq!(fast.value(), want);
        // A record that is not first takes the general path, which drops it too.
        let odd =
            br#"{"kind":"Pod","$keelson":{"by":"x"},"metadata":{"name":"p","namespace":"d"}}"#;
        let o = CachedObject::from_store(info, &info.storage_key("d", "p"), odd, 3).unwrap();
        assert_eq!(o.value(), want);
    }

    #[test]
    fn odd_stored_objects_take_the_general_path() {
        let info = api::resources::lookup("", "v1", "namespaces").unwrap();
        // A stored resourceVersion is replaced, not duplicated.
        let stored = br#"{"kind":"Namespace","metadata":{"name":"a","resourceVersion":"3"}}"#;
        let o = CachedObject::from_store(info, &info.storage_key("", "a"), stored, 9).unwrap();
        assert_eq!(o.value()["metadata"]["resourceVersion"], "9");
        assert_eq!(o.name(), "a");
        // Empty metadata.
        let o =
            CachedObject::from_store(info, &info.storage_key("", "b"), br#"{"metadata":{}}"#, 5)
                .unwrap();
        assert_eq!(o.value(), json!({"metadata": {"resourceVersion": "5"}}));
        // No metadata at all.
        let o = CachedObject::from_store(
            info,
            &info.storage_key("", "c"),
            br#"{"kind":"Namespace"}"#,
            6,
        )
        .unwrap();
        assert_eq!(o.value()["metadata"]["resourceVersion"], "6");
        assert!(CachedObject::from_store(info, "k", b"{not json", 1).is_err());
    }
}

#[cfg(test)]
mod timing {
    use super::*;

    #[test]
    #[ignore = "prints a timing; run with --ignored --nocapture in release"]
    fn from_store_speed() {
        let info = api::resources::lookup("", "v1", "configmaps").unwrap();
        let body = serde_json::to_vec(&serde_json::json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "cm-1-1", "namespace": "default", "labels": {"app": "x"},
                         "uid": "0b8a1c6e-8f2a-4f0e-9c55-2d7a1d5f6e11", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "data": {"k": "x".repeat(300)},
        }))
        .unwrap();
        let key = info.storage_key("default", "cm-1-1");
        let n = 22_800;
        let t = std::time::Instant::now();
        for i in 0..n {
            let o = CachedObject::from_store(info, &key, &body, i).unwrap();
            std::hint::black_box(o);
        }
        println!("from_store: {:?} per object", t.elapsed() / n as u32);
    }
}

#[cfg(test)]
mod timing_store {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "prints a timing of KEELSON_DB's configmaps; run with --ignored --nocapture in release"]
    async fn range_speed() {
        let Ok(dir) = std::env::var("KEELSON_DB") else {
            return;
        };
        use store::KvStore;
        let store =
            store::embedded::EmbeddedStore::open(std::path::Path::new(&dir), Default::default())
                .await
                .unwrap();
        let info = api::resources::lookup("", "v1", "configmaps").unwrap();
        for page in [500usize, 2000, 10_000] {
            let t = std::time::Instant::now();
            let (mut start, mut n, mut decode) = (None, 0, std::time::Duration::ZERO);
            loop {
                let resp = store
                    .range(store::RangeRequest {
                        prefix: info.storage_prefix(),
                        start: start.take(),
                        revision: None,
                        limit: Some(page),
                    })
                    .await
                    .unwrap();
                n += resp.kvs.len();
                let d = std::time::Instant::now();
                for kv in &resp.kvs {
                    std::hint::black_box(
                        CachedObject::from_store(info, &kv.key, &kv.value, kv.mod_revision)
                            .unwrap(),
                    );
                }
                decode += d.elapsed();
                if !resp.more {
                    break;
                }
                start = resp.kvs.last().map(|kv| format!("{}\0", kv.key));
            }
            println!(
                "page {page}: {n} objects in {:?} (decode {decode:?})",
                t.elapsed()
            );
        }
    }
}
