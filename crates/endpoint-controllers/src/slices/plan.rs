//! Which slices to create, update and delete so a Service's slices hold exactly the wanted
//! endpoints (upstream's `Reconciler.reconcileByAddressType`, `reconcileByPortMapping` and
//! `finalize`). Pure: the caller performs the writes.
//!
//! The placement minimises writes rather than packing perfectly:
//! 1. Each existing slice keeps the endpoints still wanted (updated in place when their
//!    conditions, node or zone changed); a slice left empty is deleted.
//! 2. Slices that must be written anyway are filled up first, fullest first.
//! 3. Remaining endpoints go into the unchanged slice that they fill closest to the cap (only
//!    when fewer than a whole slice remain), otherwise into new slices.
//! 4. A slice about to be deleted is reused (updated) instead of creating a new one.
//!
//! A Service with no endpoints of an address type keeps one empty "placeholder" slice, as
//! upstream, so consumers can tell "no endpoints" from "not processed yet".

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointPort, EndpointSlice};

use super::desired::{
    self, EndpointKey, Group, PortsKey, endpoint_key, new_slice, owned_by, ports_key,
    same_beyond_key, slice_labels,
};

/// The writes one sync makes.
#[derive(Debug, Default)]
pub struct Plan {
    pub create: Vec<EndpointSlice>,
    pub update: Vec<EndpointSlice>,
    pub delete: Vec<EndpointSlice>,
}

impl Plan {
    fn extend(&mut self, other: Plan) {
        self.create.extend(other.create);
        self.update.extend(other.update);
        self.delete.extend(other.delete);
    }

    pub fn is_empty(&self) -> bool {
        self.create.is_empty() && self.update.is_empty() && self.delete.is_empty()
    }
}

fn name(s: &EndpointSlice) -> String {
    s.metadata.name.clone().unwrap_or_default()
}

/// The plan for all of `svc`'s slices: per address type it wants, and deletion of slices of
/// address types it no longer has. `wanted` gives the desired groups per address type.
pub fn plan_service(
    svc: &Service,
    existing: &[Arc<EndpointSlice>],
    mut wanted: BTreeMap<&'static str, BTreeMap<PortsKey, Group>>,
    max: usize,
) -> Plan {
    let types = desired::address_types(svc);
    let mut plan = Plan::default();
    let mut by_type: BTreeMap<&str, Vec<&EndpointSlice>> = BTreeMap::new();
    for s in existing {
        if types.contains(s.address_type.as_str()) {
            by_type.entry(s.address_type.as_str()).or_default().push(s);
        } else {
            plan.delete.push(s.as_ref().clone());
        }
    }
    for t in types {
        let groups = wanted.remove(t).unwrap_or_default();
        let slices = by_type.remove(t).unwrap_or_default();
        plan.extend(plan_address_type(svc, t, &slices, groups, max));
    }
    plan
}

/// The plan for one address type.
pub fn plan_address_type(
    svc: &Service,
    address_type: &str,
    existing: &[&EndpointSlice],
    groups: BTreeMap<PortsKey, Group>,
    max: usize,
) -> Plan {
    let mut plan = Plan::default();
    let mut existing_by_ports: BTreeMap<PortsKey, Vec<&EndpointSlice>> = BTreeMap::new();
    for s in existing {
        if owned_by(s, svc) {
            existing_by_ports
                .entry(ports_key(s.ports.as_deref()))
                .or_default()
                .push(s);
        } else {
            // A slice of an older Service of the same name, left for the garbage collector.
            plan.delete.push((*s).clone());
        }
    }
    let wanted_keys: BTreeSet<PortsKey> = groups.keys().cloned().collect();
    for (key, group) in groups {
        let slices = existing_by_ports.get(&key).cloned().unwrap_or_default();
        plan.extend(plan_port_group(
            svc,
            address_type,
            &slices,
            group.endpoints,
            &group.ports,
            max,
        ));
    }
    for (key, slices) in existing_by_ports {
        if !wanted_keys.contains(&key) {
            plan.delete.extend(slices.into_iter().cloned());
        }
    }
    if existing.len() == plan.delete.len() && plan.create.is_empty() {
        let placeholder = new_slice(svc, Vec::new(), address_type);
        if plan.delete.len() == 1 && same_placeholder(&plan.delete[0], &placeholder) {
            // The one slice that would go is already the placeholder: keep it.
            plan.delete.clear();
        } else {
            plan.create.push(placeholder);
        }
    }
    reuse_deleted(svc, &mut plan);
    plan
}

/// Whether `s` is equivalent to the placeholder `p` (no endpoints, no ports, same labels,
/// owners and address type).
fn same_placeholder(s: &EndpointSlice, p: &EndpointSlice) -> bool {
    s.metadata.namespace == p.metadata.namespace
        && s.metadata.labels.clone().unwrap_or_default()
            == p.metadata.labels.clone().unwrap_or_default()
        && s.metadata.owner_references.clone().unwrap_or_default()
            == p.metadata.owner_references.clone().unwrap_or_default()
        && s.address_type == p.address_type
        && s.endpoints.is_empty()
        && s.ports.as_ref().is_none_or(Vec::is_empty)
}

/// Turns creations into updates of slices that would be deleted (upstream's `finalize`):
/// one write instead of two, and no churn of names. Only slices of this Service and address
/// type are reused, never one an older Service of the same name left behind.
fn reuse_deleted(svc: &Service, plan: &mut Plan) {
    let mut i = 0;
    while i < plan.delete.len() {
        let Some(new) = plan.create.last() else {
            break;
        };
        let old = &plan.delete[i];
        if old.address_type == new.address_type && owned_by(old, svc) {
            let old = plan.delete.remove(i);
            let Some(mut new) = plan.create.pop() else {
                break;
            };
            new.metadata.name = old.metadata.name;
            new.metadata.resource_version = old.metadata.resource_version;
            new.metadata.generate_name = old.metadata.generate_name;
            plan.update.push(new);
        } else {
            i += 1;
        }
    }
}

/// The plan for the slices of one port set (upstream's `reconcileByPortMapping`).
fn plan_port_group(
    svc: &Service,
    address_type: &str,
    existing: &[&EndpointSlice],
    mut wanted: BTreeMap<EndpointKey, Endpoint>,
    ports: &[EndpointPort],
    max: usize,
) -> Plan {
    let mut by_name: BTreeMap<String, EndpointSlice> = BTreeMap::new();
    let mut unchanged: BTreeSet<String> = BTreeSet::new();
    let mut to_update: BTreeSet<String> = BTreeSet::new();
    let mut to_delete: BTreeSet<String> = BTreeSet::new();

    // 1. Keep what is still wanted where it is.
    for s in existing {
        let n = name(s);
        let mut kept = Vec::with_capacity(s.endpoints.len());
        let mut changed = false;
        for ep in &s.endpoints {
            if let Some(want) = wanted.remove(&endpoint_key(ep)) {
                changed |= !same_beyond_key(&want, ep);
                kept.push(want);
            }
        }
        let (labels, labels_changed) = slice_labels(s.metadata.labels.as_ref(), svc);
        if changed || kept.len() != s.endpoints.len() {
            if kept.is_empty() {
                to_delete.insert(n.clone());
                by_name.insert(n, (*s).clone());
            } else {
                let mut copy = (*s).clone();
                copy.endpoints = kept;
                copy.metadata.labels = Some(labels);
                to_update.insert(n.clone());
                by_name.insert(n, copy);
            }
        } else if labels_changed {
            let mut copy = (*s).clone();
            copy.metadata.labels = Some(labels);
            to_update.insert(n.clone());
            by_name.insert(n, copy);
        } else {
            unchanged.insert(n.clone());
            by_name.insert(n, (*s).clone());
        }
    }

    // 2. Fill the slices written anyway, fullest first.
    if !wanted.is_empty() && !to_update.is_empty() {
        let mut order: Vec<&String> = to_update.iter().collect();
        order.sort_by_key(|n| std::cmp::Reverse(by_name.get(*n).map_or(0, |s| s.endpoints.len())));
        for n in order {
            if let Some(s) = by_name.get_mut(n) {
                fill(s, &mut wanted, max);
            }
        }
    }

    // 3. The rest: into the unchanged slice they fit best, else new slices.
    let mut create = Vec::new();
    while !wanted.is_empty() {
        let reuse = if wanted.len() < max {
            closest_fit(
                unchanged.iter().filter_map(|n| by_name.get(n)),
                wanted.len(),
                max,
            )
        } else {
            None
        };
        let mut s = match reuse {
            Some(n) => by_name
                .get(&n)
                .cloned()
                .unwrap_or_else(|| new_slice(svc, ports.to_vec(), address_type)),
            None => new_slice(svc, ports.to_vec(), address_type),
        };
        fill(&mut s, &mut wanted, max);
        match s.metadata.name.clone() {
            Some(n) => {
                unchanged.remove(&n);
                to_update.insert(n.clone());
                by_name.insert(n, s);
            }
            None => create.push(s),
        }
    }

    let pick = |names: &BTreeSet<String>| -> Vec<EndpointSlice> {
        names
            .iter()
            .filter_map(|n| by_name.get(n).cloned())
            .collect()
    };
    Plan {
        update: pick(&to_update),
        delete: pick(&to_delete),
        create,
    }
}

fn fill(s: &mut EndpointSlice, wanted: &mut BTreeMap<EndpointKey, Endpoint>, max: usize) {
    while s.endpoints.len() < max {
        let Some((_, ep)) = wanted.pop_first() else {
            break;
        };
        s.endpoints.push(ep);
    }
}

/// The slice that `n` more endpoints fill closest to `max` without exceeding it (upstream's
/// `getSliceToFill`).
fn closest_fit<'a>(
    slices: impl Iterator<Item = &'a EndpointSlice>,
    n: usize,
    max: usize,
) -> Option<String> {
    let mut best: Option<(usize, String)> = None;
    for s in slices {
        let Some(room) = max.checked_sub(n + s.endpoints.len()) else {
            continue;
        };
        if room < best.as_ref().map_or(max, |b| b.0) {
            best = Some((room, name(s)));
            if room == 0 {
                break;
            }
        }
    }
    best.map(|b| b.1)
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
