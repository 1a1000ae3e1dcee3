//! Table-driven tests of each strategic-merge-patch rule and directive, on real `k8s-openapi`
//! types (so the patch metadata comes from the schema walk) and on the untyped index.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node, Pod, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use schemars::JsonSchema;
use serde_json::{Value, json};

use super::*;
use crate::error::PatchError;

/// Expected outcome: the patched document, or (HTTP status, exact message).
type Want = Result<Value, (u16, &'static str)>;

fn check<T: JsonSchema + 'static>(cases: Vec<(&str, Value, Value, Want)>) {
    for (name, original, patch, want) in cases {
        let got = strategic_merge_patch::<T>(&original, &patch)
            .map_err(|e| (e.status_code(), e.to_string()));
        let want = want.map_err(|(code, message)| (code, message.to_string()));
        assert_eq!(got, want, "case: {name}");
    }
}

fn untyped(original: Value, patch: Value) -> Result<Value, PatchError> {
    strategic_merge_patch_with(&SchemaIndex::untyped(), &original, &patch)
}

#[test]
fn maps_and_nulls() {
    let labelled = json!({"metadata": {"name": "p", "labels": {"a": "1", "b": "2"}}});
    check::<Pod>(vec![
        (
            "scalars replace, null deletes, new keys are added",
            labelled.clone(),
            json!({"metadata": {"labels": {"a": "x", "b": null, "c": "3"}}}),
            Ok(json!({"metadata": {"name": "p", "labels": {"a": "x", "c": "3"}}})),
        ),
        (
            "null for a missing key is ignored",
            labelled.clone(),
            json!({"metadata": {"annotations": null}}),
            Ok(labelled.clone()),
        ),
        (
            "a new map value loses its null members",
            labelled.clone(),
            json!({"metadata": {"annotations": {"k": "v", "gone": null}}}),
            Ok(
                json!({"metadata": {"name": "p", "labels": {"a": "1", "b": "2"}, "annotations": {"k": "v"}}}),
            ),
        ),
        (
            "$patch: replace replaces a map",
            labelled.clone(),
            json!({"metadata": {"labels": {"$patch": "replace", "z": "1"}}}),
            Ok(json!({"metadata": {"name": "p", "labels": {"z": "1"}}})),
        ),
        (
            "$patch: delete empties a map",
            labelled.clone(),
            json!({"metadata": {"labels": {"$patch": "delete"}}}),
            Ok(json!({"metadata": {"name": "p", "labels": {}}})),
        ),
        (
            "$patch: merge in a map is rejected",
            labelled.clone(),
            json!({"metadata": {"labels": {"$patch": "merge"}}}),
            Err((
                500,
                "metadata.labels: unknown patch type: merge in map: map[$patch:merge]",
            )),
        ),
        (
            "$patch with a non-string value is rejected",
            labelled.clone(),
            json!({"metadata": {"labels": {"$patch": 1, "a": "b"}}}),
            Err((
                500,
                "metadata.labels: unknown patch type: 1 in map: map[$patch:1 a:b]",
            )),
        ),
        (
            "$patch: replace on a map the object lacks sets the map",
            labelled.clone(),
            json!({"spec": {"nodeSelector": {"$patch": "replace", "disk": "ssd"}}}),
            Ok(
                json!({"metadata": {"name": "p", "labels": {"a": "1", "b": "2"}}, "spec": {"nodeSelector": {"disk": "ssd"}}}),
            ),
        ),
        (
            "$patch: delete on a map the object lacks adds nothing",
            labelled.clone(),
            json!({"spec": {"nodeSelector": {"$patch": "delete"}}}),
            Ok(json!({"metadata": {"name": "p", "labels": {"a": "1", "b": "2"}}, "spec": {}})),
        ),
        (
            "directives inside a new value are dropped",
            json!({"spec": {}}),
            json!({"spec": {"affinity": {"nodeAffinity": {"$retainKeys": ["x"], "$setElementOrder/x": [], "$deleteFromPrimitiveList/y": [1]}}}}),
            Ok(json!({"spec": {"affinity": {"nodeAffinity": {}}}})),
        ),
        (
            "$patch: replace at the top replaces the document",
            labelled.clone(),
            json!({"$patch": "replace", "kind": "Pod"}),
            Ok(json!({"kind": "Pod"})),
        ),
        (
            "a null patch changes nothing",
            labelled.clone(),
            Value::Null,
            Ok(labelled.clone()),
        ),
        (
            "a patch that is not an object is a bad request",
            labelled.clone(),
            json!([{"op": "add"}]),
            Err((
                400,
                "json: cannot unmarshal array into Go value of type map[string]interface {}",
            )),
        ),
        (
            "fields unknown to the schema merge like a merge patch",
            json!({"spec": {"x-unknown": {"a": 1, "b": [1]}}}),
            json!({"spec": {"x-unknown": {"c": 2, "b": [2]}}}),
            Ok(json!({"spec": {"x-unknown": {"a": 1, "b": [2], "c": 2}}})),
        ),
    ]);
}

#[test]
fn kinds_that_differ_replace() {
    let cases = [
        (
            json!({"a": "x"}),
            json!({"a": {"b": null, "c": 1}}),
            json!({"a": {"c": 1}}),
        ),
        (
            json!({"a": {"k": 1}}),
            json!({"a": [{"k": null}]}),
            json!({"a": [{}]}),
        ),
        (json!({"a": [1]}), json!({"a": "s"}), json!({"a": "s"})),
        (json!({"a": 1}), json!({"a": 1.5}), json!({"a": 1.5})),
        (
            json!({"a": null}),
            json!({"a": {"x": null}}),
            json!({"a": {}}),
        ),
        (
            json!({"a": 1}),
            json!({"a": {"$patch": "delete"}}),
            json!({}),
        ),
    ];
    for (original, patch, want) in cases {
        assert_eq!(
            untyped(original.clone(), patch.clone()),
            Ok(want),
            "{original} + {patch}"
        );
    }
    // Untyped lists are atomic, and their elements are taken as sent.
    assert_eq!(
        untyped(
            json!({"l": [{"name": "a"}]}),
            json!({"l": [{"name": "b", "x": null}]})
        ),
        Ok(json!({"l": [{"name": "b", "x": null}]}))
    );
}

#[test]
fn replace_strategy() {
    let pdb = json!({"spec": {"minAvailable": 1, "selector": {"matchLabels": {"a": "1"}, "matchExpressions": [{"key": "k", "operator": "Exists"}]}}});
    check::<PodDisruptionBudget>(vec![(
        "PodDisruptionBudget spec.selector is replaced whole",
        pdb,
        json!({"spec": {"selector": {"matchLabels": {"b": "2"}}}}),
        Ok(json!({"spec": {"minAvailable": 1, "selector": {"matchLabels": {"b": "2"}}}})),
    )]);
}

fn containers(list: Value) -> Value {
    json!({"spec": {"containers": list}})
}

#[test]
fn merge_lists_of_objects() {
    let two = containers(json!([
        {"name": "a", "image": "a:1", "ports": [{"containerPort": 80}], "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
        {"name": "b", "image": "b:1"}
    ]));
    check::<Pod>(vec![
        (
            "an element is updated in place, matched by name",
            two.clone(),
            containers(json!([{"name": "b", "image": "b:2"}])),
            Ok(containers(json!([
                {"name": "a", "image": "a:1", "ports": [{"containerPort": 80}], "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
                {"name": "b", "image": "b:2"}
            ]))),
        ),
        (
            "without $setElementOrder a new element goes first",
            containers(json!([{"name": "a"}])),
            containers(json!([{"name": "c", "image": "c:1"}])),
            Ok(containers(
                json!([{"name": "c", "image": "c:1"}, {"name": "a"}]),
            )),
        ),
        (
            "nested merge lists merge too (env by name, ports by containerPort)",
            two.clone(),
            containers(
                json!([{"name": "a", "env": [{"name": "B", "value": "3"}], "ports": [{"containerPort": 80, "name": "http"}]}]),
            ),
            Ok(containers(json!([
                {"name": "a", "image": "a:1", "ports": [{"containerPort": 80, "name": "http"}], "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "3"}]},
                {"name": "b", "image": "b:1"}
            ]))),
        ),
        (
            "$patch: delete removes the element with that key",
            two.clone(),
            containers(json!([{"$patch": "delete", "name": "a"}])),
            Ok(containers(json!([{"name": "b", "image": "b:1"}]))),
        ),
        (
            "$patch: delete of a missing element changes nothing",
            containers(json!([{"name": "a"}])),
            containers(json!([{"$patch": "delete", "name": "zzz"}])),
            Ok(containers(json!([{"name": "a"}]))),
        ),
        (
            "$patch: replace makes the other elements the list",
            two.clone(),
            containers(json!([{"name": "c"}, {"$patch": "replace"}, {"name": "d"}])),
            Ok(containers(json!([{"name": "c"}, {"name": "d"}]))),
        ),
        (
            "$patch: merge in a list is rejected",
            two.clone(),
            containers(json!([{"$patch": "merge", "name": "a"}])),
            Err((
                500,
                "spec.containers: merging lists cannot yet be specified in the patch",
            )),
        ),
        (
            "an unknown $patch in a list is rejected",
            two.clone(),
            containers(json!([{"$patch": "bogus", "name": "a"}])),
            Err((
                500,
                "spec.containers: unknown patch type: bogus in map: map[$patch:bogus name:a]",
            )),
        ),
        (
            "an element without the merge key is rejected",
            two.clone(),
            containers(json!([{"image": "x"}])),
            Err((
                500,
                "spec.containers: map: map[image:x] does not contain declared merge key: name",
            )),
        ),
        (
            "a deletion without the merge key is rejected",
            two.clone(),
            containers(json!([{"$patch": "delete"}])),
            Err((
                500,
                "spec.containers: map: map[$patch:delete] does not contain declared merge key: name",
            )),
        ),
        (
            "errors inside an element name the element",
            two.clone(),
            containers(json!([{"name": "a", "env": [{"value": "x"}]}])),
            Err((
                500,
                "spec.containers[name=a].env: map: map[value:x] does not contain declared merge key: name",
            )),
        ),
        (
            "elements of different types are rejected",
            containers(json!([{"name": "a"}])),
            containers(json!(["x"])),
            Err((
                500,
                "spec.containers: list element types are not identical: [[map[name:a]] [x]]",
            )),
        ),
        (
            "atomic lists are replaced (tolerations, args)",
            json!({"spec": {"tolerations": [{"key": "a"}], "containers": [{"name": "a", "args": ["1", "2"]}]}}),
            json!({"spec": {"tolerations": [{"key": "b"}], "containers": [{"name": "a", "args": ["3"]}]}}),
            Ok(
                json!({"spec": {"tolerations": [{"key": "b"}], "containers": [{"name": "a", "args": ["3"]}]}}),
            ),
        ),
        (
            "an empty patch list leaves the list alone",
            two.clone(),
            containers(json!([])),
            Ok(two.clone()),
        ),
        (
            "a list the object lacks is set, minus directive elements",
            json!({"spec": {}}),
            json!({"spec": {"initContainers": [{"name": "i"}, {"$patch": "delete", "name": "x"}]}}),
            Ok(json!({"spec": {"initContainers": [{"name": "i"}]}})),
        ),
        (
            "duplicate keys: the first match is updated",
            json!({"spec": {"containers": [{"name": "a", "env": [{"name": "X", "value": "1"}, {"name": "X", "value": "2"}]}]}}),
            json!({"spec": {"containers": [{"name": "a", "env": [{"name": "X", "value": "3"}]}]}}),
            Ok(
                json!({"spec": {"containers": [{"name": "a", "env": [{"name": "X", "value": "3"}, {"name": "X", "value": "2"}]}]}}),
            ),
        ),
    ]);
}

#[test]
fn other_merge_keys() {
    check::<Service>(vec![(
        "Service ports merge by port",
        json!({"spec": {"ports": [{"port": 80, "targetPort": 8080}, {"port": 443}]}}),
        json!({"spec": {"ports": [{"port": 80, "targetPort": 9090}]}}),
        Ok(json!({"spec": {"ports": [{"port": 80, "targetPort": 9090}, {"port": 443}]}})),
    )]);
    check::<Node>(vec![(
        "Node status conditions merge by type",
        json!({"status": {"conditions": [{"type": "Ready", "status": "False"}, {"type": "DiskPressure", "status": "False"}]}}),
        json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}}),
        Ok(
            json!({"status": {"conditions": [{"type": "Ready", "status": "True"}, {"type": "DiskPressure", "status": "False"}]}}),
        ),
    )]);
    check::<Pod>(vec![(
        "ownerReferences merge by uid",
        json!({"metadata": {"ownerReferences": [{"uid": "1", "name": "a"}, {"uid": "2", "name": "b"}]}}),
        json!({"metadata": {"ownerReferences": [{"uid": "2", "controller": true}, {"$patch": "delete", "uid": "1"}]}}),
        Ok(
            json!({"metadata": {"ownerReferences": [{"uid": "2", "name": "b", "controller": true}]}}),
        ),
    )]);
}

fn finalizers(list: Value) -> Value {
    json!({"metadata": {"finalizers": list}})
}

#[test]
fn primitive_merge_lists() {
    check::<Pod>(vec![
        (
            "primitive merge lists are sets",
            finalizers(json!(["a", "b"])),
            finalizers(json!(["b", "c", "c"])),
            Ok(finalizers(json!(["a", "b", "c"]))),
        ),
        (
            "a new value goes first without $setElementOrder",
            finalizers(json!(["a"])),
            finalizers(json!(["z"])),
            Ok(finalizers(json!(["z", "a"]))),
        ),
        (
            "$deleteFromPrimitiveList removes values",
            finalizers(json!(["a", "b", "c", "b"])),
            json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["b", "x"]}}),
            Ok(finalizers(json!(["a", "c"]))),
        ),
        (
            "$deleteFromPrimitiveList on a missing list adds nothing",
            json!({"metadata": {"name": "p"}}),
            json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["b"]}}),
            Ok(json!({"metadata": {"name": "p"}})),
        ),
        (
            "add and delete in one patch",
            finalizers(json!(["a", "b"])),
            json!({"metadata": {"finalizers": ["c"], "$deleteFromPrimitiveList/finalizers": ["a"]}}),
            Ok(finalizers(json!(["c", "b"]))),
        ),
        (
            "$deleteFromPrimitiveList that is not a list is ignored",
            finalizers(json!(["a"])),
            json!({"metadata": {"$deleteFromPrimitiveList/finalizers": "a"}}),
            Ok(finalizers(json!(["a"]))),
        ),
        (
            "a malformed $deleteFromPrimitiveList key is a bad request",
            finalizers(json!(["a"])),
            json!({"metadata": {"$deleteFromPrimitiveListfinalizers": ["a"]}}),
            Err((400, "metadata: invalid patch format of primitive list")),
        ),
        (
            "lists of lists are unprocessable",
            finalizers(json!([])),
            finalizers(json!([["a"]])),
            Err((422, "metadata.finalizers: lists of lists are not supported")),
        ),
        (
            "null elements are rejected",
            finalizers(json!(["a"])),
            finalizers(json!([null])),
            Err((
                500,
                "metadata.finalizers: list element types are not identical: [[a] [<nil>]]",
            )),
        ),
        (
            "integers and floats do not mix (as upstream's Go types)",
            finalizers(json!([1])),
            finalizers(json!([1.5])),
            Err((
                500,
                "metadata.finalizers: list element types are not identical: [[1] [1.5]]",
            )),
        ),
    ]);
    check::<Node>(vec![(
        "Node spec.podCIDRs is a set",
        json!({"spec": {"podCIDRs": ["10.0.0.0/24"]}}),
        json!({"spec": {"podCIDRs": ["10.0.0.0/24", "fd00::/64"]}}),
        Ok(json!({"spec": {"podCIDRs": ["10.0.0.0/24", "fd00::/64"]}})),
    )]);
    // $deleteFromPrimitiveList works on atomic lists too.
    assert_eq!(
        untyped(
            json!({"l": [1, 2, 3]}),
            json!({"$deleteFromPrimitiveList/l": [2]})
        ),
        Ok(json!({"l": [1, 3]}))
    );
    assert_eq!(
        untyped(
            json!({"l": [1, 2]}),
            json!({"$deleteFromPrimitiveList/l": [1.0]})
        ),
        Err(PatchError::Rejected {
            message: "l: list element types are not identical: [[1 2] [1.0]]".to_string()
        })
    );
}

#[test]
fn set_element_order() {
    let named = |names: &[&str]| -> Value { names.iter().map(|n| json!({"name": n})).collect() };
    check::<Pod>(vec![
        (
            "orders the current list",
            containers(named(&["a", "b", "c"])),
            json!({"spec": {"$setElementOrder/containers": named(&["c", "a", "b"])}}),
            Ok(containers(named(&["c", "a", "b"]))),
        ),
        (
            "server-only elements keep their place relative to the ordered ones",
            containers(named(&["c1", "c2", "c9", "c3", "c4"])),
            json!({"spec": {"$setElementOrder/containers": named(&["c2", "c1", "c4", "c3"])}}),
            Ok(containers(named(&["c2", "c1", "c9", "c4", "c3"]))),
        ),
        (
            "a new element lands where the order says",
            containers(named(&["app"])),
            json!({"spec": {"$setElementOrder/containers": named(&["app", "sidecar"]), "containers": [{"name": "sidecar", "image": "busybox"}]}}),
            Ok(containers(
                json!([{"name": "app"}, {"name": "sidecar", "image": "busybox"}]),
            )),
        ),
        (
            "order list naming absent elements is fine",
            containers(named(&["a", "c"])),
            json!({"spec": {"$setElementOrder/containers": named(&["c", "b", "a"])}}),
            Ok(containers(named(&["c", "a"]))),
        ),
        (
            "the list may be missing from the object",
            json!({"spec": {}}),
            json!({"spec": {"$setElementOrder/initContainers": named(&["i2", "i1"]), "initContainers": named(&["i2", "i1"])}}),
            Ok(json!({"spec": {"initContainers": named(&["i2", "i1"])}})),
        ),
        (
            "nothing to order when neither side has the list",
            json!({"spec": {}}),
            json!({"spec": {"$setElementOrder/initContainers": named(&["i"])}}),
            Ok(json!({"spec": {}})),
        ),
        (
            "primitive lists are ordered too",
            finalizers(json!(["a", "b", "c"])),
            json!({"metadata": {"$setElementOrder/finalizers": ["c", "a"]}}),
            Ok(finalizers(json!(["b", "c", "a"]))),
        ),
        (
            "duplicates group at the first position of their key",
            finalizers(json!(["1", "2", "3", "2", "4"])),
            json!({"metadata": {"$setElementOrder/finalizers": ["2", "1", "4", "3", "2"]}}),
            Ok(finalizers(json!(["2", "2", "1", "4", "3"]))),
        ),
        (
            "a patch list out of the directive's order is rejected",
            containers(named(&["a", "b"])),
            json!({"spec": {"$setElementOrder/containers": named(&["a", "b"]), "containers": named(&["b", "a"])}}),
            Err((
                500,
                "spec.containers: The order in patch list:\n[map[name:b] map[name:a]]\n doesn't match $setElementOrder list:\n[map[name:a] map[name:b]]\n",
            )),
        ),
        (
            "the directive must be a list",
            containers(named(&["a"])),
            json!({"spec": {"$setElementOrder/containers": "a"}}),
            Err((
                500,
                "spec: expected a []interface {}, but received a string",
            )),
        ),
        (
            "a malformed directive key is a bad request",
            containers(named(&["a"])),
            json!({"spec": {"$setElementOrderX/containers": []}}),
            Err((400, "spec: invalid patch format of setElementOrder list")),
        ),
        (
            "order entries need the merge key",
            containers(named(&["a"])),
            json!({"spec": {"$setElementOrder/containers": [{"image": "x"}]}}),
            Err((
                500,
                "spec.containers: map: map[image:x] does not contain declared merge key: name",
            )),
        ),
        (
            "lists of objects without a merge key cannot be ordered",
            json!({"spec": {"tolerations": [{"key": "a"}]}}),
            json!({"spec": {"$setElementOrder/tolerations": [{"key": "a"}]}}),
            Err((
                500,
                "spec.tolerations: map: map[key:a] does not contain declared merge key: ",
            )),
        ),
        (
            "the object's field must be a list",
            json!({"spec": {"containers": {"name": "a"}}}),
            json!({"spec": {"$setElementOrder/containers": named(&["a"])}}),
            Err((
                500,
                "spec.containers: expected a []interface {}, but received a map[string]interface {}",
            )),
        ),
    ]);
}

#[test]
fn retain_keys() {
    let rolling = json!({"spec": {"replicas": 1, "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}});
    check::<Deployment>(vec![
        (
            "unlisted keys of the current map are cleared",
            rolling.clone(),
            json!({"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": null, "type": "Recreate"}}}),
            Ok(json!({"spec": {"replicas": 1, "strategy": {"type": "Recreate"}}})),
        ),
        (
            "clearing works without the null too",
            rolling.clone(),
            json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}),
            Ok(json!({"spec": {"replicas": 1, "strategy": {"type": "Recreate"}}})),
        ),
        (
            "listed keys merge as usual",
            rolling.clone(),
            json!({"spec": {"strategy": {"$retainKeys": ["type", "rollingUpdate"], "rollingUpdate": {"maxUnavailable": 0}}}}),
            Ok(
                json!({"spec": {"replicas": 1, "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}}}),
            ),
        ),
        (
            "a patch key missing from the list is a bad request",
            rolling.clone(),
            json!({"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {"maxSurge": 2}}}}),
            Err((400, "spec.strategy: invalid patch format of retainKeys")),
        ),
        (
            "the directive must be a list",
            rolling.clone(),
            json!({"spec": {"strategy": {"$retainKeys": "type"}}}),
            Err((400, "spec.strategy: invalid patch format of retainKeys")),
        ),
        (
            "non-string entries are ignored",
            rolling.clone(),
            json!({"spec": {"strategy": {"$retainKeys": [1, {"x": 1}, "type"]}}}),
            Ok(json!({"spec": {"replicas": 1, "strategy": {"type": "RollingUpdate"}}})),
        ),
    ]);
    // Inside a merge-list element (volumes), matched by name.
    let volumes = json!({"spec": {"volumes": [{"name": "v", "emptyDir": {}}, {"name": "w", "hostPath": {"path": "/"}}]}});
    check::<Pod>(vec![(
        "a volume switches source",
        volumes,
        json!({"spec": {"volumes": [{"$retainKeys": ["configMap", "name"], "configMap": {"name": "cm"}, "emptyDir": null, "name": "v"}]}}),
        Ok(
            json!({"spec": {"volumes": [{"name": "v", "configMap": {"name": "cm"}}, {"name": "w", "hostPath": {"path": "/"}}]}}),
        ),
    )]);
}

#[test]
fn schemas_merge_through_maps_of_objects() {
    // CRD schemas nest JSONSchemaProps in `properties` maps; upstream fails there ("data type
    // is not struct"), here the map values keep their schema.
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaProps;
    let props = |spec: Value| json!({"type": "object", "properties": {"spec": spec}});
    check::<JSONSchemaProps>(vec![(
        "nested property schemas merge, and CEL rules merge by rule",
        props(
            json!({"type": "object", "x-kubernetes-validations": [{"rule": "a", "message": "m"}]}),
        ),
        props(json!({"x-kubernetes-validations": [{"rule": "b"}]})),
        Ok(props(
            json!({"type": "object", "x-kubernetes-validations": [{"rule": "b"}, {"rule": "a", "message": "m"}]}),
        )),
    )]);
}

#[test]
fn original_must_be_an_object() {
    let err = strategic_merge_patch::<Pod>(&json!([1]), &json!({})).expect_err("array original");
    assert!(matches!(err, PatchError::InvalidOriginal { .. }), "{err:?}");
}

#[test]
fn inputs_are_not_modified() {
    let original = containers(json!([{"name": "a"}]));
    let patch = containers(json!([{"name": "a", "image": "x"}]));
    let (o, p) = (original.clone(), patch.clone());
    let _ = strategic_merge_patch::<Pod>(&original, &patch);
    assert_eq!((original, patch), (o, p));
}

#[test]
fn large_lists_merge_quickly() {
    // 20k finalizers against 20k: quadratic code would take minutes here.
    let current: Vec<String> = (0..20_000).map(|i| format!("f{i}")).collect();
    let added: Vec<String> = (10_000..30_000).map(|i| format!("f{i}")).collect();
    let merged =
        strategic_merge_patch::<Pod>(&finalizers(json!(current)), &finalizers(json!(added)))
            .map(|v| v["metadata"]["finalizers"].as_array().map_or(0, Vec::len));
    assert_eq!(merged, Ok(30_000));
}

#[test]
fn odd_inputs_never_panic() {
    // Every pairing of odd originals and odd patches, through the typed Pod index and the
    // untyped one. Only the absence of panics is checked here; the cases above pin outcomes.
    let odd_values = [
        Value::Null,
        json!(1),
        json!(-1.5),
        json!("s"),
        json!(true),
        json!([]),
        json!([null]),
        json!([[1]]),
        json!([1, "a", {"name": "x"}]),
        json!([{"name": "a"}, {"name": "a"}, {"$patch": "delete"}, {"$patch": "replace"}]),
        json!([{"$patch": 5, "name": 1}, {"name": {"deep": [1]}}]),
        json!({}),
        json!({"$patch": "delete"}),
        json!({"$patch": null}),
        json!({"$retainKeys": null}),
        json!({"$retainKeys": [[], {}, null, "name"]}),
        json!({"$setElementOrder/containers": null}),
        json!({"$setElementOrder/containers": [null, 1, [], {"name": null}]}),
        json!({"$setElementOrder/": []}),
        json!({"$deleteFromPrimitiveList/": [1]}),
        json!({"$deleteFromPrimitiveList/finalizers": [{"a": 1}]}),
        json!({"$deleteFromPrimitiveList/containers": [{"name": "a"}]}),
        json!({"name": "a", "containers": [{"name": "a"}], "finalizers": ["x", "x"]}),
    ];
    let fields = [
        "metadata",
        "spec",
        "containers",
        "finalizers",
        "env",
        "labels",
        "volumes",
        "x",
    ];
    let mut documents = Vec::new();
    for field in fields {
        for value in &odd_values {
            documents.push(json!({ field: value }));
            documents.push(json!({"spec": { field: value }}));
            documents.push(json!({"metadata": { field: value }}));
            documents.push(json!({"spec": {"containers": [{"name": "a", field: value}]}}));
        }
    }
    documents.extend(odd_values.iter().cloned());
    let typed = SchemaIndex::shared::<Pod>();
    let untyped = SchemaIndex::untyped();
    let mut outcomes = (0, 0);
    for original in &documents {
        for patch in &documents {
            for index in [&*typed, &untyped] {
                match strategic_merge_patch_with(index, original, patch) {
                    Ok(_) => outcomes.0 += 1,
                    Err(_) => outcomes.1 += 1,
                }
            }
        }
    }
    // Both outcomes occur; the exact split is not the point.
    assert!(outcomes.0 > 0 && outcomes.1 > 0, "{outcomes:?}");
}
