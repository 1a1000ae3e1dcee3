//! Pools that Services allocate from: cluster IPs out of the service CIDR and node ports out of
//! the node-port range.
//!
//! Each pool is a bitmap behind a mutex. Automatic allocation scans forward from just after
//! the last value handed out (wrapping), so a value released a moment ago is the last to be
//! reused, which keeps proxies and DNS caches from confusing an old Service with a new one.
//! Guarantees: a value is held by at most one caller at a time; values outside the range are
//! refused with upstream's message; for cluster IPs the network and broadcast addresses are
//! never valid, and the first address (the `kubernetes` Service's) is only ever handed out when
//! asked for by value.
//!
//! Work that may have to be undone takes a [`Txn`]: with `dry_run` it runs against a private
//! copy, so it can check availability and pick values without reserving anything.

use std::net::Ipv4Addr;
use std::ops::RangeInclusive;
use std::sync::{Mutex, MutexGuard};

/// Why a value could not be allocated. The messages are upstream's.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AllocError {
    #[error("range is full")]
    Full,
    #[error("provided IP is already allocated")]
    IpAllocated,
    #[error("the provided IP ({ip}) is not in the valid range. The range of valid IPs is {range}")]
    IpNotInRange { ip: String, range: String },
    #[error("provided port is already allocated")]
    PortAllocated,
    #[error("provided port is not in the valid range. The range of valid ports is {range}")]
    PortNotInRange { range: String },
}

/// A fixed-size set of offsets.
#[derive(Clone, Debug)]
struct Bitmap {
    words: Vec<u64>,
    size: u32,
    used: u32,
}

impl Bitmap {
    fn new(size: u32) -> Self {
        Bitmap {
            words: vec![0; (size as usize).div_ceil(64)],
            size,
            used: 0,
        }
    }

    fn has(&self, i: u32) -> bool {
        self.words
            .get((i / 64) as usize)
            .is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    /// Sets bit `i`; false if it was already set.
    fn set(&mut self, i: u32) -> bool {
        match self.words.get_mut((i / 64) as usize) {
            Some(w) if *w & (1 << (i % 64)) == 0 => {
                *w |= 1 << (i % 64);
                self.used += 1;
                true
            }
            _ => false,
        }
    }

    fn clear(&mut self, i: u32) {
        if let Some(w) = self.words.get_mut((i / 64) as usize)
            && *w & (1 << (i % 64)) != 0
        {
            *w &= !(1 << (i % 64));
            self.used -= 1;
        }
    }

    /// The first clear bit in `lo..size`, scanning from `from` and wrapping to `lo`.
    fn next_clear(&self, lo: u32, from: u32) -> Option<u32> {
        let from = from.clamp(lo, self.size);
        (from..self.size).chain(lo..from).find(|&i| !self.has(i))
    }
}

/// The mutable state of one pool.
#[derive(Clone, Debug)]
pub struct Pool {
    bits: Bitmap,
    /// Where the next automatic allocation starts looking.
    cursor: u32,
}

/// How values of one kind map onto bitmap offsets.
pub trait Space: Send + Sync {
    type Value: Copy + std::fmt::Display;
    /// Number of offsets.
    fn size(&self) -> u32;
    /// The offset of `v`, or the not-in-range error.
    fn offset(&self, v: Self::Value) -> Result<u32, AllocError>;
    fn value(&self, offset: u32) -> Self::Value;
    /// Offsets below this are only allocated when asked for by value.
    fn dynamic_start(&self) -> u32;
    fn allocated_error(&self) -> AllocError;
}

/// Cluster IPs: the usable addresses of an IPv4 CIDR.
#[derive(Clone, Debug)]
pub struct Ipv4Space {
    network: u32,
    prefix: u8,
    /// First and last usable address (network and broadcast excluded).
    first: u32,
    last: u32,
}

impl Ipv4Space {
    pub fn new(network: Ipv4Addr, prefix: u8) -> Self {
        let prefix = prefix.min(32);
        let mask = if prefix == 0 {
            0
        } else {
            u32::MAX << (32 - prefix)
        };
        let network = u32::from(network) & mask;
        let broadcast = network | !mask;
        // Tiny ranges have no room for network and broadcast addresses to be set aside.
        let (first, last) = if prefix >= 31 {
            (network, broadcast)
        } else {
            (network + 1, broadcast - 1)
        };
        Ipv4Space {
            network,
            prefix,
            first,
            last,
        }
    }

    /// `10.43.0.0/16`.
    pub fn cidr(&self) -> String {
        format!("{}/{}", Ipv4Addr::from(self.network), self.prefix)
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        (self.first..=self.last).contains(&u32::from(ip))
    }
}

impl Space for Ipv4Space {
    type Value = Ipv4Addr;

    fn size(&self) -> u32 {
        // A /0 would not fit; cap at what a bitmap of u32 offsets holds.
        (self.last - self.first).saturating_add(1)
    }

    fn offset(&self, ip: Ipv4Addr) -> Result<u32, AllocError> {
        if self.contains(ip) {
            Ok(u32::from(ip) - self.first)
        } else {
            Err(AllocError::IpNotInRange {
                ip: ip.to_string(),
                range: self.cidr(),
            })
        }
    }

    fn value(&self, offset: u32) -> Ipv4Addr {
        Ipv4Addr::from(self.first + offset)
    }

    fn dynamic_start(&self) -> u32 {
        // The first usable address belongs to the `kubernetes` Service.
        1.min(self.size())
    }

    fn allocated_error(&self) -> AllocError {
        AllocError::IpAllocated
    }
}

/// Node ports: a range of port numbers.
#[derive(Clone, Debug)]
pub struct PortSpace {
    range: RangeInclusive<u16>,
}

impl PortSpace {
    pub fn new(range: RangeInclusive<u16>) -> Self {
        PortSpace { range }
    }

    pub fn contains(&self, port: i32) -> bool {
        u16::try_from(port).is_ok_and(|p| self.range.contains(&p))
    }

    fn not_in_range(&self) -> AllocError {
        AllocError::PortNotInRange {
            range: format!("{}-{}", self.range.start(), self.range.end()),
        }
    }
}

impl Space for PortSpace {
    type Value = i32;

    fn size(&self) -> u32 {
        if self.range.is_empty() {
            0
        } else {
            u32::from(*self.range.end()) - u32::from(*self.range.start()) + 1
        }
    }

    fn offset(&self, port: i32) -> Result<u32, AllocError> {
        if self.contains(port) {
            Ok((port - i32::from(*self.range.start())) as u32)
        } else {
            Err(self.not_in_range())
        }
    }

    fn value(&self, offset: u32) -> i32 {
        i32::from(*self.range.start()) + offset as i32
    }

    fn dynamic_start(&self) -> u32 {
        0
    }

    fn allocated_error(&self) -> AllocError {
        AllocError::PortAllocated
    }
}

/// A pool of values of one [`Space`].
pub struct Allocator<S: Space> {
    space: S,
    pool: Mutex<Pool>,
}

impl<S: Space> Allocator<S> {
    pub fn new(space: S) -> Self {
        let size = space.size();
        let cursor = space.dynamic_start();
        Allocator {
            space,
            pool: Mutex::new(Pool {
                bits: Bitmap::new(size),
                cursor,
            }),
        }
    }

    pub fn space(&self) -> &S {
        &self.space
    }

    fn lock(&self) -> MutexGuard<'_, Pool> {
        // A panic while holding the lock cannot leave the bitmap half-updated (every update
        // is a single bit flip), so a poisoned lock is still safe to use.
        self.pool.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts a batch of allocations; with `dry_run` nothing is reserved.
    pub fn txn(&self, dry_run: bool) -> Txn<'_, S> {
        let guard = self.lock();
        let scratch = dry_run.then(|| guard.clone());
        Txn {
            space: &self.space,
            guard,
            scratch,
            taken: Vec::new(),
        }
    }

    /// Reserves `v` outside any transaction (used to rebuild the pool at startup).
    pub fn mark(&self, v: S::Value) -> Result<(), AllocError> {
        self.txn(false).allocate(v)
    }

    /// Returns `v` to the pool; values outside the range are ignored.
    pub fn release(&self, v: S::Value) {
        if let Ok(off) = self.space.offset(v) {
            self.lock().bits.clear(off);
        }
    }

    pub fn has(&self, v: S::Value) -> bool {
        self.space
            .offset(v)
            .is_ok_and(|off| self.lock().bits.has(off))
    }

    /// How many values are in use.
    pub fn used(&self) -> u32 {
        self.lock().bits.used
    }
}

/// Allocations made while holding a pool's lock. Dropping it keeps what was allocated; call
/// [`Txn::revert`] to give it all back.
pub struct Txn<'a, S: Space> {
    space: &'a S,
    guard: MutexGuard<'a, Pool>,
    /// The private copy a dry run works on.
    scratch: Option<Pool>,
    taken: Vec<u32>,
}

impl<S: Space> Txn<'_, S> {
    fn pool(&mut self) -> &mut Pool {
        match &mut self.scratch {
            Some(p) => p,
            None => &mut self.guard,
        }
    }

    /// Reserves a specific value.
    pub fn allocate(&mut self, v: S::Value) -> Result<(), AllocError> {
        let off = self.space.offset(v)?;
        if !self.pool().bits.set(off) {
            return Err(self.space.allocated_error());
        }
        self.taken.push(off);
        Ok(())
    }

    /// Reserves any free value.
    pub fn allocate_next(&mut self) -> Result<S::Value, AllocError> {
        let lo = self.space.dynamic_start();
        let pool = self.pool();
        let off = pool
            .bits
            .next_clear(lo, pool.cursor)
            .ok_or(AllocError::Full)?;
        pool.bits.set(off);
        pool.cursor = off + 1;
        self.taken.push(off);
        Ok(self.space.value(off))
    }

    /// Returns everything this transaction allocated.
    pub fn revert(mut self) {
        let taken = std::mem::take(&mut self.taken);
        let pool = self.pool();
        for off in taken {
            pool.bits.clear(off);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests a failed unwrap is a failed assertion
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::sync::Arc;

    fn ips(cidr: (Ipv4Addr, u8)) -> Allocator<Ipv4Space> {
        Allocator::new(Ipv4Space::new(cidr.0, cidr.1))
    }

    #[test]
    fn ip_range_edges() {
        let a = ips((Ipv4Addr::new(10, 43, 0, 0), 29));
        assert_eq!(a.space().cidr(), "10.43.0.0/29");
        let mut t = a.txn(false);
        // Network and broadcast addresses are never valid.
        assert_eq!(
            t.allocate(Ipv4Addr::new(10, 43, 0, 0))
                .unwrap_err()
                .to_string(),
            "the provided IP (10.43.0.0) is not in the valid range. The range of valid IPs is 10.43.0.0/29"
        );
        assert!(t.allocate(Ipv4Addr::new(10, 43, 0, 7)).is_err());
        // Automatic allocation skips the first address.
        let got: Vec<Ipv4Addr> = (0..5).map(|_| t.allocate_next().unwrap()).collect();
        assert_eq!(got[0], Ipv4Addr::new(10, 43, 0, 2));
        assert_eq!(got[4], Ipv4Addr::new(10, 43, 0, 6));
        assert_eq!(t.allocate_next(), Err(AllocError::Full));
        // ... but it can be asked for.
        t.allocate(Ipv4Addr::new(10, 43, 0, 1)).unwrap();
        assert_eq!(
            t.allocate(Ipv4Addr::new(10, 43, 0, 1))
                .unwrap_err()
                .to_string(),
            "provided IP is already allocated"
        );
        drop(t);
        assert_eq!(a.used(), 6);
    }

    #[test]
    fn release_and_reuse_last() {
        let a = Allocator::new(PortSpace::new(30000..=30002));
        let p: Vec<i32> = {
            let mut t = a.txn(false);
            (0..3).map(|_| t.allocate_next().unwrap()).collect()
        };
        assert_eq!(p, [30000, 30001, 30002]);
        a.release(30000);
        a.release(30001);
        let mut t = a.txn(false);
        // The cursor wrapped: the oldest free value comes first.
        assert_eq!(t.allocate_next().unwrap(), 30000);
        assert_eq!(t.allocate_next().unwrap(), 30001);
        assert_eq!(t.allocate_next(), Err(AllocError::Full));
        assert_eq!(
            t.allocate(29999).unwrap_err().to_string(),
            "provided port is not in the valid range. The range of valid ports is 30000-30002"
        );
        t.revert();
        assert_eq!(a.used(), 1);
        assert!(a.has(30002) && !a.has(30000));
    }

    #[test]
    fn dry_run_reserves_nothing() {
        let a = Allocator::new(PortSpace::new(30000..=30009));
        a.mark(30000).unwrap();
        let mut t = a.txn(true);
        assert_eq!(t.allocate_next().unwrap(), 30001);
        assert_eq!(t.allocate_next().unwrap(), 30002);
        assert_eq!(t.allocate(30000), Err(AllocError::PortAllocated));
        drop(t);
        assert_eq!(a.used(), 1);
        assert_eq!(a.txn(false).allocate_next().unwrap(), 30001);
    }

    #[test]
    fn concurrent_allocations_never_collide() {
        let a = Arc::new(ips((Ipv4Addr::new(10, 0, 0, 0), 22)));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let a = a.clone();
                std::thread::spawn(move || {
                    let mut got = Vec::new();
                    for _ in 0..200 {
                        match a.txn(false).allocate_next() {
                            Ok(ip) => got.push(ip),
                            Err(AllocError::Full) => break,
                            Err(e) => panic!("{e}"),
                        }
                    }
                    got
                })
            })
            .collect();
        let mut all = HashSet::new();
        let mut count = 0;
        for t in threads {
            for ip in t.join().unwrap() {
                assert!(all.insert(ip), "{ip} handed out twice");
                count += 1;
            }
        }
        // A /22 has 1022 usable addresses, one of them reserved for `kubernetes`.
        assert_eq!(count, 1021);
        assert_eq!(a.used(), 1021);
    }
}
