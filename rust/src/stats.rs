//! `Probe.stats()`: the accounting computed in `syshub_bpf::accounting`,
//! as the dict shape Python code consumes.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use syshub_bpf::accounting::{KeyStats, ProbeStats};
use syshub_bpf::syscalls::SyscallTable;

/// Sets counter names to values in `d`.
fn set_counts(d: &Bound<'_, PyDict>, items: &[(&str, u64)]) -> PyResult<()> {
    for (k, v) in items {
        d.set_item(*k, *v)?;
    }
    Ok(())
}

/// A dict of counter names to values.
fn counts<'py>(py: Python<'py>, items: &[(&str, u64)]) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    set_counts(&d, items)?;
    Ok(d)
}

fn key_to_py<'py>(py: Python<'py>, k: &KeyStats) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("pid_ns", k.key.pid_ns)?;
    d.set_item("nr", k.key.nr)?;
    let name = SyscallTable::get().by_nr(k.key.nr).map(|x| x.name.as_str());
    d.set_item("syscall", name)?;
    d.set_item("lifetime", k.lifetime)?;
    set_counts(
        &d,
        &[
            ("matched", k.matched),
            ("sampled_out", k.sampled_out),
            ("dropped", k.dropped),
            ("over_share", k.over_share),
            ("emitted", k.emitted),
            ("delivered", k.delivered),
            ("pending", k.pending),
        ],
    )?;
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
    let t = &s.total;
    let total = [
        ("matched", t.matched),
        ("sampled_out", t.sampled_out),
        ("dropped", t.dropped),
        ("over_share", t.over_share),
        ("delivered", t.delivered),
    ];
    out.set_item("total", counts(py, &total)?)?;
    let g = &s.kernel;
    let kernel = [
        ("matched", g.matched),
        ("sampled_out", g.sampled_out),
        ("dropped", g.dropped),
        ("emitted", g.emitted),
        ("orphaned", g.orphaned),
        ("nomem", g.nomem),
        ("nokey", g.nokey),
        ("over_share", g.over_share),
    ];
    out.set_item("kernel", counts(py, &kernel)?)?;
    let r = &s.reader;
    let reader = [
        ("records", r.records),
        ("decode_errors", r.decode_errors),
        ("batches", r.batches),
        ("wakeups", r.wakeups),
    ];
    out.set_item("reader", counts(py, &reader)?)?;
    Ok(out)
}
