//! The `PodSpec` rules shared by pods and every resource with a pod template: defaulting
//! ([`defaults`]), validation ([`validate_pod_spec`], [`validate_template`]), the update rules
//! of a pod ([`validate_pod_spec_update`]), QoS ([`qos_class`]) and quantity checks.
//!
//! Behaviour is upstream Kubernetes 1.33 with its default feature gates; where a gate changes
//! what is accepted, the comment at the check names it.

mod containers;
pub mod defaults;
mod downward;
mod env;
mod mounts;
mod network;
mod probes;
mod resources;
mod scheduling;
mod security;
mod spec;
mod update;
mod volumes;

pub use network::validate_ip;
pub use probes::port_name_errors;
pub use resources::{decode_error, first_bad_quantity, qos_class};
pub use spec::{Opts, image_whitespace, pod_annotations, validate_pod_spec, validate_template};
pub use update::validate_pod_spec_update;
pub use volumes::pvc_spec as validate_pvc_spec;

use api::ApiError;
use k8s_openapi::api::core::v1::PodTemplateSpec;

/// The 400 upstream's decoder returns for a template whose quantities are not quantities.
pub fn check_template_quantities(kind: &str, t: Option<&PodTemplateSpec>) -> Result<(), ApiError> {
    match t.and_then(|t| t.spec.as_ref()).and_then(first_bad_quantity) {
        Some(e) => Err(decode_error(kind, &e)),
        None => Ok(()),
    }
}
