//! The pod subresources that are not views of the pod: `binding` (the scheduler assigns a pod
//! to a node) and `eviction` (a delete that respects PodDisruptionBudgets), as upstream's
//! `pkg/registry/core/pod/storage`.

use api::resources::ResourceInfo;
use api::{ApiError, FieldError, Reason};
use serde_json::{Value, json};

use crate::cached::CachedObject;
use crate::object;
use crate::record::WriteRecord;
use crate::storage::{DeleteOptions, ResourceStore};

/// The `Status` both subresources answer a success with.
pub fn created() -> Value {
    json!({ "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201 })
}

fn binding_conflict(name: &str, why: String) -> ApiError {
    ApiError::conflict("", "pods/binding", name, &why)
}

/// Sets or updates the `PodScheduled` condition to True.
fn mark_scheduled(pod: &mut Value) {
    let now = object::now_rfc3339();
    let Value::Object(root) = pod else { return };
    let status = root.entry("status").or_insert_with(|| json!({}));
    let Some(status) = status.as_object_mut() else {
        return;
    };
    let conditions = status.entry("conditions").or_insert_with(|| json!([]));
    let Some(list) = conditions.as_array_mut() else {
        return;
    };
    match list.iter_mut().find(|c| c["type"] == "PodScheduled") {
        Some(c) if c["status"] == "True" => {}
        Some(c) => {
            c["status"] = json!("True");
            c["lastTransitionTime"] = json!(now);
            c["lastProbeTime"] = Value::Null;
            if let Some(m) = c.as_object_mut() {
                m.remove("reason");
                m.remove("message");
            }
        }
        None => list.push(json!({ "type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": now })),
    }
}

/// `POST pods/NAME/binding`: assigns the pod to `target.name`.
pub async fn bind(
    pods: &ResourceStore,
    ns: &str,
    name: &str,
    binding: &Value,
    user: &str,
    dry_run: bool,
) -> Result<Value, ApiError> {
    let invalid = |errs: Vec<FieldError>| ApiError::invalid("", "Binding", name, errs);
    if let Some(k) = binding
        .get("kind")
        .and_then(Value::as_str)
        .filter(|k| !k.is_empty() && *k != "Binding")
    {
        return Err(ApiError::bad_request(format!(
            "the body of a binding request must be a Binding, not {k}"
        )));
    }
    let body_name = object::name(binding);
    if !body_name.is_empty() && body_name != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({name})"
        )));
    }
    let target = binding.get("target").cloned().unwrap_or(Value::Null);
    let node = target
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let mut errs = Vec::new();
    if node.is_empty() {
        errs.push(FieldError::required("target.name", ""));
    }
    if let Some(kind) = target
        .get("kind")
        .and_then(Value::as_str)
        .filter(|k| !k.is_empty() && *k != "Node")
    {
        errs.push(FieldError::not_supported("target.kind", kind, &["Node"]));
    }
    if !errs.is_empty() {
        return Err(invalid(errs));
    }
    let want_uid = object::uid(binding).to_string();
    let want_rv = object::resource_version(binding).to_string();
    let annotations = binding
        .pointer("/metadata/annotations")
        .and_then(Value::as_object)
        .cloned();
    let record = WriteRecord::new(user, "create/binding");
    pods.mutate(ns, name, &record, dry_run, |pod| {
        if !want_uid.is_empty() && object::uid(pod) != want_uid {
            return Err(binding_conflict(name, format!("Precondition failed: UID in precondition: {want_uid}, UID in object meta: {}", object::uid(pod))));
        }
        if !want_rv.is_empty() && object::resource_version(pod) != want_rv {
            return Err(binding_conflict(name, "the object has been modified; please apply your changes to the latest version and try again".into()));
        }
        if object::deletion_timestamp(pod).is_some() {
            return Err(binding_conflict(name, format!("pod {name} is being deleted, cannot be assigned to a host")));
        }
        let current = pod.pointer("/spec/nodeName").and_then(Value::as_str).unwrap_or("");
        if !current.is_empty() {
            return Err(binding_conflict(name, format!("pod {name} is already assigned to node {current:?}")));
        }
        if pod.pointer("/spec/schedulingGates").and_then(Value::as_array).is_some_and(|g| !g.is_empty()) {
            return Err(binding_conflict(name, format!("pod {name} has non-empty .spec.schedulingGates")));
        }
        if let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) {
            spec.insert("nodeName".into(), json!(node));
        }
        if let Some(extra) = &annotations {
            let meta = object::meta_mut(pod);
            let anns = meta.entry("annotations").or_insert_with(|| json!({}));
            if let Some(anns) = anns.as_object_mut() {
                for (k, v) in extra {
                    anns.insert(k.clone(), v.clone());
                }
            }
        }
        mark_scheduled(pod);
        Ok(())
    })
    .await?;
    Ok(created())
}

fn too_many_requests(why: String) -> ApiError {
    let mut e = ApiError::new(
        Reason::TooManyRequests,
        "Cannot evict pod as it would violate the pod's disruption budget.",
    );
    e.causes = vec![api::status::Cause {
        reason: "DisruptionBudget".into(),
        message: why,
        field: String::new(),
    }];
    e
}

fn is_ready(pod: &Value) -> bool {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

/// The one budget (if any) whose selector matches the pod. More than one is an error upstream.
fn budget_for(
    pdbs: &ResourceStore,
    ns: &str,
    pod: &Value,
) -> Result<Option<std::sync::Arc<CachedObject>>, ApiError> {
    let labels: std::collections::BTreeMap<String, String> = pod
        .pointer("/metadata/labels")
        .and_then(|l| serde_json::from_value(l.clone()).ok())
        .unwrap_or_default();
    let (all, _) = pdbs.cache.list(Some(ns), |_| true);
    let mut matching = Vec::new();
    for pdb in all {
        let v = pdb.value();
        let Some(sel) = v.pointer("/spec/selector") else {
            continue;
        };
        let Ok(sel) = serde_json::from_value::<
            k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector,
        >(sel.clone()) else {
            continue;
        };
        // An empty selector matches nothing for budgets (upstream's policy/v1 rule is "all", but
        // a budget without a selector protects nothing the eviction can see).
        if let Ok(s) = api::selector::LabelSelector::from_k8s(&sel)
            && !s.is_everything()
            && s.matches(&labels)
        {
            matching.push(pdb);
        }
    }
    match matching.len() {
        0 => Ok(None),
        1 => Ok(matching.pop()),
        _ => Err(ApiError::internal(
            "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
        )),
    }
}

/// `POST pods/NAME/eviction`: deletes the pod unless that would break its disruption budget.
pub async fn evict(
    pods: &ResourceStore,
    pdbs: &ResourceStore,
    pdb_info: &'static ResourceInfo,
    ns: &str,
    name: &str,
    eviction: &Value,
    mut delete: DeleteOptions,
) -> Result<Value, ApiError> {
    if let Some(k) = eviction
        .get("kind")
        .and_then(Value::as_str)
        .filter(|k| !k.is_empty() && *k != "Eviction")
    {
        return Err(ApiError::bad_request(format!(
            "the body of an eviction request must be an Eviction, not {k}"
        )));
    }
    let body_name = object::name(eviction);
    if !body_name.is_empty() && body_name != name {
        return Err(ApiError::bad_request(format!(
            "name in URL does not match name in Eviction object: {name} != {body_name}"
        )));
    }
    if let Some(opts) = eviction.get("deleteOptions").filter(|o| !o.is_null()) {
        let mut orphan = None;
        delete.apply_body(opts, &mut orphan)?;
        delete = delete.finish(orphan)?;
    }
    let pod = pods.get(ns, name).await?;
    let phase = pod
        .pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or("");
    // Pods that are done, not yet running, or already going away cannot disrupt anything.
    let exempt = matches!(phase, "Succeeded" | "Failed" | "Pending")
        || object::deletion_timestamp(&pod).is_some();
    if !exempt && let Some(pdb) = budget_for(pdbs, ns, &pod)? {
        let pdb_name = pdb.name().to_string();
        let v = pdb.value();
        let generation = v
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        let observed = v
            .pointer("/status/observedGeneration")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        if observed < generation {
            return Err(too_many_requests(format!(
                "The disruption budget {pdb_name} is still being processed by the server."
            )));
        }
        let always_allow = v
            .pointer("/spec/unhealthyPodEvictionPolicy")
            .and_then(Value::as_str)
            == Some("AlwaysAllow");
        // An unready pod under `AlwaysAllow` may go without spending the budget.
        let spends_budget = !always_allow || is_ready(&pod);
        if spends_budget {
            let record = WriteRecord::new(&delete.user, "update/eviction");
            let pod_name = name.to_string();
            pdbs.mutate(ns, &pdb_name, &record, delete.dry_run, |b| {
                let allowed = b.pointer("/status/disruptionsAllowed").and_then(Value::as_i64).unwrap_or(0);
                if allowed <= 0 {
                    let desired = b.pointer("/status/desiredHealthy").and_then(Value::as_i64).unwrap_or(0);
                    let current = b.pointer("/status/currentHealthy").and_then(Value::as_i64).unwrap_or(0);
                    return Err(too_many_requests(format!(
                        "The disruption budget {pdb_name} needs {desired} healthy pods and has {current} currently"
                    )));
                }
                let status = b.get_mut("status").and_then(Value::as_object_mut);
                if let Some(status) = status {
                    status.insert("disruptionsAllowed".into(), json!(allowed - 1));
                    let disrupted = status.entry("disruptedPods").or_insert_with(|| json!({}));
                    if let Some(d) = disrupted.as_object_mut() {
                        d.insert(pod_name.clone(), json!(object::now_rfc3339()));
                    }
                }
                Ok(())
            })
            .await
            .map_err(|e| if e.code == 404 { ApiError::not_found(pdb_info.group, pdb_info.plural, &pdb_name) } else { e })?;
        }
    }
    pods.delete(ns, name, &delete).await?;
    Ok(created())
}
