//! Fair share of the ring (policy in `bpf/syshub_abi.h`): once the ring is
//! more than `fair_share_pct` percent full, a key may keep at most as many
//! bytes pending in it as are still free, so one flooding key cannot make
//! another key's records drop. What exceeds the share is dropped and counted
//! per key as `over_share` (part of `dropped`).
//!
//! The kernel knows what each key wrote; what the reader took out of the ring
//! comes back through the `key_read` map: the reader thread calls the
//! [`ReadFeedback`] with the records per key of every batch it drained, and
//! the feedback adds them to the key's entry. Entries live with the key's
//! counters (created at 0 when a key is added, deleted when it is removed),
//! under one lock, so a removed and re-added key never inherits old counts.

use std::sync::{Arc, Mutex};

use aya::maps::{HashMap as BpfHashMap, MapData};

use super::Probe;
use crate::abi::FilterKey;
use crate::error::{Error, Result};

/// `BPF_NOEXIST` / `BPF_EXIST` map update flags (include/uapi/linux/bpf.h).
pub(super) const BPF_NOEXIST: u64 = 1;
const BPF_EXIST: u64 = 2;

/// Percent of the ring past which keys are held to their share (default).
pub const FAIR_SHARE_PCT: u8 = 50;

/// The `key_read` map, shared by the probe and the reader's feedback.
pub(super) type KeyRead = Arc<Mutex<BpfHashMap<MapData, FilterKey, u64>>>;

/// Called by the reader thread with the records per key of each batch it
/// took out of the ring.
pub type ReadFeedback = crate::reader::OnRead;

/// Pending bytes past which the fair share applies: `pct` percent of
/// `ring_bytes`; 100 (or more) turns the fair share off.
#[must_use]
pub fn share_from(ring_bytes: u32, pct: u8) -> u64 {
    if pct >= 100 {
        u64::MAX
    } else {
        u64::from(ring_bytes) * u64::from(pct) / 100
    }
}

/// Checks a `fair_share_pct` setting.
///
/// # Errors
/// [`Error::InvalidArgument`] above 100.
pub fn check_pct(pct: u8) -> Result<u8> {
    if pct > 100 {
        return Err(Error::InvalidArgument(format!(
            "fair share threshold must be 0..=100 percent of the ring, got {pct}"
        )));
    }
    Ok(pct)
}

fn errno_of(e: &aya::maps::MapError) -> Option<i32> {
    match e {
        aya::maps::MapError::SyscallError(s) => s.io_error.raw_os_error(),
        _ => None,
    }
}

impl Probe {
    /// The feedback the reader thread calls with each batch's records per
    /// key (a no-op when the fair share is off).
    #[must_use]
    pub fn read_feedback(&self) -> ReadFeedback {
        if !self.fair_share {
            return Box::new(|_| {});
        }
        let map = Arc::clone(&self.key_read);
        Box::new(move |per_key| {
            let Ok(mut m) = map.lock() else { return };
            for (k, n) in per_key {
                // A key removed meanwhile has no entry: nothing to count.
                if let Ok(v) = m.get(k, 0) {
                    let _ = m.insert(*k, v.saturating_add(*n), BPF_EXIST);
                }
            }
        })
    }

    /// Creates the read count of a new key (at 0; kept if the key is live).
    pub(super) fn open_key_read(&self, key: FilterKey) -> Result<()> {
        let mut m = self
            .key_read
            .lock()
            .map_err(|_| Error::Bpf("key_read lock poisoned".into()))?;
        match m.insert(key, 0, BPF_NOEXIST) {
            Ok(()) => Ok(()),
            Err(e) if errno_of(&e) == Some(libc::EEXIST) => Ok(()),
            Err(e) => Err(Error::Bpf(format!(
                "creating the read count of {key:?}: {e}"
            ))),
        }
    }

    /// Deletes the read count of a removed key.
    pub(super) fn close_key_read(&self, key: FilterKey) {
        if let Ok(mut m) = self.key_read.lock() {
            let _ = m.remove(&key);
        }
    }

    /// Entries of the `key_read` map (for tests: one per live key).
    ///
    /// # Errors
    /// A kernel refusal while iterating.
    pub fn key_read_counts(&self) -> Result<Vec<(FilterKey, u64)>> {
        let m = self
            .key_read
            .lock()
            .map_err(|_| Error::Bpf("key_read lock poisoned".into()))?;
        let mut out = Vec::new();
        for item in m.iter() {
            out.push(item.map_err(|e| Error::Bpf(format!("reading key_read: {e}")))?);
        }
        out.sort_unstable();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threshold_in_bytes() {
        assert_eq!(share_from(1 << 20, 50), 1 << 19);
        assert_eq!(share_from(1 << 20, 0), 0);
        assert_eq!(share_from(1 << 20, 100), u64::MAX);
        assert_eq!(share_from(u32::MAX, 99), u64::from(u32::MAX) * 99 / 100);
        assert!(check_pct(101).is_err());
        assert_eq!(check_pct(100).ok(), Some(100));
    }
}
