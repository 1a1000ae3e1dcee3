//! Events, core/v1 and events.k8s.io/v1: `LAST SEEN TYPE REASON OBJECT MESSAGE`, and, wide,
//! `SUBOBJECT SOURCE FIRST SEEN COUNT NAME`.
//!
//! Both API versions are views of one stored object; upstream prints both from the internal
//! (core-shaped) event, so the events.k8s.io names (`regarding`, `note`, `deprecated*`) are mapped
//! back first. An event in a series reports the series' count and last observation.

use std::sync::LazyLock;

use k8s_openapi::api::core::v1::{Event, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};
use serde::Deserialize;
use serde_json::Value;

use crate::columns::{self, Column, doc};
use crate::table::{Ctx, Printer, Row, TableError, decode, int, s};
use crate::view::Meta;

static COLUMNS: LazyLock<Value> = LazyLock::new(|| {
    columns::to_json([
        Column::string("Last Seen", doc::<Event>("lastTimestamp")),
        Column::string("Type", doc::<Event>("type")),
        Column::string("Reason", doc::<Event>("reason")),
        Column::string("Object", doc::<Event>("involvedObject")),
        Column::string("Subobject", doc::<ObjectReference>("fieldPath")).wide(),
        Column::string("Source", doc::<Event>("source")).wide(),
        Column::string("Message", doc::<Event>("message")),
        Column::string("First Seen", doc::<Event>("firstTimestamp")).wide(),
        Column::string("Count", doc::<Event>("count")).wide(),
        columns::name().wide(),
    ])
});

pub(crate) static CORE_EVENT: Printer = Printer {
    columns: &COLUMNS,
    row: core_row,
};

pub(crate) static EVENTS_V1_EVENT: Printer = Printer {
    columns: &COLUMNS,
    row: events_v1_row,
};

/// A core/v1 Event as the printer reads it.
#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct CoreEventView<'a> {
    #[serde(borrow)]
    metadata: Meta<'a>,
    first_timestamp: Option<Time>,
    last_timestamp: Option<Time>,
    event_time: Option<MicroTime>,
    count: Option<i32>,
    series: Option<SeriesView>,
    #[serde(borrow)]
    involved_object: ReferenceView<'a>,
    #[serde(rename = "type")]
    type_: Option<&'a str>,
    reason: Option<&'a str>,
    message: Option<&'a str>,
    #[serde(borrow)]
    source: SourceView<'a>,
    reporting_component: Option<&'a str>,
    reporting_instance: Option<&'a str>,
}

/// An events.k8s.io/v1 Event as the printer reads it.
#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct EventsV1View<'a> {
    #[serde(borrow)]
    metadata: Meta<'a>,
    deprecated_first_timestamp: Option<Time>,
    deprecated_last_timestamp: Option<Time>,
    event_time: Option<MicroTime>,
    deprecated_count: Option<i32>,
    series: Option<SeriesView>,
    #[serde(borrow)]
    regarding: ReferenceView<'a>,
    #[serde(rename = "type")]
    type_: Option<&'a str>,
    reason: Option<&'a str>,
    note: Option<&'a str>,
    #[serde(borrow)]
    deprecated_source: SourceView<'a>,
    reporting_controller: Option<&'a str>,
    reporting_instance: Option<&'a str>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct SeriesView {
    count: Option<i32>,
    last_observed_time: Option<MicroTime>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct ReferenceView<'a> {
    kind: Option<&'a str>,
    name: Option<&'a str>,
    field_path: Option<&'a str>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct SourceView<'a> {
    component: Option<&'a str>,
    host: Option<&'a str>,
}

/// The fields the printer reads, in the internal (core-shaped) event's terms.
struct View<'a> {
    name: &'a str,
    first_timestamp: Option<Time>,
    last_timestamp: Option<Time>,
    event_time: Option<MicroTime>,
    count: i32,
    series: Option<SeriesView>,
    involved: ReferenceView<'a>,
    type_: &'a str,
    reason: &'a str,
    message: &'a str,
    source: SourceView<'a>,
    reporting_controller: &'a str,
    reporting_instance: &'a str,
}

fn core_row(obj: &Value, ctx: &Ctx) -> Result<Row, TableError> {
    let e: CoreEventView<'_> = decode(obj, "Event")?;
    print(
        View {
            name: e.metadata.name(),
            first_timestamp: e.first_timestamp,
            last_timestamp: e.last_timestamp,
            event_time: e.event_time,
            count: e.count.unwrap_or(0),
            series: e.series,
            involved: e.involved_object,
            type_: e.type_.unwrap_or_default(),
            reason: e.reason.unwrap_or_default(),
            message: e.message.unwrap_or_default(),
            source: e.source,
            reporting_controller: e.reporting_component.unwrap_or_default(),
            reporting_instance: e.reporting_instance.unwrap_or_default(),
        },
        ctx,
    )
}

fn events_v1_row(obj: &Value, ctx: &Ctx) -> Result<Row, TableError> {
    let e: EventsV1View<'_> = decode(obj, "Event")?;
    print(
        View {
            name: e.metadata.name(),
            first_timestamp: e.deprecated_first_timestamp,
            last_timestamp: e.deprecated_last_timestamp,
            event_time: e.event_time,
            count: e.deprecated_count.unwrap_or(0),
            series: e.series,
            involved: e.regarding,
            type_: e.type_.unwrap_or_default(),
            reason: e.reason.unwrap_or_default(),
            message: e.note.unwrap_or_default(),
            source: e.deprecated_source,
            reporting_controller: e.reporting_controller.unwrap_or_default(),
            reporting_instance: e.reporting_instance.unwrap_or_default(),
        },
        ctx,
    )
}

fn first_non_empty<'a>(a: Option<&'a str>, b: &'a str) -> &'a str {
    a.filter(|a| !a.is_empty()).unwrap_or(b)
}

fn print(e: View<'_>, ctx: &Ctx) -> Result<Row, TableError> {
    let first_seen = match &e.first_timestamp {
        Some(t) => ctx.since_ts(t.0),
        None => ctx.since_micro(e.event_time.as_ref()),
    };
    let mut last_seen = match &e.last_timestamp {
        Some(t) => ctx.since_ts(t.0),
        None => first_seen.clone(),
    };
    let count = match &e.series {
        Some(series) => {
            last_seen = ctx.since_micro(series.last_observed_time.as_ref());
            series.count.unwrap_or(0)
        }
        // Singleton events of the new API carry no count.
        None if e.count == 0 => 1,
        None => e.count,
    };
    let kind = e.involved.kind.unwrap_or_default().to_lowercase();
    let target = match e.involved.name {
        Some(n) if !n.is_empty() => format!("{kind}/{n}"),
        _ => kind,
    };
    let component = first_non_empty(e.source.component, e.reporting_controller);
    let instance = first_non_empty(e.source.host, e.reporting_instance);
    let source = if instance.is_empty() {
        component.to_string()
    } else {
        format!("{component}, {instance}")
    };
    Ok(vec![
        s(last_seen),
        s(e.type_),
        s(e.reason),
        s(target),
        s(e.involved.field_path.unwrap_or_default()),
        s(source),
        s(e.message.trim()),
        s(first_seen),
        int(count),
        s(e.name),
    ]
    .into())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::kinds::testutil::{ago, cells, header_line};

    #[test]
    fn event_columns() {
        let expected =
            "LAST SEEN TYPE REASON OBJECT [SUBOBJECT] [SOURCE] MESSAGE [FIRST SEEN] [COUNT] [NAME]";
        assert_eq!(header_line("", "v1", "Event"), expected);
        assert_eq!(header_line("events.k8s.io", "v1", "Event"), expected);
    }

    #[test]
    fn core_event() {
        let e = json!({
            "metadata": {"name": "web-0.17d", "namespace": "default"},
            "involvedObject": {"kind": "Pod", "name": "web-0", "fieldPath": "spec.containers{app}"},
            "reason": "Pulled", "type": "Normal",
            "message": "Successfully pulled image \"nginx\"\n",
            "source": {"component": "kubelet", "host": "node-1"},
            "firstTimestamp": ago(3 * 86400), "lastTimestamp": ago(2 * 86400), "count": 6,
        });
        assert_eq!(
            cells("", "v1", "Event", e),
            json!([
                "2d",
                "Normal",
                "Pulled",
                "pod/web-0",
                "spec.containers{app}",
                "kubelet, node-1",
                "Successfully pulled image \"nginx\"",
                "3d",
                6,
                "web-0.17d"
            ])
        );
    }

    #[test]
    fn new_style_core_event() {
        // Written through events.k8s.io: eventTime instead of timestamps, reporting fields
        // instead of source, no count.
        let e = json!({
            "metadata": {"name": "n1"},
            "involvedObject": {"kind": "Node", "name": "node-1"},
            "reason": "Starting", "type": "Normal", "message": "",
            "eventTime": "2025-06-01T11:59:00.123456Z",
            "reportingComponent": "kube-proxy", "reportingInstance": "kube-proxy-node-1",
        });
        assert_eq!(
            cells("", "v1", "Event", e),
            json!([
                "59s",
                "Normal",
                "Starting",
                "node/node-1",
                "",
                "kube-proxy, kube-proxy-node-1",
                "",
                "59s",
                1,
                "n1"
            ])
        );
        let bare = json!({"metadata": {"name": "x"}, "involvedObject": {"kind": "Namespace"}});
        assert_eq!(
            cells("", "v1", "Event", bare),
            json!([
                "<unknown>",
                "",
                "",
                "namespace",
                "",
                "",
                "",
                "<unknown>",
                1,
                "x"
            ])
        );
    }

    #[test]
    fn events_k8s_io_event_with_series() {
        let e = json!({
            "apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "web.1"},
            "regarding": {"kind": "Deployment", "name": "web"},
            "reason": "ScalingReplicaSet", "type": "Normal", "note": "Scaled up to 3",
            "action": "Scale", "reportingController": "deployment-controller",
            "eventTime": ago(600),
            "series": {"count": 4, "lastObservedTime": ago(120)},
        });
        assert_eq!(
            cells("events.k8s.io", "v1", "Event", e),
            json!([
                "2m",
                "Normal",
                "ScalingReplicaSet",
                "deployment/web",
                "",
                "deployment-controller",
                "Scaled up to 3",
                "10m",
                4,
                "web.1"
            ])
        );
        let legacy = json!({
            "metadata": {"name": "old"},
            "regarding": {"kind": "Pod", "name": "p"},
            "deprecatedSource": {"component": "kubelet"},
            "deprecatedFirstTimestamp": ago(60), "deprecatedLastTimestamp": ago(30),
            "deprecatedCount": 2, "note": "x", "type": "Warning", "reason": "BackOff",
        });
        assert_eq!(
            cells("events.k8s.io", "v1", "Event", legacy),
            json!([
                "30s", "Warning", "BackOff", "pod/p", "", "kubelet", "x", "60s", 2, "old"
            ])
        );
    }
}
