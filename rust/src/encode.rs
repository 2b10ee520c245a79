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
        encode::encode_json(&recs, &containers, node.as_deref(), &mut out);
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
        encode::encode_text(&recs, &mut out);
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

/// A chunk as the Hub hands it out: a batch, its selected ranges (None: all)
/// and the container document of each pid namespace.
type Chunk<'py> = (
    PyRef<'py, Batch>,
    Option<Vec<(usize, usize)>>,
    Option<HashMap<u32, Option<Bound<'py, PyAny>>>>,
);

/// The output formats of [`encode_chunks`] and [`write_chunks`].
#[derive(Clone, Copy)]
enum Format {
    Json,
    Text,
    Proto,
    Records,
}

impl Format {
    fn parse(name: &str) -> PyResult<Self> {
        Ok(match name {
            "json" => Self::Json,
            "text" => Self::Text,
            "proto" => Self::Proto,
            "records" => Self::Records,
            _ => {
                return Err(PyValueError::new_err(format!(
                    "format must be json, text, proto or records, got {name:?}"
                )));
            }
        })
    }
}

/// The chunks' batches (kept alive while the GIL is released), their absolute
/// ranges, and one container map for all of them (keyed by pid namespace, so
/// maps of chunks taken at the same time agree).
type Prepared = (
    Vec<(std::sync::Arc<CoreBatch>, Vec<Range<usize>>)>,
    Containers,
);

fn prepare(chunks: Vec<Chunk<'_>>, fmt: Format) -> PyResult<Prepared> {
    let mut all = Containers::new();
    let mut parts = Vec::with_capacity(chunks.len());
    for (batch, ranges, map) in chunks {
        let ranges = absolute(&batch, ranges)?;
        if !matches!(fmt, Format::Text) {
            all.extend(containers(map)?);
        }
        parts.push((std::sync::Arc::clone(batch.core().0), ranges));
    }
    Ok((parts, all))
}

/// Every chunk's records, in order.
fn all_records(prepared: &Prepared) -> Vec<&[u8]> {
    prepared
        .0
        .iter()
        .flat_map(|(b, ranges)| records(b, ranges))
        .collect()
}

/// Every chunk's records with their padding (the packed form's input),
/// found without reading the records.
fn all_padded(prepared: &Prepared) -> Vec<&[u8]> {
    let n = prepared
        .0
        .iter()
        .flat_map(|(_, r)| r)
        .map(ExactSizeIterator::len);
    let mut out = Vec::with_capacity(n.sum());
    for (b, ranges) in &prepared.0 {
        for r in ranges {
            out.extend(r.clone().map(|i| b.padded_record(i)));
        }
    }
    out
}

/// Encodes every chunk's events as one output of `fmt`, appended to `out`.
fn encode_all(fmt: Format, prepared: &Prepared, node: Option<&str>, out: &mut Vec<u8>) {
    let recs = match fmt {
        Format::Records => all_padded(prepared),
        _ => all_records(prepared),
    };
    encode_some(fmt, &recs, &prepared.1, node, out);
}

/// Encodes `recs` as one output of `fmt`, appended to `out`.
fn encode_some(
    fmt: Format,
    recs: &[&[u8]],
    containers: &Containers,
    node: Option<&str>,
    out: &mut Vec<u8>,
) {
    match fmt {
        Format::Json => encode::encode_json(recs, containers, node, out),
        Format::Text => encode::encode_text(recs, out),
        Format::Proto => {
            let offset = encode::proto::realtime_offset_ns();
            let node = node.unwrap_or("");
            encode::encode_proto(recs.iter().copied(), containers, node, offset, out);
        }
        Format::Records => {
            let offset = encode::proto::realtime_offset_ns();
            encode::encode_records(recs, containers, node.unwrap_or(""), offset, out);
        }
    }
}

fn push_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(u8::try_from(v & 0x7f).unwrap_or(0) | 0x80);
        v >>= 7;
    }
    out.push(u8::try_from(v).unwrap_or(0));
}

/// Several chunks encoded as one output (`format`: json, text, proto or
/// records), returned as `prefix` + (when `field` > 0) the output as
/// length-delimited field `field` of a message: a whole serialized message
/// (e.g. a WatchResponse whose other fields are in `prefix`) in one copy.
#[pyfunction]
#[pyo3(signature = (format, chunks, *, node=None, field=0, prefix=None))]
pub(crate) fn encode_chunks<'py>(
    py: Python<'py>,
    format: &str,
    chunks: Vec<Chunk<'py>>,
    node: Option<String>,
    field: u32,
    prefix: Option<&[u8]>,
) -> PyResult<Bound<'py, PyBytes>> {
    let fmt = Format::parse(format)?;
    let prepared = prepare(chunks, fmt)?;
    let prefix = prefix.unwrap_or_default();
    let out = py.detach(|| {
        // Room for the field's key and length in front: the body is encoded
        // in place and the prefix (the message's other fields) goes after
        // it (protobuf fields may come in any order), so the message is
        // never moved; one copy into the bytes object.
        let mut out = vec![0u8; FRAME_ROOM];
        encode_all(fmt, &prepared, node.as_deref(), &mut out);
        let start = if field > 0 {
            let mut head = Vec::with_capacity(FRAME_ROOM);
            push_varint(&mut head, u64::from((field << 3) | 2));
            push_varint(&mut head, (out.len() - FRAME_ROOM) as u64);
            let start = FRAME_ROOM - head.len();
            out[start..FRAME_ROOM].copy_from_slice(&head);
            start
        } else {
            FRAME_ROOM
        };
        (out, start)
    });
    let (mut out, start) = out;
    if field > 0 {
        out.extend_from_slice(prefix);
        Ok(PyBytes::new(py, &out[start..]))
    } else {
        let body = out.split_off(start);
        PyBytes::new_with(py, prefix.len() + body.len(), |buf| {
            buf[..prefix.len()].copy_from_slice(prefix);
            buf[prefix.len()..].copy_from_slice(&body);
            Ok(())
        })
    }
}

/// A field key (up to 5 bytes for field numbers below 2^29) and a length
/// (up to 10 bytes).
const FRAME_ROOM: usize = 15;

thread_local! {
    /// The output buffer of [`write_chunks`], kept between calls (no fresh
    /// pages to fault in for every batch).
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Buffers above this are not kept for the next call.
const SCRATCH_KEEP: usize = 64 << 20;

/// Events encoded per write(2) of [`write_chunks`]: ~256 KiB of JSON lines
/// for short calls, within a core's L2 cache.
const WRITE_PIECE: usize = 512;

/// Several chunks encoded (json or text) and written to the file descriptor
/// `fd` with write(2), the GIL released, no Python bytes object in between;
/// returns the bytes written. OSError as the write raises it.
#[pyfunction]
#[pyo3(signature = (fd, format, chunks, *, node=None))]
pub(crate) fn write_chunks(
    py: Python<'_>,
    fd: i32,
    format: &str,
    chunks: Vec<Chunk<'_>>,
    node: Option<String>,
) -> PyResult<usize> {
    use std::io::Write as _;
    use std::os::fd::FromRawFd as _;

    let fmt = Format::parse(format)?;
    let prepared = prepare(chunks, fmt)?;
    py.detach(|| {
        SCRATCH.with_borrow_mut(|out| {
            // SAFETY: the caller owns `fd` and keeps it open for this call;
            // ManuallyDrop leaves it open afterwards.
            let mut f = std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(fd) });
            // Encoded and written a piece at a time: the kernel copies each
            // piece while it is still in the cache.
            let recs = all_records(&prepared);
            let mut written = 0;
            for piece in recs.chunks(WRITE_PIECE) {
                out.clear();
                encode_some(fmt, piece, &prepared.1, node.as_deref(), out);
                f.write_all(out)?;
                written += out.len();
            }
            if out.capacity() > SCRATCH_KEEP {
                *out = Vec::new();
            }
            Ok(written)
        })
    })
    .map_err(os_error)
}

/// An OSError as Python raises it for a failed write: `OSError(errno,
/// strerror)` (a subclass such as BrokenPipeError by errno), the message
/// without Rust's " (os error N)" suffix.
fn os_error(e: std::io::Error) -> PyErr {
    let Some(code) = e.raw_os_error() else {
        return PyErr::from(e);
    };
    let text = e.to_string();
    let msg = text
        .strip_suffix(&format!(" (os error {code})"))
        .unwrap_or(&text)
        .to_owned();
    pyo3::exceptions::PyOSError::new_err((code, msg))
}

/// The batch of a records-form EventBatch's `records` field (each record
/// validated); ValueError naming the first malformed one.
#[pyfunction]
pub(crate) fn decode_records(py: Python<'_>, data: &[u8]) -> PyResult<Batch> {
    let batch = py.detach(|| {
        let recs = encode::split_records(data)?;
        // The records keep their offsets in one copy of the data (each was
        // 8-byte aligned by the sender); each is validated as the reader
        // validates what it reads. Per-key counts are the agent's business.
        let mut offsets = Vec::with_capacity(recs.len());
        for (i, rec) in recs.iter().enumerate() {
            if let Err(e) = syshub_bpf::decode::validate(rec) {
                return Err(format!("record {i} is malformed: {e}"));
            }
            let at = rec.as_ptr() as usize - data.as_ptr() as usize;
            offsets.push(u32::try_from(at).map_err(|_| "records: more than 4 GiB".to_owned())?);
        }
        Ok(CoreBatch {
            data: data.to_vec(),
            offsets,
            per_key: Vec::new(),
            runs: Vec::new(),
        })
    });
    let b = batch.map_err(PyValueError::new_err)?;
    let n = b.len();
    Ok(Batch::new(std::sync::Arc::new(b), 0, n))
}

/// The batch of a records-form EventBatch's `packed_records` field (each
/// record unpacked and validated); ValueError naming the first malformed one.
#[pyfunction]
pub(crate) fn unpack_records(py: Python<'_>, data: &[u8]) -> PyResult<Batch> {
    let batch = py.detach(|| -> Result<CoreBatch, String> {
        let u = encode::unpack_checked(data, |i, rec| {
            syshub_bpf::decode::check(rec)
                .map(|_| ())
                .map_err(|e| format!("record {i} is malformed: {e}"))
        })?;
        let offsets = (u.offsets.iter().map(|&at| u32::try_from(at)))
            .collect::<Result<Vec<u32>, _>>()
            .map_err(|_| "records: more than 4 GiB".to_owned())?;
        Ok(CoreBatch {
            data: u.data,
            offsets,
            per_key: Vec::new(),
            runs: Vec::new(),
        })
    });
    let b = batch.map_err(PyValueError::new_err)?;
    let n = b.len();
    Ok(Batch::new(std::sync::Arc::new(b), 0, n))
}

/// Adds the encoders to the module.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(encode_json, m)?)?;
    m.add_function(wrap_pyfunction!(encode_text, m)?)?;
    m.add_function(wrap_pyfunction!(encode_proto, m)?)?;
    m.add_function(wrap_pyfunction!(encode_chunks, m)?)?;
    m.add_function(wrap_pyfunction!(write_chunks, m)?)?;
    m.add_function(wrap_pyfunction!(decode_records, m)?)?;
    m.add_function(wrap_pyfunction!(unpack_records, m)?)
}
