//! `#[repr(C)]` mirror of `bpf/syshub_abi.h`, the one kernel/user ABI.
//!
//! `tests/abi.rs` checks every size and field offset here against the BTF of
//! the compiled probe, so the two cannot drift apart silently.

#![allow(
    missing_docs,
    reason = "each item mirrors the documented C declaration of the same name"
)]

pub const ABI_VERSION: u32 = 2;
pub const COMM_LEN: usize = 16;
pub const NARGS: usize = 6;
pub const MAX_SYSCALLS: u32 = 512;
pub const REC_MAX: usize = 8192;
pub const CAP_MAX: u32 = 4096;
pub const STR_DEFAULT: u16 = 256;
pub const ARGV_DEFAULT: u16 = 32;
pub const ARGV_LIMIT: u16 = 128;
pub const SOCKADDR_MAX: u32 = 128;

pub const REC_SYSCALL: u16 = 1;

pub const EVF_NO_EXIT: u16 = 0x1;
pub const EVF_TRUNCATED: u16 = 0x2;
pub const EVF_RAW_HOOK: u16 = 0x4;
pub const EVF_ANY_NS: u16 = 0x8;
pub const EVF_SCOPE: u16 = 0x10;
pub const EVF_KILLED: u16 = 0x20;
pub const EVF_EXIT_ONLY: u16 = 0x40;
pub const HOOK_RAW: u32 = 0x1;
pub const HOOK_ENTRY: u32 = 0x2;
pub const SCOPE_MAX: u32 = 65535;

pub const CAP_STR: u8 = 1;
pub const CAP_BUF: u8 = 2;
pub const CAP_SOCKADDR: u8 = 3;
pub const CAP_STRV: u8 = 4;
pub const CAP_STRV_END: u8 = 5;
pub const CAP_STRUCT: u8 = 6;

pub const CAPF_TRUNCATED: u16 = 0x1;
pub const CAPF_FAULT: u16 = 0x2;
pub const CAPF_EXIT: u16 = 0x4;

pub const LEN_UNKNOWN: u32 = 0xffff_ffff;

pub const SPEC_NONE: u8 = 0;
pub const SPEC_STR: u8 = 1;
pub const SPEC_STRV: u8 = 2;
pub const SPEC_BUF_IN: u8 = 3;
pub const SPEC_SOCKADDR_IN: u8 = 4;
pub const SPEC_STRUCT_IN: u8 = 5;
pub const SPEC_STRUCT_IN_LEN: u8 = 6;
pub const SPEC_MSGHDR_NAME_IN: u8 = 7;
pub const SPEC_BUF_OUT: u8 = 16;
pub const SPEC_SOCKADDR_OUT: u8 = 17;
pub const SPEC_STRUCT_OUT: u8 = 18;
pub const SPEC_STR_OUT: u8 = 19;
pub const SPEC_MSGHDR_NAME_OUT: u8 = 20;
pub const SPEC_STRUCT_OUT_LENPTR: u8 = 21;
pub const SPEC_ARRAY_OUT: u8 = 22;
pub const SPEC_FIRST_EXIT: u8 = 16;
pub const CAPS_ENTRY: u8 = 0x1;
pub const CAPS_EXIT: u8 = 0x2;
/// `len_arg` value meaning "no length argument".
pub const NO_LEN_ARG: u8 = 0xff;

pub const GC_MATCHED: u32 = 0;
pub const GC_SAMPLED_OUT: u32 = 1;
pub const GC_DROPPED: u32 = 2;
pub const GC_EMITTED: u32 = 3;
pub const GC_ORPHANED: u32 = 4;
pub const GC_NOMEM: u32 = 5;
pub const GC_NOKEY: u32 = 6;
pub const GC_SCOPE_FULL: u32 = 7;
pub const GC_OVER_SHARE: u32 = 8;
pub const GC_COUNT: u32 = 9;

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyscallEvent {
    pub kind: u16,
    pub flags: u16,
    pub size: u32,
    pub nr: u32,
    pub tgid: u32,
    pub tid: u32,
    pub ns_tgid: u32,
    pub ns_tid: u32,
    pub uid: u32,
    pub gid: u32,
    pub sid: u32,
    pub pid_ns: u32,
    pub mnt_ns: u32,
    pub uts_ns: u32,
    pub ncaptures: u16,
    pub scope: u16,
    pub cgroup_id: u64,
    pub enter_ns: u64,
    pub exit_ns: u64,
    pub ret: i64,
    pub seq: u64,
    pub args: [u64; NARGS],
    pub comm: [u8; COMM_LEN],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Capture {
    pub slot: u8,
    pub kind: u8,
    pub flags: u16,
    pub len: u32,
    pub orig_len: u32,
    pub index: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ArgSpec {
    pub kind: u8,
    pub len_arg: u8,
    pub size: u16,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CaptureSpec {
    pub slots: [ArgSpec; NARGS],
    pub nargs: u8,
    pub capflags: u8,
    pub _pad0: [u8; 6],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FilterKey {
    pub pid_ns: u32,
    pub nr: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FilterCfg {
    pub sample_rate: u32,
    pub str_max: u16,
    pub argv_max: u16,
    pub buf_max: u32,
    /// The key's entry in the counters array.
    pub slot: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeyCounters {
    pub matched: u64,
    pub sampled_out: u64,
    pub dropped: u64,
    pub emitted: u64,
    pub over_share: u64,
}

pub const EVENT_SIZE: usize = size_of::<SyscallEvent>();
pub const CAPTURE_SIZE: usize = size_of::<Capture>();

const _: () = assert!(size_of::<SyscallEvent>() == 160);
const _: () = assert!(size_of::<Capture>() == 16);
const _: () = assert!(size_of::<CaptureSpec>() == 32);
const _: () = assert!(size_of::<FilterKey>() == 8);
const _: () = assert!(size_of::<FilterCfg>() == 16);
const _: () = assert!(size_of::<KeyCounters>() == 40);

// SAFETY: plain-old-data: fixed-width integers and arrays, no padding holes
// (padding is spelled out as fields), every bit pattern valid.
unsafe impl aya::Pod for FilterKey {}
// SAFETY: as above.
unsafe impl aya::Pod for FilterCfg {}
// SAFETY: as above.
unsafe impl aya::Pod for KeyCounters {}
// SAFETY: as above.
unsafe impl aya::Pod for CaptureSpec {}

impl SyscallEvent {
    /// Reads a header from the start of `buf` (unaligned), or `None` if too short.
    #[must_use]
    pub fn read(buf: &[u8]) -> Option<Self> {
        if buf.len() < EVENT_SIZE {
            return None;
        }
        // SAFETY: length checked; SyscallEvent is POD, read_unaligned copes
        // with any alignment.
        Some(unsafe { buf.as_ptr().cast::<Self>().read_unaligned() })
    }

    /// The header at the start of `buf` in place, when `buf` is long enough
    /// and aligned for it (a batch's records are: each starts 8-byte aligned
    /// in its data); `None` otherwise ([`SyscallEvent::read`] then copies).
    #[must_use]
    pub fn view(buf: &[u8]) -> Option<&Self> {
        if buf.len() < EVENT_SIZE || !buf.as_ptr().cast::<Self>().is_aligned() {
            return None;
        }
        // SAFETY: length and alignment checked; SyscallEvent is POD (every
        // bit pattern is a valid value) and borrows `buf` for its lifetime.
        Some(unsafe { &*buf.as_ptr().cast::<Self>() })
    }

    /// The filter key this record was matched under: its namespace field is
    /// 0 for the every-namespace key, the scope id for a scope's key, else
    /// the record's pid namespace.
    #[must_use]
    pub fn filter_key(&self) -> FilterKey {
        let pid_ns = if self.flags & EVF_ANY_NS != 0 {
            0
        } else if self.flags & EVF_SCOPE != 0 {
            u32::from(self.scope)
        } else {
            self.pid_ns
        };
        FilterKey {
            pid_ns,
            nr: self.nr,
        }
    }

    /// The command name without trailing NULs (lossy UTF-8).
    #[must_use]
    pub fn comm_str(&self) -> String {
        let end = self.comm.iter().position(|&b| b == 0).unwrap_or(COMM_LEN);
        String::from_utf8_lossy(&self.comm[..end]).into_owned()
    }
}

impl Capture {
    #[must_use]
    pub fn read(buf: &[u8]) -> Option<Self> {
        if buf.len() < CAPTURE_SIZE {
            return None;
        }
        // SAFETY: length checked; Capture is POD.
        Some(unsafe { buf.as_ptr().cast::<Self>().read_unaligned() })
    }
}
