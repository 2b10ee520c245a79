//! Errors users see: one Python exception per `syshub_bpf::Error` variant,
//! and range-checked integer arguments (ValueError, never OverflowError).

use pyo3::exceptions::{PyPermissionError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyInt;

use syshub_bpf::{Error, limits};

fn errors_class<'py>(py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
    py.import("syshub.errors")?.getattr(name)
}

/// One `From<Error>` for every variant: the exception users see.
pub(crate) fn to_py(py: Python<'_>, e: Error) -> PyErr {
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

pub(crate) fn map_err<T>(py: Python<'_>, r: Result<T, Error>) -> PyResult<T> {
    r.map_err(|e| to_py(py, e))
}

/// An integer argument as Python passed it: its value, or its decimal text
/// when it fits no machine integer. [`IntArg::get`] range-checks it, so a bad
/// value is a ValueError naming the argument, never an OverflowError.
#[derive(Clone, Debug)]
pub(crate) struct IntArg(Result<i128, String>);

impl From<i64> for IntArg {
    fn from(v: i64) -> Self {
        Self(Ok(v.into()))
    }
}

impl<'py> FromPyObject<'_, 'py> for IntArg {
    type Error = PyErr;

    fn extract(obj: Borrowed<'_, 'py, PyAny>) -> PyResult<Self> {
        match obj.extract::<i128>() {
            Ok(v) => Ok(Self(Ok(v))),
            Err(e) if obj.is_instance_of::<PyInt>() => Ok(Self(Err(obj
                .str()
                .map_or_else(|_| e.to_string(), |s| s.to_string())))),
            Err(e) => Err(e),
        }
    }
}

impl IntArg {
    /// The value as a `T` when it lies in `min..=max`; else a ValueError
    /// "`name` must be in min..=max, got value".
    pub(crate) fn get<T: TryFrom<i128>>(
        &self,
        py: Python<'_>,
        name: &str,
        min: impl Into<i128>,
        max: impl Into<i128>,
    ) -> PyResult<T> {
        let (min, max) = (min.into(), max.into());
        match &self.0 {
            Ok(v) => map_err(py, limits::in_range(name, *v, min, max)),
            Err(shown) => Err(to_py(py, limits::out_of_range(name, shown, min, max))),
        }
    }
}
