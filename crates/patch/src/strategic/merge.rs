//! Merging a patch map into an object map: the `$patch`, `$retainKeys`, `$setElementOrder` and
//! `$deleteFromPrimitiveList` directives, `null` deletion, and recursion by field kind.
//!
//! The order of work within one map is upstream's: a `$patch` directive short-circuits
//! everything, then `$retainKeys` prunes the original, then each `$setElementOrder` list merges
//! and orders its list, then the remaining fields merge, and finally (here; upstream's order
//! is random) the `$deleteFromPrimitiveList` lists are applied.

use std::collections::HashSet;

use serde_json::{Map, Value};

use super::list::{ListKind, element_kind, keys_of, merge_list, no_merge_key, normalize_order};
use super::schema_index::Cursor;
use super::{
    DELETE_FROM_PRIMITIVE_LIST_PREFIX, PATCH_DIRECTIVE, Path, RETAIN_KEYS_DIRECTIVE,
    SET_ELEMENT_ORDER_PREFIX,
};
use crate::error::{PatchError, go_type, go_value};

pub(crate) fn merge_map(
    original: Map<String, Value>,
    mut patch: Map<String, Value>,
    schema: Cursor<'_>,
    path: &Path<'_>,
) -> Result<Map<String, Value>, PatchError> {
    if let Some(directive) = patch.get(PATCH_DIRECTIVE) {
        return match directive.as_str() {
            Some("replace") => {
                patch.remove(PATCH_DIRECTIVE);
                Ok(patch)
            }
            Some("delete") => Ok(Map::new()),
            _ => Err(path.rejected(format!(
                "unknown patch type: {} in map: {}",
                go_value(directive),
                go_map(&patch)
            ))),
        };
    }

    let mut original = original;
    retain_keys(&mut original, &mut patch, path)?;
    set_element_order(&mut original, &mut patch, schema, path)?;

    let mut delete_lists = Vec::new();
    for (key, value) in patch {
        if key.starts_with(DELETE_FROM_PRIMITIVE_LIST_PREFIX) {
            let field = directive_target(&key, DELETE_FROM_PRIMITIVE_LIST_PREFIX)
                .ok_or_else(|| path.malformed("invalid patch format of primitive list"))?;
            delete_lists.push((field.to_string(), value));
            continue;
        }
        merge_field(&mut original, key, value, schema, path, false)?;
    }
    for (field, value) in delete_lists {
        // Upstream turns "$deleteFromPrimitiveList/" into a deletion of nothing.
        if !field.is_empty() {
            merge_field(&mut original, field, value, schema, path, true)?;
        }
    }
    Ok(original)
}

/// The field a prefixed directive (`$setElementOrder/<field>`) targets; `None` when the key is
/// not exactly `<prefix>/<field>`.
fn directive_target<'k>(key: &'k str, prefix: &str) -> Option<&'k str> {
    key.strip_prefix(prefix)?.strip_prefix('/')
}

/// Merges one patch member into `original`. `delete_list` marks the value of a
/// `$deleteFromPrimitiveList/<key>` directive, which only ever removes.
fn merge_field(
    original: &mut Map<String, Value>,
    key: String,
    patch_value: Value,
    schema: Cursor<'_>,
    path: &Path<'_>,
    delete_list: bool,
) -> Result<(), PatchError> {
    if patch_value.is_null() {
        original.remove(&key);
        return Ok(());
    }
    let Some(current) = original.get_mut(&key) else {
        if !delete_list && let Some(value) = clean_new_value(patch_value, false) {
            original.insert(key, value);
        }
        return Ok(());
    };
    if go_type(current) != go_type(&patch_value) {
        if delete_list {
            return Ok(());
        }
        match clean_new_value(patch_value, false) {
            Some(value) => *current = value,
            None => {
                original.remove(&key);
            }
        }
        return Ok(());
    }

    let field_path = path.field(&key);
    match (current, patch_value) {
        (Value::Object(current), Value::Object(patch)) => {
            let (schema, meta) = schema.field(&key);
            *current = if meta.is_some_and(|m| m.replaces()) {
                patch
            } else {
                merge_map(std::mem::take(current), patch, schema, &field_path)?
            };
        }
        (Value::Array(current), Value::Array(patch)) => {
            let (schema, meta) = schema.field(&key);
            if delete_list || meta.is_some_and(|m| m.merges_lists()) {
                let merge_key = meta.and_then(|m| m.merge_key);
                let merged = merge_list(
                    std::mem::take(current),
                    patch,
                    schema.items(),
                    merge_key,
                    delete_list,
                    &field_path,
                )?;
                *current = merged;
            } else {
                *current = patch;
            }
        }
        (current, patch) => *current = patch,
    }
    Ok(())
}

/// `$retainKeys`: every key the patch sets must be listed; keys of the original that are not
/// listed are dropped.
fn retain_keys(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
    path: &Path<'_>,
) -> Result<(), PatchError> {
    let Some(list) = patch.remove(RETAIN_KEYS_DIRECTIVE) else {
        return Ok(());
    };
    let Value::Array(list) = list else {
        return Err(path.malformed("invalid patch format of retainKeys"));
    };
    let keep: HashSet<&str> = list.iter().filter_map(Value::as_str).collect();
    let unlisted = patch.iter().any(|(key, value)| {
        !value.is_null()
            && !key.starts_with(DELETE_FROM_PRIMITIVE_LIST_PREFIX)
            && !key.starts_with(SET_ELEMENT_ORDER_PREFIX)
            && !keep.contains(key.as_str())
    });
    if unlisted {
        return Err(path.malformed("invalid patch format of retainKeys"));
    }
    original.retain(|key, _| keep.contains(key.as_str()));
    Ok(())
}

/// Processes every `$setElementOrder/<field>` directive: merges `<field>` (if the patch has
/// it) and orders the result — elements named in the directive in its order, elements only
/// the server has keep their position relative to them. Both the directive and `<field>` are
/// consumed from the patch.
fn set_element_order(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
    schema: Cursor<'_>,
    path: &Path<'_>,
) -> Result<(), PatchError> {
    let directives: Vec<String> = patch
        .keys()
        .filter(|key| key.starts_with(SET_ELEMENT_ORDER_PREFIX))
        .cloned()
        .collect();
    for directive in directives {
        let Some(order) = patch.remove(&directive) else {
            continue;
        };
        let Value::Array(order) = order else {
            return Err(path.rejected(format!(
                "expected a []interface {{}}, but received a {}",
                go_type(&order)
            )));
        };
        let field = directive_target(&directive, SET_ELEMENT_ORDER_PREFIX)
            .ok_or_else(|| path.malformed("invalid patch format of setElementOrder list"))?;
        let field_path = path.field(field);
        let original_list = take_list(original, field, &field_path)?;
        let patch_list = take_list(patch, field, &field_path)?;

        let (field_schema, meta) = schema.field(field);
        let merge_key = meta.and_then(|m| m.merge_key);
        validate_order(
            patch_list.as_deref().unwrap_or_default(),
            &order,
            merge_key,
            &field_path,
        )?;

        let kind = element_kind(
            original_list.as_deref().unwrap_or_default(),
            patch_list.as_deref().unwrap_or_default(),
            &field_path,
        )?;
        if kind == Some(ListKind::Objects) && merge_key.is_none() {
            // Upstream cannot order objects without a merge key either.
            let lists = [original_list.as_deref(), patch_list.as_deref()];
            let first = lists
                .into_iter()
                .flatten()
                .flatten()
                .find_map(Value::as_object);
            return Err(field_path.rejected(no_merge_key(first.unwrap_or(&Map::new()), "")));
        }
        let server_order = keys_of(
            original_list.as_deref().unwrap_or_default(),
            merge_key,
            &field_path,
        )?;
        let merged = match (original_list, patch_list) {
            (None, None) => continue,
            (Some(current), None) => current,
            (None, Some(patch_list)) => remove_directives_from_list(patch_list),
            (Some(current), Some(patch_list)) => {
                if meta.is_some_and(|m| m.merges_lists()) {
                    merge_list(
                        current,
                        patch_list,
                        field_schema.items(),
                        merge_key,
                        false,
                        &field_path,
                    )?
                } else {
                    patch_list
                }
            }
        };
        if kind.is_none() {
            // Both lists were empty, so is the result (upstream errors here).
            original.insert(field.to_string(), Value::Array(merged));
            continue;
        }
        let order_keys = keys_of(&order, merge_key, &field_path)?;
        let keyed = keys_of(&merged, merge_key, &field_path)?
            .into_iter()
            .zip(merged)
            .collect();
        let ordered = normalize_order(keyed, &order_keys, &server_order);
        original.insert(field.to_string(), Value::Array(ordered));
    }
    Ok(())
}

/// Removes `map[field]`, which must be a list if present.
fn take_list(
    map: &mut Map<String, Value>,
    field: &str,
    path: &Path<'_>,
) -> Result<Option<Vec<Value>>, PatchError> {
    match map.remove(field) {
        None => Ok(None),
        Some(Value::Array(list)) => Ok(Some(list)),
        Some(other) => Err(path.rejected(format!(
            "expected a []interface {{}}, but received a {}",
            go_type(&other)
        ))),
    }
}

/// Upstream's consistency check between a patch list and its `$setElementOrder` list: the
/// patch's elements (other than deletions and directives) must appear in the order list, in
/// the same relative order.
fn validate_order(
    patch_list: &[Value],
    order: &[Value],
    merge_key: Option<&str>,
    path: &Path<'_>,
) -> Result<(), PatchError> {
    if patch_list.is_empty() || order.is_empty() {
        return Ok(());
    }
    let mut candidates = Vec::with_capacity(patch_list.len());
    for element in patch_list {
        if merge_key.is_some() {
            let Some(map) = element.as_object() else {
                return Err(path.rejected(format!(
                    "expected a map[string]interface {{}}, but received a {}",
                    go_type(element)
                )));
            };
            if map.get(PATCH_DIRECTIVE).and_then(Value::as_str) == Some("delete") {
                continue;
            }
        }
        candidates.push(element);
    }
    let (mut p, mut s) = (0, 0);
    while let (Some(element), Some(wanted)) = (candidates.get(p), order.get(s)) {
        if element
            .as_object()
            .is_some_and(|m| m.contains_key(PATCH_DIRECTIVE))
        {
            p += 1;
            continue;
        }
        let same = match merge_key {
            None => *element == wanted,
            Some(key) => key_value(element, key, path)? == key_value(wanted, key, path)?,
        };
        if same {
            p += 1;
        }
        s += 1;
    }
    if p < candidates.len() {
        return Err(path.rejected(format!(
            "The order in patch list:\n{}\n doesn't match {SET_ELEMENT_ORDER_PREFIX} list:\n{}\n",
            go_value(&Value::Array(patch_list.to_vec())),
            go_value(&Value::Array(order.to_vec()))
        )));
    }
    Ok(())
}

fn key_value<'v>(element: &'v Value, key: &str, path: &Path<'_>) -> Result<&'v Value, PatchError> {
    let Some(map) = element.as_object() else {
        return Err(path.rejected(format!(
            "expected a map[string]interface {{}}, but received a {}",
            go_type(element)
        )));
    };
    map.get(key)
        .ok_or_else(|| path.rejected(no_merge_key(map, key)))
}

/// Prepares a patch value that lands where the original has nothing (or a value of another
/// kind): `null` members are dropped and directives removed. `None` means "do not set".
fn clean_new_value(mut value: Value, in_list: bool) -> Option<Value> {
    discard_nulls(&mut value);
    remove_directives(value, in_list)
}

fn discard_nulls(value: &mut Value) {
    match value {
        Value::Object(members) => {
            members.retain(|_, v| !v.is_null());
            members.values_mut().for_each(discard_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(discard_nulls),
        _ => {}
    }
}

/// Upstream's `removeDirectives`: a list element carrying `$patch` is a list-level directive and
/// disappears, as does a map value with `$patch` other than `replace` (which keeps the map,
/// minus the marker — upstream drops it too, losing the value). Prefixed directive keys
/// (`$setElementOrder/...` etc.) have nothing to apply to in a new value and are dropped.
fn remove_directives(value: Value, in_list: bool) -> Option<Value> {
    match value {
        Value::Object(mut members) => {
            if let Some(directive) = members.remove(PATCH_DIRECTIVE)
                && (in_list || directive.as_str() != Some("replace"))
            {
                return None;
            }
            let members = members
                .into_iter()
                .filter(|(key, _)| !is_prefixed_directive(key))
                .filter_map(|(key, v)| remove_directives(v, false).map(|v| (key, v)))
                .collect();
            Some(Value::Object(members))
        }
        Value::Array(items) => Some(Value::Array(remove_directives_from_list(items))),
        scalar => Some(scalar),
    }
}

fn remove_directives_from_list(items: Vec<Value>) -> Vec<Value> {
    items
        .into_iter()
        .filter_map(|item| remove_directives(item, true))
        .collect()
}

fn is_prefixed_directive(key: &str) -> bool {
    key == RETAIN_KEYS_DIRECTIVE
        || key.starts_with(SET_ELEMENT_ORDER_PREFIX)
        || key.starts_with(DELETE_FROM_PRIMITIVE_LIST_PREFIX)
}

/// Go's `%v` of a map.
pub(crate) fn go_map(map: &Map<String, Value>) -> String {
    go_value(&Value::Object(map.clone()))
}
