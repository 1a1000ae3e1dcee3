//! The three patch types the Kubernetes API server accepts, applied to `serde_json::Value`s
//! with upstream's semantics:
//!
//! * [`json_patch`] — JSON Patch, RFC 6902 (`application/json-patch+json`);
//! * [`merge_patch`] — JSON Merge Patch, RFC 7386 (`application/merge-patch+json`);
//! * [`strategic_merge_patch`] — strategic merge patch
//!   (`application/strategic-merge-patch+json`), which needs the object's type for its patch
//!   metadata ([`SchemaIndex`], [`field_patch_meta`]).
//!
//! Every function leaves its inputs untouched and either returns the whole patched document or
//! a [`PatchError`] whose [`status_class`](PatchError::status_class) says how upstream answers
//! it. Nothing here panics on any input. Decoding the result into the resource type (and the
//! 422 that upstream answers when that fails) is the caller's job.

pub mod error;
pub mod json_patch;
pub mod merge_patch;
pub mod strategic;

pub use error::{PatchError, StatusClass};
pub use json_patch::{JsonPatchLimits, json_patch, json_patch_with_limits};
pub use merge_patch::merge_patch;
pub use strategic::{
    PatchMeta, SchemaIndex, all_patch_meta, field_patch_meta, strategic_merge_patch,
    strategic_merge_patch_owned, strategic_merge_patch_with,
};
