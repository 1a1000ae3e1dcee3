//! keelson's scheduler: assigns pods to nodes through the public API, with a plugin framework
//! shaped like upstream kube-scheduler's (see [`framework`]) and upstream's default plugins.

pub mod framework;
pub mod plugins;
