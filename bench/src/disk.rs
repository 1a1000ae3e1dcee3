//! The disk under the data directories: how long a small appended write plus `fdatasync`
//! takes. Both keelson and etcd acknowledge a write only once it is synced, so this is the
//! floor under their write latency, and what a 16-client closed loop divides into.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use crate::stats::{Latencies, duration_nanos};

/// Appends `samples` blocks of 4 KiB to a temporary file in `dir`, syncing after each.
pub fn fsync_latency(dir: &Path, samples: usize) -> std::io::Result<Latencies> {
    let mut file = tempfile::tempfile_in(dir)?;
    let block = [0x5au8; 4096];
    let mut nanos = Vec::with_capacity(samples);
    for _ in 0..samples {
        let t = Instant::now();
        file.write_all(&block)?;
        file.sync_data()?;
        nanos.push(duration_nanos(t.elapsed()));
    }
    Ok(Latencies::from_nanos(nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_every_sample() {
        let dir = tempfile::tempdir().expect("tempdir");
        let l = fsync_latency(dir.path(), 5).expect("fsync");
        assert_eq!(l.len(), 5);
        assert!(l.min() > std::time::Duration::ZERO);
    }
}
