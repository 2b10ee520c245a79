//! Batches of events: `Batch` (one poll), its iterator, and `Column`, a
//! header field of every event through the buffer protocol.

use std::ffi::CString;
use std::mem::offset_of;
use std::os::raw::c_int;
use std::sync::{Arc, Mutex};

use pyo3::exceptions::{PyIndexError, PyKeyError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use syshub_bpf::abi::{self, SyscallEvent};
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

    /// The reader batch and the records of it this batch holds.
    pub(crate) fn core(&self) -> (&Arc<CoreBatch>, std::ops::Range<usize>) {
        (&self.inner, self.start..self.end)
    }
}

/// A u32 / u64 header field of a record at its offset (records were
/// validated at least a header long when read).
fn u32_at(rec: &[u8], off: usize) -> u32 {
    rec.get(off..off + 4)
        .map_or(0, |b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
}

fn u64_at(rec: &[u8], off: usize) -> u64 {
    rec.get(off..off + 8).map_or(0, |b| {
        u64::from_ne_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
    })
}

/// (key_ns, nr, pid_ns, seq) of a record, read at their offsets.
fn route_fields(rec: &[u8]) -> (u32, u32, u32, u64) {
    let flags = rec
        .get(offset_of!(SyscallEvent, flags)..)
        .and_then(|b| b.get(..2))
        .map_or(0, |b| u16::from_ne_bytes([b[0], b[1]]));
    let pid_ns = u32_at(rec, offset_of!(SyscallEvent, pid_ns));
    let key_ns = if flags & abi::EVF_ANY_NS != 0 {
        0
    } else if flags & abi::EVF_SCOPE != 0 {
        let scope = rec
            .get(offset_of!(SyscallEvent, scope)..)
            .and_then(|b| b.get(..2))
            .map_or(0, |b| u16::from_ne_bytes([b[0], b[1]]));
        u32::from(scope)
    } else {
        pid_ns
    };
    (
        key_ns,
        u32_at(rec, offset_of!(SyscallEvent, nr)),
        pid_ns,
        u64_at(rec, offset_of!(SyscallEvent, seq)),
    )
}

/// A run of records of one filter key and pid namespace: (key_ns, nr,
/// pid_ns, start, end, smallest seq, largest seq).
type Run = (u32, u32, u32, usize, usize, u64, u64);

/// Where a column's value sits in a record header: a field read at its
/// offset straight from the record bytes (no header copy, no call per
/// record: this runs per event on the consumer's thread), or the filter key.
#[derive(Clone, Copy)]
enum Field {
    U16(usize),
    U32(usize),
    U64(usize),
    I64(usize),
    KeyNs,
}

/// Every column: name and field, in `Batch.column_names` order.
const COLUMNS: &[(&str, Field)] = &[
    ("nr", Field::U32(offset_of!(SyscallEvent, nr))),
    ("tgid", Field::U32(offset_of!(SyscallEvent, tgid))),
    ("tid", Field::U32(offset_of!(SyscallEvent, tid))),
    ("ns_tgid", Field::U32(offset_of!(SyscallEvent, ns_tgid))),
    ("ns_tid", Field::U32(offset_of!(SyscallEvent, ns_tid))),
    ("uid", Field::U32(offset_of!(SyscallEvent, uid))),
    ("gid", Field::U32(offset_of!(SyscallEvent, gid))),
    ("pid_ns", Field::U32(offset_of!(SyscallEvent, pid_ns))),
    ("key_ns", Field::KeyNs),
    ("mnt_ns", Field::U32(offset_of!(SyscallEvent, mnt_ns))),
    ("uts_ns", Field::U32(offset_of!(SyscallEvent, uts_ns))),
    ("flags", Field::U16(offset_of!(SyscallEvent, flags))),
    ("cgroup_id", Field::U64(offset_of!(SyscallEvent, cgroup_id))),
    ("enter_ns", Field::U64(offset_of!(SyscallEvent, enter_ns))),
    ("exit_ns", Field::U64(offset_of!(SyscallEvent, exit_ns))),
    ("ret", Field::I64(offset_of!(SyscallEvent, ret))),
    ("seq", Field::U64(offset_of!(SyscallEvent, seq))),
];

/// Column `name` of records `range` of `b`: its native-endian bytes, its
/// buffer format and item size.
fn column_bytes(
    b: &CoreBatch,
    range: std::ops::Range<usize>,
    name: &str,
) -> Option<(Vec<u8>, &'static str, usize)> {
    let (_, field) = COLUMNS.iter().find(|(n, _)| *n == name)?;
    macro_rules! at {
        ($off:expr, $fmt:literal, $ty:ty) => {{
            const N: usize = size_of::<$ty>();
            let mut out = Vec::with_capacity(range.len() * N);
            for i in range {
                // Records were validated at least a header long when read.
                let bytes = b.record(i).get($off..$off + N).unwrap_or(&[0; N]);
                out.extend_from_slice(bytes);
            }
            (out, $fmt, N)
        }};
    }
    Some(match *field {
        Field::U16(off) => at!(off, "H", u16),
        Field::U32(off) => at!(off, "I", u32),
        Field::U64(off) => at!(off, "Q", u64),
        Field::I64(off) => at!(off, "q", i64),
        Field::KeyNs => {
            let mut out = Vec::with_capacity(range.len() * 4);
            for i in range {
                out.extend_from_slice(&b.header(i).filter_key().pid_ns.to_ne_bytes());
            }
            (out, "I", 4)
        }
    })
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

    /// Runs of consecutive records with the same filter key and pid
    /// namespace: `(key_ns, nr, pid_ns, start, end, min_seq, max_seq)`, index
    /// ranges `start..end` of this batch (the router's unit of work).
    fn runs(&self) -> Vec<Run> {
        // Noted by the reader thread while it copied each record.
        if let Some(runs) = self.inner.runs_of(self.start, self.end) {
            return runs
                .iter()
                .map(|r| {
                    let (s, e) = (r.start, r.end);
                    (r.key_ns, r.nr, r.pid_ns, s, e, r.min_seq, r.max_seq)
                })
                .collect();
        }
        let mut out: Vec<Run> = Vec::new();
        for i in self.start..self.end {
            let (key_ns, nr, pid_ns, seq) = route_fields(self.inner.record(i));
            let at = i - self.start;
            match out.last_mut() {
                Some(r) if r.0 == key_ns && r.1 == nr && r.2 == pid_ns && r.4 == at => {
                    r.4 = at + 1;
                    r.5 = r.5.min(seq);
                    r.6 = r.6.max(seq);
                }
                _ => out.push((key_ns, nr, pid_ns, at, at + 1, seq, seq)),
            }
        }
        out
    }

    /// Index ranges of records `start..end` whose sequence number is above
    /// `base`, a multiple of `rate` and at most `last` (a job context's
    /// share of a run), merged where adjacent.
    #[pyo3(signature = (start, end, base, rate, last))]
    fn select(
        &self,
        start: usize,
        end: usize,
        base: u64,
        rate: u64,
        last: u64,
    ) -> PyResult<Vec<(usize, usize)>> {
        if start > end || end > self.len() {
            return Err(PyIndexError::new_err("select: range out of the batch"));
        }
        let rate = rate.max(1);
        let mut out: Vec<(usize, usize)> = Vec::new();
        for at in start..end {
            let (_, _, _, seq) = route_fields(self.inner.record(self.start + at));
            if seq <= base || !seq.is_multiple_of(rate) || seq > last {
                continue;
            }
            match out.last_mut() {
                Some(r) if r.1 == at => r.1 = at + 1,
                _ => out.push((at, at + 1)),
            }
        }
        Ok(out)
    }

    /// A batch of raw records (as `raw()` returns them: recorded, or built
    /// by hand); ValueError naming the first malformed one.
    #[staticmethod]
    fn from_records(records: Vec<Vec<u8>>) -> PyResult<Self> {
        let mut b = CoreBatch::default();
        for (i, rec) in records.iter().enumerate() {
            if b.push_record(rec).is_none() {
                let why = syshub_bpf::decode::validate(rec)
                    .err()
                    .map_or_else(String::new, |e| e.to_string());
                return Err(PyValueError::new_err(format!(
                    "record {i} is malformed: {why}"
                )));
            }
        }
        let n = b.len();
        Ok(Self::new(Arc::new(b), 0, n))
    }

    /// A new batch holding only the records of `ranges` (copied): a small
    /// selection then no longer keeps the whole poll batch alive.
    fn take(&self, ranges: Vec<(usize, usize)>) -> PyResult<Self> {
        let mut b = CoreBatch::default();
        for (s, e) in ranges {
            if s > e || e > self.len() {
                return Err(PyIndexError::new_err("take: range out of the batch"));
            }
            for i in s..e {
                // Validated when read: it validates again.
                b.push_record(self.inner.record(self.start + i));
            }
        }
        let n = b.len();
        Ok(Self::new(Arc::new(b), 0, n))
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
