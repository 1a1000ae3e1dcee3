//! Placement tests: the slices written for a given Service, pods and existing slices.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;

use super::*;
use crate::pods::tests::pod;
use crate::slices::desired::{IPV4, IPV6, tests::service, wanted};

fn pods(n: usize, prefix: &str) -> Vec<Arc<Pod>> {
    (0..n)
        .map(|i| {
            Arc::new(pod(
                &format!("{prefix}{i:03}"),
                &format!("10.0.{}.{}", i / 200, i % 200 + 1),
                true,
            ))
        })
        .collect()
}

fn plan_for(svc: &Service, pods: &[Arc<Pod>], existing: &[Arc<EndpointSlice>], max: usize) -> Plan {
    let node = Arc::new(Node::default());
    let mut by_type = BTreeMap::new();
    for t in desired::address_types(svc) {
        by_type.insert(t, wanted(svc, pods, t, |_| Some(node.clone())).groups);
    }
    plan_service(svc, existing, by_type, max)
}

fn publishing() -> Service {
    let mut s = service();
    s.spec.as_mut().unwrap().publish_not_ready_addresses = Some(true);
    s
}

/// Applies a plan as the API would: new slices get names `web-<n>` and resourceVersions.
fn apply(existing: &[Arc<EndpointSlice>], plan: Plan) -> Vec<Arc<EndpointSlice>> {
    let mut by_name: BTreeMap<String, EndpointSlice> = existing
        .iter()
        .map(|s| (name(s), s.as_ref().clone()))
        .collect();
    for s in plan.delete {
        by_name.remove(&name(&s));
    }
    for s in plan.update {
        by_name.insert(name(&s), s);
    }
    let mut next = by_name.len();
    for mut s in plan.create {
        let n = loop {
            let n = format!("web-{next}");
            next += 1;
            if !by_name.contains_key(&n) {
                break n;
            }
        };
        s.metadata.name = Some(n.clone());
        s.metadata.resource_version = Some("1".into());
        by_name.insert(n, s);
    }
    by_name.into_values().map(Arc::new).collect()
}

fn sizes(slices: &[Arc<EndpointSlice>]) -> Vec<usize> {
    let mut v: Vec<usize> = slices.iter().map(|s| s.endpoints.len()).collect();
    v.sort();
    v
}

#[test]
fn a_hundred_and_fifty_endpoints_make_two_slices_then_nothing() {
    let svc = publishing();
    let all = pods(150, "p");
    let plan = plan_for(&svc, &all, &[], 100);
    assert_eq!(plan.create.len(), 2);
    assert!(plan.update.is_empty() && plan.delete.is_empty());
    let first = &plan.create[0];
    assert_eq!(first.metadata.generate_name.as_deref(), Some("web-"));
    assert_eq!(first.address_type, IPV4);
    assert_eq!(first.ports.as_ref().unwrap()[0].port, Some(8080));
    let owner = &first.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.uid.as_str(), owner.controller),
        ("Service", "svc-uid", Some(true))
    );
    let slices = apply(&[], plan);
    assert_eq!(sizes(&slices), [50, 100]);
    // Converged: a second sync writes nothing.
    assert!(plan_for(&svc, &all, &slices, 100).is_empty());
}

#[test]
fn changes_update_in_place_and_new_endpoints_fill_existing_slices() {
    let svc = publishing();
    let all = pods(150, "p");
    let slices = apply(&[], plan_for(&svc, &all, &[], 100));

    // One more pod: goes into the half-full slice, no new slice.
    let mut more = all.clone();
    more.extend(pods(1, "q"));
    let plan = plan_for(&svc, &more, &slices, 100);
    assert!(plan.create.is_empty() && plan.delete.is_empty());
    assert_eq!(plan.update.len(), 1);
    let slices2 = apply(&slices, plan);
    assert_eq!(sizes(&slices2), [51, 100]);

    // A pod removed from the full slice and one added: the removal's slice takes the addition.
    let full = slices2.iter().find(|s| s.endpoints.len() == 100).unwrap();
    let gone = full.endpoints[0]
        .target_ref
        .as_ref()
        .unwrap()
        .name
        .clone()
        .unwrap();
    let mut changed: Vec<Arc<Pod>> = more
        .iter()
        .filter(|p| p.metadata.name.as_deref() != Some(gone.as_str()))
        .cloned()
        .collect();
    changed.extend(pods(1, "r"));
    let plan = plan_for(&svc, &changed, &slices2, 100);
    assert_eq!(plan.update.len(), 1);
    assert_eq!(plan.update[0].metadata.name, full.metadata.name);
    assert!(plan.create.is_empty() && plan.delete.is_empty());

    // Readiness flip of one pod: only its slice is rewritten.
    let mut flipped = more.clone();
    let mut p = flipped[0].as_ref().clone();
    p.status.as_mut().unwrap().conditions.as_mut().unwrap()[0].status = "False".into();
    flipped[0] = Arc::new(p);
    let plain = service(); // not publishing: readiness shows
    let base = apply(&[], plan_for(&plain, &more, &[], 100));
    let plan = plan_for(&plain, &flipped, &base, 100);
    assert_eq!(plan.update.len(), 1);
    assert!(plan.create.is_empty() && plan.delete.is_empty());
}

#[test]
fn emptied_services_keep_one_placeholder() {
    let svc = publishing();
    let slices = apply(&[], plan_for(&svc, &pods(150, "p"), &[], 100));
    // All pods gone: one slice reused as the placeholder, the other deleted.
    let plan = plan_for(&svc, &[], &slices, 100);
    assert_eq!(
        (plan.create.len(), plan.update.len(), plan.delete.len()),
        (0, 1, 1)
    );
    let placeholder = &plan.update[0];
    assert!(placeholder.endpoints.is_empty());
    assert_eq!(placeholder.ports.as_deref(), Some(&[][..]));
    let after = apply(&slices, plan);
    assert_eq!(sizes(&after), [0]);
    // And it stays.
    assert!(plan_for(&svc, &[], &after, 100).is_empty());
    // A Service with no pods from the start gets the placeholder created.
    let plan = plan_for(&svc, &[], &[], 100);
    assert_eq!(plan.create.len(), 1);
    assert!(plan.create[0].endpoints.is_empty());
}

#[test]
fn foreign_and_stale_slices_are_deleted() {
    let svc = publishing();
    let slices = apply(&[], plan_for(&svc, &pods(3, "p"), &[], 100));
    // A slice of an older Service of the same name (another UID) and one of a family the
    // Service no longer has.
    let mut foreign = slices[0].as_ref().clone();
    foreign.metadata.name = Some("web-old".into());
    foreign.metadata.owner_references.as_mut().unwrap()[0].uid = "older".into();
    let mut v6 = slices[0].as_ref().clone();
    v6.metadata.name = Some("web-v6".into());
    v6.address_type = IPV6.into();
    let mut all = slices.clone();
    all.push(Arc::new(foreign));
    all.push(Arc::new(v6));
    let plan = plan_for(&svc, &pods(3, "p"), &all, 100);
    let mut deleted: Vec<String> = plan.delete.iter().map(name).collect();
    deleted.sort();
    assert_eq!(deleted, ["web-old", "web-v6"]);
    assert!(plan.create.is_empty() && plan.update.is_empty());
}

#[test]
fn label_changes_on_the_service_reach_every_slice() {
    let svc = publishing();
    let slices = apply(&[], plan_for(&svc, &pods(150, "p"), &[], 100));
    let mut relabeled = svc.clone();
    relabeled.metadata.labels = Some([("team".to_string(), "b".to_string())].into());
    let plan = plan_for(&relabeled, &pods(150, "p"), &slices, 100);
    assert_eq!(plan.update.len(), 2);
    for s in &plan.update {
        assert_eq!(s.metadata.labels.as_ref().unwrap()["team"], "b");
    }
}

#[test]
fn best_fit_prefers_the_slice_filled_closest_to_the_cap() {
    let mk = |name: &str, n: usize| {
        let mut s = EndpointSlice {
            metadata: Default::default(),
            address_type: IPV4.into(),
            endpoints: Vec::new(),
            ports: None,
        };
        s.metadata.name = Some(name.into());
        s.endpoints = vec![Default::default(); n];
        s
    };
    let slices = [mk("a", 50), mk("b", 90), mk("c", 95)];
    assert_eq!(closest_fit(slices.iter(), 10, 100).as_deref(), Some("b"));
    assert_eq!(closest_fit(slices.iter(), 5, 100).as_deref(), Some("c"));
    assert_eq!(closest_fit(slices.iter(), 60, 100), None);
}
