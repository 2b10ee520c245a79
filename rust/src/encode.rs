//! Batches -> JSON lines, text lines or a protobuf `EventBatch`, in Rust
//! with the GIL released: no Python object per event.

use std::collections::HashMap;
use std::ops::Range;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use syshub_bpf::encode::{self, Containers};
use syshub_bpf::reader::Batch as CoreBatch;

use crate::batch::Batch;
use crate::convert::py_to_doc;

/// Absolute record ranges of the reader batch for `ranges` (relative to the
/// Python batch; None: all of it); ValueError for a range outside it.
fn absolute(batch: &Batch, ranges: Option<Vec<(usize, usize)>>) -> PyResult<Vec<Range<usize>>> {
    let (_, span) = batch.core();
    let Some(ranges) = ranges else {
        return Ok(vec![span]);
    };
    let len = span.len();
    ranges
        .into_iter()
        .map(|(s, e)| {
            if s > e || e > len {
                return Err(PyValueError::new_err(format!(
                    "range ({s}, {e}) is not within the batch of {len} events"
                )));
            }
            Ok(span.start + s..span.start + e)
        })
        .collect()
}

fn containers(map: Option<HashMap<u32, Option<Bound<'_, PyAny>>>>) -> PyResult<Containers> {
    map.unwrap_or_default()
        .into_iter()
        .map(|(ns, c)| Ok((ns, c.map(|c| py_to_doc(&c)).transpose()?)))
        .collect()
}

/// The records of `ranges` (an exact-size list: encoders size their output
/// from it).
fn records<'a>(b: &'a CoreBatch, ranges: &[Range<usize>]) -> Vec<&'a [u8]> {
    ranges
        .iter()
        .flat_map(Clone::clone)
        .map(|i| b.record(i))
        .collect()
}

/// One JSON line per event, byte-identical to
/// `json.dumps(TraceEvent.to_dict(), separators=(",", ":"))`.
#[pyfunction]
#[pyo3(signature = (batch, ranges=None, containers=None, *, node=None))]
pub(crate) fn encode_json<'py>(
    py: Python<'py>,
    batch: PyRef<'_, Batch>,
    ranges: Option<Vec<(usize, usize)>>,
    containers: Option<HashMap<u32, Option<Bound<'py, PyAny>>>>,
    node: Option<String>,
) -> PyResult<Bound<'py, PyBytes>> {
    let ranges = absolute(&batch, ranges)?;
    let containers = self::containers(containers)?;
    let core = std::sync::Arc::clone(batch.core().0);
    let out = py.detach(|| {
        let mut out = Vec::new();
        let recs = records(&core, &ranges);
        encode::encode_json(recs.into_iter(), &containers, node.as_deref(), &mut out);
        out
    });
    Ok(PyBytes::new(py, &out))
}

/// One strace-style line per event (as `to_text()`), each ending in "\n".
#[pyfunction]
#[pyo3(signature = (batch, ranges=None))]
pub(crate) fn encode_text<'py>(
    py: Python<'py>,
    batch: PyRef<'_, Batch>,
    ranges: Option<Vec<(usize, usize)>>,
) -> PyResult<Bound<'py, PyBytes>> {
    let ranges = absolute(&batch, ranges)?;
    let core = std::sync::Arc::clone(batch.core().0);
    let out = py.detach(|| {
        let recs = records(&core, &ranges);
        let mut out = Vec::with_capacity(128 * recs.len());
        encode::encode_text(recs.into_iter(), &mut out);
        out
    });
    Ok(PyBytes::new(py, &out))
}

/// A serialized `syshub.v1.EventBatch` holding the events.
#[pyfunction]
#[pyo3(signature = (batch, ranges=None, containers=None, *, node=""))]
pub(crate) fn encode_proto<'py>(
    py: Python<'py>,
    batch: PyRef<'_, Batch>,
    ranges: Option<Vec<(usize, usize)>>,
    containers: Option<HashMap<u32, Option<Bound<'py, PyAny>>>>,
    node: &str,
) -> PyResult<Bound<'py, PyBytes>> {
    let ranges = absolute(&batch, ranges)?;
    let containers = self::containers(containers)?;
    let core = std::sync::Arc::clone(batch.core().0);
    let node = node.to_owned();
    let out = py.detach(|| {
        let recs = records(&core, &ranges);
        let mut out = Vec::with_capacity(256 * recs.len());
        let offset = encode::proto::realtime_offset_ns();
        encode::encode_proto(recs.into_iter(), &containers, &node, offset, &mut out);
        out
    });
    Ok(PyBytes::new(py, &out))
}

/// Adds the encoders to the module.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(encode_json, m)?)?;
    m.add_function(wrap_pyfunction!(encode_text, m)?)?;
    m.add_function(wrap_pyfunction!(encode_proto, m)?)
}
