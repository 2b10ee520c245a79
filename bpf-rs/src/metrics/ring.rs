//! How full this process's BPF ring buffers are (the trace probe's event
//! ring): bytes the kernel has written and the reader not yet consumed, and
//! the capacity. Found through `/proc/self/fdinfo` (the reader owns the
//! ring's fd), opened again by map id and read through a read-only mapping
//! of the ring's consumer and producer pages: no change to the reader and
//! nothing it could notice.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};

const BPF_MAP_GET_FD_BY_ID: libc::c_long = 14;
const BPF_MAP_TYPE_RINGBUF: u32 = 27;

/// One ring buffer map's fill.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingUse {
    /// The kernel id of the ring buffer map.
    pub map_id: u32,
    /// Bytes written (reserved) by the kernel and not yet consumed.
    pub pending: u64,
    /// The ring's size in bytes.
    pub capacity: u64,
}

/// `(map_id, max_entries)` of the ring buffer maps this process holds.
fn ringbuf_maps() -> io::Result<Vec<(u32, u64)>> {
    let mut out: Vec<(u32, u64)> = Vec::new();
    for entry in std::fs::read_dir("/proc/self/fdinfo")? {
        let Ok(entry) = entry else { continue };
        // intent: an fd closed since the listing is skipped
        let Ok(text) = std::fs::read_to_string(entry.path()) else {
            continue;
        };
        let field = |name: &str| -> Option<u64> {
            text.lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().parse().ok())
        };
        if field("map_type:") != Some(u64::from(BPF_MAP_TYPE_RINGBUF)) {
            continue;
        }
        if let (Some(id), Some(size)) = (field("map_id:"), field("max_entries:")) {
            let id = u32::try_from(id).unwrap_or(0);
            if id != 0 && !out.iter().any(|(i, _)| *i == id) {
                out.push((id, size));
            }
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// `union bpf_attr` for `BPF_MAP_GET_FD_BY_ID`.
#[repr(C)]
#[derive(Default)]
struct GetFdAttr {
    map_id: u32,
    next_id: u32,
    open_flags: u32,
}

fn map_fd_by_id(map_id: u32) -> io::Result<OwnedFd> {
    let mut attr = GetFdAttr {
        map_id,
        ..GetFdAttr::default()
    };
    // SAFETY: attr is a valid, initialised bpf_attr prefix for this command.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_MAP_GET_FD_BY_ID,
            &raw mut attr,
            std::mem::size_of::<GetFdAttr>() as libc::c_uint,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = i32::try_from(fd).map_err(|_| io::Error::other("fd out of range"))?;
    // SAFETY: the kernel just returned this new fd; we own it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// (consumer, producer) positions of a ring buffer map's fd.
fn positions(fd: &OwnedFd) -> io::Result<(u64, u64)> {
    // SAFETY: sysconf has no preconditions.
    let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) })
        .map_err(|_| io::Error::other("page size"))?;
    // SAFETY: a fresh read-only shared mapping of the ring's first two pages
    // (consumer page, producer page); unmapped below.
    let base = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            2 * page,
            libc::PROT_READ,
            libc::MAP_SHARED,
            fd.as_raw_fd(),
            0,
        )
    };
    if base == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both pages are mapped, page-aligned (so u64-aligned), and the
    // kernel updates the positions atomically.
    let (cons, prod) = unsafe {
        let cons = (*base.cast::<AtomicU64>()).load(Ordering::Acquire);
        let prod = (*base.cast::<u8>().add(page).cast::<AtomicU64>()).load(Ordering::Acquire);
        (cons, prod)
    };
    // SAFETY: the mapping made above, of this length.
    unsafe { libc::munmap(base, 2 * page) };
    Ok((cons, prod))
}

/// The fill of every BPF ring buffer this process holds (none without a
/// trace probe).
///
/// # Errors
/// `/proc/self/fdinfo` unreadable, or a kernel refusal reopening or mapping
/// a ring (not root / CAP_SYS_ADMIN for the id lookup).
pub fn ring_use() -> io::Result<Vec<RingUse>> {
    let mut out = Vec::new();
    for (map_id, capacity) in ringbuf_maps()? {
        let fd = match map_fd_by_id(map_id) {
            Ok(fd) => fd,
            // intent: the ring was freed since the listing
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
            Err(e) => return Err(e),
        };
        let (cons, prod) = positions(&fd)?;
        out.push(RingUse {
            map_id,
            pending: prod.saturating_sub(cons).min(capacity),
            capacity,
        });
    }
    Ok(out)
}
