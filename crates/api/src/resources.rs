//! The table of built-in resources keelson serves: group, version, kind, names, scope,
//! subresources and selectable fields.
//!
//! Discovery, OpenAPI, routing, the storage key layout and `kubectl api-resources` all read this
//! one table, so a resource is described exactly once. Behaviour (defaulting, validation) lives in
//! the apiserver's per-resource strategies, keyed by the same (group, plural).

/// A field that `fieldSelector` may name for a resource, beyond `metadata.name` and
/// `metadata.namespace` (which every resource supports).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SelectableField {
    /// The name used in selectors, e.g. `spec.nodeName`.
    pub name: &'static str,
    /// Dotted JSON path the value is read from (usually the same as `name`).
    pub path: &'static str,
    /// The value when the field is absent (Go zero values: `""`, `"false"`, `"0"`).
    pub default: &'static str,
}

const fn field(name: &'static str, default: &'static str) -> SelectableField {
    SelectableField {
        name,
        path: name,
        default,
    }
}

/// Static description of one served resource in one version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResourceInfo {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
    pub singular: &'static str,
    pub short_names: &'static [&'static str],
    pub categories: &'static [&'static str],
    pub namespaced: bool,
    /// Subresources served through the generic store: `status`, `scale`.
    pub subresources: &'static [&'static str],
    pub fields: &'static [SelectableField],
    /// The group whose storage this resource shares, when it is a second view of another
    /// group's objects (events.k8s.io/v1 events are stored as core events).
    pub storage_group: &'static str,
}

impl ResourceInfo {
    /// `v1` or `apps/v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `apps/v1` style group-version as a borrowed pair.
    pub fn group_version(&self) -> (&'static str, &'static str) {
        (self.group, self.version)
    }

    /// `PodList`.
    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }

    /// Key prefix in the store for all objects of this resource, ending in `/`.
    /// Every version of a resource (and a second group's view of it) shares one prefix.
    pub fn storage_prefix(&self) -> String {
        let g = if self.storage_group.is_empty() {
            "core"
        } else {
            self.storage_group
        };
        format!("/registry/{g}/{}/", self.plural)
    }

    /// The store key of one object.
    pub fn storage_key(&self, namespace: &str, name: &str) -> String {
        if self.namespaced {
            format!("{}{namespace}/{name}", self.storage_prefix())
        } else {
            format!("{}{name}", self.storage_prefix())
        }
    }

    pub fn has_subresource(&self, sub: &str) -> bool {
        self.subresources.contains(&sub)
    }

    /// The selectable field called `name`, including the two every resource has.
    pub fn selectable_field(&self, name: &str) -> Option<SelectableField> {
        match name {
            "metadata.name" => Some(field("metadata.name", "")),
            "metadata.namespace" => Some(field("metadata.namespace", "")),
            _ => self.fields.iter().copied().find(|f| f.name == name),
        }
    }
}

const NONE: &[&str] = &[];
const ALL: &[&str] = &["all"];
const STATUS: &[&str] = &["status"];
const STATUS_SCALE: &[&str] = &["status", "scale"];

const POD_FIELDS: &[SelectableField] = &[
    field("spec.nodeName", ""),
    field("spec.restartPolicy", ""),
    field("spec.schedulerName", ""),
    field("spec.serviceAccountName", ""),
    field("spec.hostNetwork", "false"),
    field("status.phase", ""),
    field("status.podIP", ""),
    field("status.nominatedNodeName", ""),
];

const EVENT_FIELDS: &[SelectableField] = &[
    field("involvedObject.kind", ""),
    field("involvedObject.namespace", ""),
    field("involvedObject.name", ""),
    field("involvedObject.uid", ""),
    field("involvedObject.apiVersion", ""),
    field("involvedObject.resourceVersion", ""),
    field("involvedObject.fieldPath", ""),
    field("reason", ""),
    field("reportingComponent", ""),
    SelectableField {
        name: "source",
        path: "source.component",
        default: "",
    },
    field("type", ""),
];

/// events.k8s.io/v1 names the same stored fields by their new names.
const EVENTS_V1_FIELDS: &[SelectableField] = &[
    SelectableField {
        name: "regarding.kind",
        path: "regarding.kind",
        default: "",
    },
    SelectableField {
        name: "regarding.namespace",
        path: "regarding.namespace",
        default: "",
    },
    SelectableField {
        name: "regarding.name",
        path: "regarding.name",
        default: "",
    },
    SelectableField {
        name: "regarding.uid",
        path: "regarding.uid",
        default: "",
    },
    field("reason", ""),
    field("reportingController", ""),
    field("type", ""),
];

#[allow(clippy::too_many_arguments)]
const fn res(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    singular: &'static str,
    short_names: &'static [&'static str],
    namespaced: bool,
    subresources: &'static [&'static str],
) -> ResourceInfo {
    ResourceInfo {
        group,
        version,
        kind,
        plural,
        singular,
        short_names,
        categories: NONE,
        namespaced,
        subresources,
        fields: &[],
        storage_group: group,
    }
}

const fn with_categories(mut r: ResourceInfo, categories: &'static [&'static str]) -> ResourceInfo {
    r.categories = categories;
    r
}

const fn with_fields(mut r: ResourceInfo, fields: &'static [SelectableField]) -> ResourceInfo {
    r.fields = fields;
    r
}

const fn stored_in(mut r: ResourceInfo, storage_group: &'static str) -> ResourceInfo {
    r.storage_group = storage_group;
    r
}

/// Every built-in resource, in the order discovery lists groups (core first, then as upstream).
pub static RESOURCES: &[ResourceInfo] = &[
    // core/v1
    with_fields(
        res(
            "",
            "v1",
            "Namespace",
            "namespaces",
            "namespace",
            &["ns"],
            false,
            &["status", "finalize"],
        ),
        &[field("status.phase", "")],
    ),
    with_fields(
        with_categories(
            res(
                "",
                "v1",
                "Pod",
                "pods",
                "pod",
                &["po"],
                true,
                &["status", "binding", "eviction"],
            ),
            ALL,
        ),
        POD_FIELDS,
    ),
    with_fields(
        with_categories(
            res(
                "",
                "v1",
                "Service",
                "services",
                "service",
                &["svc"],
                true,
                STATUS,
            ),
            ALL,
        ),
        &[field("spec.clusterIP", ""), field("spec.type", "")],
    ),
    res(
        "",
        "v1",
        "Endpoints",
        "endpoints",
        "endpoints",
        &["ep"],
        true,
        NONE,
    ),
    res(
        "",
        "v1",
        "ConfigMap",
        "configmaps",
        "configmap",
        &["cm"],
        true,
        NONE,
    ),
    with_fields(
        res("", "v1", "Secret", "secrets", "secret", NONE, true, NONE),
        &[field("type", "")],
    ),
    res(
        "",
        "v1",
        "ServiceAccount",
        "serviceaccounts",
        "serviceaccount",
        &["sa"],
        true,
        NONE,
    ),
    with_fields(
        res("", "v1", "Node", "nodes", "node", &["no"], false, STATUS),
        &[field("spec.unschedulable", "false")],
    ),
    with_fields(
        res("", "v1", "Event", "events", "event", &["ev"], true, NONE),
        EVENT_FIELDS,
    ),
    res(
        "",
        "v1",
        "PersistentVolume",
        "persistentvolumes",
        "persistentvolume",
        &["pv"],
        false,
        STATUS,
    ),
    res(
        "",
        "v1",
        "PersistentVolumeClaim",
        "persistentvolumeclaims",
        "persistentvolumeclaim",
        &["pvc"],
        true,
        STATUS,
    ),
    with_fields(
        with_categories(
            res(
                "",
                "v1",
                "ReplicationController",
                "replicationcontrollers",
                "replicationcontroller",
                &["rc"],
                true,
                STATUS_SCALE,
            ),
            ALL,
        ),
        &[field("status.replicas", "0")],
    ),
    res(
        "",
        "v1",
        "ResourceQuota",
        "resourcequotas",
        "resourcequota",
        &["quota"],
        true,
        STATUS,
    ),
    res(
        "",
        "v1",
        "LimitRange",
        "limitranges",
        "limitrange",
        &["limits"],
        true,
        NONE,
    ),
    res(
        "",
        "v1",
        "PodTemplate",
        "podtemplates",
        "podtemplate",
        NONE,
        true,
        NONE,
    ),
    // apps/v1
    with_categories(
        res(
            "apps",
            "v1",
            "Deployment",
            "deployments",
            "deployment",
            &["deploy"],
            true,
            STATUS_SCALE,
        ),
        ALL,
    ),
    with_fields(
        with_categories(
            res(
                "apps",
                "v1",
                "ReplicaSet",
                "replicasets",
                "replicaset",
                &["rs"],
                true,
                STATUS_SCALE,
            ),
            ALL,
        ),
        &[field("status.replicas", "0")],
    ),
    with_categories(
        res(
            "apps",
            "v1",
            "StatefulSet",
            "statefulsets",
            "statefulset",
            &["sts"],
            true,
            STATUS_SCALE,
        ),
        ALL,
    ),
    with_categories(
        res(
            "apps",
            "v1",
            "DaemonSet",
            "daemonsets",
            "daemonset",
            &["ds"],
            true,
            STATUS,
        ),
        ALL,
    ),
    res(
        "apps",
        "v1",
        "ControllerRevision",
        "controllerrevisions",
        "controllerrevision",
        NONE,
        true,
        NONE,
    ),
    // batch/v1
    with_fields(
        with_categories(
            res("batch", "v1", "Job", "jobs", "job", NONE, true, STATUS),
            ALL,
        ),
        &[field("status.successful", "0")],
    ),
    with_categories(
        res(
            "batch",
            "v1",
            "CronJob",
            "cronjobs",
            "cronjob",
            &["cj"],
            true,
            STATUS,
        ),
        ALL,
    ),
    // autoscaling/v2 (preferred) and v1, one storage
    with_categories(
        res(
            "autoscaling",
            "v2",
            "HorizontalPodAutoscaler",
            "horizontalpodautoscalers",
            "horizontalpodautoscaler",
            &["hpa"],
            true,
            STATUS,
        ),
        ALL,
    ),
    with_categories(
        res(
            "autoscaling",
            "v1",
            "HorizontalPodAutoscaler",
            "horizontalpodautoscalers",
            "horizontalpodautoscaler",
            &["hpa"],
            true,
            STATUS,
        ),
        ALL,
    ),
    // policy/v1
    res(
        "policy",
        "v1",
        "PodDisruptionBudget",
        "poddisruptionbudgets",
        "poddisruptionbudget",
        &["pdb"],
        true,
        STATUS,
    ),
    // networking.k8s.io/v1
    res(
        "networking.k8s.io",
        "v1",
        "Ingress",
        "ingresses",
        "ingress",
        &["ing"],
        true,
        STATUS,
    ),
    res(
        "networking.k8s.io",
        "v1",
        "IngressClass",
        "ingressclasses",
        "ingressclass",
        NONE,
        false,
        NONE,
    ),
    res(
        "networking.k8s.io",
        "v1",
        "NetworkPolicy",
        "networkpolicies",
        "networkpolicy",
        &["netpol"],
        true,
        NONE,
    ),
    // rbac.authorization.k8s.io/v1
    res(
        "rbac.authorization.k8s.io",
        "v1",
        "Role",
        "roles",
        "role",
        NONE,
        true,
        NONE,
    ),
    res(
        "rbac.authorization.k8s.io",
        "v1",
        "RoleBinding",
        "rolebindings",
        "rolebinding",
        NONE,
        true,
        NONE,
    ),
    res(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRole",
        "clusterroles",
        "clusterrole",
        NONE,
        false,
        NONE,
    ),
    res(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRoleBinding",
        "clusterrolebindings",
        "clusterrolebinding",
        NONE,
        false,
        NONE,
    ),
    // storage.k8s.io/v1
    res(
        "storage.k8s.io",
        "v1",
        "StorageClass",
        "storageclasses",
        "storageclass",
        &["sc"],
        false,
        NONE,
    ),
    res(
        "storage.k8s.io",
        "v1",
        "CSIDriver",
        "csidrivers",
        "csidriver",
        NONE,
        false,
        NONE,
    ),
    res(
        "storage.k8s.io",
        "v1",
        "CSINode",
        "csinodes",
        "csinode",
        NONE,
        false,
        NONE,
    ),
    res(
        "storage.k8s.io",
        "v1",
        "VolumeAttachment",
        "volumeattachments",
        "volumeattachment",
        NONE,
        false,
        STATUS,
    ),
    // coordination.k8s.io/v1
    res(
        "coordination.k8s.io",
        "v1",
        "Lease",
        "leases",
        "lease",
        NONE,
        true,
        NONE,
    ),
    // discovery.k8s.io/v1
    res(
        "discovery.k8s.io",
        "v1",
        "EndpointSlice",
        "endpointslices",
        "endpointslice",
        NONE,
        true,
        NONE,
    ),
    // scheduling.k8s.io/v1
    res(
        "scheduling.k8s.io",
        "v1",
        "PriorityClass",
        "priorityclasses",
        "priorityclass",
        &["pc"],
        false,
        NONE,
    ),
    // events.k8s.io/v1: a second view of core events
    with_fields(
        stored_in(
            res(
                "events.k8s.io",
                "v1",
                "Event",
                "events",
                "event",
                &["ev"],
                true,
                NONE,
            ),
            "",
        ),
        EVENTS_V1_FIELDS,
    ),
];

/// The resource served at `group/version/plural`.
pub fn lookup(group: &str, version: &str, plural: &str) -> Option<&'static ResourceInfo> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// The resource of a `kind` in `group/version`.
pub fn lookup_kind(group: &str, version: &str, kind: &str) -> Option<&'static ResourceInfo> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.kind == kind)
}

/// The resource a user means by `name`, as kubectl resolves `KIND/NAME` arguments: a plural,
/// singular, short name or kind (case-insensitive), optionally qualified by group
/// (`deployments.apps`) or by version and group (`horizontalpodautoscalers.v1.autoscaling`).
/// An unqualified name resolves to the preferred version, core first.
pub fn resolve(name: &str) -> Option<&'static ResourceInfo> {
    let lower = name.to_ascii_lowercase();
    let names = |r: &ResourceInfo, n: &str| {
        r.plural == n
            || r.singular == n
            || r.kind.eq_ignore_ascii_case(n)
            || r.short_names.contains(&n)
    };
    if let Some(r) = RESOURCES.iter().find(|r| names(r, &lower)) {
        return Some(r);
    }
    let (base, rest) = lower.split_once('.')?;
    // `plural.version.group` or `plural.group`.
    if let Some((version, group)) = rest.split_once('.')
        && let Some(r) = RESOURCES
            .iter()
            .find(|r| r.version == version && r.group == group && names(r, base))
    {
        return Some(r);
    }
    RESOURCES.iter().find(|r| r.group == rest && names(r, base))
}

/// Groups in discovery order, each with its versions, preferred version first.
pub fn groups() -> Vec<(&'static str, Vec<&'static str>)> {
    let mut out: Vec<(&'static str, Vec<&'static str>)> = Vec::new();
    for r in RESOURCES {
        match out.iter_mut().find(|(g, _)| *g == r.group) {
            Some((_, versions)) => {
                if !versions.contains(&r.version) {
                    versions.push(r.version);
                }
            }
            None => out.push((r.group, vec![r.version])),
        }
    }
    out
}

/// Splits `apps/v1` into `("apps", "v1")` and `v1` into `("", "v1")`.
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_per_group_version() {
        for (i, a) in RESOURCES.iter().enumerate() {
            for b in &RESOURCES[i + 1..] {
                assert!(
                    !(a.group == b.group && a.version == b.version && a.plural == b.plural),
                    "{} listed twice in {}",
                    a.plural,
                    a.api_version()
                );
            }
        }
    }

    #[test]
    fn shared_storage() {
        let core = lookup("", "v1", "events").unwrap();
        let ev = lookup("events.k8s.io", "v1", "events").unwrap();
        assert_eq!(core.storage_prefix(), ev.storage_prefix());
        let v1 = lookup("autoscaling", "v1", "horizontalpodautoscalers").unwrap();
        let v2 = lookup("autoscaling", "v2", "horizontalpodautoscalers").unwrap();
        assert_eq!(v1.storage_key("ns", "a"), v2.storage_key("ns", "a"));
        assert_eq!(
            lookup("", "v1", "nodes").unwrap().storage_key("", "n1"),
            "/registry/core/nodes/n1"
        );
    }

    #[test]
    fn resolves_what_kubectl_users_type() {
        let r = |n: &str| resolve(n).map(|r| (r.group, r.version, r.plural));
        assert_eq!(r("po"), Some(("", "v1", "pods")));
        assert_eq!(r("Deployment"), Some(("apps", "v1", "deployments")));
        assert_eq!(r("deployments.apps"), Some(("apps", "v1", "deployments")));
        assert_eq!(
            r("hpa"),
            Some(("autoscaling", "v2", "horizontalpodautoscalers"))
        );
        assert_eq!(
            r("horizontalpodautoscalers.v1.autoscaling"),
            Some(("autoscaling", "v1", "horizontalpodautoscalers"))
        );
        assert_eq!(r("events"), Some(("", "v1", "events")));
        assert_eq!(
            r("events.events.k8s.io"),
            Some(("events.k8s.io", "v1", "events"))
        );
        assert_eq!(r("nonsense"), None);
        assert_eq!(r("pods.nosuchgroup"), None);
    }

    #[test]
    fn preferred_version_first() {
        let g = groups();
        assert_eq!(g[0].0, "");
        let autoscaling = g.iter().find(|(g, _)| *g == "autoscaling").unwrap();
        assert_eq!(autoscaling.1, vec!["v2", "v1"]);
    }
}
