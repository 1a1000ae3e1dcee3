//! Merging lists whose field has the `merge` strategy, and the element order of the result.
//!
//! Objects merge on the merge key: a patch element updates the first current element with the
//! same key (recursively, as a map), or is appended. `$patch: delete` elements remove every
//! element with their key; a `$patch: replace` element makes the patch's other elements the
//! whole list. Primitives merge as a set (duplicates removed); `$deleteFromPrimitiveList`
//! removes values.
//!
//! Order (upstream's `normalizeElementOrder`): elements present in the patch come in patch
//! order, the others in their current order, and the two sequences are interleaved so that a
//! server-only element stays in front of the patch elements it preceded. Lookups are hashed so
//! a large list costs O(n log n), not O(n²).

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use super::merge::{go_map, merge_map};
use super::schema_index::Cursor;
use super::{PATCH_DIRECTIVE, Path};
use crate::error::{PatchError, go_type, go_value};

/// What a (non-empty) merge list holds; upstream requires one element type per list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ListKind {
    Objects,
    Scalars,
}

/// Upstream's `sliceElementType` over both lists: every element must have the same Go type
/// (so `1` and `1.5` do not mix); `None` when both lists are empty.
pub(crate) fn element_kind(
    original: &[Value],
    patch: &[Value],
    path: &Path<'_>,
) -> Result<Option<ListKind>, PatchError> {
    let mut first: Option<&'static str> = None;
    for element in original.iter().chain(patch) {
        if first.is_none() && element.is_array() {
            return Err(path.unprocessable("lists of lists are not supported"));
        }
        let this = go_type(element);
        if element.is_null() || first.is_some_and(|t| t != this) {
            let both = Value::Array(vec![
                Value::Array(original.to_vec()),
                Value::Array(patch.to_vec()),
            ]);
            return Err(path.rejected(format!(
                "list element types are not identical: {}",
                go_value(&both)
            )));
        }
        first = Some(this);
    }
    Ok(first.map(|t| {
        if t == go_type(&Value::Object(Map::new())) {
            ListKind::Objects
        } else {
            ListKind::Scalars
        }
    }))
}

pub(crate) fn merge_list(
    original: Vec<Value>,
    patch: Vec<Value>,
    items: Cursor<'_>,
    merge_key: Option<&str>,
    delete_list: bool,
    path: &Path<'_>,
) -> Result<Vec<Value>, PatchError> {
    if original.is_empty() && patch.is_empty() {
        return Ok(original);
    }
    match element_kind(&original, &patch, path)? {
        Some(ListKind::Objects) => {}
        _ if delete_list => {
            let remove: HashSet<String> = patch.iter().map(canonical).collect();
            return Ok(original
                .into_iter()
                .filter(|v| !remove.contains(&canonical(v)))
                .collect());
        }
        _ => {
            let mut seen = HashSet::new();
            let merged: Vec<Value> = original
                .iter()
                .chain(&patch)
                .filter(|v| seen.insert(canonical(v)))
                .cloned()
                .collect();
            let keyed = merged.into_iter().map(|v| (v.clone(), v)).collect();
            return Ok(normalize_order(keyed, &patch, &original));
        }
    }

    let Some(key) = merge_key.filter(|k| !k.is_empty()) else {
        return Err(path.rejected("cannot merge lists without merge key".to_string()));
    };
    let (original, patch) = apply_list_directives(original, patch, key, path)?;
    let patch_order = keys_of(&patch, Some(key), path)?;
    let server_order = keys_of(&original, Some(key), path)?;

    // Patch elements update the first element with their key, or are appended.
    let mut merged = original;
    let mut positions: HashMap<String, usize> = HashMap::new();
    for (i, element) in merged.iter().enumerate() {
        if let Some(value) = element.get(key) {
            positions.entry(canonical(value)).or_insert(i);
        }
    }
    for (element, key_value) in patch.into_iter().zip(&patch_order) {
        let Value::Object(element) = element else {
            continue;
        };
        let id = canonical(key_value);
        match positions.get(&id).and_then(|&i| merged.get_mut(i)) {
            Some(Value::Object(current)) => {
                let element_path = path.element(key, key_value);
                *current = merge_map(std::mem::take(current), element, items, &element_path)?;
            }
            _ => {
                positions.insert(id, merged.len());
                merged.push(Value::Object(element));
            }
        }
    }

    let keyed = keys_of(&merged, Some(key), path)?
        .into_iter()
        .zip(merged)
        .collect();
    Ok(normalize_order(keyed, &patch_order, &server_order))
}

/// Handles the elements carrying `$patch`: deletions remove matching current elements,
/// `replace` discards the current list. Returns the current list and the remaining patch.
fn apply_list_directives(
    original: Vec<Value>,
    patch: Vec<Value>,
    key: &str,
    path: &Path<'_>,
) -> Result<(Vec<Value>, Vec<Value>), PatchError> {
    let mut plain = Vec::with_capacity(patch.len());
    let mut deleted = HashSet::new();
    let mut replace = false;
    for element in patch {
        let Some(directive) = element.get(PATCH_DIRECTIVE) else {
            plain.push(element);
            continue;
        };
        match directive.as_str() {
            Some("delete") => match element.get(key) {
                Some(value) => {
                    deleted.insert(canonical(value));
                }
                None => {
                    let map = element.as_object().cloned().unwrap_or_default();
                    return Err(path.rejected(no_merge_key(&map, key)));
                }
            },
            // Later elements may still be directives to prune; keep going.
            Some("replace") => replace = true,
            Some("merge") => {
                return Err(
                    path.rejected("merging lists cannot yet be specified in the patch".to_string())
                );
            }
            _ => {
                let map = element.as_object().cloned().unwrap_or_default();
                return Err(path.rejected(format!(
                    "unknown patch type: {} in map: {}",
                    go_value(directive),
                    go_map(&map)
                )));
            }
        }
    }
    if replace {
        return Ok((plain, Vec::new()));
    }
    let original = if deleted.is_empty() {
        original
    } else {
        original
            .into_iter()
            .filter(|e| e.get(key).is_none_or(|v| !deleted.contains(&canonical(v))))
            .collect()
    };
    Ok((original, plain))
}

/// The identity of each element for ordering: its merge-key value, or the element itself for
/// lists of primitives. Every element of a keyed list must be an object carrying the key.
pub(crate) fn keys_of(
    list: &[Value],
    merge_key: Option<&str>,
    path: &Path<'_>,
) -> Result<Vec<Value>, PatchError> {
    let Some(key) = merge_key else {
        return Ok(list.to_vec());
    };
    list.iter()
        .map(|element| {
            let Some(map) = element.as_object() else {
                return Err(path.rejected(format!(
                    "expected a map[string]interface {{}}, but received a {}",
                    go_type(element)
                )));
            };
            map.get(key)
                .cloned()
                .ok_or_else(|| path.rejected(no_merge_key(map, key)))
        })
        .collect()
}

/// Orders `(key, element)` pairs: those whose key is in `patch_order` by their first position
/// there, the rest ("server-only") by their first position in `server_order`; then merges the
/// two runs, taking a server-only element first whenever both it and the next patch element
/// are in `server_order` and it comes earlier there.
pub(crate) fn normalize_order(
    keyed: Vec<(Value, Value)>,
    patch_order: &[Value],
    server_order: &[Value],
) -> Vec<Value> {
    let patch_positions = first_positions(patch_order);
    let server_positions = first_positions(server_order);
    let position = |positions: &HashMap<String, usize>, key: &str| positions.get(key).copied();

    let (mut from_patch, mut server_only): (Vec<_>, Vec<_>) = keyed
        .into_iter()
        .map(|(key, element)| (canonical(&key), element))
        .partition(|(key, _)| patch_positions.contains_key(key));
    // Stable sorts; elements missing from the order list go last, in their current order.
    from_patch.sort_by_key(|(key, _)| position(&patch_positions, key).unwrap_or(usize::MAX));
    server_only.sort_by_key(|(key, _)| position(&server_positions, key).unwrap_or(usize::MAX));

    let mut out = Vec::with_capacity(from_patch.len() + server_only.len());
    let mut left = server_only.into_iter().peekable();
    let mut right = from_patch.into_iter().peekable();
    while let (Some((left_key, _)), Some((right_key, _))) = (left.peek(), right.peek()) {
        let left_first = matches!(
            (position(&server_positions, left_key), position(&server_positions, right_key)),
            (Some(l), Some(r)) if l < r
        );
        let next = if left_first {
            left.next()
        } else {
            right.next()
        };
        out.extend(next.map(|(_, element)| element));
    }
    out.extend(left.map(|(_, element)| element));
    out.extend(right.map(|(_, element)| element));
    out
}

fn first_positions(order: &[Value]) -> HashMap<String, usize> {
    let mut positions = HashMap::with_capacity(order.len());
    for (i, value) in order.iter().enumerate() {
        positions.entry(canonical(value)).or_insert(i);
    }
    positions
}

/// A hashable identity for a JSON value: equal values (as `==` on `Value` sees them) have
/// equal text, and values of different types never collide (`1` vs `"1"` vs `1.0`).
fn canonical(value: &Value) -> String {
    value.to_string()
}

pub(crate) fn no_merge_key(map: &Map<String, Value>, key: &str) -> String {
    format!(
        "map: {} does not contain declared merge key: {key}",
        go_map(map)
    )
}
