//! One file per `keelson` command: parse, call the libraries, add context.

pub mod server;
