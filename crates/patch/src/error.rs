//! The one error type of this crate and how each failure maps onto an API `Status`.
//!
//! Messages follow the wording of upstream's libraries (evanphx/json-patch for JSON Patch and
//! JSON Merge Patch, apimachinery's `strategicpatch` for strategic merge patch) because that text
//! is what clients show their users; strategic-merge-patch errors additionally name the field
//! they happened at, which upstream does not.

use serde_json::Value;

/// How the API server should answer a failed patch. Mirrors what upstream's
/// `endpoints/handlers/patch.go` does with each kind of error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusClass {
    /// 400 `BadRequest`: the patch document does not have the shape its content type promises.
    BadRequest,
    /// 413 `RequestEntityTooLarge`: too many JSON Patch operations.
    RequestEntityTooLarge,
    /// 422 `Invalid`: the patch is well formed but cannot be applied to this object.
    Invalid,
    /// 500 with an empty reason: upstream passes these errors through unconverted, so clients
    /// see `Error from server: <message>`.
    Unknown,
}

impl StatusClass {
    /// The HTTP status code upstream answers with.
    pub fn code(self) -> u16 {
        match self {
            StatusClass::BadRequest => 400,
            StatusClass::RequestEntityTooLarge => 413,
            StatusClass::Invalid => 422,
            StatusClass::Unknown => 500,
        }
    }
}

/// A patch that could not be applied. Applying never changes the original, so an error always
/// means "nothing happened".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    /// The patch body is not the document its content type promises (JSON Patch that is not an
    /// array of operations, merge patch that is `null` or a scalar, strategic merge patch that
    /// is not an object, or a malformed `$retainKeys` / `$setElementOrder` /
    /// `$deleteFromPrimitiveList` directive).
    #[error("{message}")]
    Malformed { message: String },

    /// A JSON Patch carried more operations than the server accepts.
    #[error("The allowed maximum operations in a JSON patch is {max}, got {got}")]
    TooManyOperations { max: usize, got: usize },

    /// JSON Patch operation number `index` (0-based) failed: a `test` that did not match, a path
    /// that does not exist, an index out of range, a copy over the size budget.
    #[error("{message}")]
    JsonPatchOperation {
        index: usize,
        op: String,
        message: String,
    },

    /// A strategic merge patch that upstream rejects as unprocessable (lists of lists).
    #[error("{message}")]
    Unprocessable { message: String },

    /// A strategic merge patch whose content contradicts the object's patch metadata (a merge
    /// list element without its merge key, an unknown `$patch` directive, mixed element types,
    /// an order list that does not match the patch list...). Upstream returns these unconverted.
    #[error("{message}")]
    Rejected { message: String },

    /// The object being patched is not a JSON object (or array, for JSON Patch). The server
    /// only patches objects it decoded itself, so this is a bug in the caller.
    #[error("invalid JSON document: {message}")]
    InvalidOriginal { message: String },
}

impl PatchError {
    /// How the API server should answer this error (upstream's mapping).
    pub fn status_class(&self) -> StatusClass {
        match self {
            PatchError::Malformed { .. } => StatusClass::BadRequest,
            PatchError::TooManyOperations { .. } => StatusClass::RequestEntityTooLarge,
            PatchError::JsonPatchOperation { .. } | PatchError::Unprocessable { .. } => {
                StatusClass::Invalid
            }
            PatchError::Rejected { .. } | PatchError::InvalidOriginal { .. } => {
                StatusClass::Unknown
            }
        }
    }

    /// The HTTP status code upstream answers with.
    pub fn status_code(&self) -> u16 {
        self.status_class().code()
    }

    pub(crate) fn malformed(message: impl Into<String>) -> Self {
        PatchError::Malformed {
            message: message.into(),
        }
    }
}

/// The name Go's `encoding/json` gives a JSON value's kind in "cannot unmarshal X into ..." errors.
pub(crate) fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The Go type a decoded JSON value has in upstream's `map[string]interface{}` world, as
/// `reflect.TypeOf(v)` prints it (used by upstream's "expected a X, but received a Y" errors).
pub(crate) fn go_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float64",
        Value::Number(_) => "int64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

/// Formats a value the way Go's `%v` prints a decoded JSON value (`map[k:v ...]`, `[a b]`), so
/// messages that embed patch fragments read like upstream's.
pub(crate) fn go_value(v: &Value) -> String {
    let mut out = String::new();
    write_go_value(&mut out, v);
    out
}

fn write_go_value(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("<nil>"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => out.push_str(s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                write_go_value(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            // Go prints map keys sorted, whatever the map's own order.
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push_str("map[");
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(key);
                out.push(':');
                if let Some(value) = map.get(key) {
                    write_go_value(out, value);
                }
            }
            out.push(']');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn go_formatting_matches_fmt_v() {
        assert_eq!(
            go_value(&json!({"name": "a", "b": [1, "x", null], "c": {"z": true}})),
            "map[b:[1 x <nil>] c:map[z:true] name:a]"
        );
        assert_eq!(go_type(&json!(1)), "int64");
        assert_eq!(go_type(&json!(1.5)), "float64");
        assert_eq!(go_type(&json!({})), "map[string]interface {}");
    }

    #[test]
    fn status_codes() {
        assert_eq!(PatchError::malformed("x").status_code(), 400);
        assert_eq!(
            PatchError::TooManyOperations { max: 1, got: 2 }.status_code(),
            413
        );
        assert_eq!(
            PatchError::JsonPatchOperation {
                index: 0,
                op: "test".into(),
                message: "m".into()
            }
            .status_code(),
            422
        );
        assert_eq!(
            PatchError::Rejected {
                message: "x".into()
            }
            .status_code(),
            500
        );
    }
}
