//! The syscall table and errno names as module functions.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use syshub_bpf::decode;
use syshub_bpf::syscalls::{RetKind, SyscallTable};

use crate::errors::map_err;

pub(crate) fn resolve_nr(py: Python<'_>, syscall: &Bound<'_, PyAny>) -> PyResult<u32> {
    let table = SyscallTable::get();
    if let Ok(nr) = syscall.extract::<u32>() {
        return map_err(py, table.resolve(&nr.to_string()).map(|d| d.nr));
    }
    let name: String = syscall.extract()?;
    map_err(py, table.by_name(&name).map(|d| d.nr))
}

/// The syscall table data file (TSV), shared with the Rust side.
#[pyfunction]
pub(crate) fn syscall_table_tsv() -> &'static str {
    SyscallTable::source_text()
}

/// (nr, name, class, group) for a name (with or without `sys_`) or number.
#[pyfunction]
pub(crate) fn lookup_syscall(
    py: Python<'_>,
    syscall: &Bound<'_, PyAny>,
) -> PyResult<(u32, String, String, String)> {
    let nr = resolve_nr(py, syscall)?;
    let d = SyscallTable::get()
        .by_nr(nr)
        .ok_or_else(|| PyValueError::new_err("unknown syscall"))?;
    Ok((d.nr, d.name.clone(), d.class.clone(), d.group.clone()))
}

/// Name of an errno number (e.g. 2 -> "ENOENT"), or None.
#[pyfunction]
pub(crate) fn errno_name(n: i64) -> Option<&'static str> {
    decode::errno_name(n)
}

/// True when a return value of this syscall is an address, never an errno.
#[pyfunction]
pub(crate) fn returns_pointer(nr: u32) -> bool {
    SyscallTable::get()
        .by_nr(nr)
        .is_some_and(|d| d.ret == RetKind::Ptr)
}
