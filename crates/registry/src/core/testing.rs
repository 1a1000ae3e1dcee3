//! Test helpers: drive a strategy through [`DynStrategy`] exactly as the API server does and
//! render errors as `field: message` lines for exact comparison with upstream's wording.

// `ApiError` is the API's single error type and every caller (including the `Strategy`
// contract) takes it by value; boxing it here would only add an allocation.
#![allow(clippy::result_large_err)]

use api::ApiError;
use serde_json::Value;

use crate::DynStrategy;

/// Each cause of an `Invalid` error as `field: message` (upstream's rendering).
pub fn causes(err: &ApiError) -> Vec<String> {
    err.causes
        .iter()
        .map(|c| {
            if c.field.is_empty() {
                c.message.clone()
            } else {
                format!("{}: {}", c.field, c.message)
            }
        })
        .collect()
}

/// Admits a create and returns the object to store.
pub fn create(s: &dyn DynStrategy, obj: Value) -> Result<Value, ApiError> {
    s.admit_create(obj, false).map(|a| a.object)
}

/// Admits a create that must fail validation; returns its causes.
pub fn create_err(s: &dyn DynStrategy, obj: Value) -> Vec<String> {
    match s.admit_create(obj, false) {
        Ok(a) => panic!("expected the create to fail, got {}", a.object),
        Err(e) => {
            assert_eq!(e.code, 422, "{}", e.message);
            causes(&e)
        }
    }
}

/// Admits an update of `old` and returns the object to store.
pub fn update(s: &dyn DynStrategy, new: Value, old: &Value) -> Result<Value, ApiError> {
    s.admit_update(new, old, false).map(|a| a.object)
}

/// Admits an update that must fail validation; returns its causes.
pub fn update_err(s: &dyn DynStrategy, new: Value, old: &Value) -> Vec<String> {
    match s.admit_update(new, old, false) {
        Ok(a) => panic!("expected the update to fail, got {}", a.object),
        Err(e) => {
            assert_eq!(e.code, 422, "{}", e.message);
            causes(&e)
        }
    }
}

/// Applies a JSON merge patch (RFC 7386) to a copy of `base`: how tests build updates.
pub fn merged(base: &Value, patch: Value) -> Value {
    fn apply(target: &mut Value, patch: Value) {
        match patch {
            Value::Object(p) => {
                if !target.is_object() {
                    *target = Value::Object(Default::default());
                }
                if let Value::Object(t) = target {
                    for (k, v) in p {
                        if v.is_null() {
                            t.remove(&k);
                        } else {
                            apply(t.entry(k).or_insert(Value::Null), v);
                        }
                    }
                }
            }
            other => *target = other,
        }
    }
    let mut out = base.clone();
    apply(&mut out, patch);
    out
}
