//! Hand-built records for the unit tests.

use crate::abi::{self, Capture, SyscallEvent};

/// The bytes of a POD ABI struct.
pub(crate) fn bytes_of<T: Copy>(v: &T) -> Vec<u8> {
    // SAFETY: only used on the POD ABI structs (no padding holes, every bit
    // pattern valid).
    unsafe { std::slice::from_raw_parts((v as *const T).cast::<u8>(), size_of::<T>()) }.to_vec()
}

/// A record: `hdr` (kind, size and capture count filled in) followed by
/// captures `(slot, kind, data)`.
pub(crate) fn record_with(mut hdr: SyscallEvent, caps: &[(u8, u8, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for &(slot, kind, data) in caps {
        let len = u32::try_from(data.len()).unwrap();
        let c = Capture {
            slot,
            kind,
            flags: 0,
            len,
            orig_len: len,
            index: 0,
        };
        body.extend(bytes_of(&c));
        body.extend_from_slice(data);
        while body.len() % 8 != 0 {
            body.push(0);
        }
    }
    hdr.kind = abi::REC_SYSCALL;
    hdr.size = u32::try_from(abi::EVENT_SIZE + body.len()).unwrap();
    hdr.ncaptures = u16::try_from(caps.len()).unwrap();
    let mut r = bytes_of(&hdr);
    r.extend(body);
    r
}

/// An openat-shaped record of syscall `nr`: AT_FDCWD, O_RDONLY|O_CLOEXEC, returning 3.
pub(crate) fn record(nr: u32, caps: &[(u8, u8, &[u8])]) -> Vec<u8> {
    let mut h = SyscallEvent {
        nr,
        ret: 3,
        ..SyscallEvent::default()
    };
    h.args[0] = (-100i64).cast_unsigned();
    h.args[2] = 0o2000000;
    record_with(h, caps)
}
