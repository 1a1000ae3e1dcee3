//! Strategies of core/v1 resources other than the pod-carrying workloads.

pub mod common;
pub mod configmaps;
pub mod endpoints;
pub mod events;
pub mod limitranges;
pub mod namespaces;
pub mod nodes;
pub mod persistentvolumeclaims;
pub mod persistentvolumes;
pub mod resourcequotas;
pub mod secrets;
pub mod serviceaccounts;
pub mod services;

#[cfg(test)]
pub(crate) mod testing;
