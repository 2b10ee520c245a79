//! Records -> decoded arguments: captured values where the probe captured
//! them, typed scalars otherwise.

use std::borrow::Cow;

use super::argtype::{ArgType, Captured, StructType};
use super::errno::errno_of;
use super::outcome::returned;
use super::record::{CaptureRef, DecodeError, captures, validate};
use super::scalar::render_scalar;
use super::sockaddr::SockAddr;
use super::structs::{decode_array, decode_struct, fcntl_arg};
use super::value::{Arg, Value};
use crate::abi::{self, SyscallEvent};
use crate::syscalls::{SyscallDef, SyscallTable};

fn known_len(v: u32) -> Option<u64> {
    (v != abi::LEN_UNKNOWN).then_some(u64::from(v))
}

fn bytes_value(c: &CaptureRef<'_>, truncated: bool, fault: bool) -> Value {
    Value::Bytes {
        data: c.data.to_vec(),
        orig_len: known_len(c.cap.orig_len),
        truncated,
        fault,
    }
}

fn capture_value(c: &CaptureRef<'_>, items: &[&CaptureRef<'_>], ty: ArgType) -> Value {
    let truncated = c.cap.flags & abi::CAPF_TRUNCATED != 0;
    let fault = c.cap.flags & abi::CAPF_FAULT != 0;
    match c.cap.kind {
        abi::CAP_STR => Value::Str {
            bytes: c.data.to_vec(),
            truncated,
            fault,
        },
        abi::CAP_STRV_END => Value::StrList {
            items: items.iter().map(|i| i.data.to_vec()).collect(),
            truncated: truncated || items.iter().any(|i| i.cap.flags & abi::CAPF_TRUNCATED != 0),
            fault,
        },
        abi::CAP_SOCKADDR => match SockAddr::parse(c.data) {
            Some(sa) if !fault => Value::Sockaddr(sa),
            _ => bytes_value(c, truncated, fault),
        },
        abi::CAP_STRUCT if !fault && matches!(ty, ArgType::Capture(Captured::ArrayOut(_))) => {
            match ty {
                ArgType::Capture(Captured::ArrayOut(t)) => decode_array(t, c.data, truncated),
                _ => None,
            }
            .unwrap_or_else(|| bytes_value(c, truncated, fault))
        }
        abi::CAP_STRUCT if !fault && !truncated => match ty {
            ArgType::Capture(cap) => cap
                .struct_type()
                .and_then(|t| decode_struct(t, c.data))
                .unwrap_or_else(|| bytes_value(c, truncated, fault)),
            ArgType::Scalar(_) => bytes_value(c, truncated, fault),
        },
        _ => bytes_value(c, truncated, fault),
    }
}

const RAW_NAMES: [&str; 6] = ["arg0", "arg1", "arg2", "arg3", "arg4", "arg5"];

/// Decodes every argument of a validated record: captured values where the
/// probe captured them, typed scalars otherwise, six raw values for calls
/// the table does not describe.
#[must_use]
pub fn decode_args(
    hdr: &SyscallEvent,
    caps: &[CaptureRef<'_>],
    def: Option<&'static SyscallDef>,
) -> Vec<Arg> {
    let Some(def) = def else {
        return (hdr.args.iter().zip(RAW_NAMES))
            .map(|(&raw, name)| Arg {
                name,
                raw,
                value: Value::Hex(raw),
            })
            .collect();
    };
    def.args
        .iter()
        .enumerate()
        .take(abi::NARGS)
        .map(|(i, a)| {
            let raw = hdr.args[i];
            let value = if let ArgType::Capture(Captured::StructIn(StructType::Flock)) = a.ty {
                fcntl_value(hdr, caps, i)
            } else {
                captured(caps, i, raw, a.ty).unwrap_or_else(|| match a.ty {
                    ArgType::Scalar(r) => render_scalar(r, raw, &hdr.args, i),
                    ArgType::Capture(_) => Value::Ptr(raw),
                })
            };
            Arg {
                name: a.name.as_str(),
                raw,
                value,
            }
        })
        .collect()
}

/// fcntl's argument `i` by its command, with the struct flock the probe
/// read if the argument pointed to one (only the lock commands pass one).
#[cold]
fn fcntl_value(hdr: &SyscallEvent, caps: &[CaptureRef<'_>], i: usize) -> Value {
    let flock = caps
        .iter()
        .find(|c| usize::from(c.cap.slot) == i && c.cap.flags & abi::CAPF_FAULT == 0)
        .map(|c| c.data);
    fcntl_arg(hdr.args[1], hdr.args[i], flock)
}

/// The value the probe captured for argument `i`, if it captured one.
#[inline(always)]
fn captured(caps: &[CaptureRef<'_>], i: usize, raw: u64, ty: ArgType) -> Option<Value> {
    if caps.is_empty() {
        return None;
    }
    let slot = u8::try_from(i).unwrap_or(0);
    // A string re-read at exit (not resident at entry) wins over the fault.
    let main = caps
        .iter()
        .filter(|c| c.cap.slot == slot && c.cap.kind != abi::CAP_STRV)
        .min_by_key(|c| c.cap.flags & abi::CAPF_FAULT);
    let c = main?;
    // A NULL pointer was not captured: show it as NULL, not as a fault.
    if raw == 0 && c.cap.flags & abi::CAPF_FAULT != 0 {
        return Some(Value::Ptr(0));
    }
    let items: Vec<&CaptureRef<'_>> = caps
        .iter()
        .filter(|x| x.cap.slot == slot && x.cap.kind == abi::CAP_STRV)
        .collect();
    Some(capture_value(c, &items, ty))
}

/// A fully decoded event (owned).
#[derive(Clone, Debug)]
pub struct Decoded {
    pub hdr: SyscallEvent,
    pub name: Cow<'static, str>,
    pub args: Vec<Arg>,
    /// The errno the program saw; `None` on success and when the call did
    /// not return.
    pub errno: Option<i64>,
}

/// Decodes a record end to end.
///
/// # Errors
/// [`DecodeError`] when the record is malformed.
pub fn decode(rec: &[u8]) -> Result<Decoded, DecodeError> {
    let hdr = validate(rec)?;
    let caps = if hdr.ncaptures == 0 {
        Vec::new()
    } else {
        captures(rec, &hdr)
    };
    let def = SyscallTable::get().by_nr(hdr.nr);
    Ok(Decoded {
        name: def.map_or_else(
            || format!("syscall_{}", hdr.nr).into(),
            |d| d.name.as_str().into(),
        ),
        args: decode_args(&hdr, &caps, def),
        errno: if returned(&hdr) {
            errno_of(hdr.ret, def.map(|d| d.ret))
        } else {
            None
        },
        hdr,
    })
}

impl Decoded {
    /// False when the call never returned to the program (see
    /// [`returned`]): then [`Decoded::ret`] and `errno` are `None`.
    #[must_use]
    pub fn returned(&self) -> bool {
        returned(&self.hdr)
    }

    /// The return value the program saw, `None` when it did not return.
    #[must_use]
    pub fn ret(&self) -> Option<i64> {
        self.returned().then_some(self.hdr.ret)
    }
}
