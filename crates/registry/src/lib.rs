//! Per-resource behaviour: a [`Strategy`](strategy::Strategy) per built-in resource (defaulting,
//! validation, spec/status split, allocation side effects), the generic metadata rules
//! ([`meta`]), and conversion between served versions that share storage ([`convert`]).
//!
//! The API server's generic store asks [`strategy_for`] for a resource's behaviour and never
//! looks at a concrete type itself.

pub mod config;
pub mod convert;
pub mod core;
pub mod meta;
pub mod other;
pub mod strategy;
pub mod workloads;

use std::sync::Arc;

use api::resources::{RESOURCES, ResourceInfo};

pub use config::Config;
pub use strategy::{Admitted, DynStrategy, NameValidation, Strategy};

/// The resource whose stored form `info`'s objects take (itself, unless it is a second view of
/// another version or group, like autoscaling/v1 HPAs or events.k8s.io events).
pub fn storage_info(info: &'static ResourceInfo) -> &'static ResourceInfo {
    RESOURCES
        .iter()
        .find(|r| r.storage_group == info.storage_group && r.plural == info.plural)
        .unwrap_or(info)
}

/// The behaviour of the resource stored as `info` (pass the storage version; see
/// [`storage_info`]). Strategies hold state (allocators), so the server builds each once.
pub fn strategy_for(info: &'static ResourceInfo, config: &Config) -> Arc<dyn DynStrategy> {
    match (info.group, info.plural) {
        ("", "namespaces") => core::namespaces::strategy(info),
        ("", "pods") => workloads::pods::strategy(info),
        ("", "services") => core::services::strategy(info, config),
        ("", "endpoints") => core::endpoints::strategy(info),
        ("", "configmaps") => core::configmaps::strategy(info),
        ("", "secrets") => core::secrets::strategy(info),
        ("", "serviceaccounts") => core::serviceaccounts::strategy(info),
        ("", "nodes") => core::nodes::strategy(info),
        ("", "events") => core::events::strategy(info),
        ("", "persistentvolumes") => core::persistentvolumes::strategy(info),
        ("", "persistentvolumeclaims") => core::persistentvolumeclaims::strategy(info),
        ("", "replicationcontrollers") => workloads::replicationcontrollers::strategy(info),
        ("", "resourcequotas") => core::resourcequotas::strategy(info),
        ("", "limitranges") => core::limitranges::strategy(info),
        ("", "podtemplates") => workloads::podtemplates::strategy(info),
        ("apps", "deployments") => workloads::deployments::strategy(info),
        ("apps", "replicasets") => workloads::replicasets::strategy(info),
        ("apps", "statefulsets") => workloads::statefulsets::strategy(info),
        ("apps", "daemonsets") => workloads::daemonsets::strategy(info),
        ("apps", "controllerrevisions") => other::controllerrevisions::strategy(info),
        ("batch", "jobs") => workloads::jobs::strategy(info),
        ("batch", "cronjobs") => workloads::cronjobs::strategy(info),
        ("autoscaling", "horizontalpodautoscalers") => {
            other::horizontalpodautoscalers::strategy(info)
        }
        ("policy", "poddisruptionbudgets") => other::poddisruptionbudgets::strategy(info),
        ("networking.k8s.io", "ingresses") => other::ingresses::strategy(info),
        ("networking.k8s.io", "ingressclasses") => other::ingressclasses::strategy(info),
        ("networking.k8s.io", "networkpolicies") => other::networkpolicies::strategy(info),
        ("rbac.authorization.k8s.io", _) => other::rbac::strategy(info),
        ("storage.k8s.io", _) => other::storage::strategy(info),
        ("coordination.k8s.io", "leases") => other::leases::strategy(info),
        ("discovery.k8s.io", "endpointslices") => other::endpointslices::strategy(info),
        ("scheduling.k8s.io", "priorityclasses") => other::priorityclasses::strategy(info),
        _ => plain(info),
    }
}

/// A resource with only the generic rules.
pub fn plain(info: &'static ResourceInfo) -> Arc<dyn DynStrategy> {
    struct Build;
    impl api::TypeVisitor for Build {
        type Output = Arc<dyn DynStrategy>;
        fn visit<T: api::ApiType>(self, info: &'static ResourceInfo) -> Self::Output {
            Arc::new(strategy::Adapter::new(
                info,
                strategy::Plain::<T>::default(),
            ))
        }
    }
    api::visit_type(info, Build)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_storage_resource_has_a_strategy_of_its_own_kind() {
        for info in RESOURCES {
            let s = storage_info(info);
            let strategy = strategy_for(s, &Config::default());
            assert_eq!(strategy.info().kind, s.kind);
            assert_eq!(strategy.info().group, s.group);
        }
        let v1 = api::resources::lookup("autoscaling", "v1", "horizontalpodautoscalers").unwrap();
        assert_eq!(storage_info(v1).version, "v2");
        let ev = api::resources::lookup("events.k8s.io", "v1", "events").unwrap();
        assert_eq!(storage_info(ev).group, "");
    }
}
