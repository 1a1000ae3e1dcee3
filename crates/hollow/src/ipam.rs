//! Addresses for hollow nodes and their pods. Nothing is ever sent to them: they only have to
//! look like a real cluster's and be unique.
//!
//! * Node `i`'s InternalIP is the `i+1`-th address of 172.16.0.0/12.
//! * Node `i`'s pod CIDR is the `i`-th block of 10.0.0.0/8, a /24 unless `--pods-per-node`
//!   needs a bigger one (as the node IPAM controller hands out `--node-cidr-mask-size` blocks).
//! * Within the block, `.0` is the network, `.1` the bridge gateway a CNI plugin would take,
//!   the last address the broadcast; pods get the rest, lowest free first, so an address is
//!   unique on its node for as long as its pod exists.

use std::net::Ipv4Addr;

use crate::config::ConfigError;

const NODE_BASE: u32 = u32::from_be_bytes([172, 16, 0, 0]);
const NODE_SPACE: u32 = 1 << 20;
const POD_BASE: u32 = u32::from_be_bytes([10, 0, 0, 0]);
const POD_SPACE_BITS: u32 = 24;

/// The addressing plan for a given node count and pod density.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Addressing {
    /// Host bits of each node's pod block (8 for a /24).
    host_bits: u32,
}

impl Addressing {
    pub fn new(nodes: u32, pods_per_node: u32) -> Result<Addressing, ConfigError> {
        if nodes >= NODE_SPACE - 1 {
            return Err(ConfigError {
                what: format!("--nodes {nodes}"),
                reason: format!("at most {} nodes fit 172.16.0.0/12", NODE_SPACE - 2),
            });
        }
        let mut host_bits = 8;
        while (1u64 << host_bits) - 3 < u64::from(pods_per_node) {
            host_bits += 1;
        }
        let needed = u64::from(nodes) << host_bits;
        if host_bits > POD_SPACE_BITS || needed > 1u64 << POD_SPACE_BITS {
            return Err(ConfigError {
                what: "pod addresses".to_string(),
                reason: format!(
                    "{nodes} nodes with {pods_per_node} pods each do not fit 10.0.0.0/8; \
                     lower --nodes or --pods-per-node"
                ),
            });
        }
        Ok(Addressing { host_bits })
    }

    /// Addresses in one node's pod block.
    fn block_size(&self) -> u32 {
        1 << self.host_bits
    }

    /// The node's InternalIP.
    pub fn node_ip(&self, node: u32) -> Ipv4Addr {
        Ipv4Addr::from(NODE_BASE + 1 + node)
    }

    /// The node's `spec.podCIDR`.
    pub fn pod_cidr(&self, node: u32) -> String {
        let base = Ipv4Addr::from(POD_BASE + (node << self.host_bits));
        format!("{base}/{}", 32 - self.host_bits)
    }

    /// The pod address at host `offset` of the node's block.
    pub fn pod_ip(&self, node: u32, offset: u32) -> Ipv4Addr {
        Ipv4Addr::from(POD_BASE + (node << self.host_bits) + offset)
    }

    /// The host offset of `ip` if it is a pod address of `node`'s block.
    pub fn pod_offset(&self, node: u32, ip: &str) -> Option<u32> {
        let ip: Ipv4Addr = ip.parse().ok()?;
        let block = POD_BASE + (node << self.host_bits);
        let offset = u32::from(ip).checked_sub(block)?;
        (FIRST_POD..self.block_size() - 1)
            .contains(&offset)
            .then_some(offset)
    }

    /// An empty allocator for one node's pod block.
    pub fn pod_ips(&self) -> PodIps {
        PodIps {
            words: None,
            size: self.block_size(),
        }
    }
}

/// The first host offset handed to pods (`.0` is the network, `.1` the gateway).
const FIRST_POD: u32 = 2;

/// One node's pod addresses in use: a bitmap, allocated on the node's first pod so an idle
/// node costs nothing.
#[derive(Debug)]
pub struct PodIps {
    words: Option<Box<[u64]>>,
    size: u32,
}

impl PodIps {
    fn words(&mut self) -> &mut [u64] {
        let n = self.size.div_ceil(64) as usize;
        self.words
            .get_or_insert_with(|| vec![0; n].into_boxed_slice())
    }

    /// The lowest free offset, now taken; `None` when the block is full.
    pub fn allocate(&mut self) -> Option<u32> {
        let last = self.size - 1; // broadcast: never handed out
        let words = self.words();
        for (w, word) in words.iter_mut().enumerate() {
            if *word == u64::MAX {
                continue;
            }
            let mut free = !*word;
            if w == 0 {
                free &= !((1u64 << FIRST_POD) - 1);
            }
            if free != 0 {
                let bit = free.trailing_zeros();
                let offset = w as u32 * 64 + bit;
                if offset >= last {
                    return None;
                }
                *word |= 1 << bit;
                return Some(offset);
            }
        }
        None
    }

    /// Takes `offset` (a pod found already running with it); false if it was taken or is not
    /// a pod address.
    pub fn reserve(&mut self, offset: u32) -> bool {
        if !(FIRST_POD..self.size - 1).contains(&offset) {
            return false;
        }
        let words = self.words();
        let (w, bit) = ((offset / 64) as usize, offset % 64);
        let was_free = words[w] & (1 << bit) == 0;
        words[w] |= 1 << bit;
        was_free
    }

    /// Frees `offset`.
    pub fn release(&mut self, offset: u32) {
        if offset < self.size
            && let Some(words) = self.words.as_mut()
        {
            words[(offset / 64) as usize] &= !(1 << (offset % 64));
        }
    }

    /// How many addresses are taken.
    pub fn in_use(&self) -> u32 {
        self.words
            .iter()
            .flat_map(|w| w.iter())
            .map(|w| w.count_ones())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_grow_with_pod_density() {
        let cases = [
            (5000, 110, Some("10.19.135.0/24"), "172.16.19.136"),
            (5000, 253, Some("10.19.135.0/24"), "172.16.19.136"),
            (5000, 254, Some("10.39.14.0/23"), "172.16.19.136"),
            (20, 1000, Some("10.0.76.0/22"), "172.16.0.20"),
            (65_537, 110, None, ""),
        ];
        for (nodes, pods, cidr_of_last, ip_of_last) in cases {
            match (Addressing::new(nodes, pods), cidr_of_last) {
                (Ok(a), Some(cidr)) => {
                    assert_eq!(a.pod_cidr(nodes - 1), cidr, "{nodes} x {pods}");
                    assert_eq!(a.node_ip(nodes - 1).to_string(), ip_of_last);
                }
                (Err(_), None) => {}
                (got, want) => panic!("{nodes} x {pods}: got {got:?}, want {want:?}"),
            }
        }
        let a = Addressing::new(3, 110).unwrap();
        assert_eq!(a.node_ip(0).to_string(), "172.16.0.1");
        assert_eq!(a.pod_cidr(0), "10.0.0.0/24");
        assert_eq!(a.pod_ip(2, 2).to_string(), "10.0.2.2");
    }

    #[test]
    fn offsets_belong_to_their_node_only() {
        let a = Addressing::new(10, 110).unwrap();
        let cases = [
            (1, "10.0.1.2", Some(2)),
            (1, "10.0.1.254", Some(254)),
            (1, "10.0.1.255", None),
            (1, "10.0.1.1", None),
            (1, "10.0.2.5", None),
            (0, "10.0.1.5", None),
            (1, "not-an-ip", None),
            (1, "fd00::1", None),
        ];
        for (node, ip, want) in cases {
            assert_eq!(a.pod_offset(node, ip), want, "{node} {ip}");
        }
    }

    #[test]
    fn allocation_is_lowest_free_and_unique_until_released() {
        let a = Addressing::new(1, 110).unwrap();
        let mut ips = a.pod_ips();
        assert_eq!(ips.in_use(), 0);
        assert_eq!(ips.allocate(), Some(2));
        assert_eq!(ips.allocate(), Some(3));
        assert!(ips.reserve(5));
        assert!(!ips.reserve(5), "taken twice");
        assert!(!ips.reserve(1), "the gateway");
        assert!(!ips.reserve(255), "the broadcast");
        assert_eq!(ips.allocate(), Some(4));
        assert_eq!(ips.allocate(), Some(6));
        ips.release(3);
        assert_eq!(ips.allocate(), Some(3));
        // Fill the block: 2..=254 is 253 addresses, then nothing.
        let mut n = ips.in_use();
        while ips.allocate().is_some() {
            n += 1;
        }
        assert_eq!(n, 253);
        assert_eq!(ips.in_use(), 253);
        ips.release(200);
        assert_eq!(ips.allocate(), Some(200));
    }
}
