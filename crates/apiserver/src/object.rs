//! Small accessors for the `metadata` of objects held as JSON.

use serde_json::{Map, Value, json};

/// `metadata`, created if absent (or if it is not an object).
pub fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.is_object() {
        *obj = Value::Object(Map::new());
    }
    let Value::Object(root) = obj else {
        unreachable!("made an object above")
    };
    let meta = root
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !meta.is_object() {
        *meta = Value::Object(Map::new());
    }
    match meta {
        Value::Object(m) => m,
        _ => unreachable!("made an object above"),
    }
}

pub fn meta_str<'a>(obj: &'a Value, field: &str) -> &'a str {
    obj.get("metadata")
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
        .unwrap_or("")
}

pub fn name(obj: &Value) -> &str {
    meta_str(obj, "name")
}

pub fn namespace(obj: &Value) -> &str {
    meta_str(obj, "namespace")
}

pub fn uid(obj: &Value) -> &str {
    meta_str(obj, "uid")
}

pub fn resource_version(obj: &Value) -> &str {
    meta_str(obj, "resourceVersion")
}

pub fn set_resource_version(obj: &mut Value, rv: i64) {
    meta_mut(obj).insert("resourceVersion".into(), json!(rv.to_string()));
}

pub fn clear_resource_version(obj: &mut Value) {
    meta_mut(obj).remove("resourceVersion");
}

pub fn finalizers(obj: &Value) -> Vec<String> {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

pub fn set_finalizers(obj: &mut Value, finalizers: &[String]) {
    let meta = meta_mut(obj);
    if finalizers.is_empty() {
        meta.remove("finalizers");
    } else {
        meta.insert("finalizers".into(), json!(finalizers));
    }
}

pub fn deletion_timestamp(obj: &Value) -> Option<&str> {
    obj.pointer("/metadata/deletionTimestamp")
        .and_then(Value::as_str)
}

/// Now, as Kubernetes writes timestamps: RFC 3339, UTC, whole seconds.
pub fn now_rfc3339() -> String {
    let now = jiff::Timestamp::now();
    jiff::Timestamp::from_second(now.as_second())
        .unwrap_or(now)
        .to_string()
}

/// `now + seconds`, in the same format.
pub fn rfc3339_after(seconds: i64) -> String {
    let now = jiff::Timestamp::now().as_second().saturating_add(seconds);
    jiff::Timestamp::from_second(now)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| now_rfc3339())
}

/// The object with `resourceVersion` removed, for "did anything change?" comparisons.
pub fn without_rv(obj: &Value) -> Value {
    let mut v = obj.clone();
    if let Some(Value::Object(m)) = v.get_mut("metadata") {
        m.remove("resourceVersion");
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_helpers() {
        let mut v = json!({"metadata": {"name": "a", "finalizers": ["x/y"]}});
        set_resource_version(&mut v, 7);
        assert_eq!(resource_version(&v), "7");
        assert_eq!(finalizers(&v), vec!["x/y"]);
        set_finalizers(&mut v, &[]);
        assert!(v["metadata"].get("finalizers").is_none());
        let mut odd = json!("not an object");
        set_resource_version(&mut odd, 1);
        assert_eq!(resource_version(&odd), "1");
        assert!(now_rfc3339().ends_with('Z'));
        assert_eq!(now_rfc3339().len(), 20);
    }
}
