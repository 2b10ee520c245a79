//! The kernel/user ABI as seen from Python: layout of the Rust mirror, the
//! embedded object, and the limits user settings must respect.

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use syshub_bpf::{abi, limits};

macro_rules! layout {
    ($py:expr, $out:expr, $name:literal, $ty:ty, [$($f:ident : $fty:ty),* $(,)?]) => {{
        let d = PyDict::new($py);
        d.set_item("__size__", (0usize, size_of::<$ty>()))?;
        $( d.set_item(stringify!($f), (std::mem::offset_of!($ty, $f), size_of::<$fty>()))?; )*
        $out.set_item($name, d)?;
    }};
}

/// Offsets and sizes of the Rust ABI mirror, checked against the object's BTF by the tests.
#[pyfunction]
pub(crate) fn abi_layout(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let out = PyDict::new(py);
    layout!(py, out, "syshub_event", abi::SyscallEvent, [
        kind: u16, flags: u16, size: u32, nr: u32, tgid: u32, tid: u32, ns_tgid: u32,
        ns_tid: u32, uid: u32, gid: u32, sid: u32, pid_ns: u32, mnt_ns: u32, uts_ns: u32,
        ncaptures: u16, scope: u16, cgroup_id: u64, enter_ns: u64, exit_ns: u64, ret: i64,
        seq: u64, args: [u64; 6], comm: [u8; 16],
    ]);
    layout!(py, out, "syshub_capture", abi::Capture, [
        slot: u8, kind: u8, flags: u16, len: u32, orig_len: u32, index: u32,
    ]);
    layout!(py, out, "syshub_arg_spec", abi::ArgSpec, [kind: u8, len_arg: u8, size: u16]);
    layout!(py, out, "syshub_capture_spec", abi::CaptureSpec, [
        slots: [abi::ArgSpec; 6], nargs: u8, capflags: u8, _pad0: [u8; 6],
    ]);
    layout!(py, out, "syshub_filter_key", abi::FilterKey, [pid_ns: u32, nr: u32]);
    layout!(py, out, "syshub_filter_cfg", abi::FilterCfg, [
        sample_rate: u32, str_max: u16, argv_max: u16, buf_max: u32, slot: u32,
    ]);
    layout!(py, out, "syshub_key_counters", abi::KeyCounters, [
        matched: u64, sampled_out: u64, dropped: u64, emitted: u64, over_share: u64,
    ]);
    Ok(out)
}

/// The embedded eBPF object (for inspection and the ABI test).
#[pyfunction]
pub(crate) fn probe_object(py: Python<'_>) -> Bound<'_, PyBytes> {
    PyBytes::new(py, syshub_bpf::PROBE_OBJECT)
}

/// Module constants: ABI version, record size and the limits of settings.
pub(crate) fn add_constants(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("ABI_VERSION", abi::ABI_VERSION)?;
    m.add("REC_MAX", abi::REC_MAX)?;
    m.add("STR_MAX_LIMIT", limits::STR_MAX_LIMIT)?;
    m.add("ARGV_MAX_LIMIT", limits::ARGV_MAX_LIMIT)?;
    m.add("BUF_MAX_LIMIT", limits::BUF_MAX_LIMIT)?;
    m.add("SAMPLE_RATE_MAX", limits::SAMPLE_RATE_MAX)?;
    m.add("RING_BYTES_MIN", limits::RING_BYTES_MIN)?;
    m.add("RING_BYTES_MAX", limits::RING_BYTES_MAX)?;
    Ok(())
}
