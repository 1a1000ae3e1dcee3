//! The Endpoints object a Service should have, given the one it has (the write decision of
//! upstream's `syncService`).
//!
//! Labels are the Service's, plus `service.kubernetes.io/headless` for headless Services.
//! Annotations the object already carries are kept; this controller owns two of them: the
//! last-change trigger time (written with every write, never forcing one) and
//! `endpoints.kubernetes.io/over-capacity: truncated` while addresses are cut to
//! [`MAX_CAPACITY`](super::subsets::MAX_CAPACITY).

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{EndpointSubset, Endpoints, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::subsets::{self, is_service_ip_set};
use crate::trigger::LAST_CHANGE_TRIGGER_TIME;

/// Set while addresses were truncated.
pub const OVER_CAPACITY: &str = "endpoints.kubernetes.io/over-capacity";
/// Its value.
pub const TRUNCATED: &str = "truncated";
/// Label of the Endpoints (and EndpointSlices) of headless Services.
pub const HEADLESS_LABEL: &str = "service.kubernetes.io/headless";

/// The labels the Endpoints of `svc` carry.
pub fn labels(svc: &Service) -> BTreeMap<String, String> {
    let mut labels = svc.metadata.labels.clone().unwrap_or_default();
    if is_service_ip_set(svc) {
        labels.remove(HEADLESS_LABEL);
    } else {
        labels.insert(HEADLESS_LABEL.to_owned(), String::new());
    }
    labels
}

/// The object to write for `svc` (`current`: what exists), or `None` when `current` already
/// says everything: same subsets, labels and capacity annotation.
pub fn desired(
    svc: &Service,
    current: Option<&Endpoints>,
    mut subsets: Vec<EndpointSubset>,
    trigger: Option<Timestamp>,
) -> Option<Endpoints> {
    let truncated = subsets::truncate(&mut subsets);
    let labels = labels(svc);
    if let Some(cur) = current {
        let same_subsets = subsets::normalized(cur.subsets.as_deref()) == subsets;
        let same_labels = cur.metadata.labels.clone().unwrap_or_default() == labels;
        let same_capacity = cur
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(OVER_CAPACITY))
            .is_some()
            == truncated;
        if same_subsets && same_labels && same_capacity {
            return None;
        }
    }
    let mut metadata = match current {
        Some(cur) => cur.metadata.clone(),
        None => ObjectMeta {
            name: svc.metadata.name.clone(),
            namespace: svc.metadata.namespace.clone(),
            ..Default::default()
        },
    };
    let mut annotations = metadata.annotations.take().unwrap_or_default();
    match trigger {
        Some(t) => annotations.insert(LAST_CHANGE_TRIGGER_TIME.to_owned(), rfc3339(t)),
        None => annotations.remove(LAST_CHANGE_TRIGGER_TIME),
    };
    if truncated {
        annotations.insert(OVER_CAPACITY.to_owned(), TRUNCATED.to_owned());
    } else {
        annotations.remove(OVER_CAPACITY);
    }
    metadata.annotations = (!annotations.is_empty()).then_some(annotations);
    metadata.labels = (!labels.is_empty()).then_some(labels);
    Some(Endpoints {
        metadata,
        subsets: (!subsets.is_empty()).then_some(subsets),
    })
}

/// RFC 3339 in UTC with nanoseconds as needed (Go's `time.RFC3339Nano`).
pub fn rfc3339(t: Timestamp) -> String {
    t.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::EndpointAddress;
    use k8s_openapi::api::core::v1::ServiceSpec;

    fn svc(cluster_ip: &str, labels: &[(&str, &str)]) -> Service {
        Service {
            metadata: ObjectMeta {
                namespace: Some("ns".into()),
                name: Some("web".into()),
                labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                ..Default::default()
            },
            spec: Some(ServiceSpec {
                cluster_ip: Some(cluster_ip.into()),
                ..Default::default()
            }),
            status: None,
        }
    }

    fn subset(ips: &[&str]) -> Vec<EndpointSubset> {
        vec![EndpointSubset {
            addresses: Some(
                ips.iter()
                    .map(|ip| EndpointAddress {
                        ip: ip.to_string(),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        }]
    }

    #[test]
    fn creates_updates_and_skips() {
        let s = svc("10.43.0.1", &[("team", "a")]);
        let t = "2025-01-02T03:04:05.123456789Z".parse().unwrap();
        let new = desired(&s, None, subset(&["10.0.0.1"]), Some(t)).unwrap();
        assert_eq!(new.metadata.name.as_deref(), Some("web"));
        assert_eq!(new.metadata.labels.as_ref().unwrap()["team"], "a");
        assert_eq!(
            new.metadata.annotations.as_ref().unwrap()[LAST_CHANGE_TRIGGER_TIME],
            "2025-01-02T03:04:05.123456789Z"
        );
        // Written and read back: nothing to do, whatever the trigger time.
        assert!(desired(&s, Some(&new), subset(&["10.0.0.1"]), None).is_none());
        // New address: rewrite, keeping foreign annotations, dropping a stale trigger time.
        let mut cur = new.clone();
        cur.metadata
            .annotations
            .as_mut()
            .unwrap()
            .insert("note".into(), "kept".into());
        let upd = desired(&s, Some(&cur), subset(&["10.0.0.1", "10.0.0.2"]), None).unwrap();
        let ann = upd.metadata.annotations.unwrap();
        assert_eq!(ann.get("note").map(String::as_str), Some("kept"));
        assert!(!ann.contains_key(LAST_CHANGE_TRIGGER_TIME));
        // Label change on the Service: rewrite.
        let relabeled = svc("10.43.0.1", &[("team", "b")]);
        assert!(desired(&relabeled, Some(&new), subset(&["10.0.0.1"]), None).is_some());
    }

    #[test]
    fn headless_label_and_capacity_annotation() {
        let h = svc("None", &[]);
        let new = desired(&h, None, subset(&["10.0.0.1"]), None).unwrap();
        assert_eq!(
            new.metadata
                .labels
                .as_ref()
                .unwrap()
                .get(HEADLESS_LABEL)
                .map(String::as_str),
            Some("")
        );
        assert!(desired(&h, Some(&new), subset(&["10.0.0.1"]), None).is_none());

        let ips: Vec<String> = (0..1200)
            .map(|i| format!("10.1.{}.{}", i / 250, i % 250))
            .collect();
        let refs: Vec<&str> = ips.iter().map(String::as_str).collect();
        let big = desired(&h, None, subset(&refs), None).unwrap();
        assert_eq!(
            big.metadata.annotations.as_ref().unwrap()[OVER_CAPACITY],
            TRUNCATED
        );
        assert_eq!(
            big.subsets.as_ref().unwrap()[0]
                .addresses
                .as_ref()
                .unwrap()
                .len(),
            1000
        );
        // Still too many: nothing new to write.
        assert!(desired(&h, Some(&big), subset(&refs), None).is_none());
        // Back under capacity: the annotation goes.
        let small = desired(&h, Some(&big), subset(&["10.0.0.1"]), None).unwrap();
        assert!(
            !small
                .metadata
                .annotations
                .unwrap_or_default()
                .contains_key(OVER_CAPACITY)
        );
    }
}
