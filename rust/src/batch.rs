//! Batches of events: `Batch` (one poll), its iterator, and `Column`, a
//! header field of every event through the buffer protocol.

use std::ffi::CString;
use std::os::raw::c_int;
use std::sync::{Arc, Mutex};

use pyo3::exceptions::{PyIndexError, PyKeyError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use syshub_bpf::abi::SyscallEvent;
use syshub_bpf::reader::Batch as CoreBatch;

use crate::event::Event;

/// A batch of events from one poll: iterate for Event objects, or take
/// header columns with `column(name)` (buffer protocol, zero Python objects).
#[pyclass(module = "syshub._native", frozen, sequence)]
pub(crate) struct Batch {
    inner: Arc<CoreBatch>,
    start: usize,
    end: usize,
}

impl Batch {
    pub(crate) fn new(inner: Arc<CoreBatch>, start: usize, end: usize) -> Self {
        Self { inner, start, end }
    }

    pub(crate) fn empty() -> Self {
        Self {
            inner: Arc::new(CoreBatch::default()),
            start: 0,
            end: 0,
        }
    }

    fn len(&self) -> usize {
        self.end - self.start
    }
}

const COLUMNS: &[(&str, &str)] = &[
    ("nr", "I"),
    ("tgid", "I"),
    ("tid", "I"),
    ("ns_tgid", "I"),
    ("ns_tid", "I"),
    ("uid", "I"),
    ("gid", "I"),
    ("pid_ns", "I"),
    ("key_ns", "I"),
    ("mnt_ns", "I"),
    ("uts_ns", "I"),
    ("flags", "H"),
    ("cgroup_id", "Q"),
    ("enter_ns", "Q"),
    ("exit_ns", "Q"),
    ("ret", "q"),
    ("seq", "Q"),
];

fn column_bytes(
    b: &CoreBatch,
    range: std::ops::Range<usize>,
    name: &str,
) -> Option<(Vec<u8>, &'static str, usize)> {
    let (_, fmt) = COLUMNS.iter().find(|(n, _)| *n == name)?;
    let n = range.len();
    let mut out: Vec<u8>;
    macro_rules! col {
        ($ty:ty, $f:expr) => {{
            out = Vec::with_capacity(n * size_of::<$ty>());
            for i in range.clone() {
                let h = b.header(i);
                let v: $ty = $f(&h);
                out.extend_from_slice(&v.to_ne_bytes());
            }
            size_of::<$ty>()
        }};
    }
    let size = match name {
        "nr" => col!(u32, |h: &SyscallEvent| h.nr),
        "tgid" => col!(u32, |h: &SyscallEvent| h.tgid),
        "tid" => col!(u32, |h: &SyscallEvent| h.tid),
        "ns_tgid" => col!(u32, |h: &SyscallEvent| h.ns_tgid),
        "ns_tid" => col!(u32, |h: &SyscallEvent| h.ns_tid),
        "uid" => col!(u32, |h: &SyscallEvent| h.uid),
        "gid" => col!(u32, |h: &SyscallEvent| h.gid),
        "pid_ns" => col!(u32, |h: &SyscallEvent| h.pid_ns),
        "key_ns" => col!(u32, |h: &SyscallEvent| h.filter_key().pid_ns),
        "mnt_ns" => col!(u32, |h: &SyscallEvent| h.mnt_ns),
        "uts_ns" => col!(u32, |h: &SyscallEvent| h.uts_ns),
        "flags" => col!(u16, |h: &SyscallEvent| h.flags),
        "cgroup_id" => col!(u64, |h: &SyscallEvent| h.cgroup_id),
        "enter_ns" => col!(u64, |h: &SyscallEvent| h.enter_ns),
        "exit_ns" => col!(u64, |h: &SyscallEvent| h.exit_ns),
        "ret" => col!(i64, |h: &SyscallEvent| h.ret),
        "seq" => col!(u64, |h: &SyscallEvent| h.seq),
        _ => return None,
    };
    Some((out, fmt, size))
}

#[pymethods]
impl Batch {
    fn __len__(&self) -> usize {
        self.len()
    }

    fn __bool__(&self) -> bool {
        self.len() > 0
    }

    fn __getitem__(&self, idx: isize) -> PyResult<Event> {
        let n = isize::try_from(self.len()).unwrap_or(isize::MAX);
        let i = if idx < 0 { idx + n } else { idx };
        if i < 0 || i >= n {
            return Err(PyIndexError::new_err("batch index out of range"));
        }
        Ok(Event::new(
            Arc::clone(&self.inner),
            self.start + usize::try_from(i).unwrap_or(0),
        ))
    }

    fn __iter__(&self) -> BatchIter {
        BatchIter {
            inner: Arc::clone(&self.inner),
            pos: Mutex::new(self.start),
            end: self.end,
        }
    }

    /// A header field of every event as a typed buffer (`memoryview(col)`,
    /// `numpy.asarray(col)`); names in `Batch.column_names`.
    fn column(&self, name: &str) -> PyResult<Column> {
        let (data, fmt, itemsize) = column_bytes(&self.inner, self.start..self.end, name)
            .ok_or_else(|| PyKeyError::new_err(format!("no column `{name}`")))?;
        Ok(Column {
            data,
            format: CString::new(fmt).unwrap_or_default(),
            itemsize,
            shape: [isize::try_from(self.len()).unwrap_or(0)],
            strides: [isize::try_from(itemsize).unwrap_or(0)],
        })
    }

    #[classattr]
    fn column_names() -> Vec<&'static str> {
        COLUMNS.iter().map(|(n, _)| *n).collect()
    }

    /// Raw bytes of record `i` (for debugging and recording).
    fn raw<'py>(&self, py: Python<'py>, i: usize) -> PyResult<Bound<'py, PyBytes>> {
        if i >= self.len() {
            return Err(PyIndexError::new_err("batch index out of range"));
        }
        Ok(PyBytes::new(py, self.inner.record(self.start + i)))
    }
}

#[pyclass(module = "syshub._native", frozen)]
struct BatchIter {
    inner: Arc<CoreBatch>,
    pos: Mutex<usize>,
    end: usize,
}

#[pymethods]
impl BatchIter {
    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __next__(&self) -> Option<Event> {
        let mut pos = self.pos.lock().ok()?;
        if *pos >= self.end {
            return None;
        }
        let ev = Event::new(Arc::clone(&self.inner), *pos);
        *pos += 1;
        Some(ev)
    }
}

/// One typed column of a batch, exposed through the buffer protocol.
#[pyclass(module = "syshub._native", frozen)]
pub(crate) struct Column {
    data: Vec<u8>,
    format: CString,
    itemsize: usize,
    shape: [isize; 1],
    strides: [isize; 1],
}

#[pymethods]
impl Column {
    fn __len__(&self) -> usize {
        self.data.len() / self.itemsize.max(1)
    }

    /// # Safety
    /// Called by CPython with a valid `view`; we fill it per the buffer protocol.
    unsafe fn __getbuffer__(
        slf: Bound<'_, Self>,
        view: *mut pyo3::ffi::Py_buffer,
        flags: c_int,
    ) -> PyResult<()> {
        if view.is_null() {
            return Err(PyValueError::new_err("null buffer view"));
        }
        if flags & pyo3::ffi::PyBUF_WRITABLE == pyo3::ffi::PyBUF_WRITABLE {
            return Err(pyo3::exceptions::PyBufferError::new_err(
                "columns are read-only",
            ));
        }
        let this = slf.get();
        // SAFETY: view is non-null and owned by the caller for this call; the
        // pointers we store point into `this`, which the view keeps alive via `obj`.
        unsafe {
            (*view).buf = this.data.as_ptr().cast_mut().cast();
            (*view).len = isize::try_from(this.data.len()).unwrap_or(0);
            (*view).readonly = 1;
            (*view).itemsize = isize::try_from(this.itemsize).unwrap_or(1);
            (*view).format = if flags & pyo3::ffi::PyBUF_FORMAT == pyo3::ffi::PyBUF_FORMAT {
                this.format.as_ptr().cast_mut()
            } else {
                std::ptr::null_mut()
            };
            (*view).ndim = 1;
            (*view).shape = if flags & pyo3::ffi::PyBUF_ND == pyo3::ffi::PyBUF_ND {
                this.shape.as_ptr().cast_mut()
            } else {
                std::ptr::null_mut()
            };
            (*view).strides = if flags & pyo3::ffi::PyBUF_STRIDES == pyo3::ffi::PyBUF_STRIDES {
                this.strides.as_ptr().cast_mut()
            } else {
                std::ptr::null_mut()
            };
            (*view).suboffsets = std::ptr::null_mut();
            (*view).internal = std::ptr::null_mut();
            (*view).obj = slf.into_any().into_ptr();
        }
        Ok(())
    }

    unsafe fn __releasebuffer__(&self, _view: *mut pyo3::ffi::Py_buffer) {}
}
