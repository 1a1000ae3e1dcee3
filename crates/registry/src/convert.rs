//! Conversion between a served version and the stored one, for resources served in more than
//! one version or group: autoscaling/v1 ↔ autoscaling/v2 HorizontalPodAutoscalers
//! ([`hpa`]) and events.k8s.io/v1 ↔ core/v1 Events ([`events`]).
//!
//! Both directions work on JSON and keep every field the other side can hold; what the older
//! form cannot express travels in annotations, as upstream does, so an object read in one
//! version and written back unchanged is stored as it was.

// `ApiError` is the API's single error type and every caller (including the `Strategy`
// contract) takes it by value; boxing it here would only add an allocation.
#![allow(clippy::result_large_err)]

mod events;
mod hpa;

use api::ApiError;
use api::resources::ResourceInfo;
use serde_json::Value;

/// Converts an object in `served`'s version into the stored version. Identity when they agree.
pub fn to_storage(served: &'static ResourceInfo, obj: Value) -> Result<Value, ApiError> {
    let storage = crate::storage_info(served);
    if std::ptr::eq(served, storage) {
        return Ok(obj);
    }
    match (served.group, served.version, served.plural) {
        ("autoscaling", "v1", "horizontalpodautoscalers") => hpa::v1_to_v2(obj),
        ("events.k8s.io", "v1", "events") => events::events_to_core(obj),
        _ => Err(unavailable(served, storage)),
    }
}

/// Converts a stored object into `served`'s version. Identity when they agree.
pub fn from_storage(served: &'static ResourceInfo, obj: Value) -> Result<Value, ApiError> {
    let storage = crate::storage_info(served);
    if std::ptr::eq(served, storage) {
        return Ok(obj);
    }
    match (served.group, served.version, served.plural) {
        ("autoscaling", "v1", "horizontalpodautoscalers") => hpa::v2_to_v1(obj),
        ("events.k8s.io", "v1", "events") => events::core_to_events(obj),
        _ => Err(unavailable(served, storage)),
    }
}

fn unavailable(served: &ResourceInfo, storage: &ResourceInfo) -> ApiError {
    ApiError::internal(format!(
        "conversion between {} {} and {} is not available",
        served.api_version(),
        served.kind,
        storage.api_version()
    ))
}

/// The object's top-level map, or a 400 for anything else.
fn object(v: Value, kind: &str) -> Result<serde_json::Map<String, Value>, ApiError> {
    match v {
        Value::Object(m) => Ok(m),
        other => Err(ApiError::bad_request(format!(
            "{kind}: expected an object, got {}",
            match other {
                Value::Array(_) => "an array",
                Value::String(_) => "a string",
                Value::Number(_) => "a number",
                Value::Bool(_) => "a boolean",
                _ => "null",
            }
        ))),
    }
}

/// Moves `from` of `src` to `to` of `dst` when present.
fn rename(
    src: &mut serde_json::Map<String, Value>,
    from: &str,
    dst: &mut serde_json::Map<String, Value>,
    to: &str,
) {
    if let Some(v) = src.remove(from) {
        dst.insert(to.to_string(), v);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests a failed unwrap is a failed assertion
mod tests {
    use super::*;

    #[test]
    fn identity_for_storage_versions() {
        let v2 = api::resources::lookup("autoscaling", "v2", "horizontalpodautoscalers").unwrap();
        let obj = serde_json::json!({"a": 1});
        assert_eq!(to_storage(v2, obj.clone()).unwrap(), obj);
        assert_eq!(from_storage(v2, obj.clone()).unwrap(), obj);
    }
}
