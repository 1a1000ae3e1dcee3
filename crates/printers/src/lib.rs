//! Server-side Table output: what `kubectl get` shows.
//!
//! `kubectl get` asks for `application/json;as=Table;v=v1;g=meta.k8s.io`; the server answers with
//! a `meta.k8s.io/v1` Table whose columns and cells are those Kubernetes 1.33 prints for the kind
//! (`pkg/printers/internalversion` upstream). This crate builds that Table from objects as served
//! JSON, so the apiserver needs to know nothing about the types:
//!
//! * [`Table`] borrows the objects and serializes rows straight from them (the fast path);
//! * [`table`] / [`try_table`] for a list, [`object_table`] for a single object, as JSON values;
//! * [`IncludeObject`] is the `includeObject` query parameter;
//! * [`human_duration`] is the AGE formatting (`5m`, `2d3h`, `3y`).
//!
//! Guarantees: column definitions are always present; every cell is computed as upstream computes
//! it, including the wide (`-o wide`, priority 1) cells, which kubectl hides itself; nothing here
//! panics on input, whatever the objects hold. Objects are read as they would be after the
//! apiserver's defaulting, so a stored object that lacks a defaulted field prints as a real
//! cluster would print it (a Service without `type` is a `ClusterIP` service).

#![forbid(unsafe_code)]

mod columns;
mod duration;
mod format;
mod kinds;
mod quantity;
mod table;
mod view;

pub use duration::human_duration;
pub use table::{IncludeObject, Table, TableError, object_table, table, try_table};
