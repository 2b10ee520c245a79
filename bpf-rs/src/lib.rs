//! syshub's kernel-facing core: the embedded eBPF probe, its loader and
//! filter maps, the ring-buffer reader and the syscall-record decoder.
//! No Python here; `rust/` wraps it as `syshub._native`.
//!
//! Needs Linux >= 5.17 with BTF (`/sys/kernel/btf/vmlinux`), per-syscall
//! tracepoints and ring buffers; root or CAP_BPF + CAP_PERFMON.

pub mod abi;
pub mod accounting;
pub mod batch;
pub mod decode;
pub mod encode;
pub mod error;
pub mod flags;
pub mod limits;
pub mod metrics;
pub mod probe;
pub mod reader;
pub mod syscalls;

pub use error::{Error, Result};

/// The compiled probe object, embedded at build time.
pub static PROBE_OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/syshub.bpf.o"));

/// Names of every BPF program and map in the probe, in one place.
pub mod names {
    pub const PROG_SYS_ENTER: &str = "syshub_sys_enter";
    pub const PROG_SYS_EXIT: &str = "syshub_sys_exit";
    pub const PROG_RAW_ENTER: &str = "syshub_raw_enter";
    pub const PROG_RAW_EXIT: &str = "syshub_raw_exit";
    pub const PROG_SCOPE_FORK: &str = "syshub_scope_fork";
    pub const PROG_SCOPE_EXIT: &str = "syshub_scope_exit";
    pub const PROG_STAGE_FLUSH: &str = "syshub_stage_flush";
    pub const MAP_EVENTS: &str = "events";
    pub const MAP_FILTERS: &str = "filters";
    pub const MAP_COUNTERS: &str = "counters";
    pub const MAP_CAPTURE_SPECS: &str = "capture_specs";
    pub const MAP_HOOK_MODES: &str = "hook_modes";
    pub const MAP_MATCH_GEN: &str = "match_gen";
    pub const MAP_GLOBAL_COUNTERS: &str = "global_counters";
    pub const MAP_SCOPE_COUNT: &str = "scope_count";
    pub const MAP_SCOPE_TASKS: &str = "scope_tasks";
    pub const GLOBAL_SELF_TGID: &str = "self_tgid";
    pub const GLOBAL_WAKEUP_BYTES: &str = "wakeup_bytes";
    pub const GLOBAL_NR_EXIT: &str = "nr_exit";
    pub const GLOBAL_NR_EXIT_GROUP: &str = "nr_exit_group";
}
