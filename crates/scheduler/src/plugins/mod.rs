//! The default plugins, each with upstream's name and semantics. Every plugin module exposes
//! `NAME` and `new(args) -> Result<Arc<dyn Plugin>, String>` (args in the
//! `kubescheduler.config.k8s.io/v1` JSON shape, e.g. `NodeResourcesFitArgs`).

pub mod default_binder;
pub mod default_preemption;
pub mod image_locality;
pub mod inter_pod_affinity;
pub mod node_affinity;
pub mod node_name;
pub mod node_ports;
pub mod node_resources;
pub mod node_unschedulable;
pub mod pod_topology_spread;
pub mod taint_toleration;
pub mod volume_binding;
