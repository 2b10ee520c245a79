//! Records -> output formats, for many events at once and without an object
//! per event in the caller: JSON lines ([`json`]), strace-style text
//! ([`text`]) and the protobuf `EventBatch` of `proto/syshub/v1/event.proto`
//! ([`proto`]). [`doc`] describes the event document once; the JSON encoder
//! and the Python `Event.to_dict()` both follow it.

pub mod doc;
pub mod json;
pub mod packed;
pub mod proto;
pub mod records;
pub mod text;

#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::collections::HashMap;

use crate::abi::SyscallEvent;
use crate::decode::{self, Decoded};
use crate::syscalls::SyscallTable;

pub use doc::{Doc, Extra, Sink, event_doc};
pub use json::{JsonSink, encode_json};
pub use packed::{Unpacked, pack, unpack, unpack_checked};
pub use proto::encode_proto;
pub use records::{encode_records, split_records};
pub use text::encode_text;

/// The container of each pid namespace (`None` or absent: unknown), as the
/// caller's topology describes it (`Container.to_dict()`).
pub type Containers = HashMap<u32, Option<Doc>>;

/// Records ahead of the one being encoded whose first lines are asked for:
/// a consumer's records were written by the reader thread long enough ago
/// to have left the core's caches, and encoding waited on each (perf).
const PREFETCH_AHEAD: usize = 4;

/// Before record `k` of `records` is encoded: asks for the one
/// [`PREFETCH_AHEAD`] further on.
#[inline]
pub(crate) fn prefetch_ahead(records: &[&[u8]], k: usize) {
    if let Some(ahead) = records.get(k + PREFETCH_AHEAD) {
        prefetch(ahead);
    }
}

/// Asks for the first 192 bytes of `rec` (a getppid record is 160) to be
/// brought into the cache.
#[inline]
fn prefetch(rec: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    for off in [0, 64, 128] {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        // SAFETY: a prefetch is a hint that never faults, whatever the
        // address; `wrapping_add` keeps the pointer arithmetic defined.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(rec.as_ptr().wrapping_add(off).cast()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = rec;
}

/// The header (in place when aligned, as in a batch) and decoded arguments
/// of a batch record (validated when the batch was built, so not again; a
/// record too short for a header gives a default one): what the encoders
/// need, without a whole [`Decoded`] (copying the 160-byte header per event
/// was most of the JSON encoder's decoding time, perf).
#[must_use]
pub fn header_and_args(rec: &[u8]) -> (Cow<'_, SyscallEvent>, Vec<decode::Arg>) {
    let hdr = match SyscallEvent::view(rec) {
        Some(h) => Cow::Borrowed(h),
        None => Cow::Owned(SyscallEvent::read(rec).unwrap_or_default()),
    };
    let caps = if hdr.ncaptures == 0 {
        Vec::new()
    } else {
        decode::captures(rec, &hdr)
    };
    let args = decode::decode_args(&hdr, &caps, SyscallTable::get().by_nr(hdr.nr));
    (hdr, args)
}

/// A record decoded, or for a record that does not decode (it was validated
/// when read, so this does not happen) its header with no arguments.
#[must_use]
pub fn decoded(rec: &[u8]) -> Decoded {
    decode::decode(rec).unwrap_or_else(|_| {
        let hdr = SyscallEvent::read(rec).unwrap_or_default();
        Decoded {
            name: format!("syscall_{}", hdr.nr).into(),
            args: Vec::new(),
            errno: None,
            hdr,
        }
    })
}
