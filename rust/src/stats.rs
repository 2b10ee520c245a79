//! `Probe.stats()`: the accounting computed in `syshub_bpf::accounting`,
//! as the dict shape Python code consumes.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use syshub_bpf::accounting::{KeyStats, ProbeStats};
use syshub_bpf::syscalls::SyscallTable;

fn key_to_py<'py>(py: Python<'py>, k: &KeyStats) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("pid_ns", k.key.pid_ns)?;
    d.set_item("nr", k.key.nr)?;
    let name = SyscallTable::get().by_nr(k.key.nr).map(|x| x.name.as_str());
    d.set_item("syscall", name)?;
    d.set_item("matched", k.matched)?;
    d.set_item("sampled_out", k.sampled_out)?;
    d.set_item("dropped", k.dropped)?;
    d.set_item("emitted", k.emitted)?;
    d.set_item("delivered", k.delivered)?;
    d.set_item("pending", k.pending)?;
    Ok(d)
}

/// `{"keys": [...], "total": {...}, "kernel": {...}, "reader": {...}}`.
pub(crate) fn stats_to_py<'py>(py: Python<'py>, s: &ProbeStats) -> PyResult<Bound<'py, PyDict>> {
    let out = PyDict::new(py);
    let keys = PyList::empty(py);
    for k in &s.keys {
        keys.append(key_to_py(py, k)?)?;
    }
    out.set_item("keys", keys)?;
    let total = PyDict::new(py);
    total.set_item("matched", s.total.matched)?;
    total.set_item("sampled_out", s.total.sampled_out)?;
    total.set_item("dropped", s.total.dropped)?;
    total.set_item("delivered", s.total.delivered)?;
    out.set_item("total", total)?;
    let g = &s.kernel;
    let kernel = PyDict::new(py);
    kernel.set_item("matched", g.matched)?;
    kernel.set_item("sampled_out", g.sampled_out)?;
    kernel.set_item("dropped", g.dropped)?;
    kernel.set_item("emitted", g.emitted)?;
    kernel.set_item("orphaned", g.orphaned)?;
    kernel.set_item("nomem", g.nomem)?;
    kernel.set_item("nokey", g.nokey)?;
    out.set_item("kernel", kernel)?;
    let reader = PyDict::new(py);
    reader.set_item("records", s.reader.records)?;
    reader.set_item("decode_errors", s.reader.decode_errors)?;
    reader.set_item("batches", s.reader.batches)?;
    reader.set_item("wakeups", s.reader.wakeups)?;
    out.set_item("reader", reader)?;
    Ok(out)
}
