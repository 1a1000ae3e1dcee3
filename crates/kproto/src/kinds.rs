//! The kinds a protobuf body may carry: for each, the prost message that decodes it and the
//! `k8s-openapi` type whose JSON schema names its fields.
//!
//! This table is the only per-kind knowledge in the crate, and it holds no conversion logic:
//! adding a kind is one line pairing the two generated types. The apiVersion and kind come from
//! the `k8s-openapi` type's `Resource` impl, so they cannot drift from what the JSON side serves.

use std::fmt::Debug;

use k8s_openapi::api::{
    admissionregistration, apps, authentication, authorization, autoscaling, batch, certificates,
    coordination, core, discovery, events, flowcontrol, networking, node, policy, rbac, scheduling,
    storage,
};
use k8s_openapi::apimachinery::pkg::apis::meta;
use k8s_pb::api as pb;
use k8s_pb::apimachinery::pkg::apis::meta as pb_meta;
use schemars::{JsonSchema, Schema, SchemaGenerator};

/// Decodes `raw` as one message type and renders it with its `Debug` impl.
pub type DecodeFn = fn(&[u8]) -> Result<String, prost::DecodeError>;

/// One kind that may arrive as protobuf.
#[derive(Clone, Copy)]
pub struct KindEntry {
    /// `v1`, `apps/v1`...; `None` for option kinds such as DeleteOptions that every group
    /// version accepts (client-go encodes them in the group version of the resource).
    pub api_version: Option<&'static str>,
    pub kind: &'static str,
    pub decode: DecodeFn,
    /// Registers the JSON schema (and everything it refers to) with a generator.
    pub register: fn(&mut SchemaGenerator) -> Schema,
    /// The schema's definition name, e.g. `io.k8s.api.core.v1.Namespace`.
    pub definition: fn() -> std::borrow::Cow<'static, str>,
}

fn decode_as<T: prost::Message + Default + Debug>(
    raw: &[u8],
) -> Result<String, prost::DecodeError> {
    T::decode(raw).map(|msg| format!("{msg:?}"))
}

macro_rules! kinds {
    (
        resources { $( $pb:ty => $oa:ty, )* }
        options { $( $opb:ty => $ooa:ty as $okind:literal, )* }
    ) => {
        &[
            $( KindEntry {
                api_version: Some(<$oa as k8s_openapi::Resource>::API_VERSION),
                kind: <$oa as k8s_openapi::Resource>::KIND,
                decode: decode_as::<$pb>,
                register: |g| g.subschema_for::<$oa>(),
                definition: <$oa as JsonSchema>::schema_name,
            }, )*
            $( KindEntry {
                api_version: None,
                kind: $okind,
                decode: decode_as::<$opb>,
                register: |g| g.subschema_for::<$ooa>(),
                definition: <$ooa as JsonSchema>::schema_name,
            }, )*
        ]
    };
}

/// Every kind keelson accepts as protobuf: each served resource (see `api::resources`), the
/// subresource and review bodies clients post, and the option kinds sent as bodies.
pub static KINDS: &[KindEntry] = kinds! {
    resources {
        pb::core::v1::Namespace => core::v1::Namespace,
        pb::core::v1::Pod => core::v1::Pod,
        pb::core::v1::Service => core::v1::Service,
        pb::core::v1::Endpoints => core::v1::Endpoints,
        pb::core::v1::ConfigMap => core::v1::ConfigMap,
        pb::core::v1::Secret => core::v1::Secret,
        pb::core::v1::ServiceAccount => core::v1::ServiceAccount,
        pb::core::v1::Node => core::v1::Node,
        pb::core::v1::Event => core::v1::Event,
        pb::core::v1::PersistentVolume => core::v1::PersistentVolume,
        pb::core::v1::PersistentVolumeClaim => core::v1::PersistentVolumeClaim,
        pb::core::v1::ReplicationController => core::v1::ReplicationController,
        pb::core::v1::ResourceQuota => core::v1::ResourceQuota,
        pb::core::v1::LimitRange => core::v1::LimitRange,
        pb::core::v1::PodTemplate => core::v1::PodTemplate,
        pb::core::v1::Binding => core::v1::Binding,
        pb::apps::v1::Deployment => apps::v1::Deployment,
        pb::apps::v1::ReplicaSet => apps::v1::ReplicaSet,
        pb::apps::v1::StatefulSet => apps::v1::StatefulSet,
        pb::apps::v1::DaemonSet => apps::v1::DaemonSet,
        pb::apps::v1::ControllerRevision => apps::v1::ControllerRevision,
        pb::batch::v1::Job => batch::v1::Job,
        pb::batch::v1::CronJob => batch::v1::CronJob,
        pb::autoscaling::v1::HorizontalPodAutoscaler => autoscaling::v1::HorizontalPodAutoscaler,
        pb::autoscaling::v1::Scale => autoscaling::v1::Scale,
        pb::autoscaling::v2::HorizontalPodAutoscaler => autoscaling::v2::HorizontalPodAutoscaler,
        pb::policy::v1::PodDisruptionBudget => policy::v1::PodDisruptionBudget,
        pb::policy::v1::Eviction => policy::v1::Eviction,
        pb::networking::v1::Ingress => networking::v1::Ingress,
        pb::networking::v1::IngressClass => networking::v1::IngressClass,
        pb::networking::v1::NetworkPolicy => networking::v1::NetworkPolicy,
        pb::networking::v1::IPAddress => networking::v1::IPAddress,
        pb::networking::v1::ServiceCIDR => networking::v1::ServiceCIDR,
        pb::rbac::v1::Role => rbac::v1::Role,
        pb::rbac::v1::RoleBinding => rbac::v1::RoleBinding,
        pb::rbac::v1::ClusterRole => rbac::v1::ClusterRole,
        pb::rbac::v1::ClusterRoleBinding => rbac::v1::ClusterRoleBinding,
        pb::storage::v1::StorageClass => storage::v1::StorageClass,
        pb::storage::v1::CSIDriver => storage::v1::CSIDriver,
        pb::storage::v1::CSINode => storage::v1::CSINode,
        pb::storage::v1::VolumeAttachment => storage::v1::VolumeAttachment,
        pb::storage::v1::CSIStorageCapacity => storage::v1::CSIStorageCapacity,
        pb::coordination::v1::Lease => coordination::v1::Lease,
        pb::discovery::v1::EndpointSlice => discovery::v1::EndpointSlice,
        pb::scheduling::v1::PriorityClass => scheduling::v1::PriorityClass,
        pb::events::v1::Event => events::v1::Event,
        pb::node::v1::RuntimeClass => node::v1::RuntimeClass,
        pb::flowcontrol::v1::FlowSchema => flowcontrol::v1::FlowSchema,
        pb::flowcontrol::v1::PriorityLevelConfiguration => flowcontrol::v1::PriorityLevelConfiguration,
        pb::admissionregistration::v1::ValidatingWebhookConfiguration => admissionregistration::v1::ValidatingWebhookConfiguration,
        pb::admissionregistration::v1::MutatingWebhookConfiguration => admissionregistration::v1::MutatingWebhookConfiguration,
        pb::admissionregistration::v1::ValidatingAdmissionPolicy => admissionregistration::v1::ValidatingAdmissionPolicy,
        pb::admissionregistration::v1::ValidatingAdmissionPolicyBinding => admissionregistration::v1::ValidatingAdmissionPolicyBinding,
        pb::authentication::v1::TokenRequest => authentication::v1::TokenRequest,
        pb::authentication::v1::TokenReview => authentication::v1::TokenReview,
        pb::authentication::v1::SelfSubjectReview => authentication::v1::SelfSubjectReview,
        pb::authorization::v1::SubjectAccessReview => authorization::v1::SubjectAccessReview,
        pb::authorization::v1::SelfSubjectAccessReview => authorization::v1::SelfSubjectAccessReview,
        pb::authorization::v1::LocalSubjectAccessReview => authorization::v1::LocalSubjectAccessReview,
        pb::authorization::v1::SelfSubjectRulesReview => authorization::v1::SelfSubjectRulesReview,
        pb::certificates::v1::CertificateSigningRequest => certificates::v1::CertificateSigningRequest,
    }
    options {
        pb_meta::v1::DeleteOptions => meta::v1::DeleteOptions as "DeleteOptions",
    }
};

/// The entry for `api_version`/`kind`, if protobuf bodies of that kind are understood.
pub fn lookup(api_version: &str, kind: &str) -> Option<&'static KindEntry> {
    KINDS
        .iter()
        .find(|k| k.kind == kind && k.api_version.is_none_or(|v| v == api_version))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_served_resource_can_arrive_as_protobuf() {
        for info in api::resources::RESOURCES {
            let api_version = info.api_version();
            assert!(
                lookup(&api_version, info.kind).is_some(),
                "{api_version} {} has no protobuf decoder",
                info.kind
            );
        }
    }

    #[test]
    fn kinds_are_unique_and_option_kinds_match_any_version() {
        for (i, a) in KINDS.iter().enumerate() {
            for b in &KINDS[i + 1..] {
                assert!(
                    (a.api_version, a.kind) != (b.api_version, b.kind),
                    "{:?} {} twice",
                    a.api_version,
                    a.kind
                );
            }
        }
        assert!(lookup("policy/v1", "DeleteOptions").is_some());
        assert!(lookup("v1", "Scale").is_none());
        assert_eq!(
            lookup("autoscaling/v1", "HorizontalPodAutoscaler").map(|k| (k.definition)()),
            Some("io.k8s.api.autoscaling.v1.HorizontalPodAutoscaler".into())
        );
    }
}
