//! `syshub._native`: thin pyo3 bindings over `syshub_bpf`. Translation only:
//! policy lives in Python, kernel and byte handling in `bpf-rs`.

use std::ffi::CString;
use std::os::raw::c_int;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pyo3::exceptions::{PyIndexError, PyKeyError, PyPermissionError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};

use syshub_bpf::Error;
use syshub_bpf::abi::{self, FilterKey, SyscallEvent};
use syshub_bpf::decode::{self, SockAddr, Value};
use syshub_bpf::probe::{FilterSpec, Probe as CoreProbe, ProbeConfig};
use syshub_bpf::reader::{Batch as CoreBatch, Reader};
use syshub_bpf::syscalls::{RetKind, SyscallTable};

fn errors_class<'py>(py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
    py.import("syshub.errors")?.getattr(name)
}

/// One `From<Error>` for every variant: the exception users see.
fn to_py(py: Python<'_>, e: Error) -> PyErr {
    let msg = e.to_string();
    let class = match &e {
        Error::Permission { .. } => return PyPermissionError::new_err(msg),
        Error::UnknownSyscall { .. } => "SyscallNameError",
        Error::InvalidArgument(_) => return PyValueError::new_err(msg),
        Error::NoTracefs { .. } | Error::Bpf(_) | Error::Closed | Error::Io { .. } => "ProbeError",
    };
    match errors_class(py, class) {
        Ok(cls) => match cls.call1((msg.clone(),)) {
            Ok(inst) => PyErr::from_value(inst),
            Err(err) => err,
        },
        Err(_) => PyValueError::new_err(msg),
    }
}

fn map_err<T>(py: Python<'_>, r: Result<T, Error>) -> PyResult<T> {
    r.map_err(|e| to_py(py, e))
}

fn resolve_nr(py: Python<'_>, syscall: &Bound<'_, PyAny>) -> PyResult<u32> {
    let table = SyscallTable::get();
    if let Ok(nr) = syscall.extract::<u32>() {
        return map_err(py, table.resolve(&nr.to_string()).map(|d| d.nr));
    }
    let name: String = syscall.extract()?;
    map_err(py, table.by_name(&name).map(|d| d.nr))
}

struct Inner {
    probe: Mutex<Option<CoreProbe>>,
    reader: Reader,
    closed: AtomicBool,
    delivered: Mutex<std::collections::HashMap<FilterKey, u64>>,
    /// The rest of a batch that a poll with a small `max_events` did not take.
    leftover: Mutex<Option<(Arc<CoreBatch>, usize)>>,
}

/// The kernel probe: load, filter, poll, count. Thread-safe.
#[pyclass(module = "syshub._native", frozen)]
struct Probe {
    inner: Arc<Inner>,
}

fn with_probe<T>(
    py: Python<'_>,
    inner: &Inner,
    f: impl FnOnce(&mut CoreProbe) -> Result<T, Error>,
) -> PyResult<T> {
    let mut guard = inner
        .probe
        .lock()
        .map_err(|_| to_py(py, Error::Bpf("probe lock poisoned".into())))?;
    let probe = guard.as_mut().ok_or_else(|| to_py(py, Error::Closed))?;
    map_err(py, f(probe))
}

#[pymethods]
impl Probe {
    #[new]
    #[pyo3(signature = (ring_bytes = 16 << 20, *, wakeup_bytes = None, poll_ms = 10, self_tgid = None))]
    fn new(
        py: Python<'_>,
        ring_bytes: u32,
        wakeup_bytes: Option<u64>,
        poll_ms: i32,
        self_tgid: Option<u32>,
    ) -> PyResult<Self> {
        if !(1..=1000).contains(&poll_ms) {
            return Err(PyValueError::new_err("poll_ms must be 1..=1000"));
        }
        let cfg = ProbeConfig {
            ring_bytes,
            wakeup_bytes,
            self_tgid,
        };
        let (probe, ring) = map_err(py, py.detach(|| CoreProbe::open(&cfg)))?;
        let reader = map_err(py, Reader::start(ring, poll_ms))?;
        Ok(Self {
            inner: Arc::new(Inner {
                probe: Mutex::new(Some(probe)),
                reader,
                closed: AtomicBool::new(false),
                delivered: Mutex::new(std::collections::HashMap::new()),
                leftover: Mutex::new(None),
            }),
        })
    }

    /// Trace `syscall` (name, `sys_` name or number) in pid namespace `pid_ns` (0 = all).
    #[allow(
        clippy::too_many_arguments,
        reason = "mirrors the Python keyword arguments one to one"
    )]
    #[pyo3(signature = (pid_ns, syscall, sample_rate = 1, *, str_max = 256, argv_max = 32, buf_max = 64))]
    fn add_filter(
        &self,
        py: Python<'_>,
        pid_ns: u32,
        syscall: &Bound<'_, PyAny>,
        sample_rate: i64,
        str_max: u16,
        argv_max: u16,
        buf_max: u32,
    ) -> PyResult<()> {
        if sample_rate < 0 {
            return Err(PyValueError::new_err(format!(
                "sample_rate must be >= 0, got {sample_rate}"
            )));
        }
        let nr = resolve_nr(py, syscall)?;
        let spec = FilterSpec {
            sample_rate: u32::try_from(sample_rate.max(1))
                .map_err(|_| PyValueError::new_err("sample_rate too large"))?,
            str_max,
            argv_max,
            buf_max,
        };
        with_probe(py, &self.inner, |p| p.add_filter(pid_ns, nr, spec))
    }

    /// Stop tracing a key; returns False if it was not traced.
    fn remove_filter(
        &self,
        py: Python<'_>,
        pid_ns: u32,
        syscall: &Bound<'_, PyAny>,
    ) -> PyResult<bool> {
        let nr = resolve_nr(py, syscall)?;
        with_probe(py, &self.inner, |p| p.remove_filter(pid_ns, nr))
    }

    /// Filter keys read back from the kernel map: list of dicts.
    fn filters<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let items = with_probe(py, &self.inner, |p| p.filters())?;
        let table = SyscallTable::get();
        let list = PyList::empty(py);
        for (k, cfg) in items {
            let d = PyDict::new(py);
            d.set_item("pid_ns", k.pid_ns)?;
            d.set_item("nr", k.nr)?;
            d.set_item("syscall", table.by_nr(k.nr).map(|x| x.name.as_str()))?;
            d.set_item("sample_rate", cfg.sample_rate)?;
            d.set_item("str_max", cfg.str_max)?;
            d.set_item("argv_max", cfg.argv_max)?;
            d.set_item("buf_max", cfg.buf_max)?;
            list.append(d)?;
        }
        Ok(list)
    }

    /// Live keys' current sequence numbers: {(pid_ns, nr): seq}. A key's
    /// sequence restarts at 0 when it is removed and added again.
    fn sequences<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let items = with_probe(py, &self.inner, |p| p.sequences())?;
        let d = PyDict::new(py);
        for (k, seq) in items {
            d.set_item((k.pid_ns, k.nr), seq)?;
        }
        Ok(d)
    }

    /// Syscall numbers whose hooks are attached now: list of (nr, raw_hook).
    fn hooked(&self, py: Python<'_>) -> PyResult<Vec<(u32, bool)>> {
        with_probe(py, &self.inner, |p| Ok(p.hooked()))
    }

    /// Wait up to `timeout_ms` for events; returns a (possibly empty) Batch.
    #[pyo3(signature = (max_events = 8192, timeout_ms = 1000))]
    fn poll(&self, py: Python<'_>, max_events: usize, timeout_ms: i64) -> PyResult<Batch> {
        if max_events == 0 {
            return Err(PyValueError::new_err("max_events must be > 0"));
        }
        if let Some(b) = self.take_leftover(max_events) {
            return Ok(b);
        }
        if self.inner.closed.load(Ordering::SeqCst) {
            return match self.inner.reader.try_recv() {
                Ok(Some(b)) => Ok(self.deliver(Arc::new(b), 0, max_events)),
                _ => Err(to_py(py, Error::Closed)),
            };
        }
        let deadline = (timeout_ms >= 0)
            .then(|| Instant::now() + Duration::from_millis(timeout_ms.cast_unsigned()));
        loop {
            let slice = deadline.map_or(Duration::from_millis(50), |d| {
                d.saturating_duration_since(Instant::now())
                    .min(Duration::from_millis(50))
            });
            let inner = Arc::clone(&self.inner);
            let got = py.detach(move || inner.reader.recv(slice));
            match got {
                Ok(Some(b)) => return Ok(self.deliver(Arc::new(b), 0, max_events)),
                Ok(None) => {}
                Err(_) => return Ok(Batch::empty()),
            }
            py.check_signals()?;
            if self.inner.closed.load(Ordering::SeqCst) {
                return Ok(Batch::empty());
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(Batch::empty());
            }
        }
    }

    /// Counters: {"keys": [per key dicts], "total": {...}, "kernel": {...}, "reader": {...}}.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let (keys, globals) = with_probe(py, &self.inner, |p| {
            Ok((p.key_counters()?, p.global_counters()?))
        })?;
        let delivered = self
            .inner
            .delivered
            .lock()
            .map(|d| d.clone())
            .unwrap_or_default();
        let received = self
            .inner
            .reader
            .counters
            .per_key
            .lock()
            .map(|d| d.clone())
            .unwrap_or_default();
        let table = SyscallTable::get();
        let out = PyDict::new(py);
        let list = PyList::empty(py);
        let (mut tm, mut ts, mut td, mut tdl) = (0u64, 0u64, 0u64, 0u64);
        for (k, c) in keys {
            let dl = delivered.get(&k).copied().unwrap_or(0);
            let emitted = received.get(&k).copied().unwrap_or(0);
            let d = PyDict::new(py);
            d.set_item("pid_ns", k.pid_ns)?;
            d.set_item("nr", k.nr)?;
            d.set_item("syscall", table.by_nr(k.nr).map(|x| x.name.as_str()))?;
            d.set_item("matched", c.matched)?;
            d.set_item("sampled_out", c.sampled_out)?;
            d.set_item("dropped", c.dropped)?;
            // emitted: records read out of the ring (delivered or queued for poll).
            d.set_item("emitted", emitted)?;
            d.set_item("delivered", dl)?;
            // pending: matched calls not yet delivered nor accounted as dropped or
            // sampled out (in a syscall still running, in the ring, or queued).
            d.set_item(
                "pending",
                c.matched
                    .saturating_sub(c.sampled_out + c.dropped)
                    .saturating_sub(dl),
            )?;
            list.append(d)?;
            tm += c.matched;
            ts += c.sampled_out;
            td += c.dropped;
            tdl += dl;
        }
        out.set_item("keys", list)?;
        let total = PyDict::new(py);
        total.set_item("matched", tm)?;
        total.set_item("sampled_out", ts)?;
        total.set_item("dropped", td)?;
        total.set_item("delivered", tdl)?;
        out.set_item("total", total)?;
        let kernel = PyDict::new(py);
        kernel.set_item("matched", globals.matched)?;
        kernel.set_item("sampled_out", globals.sampled_out)?;
        kernel.set_item("dropped", globals.dropped)?;
        kernel.set_item("emitted", globals.emitted)?;
        kernel.set_item("orphaned", globals.orphaned)?;
        kernel.set_item("nomem", globals.nomem)?;
        kernel.set_item("nokey", globals.nokey)?;
        out.set_item("kernel", kernel)?;
        let reader = PyDict::new(py);
        let rc = &self.inner.reader.counters;
        reader.set_item("records", rc.records.load(Ordering::Relaxed))?;
        reader.set_item("decode_errors", rc.decode_errors.load(Ordering::Relaxed))?;
        reader.set_item("batches", rc.batches.load(Ordering::Relaxed))?;
        reader.set_item("wakeups", rc.wakeups.load(Ordering::Relaxed))?;
        out.set_item("reader", reader)?;
        Ok(out)
    }

    /// Detach everything and free the kernel objects. Idempotent; a poll
    /// waiting in another thread returns an empty batch.
    fn close(&self, py: Python<'_>) {
        if self.inner.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        let inner = Arc::clone(&self.inner);
        py.detach(move || {
            inner.reader.stop();
            if let Ok(mut g) = inner.probe.lock() {
                g.take();
            }
        });
    }

    #[getter]
    fn closed(&self) -> bool {
        self.inner.closed.load(Ordering::SeqCst)
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __exit__(
        &self,
        py: Python<'_>,
        _t: Option<&Bound<'_, PyAny>>,
        _v: Option<&Bound<'_, PyAny>>,
        _tb: Option<&Bound<'_, PyAny>>,
    ) -> bool {
        self.close(py);
        false
    }
}

impl Probe {
    fn take_leftover(&self, max_events: usize) -> Option<Batch> {
        let (b, start) = self.inner.leftover.lock().ok()?.take()?;
        Some(self.deliver(b, start, max_events))
    }

    /// Hands out records `start..start + max_events` of `b` (the rest is
    /// kept for the next poll) and counts them as delivered.
    fn deliver(&self, b: Arc<CoreBatch>, start: usize, max_events: usize) -> Batch {
        let end = b.len().min(start.saturating_add(max_events));
        if let Ok(mut d) = self.inner.delivered.lock() {
            if start == 0 && end == b.len() {
                for (k, n) in &b.per_key {
                    *d.entry(*k).or_default() += n;
                }
            } else {
                for i in start..end {
                    *d.entry(b.header(i).filter_key()).or_default() += 1;
                }
            }
        }
        if end < b.len()
            && let Ok(mut l) = self.inner.leftover.lock()
        {
            *l = Some((Arc::clone(&b), end));
        }
        Batch {
            inner: b,
            start,
            end,
        }
    }
}

/// A batch of events from one poll: iterate for Event objects, or take
/// header columns with `column(name)` (buffer protocol, zero Python objects).
#[pyclass(module = "syshub._native", frozen, sequence)]
struct Batch {
    inner: Arc<CoreBatch>,
    start: usize,
    end: usize,
}

impl Batch {
    fn empty() -> Self {
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
struct Column {
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

/// One syscall event; immutable. Header fields are attributes; `args`,
/// `to_dict()`, `to_json()` and `to_text()` decode on demand.
#[pyclass(module = "syshub._native", frozen)]
struct Event {
    batch: Arc<CoreBatch>,
    idx: usize,
    hdr: SyscallEvent,
}

impl Event {
    fn new(batch: Arc<CoreBatch>, idx: usize) -> Self {
        let hdr = batch.header(idx);
        Self { batch, idx, hdr }
    }

    fn decoded(&self) -> decode::Decoded {
        decode::decode(self.batch.record(self.idx)).unwrap_or_else(|_| decode::Decoded {
            hdr: self.hdr,
            name: format!("syscall_{}", self.hdr.nr).into(),
            args: Vec::new(),
            errno: None,
        })
    }
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn sockaddr_to_py<'py>(py: Python<'py>, sa: &SockAddr) -> PyResult<Bound<'py, PyAny>> {
    let d = PyDict::new(py);
    d.set_item("family", sa.family_name())?;
    match sa {
        SockAddr::Inet { addr, port } => {
            d.set_item("addr", addr.to_string())?;
            d.set_item("port", port)?;
        }
        SockAddr::Inet6 {
            addr,
            port,
            flowinfo,
            scope_id,
        } => {
            d.set_item("addr", addr.to_string())?;
            d.set_item("port", port)?;
            d.set_item("flowinfo", flowinfo)?;
            d.set_item("scope_id", scope_id)?;
        }
        SockAddr::Unix {
            path,
            abstract_name,
        } => {
            d.set_item("path", path)?;
            d.set_item("abstract", abstract_name)?;
        }
        SockAddr::Netlink { pid, groups } => {
            d.set_item("pid", pid)?;
            d.set_item("groups", groups)?;
        }
        SockAddr::Other { family, bytes } => {
            d.set_item("family", family)?;
            d.set_item("data", PyBytes::new(py, bytes))?;
        }
    }
    Ok(d.into_any())
}

/// JSON-ready Python value of a decoded argument (stable shape per type).
fn value_to_py<'py>(py: Python<'py>, v: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        Value::Int(x) => x.into_pyobject(py)?.into_any(),
        Value::Uint(x) | Value::Hex(x) | Value::Ptr(x) => x.into_pyobject(py)?.into_any(),
        Value::Octal(x) => PyString::new(py, &format!("0{x:o}")).into_any(),
        Value::Sym { text, .. } => PyString::new(py, text.as_ref()).into_any(),
        Value::Str { bytes, .. } => PyString::new(py, &lossy(bytes)).into_any(),
        Value::StrList { items, .. } => PyList::new(py, items.iter().map(|i| lossy(i)))?.into_any(),
        Value::Bytes {
            data,
            orig_len,
            truncated,
            fault,
        } => {
            let d = PyDict::new(py);
            d.set_item("data", lossy(data))?;
            d.set_item("len", orig_len)?;
            d.set_item("truncated", truncated)?;
            if *fault {
                d.set_item("fault", true)?;
            }
            d.into_any()
        }
        Value::Sockaddr(sa) => sockaddr_to_py(py, sa)?,
        Value::Struct(fields) => {
            let d = PyDict::new(py);
            for (k, v) in fields {
                d.set_item(k, value_to_py(py, v)?)?;
            }
            d.into_any()
        }
    })
}

fn truncated_names(args: &[decode::Arg]) -> Vec<String> {
    args.iter()
        .filter(|a| match &a.value {
            Value::Str { truncated, .. }
            | Value::StrList { truncated, .. }
            | Value::Bytes { truncated, .. } => *truncated,
            _ => false,
        })
        .map(|a| a.name.to_owned())
        .collect()
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
    /// True when the record ran out of room and some captures were omitted.
    #[getter]
    fn truncated(&self) -> bool {
        self.hdr.flags & abi::EVF_TRUNCATED != 0
    }
    /// Positive errno when the call failed, else None.
    #[getter]
    fn errno(&self) -> Option<i64> {
        let kind = SyscallTable::get().by_nr(self.hdr.nr).map(|d| d.ret);
        if self.hdr.flags & abi::EVF_NO_EXIT != 0 {
            return None;
        }
        decode::errno_of(self.hdr.ret, kind)
    }
    /// "ENOENT"-style name, "OK" on success.
    #[getter]
    fn error(&self) -> String {
        match self.errno() {
            Some(e) => decode::errno_name(e).map_or_else(|| format!("E{e}"), str::to_owned),
            None => "OK".into(),
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
        let d = self.decoded();
        let out = PyDict::new(py);
        for a in &d.args {
            out.set_item(a.name, value_to_py(py, &a.value)?)?;
        }
        Ok(out)
    }
    /// Names of arguments whose capture was cut short.
    #[getter]
    fn truncated_args(&self) -> Vec<String> {
        truncated_names(&self.decoded().args)
    }
    /// Latency in ns (0 for calls that never return).
    #[getter]
    fn latency_ns(&self) -> u64 {
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
    /// The event as a JSON-ready dict (swoll TraceEvent field names where
    /// they mean the same; `pid` is the process id, `tid` the thread id).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let def = SyscallTable::get().by_nr(self.hdr.nr);
        let d = PyDict::new(py);
        let sc = PyDict::new(py);
        sc.set_item("nr", self.hdr.nr)?;
        sc.set_item("name", def.map(|x| format!("sys_{}", x.name)))?;
        sc.set_item("class", def.map(|x| x.class.as_str()))?;
        sc.set_item("group", def.map(|x| x.group.as_str()))?;
        d.set_item("syscall", sc)?;
        d.set_item("pid", self.hdr.tgid)?;
        d.set_item("tid", self.hdr.tid)?;
        d.set_item("container_pid", self.hdr.ns_tgid)?;
        d.set_item("container_tid", self.hdr.ns_tid)?;
        d.set_item("uid", self.hdr.uid)?;
        d.set_item("gid", self.hdr.gid)?;
        d.set_item("comm", self.hdr.comm_str())?;
        d.set_item("session", self.hdr.sid)?;
        d.set_item("error", self.error())?;
        if self.hdr.flags & abi::EVF_NO_EXIT != 0 {
            d.set_item("return", py.None())?;
        } else {
            d.set_item("return", self.hdr.ret)?;
        }
        d.set_item("pid_ns", self.hdr.pid_ns)?;
        d.set_item("uts_ns", self.hdr.uts_ns)?;
        d.set_item("mount_ns", self.hdr.mnt_ns)?;
        d.set_item("cgroup_id", self.hdr.cgroup_id)?;
        d.set_item("start", self.hdr.enter_ns)?;
        d.set_item("finish", self.hdr.exit_ns)?;
        d.set_item("seq", self.hdr.seq)?;
        let dec = self.decoded();
        let args = PyDict::new(py);
        for a in &dec.args {
            args.set_item(a.name, value_to_py(py, &a.value)?)?;
        }
        d.set_item("args", args)?;
        let tr = truncated_names(&dec.args);
        if !tr.is_empty() {
            d.set_item("truncated", tr)?;
        }
        Ok(d)
    }

    fn __repr__(&self) -> String {
        format!("<Event {}>", self.decoded().to_text())
    }
}

/// Decode one raw record (bytes) into an Event; raises ValueError if malformed.
#[pyfunction]
fn decode_record(rec: &[u8]) -> PyResult<Event> {
    let mut keys = std::collections::HashMap::new();
    let mut b = CoreBatch::default();
    if !b.push(rec, &mut keys) {
        let e = decode::validate(rec)
            .err()
            .map_or_else(String::new, |e| e.to_string());
        return Err(PyValueError::new_err(format!("malformed record: {e}")));
    }
    Ok(Event::new(Arc::new(b), 0))
}

/// The syscall table data file (TSV), shared with the Rust side.
#[pyfunction]
fn syscall_table_tsv() -> &'static str {
    SyscallTable::source_text()
}

/// (nr, name, class, group) for a name (with or without `sys_`) or number.
#[pyfunction]
fn lookup_syscall(
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
fn errno_name(n: i64) -> Option<&'static str> {
    decode::errno_name(n)
}

/// True when a return value of this syscall is an address, never an errno.
#[pyfunction]
fn returns_pointer(nr: u32) -> bool {
    SyscallTable::get()
        .by_nr(nr)
        .is_some_and(|d| d.ret == RetKind::Ptr)
}

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
fn abi_layout(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let out = PyDict::new(py);
    layout!(py, out, "syshub_event", abi::SyscallEvent, [
        kind: u16, flags: u16, size: u32, nr: u32, tgid: u32, tid: u32, ns_tgid: u32,
        ns_tid: u32, uid: u32, gid: u32, sid: u32, pid_ns: u32, mnt_ns: u32, uts_ns: u32,
        ncaptures: u16, _pad0: u16, cgroup_id: u64, enter_ns: u64, exit_ns: u64, ret: i64,
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
        sample_rate: u32, str_max: u16, argv_max: u16, buf_max: u32, _pad0: u32,
    ]);
    layout!(py, out, "syshub_key_counters", abi::KeyCounters, [
        matched: u64, sampled_out: u64, dropped: u64, emitted: u64,
    ]);
    Ok(out)
}

/// The embedded eBPF object (for inspection and the ABI test).
#[pyfunction]
fn probe_object(py: Python<'_>) -> Bound<'_, PyBytes> {
    PyBytes::new(py, syshub_bpf::PROBE_OBJECT)
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Probe>()?;
    m.add_class::<Batch>()?;
    m.add_class::<Event>()?;
    m.add_class::<Column>()?;
    m.add_function(wrap_pyfunction!(decode_record, m)?)?;
    m.add_function(wrap_pyfunction!(syscall_table_tsv, m)?)?;
    m.add_function(wrap_pyfunction!(lookup_syscall, m)?)?;
    m.add_function(wrap_pyfunction!(errno_name, m)?)?;
    m.add_function(wrap_pyfunction!(returns_pointer, m)?)?;
    m.add_function(wrap_pyfunction!(abi_layout, m)?)?;
    m.add_function(wrap_pyfunction!(probe_object, m)?)?;
    m.add("ABI_VERSION", abi::ABI_VERSION)?;
    m.add("REC_MAX", abi::REC_MAX)?;
    Ok(())
}
