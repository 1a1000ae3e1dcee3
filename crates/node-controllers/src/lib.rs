//! The node controllers: node lifecycle (health, condition taints, marking pods on lost nodes
//! not ready), taint-based eviction, node IPAM (pod CIDRs) and pod garbage collection — the
//! upstream `nodelifecycle`, `taint-eviction-controller`, `nodeipam` and `podgc` controllers.
//!
//! Pure decisions ([`taints`], [`health`], [`eviction::decide`], [`cidrs`], the selections in
//! [`podgc`]) are separate from the controllers' I/O so they are tested without a server.

pub mod cidrs;
pub mod eviction;
pub mod health;
pub mod ipam;
pub mod lifecycle;
pub mod podgc;
pub mod taints;

use controller_runtime::Controller;

/// The controllers this crate provides, for the controller manager.
pub const CONTROLLERS: &[Controller] = &[
    Controller {
        name: "nodelifecycle",
        start: lifecycle::start,
    },
    Controller {
        name: "taint-eviction-controller",
        start: eviction::start,
    },
    Controller {
        name: "nodeipam",
        start: ipam::start,
    },
    Controller {
        name: "podgc",
        start: podgc::start,
    },
];
