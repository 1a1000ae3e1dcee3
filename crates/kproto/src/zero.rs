//! Which zero values Go leaves out of JSON, so the decoder can leave them out too.
//!
//! Go's protobuf encoder writes every non-pointer field, zero or not, and a pointer field only
//! when it is set. Its JSON encoder instead drops a non-pointer field holding its zero value when
//! the field is tagged `omitempty`. A decoded body therefore carries zeros that the same object
//! sent as JSON would not (`hostPort: 0`, `stdin: false`, `nodePort: 0`, `generation: 0`...), and
//! some of those read as "set" to code that checks presence. The protobuf wire cannot tell such a
//! zero from a pointer deliberately set to zero (`replicas: 0`, `runAsUser: 0`), so the decoder
//! needs to know which fields are non-pointer:
//!
//! * numbers and booleans: zero is dropped only for the fields in [`GO_VALUE_FIELDS`], the v1.33
//!   fields that are non-pointer `omitempty` numbers or booleans in upstream's Go types (found by
//!   reading `k8s.io/api` and `k8s.io/apimachinery` v0.33). Every other number or boolean is a
//!   pointer or is always serialized, and keeps its zero. New fields are pointers by API
//!   convention, so this list does not grow.
//! * strings: `""` is dropped from every optional (not `required`) property. Nearly all optional
//!   strings are non-pointer `omitempty`; of the pointer ones only those in
//!   [`KEEP_EMPTY_STRING`] give `""` a meaning of its own (for the rest `""` is invalid or means
//!   the same as unset).
//!
//! List items and map values are never dropped.

/// Non-pointer `omitempty` number and boolean fields, by OpenAPI definition and JSON name.
///
/// `autoscaling/v1 ScaleSpec.replicas` is such a field but is deliberately absent: keeping an
/// explicit `replicas: 0` on a scale-to-zero means the same to upstream and cannot be misread.
/// `EphemeralContainer` lists the fields it inlines from `EphemeralContainerCommon`.
#[rustfmt::skip] // one definition per line reads as the table it is
pub const GO_VALUE_FIELDS: &[(&str, &[&str])] = &[
    ("io.k8s.api.admissionregistration.v1.ValidatingAdmissionPolicyStatus", &["observedGeneration"]),
    ("io.k8s.api.apps.v1.DaemonSetSpec", &["minReadySeconds"]),
    ("io.k8s.api.apps.v1.DaemonSetStatus", &["observedGeneration", "updatedNumberScheduled", "numberAvailable", "numberUnavailable"]),
    ("io.k8s.api.apps.v1.DeploymentSpec", &["minReadySeconds", "paused"]),
    ("io.k8s.api.apps.v1.DeploymentStatus", &["observedGeneration", "replicas", "updatedReplicas", "readyReplicas", "availableReplicas", "unavailableReplicas"]),
    ("io.k8s.api.apps.v1.ReplicaSetSpec", &["minReadySeconds"]),
    ("io.k8s.api.apps.v1.ReplicaSetStatus", &["fullyLabeledReplicas", "readyReplicas", "availableReplicas", "observedGeneration"]),
    ("io.k8s.api.apps.v1.StatefulSetSpec", &["minReadySeconds"]),
    ("io.k8s.api.apps.v1.StatefulSetStatus", &["observedGeneration", "readyReplicas", "currentReplicas", "updatedReplicas"]),
    ("io.k8s.api.authentication.v1.TokenReviewStatus", &["authenticated"]),
    ("io.k8s.api.authorization.v1.SubjectAccessReviewStatus", &["denied"]),
    ("io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerStatus", &["currentReplicas"]),
    ("io.k8s.api.batch.v1.JobStatus", &["active", "succeeded", "failed"]),
    ("io.k8s.api.core.v1.AWSElasticBlockStoreVolumeSource", &["partition", "readOnly"]),
    ("io.k8s.api.core.v1.AzureFilePersistentVolumeSource", &["readOnly"]),
    ("io.k8s.api.core.v1.AzureFileVolumeSource", &["readOnly"]),
    ("io.k8s.api.core.v1.CSIPersistentVolumeSource", &["readOnly"]),
    ("io.k8s.api.core.v1.CephFSPersistentVolumeSource", &["readOnly"]),
    ("io.k8s.api.core.v1.CephFSVolumeSource", &["readOnly"]),
    ("io.k8s.api.core.v1.CinderPersistentVolumeSource", &["readOnly"]),
    ("io.k8s.api.core.v1.CinderVolumeSource", &["readOnly"]),
    ("io.k8s.api.core.v1.Container", &["stdin", "stdinOnce", "tty"]),
    ("io.k8s.api.core.v1.ContainerImage", &["sizeBytes"]),
    ("io.k8s.api.core.v1.ContainerPort", &["hostPort"]),
    ("io.k8s.api.core.v1.ContainerStateTerminated", &["signal"]),
    ("io.k8s.api.core.v1.EphemeralContainer", &["stdin", "stdinOnce", "tty"]),
    ("io.k8s.api.core.v1.Event", &["count"]),
    ("io.k8s.api.core.v1.EventSeries", &["count"]),
    ("io.k8s.api.core.v1.FCVolumeSource", &["readOnly"]),
    ("io.k8s.api.core.v1.FlexPersistentVolumeSource", &["readOnly"]),
    ("io.k8s.api.core.v1.FlexVolumeSource", &["readOnly"]),
    ("io.k8s.api.core.v1.GCEPersistentDiskVolumeSource", &["partition", "readOnly"]),
    ("io.k8s.api.core.v1.GlusterfsPersistentVolumeSource", &["readOnly"]),
    ("io.k8s.api.core.v1.GlusterfsVolumeSource", &["readOnly"]),
    ("io.k8s.api.core.v1.ISCSIPersistentVolumeSource", &["readOnly", "chapAuthDiscovery", "chapAuthSession"]),
    ("io.k8s.api.core.v1.ISCSIVolumeSource", &["readOnly", "chapAuthDiscovery", "chapAuthSession"]),
    ("io.k8s.api.core.v1.NFSVolumeSource", &["readOnly"]),
    ("io.k8s.api.core.v1.NodeSpec", &["unschedulable"]),
    ("io.k8s.api.core.v1.PersistentVolumeClaimVolumeSource", &["readOnly"]),
    ("io.k8s.api.core.v1.PodCondition", &["observedGeneration"]),
    ("io.k8s.api.core.v1.PodSpec", &["hostNetwork", "hostPID", "hostIPC"]),
    ("io.k8s.api.core.v1.PodStatus", &["observedGeneration"]),
    ("io.k8s.api.core.v1.PortworxVolumeSource", &["readOnly"]),
    ("io.k8s.api.core.v1.Probe", &["initialDelaySeconds", "timeoutSeconds", "periodSeconds", "successThreshold", "failureThreshold"]),
    ("io.k8s.api.core.v1.QuobyteVolumeSource", &["readOnly"]),
    ("io.k8s.api.core.v1.RBDPersistentVolumeSource", &["readOnly"]),
    ("io.k8s.api.core.v1.RBDVolumeSource", &["readOnly"]),
    ("io.k8s.api.core.v1.ReplicationControllerSpec", &["minReadySeconds"]),
    ("io.k8s.api.core.v1.ReplicationControllerStatus", &["fullyLabeledReplicas", "readyReplicas", "availableReplicas", "observedGeneration"]),
    ("io.k8s.api.core.v1.ScaleIOPersistentVolumeSource", &["sslEnabled", "readOnly"]),
    ("io.k8s.api.core.v1.ScaleIOVolumeSource", &["sslEnabled", "readOnly"]),
    ("io.k8s.api.core.v1.ServicePort", &["nodePort"]),
    ("io.k8s.api.core.v1.ServiceSpec", &["healthCheckNodePort", "publishNotReadyAddresses"]),
    ("io.k8s.api.core.v1.StorageOSPersistentVolumeSource", &["readOnly"]),
    ("io.k8s.api.core.v1.StorageOSVolumeSource", &["readOnly"]),
    ("io.k8s.api.core.v1.VolumeMount", &["readOnly"]),
    ("io.k8s.api.core.v1.VolumeMountStatus", &["readOnly"]),
    ("io.k8s.api.events.v1.Event", &["deprecatedCount"]),
    ("io.k8s.api.flowcontrol.v1.ResourcePolicyRule", &["clusterScope"]),
    ("io.k8s.api.networking.v1.ServiceBackendPort", &["number"]),
    ("io.k8s.api.policy.v1.PodDisruptionBudgetStatus", &["observedGeneration"]),
    ("io.k8s.api.scheduling.v1.PriorityClass", &["globalDefault"]),
    ("io.k8s.apimachinery.pkg.apis.meta.v1.Condition", &["observedGeneration"]),
    ("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", &["generation"]),
];

/// Optional pointer strings whose `""` differs from unset: `storageClassName: ""` asks for no
/// storage class where an absent one asks for the default class; likewise for
/// `volumeAttributesClassName`.
pub const KEEP_EMPTY_STRING: &[&str] = &["storageClassName", "volumeAttributesClassName"];

/// Whether Go's JSON encoder leaves out property `name` of `definition` when it holds the zero
/// value of `ty` (`"string"`, `"integer"`, `"number"` or `"boolean"`).
pub fn omitted_when_zero(definition: &str, name: &str, ty: &str, required: bool) -> bool {
    match ty {
        "string" => !required && !KEEP_EMPTY_STRING.contains(&name),
        "integer" | "number" | "boolean" => GO_VALUE_FIELDS
            .iter()
            .any(|(def, props)| *def == definition && props.contains(&name)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::schemas;

    /// Every listed field exists in the v1.33 schema as a number or boolean, so a typo or a
    /// schema change cannot silently disable an entry.
    #[test]
    fn every_listed_field_is_a_scalar_of_the_schema() {
        let defs = &schemas().definitions;
        for (def, props) in GO_VALUE_FIELDS {
            let d = defs
                .get(*def)
                .unwrap_or_else(|| panic!("{def} is not a definition"));
            for prop in *props {
                let ty = d.schema["properties"][prop]["type"].as_str();
                assert!(
                    matches!(ty, Some("integer" | "boolean")),
                    "{def}.{prop} is {ty:?}, not a number or boolean"
                );
            }
        }
    }

    #[test]
    fn pointers_keep_their_zero() {
        let dep = "io.k8s.api.apps.v1.DeploymentSpec";
        assert!(!omitted_when_zero(dep, "replicas", "integer", false));
        assert!(omitted_when_zero(dep, "minReadySeconds", "integer", false));
        assert!(omitted_when_zero(dep, "paused", "boolean", false));
        let pod = "io.k8s.api.core.v1.PodSpec";
        assert!(!omitted_when_zero(
            pod,
            "automountServiceAccountToken",
            "boolean",
            false
        ));
        assert!(omitted_when_zero(pod, "hostNetwork", "boolean", false));
        assert!(omitted_when_zero(pod, "nodeName", "string", false));
        let claim = "io.k8s.api.core.v1.PersistentVolumeClaimSpec";
        assert!(!omitted_when_zero(
            claim,
            "storageClassName",
            "string",
            false
        ));
        let container = "io.k8s.api.core.v1.Container";
        assert!(!omitted_when_zero(container, "name", "string", true));
    }
}
