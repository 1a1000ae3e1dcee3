use serde_json::{Value, json};

use super::*;

/// Applies `patch` to `doc` and returns the result or the error message.
fn run(doc: Value, patch: Value) -> Result<Value, String> {
    json_patch(&doc, &patch).map_err(|e| e.to_string())
}

#[test]
fn successful_operations() {
    let doc = json!({
        "metadata": {"name": "web", "labels": {"app": "web"}, "finalizers": ["a", "b", "c"]},
        "spec": {"replicas": 1}
    });
    let cases: Vec<(&str, Value, Value)> = vec![
        (
            "add a new member",
            json!([{"op": "add", "path": "/metadata/labels/tier", "value": "fe"}]),
            json!({"app": "web", "tier": "fe"}),
        ),
        (
            "add replaces an existing member",
            json!([{"op": "add", "path": "/metadata/labels/app", "value": "api"}]),
            json!({"app": "api"}),
        ),
        (
            "add without a value adds null",
            json!([{"op": "add", "path": "/metadata/labels/x"}]),
            json!({"app": "web", "x": null}),
        ),
        (
            "escaped tokens: ~1 is '/', ~0 is '~'",
            json!([{"op": "add", "path": "/metadata/labels/example.com~1role~0x", "value": "db"}]),
            json!({"app": "web", "example.com/role~x": "db"}),
        ),
        (
            "'~01' decodes to '~1', not '/'",
            json!([{"op": "add", "path": "/metadata/labels/a~01", "value": "v"}]),
            json!({"app": "web", "a~1": "v"}),
        ),
        (
            "replace a missing object member adds it (evanphx v4)",
            json!([{"op": "replace", "path": "/metadata/labels/new", "value": "v"}]),
            json!({"app": "web", "new": "v"}),
        ),
        (
            "remove a member",
            json!([{"op": "remove", "path": "/metadata/labels/app"}]),
            json!({}),
        ),
        (
            "move a member",
            json!([{"op": "move", "from": "/metadata/labels/app", "path": "/metadata/labels/name"}]),
            json!({"name": "web"}),
        ),
        (
            "copy a member",
            json!([{"op": "copy", "from": "/metadata/name", "path": "/metadata/labels/name"}]),
            json!({"app": "web", "name": "web"}),
        ),
        (
            "copy from a missing member copies null (evanphx v4)",
            json!([{"op": "copy", "from": "/metadata/nope", "path": "/metadata/labels/x"}]),
            json!({"app": "web", "x": null}),
        ),
        (
            "test then replace",
            json!([
                {"op": "test", "path": "/metadata/labels/app", "value": "web"},
                {"op": "replace", "path": "/metadata/labels/app", "value": "v2"}
            ]),
            json!({"app": "v2"}),
        ),
        (
            "test null against a missing member succeeds",
            json!([{"op": "test", "path": "/metadata/labels/missing", "value": null}]),
            json!({"app": "web"}),
        ),
        (
            "test without value against a missing member succeeds",
            json!([{"op": "test", "path": "/metadata/labels/missing"}]),
            json!({"app": "web"}),
        ),
        (
            "a path without a leading slash ignores its first token",
            json!([{"op": "add", "path": "metadata/labels", "value": {"z": "1"}}]),
            json!({"app": "web"}),
        ),
    ];
    for (name, patch, want_labels) in cases {
        let got = run(doc.clone(), patch).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(got["metadata"]["labels"], want_labels, "{name}");
    }
    // The no-leading-slash case added a top-level "labels" member.
    let got = run(
        doc.clone(),
        json!([{"op": "add", "path": "metadata/labels", "value": 1}]),
    );
    assert_eq!(got.map(|v| v["labels"].clone()), Ok(json!(1)));
}

#[test]
fn array_operations() {
    let doc = json!({"l": ["a", "b", "c"]});
    let cases: Vec<(&str, Value, Value)> = vec![
        (
            "insert in the middle",
            json!([{"op": "add", "path": "/l/1", "value": "x"}]),
            json!(["a", "x", "b", "c"]),
        ),
        (
            "insert at the end index",
            json!([{"op": "add", "path": "/l/3", "value": "x"}]),
            json!(["a", "b", "c", "x"]),
        ),
        (
            "append with -",
            json!([{"op": "add", "path": "/l/-", "value": "x"}]),
            json!(["a", "b", "c", "x"]),
        ),
        (
            "negative add index counts from the end",
            json!([{"op": "add", "path": "/l/-1", "value": "x"}]),
            json!(["a", "b", "c", "x"]),
        ),
        (
            "most negative add index is the front",
            json!([{"op": "add", "path": "/l/-4", "value": "x"}]),
            json!(["x", "a", "b", "c"]),
        ),
        (
            "leading zeros and plus sign parse like Atoi",
            json!([{"op": "add", "path": "/l/+01", "value": "x"}]),
            json!(["a", "x", "b", "c"]),
        ),
        (
            "remove an element",
            json!([{"op": "remove", "path": "/l/0"}]),
            json!(["b", "c"]),
        ),
        (
            "remove the last element by -1",
            json!([{"op": "remove", "path": "/l/-1"}]),
            json!(["a", "b"]),
        ),
        (
            "replace an element",
            json!([{"op": "replace", "path": "/l/2", "value": "z"}]),
            json!(["a", "b", "z"]),
        ),
        (
            "move within the array",
            json!([{"op": "move", "from": "/l/0", "path": "/l/-"}]),
            json!(["b", "c", "a"]),
        ),
        (
            "copy an element",
            json!([{"op": "copy", "from": "/l/1", "path": "/l/0"}]),
            json!(["b", "a", "b", "c"]),
        ),
        (
            "test an element",
            json!([{"op": "test", "path": "/l/1", "value": "b"}]),
            json!(["a", "b", "c"]),
        ),
    ];
    for (name, patch, want) in cases {
        let got = run(doc.clone(), patch).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(got["l"], want, "{name}");
    }
}

#[test]
fn whole_document_operations() {
    let doc = json!({"a": 1});
    assert_eq!(
        run(
            doc.clone(),
            json!([{"op": "replace", "path": "", "value": {"b": 2}}])
        ),
        Ok(json!({"b": 2}))
    );
    assert_eq!(
        run(
            doc.clone(),
            json!([{"op": "test", "path": "", "value": {"a": 1}}])
        ),
        Ok(doc.clone())
    );
    assert_eq!(
        run(
            doc.clone(),
            json!([{"op": "test", "path": "", "value": {"a": 2}}])
        ),
        Err("testing value  failed: test failed".to_string())
    );
    assert_eq!(
        run(
            doc.clone(),
            json!([{"op": "replace", "path": "", "value": 5}])
        ),
        Err("replace operation value must be object or array".to_string())
    );
    assert_eq!(
        run(doc.clone(), json!([{"op": "add", "path": "", "value": {}}])),
        Err("add operation does not apply: doc is missing path: \"\": missing value".to_string())
    );
    // "/" addresses the member named "".
    assert_eq!(
        run(doc.clone(), json!([{"op": "add", "path": "/", "value": 3}])),
        Ok(json!({"a": 1, "": 3}))
    );
    // A top-level array document works too.
    assert_eq!(
        run(json!([1]), json!([{"op": "add", "path": "/0", "value": 0}])),
        Ok(json!([0, 1]))
    );
}

#[test]
fn failures_carry_upstream_messages() {
    let doc =
        json!({"metadata": {"name": "web", "labels": {"app": "web"}, "nil": null}, "l": [1, 2]});
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "add below a missing parent",
            json!([{"op": "add", "path": "/spec/template/x", "value": 1}]),
            "add operation does not apply: doc is missing path: \"/spec/template/x\": missing value",
        ),
        (
            "add below a null member",
            json!([{"op": "add", "path": "/metadata/nil/x", "value": 1}]),
            "add operation does not apply: doc is missing path: \"/metadata/nil/x\": missing value",
        ),
        (
            "add below a string",
            json!([{"op": "add", "path": "/metadata/name/x", "value": 1}]),
            "add operation does not apply: doc is missing path: \"/metadata/name/x\": missing value",
        ),
        (
            "add past the end of an array",
            json!([{"op": "add", "path": "/l/3", "value": 1}]),
            "error in add for path: '/l/3': Unable to access invalid index: 3: invalid index referenced",
        ),
        (
            "add with a non-numeric index",
            json!([{"op": "add", "path": "/l/x", "value": 1}]),
            "error in add for path: '/l/x': value was not a proper array index: 'x': strconv.Atoi: parsing \"x\": invalid syntax",
        ),
        (
            "add with a huge index",
            json!([{"op": "add", "path": "/l/99999999999999999999", "value": 1}]),
            "error in add for path: '/l/99999999999999999999': value was not a proper array index: '99999999999999999999': strconv.Atoi: parsing \"99999999999999999999\": value out of range",
        ),
        (
            "remove a missing member",
            json!([{"op": "remove", "path": "/metadata/labels/nope"}]),
            "error in remove for path: '/metadata/labels/nope': Unable to remove nonexistent key: nope: missing value",
        ),
        (
            "remove below a missing parent",
            json!([{"op": "remove", "path": "/spec/x"}]),
            "remove operation does not apply: doc is missing path: \"/spec/x\": missing value",
        ),
        (
            "remove out of range",
            json!([{"op": "remove", "path": "/l/2"}]),
            "error in remove for path: '/l/2': Unable to access invalid index: 2: invalid index referenced",
        ),
        (
            "remove with a too negative index",
            json!([{"op": "remove", "path": "/l/-3"}]),
            "error in remove for path: '/l/-3': Unable to access invalid index: -3: invalid index referenced",
        ),
        (
            "replace below a missing parent",
            json!([{"op": "replace", "path": "/spec/replicas", "value": 1}]),
            "replace operation does not apply: doc is missing path: /spec/replicas: missing value",
        ),
        (
            "replace out of range",
            json!([{"op": "replace", "path": "/l/5", "value": 1}]),
            "replace operation does not apply: doc is missing key: /l/5: missing value",
        ),
        (
            "failing test",
            json!([{"op": "test", "path": "/metadata/name", "value": "api"}]),
            "testing value /metadata/name failed: test failed",
        ),
        (
            "test of an existing member with null",
            json!([{"op": "test", "path": "/metadata/name", "value": null}]),
            "testing value /metadata/name failed: test failed",
        ),
        (
            "test on a missing parent",
            json!([{"op": "test", "path": "/spec/x", "value": 1}]),
            "test operation does not apply: is missing path: /spec/x: missing value",
        ),
        (
            "test out of range",
            json!([{"op": "test", "path": "/l/9", "value": 1}]),
            "error in test for path: '/l/9': Unable to access invalid index: 9: invalid index referenced",
        ),
        (
            "test numbers are not equal across int and float",
            json!([{"op": "test", "path": "/l/0", "value": 1.0}]),
            "testing value /l/0 failed: test failed",
        ),
        (
            "move from a missing member",
            json!([{"op": "move", "from": "/metadata/nope", "path": "/x"}]),
            "error in move for path: 'nope': Unable to remove nonexistent key: nope: missing value",
        ),
        (
            "move from a missing parent",
            json!([{"op": "move", "from": "/a/b", "path": "/x"}]),
            "move operation does not apply: doc is missing from path: /a/b: missing value",
        ),
        (
            "move into itself",
            json!([{"op": "move", "from": "/metadata", "path": "/metadata/labels/x"}]),
            "move operation does not apply: doc is missing destination path: /metadata/labels/x: missing value",
        ),
        (
            "move without from",
            json!([{"op": "move", "path": "/x"}]),
            "move operation failed to decode from: operation, missing from field: missing value",
        ),
        (
            "copy to a missing parent",
            json!([{"op": "copy", "from": "/metadata/name", "path": "/a/b"}]),
            "copy operation does not apply: doc is missing destination path: /a/b: missing value",
        ),
        (
            "add without path",
            json!([{"op": "add", "value": 1}]),
            "add operation failed to decode path: missing value",
        ),
        (
            "replace with a non-string path",
            json!([{"op": "replace", "path": 5, "value": 1}]),
            "replace operation failed to decode path: json: cannot unmarshal number into Go value of type string",
        ),
        (
            "unknown op",
            json!([{"op": "merge", "path": "/a"}]),
            "Unexpected kind: merge",
        ),
        (
            "missing op",
            json!([{"path": "/a"}]),
            "Unexpected kind: unknown",
        ),
        (
            "non-string op",
            json!([{"op": 1, "path": "/a"}]),
            "Unexpected kind: unknown",
        ),
        ("null operation", json!([null]), "Unexpected kind: unknown"),
    ];
    for (name, patch, want) in cases {
        let err = json_patch(&doc, &patch).expect_err(name);
        assert_eq!(err.to_string(), want, "{name}");
        assert_eq!(err.status_code(), 422, "{name}");
    }
}

#[test]
fn failing_operation_reports_its_index_and_leaves_nothing_applied() {
    let doc = json!({"a": 1});
    let patch = json!([
        {"op": "add", "path": "/b", "value": 2},
        {"op": "test", "path": "/a", "value": 2}
    ]);
    match json_patch(&doc, &patch) {
        Err(PatchError::JsonPatchOperation { index, op, .. }) => {
            assert_eq!((index, op.as_str()), (1, "test"));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(doc, json!({"a": 1}));
}

#[test]
fn malformed_patches_are_bad_requests() {
    let doc = json!({"a": 1});
    for (patch, want) in [
        (
            json!({"op": "add"}),
            "json: cannot unmarshal object into Go value of type jsonpatch.Patch",
        ),
        (
            json!("x"),
            "json: cannot unmarshal string into Go value of type jsonpatch.Patch",
        ),
        (
            json!([1]),
            "json: cannot unmarshal number into Go value of type jsonpatch.Operation",
        ),
        (
            json!([[]]),
            "json: cannot unmarshal array into Go value of type jsonpatch.Operation",
        ),
    ] {
        let err = json_patch(&doc, &patch).expect_err(want);
        assert_eq!(err.to_string(), want);
        assert_eq!(err.status_code(), 400);
    }
    // null and [] are empty patches.
    assert_eq!(json_patch(&doc, &Value::Null), Ok(doc.clone()));
    assert_eq!(json_patch(&doc, &json!([])), Ok(doc.clone()));
}

#[test]
fn limits() {
    let doc = json!({"a": "0123456789"});
    let ops: Vec<Value> = (0..10_001)
        .map(|_| json!({"op": "test", "path": "/a", "value": "0123456789"}))
        .collect();
    let err = json_patch(&doc, &Value::Array(ops)).expect_err("too many");
    assert_eq!(
        err,
        PatchError::TooManyOperations {
            max: 10_000,
            got: 10_001
        }
    );
    assert_eq!(err.status_code(), 413);
    assert_eq!(
        err.to_string(),
        "The allowed maximum operations in a JSON patch is 10000, got 10001"
    );

    // Each copy of "a" adds 12 bytes ("0123456789" with quotes); the third exceeds 30.
    let limits = JsonPatchLimits {
        max_operations: 10,
        max_copy_bytes: 30,
    };
    let copy = |to: &str| json!({"op": "copy", "from": "/a", "path": to});
    let two = json!([copy("/b"), copy("/c")]);
    assert!(json_patch_with_limits(&doc, &two, &limits).is_ok());
    let three = json!([copy("/b"), copy("/c"), copy("/d")]);
    assert_eq!(
        json_patch_with_limits(&doc, &three, &limits).map_err(|e| e.to_string()),
        Err("Unable to complete the copy, the accumulated size increase of copy is 36, exceeding the limit 30".to_string())
    );
    // Doubling an array by copying it into itself stops at the default 3 MiB budget: copy i
    // duplicates about 1 KiB * 2^i, so the 12th copy (index 11) crosses it.
    let doc = json!({"l": ["y".repeat(1024)]});
    let ops: Vec<Value> = (0..20)
        .map(|_| json!({"op": "copy", "from": "/l", "path": "/l/-"}))
        .collect();
    match json_patch(&doc, &Value::Array(ops)) {
        Err(PatchError::JsonPatchOperation { index, op, message }) => {
            assert_eq!((index, op.as_str()), (11, "copy"), "{message}");
            assert!(
                message.ends_with("exceeding the limit 3145728"),
                "{message}"
            );
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn original_must_be_a_container() {
    let err = json_patch(&json!("x"), &json!([])).expect_err("scalar original");
    assert!(matches!(err, PatchError::InvalidOriginal { .. }), "{err:?}");
}

#[test]
fn odd_inputs_never_panic() {
    let docs = [
        json!({}),
        json!([]),
        json!({"a": [null, {"b": []}], "": {"": 1}}),
        json!([[1], {"x": null}]),
    ];
    let paths = [
        "",
        "/",
        "//",
        "/a",
        "/a/0",
        "/a/-",
        "/a/-0",
        "/a/1/b",
        "/a/1/b/-",
        "/a/-1/b/0",
        "/a/00",
        "/a/+",
        "/a/-99999999999999999999",
        "/a/9223372036854775807",
        "/a/-9223372036854775808",
        "~",
        "/~",
        "/~2",
        "/0",
        "/0/0",
        "/-1/-1",
        "/1/x",
    ];
    let values = [
        Value::Null,
        json!(1),
        json!("s"),
        json!([]),
        json!({"k": null}),
    ];
    for doc in &docs {
        for op in ["add", "remove", "replace", "move", "copy", "test"] {
            for path in paths {
                for from in paths {
                    for value in &values {
                        let patch = json!([{"op": op, "path": path, "from": from, "value": value}]);
                        let _ = json_patch(doc, &patch);
                    }
                }
            }
        }
    }
    // Spot-check a couple of the odd ones against their expected outcomes.
    assert_eq!(
        json_patch(&json!({"a": [1]}), &json!([{"op": "add", "path": "/a/-9223372036854775808", "value": 0}]))
            .map_err(|e| e.to_string()),
        Err("error in add for path: '/a/-9223372036854775808': Unable to access invalid index: -9223372036854775808: invalid index referenced".to_string())
    );
    assert_eq!(
        json_patch(&json!({"~2": 1}), &json!([{"op": "remove", "path": "/~2"}])),
        Ok(json!({}))
    );
}
