//! The Rust type behind each served resource.
//!
//! Generic code that needs the concrete `k8s-openapi` type of a resource (to decode, default,
//! validate, or to read its JSON schema) implements [`TypeVisitor`] once and calls
//! [`visit_type`]; this file is the only place that maps a resource to its type.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::resources::ResourceInfo;

/// What keelson needs of a resource type.
pub trait ApiType:
    k8s_openapi::Resource
    + k8s_openapi::Metadata<Ty = ObjectMeta>
    + Serialize
    + DeserializeOwned
    + schemars::JsonSchema
    + Clone
    + Default
    + std::fmt::Debug
    + Send
    + Sync
    + 'static
{
}

impl<T> ApiType for T where
    T: k8s_openapi::Resource
        + k8s_openapi::Metadata<Ty = ObjectMeta>
        + Serialize
        + DeserializeOwned
        + schemars::JsonSchema
        + Clone
        + Default
        + std::fmt::Debug
        + Send
        + Sync
        + 'static
{
}

/// A computation generic over a resource's type.
pub trait TypeVisitor {
    type Output;
    fn visit<T: ApiType>(self, info: &'static ResourceInfo) -> Self::Output;
}

/// Runs `visitor` with the Rust type of `info`. Every entry of
/// [`RESOURCES`](crate::resources::RESOURCES) has a type (a unit test checks).
pub fn visit_type<V: TypeVisitor>(info: &'static ResourceInfo, visitor: V) -> V::Output {
    use k8s_openapi::api::{
        apps, autoscaling, batch, coordination, core, discovery, events, networking, policy, rbac,
        scheduling, storage,
    };
    macro_rules! table {
        ($( ($g:literal, $v:literal, $k:literal) => $t:ty, )*) => {
            match (info.group, info.version, info.kind) {
                $( ($g, $v, $k) => visitor.visit::<$t>(info), )*
                (g, v, k) => unreachable!("resource {g}/{v} {k} is in RESOURCES but has no type"),
            }
        };
    }
    table! {
        ("", "v1", "Namespace") => core::v1::Namespace,
        ("", "v1", "Pod") => core::v1::Pod,
        ("", "v1", "Service") => core::v1::Service,
        ("", "v1", "Endpoints") => core::v1::Endpoints,
        ("", "v1", "ConfigMap") => core::v1::ConfigMap,
        ("", "v1", "Secret") => core::v1::Secret,
        ("", "v1", "ServiceAccount") => core::v1::ServiceAccount,
        ("", "v1", "Node") => core::v1::Node,
        ("", "v1", "Event") => core::v1::Event,
        ("", "v1", "PersistentVolume") => core::v1::PersistentVolume,
        ("", "v1", "PersistentVolumeClaim") => core::v1::PersistentVolumeClaim,
        ("", "v1", "ReplicationController") => core::v1::ReplicationController,
        ("", "v1", "ResourceQuota") => core::v1::ResourceQuota,
        ("", "v1", "LimitRange") => core::v1::LimitRange,
        ("", "v1", "PodTemplate") => core::v1::PodTemplate,
        ("apps", "v1", "Deployment") => apps::v1::Deployment,
        ("apps", "v1", "ReplicaSet") => apps::v1::ReplicaSet,
        ("apps", "v1", "StatefulSet") => apps::v1::StatefulSet,
        ("apps", "v1", "DaemonSet") => apps::v1::DaemonSet,
        ("apps", "v1", "ControllerRevision") => apps::v1::ControllerRevision,
        ("batch", "v1", "Job") => batch::v1::Job,
        ("batch", "v1", "CronJob") => batch::v1::CronJob,
        ("autoscaling", "v2", "HorizontalPodAutoscaler") => autoscaling::v2::HorizontalPodAutoscaler,
        ("autoscaling", "v1", "HorizontalPodAutoscaler") => autoscaling::v1::HorizontalPodAutoscaler,
        ("policy", "v1", "PodDisruptionBudget") => policy::v1::PodDisruptionBudget,
        ("networking.k8s.io", "v1", "Ingress") => networking::v1::Ingress,
        ("networking.k8s.io", "v1", "IngressClass") => networking::v1::IngressClass,
        ("networking.k8s.io", "v1", "NetworkPolicy") => networking::v1::NetworkPolicy,
        ("rbac.authorization.k8s.io", "v1", "Role") => rbac::v1::Role,
        ("rbac.authorization.k8s.io", "v1", "RoleBinding") => rbac::v1::RoleBinding,
        ("rbac.authorization.k8s.io", "v1", "ClusterRole") => rbac::v1::ClusterRole,
        ("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding") => rbac::v1::ClusterRoleBinding,
        ("storage.k8s.io", "v1", "StorageClass") => storage::v1::StorageClass,
        ("storage.k8s.io", "v1", "CSIDriver") => storage::v1::CSIDriver,
        ("storage.k8s.io", "v1", "CSINode") => storage::v1::CSINode,
        ("storage.k8s.io", "v1", "VolumeAttachment") => storage::v1::VolumeAttachment,
        ("coordination.k8s.io", "v1", "Lease") => coordination::v1::Lease,
        ("discovery.k8s.io", "v1", "EndpointSlice") => discovery::v1::EndpointSlice,
        ("scheduling.k8s.io", "v1", "PriorityClass") => scheduling::v1::PriorityClass,
        ("events.k8s.io", "v1", "Event") => events::v1::Event,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::RESOURCES;

    struct Check;
    impl TypeVisitor for Check {
        type Output = ();
        fn visit<T: ApiType>(self, info: &'static ResourceInfo) {
            assert_eq!(T::KIND, info.kind);
            assert_eq!(T::GROUP, info.group);
            assert_eq!(T::VERSION, info.version);
            assert_eq!(T::URL_PATH_SEGMENT, info.plural);
        }
    }

    #[test]
    fn every_resource_has_its_type() {
        for info in RESOURCES {
            visit_type(info, Check);
        }
    }
}
