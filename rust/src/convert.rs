//! Rust documents -> Python objects: a [`Sink`] of the one event document
//! description (`syshub_bpf::encode::doc`) that builds dicts and lists, and
//! the reverse for the documents Python hands in (a container's `to_dict()`).

use pyo3::IntoPyObjectExt;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyList, PyMapping, PyString};

use syshub_bpf::encode::{Doc, Sink};

enum Frame<'py> {
    Map(Bound<'py, PyDict>),
    List(Bound<'py, PyList>),
}

/// Builds Python objects from a document description: dicts (in key
/// order), lists, str, int, bool and None.
pub(crate) struct PySink<'py> {
    py: Python<'py>,
    stack: Vec<Frame<'py>>,
    key: Option<Bound<'py, PyString>>,
    root: Option<Bound<'py, PyAny>>,
    err: Option<PyErr>,
}

impl<'py> PySink<'py> {
    pub(crate) fn new(py: Python<'py>) -> Self {
        Self {
            py,
            stack: Vec::new(),
            key: None,
            root: None,
            err: None,
        }
    }

    /// The document built, which must be a dict.
    pub(crate) fn into_dict(self) -> PyResult<Bound<'py, PyDict>> {
        if let Some(e) = self.err {
            return Err(e);
        }
        let root = self.root.unwrap_or_else(|| PyDict::new(self.py).into_any());
        Ok(root.cast_into::<PyDict>()?)
    }

    fn put(&mut self, v: Bound<'py, PyAny>) {
        let r = match self.stack.last() {
            Some(Frame::Map(d)) => match self.key.take() {
                Some(k) => d.set_item(k, &v),
                None => Ok(()),
            },
            Some(Frame::List(l)) => l.append(&v),
            None => {
                self.root = Some(v);
                Ok(())
            }
        };
        if let Err(e) = r {
            self.err.get_or_insert(e);
        }
    }

    fn put_result<T: IntoPyObject<'py>>(&mut self, v: T) {
        match v.into_bound_py_any(self.py) {
            Ok(v) => self.put(v),
            Err(e) => {
                self.err.get_or_insert(e);
            }
        }
    }
}

impl Sink for PySink<'_> {
    fn begin_map(&mut self) {
        let d = PyDict::new(self.py);
        self.put(d.clone().into_any());
        self.stack.push(Frame::Map(d));
    }
    fn end_map(&mut self) {
        self.stack.pop();
    }
    fn begin_list(&mut self) {
        let l = PyList::empty(self.py);
        self.put(l.clone().into_any());
        self.stack.push(Frame::List(l));
    }
    fn end_list(&mut self) {
        self.stack.pop();
    }
    fn key(&mut self, k: &str) {
        self.key = Some(PyString::new(self.py, k));
    }
    fn null(&mut self) {
        self.put(self.py.None().into_bound(self.py));
    }
    fn bool(&mut self, v: bool) {
        self.put(PyBool::new(self.py, v).to_owned().into_any());
    }
    fn int(&mut self, v: i64) {
        self.put_result(v);
    }
    fn uint(&mut self, v: u64) {
        self.put_result(v);
    }
    fn str(&mut self, s: &str) {
        self.put(PyString::new(self.py, s).into_any());
    }
}

/// A JSON-like Python value (None, bool, int, str, list/tuple, mapping with
/// str keys) as a [`Doc`]; TypeError naming what else it met.
pub(crate) fn py_to_doc(v: &Bound<'_, PyAny>) -> PyResult<Doc> {
    if v.is_none() {
        return Ok(Doc::Null);
    }
    if let Ok(b) = v.cast::<PyBool>() {
        return Ok(Doc::Bool(b.is_true()));
    }
    if let Ok(s) = v.cast::<PyString>() {
        return Ok(Doc::Str(s.to_str()?.to_owned()));
    }
    if let Ok(i) = v.extract::<i64>() {
        return Ok(Doc::Int(i));
    }
    if let Ok(u) = v.extract::<u64>() {
        return Ok(Doc::Uint(u));
    }
    if let Ok(m) = v.cast::<PyMapping>() {
        let mut entries = Vec::new();
        for item in m.items()?.iter() {
            let (k, val): (Bound<'_, PyAny>, Bound<'_, PyAny>) = item.extract()?;
            let k = k
                .cast::<PyString>()
                .map_err(|_| PyTypeError::new_err("a container document's keys must be str"))?;
            entries.push((k.to_str()?.to_owned(), py_to_doc(&val)?));
        }
        return Ok(Doc::Map(entries));
    }
    if v.is_instance_of::<PyList>() || v.is_instance_of::<pyo3::types::PyTuple>() {
        return Ok(Doc::List(
            v.try_iter()?
                .map(|x| py_to_doc(&x?))
                .collect::<PyResult<_>>()?,
        ));
    }
    Err(PyTypeError::new_err(format!(
        "a container document holds None, bool, int, str, lists and str-keyed mappings, \
         not {}",
        v.get_type().name()?
    )))
}
