//! Reading the whole stats map in a few system calls (`BPF_MAP_LOOKUP_BATCH`)
//! instead of two per series, so a scrape of 10,000 series stays cheap. Per-CPU
//! values are summed here.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use super::abi::{MetricKey, MetricValue};

const BPF_MAP_LOOKUP_BATCH: libc::c_long = 24;

/// `union bpf_attr`'s `batch` member (include/uapi/linux/bpf.h).
#[repr(C)]
#[derive(Default)]
struct BatchAttr {
    in_batch: u64,
    out_batch: u64,
    keys: u64,
    values: u64,
    count: u32,
    map_fd: u32,
    elem_flags: u64,
    flags: u64,
}

/// Every (key, value summed over CPUs) of a per-CPU hash whose values are
/// `MetricValue`s, `ncpus` possible CPUs. `Err` with `EINVAL`/`ENOTSUPP`
/// when the kernel lacks batch operations (the caller falls back).
pub(super) fn lookup_all(
    fd: BorrowedFd<'_>,
    ncpus: usize,
    mut chunk: usize,
) -> io::Result<Vec<(MetricKey, MetricValue)>> {
    let mut out = Vec::new();
    // The batch token of a hash map is a bucket index (u32); room for more.
    let mut token_in = [0u64; 2];
    let mut token_out = [0u64; 2];
    let mut first = true;
    loop {
        let mut keys = vec![MetricKey::default(); chunk];
        let mut values = vec![MetricValue::default(); chunk * ncpus];
        let mut attr = BatchAttr {
            in_batch: if first { 0 } else { token_in.as_ptr() as u64 },
            out_batch: token_out.as_mut_ptr() as u64,
            keys: keys.as_mut_ptr() as u64,
            values: values.as_mut_ptr() as u64,
            count: u32::try_from(chunk).unwrap_or(u32::MAX),
            map_fd: u32::try_from(fd.as_raw_fd()).unwrap_or(u32::MAX),
            ..BatchAttr::default()
        };
        // SAFETY: attr points at buffers of `chunk` keys and `chunk * ncpus`
        // values that outlive the call; the kernel writes at most that many
        // and updates `count` and the out token.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                BPF_MAP_LOOKUP_BATCH,
                &raw mut attr,
                std::mem::size_of::<BatchAttr>() as libc::c_uint,
            )
        };
        let err = (rc < 0).then(io::Error::last_os_error);
        let n = (attr.count as usize).min(chunk);
        for (i, key) in keys.iter().take(n).enumerate() {
            let cpus = &values[i * ncpus..(i + 1) * ncpus];
            out.push((*key, MetricValue::sum(cpus)));
        }
        match err.as_ref().and_then(io::Error::raw_os_error) {
            None => {}
            Some(libc::ENOENT) => return Ok(out),
            // intent: one bucket holds more entries than `chunk`: retry it bigger
            Some(libc::ENOSPC) if n == 0 && chunk < (1 << 20) => {
                chunk *= 2;
                continue;
            }
            Some(_) => return Err(err.unwrap_or_else(|| io::Error::other("batch lookup"))),
        }
        token_in = token_out;
        first = false;
    }
}
