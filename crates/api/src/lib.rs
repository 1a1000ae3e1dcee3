//! The vocabulary shared by every keelson component: which resources exist ([`resources`]), how
//! API errors look on the wire ([`status`]), field validation ([`validation`]), label and field
//! selectors ([`selector`]), and the map from a resource to its Rust type ([`types`]).
//!
//! This crate has no I/O and depends only on the Kubernetes type definitions.

pub mod quantity;
pub mod resources;
pub mod selector;
pub mod status;
pub mod types;
pub mod validation;

pub use resources::ResourceInfo;
pub use status::{ApiError, Reason};
pub use types::{ApiType, TypeVisitor, visit_type};
pub use validation::{FieldError, Path};
