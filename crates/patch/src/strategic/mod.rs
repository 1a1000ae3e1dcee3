//! Strategic merge patch (`application/strategic-merge-patch+json`) as the API server applies
//! it — the patch type `kubectl apply` (client-side), `kubectl patch` and `kubectl edit` send.
//!
//! It is JSON Merge Patch made aware of the object's type ([`SchemaIndex`]):
//!
//! * maps merge key by key and `null` deletes a key;
//! * lists whose field has strategy `merge` merge: lists of objects element by element, matched
//!   on the field's merge key (containers by `name`, ports by `containerPort`...), in place;
//!   lists of primitives as sets (`metadata.finalizers`); every other list is replaced;
//! * fields with strategy `replace` (PodDisruptionBudget `spec.selector`) are replaced whole.
//!
//! Directives in the patch:
//!
//! * `$patch: replace` in a map replaces the map; in a merge list, the list is replaced by the
//!   patch's other elements;
//! * `$patch: delete` in a map empties it; as an element of a merge list (with the merge key)
//!   removes the matching elements;
//! * `$patch: merge` is rejected, as upstream does ("merging lists cannot yet be specified");
//! * `$deleteFromPrimitiveList/<field>: [..]` removes values from a primitive list;
//! * `$setElementOrder/<field>: [..]` orders the merged list: listed elements in that order,
//!   elements only the server knows keep their place relative to them;
//! * `$retainKeys: [..]` (volumes, Deployment `spec.strategy`) drops every key of the current map
//!   that is not listed, after checking that the patch sets no unlisted key.
//!
//! The algorithm follows apimachinery's `strategicpatch` server side (`mergeMap` with parallel
//! lists merged and unmatched `null`s ignored), including the element order it produces.
//! Deliberate differences, all in cases where upstream fails or silently drops data:
//!
//! * fields the schema does not describe merge like JSON Merge Patch instead of failing;
//! * a new map value carrying `$patch: replace` is added (minus the marker) rather than dropped,
//!   and `$setElementOrder`/`$deleteFromPrimitiveList`/`$retainKeys` keys inside new values are
//!   removed rather than left in the object;
//! * `$setElementOrder` for a list that is empty on both sides is a no-op, not an error;
//! * malformed input that panics upstream (null list elements, maps compared without a merge
//!   key, non-string `$retainKeys` entries) is an error or ignored here.
//!
//! Applying never modifies its inputs. Error texts are upstream's, prefixed with the field path
//! (`spec.template.spec.containers[name=app]: ...`) when the error is below the top level.

mod list;
mod merge;
pub mod meta_table;
pub mod schema_index;

#[cfg(test)]
mod kubectl_tests;
#[cfg(test)]
mod tests;

use schemars::JsonSchema;
use serde_json::{Map, Value};

use crate::error::{PatchError, go_value, json_kind};
pub use meta_table::{PatchMeta, all_patch_meta, field_patch_meta};
pub use schema_index::SchemaIndex;

/// The `$patch` directive key.
pub(crate) const PATCH_DIRECTIVE: &str = "$patch";
pub(crate) const RETAIN_KEYS_DIRECTIVE: &str = "$retainKeys";
pub(crate) const DELETE_FROM_PRIMITIVE_LIST_PREFIX: &str = "$deleteFromPrimitiveList";
pub(crate) const SET_ELEMENT_ORDER_PREFIX: &str = "$setElementOrder";

/// Applies a strategic merge patch to an object of type `T` (a `k8s-openapi` type), using the
/// process-wide [`SchemaIndex::shared`] index of `T`.
pub fn strategic_merge_patch<T: JsonSchema + ?Sized + 'static>(
    original: &Value,
    patch: &Value,
) -> Result<Value, PatchError> {
    strategic_merge_patch_with(&SchemaIndex::shared::<T>(), original, patch)
}

/// Applies a strategic merge patch using a prepared index.
pub fn strategic_merge_patch_with(
    index: &SchemaIndex,
    original: &Value,
    patch: &Value,
) -> Result<Value, PatchError> {
    strategic_merge_patch_owned(index, original.clone(), patch.clone())
}

/// Applies a strategic merge patch, consuming its inputs (saves two deep copies).
pub fn strategic_merge_patch_owned(
    index: &SchemaIndex,
    original: Value,
    patch: Value,
) -> Result<Value, PatchError> {
    let patch = match patch {
        Value::Object(patch) => patch,
        // Upstream decodes `null` into an empty patch.
        Value::Null => Map::new(),
        other => {
            return Err(PatchError::malformed(format!(
                "json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
                json_kind(&other)
            )));
        }
    };
    let original = match original {
        Value::Object(original) => original,
        other => {
            return Err(PatchError::InvalidOriginal {
                message: format!("expected an object, got {}", json_kind(&other)),
            });
        }
    };
    merge::merge_map(original, patch, index.root(), &Path::ROOT).map(Value::Object)
}

/// Where in the document a merge is happening, for error messages. A linked list on the stack
/// so descending costs nothing until an error is rendered.
#[derive(Clone, Copy)]
pub(crate) struct Path<'a> {
    parent: Option<&'a Path<'a>>,
    step: Step<'a>,
}

#[derive(Clone, Copy)]
enum Step<'a> {
    Root,
    Field(&'a str),
    /// A merge-list element, identified by its merge key.
    Element(&'a str, &'a Value),
}

impl<'a> Path<'a> {
    pub(crate) const ROOT: Path<'static> = Path {
        parent: None,
        step: Step::Root,
    };

    pub(crate) fn field<'b>(&'b self, name: &'b str) -> Path<'b> {
        Path {
            parent: Some(self),
            step: Step::Field(name),
        }
    }

    pub(crate) fn element<'b>(&'b self, key: &'b str, value: &'b Value) -> Path<'b> {
        Path {
            parent: Some(self),
            step: Step::Element(key, value),
        }
    }

    fn render(&self) -> String {
        let mut steps = Vec::new();
        let mut current = Some(self);
        while let Some(path) = current {
            steps.push(path.step);
            current = path.parent;
        }
        let mut out = String::new();
        for step in steps.into_iter().rev() {
            match step {
                Step::Root => {}
                Step::Field(name) => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(name);
                }
                Step::Element(key, value) => {
                    out.push('[');
                    out.push_str(key);
                    out.push('=');
                    out.push_str(&go_value(value));
                    out.push(']');
                }
            }
        }
        out
    }

    fn locate(&self, message: String) -> String {
        let at = self.render();
        if at.is_empty() {
            message
        } else {
            format!("{at}: {message}")
        }
    }

    /// A malformed directive (upstream: 400).
    pub(crate) fn malformed(&self, message: &str) -> PatchError {
        PatchError::Malformed {
            message: self.locate(message.to_string()),
        }
    }

    /// Content that contradicts the patch metadata (upstream: an unconverted error).
    pub(crate) fn rejected(&self, message: String) -> PatchError {
        PatchError::Rejected {
            message: self.locate(message),
        }
    }

    pub(crate) fn unprocessable(&self, message: &str) -> PatchError {
        PatchError::Unprocessable {
            message: self.locate(message.to_string()),
        }
    }
}
