//! `syshub._native`: thin pyo3 bindings over `syshub_bpf`. Translation only:
//! policy lives in Python, kernel and byte handling in `bpf-rs`.

mod abi;
mod batch;
mod convert;
mod encode;
mod errors;
mod event;
mod metrics;
mod probe;
mod stats;
mod syscalls;

use pyo3::prelude::*;

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<probe::Probe>()?;
    m.add_class::<batch::Batch>()?;
    m.add_class::<event::Event>()?;
    m.add_class::<batch::Column>()?;
    m.add_function(wrap_pyfunction!(event::decode_record, m)?)?;
    m.add_function(wrap_pyfunction!(syscalls::syscall_table_tsv, m)?)?;
    m.add_function(wrap_pyfunction!(syscalls::lookup_syscall, m)?)?;
    m.add_function(wrap_pyfunction!(syscalls::errno_name, m)?)?;
    m.add_function(wrap_pyfunction!(syscalls::returns_pointer, m)?)?;
    m.add_function(wrap_pyfunction!(abi::abi_layout, m)?)?;
    m.add_function(wrap_pyfunction!(abi::probe_object, m)?)?;
    encode::register(m)?;
    metrics::register(m)?;
    abi::add_constants(m)
}
