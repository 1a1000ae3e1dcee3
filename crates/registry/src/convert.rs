//! Conversion between a served version and the stored one, for resources served in more than
//! one version or group (autoscaling/v1 ↔ v2 HPAs, events.k8s.io/v1 ↔ core/v1 events).

use api::ApiError;
use api::resources::ResourceInfo;
use serde_json::Value;

/// Converts an object in `served`'s version into the stored version. Identity when they agree.
pub fn to_storage(served: &'static ResourceInfo, obj: Value) -> Result<Value, ApiError> {
    let storage = crate::storage_info(served);
    if std::ptr::eq(served, storage) {
        return Ok(obj);
    }
    Err(ApiError::internal(format!(
        "conversion from {} {} to {} is not available",
        served.api_version(),
        served.kind,
        storage.api_version()
    )))
}

/// Converts a stored object into `served`'s version. Identity when they agree.
pub fn from_storage(served: &'static ResourceInfo, obj: Value) -> Result<Value, ApiError> {
    let storage = crate::storage_info(served);
    if std::ptr::eq(served, storage) {
        return Ok(obj);
    }
    Err(ApiError::internal(format!(
        "conversion from {} to {} {} is not available",
        storage.api_version(),
        served.api_version(),
        served.kind
    )))
}
