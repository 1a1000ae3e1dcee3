//! The default plugins, each with upstream's name and semantics.
