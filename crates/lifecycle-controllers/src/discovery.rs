//! Which resource types the server serves, from the `/api` and `/apis` discovery documents
//! (upstream's `ServerPreferredResources` as the garbage collector and the namespace controller
//! use it).
//!
//! Guarantees:
//! * One entry per group and resource, at the group's preferred version when that version
//!   serves it (otherwise at the first version that does): every version of a resource shares
//!   one storage, so watching or deleting through one version sees every object once.
//! * Subresources (`pods/status`, ...) are never listed as types.
//! * A group whose version document fails to load does not fail discovery: the other groups
//!   are still returned and the failure is recorded in [`Catalog::failures`] (the namespace
//!   controller reports it as `NamespaceDeletionDiscoveryFailure`, as upstream's
//!   `ErrGroupDiscoveryFailed`). Only failing to read `/api` or `/apis` themselves fails.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::APIResourceList;
use kube::Client;
use kube::core::ApiResource;

/// Discovery could not even list the groups.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error("listing the API groups at {path}")]
    Groups {
        path: &'static str,
        #[source]
        source: kube::Error,
    },
}

/// One served resource type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Served {
    pub api: ApiResource,
    pub namespaced: bool,
    pub verbs: BTreeSet<String>,
}

impl Served {
    pub fn supports(&self, verb: &str) -> bool {
        self.verbs.contains(verb)
    }

    /// Whether the garbage collector can follow it: it must list, watch and delete (upstream's
    /// `GetDeletableResources` filter).
    pub fn collectable(&self) -> bool {
        ["list", "watch", "delete"].iter().all(|v| self.supports(v))
    }

    /// `resource.group`, as upstream's GroupResource prints.
    pub fn group_resource(&self) -> String {
        format!("{}.{}", self.api.plural, self.api.group)
    }
}

/// What discovery found.
#[derive(Clone, Debug, Default)]
pub struct Catalog {
    /// One per group and resource (see the module's guarantees), sorted by group and resource.
    pub resources: Vec<Served>,
    /// Every version's kinds, for resolving owner references: (apiVersion, kind) → resource.
    kinds: HashMap<(String, String), Served>,
    /// The kinds of each group at its chosen version: (group, kind) → resource.
    group_kinds: HashMap<(String, String), Served>,
    /// Group versions whose document failed to load, with the error.
    pub failures: BTreeMap<String, String>,
}

/// One group version's document, and whether it is the group's preferred version.
pub struct VersionDocument {
    pub group: String,
    pub version: String,
    pub preferred: bool,
    pub list: APIResourceList,
}

impl Catalog {
    /// Builds the catalog from fetched documents (in the server's version order per group).
    pub fn from_documents(docs: Vec<VersionDocument>, failures: BTreeMap<String, String>) -> Self {
        let mut chosen: BTreeMap<(String, String), (bool, Served)> = BTreeMap::new();
        let mut kinds = HashMap::new();
        for doc in docs {
            let api_version = if doc.group.is_empty() {
                doc.version.clone()
            } else {
                format!("{}/{}", doc.group, doc.version)
            };
            for r in &doc.list.resources {
                if r.name.contains('/') {
                    continue;
                }
                let served = Served {
                    api: ApiResource {
                        group: doc.group.clone(),
                        version: doc.version.clone(),
                        api_version: api_version.clone(),
                        kind: r.kind.clone(),
                        plural: r.name.clone(),
                    },
                    namespaced: r.namespaced,
                    verbs: r.verbs.iter().cloned().collect(),
                };
                kinds.insert((api_version.clone(), r.kind.clone()), served.clone());
                let key = (doc.group.clone(), r.name.clone());
                match chosen.get(&key) {
                    // A preferred version never gives way; the first other version only to
                    // the preferred one.
                    Some((true, _)) => {}
                    Some((false, _)) if !doc.preferred => {}
                    _ => {
                        chosen.insert(key, (doc.preferred, served));
                    }
                }
            }
        }
        let resources: Vec<Served> = chosen.into_values().map(|(_, s)| s).collect();
        let group_kinds = resources
            .iter()
            .map(|s| ((s.api.group.clone(), s.api.kind.clone()), s.clone()))
            .collect();
        Catalog {
            resources,
            kinds,
            group_kinds,
            failures,
        }
    }

    /// The resource behind an owner reference's `apiVersion` and `kind`: that exact version
    /// when served, else the same group and kind at the version discovery chose (versions
    /// share storage, and an object keeps its UID across them).
    pub fn resolve(&self, api_version: &str, kind: &str) -> Option<&Served> {
        if let Some(s) = self.kinds.get(&(api_version.to_owned(), kind.to_owned())) {
            return Some(s);
        }
        let group = match api_version.split_once('/') {
            Some((g, _)) => g,
            None => "",
        };
        self.group_kinds.get(&(group.to_owned(), kind.to_owned()))
    }

    /// `Discovery failed for some groups, N failing: ...` when some groups failed.
    pub fn failure_message(&self) -> Option<String> {
        if self.failures.is_empty() {
            return None;
        }
        let list: Vec<String> = self
            .failures
            .iter()
            .map(|(gv, e)| format!("{gv}: {e}"))
            .collect();
        Some(format!(
            "Discovery failed for some groups, {} failing: unable to retrieve the complete list of server APIs: {}",
            self.failures.len(),
            list.join(", ")
        ))
    }
}

/// Reads `/api`, `/apis` and every group version's document.
pub async fn discover(client: &Client) -> Result<Catalog, DiscoveryError> {
    let core = client
        .list_core_api_versions()
        .await
        .map_err(|source| DiscoveryError::Groups {
            path: "/api",
            source,
        })?;
    let groups = client
        .list_api_groups()
        .await
        .map_err(|source| DiscoveryError::Groups {
            path: "/apis",
            source,
        })?;
    let mut docs = Vec::new();
    let mut failures = BTreeMap::new();
    for (i, v) in core.versions.iter().enumerate() {
        match client.list_core_api_resources(v).await {
            Ok(list) => docs.push(VersionDocument {
                group: String::new(),
                version: v.clone(),
                preferred: i == 0,
                list,
            }),
            Err(e) => {
                failures.insert(v.clone(), e.to_string());
            }
        }
    }
    for g in &groups.groups {
        let preferred = g
            .preferred_version
            .as_ref()
            .or_else(|| g.versions.first())
            .map(|v| v.version.clone());
        for v in &g.versions {
            match client.list_api_group_resources(&v.group_version).await {
                Ok(list) => docs.push(VersionDocument {
                    group: g.name.clone(),
                    version: v.version.clone(),
                    preferred: preferred.as_deref() == Some(v.version.as_str()),
                    list,
                }),
                Err(e) => {
                    failures.insert(v.group_version.clone(), e.to_string());
                }
            }
        }
    }
    Ok(Catalog::from_documents(docs, failures))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::APIResource;

    fn res(name: &str, kind: &str, namespaced: bool, verbs: &[&str]) -> APIResource {
        APIResource {
            name: name.into(),
            kind: kind.into(),
            namespaced,
            verbs: verbs.iter().map(|v| v.to_string()).collect(),
            singular_name: String::new(),
            ..Default::default()
        }
    }

    fn doc(group: &str, version: &str, preferred: bool, rs: Vec<APIResource>) -> VersionDocument {
        VersionDocument {
            group: group.into(),
            version: version.into(),
            preferred,
            list: APIResourceList {
                group_version: version.into(),
                resources: rs,
            },
        }
    }

    const ALL: &[&str] = &[
        "create",
        "delete",
        "deletecollection",
        "get",
        "list",
        "watch",
    ];

    fn catalog() -> Catalog {
        Catalog::from_documents(
            vec![
                doc(
                    "",
                    "v1",
                    true,
                    vec![
                        res("pods", "Pod", true, ALL),
                        res("pods/status", "Pod", true, &["get", "update"]),
                        res("namespaces", "Namespace", false, ALL),
                        res("bindings", "Binding", true, &["create"]),
                    ],
                ),
                doc(
                    "autoscaling",
                    "v2",
                    true,
                    vec![res(
                        "horizontalpodautoscalers",
                        "HorizontalPodAutoscaler",
                        true,
                        ALL,
                    )],
                ),
                doc(
                    "autoscaling",
                    "v1",
                    false,
                    vec![res(
                        "horizontalpodautoscalers",
                        "HorizontalPodAutoscaler",
                        true,
                        ALL,
                    )],
                ),
                doc(
                    "example.com",
                    "v1beta1",
                    false,
                    vec![res("widgets", "Widget", true, ALL)],
                ),
                doc(
                    "example.com",
                    "v1",
                    true,
                    vec![res("gadgets", "Gadget", false, ALL)],
                ),
            ],
            [("metrics.k8s.io/v1beta1".to_string(), "503".to_string())].into(),
        )
    }

    #[test]
    fn one_entry_per_resource_at_the_preferred_version() {
        let c = catalog();
        let names: Vec<String> = c
            .resources
            .iter()
            .map(|s| format!("{} {}", s.api.api_version, s.api.plural))
            .collect();
        assert_eq!(
            names,
            [
                "v1 bindings",
                "v1 namespaces",
                "v1 pods",
                "autoscaling/v2 horizontalpodautoscalers",
                "example.com/v1 gadgets",
                "example.com/v1beta1 widgets",
            ]
        );
        let collectable: Vec<&str> = c
            .resources
            .iter()
            .filter(|s| s.collectable())
            .map(|s| s.api.plural.as_str())
            .collect();
        assert!(!collectable.contains(&"bindings"));
        assert_eq!(c.resources[2].group_resource(), "pods.");
    }

    #[test]
    fn owner_kinds_resolve_by_version_then_by_group() {
        let c = catalog();
        let hpa1 = c
            .resolve("autoscaling/v1", "HorizontalPodAutoscaler")
            .unwrap();
        assert_eq!(hpa1.api.version, "v1");
        let hpa = c
            .resolve("autoscaling/v9", "HorizontalPodAutoscaler")
            .unwrap();
        assert_eq!(hpa.api.version, "v2");
        assert_eq!(c.resolve("v1", "Pod").unwrap().api.plural, "pods");
        assert!(c.resolve("apps/v1", "Pod").is_none());
        assert!(c.resolve("v1", "Nope").is_none());
        assert!(!c.resolve("example.com/v1", "Gadget").unwrap().namespaced);
    }

    #[test]
    fn failed_groups_are_reported_like_upstream() {
        assert_eq!(
            catalog().failure_message().unwrap(),
            "Discovery failed for some groups, 1 failing: unable to retrieve the complete list of server APIs: metrics.k8s.io/v1beta1: 503"
        );
        assert_eq!(Catalog::default().failure_message(), None);
    }
}
