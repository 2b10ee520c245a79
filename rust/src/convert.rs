//! Decoded argument values -> JSON-ready Python objects (stable shape per type).

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString};

use syshub_bpf::decode::{self, SockAddr, Value};

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

/// Decoded arguments as a dict of name -> value, in argument order.
pub(crate) fn args_to_py<'py>(
    py: Python<'py>,
    args: &[decode::Arg],
) -> PyResult<Bound<'py, PyDict>> {
    let out = PyDict::new(py);
    for a in args {
        out.set_item(a.name, value_to_py(py, &a.value)?)?;
    }
    Ok(out)
}

pub(crate) fn truncated_names(args: &[decode::Arg]) -> Vec<String> {
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
