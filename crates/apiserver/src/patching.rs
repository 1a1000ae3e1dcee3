//! PATCH bodies: parsing the patch document and applying it with the `patch` crate, with the
//! strategic merge patch typed by the served resource.

use api::resources::ResourceInfo;
use api::{ApiError, ApiType, TypeVisitor};
use serde_json::Value;

use crate::codec::BodyType;

/// Parses a patch document; PATCH requires one of the patch media types.
pub fn parse_patch(ty: BodyType, body: &[u8]) -> Result<Value, ApiError> {
    match ty {
        BodyType::JsonPatch | BodyType::MergePatch | BodyType::StrategicMergePatch => {}
        BodyType::ApplyPatch => {
            return Err(ApiError::unsupported_media_type(
                "application/apply-patch+yaml (server-side apply is not supported by this server yet; use client-side `kubectl apply`)",
            ));
        }
        _ => {
            return Err(ApiError::unsupported_media_type(
                "a PATCH body must be application/json-patch+json, application/merge-patch+json or application/strategic-merge-patch+json",
            ));
        }
    }
    let doc: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
    match (ty, &doc) {
        (BodyType::JsonPatch, Value::Array(_)) => Ok(doc),
        (BodyType::JsonPatch, _) => Err(ApiError::bad_request(
            "a JSON patch must be an array of operations",
        )),
        (_, Value::Object(_)) => Ok(doc),
        _ => Err(ApiError::bad_request("a merge patch must be a JSON object")),
    }
}

/// Maps a patch failure to a Status. Upstream answers some strategic-merge failures with a bare
/// 500; those are the client's mistakes, so they are reported as 422 here.
fn patch_error(e: patch::PatchError) -> ApiError {
    use patch::PatchError as P;
    match e {
        P::Malformed { message } => ApiError::bad_request(message),
        P::TooManyOperations { .. } => {
            ApiError::new(api::Reason::RequestEntityTooLarge, e.to_string())
        }
        P::InvalidOriginal { message } => {
            ApiError::internal(format!("patching a stored object: {message}"))
        }
        other => {
            let mut err = ApiError::new(
                api::Reason::Invalid,
                format!("the patch could not be applied: {other}"),
            );
            err.code = 422;
            err
        }
    }
}

/// Applies a JSON patch or a merge patch (and a strategic one as a merge patch).
pub fn apply_untyped(ty: BodyType, target: &Value, doc: &Value) -> Result<Value, ApiError> {
    match ty {
        BodyType::JsonPatch => patch::json_patch(target, doc).map_err(patch_error),
        _ => patch::merge_patch(target, doc).map_err(patch_error),
    }
}

struct Strategic<'a> {
    target: &'a Value,
    doc: &'a Value,
}

impl TypeVisitor for Strategic<'_> {
    type Output = Result<Value, ApiError>;
    fn visit<T: ApiType>(self, _info: &'static ResourceInfo) -> Self::Output {
        patch::strategic_merge_patch::<T>(self.target, self.doc).map_err(patch_error)
    }
}

/// Applies a patch of type `ty` to `target`, an object of the served resource.
pub fn apply(
    served: &'static ResourceInfo,
    ty: BodyType,
    target: &Value,
    doc: &Value,
) -> Result<Value, ApiError> {
    match ty {
        BodyType::StrategicMergePatch => api::visit_type(served, Strategic { target, doc }),
        _ => apply_untyped(ty, target, doc),
    }
}
