//! events.k8s.io/v1 ↔ core/v1 Events. The two are the same object under different names:
//! `regarding`/`involvedObject`, `note`/`message`, `reportingController`/`reportingComponent`,
//! and the `deprecated*` fields for the old series bookkeeping (`source`, `firstTimestamp`,
//! `lastTimestamp`, `count`). Everything else (`eventTime`, `series`, `action`, `related`,
//! `reportingInstance`, `reason`, `type`, metadata) is shared.

use api::ApiError;
use serde_json::{Map, Value};

use super::{object, rename};

/// (events.k8s.io name, core name) of the renamed fields.
const RENAMES: &[(&str, &str)] = &[
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("reportingController", "reportingComponent"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
];

const SHARED: &[&str] = &[
    "metadata",
    "eventTime",
    "series",
    "action",
    "related",
    "reportingInstance",
    "reason",
    "type",
];

fn convert(obj: Value, api_version: &str, to_core: bool) -> Result<Value, ApiError> {
    let mut src = object(obj, "Event")?;
    let mut out = Map::new();
    out.insert("apiVersion".into(), Value::from(api_version));
    out.insert("kind".into(), Value::from("Event"));
    for field in SHARED {
        if let Some(v) = src.remove(*field) {
            out.insert((*field).to_string(), v);
        }
    }
    for (events, core) in RENAMES {
        if to_core {
            rename(&mut src, events, &mut out, core);
        } else {
            rename(&mut src, core, &mut out, events);
        }
    }
    Ok(Value::Object(out))
}

pub fn events_to_core(obj: Value) -> Result<Value, ApiError> {
    let mut out = convert(obj, "v1", true)?;
    // core/v1 events always have an involved object (a struct upstream).
    if out.get("involvedObject").is_none() {
        out["involvedObject"] = Value::Object(Map::new());
    }
    Ok(out)
}

pub fn core_to_events(obj: Value) -> Result<Value, ApiError> {
    let mut out = convert(obj, "events.k8s.io/v1", false)?;
    if out.get("regarding").is_none() {
        out["regarding"] = Value::Object(Map::new());
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests a failed unwrap is a failed assertion
mod tests {
    use super::*;
    use serde_json::json;

    fn events_v1() -> Value {
        json!({
            "apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "e", "namespace": "default", "resourceVersion": "5"},
            "eventTime": "2024-05-01T10:00:00.000000Z",
            "series": {"count": 3, "lastObservedTime": "2024-05-01T10:05:00.000000Z"},
            "reportingController": "example.com/ctl", "reportingInstance": "ctl-1",
            "action": "Scale", "reason": "Scaled", "type": "Normal", "note": "scaled up",
            "regarding": {"kind": "Deployment", "name": "web", "namespace": "default"},
            "related": {"kind": "ReplicaSet", "name": "web-1"},
            "deprecatedSource": {"component": "c", "host": "h"},
            "deprecatedFirstTimestamp": "2024-05-01T09:00:00Z",
            "deprecatedLastTimestamp": "2024-05-01T09:30:00Z",
            "deprecatedCount": 7,
        })
    }

    #[test]
    fn field_mapping() {
        let core = events_to_core(events_v1()).unwrap();
        assert_eq!(core["apiVersion"], "v1");
        assert_eq!(core["involvedObject"]["name"], "web");
        assert_eq!(core["message"], "scaled up");
        assert_eq!(core["reportingComponent"], "example.com/ctl");
        assert_eq!(core["source"], json!({"component": "c", "host": "h"}));
        assert_eq!(core["firstTimestamp"], "2024-05-01T09:00:00Z");
        assert_eq!(core["lastTimestamp"], "2024-05-01T09:30:00Z");
        assert_eq!(core["count"], 7);
        assert_eq!(core["series"]["count"], 3);
        assert_eq!(core["related"]["kind"], "ReplicaSet");
        assert!(core.get("note").is_none() && core.get("regarding").is_none());
        // The stored form decodes as a core/v1 Event.
        let typed: k8s_openapi::api::core::v1::Event = serde_json::from_value(core).unwrap();
        assert_eq!(typed.reporting_instance.as_deref(), Some("ctl-1"));
    }

    #[test]
    fn round_trips_both_ways() {
        let v = events_v1();
        assert_eq!(
            core_to_events(events_to_core(v.clone()).unwrap()).unwrap(),
            v
        );
        let core = json!({
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": "web.1", "namespace": "default"},
            "involvedObject": {"kind": "Pod", "name": "web", "namespace": "default", "uid": "u"},
            "reason": "Pulled", "message": "pulled image", "type": "Normal",
            "source": {"component": "kubelet", "host": "n1"},
            "firstTimestamp": "2024-05-01T09:00:00Z", "lastTimestamp": "2024-05-01T09:00:00Z", "count": 1,
        });
        let ev = core_to_events(core.clone()).unwrap();
        assert_eq!(ev["regarding"]["name"], "web");
        assert_eq!(ev["deprecatedSource"]["component"], "kubelet");
        assert_eq!(events_to_core(ev).unwrap(), core);
        assert_eq!(events_to_core(json!([])).unwrap_err().code, 400);
    }
}
