//! The `Probe` pyclass: load, filter, poll, count.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use syshub_bpf::Error;
use syshub_bpf::abi;
use syshub_bpf::accounting::{Delivered, ProbeStats};
use syshub_bpf::limits;
use syshub_bpf::probe::{
    FAIR_SHARE_PCT, FilterSpec, MAX_TP_SYSCALLS, Probe as CoreProbe, ProbeConfig,
};
use syshub_bpf::reader::{Batch as CoreBatch, Reader};
use syshub_bpf::syscalls::SyscallTable;

use crate::batch::Batch;
use crate::errors::{IntArg, map_err, to_py};
use crate::stats::stats_to_py;
use crate::syscalls::resolve_nr;

/// How long `stats` waits for the reader thread to empty the ring.
const STATS_SYNC: Duration = Duration::from_secs(1);

struct Inner {
    probe: Mutex<Option<CoreProbe>>,
    reader: Reader,
    closed: AtomicBool,
    delivered: Delivered,
    /// The rest of a batch that a poll with a small `max_events` did not take.
    leftover: Mutex<Option<(Arc<CoreBatch>, usize)>>,
}

/// The kernel probe: load, filter, poll, count. Thread-safe.
#[pyclass(module = "syshub._native", frozen)]
pub(crate) struct Probe {
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
    #[pyo3(
        signature = (ring_bytes = IntArg::from(16 << 20), *, wakeup_bytes = None, poll_ms = IntArg::from(10), self_tgid = None, tracepoint_syscalls = None, fair_share_pct = IntArg::from(i64::from(FAIR_SHARE_PCT))),
        text_signature = "(ring_bytes=16777216, *, wakeup_bytes=None, poll_ms=10, self_tgid=None, tracepoint_syscalls=None, fair_share_pct=50)"
    )]
    fn new(
        py: Python<'_>,
        ring_bytes: IntArg,
        wakeup_bytes: Option<IntArg>,
        poll_ms: IntArg,
        self_tgid: Option<IntArg>,
        tracepoint_syscalls: Option<IntArg>,
        fair_share_pct: IntArg,
    ) -> PyResult<Self> {
        let ring: u32 = ring_bytes.get(
            py,
            "ring_bytes",
            limits::RING_BYTES_MIN,
            limits::RING_BYTES_MAX,
        )?;
        let cfg = ProbeConfig {
            ring_bytes: map_err(py, limits::ring_bytes(ring.into()))?,
            wakeup_bytes: wakeup_bytes
                .map(|w| w.get(py, "wakeup_bytes", 0, u64::MAX))
                .transpose()?,
            self_tgid: self_tgid
                .map(|t| t.get(py, "self_tgid", 0, u32::MAX))
                .transpose()?,
            tracepoint_syscalls: match tracepoint_syscalls {
                Some(n) => n.get(py, "tracepoint_syscalls", 0, abi::MAX_SYSCALLS)?,
                None => MAX_TP_SYSCALLS,
            },
            fair_share_pct: fair_share_pct.get(py, "fair_share_pct", 0, 100)?,
        };
        let poll_ms: i32 = poll_ms.get(py, "poll_ms", 1, 1000)?;
        let (mut probe, ring) = map_err(py, py.detach(|| CoreProbe::open(&cfg)))?;
        let flusher = map_err(py, probe.stage_flusher())?;
        let reader = map_err(
            py,
            Reader::start_with(
                ring,
                poll_ms,
                Some(probe.read_feedback()),
                Some(Box::new(move || flusher.flush())),
            ),
        )?;
        Ok(Self {
            inner: Arc::new(Inner {
                probe: Mutex::new(Some(probe)),
                reader,
                closed: AtomicBool::new(false),
                delivered: Delivered::default(),
                leftover: Mutex::new(None),
            }),
        })
    }

    /// Trace `syscall` (name, `sys_` name or number) in pid namespace `pid_ns` (0 = all).
    #[allow(
        clippy::too_many_arguments,
        reason = "mirrors the Python keyword arguments one to one"
    )]
    #[pyo3(
        signature = (pid_ns, syscall, sample_rate = IntArg::from(1), *, str_max = IntArg::from(256), argv_max = IntArg::from(32), buf_max = IntArg::from(64), durations = false),
        text_signature = "($self, pid_ns, syscall, sample_rate=1, *, str_max=256, argv_max=32, buf_max=64, durations=False)"
    )]
    fn add_filter(
        &self,
        py: Python<'_>,
        pid_ns: IntArg,
        syscall: &Bound<'_, PyAny>,
        sample_rate: IntArg,
        str_max: IntArg,
        argv_max: IntArg,
        buf_max: IntArg,
        durations: bool,
    ) -> PyResult<()> {
        let pid_ns: u32 = pid_ns.get(py, "pid_ns", 0, u32::MAX)?;
        let sample_rate: u32 = sample_rate.get(py, "sample_rate", 0, limits::SAMPLE_RATE_MAX)?;
        let spec = FilterSpec {
            sample_rate: sample_rate.max(1),
            str_max: str_max.get(py, "str_max", 1, limits::STR_MAX_LIMIT)?,
            argv_max: argv_max.get(py, "argv_max", 0, limits::ARGV_MAX_LIMIT)?,
            buf_max: buf_max.get(py, "buf_max", 0, limits::BUF_MAX_LIMIT)?,
            durations,
        };
        let nr = resolve_nr(py, syscall)?;
        with_probe(py, &self.inner, |p| p.add_filter(pid_ns, nr, spec))
    }

    /// Stop tracing a key; returns False if it was not traced.
    fn remove_filter(
        &self,
        py: Python<'_>,
        pid_ns: IntArg,
        syscall: &Bound<'_, PyAny>,
    ) -> PyResult<bool> {
        let pid_ns: u32 = pid_ns.get(py, "pid_ns", 0, u32::MAX)?;
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

    /// Syscall numbers whose entry hook runs now; the others are recorded at
    /// exit only.
    fn entry_hooked(&self, py: Python<'_>) -> PyResult<Vec<u32>> {
        with_probe(py, &self.inner, |p| Ok(p.entry_hooked()))
    }

    /// Put process `pid` (host pid) and its descendants, now and later, in a
    /// new scope; returns the scope id to use as `add_filter`'s namespace.
    fn add_scope(&self, py: Python<'_>, pid: IntArg) -> PyResult<u16> {
        let pid: u32 = pid.get(py, "pid", 1, u64::from(u32::MAX))?;
        with_probe(py, &self.inner, |p| p.add_scope(pid))
    }

    /// End a scope and remove its filters; False when it did not exist.
    fn remove_scope(&self, py: Python<'_>, scope: IntArg) -> PyResult<bool> {
        let scope: u16 = scope.get(py, "scope", 0, u64::from(u16::MAX))?;
        with_probe(py, &self.inner, |p| p.remove_scope(scope))
    }

    /// Live scopes: list of (scope id, root pid).
    fn scopes(&self, py: Python<'_>) -> PyResult<Vec<(u16, u32)>> {
        with_probe(py, &self.inner, |p| Ok(p.scopes()))
    }

    /// Host pids in scope `scope` now.
    fn scope_pids(&self, py: Python<'_>, scope: IntArg) -> PyResult<Vec<u32>> {
        let scope: u16 = scope.get(py, "scope", 0, u64::from(u16::MAX))?;
        with_probe(py, &self.inner, |p| Ok(p.scope_pids(scope)))
    }

    /// Whether the fork/exit hooks that follow scoped processes are attached.
    fn scope_hooked(&self, py: Python<'_>) -> PyResult<bool> {
        with_probe(py, &self.inner, |p| Ok(p.scope_hooked()))
    }

    /// Wait up to `timeout_ms` for events; returns a (possibly empty) Batch.
    #[pyo3(
        signature = (max_events = IntArg::from(8192), timeout_ms = IntArg::from(1000)),
        text_signature = "($self, max_events=8192, timeout_ms=1000)"
    )]
    fn poll(&self, py: Python<'_>, max_events: IntArg, timeout_ms: IntArg) -> PyResult<Batch> {
        let max_events: usize = max_events.get(py, "max_events", 1, u32::MAX)?;
        // Negative: no deadline.
        let timeout_ms: i64 = timeout_ms.get(py, "timeout_ms", i64::MIN, i64::MAX)?;
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
    /// A record the kernel wrote before the call is counted as emitted: the
    /// reader thread first empties the ring (waiting for it, up to a second,
    /// rather than for its poll timer, which a busy machine may delay).
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let inner = &self.inner;
        if !inner.closed.load(Ordering::SeqCst) {
            let sync = Arc::clone(inner);
            py.detach(move || sync.reader.sync(STATS_SYNC));
        }
        let stats = with_probe(py, inner, |p| {
            ProbeStats::collect(p, &inner.reader.counters, &inner.delivered)
        })?;
        stats_to_py(py, &stats)
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

    /// Closes the probe; exceptions propagate.
    fn __exit__(
        &self,
        py: Python<'_>,
        exc_type: Option<&Bound<'_, PyAny>>,
        exc_value: Option<&Bound<'_, PyAny>>,
        traceback: Option<&Bound<'_, PyAny>>,
    ) -> bool {
        let _ = (exc_type, exc_value, traceback);
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
        self.inner.delivered.count(&b, start..end);
        if end < b.len()
            && let Ok(mut l) = self.inner.leftover.lock()
        {
            *l = Some((Arc::clone(&b), end));
        }
        Batch::new(b, start, end)
    }
}
