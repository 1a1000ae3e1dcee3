//! Strategies of the remaining groups: autoscaling, policy, networking, RBAC, storage,
//! coordination, discovery, scheduling, and apps/v1 controller revisions.

pub mod controllerrevisions;
pub mod endpointslices;
pub mod horizontalpodautoscalers;
pub mod ingressclasses;
pub mod ingresses;
pub mod leases;
pub mod networkpolicies;
pub mod poddisruptionbudgets;
pub mod priorityclasses;
pub mod rbac;
pub mod storage;
