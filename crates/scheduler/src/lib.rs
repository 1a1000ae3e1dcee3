//! keelson's scheduler: assigns pods to nodes through the public API, with a plugin framework
//! shaped like upstream kube-scheduler's (see [`framework`]) and upstream's default plugins.

pub mod algorithm;
pub mod cache;
pub mod config;
pub mod diagnose;
pub mod events;
pub mod framework;
pub mod informers;
pub mod plugins;
pub mod profile;
pub mod published;
pub mod queue;
pub mod registry;
pub mod runtime;
