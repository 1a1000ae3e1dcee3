//! Slim, borrowing views of the parts of objects that printers read.
//!
//! Listing tables is a hot path (`kubectl get pods -A` on a big cluster), and decoding whole
//! k8s-openapi objects copies everything, managed fields and pod specs included, only to read a
//! dozen fields. Printers therefore deserialize these views instead: strings borrow from the
//! served JSON, unknown fields are skipped without allocating, and the small leaf types
//! (timestamps, label selectors, conditions, quantities) are still k8s-openapi's own. Field names
//! follow the JSON (camelCase); a missing field reads as absent, as k8s-openapi would read it.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde::de::{IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};

/// The metadata every printer reads.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct Meta<'a> {
    #[serde(borrow)]
    pub(crate) name: Option<&'a str>,
    pub(crate) creation_timestamp: Option<Time>,
    pub(crate) deletion_timestamp: Option<Time>,
}

impl Meta<'_> {
    pub(crate) fn name(&self) -> &str {
        self.name.unwrap_or_default()
    }
}

/// Metadata with labels and annotations, for the printers that read them.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct LabeledMeta<'a> {
    #[serde(borrow)]
    pub(crate) name: Option<&'a str>,
    pub(crate) creation_timestamp: Option<Time>,
    pub(crate) deletion_timestamp: Option<Time>,
    #[serde(borrow)]
    pub(crate) labels: Option<BTreeMap<&'a str, &'a str>>,
    #[serde(borrow)]
    pub(crate) annotations: Option<BTreeMap<&'a str, &'a str>>,
}

impl<'a> LabeledMeta<'a> {
    pub(crate) fn name(&self) -> &'a str {
        self.name.unwrap_or_default()
    }

    pub(crate) fn annotation(&self, key: &str) -> Option<&'a str> {
        self.annotations.as_ref()?.get(key).copied()
    }

    /// The plain metadata part, for the shared `Name`/`Age` cells.
    pub(crate) fn meta(&self) -> Meta<'a> {
        Meta {
            name: self.name,
            creation_timestamp: self.creation_timestamp.clone(),
            deletion_timestamp: self.deletion_timestamp.clone(),
        }
    }
}

/// A container: only its name, image and (for init containers) restart policy are printed.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct ContainerView<'a> {
    #[serde(borrow)]
    pub(crate) name: Option<&'a str>,
    #[serde(borrow)]
    pub(crate) image: Option<&'a str>,
    #[serde(borrow)]
    pub(crate) restart_policy: Option<&'a str>,
}

/// The spec of a pod template, as workload printers read it.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct TemplateSpecView<'a> {
    #[serde(borrow)]
    pub(crate) containers: Vec<ContainerView<'a>>,
    #[serde(borrow)]
    pub(crate) node_selector: Option<BTreeMap<&'a str, &'a str>>,
}

/// Labels of a pod template.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct TemplateMetaView<'a> {
    #[serde(borrow)]
    pub(crate) labels: Option<BTreeMap<&'a str, &'a str>>,
}

/// A pod template (`spec.template` of workloads).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct TemplateView<'a> {
    #[serde(borrow)]
    pub(crate) metadata: Option<TemplateMetaView<'a>>,
    #[serde(borrow)]
    pub(crate) spec: Option<TemplateSpecView<'a>>,
}

impl<'a> TemplateView<'a> {
    pub(crate) fn containers(&self) -> &[ContainerView<'a>] {
        self.spec.as_ref().map_or(&[], |s| s.containers.as_slice())
    }
}

/// The number of entries of a map or list, counted without reading them (`DATA`, `SECRETS`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Count(pub(crate) usize);

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Count, D::Error> {
        struct CountVisitor;

        impl<'de> Visitor<'de> for CountVisitor {
            type Value = Count;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a map or a list")
            }

            fn visit_unit<E>(self) -> Result<Count, E> {
                Ok(Count(0))
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Count, A::Error> {
                let mut n = 0;
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {
                    n += 1;
                }
                Ok(Count(n))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Count, A::Error> {
                let mut n = 0;
                while seq.next_element::<IgnoredAny>()?.is_some() {
                    n += 1;
                }
                Ok(Count(n))
            }
        }

        deserializer.deserialize_any(CountVisitor)
    }
}

/// A status condition: its type, status and reason.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ConditionView<'a> {
    #[serde(rename = "type")]
    pub(crate) type_: Option<&'a str>,
    pub(crate) status: Option<&'a str>,
    pub(crate) reason: Option<&'a str>,
}

/// The first condition of type `ty` is True (upstream's `hasJobCondition` and friends look at
/// the first condition of a type only).
pub(crate) fn condition_true(conditions: &[ConditionView<'_>], ty: &str) -> bool {
    conditions
        .iter()
        .find(|c| c.type_ == Some(ty))
        .is_some_and(|c| c.status == Some("True"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn views_borrow_and_skip_the_rest() {
        let v = json!({
            "name": "web", "creationTimestamp": "2025-01-02T03:04:05Z",
            "labels": {"app": "web"}, "managedFields": [{"manager": "x"}],
        });
        let m = LabeledMeta::deserialize(&v).expect("reads");
        assert_eq!(m.name(), "web");
        assert_eq!(
            m.labels.as_ref().and_then(|l| l.get("app")).copied(),
            Some("web")
        );
        assert_eq!(
            m.creation_timestamp.map(|t| t.0.to_string()).as_deref(),
            Some("2025-01-02T03:04:05Z")
        );
        let nothing = json!({});
        let empty = Meta::deserialize(&nothing).expect("reads");
        assert_eq!(empty.name(), "");
        assert!(Meta::deserialize(&json!({"name": 5})).is_err());
    }

    #[test]
    fn counting() {
        assert_eq!(
            Count::deserialize(&json!({"a": 1, "b": [2]})).ok(),
            Some(Count(2))
        );
        assert_eq!(Count::deserialize(&json!([1, 2, 3])).ok(), Some(Count(3)));
        assert_eq!(Count::deserialize(&json!(null)).ok(), Some(Count(0)));
        assert!(Count::deserialize(&json!("x")).is_err());
    }
}
