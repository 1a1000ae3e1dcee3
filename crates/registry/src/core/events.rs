//! core/v1 Events (also the stored form of events.k8s.io/v1 Events, see [`crate::convert`]):
//! upstream's legacy event validation (`legacyValidateEvent`), which every event passes
//! whatever version it was written in.
//!
//! Upstream additionally applies stricter rules to writes made through events.k8s.io/v1
//! (`eventTime` required, deprecated fields unset, series checks, immutable fields on update).
//! The strategy interface does not tell which version a request used, so those are not
//! enforced here.

use std::sync::Arc;

use api::resources::ResourceInfo;
use api::validation::{FieldError, Path};
use k8s_openapi::api::core::v1::Event;

use crate::DynStrategy;
use crate::core::common;
use crate::strategy::{Adapter, NameValidation, Strategy};

const REPORTING_INSTANCE_LIMIT: usize = 128;
const ACTION_LIMIT: usize = 128;
const REASON_LIMIT: usize = 128;
const NOTE_LIMIT: usize = 1024;

pub fn strategy(info: &'static ResourceInfo) -> Arc<dyn DynStrategy> {
    Arc::new(Adapter::new(info, Events))
}

struct Events;

fn len_error(field: &str, limit: usize) -> FieldError {
    FieldError::invalid(field, "", format!("can have at most {limit} characters"))
}

impl Strategy for Events {
    type Object = Event;

    fn name_validation(&self) -> NameValidation {
        // core/v1 events only get the generic path-segment check upstream.
        NameValidation::PathSegment
    }

    fn allow_create_on_update(&self) -> bool {
        true
    }

    fn validate(&self, ev: &Event) -> Vec<FieldError> {
        let mut errs = Vec::new();
        let ns = ev.metadata.namespace.as_deref().unwrap_or("");
        let involved_ns = ev.involved_object.namespace.as_deref().unwrap_or("");
        let ns_error = || {
            FieldError::invalid(
                Path::new("involvedObject").child("namespace"),
                involved_ns,
                "does not match event.namespace",
            )
        };
        if ev.event_time.is_none() {
            if involved_ns.is_empty() {
                if !ns.is_empty() && ns != "default" {
                    errs.push(ns_error());
                }
            } else if ns != involved_ns {
                errs.push(ns_error());
            }
        } else {
            if involved_ns.is_empty() && ns != "default" && ns != "kube-system" {
                errs.push(ns_error());
            }
            let controller = ev.reporting_component.as_deref().unwrap_or("");
            let path = Path::new("reportingComponent");
            if controller.is_empty() {
                errs.push(FieldError::required(&path, ""));
            }
            errs.extend(common::qualified_name(&path, controller));
            let instance = ev.reporting_instance.as_deref().unwrap_or("");
            if instance.is_empty() {
                errs.push(FieldError::required("reportingInstance", ""));
            }
            if instance.len() > REPORTING_INSTANCE_LIMIT {
                errs.push(len_error("reportingInstance", REPORTING_INSTANCE_LIMIT));
            }
            let action = ev.action.as_deref().unwrap_or("");
            if action.is_empty() {
                errs.push(FieldError::required("action", ""));
            }
            if action.len() > ACTION_LIMIT {
                errs.push(len_error("action", ACTION_LIMIT));
            }
            let reason = ev.reason.as_deref().unwrap_or("");
            if reason.is_empty() {
                errs.push(FieldError::required("reason", ""));
            }
            if reason.len() > REASON_LIMIT {
                errs.push(len_error("reason", REASON_LIMIT));
            }
            if ev.message.as_deref().unwrap_or("").len() > NOTE_LIMIT {
                errs.push(len_error("message", NOTE_LIMIT));
            }
        }
        errs.extend(common::dns_subdomain(&Path::new("namespace"), ns));
        errs
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests a failed unwrap is a failed assertion
mod tests {
    use super::*;
    use crate::core::testing::*;
    use serde_json::json;

    fn s() -> Arc<dyn DynStrategy> {
        strategy(api::resources::lookup("", "v1", "events").unwrap())
    }

    #[test]
    fn legacy_events() {
        let ok = json!({"metadata": {"name": "web.17a", "namespace": "default"},
            "involvedObject": {"kind": "Pod", "name": "web", "namespace": "default"},
            "reason": "Started", "message": "m", "type": "Normal", "count": 1});
        assert!(create(&*s(), ok.clone()).is_ok());
        assert_eq!(
            create_err(
                &*s(),
                merged(&ok, json!({"involvedObject": {"namespace": "other"}}))
            ),
            ["involvedObject.namespace: Invalid value: \"other\": does not match event.namespace"]
        );
        assert!(s().allow_create_on_update());
    }

    #[test]
    fn new_style_events_need_reporting_fields() {
        let ev = json!({"metadata": {"name": "e", "namespace": "team"},
            "eventTime": "2024-01-01T00:00:00.000000Z",
            "involvedObject": {"kind": "Node", "name": "n1"},
            "reportingComponent": "Bad Name", "action": "x".repeat(129)});
        assert_eq!(
            create_err(&*s(), ev),
            [
                "involvedObject.namespace: Invalid value: \"\": does not match event.namespace",
                "reportingComponent: Invalid value: \"Bad Name\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
                "reportingInstance: Required value",
                "action: Invalid value: \"\": can have at most 128 characters",
                "reason: Required value",
            ]
        );
    }
}
