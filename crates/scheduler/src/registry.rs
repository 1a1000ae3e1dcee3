//! The plugin registry: plugin name → factory, as upstream's `frameworkruntime.Registry`.
//!
//! A profile names the plugins it wants; [`crate::profile::Framework::new`] looks each name up
//! here and calls the factory once with the profile's `pluginConfig` args for it (`None` when
//! the profile configures none, so the plugin applies its own v1 defaults).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use crate::framework::Plugin;
use crate::plugins;

/// Builds one plugin from its args (`kubescheduler.config.k8s.io/v1` JSON shape); the error
/// says what is wrong with the args.
pub type PluginFactory =
    Arc<dyn Fn(Option<&serde_json::Value>) -> Result<Arc<dyn Plugin>, String> + Send + Sync>;

/// An in-tree plugin module's `new`.
type InTreeFactory = fn(Option<&serde_json::Value>) -> Result<Arc<dyn Plugin>, String>;

/// Why a plugin could not be registered.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RegistryError {
    #[error("a plugin named {0:?} is already registered")]
    Duplicate(String),
    #[error("a plugin name must not be empty")]
    EmptyName,
}

/// Plugin factories by name.
#[derive(Clone, Default)]
pub struct Registry {
    factories: BTreeMap<String, PluginFactory>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.factories.keys()).finish()
    }
}

impl Registry {
    /// An empty registry (tests, or a scheduler with only out-of-tree plugins).
    pub fn new() -> Registry {
        Registry::default()
    }

    /// Every in-tree plugin under its upstream name.
    pub fn default_plugins() -> Registry {
        let mut r = Registry::new();
        let in_tree: [(&str, InTreeFactory); 13] = [
            (plugins::default_binder::NAME, plugins::default_binder::new),
            (
                plugins::default_preemption::NAME,
                plugins::default_preemption::new,
            ),
            (plugins::image_locality::NAME, plugins::image_locality::new),
            (
                plugins::inter_pod_affinity::NAME,
                plugins::inter_pod_affinity::new,
            ),
            (plugins::node_affinity::NAME, plugins::node_affinity::new),
            (plugins::node_name::NAME, plugins::node_name::new),
            (plugins::node_ports::NAME, plugins::node_ports::new),
            (plugins::node_resources::NAME, plugins::node_resources::new),
            (
                plugins::node_resources::BALANCED_ALLOCATION_NAME,
                plugins::node_resources::new_balanced_allocation,
            ),
            (
                plugins::node_unschedulable::NAME,
                plugins::node_unschedulable::new,
            ),
            (
                plugins::pod_topology_spread::NAME,
                plugins::pod_topology_spread::new,
            ),
            (
                plugins::taint_toleration::NAME,
                plugins::taint_toleration::new,
            ),
            (plugins::volume_binding::NAME, plugins::volume_binding::new),
        ];
        for (name, factory) in in_tree {
            // The in-tree names are distinct constants; a clash would be a programming error
            // caught by the test below, so it is only logged here.
            if let Err(e) = r.register(name, factory) {
                tracing::error!(error = %e, "registering an in-tree scheduler plugin");
            }
        }
        r
    }

    /// Adds a plugin factory under `name`.
    pub fn register(
        &mut self,
        name: &str,
        factory: impl Fn(Option<&serde_json::Value>) -> Result<Arc<dyn Plugin>, String>
        + Send
        + Sync
        + 'static,
    ) -> Result<(), RegistryError> {
        if name.is_empty() {
            return Err(RegistryError::EmptyName);
        }
        if self.factories.contains_key(name) {
            return Err(RegistryError::Duplicate(name.to_string()));
        }
        self.factories.insert(name.to_string(), Arc::new(factory));
        Ok(())
    }

    /// Removes a plugin (e.g. to replace an in-tree one in tests).
    pub fn unregister(&mut self, name: &str) -> bool {
        self.factories.remove(name).is_some()
    }

    pub fn get(&self, name: &str) -> Option<&PluginFactory> {
        self.factories.get(name)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.factories.contains_key(name)
    }

    /// The registered names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.factories.keys().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fake;
    impl Plugin for Fake {
        fn name(&self) -> &'static str {
            "Fake"
        }
    }

    fn fake(_: Option<&serde_json::Value>) -> Result<Arc<dyn Plugin>, String> {
        Ok(Arc::new(Fake))
    }

    #[test]
    fn register_refuses_duplicates_and_empty_names() {
        let mut r = Registry::new();
        assert_eq!(r.register("Fake", fake), Ok(()));
        assert_eq!(
            r.register("Fake", fake),
            Err(RegistryError::Duplicate("Fake".into()))
        );
        assert_eq!(r.register("", fake), Err(RegistryError::EmptyName));
        assert!(r.contains("Fake"));
        let Some(factory) = r.get("Fake") else {
            panic!("Fake is registered")
        };
        let p = factory(None).unwrap();
        assert_eq!(p.name(), "Fake");
        assert!(r.unregister("Fake"));
        assert!(!r.contains("Fake"));
    }

    #[test]
    fn default_registry_has_every_in_tree_plugin() {
        let r = Registry::default_plugins();
        let names: Vec<&str> = r.names().collect();
        assert_eq!(
            names,
            [
                "DefaultBinder",
                "DefaultPreemption",
                "ImageLocality",
                "InterPodAffinity",
                "NodeAffinity",
                "NodeName",
                "NodePorts",
                "NodeResourcesBalancedAllocation",
                "NodeResourcesFit",
                "NodeUnschedulable",
                "PodTopologySpread",
                "TaintToleration",
                "VolumeBinding",
            ]
        );
    }
}

#[cfg(test)]
mod default_profile_tests {
    use super::*;
    use crate::config::{ExtensionPoint, SchedulerConfiguration};
    use crate::profile::Frameworks;

    #[test]
    fn default_profile_has_upstream_weights() {
        let fws = Frameworks::new(
            &SchedulerConfiguration::default(),
            &Registry::default_plugins(),
        )
        .unwrap();
        let fw = fws.get("default-scheduler").unwrap();
        for (name, weight) in [
            ("TaintToleration", 3),
            ("NodeAffinity", 2),
            ("PodTopologySpread", 2),
            ("InterPodAffinity", 2),
            ("NodeResourcesFit", 1),
            ("NodeResourcesBalancedAllocation", 1),
            ("ImageLocality", 1),
        ] {
            assert_eq!(fw.score_weight(name), Some(weight), "{name}");
        }
        assert_eq!(fw.plugin_names(ExtensionPoint::Bind), ["DefaultBinder"]);
        assert_eq!(
            fw.plugin_names(ExtensionPoint::PostFilter),
            ["DefaultPreemption"]
        );
        let filters = fw.plugin_names(ExtensionPoint::Filter);
        assert_eq!(filters.first(), Some(&"NodeUnschedulable"), "{filters:?}");
    }
}
