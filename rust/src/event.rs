//! The `Event` pyclass: one syscall, header fields as attributes, decoded
//! arguments, text and dict renderings on demand.

use std::sync::Arc;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyTuple};

use syshub_bpf::abi::{self, SyscallEvent};
use syshub_bpf::decode;
use syshub_bpf::encode::doc::{self, Extra, arg_truncated, args_doc, event_doc, result_of};
use syshub_bpf::reader::Batch as CoreBatch;
use syshub_bpf::syscalls::SyscallTable;

use crate::convert::PySink;

/// One syscall event; immutable. Header fields are attributes; `args`,
/// `to_dict()`, `to_json()` and `to_text()` decode on demand.
#[pyclass(module = "syshub._native", frozen)]
pub(crate) struct Event {
    batch: Arc<CoreBatch>,
    idx: usize,
    hdr: SyscallEvent,
}

impl Event {
    pub(crate) fn new(batch: Arc<CoreBatch>, idx: usize) -> Self {
        let hdr = batch.header(idx);
        Self { batch, idx, hdr }
    }

    fn decoded(&self) -> decode::Decoded {
        syshub_bpf::encode::decoded(self.batch.record(self.idx))
    }
}

#[pymethods]
impl Event {
    #[getter]
    fn nr(&self) -> u32 {
        self.hdr.nr
    }
    #[getter]
    fn syscall(&self) -> String {
        SyscallTable::get()
            .by_nr(self.hdr.nr)
            .map_or_else(|| format!("syscall_{}", self.hdr.nr), |d| d.name.clone())
    }
    /// Process id (host view).
    #[getter]
    fn tgid(&self) -> u32 {
        self.hdr.tgid
    }
    /// Thread id (host view).
    #[getter]
    fn tid(&self) -> u32 {
        self.hdr.tid
    }
    /// Process id inside the task's own pid namespace.
    #[getter]
    fn ns_tgid(&self) -> u32 {
        self.hdr.ns_tgid
    }
    #[getter]
    fn ns_tid(&self) -> u32 {
        self.hdr.ns_tid
    }
    #[getter]
    fn uid(&self) -> u32 {
        self.hdr.uid
    }
    #[getter]
    fn gid(&self) -> u32 {
        self.hdr.gid
    }
    #[getter]
    fn sid(&self) -> u32 {
        self.hdr.sid
    }
    #[getter]
    fn comm(&self) -> String {
        self.hdr.comm_str()
    }
    #[getter]
    fn pid_ns(&self) -> u32 {
        self.hdr.pid_ns
    }
    /// The namespace field of the filter key the record matched: 0 for the
    /// every-namespace key, the scope id for a scope's key, else pid_ns.
    #[getter]
    fn key_ns(&self) -> u32 {
        self.hdr.filter_key().pid_ns
    }
    #[getter]
    fn mnt_ns(&self) -> u32 {
        self.hdr.mnt_ns
    }
    #[getter]
    fn uts_ns(&self) -> u32 {
        self.hdr.uts_ns
    }
    #[getter]
    fn cgroup_id(&self) -> u64 {
        self.hdr.cgroup_id
    }
    #[getter]
    fn enter_ns(&self) -> u64 {
        self.hdr.enter_ns
    }
    #[getter]
    fn exit_ns(&self) -> u64 {
        self.hdr.exit_ns
    }
    #[getter]
    fn ret(&self) -> i64 {
        self.hdr.ret
    }
    #[getter]
    fn seq(&self) -> u64 {
        self.hdr.seq
    }
    #[getter]
    fn flags(&self) -> u16 {
        self.hdr.flags
    }
    /// True for exit/exit_group, which never return (no `ret`, no `exit_ns`).
    #[getter]
    fn no_exit(&self) -> bool {
        self.hdr.flags & abi::EVF_NO_EXIT != 0
    }
    /// True when the call was recorded at exit only (no durations asked and
    /// none needed: `enter_ns` is 0).
    #[getter]
    fn exit_only(&self) -> bool {
        self.hdr.flags & abi::EVF_EXIT_ONLY != 0
    }
    /// True when the record ran out of room and some captures were omitted.
    #[getter]
    fn truncated(&self) -> bool {
        self.hdr.flags & abi::EVF_TRUNCATED != 0
    }
    /// Whether the call returned to the program (false for exit, exit_group
    /// and calls that did not come back: then `errno` is None).
    #[getter]
    fn returned(&self) -> bool {
        result_of(&self.hdr).0
    }
    /// Positive errno when the call failed, else None.
    #[getter]
    fn errno(&self) -> Option<i64> {
        result_of(&self.hdr).2
    }
    /// "ENOENT"-style name, "OK" on success, "?" when the call did not return.
    #[getter]
    fn error(&self) -> String {
        match result_of(&self.hdr) {
            (false, ..) => "?".into(),
            (true, _, Some(e)) => doc::errno_text(e).into_owned(),
            (true, _, None) => "OK".into(),
        }
    }
    /// The six raw argument registers.
    #[getter]
    fn raw_args<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, self.hdr.args)
    }
    /// Decoded arguments: dict of name -> value, in argument order.
    #[getter]
    fn args<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let mut sink = PySink::new(py);
        args_doc(&mut sink, &self.decoded().args);
        sink.into_dict()
    }
    /// Names of arguments whose capture was cut short.
    #[getter]
    fn truncated_args(&self) -> Vec<&'static str> {
        let args = self.decoded().args;
        args.iter()
            .filter(|a| arg_truncated(a))
            .map(|a| a.name)
            .collect()
    }
    /// Latency in ns (0 for calls that never return, and for calls recorded
    /// at exit only: see `Probe.add_filter`'s `durations`).
    #[getter]
    fn latency_ns(&self) -> u64 {
        if self.hdr.enter_ns == 0 {
            return 0;
        }
        self.hdr.exit_ns.saturating_sub(self.hdr.enter_ns)
    }
    /// strace-like text line.
    fn to_text(&self) -> String {
        self.decoded().to_text()
    }
    /// Raw record bytes.
    fn raw<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.batch.record(self.idx))
    }
    /// The event document as a JSON-ready dict (swoll TraceEvent field
    /// names where they mean the same; `pid` is the process id, `tid` the
    /// thread id). Described once in `syshub_bpf::encode::doc`, which the
    /// JSON lines encoder follows too.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let mut sink = PySink::new(py);
        event_doc(&mut sink, &self.hdr, &self.decoded().args, Extra::default());
        sink.into_dict()
    }

    fn __repr__(&self) -> String {
        format!("<Event {}>", self.decoded().to_text())
    }
}

/// Decode one raw record (bytes) into an Event; raises ValueError if malformed.
#[pyfunction]
pub(crate) fn decode_record(rec: &[u8]) -> PyResult<Event> {
    let mut b = CoreBatch::default();
    if b.push_record(rec).is_none() {
        let e = decode::validate(rec)
            .err()
            .map_or_else(String::new, |e| e.to_string());
        return Err(PyValueError::new_err(format!("malformed record: {e}")));
    }
    Ok(Event::new(Arc::new(b), 0))
}
