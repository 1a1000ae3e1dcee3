//! The label, field and namespace filter of a list or watch.

use api::ApiError;
use api::resources::ResourceInfo;
use api::selector::{FieldSelector, LabelSelector};

use crate::watchcache::CachedObject;

/// Parsed selectors of one request, checked against the resource's selectable fields.
#[derive(Debug)]
pub struct Filter {
    /// The stored resource, whose field order `CachedObject::fields` follows.
    storage: &'static ResourceInfo,
    labels: LabelSelector,
    fields: FieldSelector,
    namespace: Option<String>,
}

/// events.k8s.io/v1 selects on its own field names; the cache holds core/v1 events.
const EVENTS_V1_RENAMES: &[(&str, &str)] = &[
    ("regarding.kind", "involvedObject.kind"),
    ("regarding.namespace", "involvedObject.namespace"),
    ("regarding.name", "involvedObject.name"),
    ("regarding.uid", "involvedObject.uid"),
    ("reportingController", "reportingComponent"),
];

impl Filter {
    /// Parses `labelSelector` and `fieldSelector` for a request served as `served` and stored
    /// as `storage`. Unknown field names are a 400, as upstream.
    pub fn new(
        served: &'static ResourceInfo,
        storage: &'static ResourceInfo,
        namespace: Option<&str>,
        label_selector: &str,
        field_selector: &str,
    ) -> Result<Filter, ApiError> {
        let labels = LabelSelector::parse(label_selector)?;
        let mut fields = FieldSelector::parse(field_selector)?;
        if let Some(f) = fields.unsupported_field(|f| served.selectable_field(f).is_some()) {
            return Err(ApiError::bad_request(format!(
                "field label not supported: {f}"
            )));
        }
        if served.group == "events.k8s.io" {
            for (from, to) in EVENTS_V1_RENAMES {
                fields.rename_field(from, to);
            }
        }
        Ok(Filter {
            storage,
            labels,
            fields,
            namespace: namespace.filter(|n| !n.is_empty()).map(str::to_string),
        })
    }

    /// Whether the filter selects everything in its namespace scope.
    pub fn is_everything(&self) -> bool {
        self.labels.is_everything() && self.fields.is_everything()
    }

    pub fn matches(&self, o: &CachedObject) -> bool {
        if let Some(ns) = &self.namespace
            && self.storage.namespaced
            && o.namespace() != ns.as_str()
        {
            return false;
        }
        self.labels.matches(&o.labels) && self.fields.matches(|f| o.field(self.storage, f))
    }
}
