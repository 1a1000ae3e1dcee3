//! [`CidrSet`]: the blocks of one IPv4 cluster CIDR handed out as node pod CIDRs (upstream's
//! `cidrset`, used by the range allocator).
//!
//! Guarantees:
//! * A block is never handed out twice until it is released.
//! * Allocation continues after the last block handed out (wrapping around), as upstream, so a
//!   block just released (its node just deleted) is the last to be reused and a replacement
//!   node does not inherit routes meant for the old one.
//! * At most 2^16 blocks per set (upstream's limit): a wider mask difference is refused.

use std::net::Ipv4Addr;

/// Upstream's `clusterSubnetMaxDiff`.
const MAX_DIFF: u8 = 16;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CidrError {
    #[error("{0:?} is not an IPv4 CIDR like 10.42.0.0/16")]
    Invalid(String),
    #[error(
        "node CIDR mask size /{node} must be at least the cluster CIDR's /{cluster}, at most /30, and at most {MAX_DIFF} bits longer"
    )]
    MaskSize { cluster: u8, node: u8 },
    #[error("{0} is outside the cluster CIDR")]
    OutOfRange(String),
}

/// Parses `a.b.c.d/n` into the network address (host bits cleared) and the prefix length.
pub fn parse_cidr(s: &str) -> Result<(u32, u8), CidrError> {
    let bad = || CidrError::Invalid(s.to_owned());
    let (addr, len) = s.trim().split_once('/').ok_or_else(bad)?;
    let addr: Ipv4Addr = addr.parse().map_err(|_| bad())?;
    let len: u8 = len.parse().map_err(|_| bad())?;
    if len > 32 {
        return Err(bad());
    }
    Ok((u32::from(addr) & mask(len), len))
}

fn mask(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len))
    }
}

/// The blocks of one cluster CIDR.
#[derive(Clone, Debug)]
pub struct CidrSet {
    base: u32,
    cluster_len: u8,
    node_len: u8,
    used: Vec<bool>,
    in_use: usize,
    next: usize,
}

impl CidrSet {
    pub fn new(cluster_cidr: &str, node_mask: u8) -> Result<CidrSet, CidrError> {
        let (base, cluster_len) = parse_cidr(cluster_cidr)?;
        if node_mask < cluster_len || node_mask > 30 || node_mask - cluster_len > MAX_DIFF {
            return Err(CidrError::MaskSize {
                cluster: cluster_len,
                node: node_mask,
            });
        }
        Ok(CidrSet {
            base,
            cluster_len,
            node_len: node_mask,
            used: vec![false; 1 << (node_mask - cluster_len)],
            in_use: 0,
            next: 0,
        })
    }

    fn block(&self, index: usize) -> String {
        let shift = 32 - u32::from(self.node_len);
        // index < 2^16 and shift >= 2, so this stays inside the cluster range.
        let addr = self.base | ((index as u32) << shift);
        format!("{}/{}", Ipv4Addr::from(addr), self.node_len)
    }

    /// The next free block, or `None` when all are taken.
    pub fn allocate(&mut self) -> Option<String> {
        let n = self.used.len();
        for i in 0..n {
            let index = (self.next + i) % n;
            if !self.used[index] {
                self.used[index] = true;
                self.in_use += 1;
                self.next = (index + 1) % n;
                return Some(self.block(index));
            }
        }
        None
    }

    /// The indexes of the blocks `cidr` overlaps.
    fn covered(&self, cidr: &str) -> Result<std::ops::Range<usize>, CidrError> {
        let (addr, len) = parse_cidr(cidr)?;
        let cluster_end = self.base | !mask(self.cluster_len);
        let end = addr | !mask(len);
        if end < self.base || addr > cluster_end {
            return Err(CidrError::OutOfRange(cidr.to_owned()));
        }
        let shift = 32 - u32::from(self.node_len);
        let first = (addr.max(self.base) - self.base) >> shift;
        let last = (end.min(cluster_end) - self.base) >> shift;
        Ok(first as usize..last as usize + 1)
    }

    /// Marks the blocks `cidr` overlaps as used (a node that already has a pod CIDR).
    pub fn occupy(&mut self, cidr: &str) -> Result<(), CidrError> {
        for i in self.covered(cidr)? {
            if !self.used[i] {
                self.used[i] = true;
                self.in_use += 1;
            }
        }
        Ok(())
    }

    /// Frees the blocks `cidr` overlaps.
    pub fn release(&mut self, cidr: &str) -> Result<(), CidrError> {
        for i in self.covered(cidr)? {
            if self.used[i] {
                self.used[i] = false;
                self.in_use -= 1;
            }
        }
        Ok(())
    }

    /// Blocks in use.
    pub fn in_use(&self) -> usize {
        self.in_use
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_come_in_order_and_wrap_around_after_releases() {
        let mut s = CidrSet::new("10.42.0.0/16", 24).unwrap();
        assert_eq!(s.allocate().as_deref(), Some("10.42.0.0/24"));
        assert_eq!(s.allocate().as_deref(), Some("10.42.1.0/24"));
        s.occupy("10.42.2.0/24").unwrap();
        assert_eq!(s.allocate().as_deref(), Some("10.42.3.0/24"));
        s.release("10.42.0.0/24").unwrap();
        // Released blocks are reused only after the others.
        assert_eq!(s.allocate().as_deref(), Some("10.42.4.0/24"));
        assert_eq!(s.in_use(), 4);
    }

    #[test]
    fn exhaustion_and_reuse() {
        let mut s = CidrSet::new("192.168.0.0/30", 30).unwrap();
        assert_eq!(s.allocate().as_deref(), Some("192.168.0.0/30"));
        assert_eq!(s.allocate(), None);
        s.release("192.168.0.0/30").unwrap();
        assert_eq!(s.allocate().as_deref(), Some("192.168.0.0/30"));
        let mut s = CidrSet::new("10.0.0.0/22", 24).unwrap();
        let got: Vec<String> = std::iter::from_fn(|| s.allocate()).collect();
        assert_eq!(
            got,
            ["10.0.0.0/24", "10.0.1.0/24", "10.0.2.0/24", "10.0.3.0/24"]
        );
    }

    #[test]
    fn occupying_handles_other_sizes_and_foreign_ranges() {
        let mut s = CidrSet::new("10.42.0.0/16", 24).unwrap();
        // A /23 covers two blocks; a /25 one.
        s.occupy("10.42.0.0/23").unwrap();
        s.occupy("10.42.2.128/25").unwrap();
        assert_eq!(s.in_use(), 3);
        assert_eq!(s.allocate().as_deref(), Some("10.42.3.0/24"));
        assert_eq!(
            s.occupy("10.0.3.0/24"),
            Err(CidrError::OutOfRange("10.0.3.0/24".into()))
        );
        // A supernet of the cluster range occupies everything.
        s.occupy("10.0.0.0/8").unwrap();
        assert_eq!(s.allocate(), None);
    }

    #[test]
    fn bad_input_is_refused() {
        for (cidr, mask) in [
            ("10.42.0.0", 24),
            ("10.42.0.0/33", 24),
            ("fd00::/64", 80),
            ("x/8", 24),
        ] {
            assert!(
                matches!(CidrSet::new(cidr, mask), Err(CidrError::Invalid(_))),
                "{cidr}"
            );
        }
        assert_eq!(
            CidrSet::new("10.0.0.0/8", 30).unwrap_err(),
            CidrError::MaskSize {
                cluster: 8,
                node: 30
            }
        );
        assert!(CidrSet::new("10.42.0.0/16", 15).is_err());
        // Host bits are cleared, as upstream's net.ParseCIDR does.
        assert_eq!(
            parse_cidr("10.42.7.9/16"),
            Ok((u32::from(Ipv4Addr::new(10, 42, 0, 0)), 16))
        );
    }
}
