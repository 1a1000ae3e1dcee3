//! The Endpoints and EndpointSlice controllers: publish, for every Service with a selector,
//! the addresses of the pods it selects — as one Endpoints object of the Service's name
//! ([`endpoints`]) and as EndpointSlices of at most 100 endpoints ([`slices`]) — following
//! upstream's `pkg/controller/endpoint` and `pkg/controller/endpointslice`.
//!
//! Both are keyed by Service and level-triggered: a sync reads the Service, its pods (and
//! nodes, for zones) from the shared informers and writes only what differs. Pod events are
//! mapped to the Services they can affect ([`membership`]); which pods count and how their
//! ports resolve is in [`pods`].

pub mod endpoints;
pub mod errors;
pub mod membership;
pub mod pods;
pub mod slices;
pub mod trigger;

use controller_runtime::Controller;

/// The controllers this crate provides, for the controller manager.
pub const CONTROLLERS: &[Controller] = &[
    Controller {
        name: "endpoint",
        start: endpoints::start,
    },
    Controller {
        name: "endpointslice",
        start: slices::start,
    },
];
