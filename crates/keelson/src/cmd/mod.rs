//! One file per `keelson` command: parse, call the libraries, add context.

pub mod history;
pub mod server;
pub mod simulate;
pub mod why;
