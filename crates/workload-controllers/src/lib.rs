//! The StatefulSet and DaemonSet controllers and the ControllerRevision history they share
//! (upstream's `pkg/controller/statefulset`, `pkg/controller/daemon` and
//! `pkg/controller/history`).
//!
//! Both are level-triggered: a sync reads the owner, its pods and its revisions from the
//! shared informer caches, acts on the difference and writes status, so any number of syncs
//! of the same state converge, across restarts and leadership changes too.

pub mod daemonset;
pub mod errors;
pub mod handlers;
pub mod history;
pub mod pods;
pub mod statefulset;

use controller_runtime::Controller;

/// The controllers this crate provides, for the controller manager.
pub const CONTROLLERS: &[Controller] = &[
    Controller {
        name: "statefulset",
        start: statefulset::start,
    },
    Controller {
        name: "daemonset",
        start: daemonset::start,
    },
];
