//! JSON Patch (RFC 6902, `application/json-patch+json`) with the semantics of the library the
//! Kubernetes API server uses (evanphx/json-patch v4), including the places where that library
//! is more lenient than the RFC — clients have been built against it:
//!
//! * a member whose value is `null` and a missing member are indistinguishable: `test` with a
//!   `null` (or absent) value succeeds on a missing member, and paths cannot descend through
//!   `null`;
//! * `replace` of a missing object member adds it (only array indexes must exist);
//! * `copy` from a missing object member copies `null`;
//! * negative array indexes count from the end (`-1` is the last element; for `add`, the
//!   position after it);
//! * the first token of a path is ignored when the path does not start with `/`;
//! * `add`, `remove` and `move`/`copy` cannot address the whole document (`""`); `replace`
//!   and `test` can;
//! * a `null` patch is an empty patch.
//!
//! Guarantees: the original is never modified; the result is all operations applied or an
//! error naming the failing operation; limits on operation count and on bytes added by `copy`
//! (upstream's `maxJSONPatchOperations` and `--json-patch-max-copy-bytes`) bound the work.

use serde_json::{Map, Value};

use crate::error::{PatchError, json_kind};

/// Upstream's `maxJSONPatchOperations`.
pub const DEFAULT_MAX_OPERATIONS: usize = 10_000;
/// Upstream's default `JSONPatchMaxCopyBytes` (3 MiB).
pub const DEFAULT_MAX_COPY_BYTES: u64 = 3 * 1024 * 1024;

/// Bounds on the work one JSON Patch may cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsonPatchLimits {
    /// More operations than this is rejected with 413 before anything is applied.
    pub max_operations: usize,
    /// Total serialized size of the values `copy` operations duplicate; 0 disables the limit.
    pub max_copy_bytes: u64,
}

impl Default for JsonPatchLimits {
    fn default() -> Self {
        JsonPatchLimits {
            max_operations: DEFAULT_MAX_OPERATIONS,
            max_copy_bytes: DEFAULT_MAX_COPY_BYTES,
        }
    }
}

/// Applies a JSON Patch document with the server's default limits.
pub fn json_patch(original: &Value, patch: &Value) -> Result<Value, PatchError> {
    json_patch_with_limits(original, patch, &JsonPatchLimits::default())
}

/// Applies a JSON Patch document. `original` must be an object or an array.
pub fn json_patch_with_limits(
    original: &Value,
    patch: &Value,
    limits: &JsonPatchLimits,
) -> Result<Value, PatchError> {
    let operations = decode(patch)?;
    if operations.len() > limits.max_operations {
        return Err(PatchError::TooManyOperations {
            max: limits.max_operations,
            got: operations.len(),
        });
    }
    if !(original.is_object() || original.is_array()) {
        return Err(PatchError::InvalidOriginal {
            message: format!(
                "json: cannot unmarshal {} into Go value of type jsonpatch.partialDoc",
                json_kind(original)
            ),
        });
    }

    let mut doc = original.clone();
    let mut copied_bytes = 0u64;
    for (index, op) in operations.into_iter().enumerate() {
        let kind = op
            .and_then(|m| m.get("op"))
            .and_then(Value::as_str)
            .unwrap_or("unknown");
        let result = match (kind, op) {
            (_, None) => Err(format!("Unexpected kind: {kind}")),
            (_, Some(op)) => apply_one(kind, &mut doc, op, &mut copied_bytes, limits),
        };
        result.map_err(|message| PatchError::JsonPatchOperation {
            index,
            op: kind.to_string(),
            message,
        })?;
    }
    Ok(doc)
}

fn apply_one(
    kind: &str,
    doc: &mut Value,
    op: &Op,
    copied_bytes: &mut u64,
    limits: &JsonPatchLimits,
) -> Result<(), String> {
    match kind {
        "add" => add(doc, op),
        "remove" => remove(doc, op),
        "replace" => replace(doc, op),
        "move" => move_(doc, op),
        "test" => test(doc, op),
        "copy" => copy(doc, op, copied_bytes, limits.max_copy_bytes),
        other => Err(format!("Unexpected kind: {other}")),
    }
}

type Op = Map<String, Value>;

/// A patch is an array of operation objects; `null` elements are kept as operations of
/// unknown kind (they fail when reached), anything else is a decoding error.
fn decode(patch: &Value) -> Result<Vec<Option<&Op>>, PatchError> {
    match patch {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::Object(op) => Ok(Some(op)),
                Value::Null => Ok(None),
                other => Err(PatchError::malformed(format!(
                    "json: cannot unmarshal {} into Go value of type jsonpatch.Operation",
                    json_kind(other)
                ))),
            })
            .collect(),
        other => Err(PatchError::malformed(format!(
            "json: cannot unmarshal {} into Go value of type jsonpatch.Patch",
            json_kind(other)
        ))),
    }
}

fn string_field<'a>(op: &'a Op, field: &str, missing: &str) -> Result<&'a str, String> {
    match op.get(field) {
        None | Some(Value::Null) => Err(missing.to_string()),
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(format!(
            "json: cannot unmarshal {} into Go value of type string",
            json_kind(other)
        )),
    }
}

fn path_of(op: &Op) -> Result<&str, String> {
    string_field(op, "path", "operation missing path field: missing value")
}

fn from_of(op: &Op) -> Result<&str, String> {
    string_field(op, "from", "operation, missing from field: missing value")
}

/// The operation's value; an absent value and `null` are the same (upstream keeps both as a
/// nil node, which serializes as `null`).
fn value_of(op: &Op) -> Option<&Value> {
    op.get("value").filter(|v| !v.is_null())
}

fn add(doc: &mut Value, op: &Op) -> Result<(), String> {
    let path = path_of(op).map_err(|_| "add operation failed to decode path: missing value")?;
    let (container, key) = find_container(doc, path).ok_or_else(|| {
        format!("add operation does not apply: doc is missing path: \"{path}\": missing value")
    })?;
    let value = value_of(op).cloned().unwrap_or(Value::Null);
    container_add(container, &key, value)
        .map_err(|e| format!("error in add for path: '{path}': {e}"))
}

fn remove(doc: &mut Value, op: &Op) -> Result<(), String> {
    let path = path_of(op).map_err(|_| "remove operation failed to decode path: missing value")?;
    let (container, key) = find_container(doc, path).ok_or_else(|| {
        format!("remove operation does not apply: doc is missing path: \"{path}\": missing value")
    })?;
    container_remove(container, &key)
        .map(drop)
        .map_err(|e| format!("error in remove for path: '{path}': {e}"))
}

fn replace(doc: &mut Value, op: &Op) -> Result<(), String> {
    let path = path_of(op).map_err(|e| format!("replace operation failed to decode path: {e}"))?;
    if path.is_empty() {
        return match value_of(op) {
            Some(value @ (Value::Object(_) | Value::Array(_))) => {
                *doc = value.clone();
                Ok(())
            }
            _ => Err("replace operation value must be object or array".to_string()),
        };
    }
    let (container, key) = find_container(doc, path).ok_or_else(|| {
        format!("replace operation does not apply: doc is missing path: {path}: missing value")
    })?;
    let value = value_of(op).cloned().unwrap_or(Value::Null);
    match container {
        Value::Array(items) => {
            let index = existing_index(&key, items.len()).map_err(|_| {
                format!(
                    "replace operation does not apply: doc is missing key: {path}: missing value"
                )
            })?;
            if let Some(slot) = items.get_mut(index) {
                *slot = value;
            }
        }
        Value::Object(members) => {
            members.insert(key, value);
        }
        _ => {}
    }
    Ok(())
}

fn move_(doc: &mut Value, op: &Op) -> Result<(), String> {
    let from = from_of(op).map_err(|e| format!("move operation failed to decode from: {e}"))?;
    let (container, key) = find_container(doc, from).ok_or_else(|| {
        format!("move operation does not apply: doc is missing from path: {from}: missing value")
    })?;
    container_get(container, &key).map_err(|e| format!("error in move for path: '{key}': {e}"))?;
    let value = container_remove(container, &key)
        .map_err(|e| format!("error in move for path: '{key}': {e}"))?;

    let path = path_of(op).map_err(|e| format!("move operation failed to decode path: {e}"))?;
    let (container, key) = find_container(doc, path).ok_or_else(|| {
        format!(
            "move operation does not apply: doc is missing destination path: {path}: missing value"
        )
    })?;
    container_add(container, &key, value)
        .map_err(|e| format!("error in move for path: '{path}': {e}"))
}

fn test(doc: &mut Value, op: &Op) -> Result<(), String> {
    let path = path_of(op).map_err(|e| format!("test operation failed to decode path: {e}"))?;
    let failed = || format!("testing value {path} failed: test failed");
    if path.is_empty() {
        return if value_of(op) == Some(&*doc) {
            Ok(())
        } else {
            Err(failed())
        };
    }
    let (container, key) = find_container(doc, path).ok_or_else(|| {
        format!("test operation does not apply: is missing path: {path}: missing value")
    })?;
    let current = container_get(container, &key)
        .map_err(|e| format!("error in test for path: '{path}': {e}"))?;
    match (current, value_of(op)) {
        (None, None) => Ok(()),
        (Some(have), Some(want)) if have == want => Ok(()),
        _ => Err(failed()),
    }
}

fn copy(doc: &mut Value, op: &Op, copied: &mut u64, limit: u64) -> Result<(), String> {
    let from = from_of(op).map_err(|e| format!("copy operation failed to decode from: {e}"))?;
    let (container, key) = find_container(doc, from).ok_or_else(|| {
        format!("copy operation does not apply: doc is missing from path: {from}: missing value")
    })?;
    let value = container_get(container, &key)
        .map_err(|e| format!("error in copy for from: '{from}': {e}"))?
        .cloned();

    let path = path_of(op).map_err(|_| "copy operation failed to decode path: missing value")?;
    let (container, key) = find_container(doc, path).ok_or_else(|| {
        format!(
            "copy operation does not apply: doc is missing destination path: {path}: missing value"
        )
    })?;
    // Upstream counts the serialized size of each copied value (a copied `null` is free).
    *copied = copied.saturating_add(value.as_ref().map_or(0, serialized_len));
    if limit > 0 && *copied > limit {
        return Err(format!(
            "Unable to complete the copy, the accumulated size increase of copy is {copied}, exceeding the limit {limit}"
        ));
    }
    container_add(container, &key, value.unwrap_or(Value::Null))
        .map_err(|e| format!("error while adding value during copy: {e}"))
}

fn serialized_len(value: &Value) -> u64 {
    struct Counter(u64);
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 = self.0.saturating_add(buf.len() as u64);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    // Writing a Value into an infallible writer cannot fail.
    let _ = serde_json::to_writer(&mut counter, value);
    counter.0
}

/// Decodes one JSON Pointer reference token (`~1` is `/`, `~0` is `~`, left to right).
pub(crate) fn decode_token(token: &str) -> String {
    if !token.contains('~') {
        return token.to_string();
    }
    let mut out = String::with_capacity(token.len());
    let mut chars = token.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '~' {
            match chars.peek() {
                Some('1') => {
                    out.push('/');
                    chars.next();
                    continue;
                }
                Some('0') => {
                    out.push('~');
                    chars.next();
                    continue;
                }
                _ => {}
            }
        }
        out.push(c);
    }
    out
}

/// Walks to the object or array that holds the last token of `path`, returning it with the
/// decoded last token. `None` when any step is missing, `null`, or not a container — the
/// "doc is missing path" case.
fn find_container<'a>(doc: &'a mut Value, path: &str) -> Option<(&'a mut Value, String)> {
    let mut tokens = path.split('/');
    // The text before the first '/' is ignored (it is empty for a well-formed pointer).
    tokens.next();
    let tokens: Vec<&str> = tokens.collect();
    let (last, parents) = tokens.split_last()?;
    let mut current = doc;
    for token in parents {
        let token = decode_token(token);
        let next = match current {
            Value::Object(members) => members.get_mut(&token)?,
            Value::Array(items) => {
                let index = existing_index(&token, items.len()).ok()?;
                items.get_mut(index)?
            }
            _ => return None,
        };
        if !(next.is_object() || next.is_array()) {
            return None;
        }
        current = next;
    }
    Some((current, decode_token(last)))
}

/// Reads a member or element; `Ok(None)` for a missing member or a `null` value.
fn container_get<'a>(container: &'a Value, key: &str) -> Result<Option<&'a Value>, String> {
    match container {
        Value::Object(members) => Ok(members.get(key).filter(|v| !v.is_null())),
        Value::Array(items) => {
            let index = existing_index(key, items.len())?;
            Ok(items.get(index).filter(|v| !v.is_null()))
        }
        _ => Ok(None),
    }
}

fn container_add(container: &mut Value, key: &str, value: Value) -> Result<(), String> {
    match container {
        Value::Object(members) => {
            members.insert(key.to_string(), value);
            Ok(())
        }
        Value::Array(items) => {
            if key == "-" {
                items.push(value);
                return Ok(());
            }
            let index = atoi(key)
                .map_err(|e| format!("value was not a proper array index: '{key}': {e}"))?;
            // Insertion positions run from 0 to len inclusive.
            let slots = items.len() as i64 + 1;
            if index >= slots || index < -slots {
                return Err(invalid_index(index));
            }
            let position = if index < 0 { index + slots } else { index };
            items.insert(position as usize, value);
            Ok(())
        }
        _ => Err("invalid state detected".to_string()),
    }
}

/// Removes a member or element and returns it.
fn container_remove(container: &mut Value, key: &str) -> Result<Value, String> {
    match container {
        Value::Object(members) => members
            .remove(key)
            .ok_or_else(|| format!("Unable to remove nonexistent key: {key}: missing value")),
        Value::Array(items) => {
            let index = existing_index(key, items.len())?;
            Ok(items.remove(index))
        }
        _ => Err("invalid state detected".to_string()),
    }
}

/// Resolves an index of an existing element (negative counts from the end).
fn existing_index(key: &str, len: usize) -> Result<usize, String> {
    let index = atoi(key)?;
    let len = len as i64;
    let resolved = if index < 0 { index + len } else { index };
    if resolved < 0 || resolved >= len {
        return Err(invalid_index(index));
    }
    Ok(resolved as usize)
}

fn invalid_index(index: i64) -> String {
    format!("Unable to access invalid index: {index}: invalid index referenced")
}

/// Go's `strconv.Atoi`: optional sign, decimal digits, 64-bit range.
fn atoi(s: &str) -> Result<i64, String> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("strconv.Atoi: parsing {s:?}: invalid syntax"));
    }
    s.parse::<i64>()
        .map_err(|_| format!("strconv.Atoi: parsing {s:?}: value out of range"))
}

#[cfg(test)]
#[path = "json_patch_tests.rs"]
mod tests;
