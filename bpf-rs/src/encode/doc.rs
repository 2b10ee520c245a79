//! The event document, described once: [`event_doc`] walks an event and
//! tells a [`Sink`] what to write. The Python dict (`Event.to_dict()`, in
//! `rust/src/convert.rs`) and the JSON lines encoder ([`super::json`]) are
//! both sinks of this one description, so they cannot diverge.

use std::fmt::Write as _;

use crate::abi::SyscallEvent;
use crate::decode::{self, Arg, SockAddr, Value};
use crate::syscalls::SyscallTable;

/// A small owned document (the `container` object, given by the caller).
#[derive(Clone, Debug, PartialEq)]
pub enum Doc {
    Null,
    Bool(bool),
    Int(i64),
    Uint(u64),
    Str(String),
    List(Vec<Doc>),
    Map(Vec<(String, Doc)>),
}

/// Receives a document as a stream of nodes. A map's entries are `key`
/// then one value (a scalar, or a map or list from begin to end).
pub trait Sink {
    fn begin_map(&mut self);
    fn end_map(&mut self);
    fn begin_list(&mut self);
    fn end_list(&mut self);
    fn key(&mut self, k: &str);
    /// A key of the description itself (a literal or an argument name from
    /// the syscall table: plain ASCII that needs no escaping).
    fn field(&mut self, k: &'static str) {
        self.key(k);
    }
    fn null(&mut self);
    fn bool(&mut self, v: bool);
    fn int(&mut self, v: i64);
    fn uint(&mut self, v: u64);
    fn str(&mut self, s: &str);
    /// Bytes from the traced process as text: invalid UTF-8 becomes U+FFFD.
    fn lossy(&mut self, b: &[u8]) {
        self.str(&String::from_utf8_lossy(b));
    }
    /// A whole given document.
    fn doc(&mut self, d: &Doc) {
        walk_doc(self, d);
    }
    /// The `syscall` object of number `nr` ([`syscall_doc`]; a sink may
    /// keep what it wrote for a number and copy it the next time).
    fn syscall(&mut self, nr: u32) {
        syscall_doc(self, nr);
    }
    /// The process fields of `hdr` ([`process_doc`]; the same for every call
    /// of a thread, so a sink may copy what it wrote for the last event).
    fn process(&mut self, hdr: &SyscallEvent) {
        process_doc(self, hdr);
    }
    /// The namespace fields of `hdr` ([`namespaces_doc`]; a sink may copy).
    fn namespaces(&mut self, hdr: &SyscallEvent) {
        namespaces_doc(self, hdr);
    }
    /// The fields from `syscall` to `cgroup_id` ([`head_doc`]: the same for
    /// every call of one thread to one syscall with one result, so a sink
    /// may copy what it wrote for the last event).
    fn head(&mut self, hdr: &SyscallEvent) {
        head_doc(self, hdr);
    }
}

/// Writes a given document node by node (the default of [`Sink::doc`]).
pub fn walk_doc<S: Sink + ?Sized>(s: &mut S, d: &Doc) {
    match d {
        Doc::Null => s.null(),
        Doc::Bool(v) => s.bool(*v),
        Doc::Int(v) => s.int(*v),
        Doc::Uint(v) => s.uint(*v),
        Doc::Str(v) => s.str(v),
        Doc::List(items) => {
            s.begin_list();
            for i in items {
                walk_doc(s, i);
            }
            s.end_list();
        }
        Doc::Map(entries) => {
            s.begin_map();
            for (k, v) in entries {
                s.key(k);
                walk_doc(s, v);
            }
            s.end_map();
        }
    }
}

/// Whether the call returned to the program, and then its return value and
/// errno (`(returned, ret, errno)`); a call that did not return (exit,
/// exit_group, killed in the call, a kernel-internal restart code) has
/// neither (`decode::returned`).
#[must_use]
pub fn result_of(hdr: &SyscallEvent) -> (bool, Option<i64>, Option<i64>) {
    let (ret, errno) = decode::result_of(hdr);
    (ret.is_some(), ret, errno)
}

/// `ENOENT`-style name of an errno (`E<n>` when the table has none).
#[must_use]
pub fn errno_text(e: i64) -> std::borrow::Cow<'static, str> {
    decode::errno_name(e).map_or_else(|| format!("E{e}").into(), Into::into)
}

/// What follows the event's own fields.
#[derive(Clone, Copy, Debug, Default)]
pub struct Extra<'a> {
    /// `None`: no `container` key (the native `Event.to_dict()`, whose
    /// caller adds it); `Some(None)`: `"container": null`.
    pub container: Option<Option<&'a Doc>>,
    /// `"node": NAME` as the last key (events merged from several agents).
    pub node: Option<&'a str>,
}

/// The `syscall` object: `{nr, name "sys_x", class, group}` (null when the
/// table does not know the number).
pub fn syscall_doc<S: Sink + ?Sized>(s: &mut S, nr: u32) {
    let def = SyscallTable::get().by_nr(nr);
    s.begin_map();
    s.field("nr");
    s.uint(u64::from(nr));
    s.field("name");
    match def {
        Some(d) => {
            let mut name = String::with_capacity(d.name.len() + 4);
            name.push_str("sys_");
            name.push_str(&d.name);
            s.str(&name);
        }
        None => s.null(),
    }
    for (k, v) in [
        ("class", def.map(|d| &d.class)),
        ("group", def.map(|d| &d.group)),
    ] {
        s.field(k);
        match v {
            Some(v) => s.str(v),
            None => s.null(),
        }
    }
    s.end_map();
}

/// The process fields of an event, `pid` to `session` (the default of
/// [`Sink::process`]).
pub fn process_doc<S: Sink + ?Sized>(s: &mut S, hdr: &SyscallEvent) {
    for (k, v) in [
        ("pid", hdr.tgid),
        ("tgid", hdr.tgid),
        ("tid", hdr.tid),
        ("container_pid", hdr.ns_tgid),
        ("ns_pid", hdr.ns_tgid),
        ("container_tid", hdr.ns_tid),
        ("uid", hdr.uid),
        ("gid", hdr.gid),
    ] {
        s.field(k);
        s.uint(u64::from(v));
    }
    s.field("comm");
    let end = hdr
        .comm
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(hdr.comm.len());
    s.lossy(&hdr.comm[..end]);
    s.field("session");
    s.uint(u64::from(hdr.sid));
}

/// The namespace fields of an event, `pid_ns` to `cgroup_id` (the default
/// of [`Sink::namespaces`]).
pub fn namespaces_doc<S: Sink + ?Sized>(s: &mut S, hdr: &SyscallEvent) {
    for (k, v) in [
        ("pid_ns", u64::from(hdr.pid_ns)),
        ("uts_ns", u64::from(hdr.uts_ns)),
        ("mount_ns", u64::from(hdr.mnt_ns)),
        ("cgroup_id", hdr.cgroup_id),
    ] {
        s.field(k);
        s.uint(v);
    }
}

/// The event document (swoll TraceEvent field names where they mean the
/// same; `pid` is the process id, `tid` the thread id, both host view).
pub fn event_doc<S: Sink + ?Sized>(s: &mut S, hdr: &SyscallEvent, args: &[Arg], extra: Extra<'_>) {
    s.begin_map();
    s.head(hdr);
    for (k, v) in [
        ("start", hdr.enter_ns),
        ("finish", hdr.exit_ns),
        ("seq", hdr.seq),
    ] {
        s.field(k);
        s.uint(v);
    }
    s.field("args");
    args_doc(s, args);
    if args.iter().any(arg_truncated) {
        s.field("truncated");
        s.begin_list();
        for a in args.iter().filter(|a| arg_truncated(a)) {
            s.str(a.name);
        }
        s.end_list();
    }
    if let Some(c) = extra.container {
        s.field("container");
        match c {
            Some(d) => s.doc(d),
            None => s.null(),
        }
    }
    if let Some(node) = extra.node {
        s.field("node");
        s.str(node);
    }
    s.end_map();
}

/// The event's fields from `syscall` to `cgroup_id` (the default of
/// [`Sink::head`]): what it called, who, the result and the namespaces.
pub fn head_doc<S: Sink + ?Sized>(s: &mut S, hdr: &SyscallEvent) {
    s.field("syscall");
    s.syscall(hdr.nr);
    s.process(hdr);
    let (returned, ret, errno) = result_of(hdr);
    s.field("error");
    match (returned, errno) {
        (false, _) => s.null(),
        (true, Some(e)) => s.str(&errno_text(e)),
        (true, None) => s.str("OK"),
    }
    s.field("errno");
    opt_int(s, errno);
    s.field("return");
    opt_int(s, ret);
    s.field("returned");
    s.bool(returned);
    s.namespaces(hdr);
}

fn opt_int<S: Sink + ?Sized>(s: &mut S, v: Option<i64>) {
    match v {
        Some(v) => s.int(v),
        None => s.null(),
    }
}

/// Whether an argument's capture was cut short.
#[must_use]
pub fn arg_truncated(a: &Arg) -> bool {
    match &a.value {
        Value::Str { truncated, .. }
        | Value::StrList { truncated, .. }
        | Value::Bytes { truncated, .. }
        | Value::List { truncated, .. } => *truncated,
        _ => false,
    }
}

/// Decoded arguments: a map of name -> value, in argument order.
pub fn args_doc<S: Sink + ?Sized>(s: &mut S, args: &[Arg]) {
    s.begin_map();
    for a in args {
        s.field(a.name);
        value_doc(s, &a.value);
    }
    s.end_map();
}

/// One argument value (a stable shape per type): ints for numbers and
/// pointers, strings for symbolic values, octal modes and captured strings,
/// lists for argv and arrays, maps for buffers, socket addresses and structs.
pub fn value_doc<S: Sink + ?Sized>(s: &mut S, v: &Value) {
    match v {
        Value::Int(x) => s.int(*x),
        Value::Uint(x) | Value::Hex(x) | Value::Ptr(x) => s.uint(*x),
        Value::Octal(x) => s.str(&format!("0{x:o}")),
        Value::Sym { text, .. } => s.str(text),
        Value::Str { bytes, .. } => s.lossy(bytes),
        Value::StrList { items, .. } => {
            s.begin_list();
            for i in items {
                s.lossy(i);
            }
            s.end_list();
        }
        Value::Bytes {
            data,
            orig_len,
            truncated,
            fault,
        } => {
            s.begin_map();
            s.field("data");
            s.lossy(data);
            s.field("len");
            match orig_len {
                Some(n) => s.uint(*n),
                None => s.null(),
            }
            s.field("truncated");
            s.bool(*truncated);
            if *fault {
                s.field("fault");
                s.bool(true);
            }
            s.end_map();
        }
        Value::Sockaddr(sa) => sockaddr_doc(s, sa),
        Value::Struct(fields) => {
            s.begin_map();
            for (k, v) in fields {
                s.key(k);
                value_doc(s, v);
            }
            s.end_map();
        }
        Value::List { items, .. } => {
            s.begin_list();
            for i in items {
                value_doc(s, i);
            }
            s.end_list();
        }
    }
}

/// Lower-case hex of `b`.
#[must_use]
pub fn hex(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len() * 2);
    for x in b {
        let _ = write!(out, "{x:02x}");
    }
    out
}

fn sockaddr_doc<S: Sink + ?Sized>(s: &mut S, sa: &SockAddr) {
    s.begin_map();
    s.field("family");
    match sa {
        SockAddr::Other { family, bytes } => {
            // A family without a decoder: its number and the bytes in hex.
            s.uint(u64::from(*family));
            s.field("data");
            s.str(&hex(bytes));
        }
        _ => s.str(&sa.family_name()),
    }
    match sa {
        SockAddr::Inet { addr, port } => {
            s.field("addr");
            s.str(&addr.to_string());
            s.field("port");
            s.uint(u64::from(*port));
        }
        SockAddr::Inet6 {
            addr,
            port,
            flowinfo,
            scope_id,
        } => {
            s.field("addr");
            s.str(&addr.to_string());
            for (k, v) in [("port", u32::from(*port)), ("flowinfo", *flowinfo)] {
                s.field(k);
                s.uint(u64::from(v));
            }
            s.field("scope_id");
            s.uint(u64::from(*scope_id));
        }
        SockAddr::Unix {
            path,
            abstract_name,
        } => {
            s.field("path");
            s.str(path);
            s.field("abstract");
            s.bool(*abstract_name);
        }
        SockAddr::Netlink { pid, groups } => {
            s.field("pid");
            s.uint(u64::from(*pid));
            s.field("groups");
            s.uint(u64::from(*groups));
        }
        SockAddr::Other { .. } => {}
    }
    s.end_map();
}
