//! Who wrote each stored revision: a small record kept with the stored object, never served.
//!
//! The stored value of an object is its JSON with one extra first member,
//! `"$keelson":{"by":USER,"op":OP,"at":TIME}`. Kubernetes field names never start with `$`, so
//! the member cannot collide with the object, and every path that reads a stored value drops
//! it (the watch cache splices it out of the bytes; [`strip`] removes it from a decoded value).
//! `keelson history` reads it back from the store's history to say who changed what, when.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The member name.
pub const MEMBER: &str = "$keelson";

/// The record of one write.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteRecord {
    /// The authenticated user who made the write.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub by: String,
    /// `create`, `update`, `patch`, `delete` (a delete that leaves the object pending), or a
    /// subresource write such as `update/status`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub op: String,
    /// When the server made the write (RFC 3339, UTC).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub at: String,
}

impl WriteRecord {
    pub fn new(by: &str, op: &str) -> WriteRecord {
        WriteRecord {
            by: by.to_string(),
            op: op.to_string(),
            at: crate::object::now_rfc3339(),
        }
    }
}

/// Prepends the record to an object's JSON (which starts with `{`).
pub fn wrap(object_json: &[u8], record: &WriteRecord) -> Vec<u8> {
    let rec = serde_json::to_vec(record).unwrap_or_else(|_| b"{}".to_vec());
    let mut out = Vec::with_capacity(object_json.len() + rec.len() + MEMBER.len() + 6);
    out.extend_from_slice(b"{\"");
    out.extend_from_slice(MEMBER.as_bytes());
    out.extend_from_slice(b"\":");
    out.extend_from_slice(&rec);
    match object_json.get(1..) {
        // `{}` stays a valid object without a separator.
        Some(rest) if rest.first() != Some(&b'}') => {
            out.push(b',');
            out.extend_from_slice(rest);
        }
        Some(rest) => out.extend_from_slice(rest),
        None => out.push(b'}'),
    }
    out
}

/// Removes the record from a decoded stored value, returning it.
pub fn strip(v: &mut Value) -> Option<WriteRecord> {
    let raw = v.as_object_mut()?.remove(MEMBER)?;
    serde_json::from_value(raw).ok()
}

/// The byte range of the record member (with its trailing comma) in a stored value, when it
/// sits first as [`wrap`] puts it; `None` when there is no record there.
pub fn member_span(stored: &[u8], value_end: usize) -> Option<std::ops::Range<usize>> {
    let prefix = format!("{{\"{MEMBER}\":");
    if !stored.starts_with(prefix.as_bytes()) {
        return None;
    }
    let end = if stored.get(value_end) == Some(&b',') {
        value_end + 1
    } else {
        value_end
    };
    Some(1..end)
}

/// The record of a stored value, if it has one.
pub fn read(stored: &[u8]) -> Option<WriteRecord> {
    #[derive(Deserialize)]
    struct Only {
        #[serde(rename = "$keelson")]
        record: Option<WriteRecord>,
    }
    serde_json::from_slice::<Only>(stored).ok()?.record
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn wrap_strip_read() {
        let rec = WriteRecord {
            by: "alice".into(),
            op: "update".into(),
            at: "2026-01-01T00:00:00Z".into(),
        };
        let obj = json!({"kind": "ConfigMap", "metadata": {"name": "a"}});
        let stored = wrap(&serde_json::to_vec(&obj).unwrap(), &rec);
        let mut v: Value = serde_json::from_slice(&stored).unwrap();
        assert_eq!(read(&stored), Some(rec.clone()));
        assert_eq!(strip(&mut v), Some(rec.clone()));
        assert_eq!(v, obj);
        let empty = wrap(b"{}", &rec);
        let v: Value = serde_json::from_slice(&empty).unwrap();
        assert_eq!(v.as_object().unwrap().len(), 1);
        assert_eq!(read(br#"{"kind":"x"}"#), None);
    }
}
