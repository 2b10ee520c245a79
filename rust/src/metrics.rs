//! The `MetricsProbe` pyclass: the kernel syscall metrics program (load,
//! attach, namespace set, snapshot, prune). Translation only.

use std::sync::Mutex;

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};

use syshub_bpf::Error;
use syshub_bpf::metrics::{
    BUCKETS, DEFAULT_MAX_ENTRIES, MAX_ENTRIES_MAX, MAX_ENTRIES_MIN, MetricKey, MetricValue,
    MetricsConfig, MetricsProbe as CoreMetrics, Mode,
};

use crate::errors::{IntArg, map_err, to_py};

/// Registers the metrics class and constants.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<MetricsProbe>()?;
    m.add_function(wrap_pyfunction!(ring_use, m)?)?;
    m.add("METRICS_BUCKETS", BUCKETS)?;
    m.add("METRICS_MAX_ENTRIES_DEFAULT", DEFAULT_MAX_ENTRIES)?;
    m.add("METRICS_MAX_ENTRIES_MAX", MAX_ENTRIES_MAX)?;
    Ok(())
}

/// Fill of every BPF ring buffer this process holds (the trace probe's
/// event ring): `[(map_id, pending_bytes, capacity_bytes)]`, empty without
/// a probe. Reads the ring's positions through a read-only mapping.
#[pyfunction]
fn ring_use(py: Python<'_>) -> PyResult<Vec<(u32, u64, u64)>> {
    let rings = py
        .detach(syshub_bpf::metrics::ring::ring_use)
        .map_err(|e| to_py(py, Error::io("reading the ring buffers' fill", e)))?;
    Ok(rings
        .into_iter()
        .map(|r| (r.map_id, r.pending, r.capacity))
        .collect())
}

/// The syscall metrics program. Thread-safe; `close` detaches and unloads.
#[pyclass(module = "syshub._native", frozen)]
pub(crate) struct MetricsProbe {
    inner: Mutex<Option<CoreMetrics>>,
    mode: Mode,
    max_entries: u32,
    latency: bool,
}

impl MetricsProbe {
    fn with<T>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut CoreMetrics) -> Result<T, Error>,
    ) -> PyResult<T> {
        let mut guard = self
            .inner
            .lock()
            .map_err(|_| to_py(py, Error::Bpf("metrics lock poisoned".into())))?;
        let m = guard.as_mut().ok_or_else(|| to_py(py, Error::Closed))?;
        map_err(py, f(m))
    }
}

/// A value's fields and its histogram as native-endian u64 bytes.
fn value_parts(v: &MetricValue, hist: &mut Vec<u8>) -> (u64, u64) {
    for b in &v.hist {
        hist.extend_from_slice(&b.to_ne_bytes());
    }
    (v.count, v.total_ns)
}

#[pymethods]
impl MetricsProbe {
    #[new]
    #[pyo3(
        signature = (mode = "node", *, max_entries = IntArg::from(16384), self_tgid = None, attach = true, latency = true),
        text_signature = "(mode='node', *, max_entries=16384, self_tgid=None, attach=True, latency=True)"
    )]
    fn new(
        py: Python<'_>,
        mode: &str,
        max_entries: IntArg,
        self_tgid: Option<IntArg>,
        attach: bool,
        latency: bool,
    ) -> PyResult<Self> {
        let cfg = MetricsConfig {
            mode: map_err(py, Mode::parse(mode))?,
            max_entries: max_entries.get(py, "max_entries", MAX_ENTRIES_MIN, MAX_ENTRIES_MAX)?,
            self_tgid: self_tgid
                .map(|t| t.get(py, "self_tgid", 0, u32::MAX))
                .transpose()?,
            latency,
        };
        let core = map_err(
            py,
            py.detach(|| {
                let mut m = CoreMetrics::open(&cfg)?;
                if attach {
                    m.attach()?;
                }
                Ok(m)
            }),
        )?;
        Ok(Self {
            latency: core.latency(),
            inner: Mutex::new(Some(core)),
            mode: cfg.mode,
            max_entries: cfg.max_entries,
        })
    }

    /// "node", "containers" or "bare".
    #[getter]
    fn mode(&self) -> &'static str {
        self.mode.name()
    }

    #[getter]
    fn max_entries(&self) -> u32 {
        self.max_entries
    }

    /// Whether calls are timed (total_ns and the histogram are filled).
    #[getter]
    fn latency(&self) -> bool {
        self.latency
    }

    /// Attach the raw sys_enter/sys_exit hooks (idempotent).
    fn attach(&self, py: Python<'_>) -> PyResult<()> {
        self.with(py, CoreMetrics::attach)
    }

    /// Detach both hooks (idempotent): metrics off cost nothing.
    fn detach(&self, py: Python<'_>) -> PyResult<()> {
        self.with(py, CoreMetrics::detach)
    }

    #[getter]
    fn attached(&self, py: Python<'_>) -> PyResult<bool> {
        self.with(py, |m| Ok(m.attached()))
    }

    /// Count pid namespace `pid_ns` (containers mode); False if it was.
    fn add_namespace(&self, py: Python<'_>, pid_ns: IntArg) -> PyResult<bool> {
        let ns: u32 = pid_ns.get(py, "pid_ns", 1, u32::MAX)?;
        self.with(py, |m| m.add_namespace(ns))
    }

    /// Stop counting `pid_ns`; False if it was not counted.
    fn remove_namespace(&self, py: Python<'_>, pid_ns: IntArg) -> PyResult<bool> {
        let ns: u32 = pid_ns.get(py, "pid_ns", 1, u32::MAX)?;
        self.with(py, |m| m.remove_namespace(ns))
    }

    /// The namespace set, sorted.
    fn namespaces(&self, py: Python<'_>) -> PyResult<Vec<u32>> {
        self.with(py, |m| Ok(m.namespaces()))
    }

    /// Delete every series of `pid_ns`; returns how many.
    fn prune_namespace(&self, py: Python<'_>, pid_ns: IntArg) -> PyResult<usize> {
        let ns: u32 = pid_ns.get(py, "pid_ns", 0, u32::MAX)?;
        self.with(py, |m| m.prune_namespace(ns))
    }

    /// Delete the series of `keys` ((pid_ns, nr, errno) each); returns how
    /// many existed.
    fn remove_series(&self, py: Python<'_>, keys: Vec<(u32, u16, u16)>) -> PyResult<usize> {
        let keys: Vec<MetricKey> = keys
            .into_iter()
            .map(|(pid_ns, nr, err)| MetricKey { pid_ns, nr, err })
            .collect();
        self.with(py, |m| m.remove_series(&keys))
    }

    /// One read of the maps, CPUs summed: `(rows, hist, overflow, nomem,
    /// untimed)`.
    /// rows: list of (pid_ns, nr, errno, count, total_ns); hist: bytes of
    /// len(rows) * METRICS_BUCKETS native u64 (row-major); overflow:
    /// (count, total_ns, bytes of METRICS_BUCKETS u64); nomem: entries not
    /// timed (no task slot); untimed: calls counted without a duration.
    fn snapshot<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let snap = {
            let mut guard = self
                .inner
                .lock()
                .map_err(|_| to_py(py, Error::Bpf("metrics lock poisoned".into())))?;
            let m = guard.as_mut().ok_or_else(|| to_py(py, Error::Closed))?;
            map_err(py, py.detach(|| m.snapshot()))?
        };
        let mut hist = Vec::with_capacity(snap.rows.len() * BUCKETS * 8);
        let rows = PyList::empty(py);
        for (k, v) in &snap.rows {
            let (count, total) = value_parts(v, &mut hist);
            rows.append((k.pid_ns, k.nr, k.err, count, total))?;
        }
        let mut ohist = Vec::with_capacity(BUCKETS * 8);
        let (ocount, ototal) = value_parts(&snap.overflow, &mut ohist);
        let overflow = (ocount, ototal, PyBytes::new(py, &ohist));
        (
            rows,
            PyBytes::new(py, &hist),
            overflow,
            snap.nomem,
            snap.untimed,
        )
            .into_pyobject(py)
    }

    /// Detach and unload. Idempotent.
    fn close(&self, py: Python<'_>) {
        let taken = self.inner.lock().ok().and_then(|mut g| g.take());
        if let Some(m) = taken {
            py.detach(move || drop(m));
        }
    }

    #[getter]
    fn closed(&self) -> bool {
        self.inner.lock().map_or(true, |g| g.is_none())
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

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
