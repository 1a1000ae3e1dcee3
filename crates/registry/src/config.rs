//! Cluster-wide settings strategies need: the pools Services allocate from.

use std::net::Ipv4Addr;
use std::ops::RangeInclusive;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Cluster IPs come from this network (`--service-cidr`, default 10.43.0.0/16). Its first
    /// address belongs to the `kubernetes` Service in `default`.
    pub service_cidr: (Ipv4Addr, u8),
    /// NodePort Services allocate from this range (`--service-node-port-range`).
    pub node_port_range: RangeInclusive<u16>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            service_cidr: (Ipv4Addr::new(10, 43, 0, 0), 16),
            node_port_range: 30000..=32767,
        }
    }
}
