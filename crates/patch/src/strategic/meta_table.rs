//! Strategic-merge-patch metadata of the built-in types: for each (OpenAPI definition, field)
//! that is not atomic, its patch strategy and merge key.
//!
//! Upstream declares these with `patchStrategy` / `patchMergeKey` struct tags in the
//! `k8s.io/api` (v0.33) and `k8s.io/apimachinery` `types.go` files; `k8s-openapi` does not carry
//! them, so this table restates them. Every field not listed is atomic: a list in a patch
//! replaces the list, a map merges key by key. The OpenAPI documents publish the same facts as
//! `x-kubernetes-patch-strategy` / `x-kubernetes-patch-merge-key` ([`all_patch_meta`]).
//!
//! A unit test checks every entry against the `k8s-openapi` schemas (the definition and field
//! exist, merge lists are lists, merge keys are fields of the list's items).

/// The patch metadata of one field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PatchMeta {
    /// `"merge"`, `"retainKeys"`, `"merge,retainKeys"` or `"replace"` — the value of
    /// `x-kubernetes-patch-strategy`.
    pub strategy: &'static str,
    /// The field identifying list elements (`x-kubernetes-patch-merge-key`); `None` for lists of
    /// primitives merged as sets, and for non-list fields.
    pub merge_key: Option<&'static str>,
}

impl PatchMeta {
    /// Lists merge element by element instead of being replaced.
    pub fn merges_lists(&self) -> bool {
        self.strategy.split(',').any(|s| s == "merge")
    }

    /// The field is replaced as a whole even when it is a map.
    pub fn replaces(&self) -> bool {
        self.strategy.split(',').any(|s| s == "replace")
    }

    /// Clients send `$retainKeys` for this field (the server honours the directive wherever it
    /// appears; the strategy only tells clients to generate it).
    pub fn retains_keys(&self) -> bool {
        self.strategy.split(',').any(|s| s == "retainKeys")
    }
}

/// The patch metadata of `field` in the OpenAPI definition `definition` (for example
/// `("io.k8s.api.core.v1.PodSpec", "containers")`), or `None` when the field is atomic.
pub fn field_patch_meta(definition: &str, field: &str) -> Option<PatchMeta> {
    TABLE
        .iter()
        .find(|e| e.0 == definition && e.1 == field)
        .map(|e| e.2)
}

/// Every (definition, field, metadata) entry, for the OpenAPI generator.
pub fn all_patch_meta() -> impl Iterator<Item = (&'static str, &'static str, PatchMeta)> {
    TABLE.iter().copied()
}

const fn merge(key: &'static str) -> PatchMeta {
    PatchMeta {
        strategy: "merge",
        merge_key: Some(key),
    }
}

const fn merge_retain(key: &'static str) -> PatchMeta {
    PatchMeta {
        strategy: "merge,retainKeys",
        merge_key: Some(key),
    }
}

/// Lists of primitives that merge as sets.
const SET: PatchMeta = PatchMeta {
    strategy: "merge",
    merge_key: None,
};
const RETAIN_KEYS: PatchMeta = PatchMeta {
    strategy: "retainKeys",
    merge_key: None,
};
const REPLACE: PatchMeta = PatchMeta {
    strategy: "replace",
    merge_key: None,
};

macro_rules! table {
    ($( $prefix:literal $def:literal . $field:literal => $meta:expr ; )*) => {
        &[ $( (concat!($prefix, $def), $field, $meta) ),* ]
    };
}

// Grouped by API group; within a group in upstream's source order.
static TABLE: &[(&str, &str, PatchMeta)] = table! {
    // meta/v1
    "io.k8s.apimachinery.pkg.apis.meta.v1." "ObjectMeta"."finalizers" => SET;
    "io.k8s.apimachinery.pkg.apis.meta.v1." "ObjectMeta"."ownerReferences" => merge("uid");

    // core/v1
    "io.k8s.api.core.v1." "PersistentVolumeClaimStatus"."conditions" => merge("type");
    "io.k8s.api.core.v1." "Container"."ports" => merge("containerPort");
    "io.k8s.api.core.v1." "Container"."env" => merge("name");
    "io.k8s.api.core.v1." "Container"."volumeMounts" => merge("mountPath");
    "io.k8s.api.core.v1." "Container"."volumeDevices" => merge("devicePath");
    "io.k8s.api.core.v1." "ContainerStatus"."volumeMounts" => merge("mountPath");
    "io.k8s.api.core.v1." "ContainerStatus"."allocatedResourcesStatus" => merge("name");
    "io.k8s.api.core.v1." "PodSpec"."volumes" => merge_retain("name");
    "io.k8s.api.core.v1." "PodSpec"."initContainers" => merge("name");
    "io.k8s.api.core.v1." "PodSpec"."containers" => merge("name");
    "io.k8s.api.core.v1." "PodSpec"."ephemeralContainers" => merge("name");
    "io.k8s.api.core.v1." "PodSpec"."imagePullSecrets" => merge("name");
    "io.k8s.api.core.v1." "PodSpec"."hostAliases" => merge("ip");
    "io.k8s.api.core.v1." "PodSpec"."topologySpreadConstraints" => merge("topologyKey");
    "io.k8s.api.core.v1." "PodSpec"."schedulingGates" => merge("name");
    "io.k8s.api.core.v1." "PodSpec"."resourceClaims" => merge_retain("name");
    // EphemeralContainer embeds EphemeralContainerCommon, which repeats Container's tags.
    "io.k8s.api.core.v1." "EphemeralContainer"."ports" => merge("containerPort");
    "io.k8s.api.core.v1." "EphemeralContainer"."env" => merge("name");
    "io.k8s.api.core.v1." "EphemeralContainer"."volumeMounts" => merge("mountPath");
    "io.k8s.api.core.v1." "EphemeralContainer"."volumeDevices" => merge("devicePath");
    "io.k8s.api.core.v1." "PodStatus"."conditions" => merge("type");
    "io.k8s.api.core.v1." "PodStatus"."hostIPs" => merge("ip");
    "io.k8s.api.core.v1." "PodStatus"."podIPs" => merge("ip");
    "io.k8s.api.core.v1." "PodStatus"."resourceClaimStatuses" => merge_retain("name");
    "io.k8s.api.core.v1." "ReplicationControllerStatus"."conditions" => merge("type");
    "io.k8s.api.core.v1." "ServiceStatus"."conditions" => merge("type");
    "io.k8s.api.core.v1." "ServiceSpec"."ports" => merge("port");
    "io.k8s.api.core.v1." "ServiceAccount"."secrets" => merge("name");
    "io.k8s.api.core.v1." "NodeSpec"."podCIDRs" => SET;
    "io.k8s.api.core.v1." "NodeStatus"."conditions" => merge("type");
    "io.k8s.api.core.v1." "NodeStatus"."addresses" => merge("type");
    "io.k8s.api.core.v1." "NamespaceStatus"."conditions" => merge("type");
    "io.k8s.api.core.v1." "ComponentStatus"."conditions" => merge("type");

    // apps/v1
    "io.k8s.api.apps.v1." "StatefulSetStatus"."conditions" => merge("type");
    "io.k8s.api.apps.v1." "DeploymentSpec"."strategy" => RETAIN_KEYS;
    "io.k8s.api.apps.v1." "DeploymentStatus"."conditions" => merge("type");
    "io.k8s.api.apps.v1." "DaemonSetStatus"."conditions" => merge("type");
    "io.k8s.api.apps.v1." "ReplicaSetStatus"."conditions" => merge("type");

    // batch/v1
    "io.k8s.api.batch.v1." "JobStatus"."conditions" => merge("type");

    // autoscaling/v2 (autoscaling/v1 has none)
    "io.k8s.api.autoscaling.v2." "HorizontalPodAutoscalerStatus"."conditions" => merge("type");

    // policy/v1
    "io.k8s.api.policy.v1." "PodDisruptionBudgetSpec"."selector" => REPLACE;
    "io.k8s.api.policy.v1." "PodDisruptionBudgetStatus"."conditions" => merge("type");

    // networking.k8s.io
    "io.k8s.api.networking.v1." "ServiceCIDRStatus"."conditions" => merge("type");
    "io.k8s.api.networking.v1beta1." "ServiceCIDRStatus"."conditions" => merge("type");

    // storage.k8s.io/v1
    "io.k8s.api.storage.v1." "CSINodeSpec"."drivers" => merge("name");

    // rbac, coordination, discovery, scheduling and events (v1) declare no patch metadata.

    // admissionregistration.k8s.io
    "io.k8s.api.admissionregistration.v1." "ValidatingAdmissionPolicySpec"."matchConditions" => merge("name");
    "io.k8s.api.admissionregistration.v1." "ValidatingAdmissionPolicySpec"."variables" => merge("name");
    "io.k8s.api.admissionregistration.v1." "ValidatingWebhookConfiguration"."webhooks" => merge("name");
    "io.k8s.api.admissionregistration.v1." "MutatingWebhookConfiguration"."webhooks" => merge("name");
    "io.k8s.api.admissionregistration.v1." "ValidatingWebhook"."matchConditions" => merge("name");
    "io.k8s.api.admissionregistration.v1." "MutatingWebhook"."matchConditions" => merge("name");
    "io.k8s.api.admissionregistration.v1beta1." "ValidatingAdmissionPolicySpec"."matchConditions" => merge("name");
    "io.k8s.api.admissionregistration.v1beta1." "ValidatingAdmissionPolicySpec"."variables" => merge("name");
    "io.k8s.api.admissionregistration.v1alpha1." "MutatingAdmissionPolicySpec"."matchConditions" => merge("name");

    // flowcontrol.apiserver.k8s.io/v1
    "io.k8s.api.flowcontrol.v1." "FlowSchemaStatus"."conditions" => merge("type");
    "io.k8s.api.flowcontrol.v1." "PriorityLevelConfigurationStatus"."conditions" => merge("type");

    // resource.k8s.io
    "io.k8s.api.resource.v1alpha3." "ResourceClaimStatus"."reservedFor" => merge("uid");
    "io.k8s.api.resource.v1beta1." "ResourceClaimStatus"."reservedFor" => merge("uid");
    "io.k8s.api.resource.v1beta2." "ResourceClaimStatus"."reservedFor" => merge("uid");

    // storagemigration.k8s.io/v1alpha1
    "io.k8s.api.storagemigration.v1alpha1." "StorageVersionMigrationStatus"."conditions" => merge("type");

    // apiextensions.k8s.io/v1 (CustomResourceDefinition schemas)
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1." "JSONSchemaProps"."x-kubernetes-validations" => merge("rule");
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups() {
        assert_eq!(
            field_patch_meta("io.k8s.api.core.v1.PodSpec", "containers"),
            Some(PatchMeta {
                strategy: "merge",
                merge_key: Some("name")
            })
        );
        assert_eq!(
            field_patch_meta(
                "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
                "finalizers"
            ),
            Some(PatchMeta {
                strategy: "merge",
                merge_key: None
            })
        );
        assert_eq!(
            field_patch_meta("io.k8s.api.core.v1.PodSpec", "tolerations"),
            None
        );
        assert_eq!(
            field_patch_meta(
                "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector",
                "matchExpressions"
            ),
            None
        );
        let volumes = field_patch_meta("io.k8s.api.core.v1.PodSpec", "volumes");
        assert!(volumes.is_some_and(|m| m.merges_lists() && m.retains_keys() && !m.replaces()));
        let strategy = field_patch_meta("io.k8s.api.apps.v1.DeploymentSpec", "strategy");
        assert!(strategy.is_some_and(|m| m.retains_keys() && !m.merges_lists()));
        let selector = field_patch_meta("io.k8s.api.policy.v1.PodDisruptionBudgetSpec", "selector");
        assert!(selector.is_some_and(|m| m.replaces()));
    }

    /// Every entry names an existing definition and field of the `k8s-openapi` schemas; merge
    /// strategies sit on lists whose items carry the merge key; the others on objects.
    #[test]
    fn entries_match_the_k8s_openapi_schemas() {
        use k8s_openapi::api::{
            admissionregistration, apps, autoscaling, batch, core, flowcontrol, networking, policy,
            resource, storage, storagemigration,
        };
        use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
        let mut generator = schemars::SchemaGenerator::default();
        macro_rules! add {
            ($($t:ty),* $(,)?) => { $( generator.subschema_for::<$t>(); )* };
        }
        add!(
            core::v1::Pod,
            core::v1::Service,
            core::v1::Node,
            core::v1::Namespace,
            core::v1::ServiceAccount,
            core::v1::PersistentVolumeClaim,
            core::v1::ReplicationController,
            core::v1::ComponentStatus,
            apps::v1::Deployment,
            apps::v1::StatefulSet,
            apps::v1::DaemonSet,
            apps::v1::ReplicaSet,
            batch::v1::Job,
            autoscaling::v2::HorizontalPodAutoscaler,
            policy::v1::PodDisruptionBudget,
            networking::v1::ServiceCIDR,
            networking::v1beta1::ServiceCIDR,
            storage::v1::CSINode,
            admissionregistration::v1::ValidatingAdmissionPolicy,
            admissionregistration::v1::ValidatingWebhookConfiguration,
            admissionregistration::v1::MutatingWebhookConfiguration,
            admissionregistration::v1beta1::ValidatingAdmissionPolicy,
            admissionregistration::v1alpha1::MutatingAdmissionPolicy,
            flowcontrol::v1::FlowSchema,
            flowcontrol::v1::PriorityLevelConfiguration,
            resource::v1alpha3::ResourceClaim,
            resource::v1beta1::ResourceClaim,
            resource::v1beta2::ResourceClaim,
            storagemigration::v1alpha1::StorageVersionMigration,
            CustomResourceDefinition,
        );
        let definitions = generator.definitions();
        let resolve = |schema: &serde_json::Value| -> Option<serde_json::Value> {
            match schema.get("$ref").and_then(serde_json::Value::as_str) {
                Some(reference) => {
                    let name = reference.rsplit('/').next()?;
                    definitions.get(name).cloned()
                }
                None => Some(schema.clone()),
            }
        };
        for (definition, field, meta) in all_patch_meta() {
            let schema = definitions.get(definition);
            let property = schema.and_then(|s| s.pointer(&format!("/properties/{field}")));
            let Some(property) = property else {
                panic!("{definition}.{field} is not in the k8s-openapi schemas");
            };
            if meta.merges_lists() {
                assert_eq!(property["type"], "array", "{definition}.{field}");
                let items = resolve(&property["items"]).unwrap_or_default();
                match meta.merge_key {
                    Some(key) => assert!(
                        items.pointer(&format!("/properties/{key}")).is_some(),
                        "{definition}.{field}: items lack merge key {key}"
                    ),
                    None => assert_eq!(items["type"], "string", "{definition}.{field}"),
                }
            } else {
                let target = resolve(property).unwrap_or_default();
                assert_eq!(target["type"], "object", "{definition}.{field}");
            }
        }
    }

    #[test]
    fn entries_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for (definition, field, _) in all_patch_meta() {
            assert!(
                seen.insert((definition, field)),
                "duplicate {definition}.{field}"
            );
        }
        assert_eq!(seen.len(), TABLE.len());
    }
}
