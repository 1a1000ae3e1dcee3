//! The lifecycle controllers: the garbage collector ([`gc`]), the namespace controller
//! ([`namespace`]), the ServiceAccount controller ([`serviceaccount`]) and the root CA
//! publisher ([`rootca`]), with the upstream names kube-controller-manager's `--controllers`
//! uses.
//!
//! The garbage collector and the namespace controller work on every type the server serves,
//! found through [`discovery`], not on a fixed list: CustomResources are collected and
//! deleted with their namespaces like built-in types.

pub mod discovery;
pub mod gc;
pub mod namespace;
pub mod rootca;
pub mod serviceaccount;

use controller_runtime::Controller;

/// The controllers this crate provides, for the controller manager.
pub const CONTROLLERS: &[Controller] = &[
    Controller {
        name: "garbagecollector",
        start: gc::start,
    },
    Controller {
        name: "namespace",
        start: namespace::start,
    },
    Controller {
        name: "serviceaccount",
        start: serviceaccount::start,
    },
    Controller {
        name: "root-ca-cert-publisher",
        start: rootca::start,
    },
];
