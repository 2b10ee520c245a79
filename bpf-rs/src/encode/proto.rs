//! The protobuf `syshub.v1.EventBatch` message (`proto/syshub/v1/event.proto`)
//! written straight from records.
//!
//! Hand-encoded protobuf wire format, on purpose: this runs for every event
//! the node agent streams (the measured hot path of `benches --scenario
//! output`). Writing the wire bytes from the decoded record costs no
//! intermediate message object per event and no allocation beyond the output
//! buffer, and keeps the crate free of a code generator. The field numbers
//! below are the contract with event.proto; the unit tests parse the bytes
//! with the generated Python classes (tests/unit/test_encode.py).

use std::collections::HashMap;

use super::doc::{Doc, arg_truncated, errno_text, result_of};
use super::{Containers, decoded};
use crate::abi::SyscallEvent;
use crate::decode::{Arg, SockAddr, Value};
use crate::syscalls::SyscallTable;

const VARINT: u32 = 0;
const LEN: u32 = 2;

pub(super) fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(u8::try_from(v & 0x7f).unwrap_or(0) | 0x80);
        v >>= 7;
    }
    out.push(u8::try_from(v).unwrap_or(0));
}

pub(super) fn key(out: &mut Vec<u8>, field: u32, wire: u32) {
    varint(out, u64::from((field << 3) | wire));
}

/// A proto3 scalar with implicit presence: omitted when zero.
pub(super) fn uint(out: &mut Vec<u8>, field: u32, v: u64) {
    if v != 0 {
        key(out, field, VARINT);
        varint(out, v);
    }
}

/// A field with explicit presence (`optional`, a oneof member): always written.
fn uint_set(out: &mut Vec<u8>, field: u32, v: u64) {
    key(out, field, VARINT);
    varint(out, v);
}

pub(super) fn int64_set(out: &mut Vec<u8>, field: u32, v: i64) {
    uint_set(out, field, v.cast_unsigned());
}

fn boolean(out: &mut Vec<u8>, field: u32, v: bool) {
    uint(out, field, u64::from(v));
}

pub(super) fn bytes_set(out: &mut Vec<u8>, field: u32, b: &[u8]) {
    key(out, field, LEN);
    varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

pub(super) fn string(out: &mut Vec<u8>, field: u32, s: &str) {
    if !s.is_empty() {
        bytes_set(out, field, s.as_bytes());
    }
}

/// Bytes from the traced process as a proto `string` (valid UTF-8 required):
/// invalid sequences become U+FFFD, as in the JSON document.
fn lossy_set(out: &mut Vec<u8>, field: u32, b: &[u8]) {
    bytes_set(out, field, String::from_utf8_lossy(b).as_bytes());
}

/// A length-delimited sub-message written in place: the body goes after a
/// one-byte length, which grows (moving the body) only past 127 bytes.
pub(super) fn message(out: &mut Vec<u8>, field: u32, body: impl FnOnce(&mut Vec<u8>)) {
    key(out, field, LEN);
    let at = out.len();
    out.push(0);
    body(out);
    let len = out.len() - at - 1;
    let mut prefix = Vec::with_capacity(4);
    varint(&mut prefix, len as u64);
    out[at] = prefix[0];
    if prefix.len() > 1 {
        out.splice(at + 1..at + 1, prefix[1..].iter().copied());
    }
}

fn syscall_msg(out: &mut Vec<u8>, nr: u32) {
    let def = SyscallTable::get().by_nr(nr);
    message(out, 1, |m| {
        uint(m, 1, u64::from(nr));
        if let Some(d) = def {
            string(m, 2, &format!("sys_{}", d.name));
            string(m, 3, &d.class);
            string(m, 4, &d.group);
        }
    });
}

fn sockaddr_msg(out: &mut Vec<u8>, sa: &SockAddr) {
    match sa {
        SockAddr::Inet { addr, port } => {
            string(out, 2, &addr.to_string());
            uint(out, 3, u64::from(*port));
        }
        SockAddr::Inet6 {
            addr,
            port,
            flowinfo,
            scope_id,
        } => {
            string(out, 2, &addr.to_string());
            uint(out, 3, u64::from(*port));
            uint(out, 4, u64::from(*flowinfo));
            uint(out, 5, u64::from(*scope_id));
        }
        SockAddr::Unix {
            path,
            abstract_name,
        } => {
            string(out, 6, path);
            boolean(out, 7, *abstract_name);
        }
        SockAddr::Netlink { pid, groups } => {
            uint(out, 8, u64::from(*pid));
            uint(out, 9, u64::from(*groups));
        }
        SockAddr::Other { family, bytes } => {
            uint(out, 10, u64::from(*family));
            if !bytes.is_empty() {
                bytes_set(out, 11, bytes);
            }
        }
    }
    string(out, 1, &sa.family_name());
}

/// The oneof member of an `Arg` for a value.
fn value_field(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Int(x) => uint_set(out, 3, ((x << 1) ^ (x >> 63)).cast_unsigned()),
        Value::Uint(x) | Value::Hex(x) | Value::Ptr(x) => uint_set(out, 4, *x),
        Value::Octal(x) => bytes_set(out, 5, format!("0{x:o}").as_bytes()),
        Value::Sym { text, .. } => bytes_set(out, 5, text.as_bytes()),
        Value::Str { bytes, .. } => lossy_set(out, 6, bytes),
        Value::StrList { items, .. } => message(out, 7, |m| {
            for i in items {
                lossy_set(m, 1, i);
            }
        }),
        Value::Bytes {
            data,
            orig_len,
            truncated,
            fault,
        } => message(out, 8, |m| {
            if !data.is_empty() {
                bytes_set(m, 1, data);
            }
            if let Some(n) = orig_len {
                uint_set(m, 2, *n);
            }
            boolean(m, 3, *truncated);
            boolean(m, 4, *fault);
        }),
        Value::Sockaddr(sa) => message(out, 9, |m| sockaddr_msg(m, sa)),
        Value::Struct(fields) => message(out, 10, |m| {
            for (name, v) in fields {
                message(m, 1, |a| {
                    string(a, 1, name);
                    value_field(a, v);
                });
            }
        }),
        Value::List { items, truncated } => message(out, 11, |m| {
            for v in items {
                message(m, 1, |a| value_field(a, v));
            }
            boolean(m, 2, *truncated);
        }),
    }
}

fn arg_msg(out: &mut Vec<u8>, a: &Arg) {
    message(out, 21, |m| {
        string(m, 1, a.name);
        uint(m, 2, a.raw);
        value_field(m, &a.value);
    });
}

/// The `Container` field (23) of an event from the topology's document
/// (`Container.to_dict()` keys; others are ignored).
fn container_field(d: &Doc) -> Vec<u8> {
    let mut out = Vec::new();
    if matches!(d, Doc::Map(_)) {
        message(&mut out, 23, |m| container_body(m, d));
    }
    out
}

/// The fields of a `Container` message from the topology's document.
fn container_body(m: &mut Vec<u8>, d: &Doc) {
    let Doc::Map(entries) = d else {
        return;
    };
    for (k, v) in entries {
        let field = match k.as_str() {
            "id" => 1,
            "pod" => 2,
            "sandbox-id" => 3,
            "name" => 4,
            "image" => 5,
            "namespace" => 6,
            "labels" => 7,
            "pid" => 8,
            "pid-namespace" => 9,
            _ => continue,
        };
        match v {
            Doc::Str(s) => string(m, field, s),
            Doc::Int(n) => uint(m, field, n.cast_unsigned()),
            Doc::Uint(n) => uint(m, field, *n),
            Doc::Map(labels) if field == 7 => {
                for (lk, lv) in labels {
                    if let Doc::Str(lv) = lv {
                        message(m, 7, |e| {
                            string(e, 1, lk);
                            string(e, 2, lv);
                        });
                    }
                }
            }
            _ => {}
        }
    }
}

fn event_body(out: &mut Vec<u8>, hdr: &SyscallEvent, args: &[Arg], container: &[u8]) {
    syscall_msg(out, hdr.nr);
    for (field, v) in [
        (2, hdr.tgid),
        (3, hdr.tid),
        (4, hdr.ns_tgid),
        (5, hdr.ns_tid),
        (6, hdr.uid),
        (7, hdr.gid),
    ] {
        uint(out, field, u64::from(v));
    }
    let end = hdr
        .comm
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(hdr.comm.len());
    if end > 0 {
        lossy_set(out, 8, &hdr.comm[..end]);
    }
    uint(out, 9, u64::from(hdr.sid));
    let (returned, ret, errno) = result_of(hdr);
    if returned {
        string(out, 10, &errno.map_or("OK".into(), errno_text));
    }
    if let Some(e) = errno {
        int64_set(out, 11, e);
    }
    if let Some(r) = ret {
        int64_set(out, 12, r);
    }
    boolean(out, 13, returned);
    for (field, v) in [
        (14, u64::from(hdr.pid_ns)),
        (15, u64::from(hdr.uts_ns)),
        (16, u64::from(hdr.mnt_ns)),
        (17, hdr.cgroup_id),
        (18, hdr.enter_ns),
        (19, hdr.exit_ns),
        (20, hdr.seq),
    ] {
        uint(out, field, v);
    }
    for a in args {
        arg_msg(out, a);
    }
    for a in args.iter().filter(|a| arg_truncated(a)) {
        string(out, 22, a.name);
    }
    out.extend_from_slice(container);
}

/// Appends an `EventBatch` message holding one `Event` per record to `out`
/// (its `node` and `realtime_offset_ns` fields when set). Two such messages
/// concatenated are one `EventBatch` with both event lists.
pub fn encode_proto<'r>(
    records: impl Iterator<Item = &'r [u8]>,
    containers: &Containers,
    node: &str,
    realtime_offset_ns: i64,
    out: &mut Vec<u8>,
) {
    // Each namespace's container is encoded once per call, not per event.
    let mut cached: HashMap<u32, Vec<u8>> = HashMap::new();
    for rec in records {
        let d = decoded(rec);
        let container = cached.entry(d.hdr.pid_ns).or_insert_with(|| {
            containers
                .get(&d.hdr.pid_ns)
                .and_then(Option::as_ref)
                .map_or_else(Vec::new, container_field)
        });
        message(out, 1, |m| event_body(m, &d.hdr, &d.args, container));
    }
    string(out, 2, node);
    if realtime_offset_ns != 0 {
        int64_set(out, 3, realtime_offset_ns);
    }
}

/// `CLOCK_REALTIME - CLOCK_MONOTONIC` now, in ns (0 if a clock fails).
#[must_use]
pub fn realtime_offset_ns() -> i64 {
    let read = |clock| {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid timespec owned by this frame.
        let rc = unsafe { libc::clock_gettime(clock, &raw mut ts) };
        (rc == 0).then(|| ts.tv_sec * 1_000_000_000 + ts.tv_nsec)
    };
    match (read(libc::CLOCK_REALTIME), read(libc::CLOCK_MONOTONIC)) {
        (Some(r), Some(m)) => r - m,
        _ => 0,
    }
}
