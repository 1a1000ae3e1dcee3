//! JSON Merge Patch (RFC 7386, `application/merge-patch+json`) as the Kubernetes API server
//! applies it (evanphx/json-patch v4 `MergePatch`): `null` deletes a member, objects merge
//! recursively, everything else — arrays included — replaces.
//!
//! Where the library goes beyond the RFC, this follows the library:
//!
//! * a value that lands where nothing (or `null`) was has its `null` members removed, also
//!   inside objects nested in arrays (`null` array elements stay);
//! * a patch that is not an object replaces the target unchanged (no pruning);
//! * a `null` or scalar patch document is rejected as "Invalid JSON Patch" (400); an array
//!   patch document replaces the whole document (the server then fails to decode it).
//!
//! The original is never modified.

use serde_json::{Map, Value};

use crate::error::PatchError;

/// Applies a JSON Merge Patch document to `original`.
pub fn merge_patch(original: &Value, patch: &Value) -> Result<Value, PatchError> {
    match (original, patch) {
        (_, Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_)) => {
            Err(PatchError::malformed("Invalid JSON Patch"))
        }
        (Value::Null, _) => Err(PatchError::InvalidOriginal {
            message: "Invalid JSON Document".to_string(),
        }),
        (_, Value::Array(_)) => {
            let mut replacement = patch.clone();
            prune_nulls(&mut replacement);
            Ok(replacement)
        }
        (Value::Object(target), Value::Object(patch)) => {
            let mut target = target.clone();
            merge_members(&mut target, patch);
            Ok(Value::Object(target))
        }
        // A non-object document is replaced by the (pruned) patch object.
        (_, Value::Object(_)) => {
            let mut replacement = patch.clone();
            prune_nulls(&mut replacement);
            Ok(replacement)
        }
    }
}

fn merge_members(target: &mut Map<String, Value>, patch: &Map<String, Value>) {
    for (key, patch_value) in patch {
        if patch_value.is_null() {
            target.remove(key);
            continue;
        }
        match target.get_mut(key) {
            Some(current) if !current.is_null() => merge_value(current, patch_value),
            _ => {
                let mut value = patch_value.clone();
                prune_nulls(&mut value);
                target.insert(key.clone(), value);
            }
        }
    }
}

fn merge_value(current: &mut Value, patch: &Value) {
    match (current, patch) {
        (Value::Object(target), Value::Object(patch)) => merge_members(target, patch),
        (current @ Value::Object(_), patch) => *current = patch.clone(),
        (current, patch) => {
            let mut value = patch.clone();
            prune_nulls(&mut value);
            *current = value;
        }
    }
}

/// Removes `null` members from objects, recursively through objects and arrays.
fn prune_nulls(value: &mut Value) {
    match value {
        Value::Object(members) => {
            members.retain(|_, v| !v.is_null());
            members.values_mut().for_each(prune_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(prune_nulls),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rfc7386_appendix_a() {
        // The example table of RFC 7386 Appendix A (targets that are objects).
        let cases = [
            (json!({"a": "b"}), json!({"a": "c"}), json!({"a": "c"})),
            (
                json!({"a": "b"}),
                json!({"b": "c"}),
                json!({"a": "b", "b": "c"}),
            ),
            (json!({"a": "b"}), json!({"a": null}), json!({})),
            (
                json!({"a": "b", "b": "c"}),
                json!({"a": null}),
                json!({"b": "c"}),
            ),
            (json!({"a": ["b"]}), json!({"a": "c"}), json!({"a": "c"})),
            (json!({"a": "c"}), json!({"a": ["b"]}), json!({"a": ["b"]})),
            (
                json!({"a": {"b": "c"}}),
                json!({"a": {"b": "d", "c": null}}),
                json!({"a": {"b": "d"}}),
            ),
            (
                json!({"a": [{"b": "c"}]}),
                json!({"a": [1]}),
                json!({"a": [1]}),
            ),
            (
                json!({"e": null}),
                json!({"a": 1}),
                json!({"e": null, "a": 1}),
            ),
            (
                json!({}),
                json!({"a": {"bb": {"ccc": null}}}),
                json!({"a": {"bb": {}}}),
            ),
            // Non-object targets are replaced by the patch object.
            (json!(["a", "b"]), json!({"a": "c"}), json!({"a": "c"})),
            (json!("c"), json!({"a": "b"}), json!({"a": "b"})),
            (
                json!([1, 2]),
                json!({"a": "b", "c": null}),
                json!({"a": "b"}),
            ),
        ];
        for (original, patch, want) in cases {
            assert_eq!(
                merge_patch(&original, &patch),
                Ok(want.clone()),
                "{original} + {patch}"
            );
        }
    }

    #[test]
    fn kubernetes_shaped_patches() {
        let deployment = json!({
            "metadata": {"name": "web", "labels": {"app": "web", "tier": "fe"}},
            "spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "a", "image": "x"}]}}}
        });
        let patch = json!({
            "metadata": {"labels": {"tier": null, "new": "1"}},
            "spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "b"}]}}}
        });
        assert_eq!(
            merge_patch(&deployment, &patch),
            Ok(json!({
                "metadata": {"name": "web", "labels": {"app": "web", "new": "1"}},
                "spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "b"}]}}}
            }))
        );
    }

    #[test]
    fn library_specific_null_handling() {
        // Values landing on missing or null members are pruned, also inside arrays' objects.
        assert_eq!(
            merge_patch(
                &json!({"a": null}),
                &json!({"a": {"x": null, "l": [{"y": null}, null]}})
            ),
            Ok(json!({"a": {"l": [{}, null]}}))
        );
        // A non-object value replacing an object is kept as is.
        assert_eq!(
            merge_patch(&json!({"a": {"k": 1}}), &json!({"a": [{"y": null}]})),
            Ok(json!({"a": [{"y": null}]}))
        );
        // A scalar replaced by an object is pruned.
        assert_eq!(
            merge_patch(&json!({"a": 1}), &json!({"a": {"y": null, "z": 2}})),
            Ok(json!({"a": {"z": 2}}))
        );
        // Deleting a missing member is a no-op.
        assert_eq!(merge_patch(&json!({}), &json!({"a": null})), Ok(json!({})));
    }

    #[test]
    fn documents_that_are_not_objects() {
        for patch in [Value::Null, json!(1), json!("x"), json!(true)] {
            let err = merge_patch(&json!({"a": 1}), &patch).expect_err("scalar patch");
            assert_eq!(err.to_string(), "Invalid JSON Patch");
            assert_eq!(err.status_code(), 400);
        }
        assert_eq!(
            merge_patch(&json!({"a": 1}), &json!([{"a": null}, null])),
            Ok(json!([{}, null]))
        );
        assert!(matches!(
            merge_patch(&Value::Null, &json!({})),
            Err(PatchError::InvalidOriginal { .. })
        ));
    }
}
