//! Behaviour of this resource; only the generic rules so far.

use std::sync::Arc;

use api::resources::ResourceInfo;

use crate::{Config, DynStrategy};

pub fn strategy(info: &'static ResourceInfo, _config: &Config) -> Arc<dyn DynStrategy> {
    crate::plain(info)
}
