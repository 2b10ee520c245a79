//! JSON lines: the event document ([`super::doc`]) written as Python's
//! `json.dumps(doc, separators=(",", ":"))` writes it (`ensure_ascii`: every
//! character outside printable ASCII is a `\uXXXX` escape, surrogate pairs
//! above U+FFFF), so a line is byte-identical to the one Python would make.

use std::collections::HashMap;

use super::doc::{
    Doc, Extra, Sink, event_doc, head_doc, namespaces_doc, process_doc, syscall_doc, walk_doc,
};
use super::{Containers, header_and_args, prefetch_ahead};
use crate::abi::SyscallEvent;

/// Writes documents as compact JSON into a byte buffer. A given [`Doc`]
/// (a container, the same for every event of its namespace) is encoded once
/// per sink and copied after that.
pub struct JsonSink<'a> {
    out: &'a mut Vec<u8>,
    /// The next map entry or list item needs a comma first.
    comma: bool,
    /// Encoded docs by address: a sink lives for one call, during which the
    /// docs it is given stay borrowed, so an address names one doc.
    docs: HashMap<usize, Vec<u8>>,
    /// Encoded `syscall` objects by number.
    syscalls: HashMap<u32, Vec<u8>>,
    /// The last event's process fields (with their leading comma) and the
    /// header values they came from: consecutive events of one thread
    /// share them, so they are copied instead of formatted again.
    process: Memo<ProcessKey>,
    /// The same for the namespace fields.
    namespaces: Memo<(u32, u32, u32, u64)>,
    /// The same for the whole head (`syscall` to `cgroup_id`): consecutive
    /// calls of one thread to one syscall with one result (a loop, a
    /// thread's reads) differ only in their times, seq and arguments, so
    /// most lines copy ~400 bytes here instead of writing ~25 fields.
    head: Memo<HeadKey>,
    /// The last `doc` written, by address (the container of consecutive
    /// events of one namespace), before the lookup in `docs`.
    last_doc: Option<usize>,
    last_doc_json: Vec<u8>,
}

type ProcessKey = ([u32; 7], [u8; 16]);

/// The header fields [`head_doc`] writes, in words: flags and ret (the
/// result), nr, the process and namespace ids, cgroup and comm.
#[derive(Clone, Copy)]
struct HeadKey([u64; 10]);

impl PartialEq for HeadKey {
    /// Every word at once, without branches or a `memcmp` call (perf: the
    /// derived tuple's comparison called `memcmp`, 7 % of the samples of a
    /// getppid JSON micro-benchmark).
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        self.0
            .iter()
            .zip(other.0)
            .fold(0, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

fn head_key(h: &SyscallEvent) -> HeadKey {
    let pair = |a: u32, b: u32| u64::from(a) | (u64::from(b) << 32);
    let comm = |i: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&h.comm[i..i + 8]);
        u64::from_ne_bytes(w)
    };
    HeadKey([
        pair(u32::from(h.flags), h.nr),
        pair(h.tgid, h.tid),
        pair(h.ns_tgid, h.ns_tid),
        pair(h.uid, h.gid),
        pair(h.sid, h.pid_ns),
        pair(h.mnt_ns, h.uts_ns),
        h.cgroup_id,
        h.ret.cast_unsigned(),
        comm(0),
        comm(8),
    ])
}

/// What a sink wrote last for a key, and whether a comma came first.
struct Memo<K> {
    key: Option<(bool, K)>,
    json: Vec<u8>,
}

impl<K> Default for Memo<K> {
    fn default() -> Self {
        Self {
            key: None,
            json: Vec::new(),
        }
    }
}

impl<'a> JsonSink<'a> {
    pub fn new(out: &'a mut Vec<u8>) -> Self {
        Self {
            out,
            comma: false,
            docs: HashMap::new(),
            syscalls: HashMap::new(),
            process: Memo::default(),
            namespaces: Memo::default(),
            head: Memo::default(),
            last_doc: None,
            last_doc_json: Vec::new(),
        }
    }

    /// Writes fields with `write`, or copies what it wrote last time for the
    /// same `key` in the same separator state (then the bytes, leading comma
    /// or not, are the same too).
    fn memo<K: PartialEq + Copy>(
        &mut self,
        pick: fn(&mut Self) -> &mut Memo<K>,
        key: K,
        write: impl FnOnce(&mut Self),
    ) {
        let key = (self.comma, key);
        if pick(self).key == Some(key) {
            let json = std::mem::take(&mut pick(self).json);
            self.out.extend_from_slice(&json);
            pick(self).json = json;
            self.comma = true;
            return;
        }
        let before = self.out.len();
        write(self);
        let mut json = std::mem::take(&mut pick(self).json);
        json.clear();
        json.extend_from_slice(&self.out[before..]);
        *pick(self) = Memo {
            key: Some(key),
            json,
        };
    }

    #[inline]
    fn sep(&mut self) {
        if self.comma {
            self.out.push(b',');
        }
        self.comma = true;
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends a short slice without a call to `memcpy`: fixed-size,
/// overlapping copies from both ends (the keys and numbers of an event are
/// 1-20 bytes, and a library call per key costs more than the copy; measured
/// on getppid lines with `perf record`). Longer slices use `extend_from_slice`.
#[inline]
fn put(out: &mut Vec<u8>, s: &[u8]) {
    let n = s.len();
    if n > 32 {
        out.extend_from_slice(s);
        return;
    }
    out.reserve(32);
    let len = out.len();
    let src = s.as_ptr();
    // SAFETY: `reserve(32)` leaves at least 32 writable bytes after `len`,
    // and every copy below stays within them and within `s` (each reads
    // `w` bytes at 0 and at `n - w` with `w <= n`); `set_len` then covers
    // exactly the `n` bytes written.
    unsafe {
        let dst = out.as_mut_ptr().add(len);
        if n >= 16 {
            std::ptr::copy_nonoverlapping(src, dst, 16);
            std::ptr::copy_nonoverlapping(src.add(n - 16), dst.add(n - 16), 16);
        } else if n >= 8 {
            std::ptr::copy_nonoverlapping(src, dst, 8);
            std::ptr::copy_nonoverlapping(src.add(n - 8), dst.add(n - 8), 8);
        } else if n >= 4 {
            std::ptr::copy_nonoverlapping(src, dst, 4);
            std::ptr::copy_nonoverlapping(src.add(n - 4), dst.add(n - 4), 4);
        } else {
            for i in 0..n {
                *dst.add(i) = *src.add(i);
            }
        }
        out.set_len(len + n);
    }
}

fn push_u16_escape(out: &mut Vec<u8>, u: u16) {
    out.extend_from_slice(&[
        b'\\',
        b'u',
        HEX[usize::from(u >> 12)],
        HEX[usize::from((u >> 8) & 0xf)],
        HEX[usize::from((u >> 4) & 0xf)],
        HEX[usize::from(u & 0xf)],
    ]);
}

/// Bytes that a JSON string cannot hold as they are (Python's
/// `ensure_ascii`): controls, `"`, `\\`, DEL and every non-ASCII byte.
const ESCAPED: [bool; 256] = {
    let mut t = [true; 256];
    let mut c = 0x20;
    while c < 0x7f {
        t[c] = c == b'"' as usize || c == b'\\' as usize;
        c += 1;
    }
    t
};

/// The body of a JSON string (no quotes), escaped as Python's `ensure_ascii`.
fn push_escaped(out: &mut Vec<u8>, s: &str) {
    let b = s.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if !ESCAPED[usize::from(c)] {
            i += 1;
            continue;
        }
        put(out, &b[start..i]);
        let width = match c {
            b'"' => push(out, b"\\\""),
            b'\\' => push(out, b"\\\\"),
            b'\n' => push(out, b"\\n"),
            b'\r' => push(out, b"\\r"),
            b'\t' => push(out, b"\\t"),
            0x08 => push(out, b"\\b"),
            0x0c => push(out, b"\\f"),
            0..0x80 => {
                push_u16_escape(out, u16::from(c));
                1
            }
            _ => {
                // `s` is UTF-8 and `i` the start of a character here.
                let ch = s
                    .get(i..)
                    .and_then(|t| t.chars().next())
                    .unwrap_or('\u{fffd}');
                let mut units = [0u16; 2];
                for u in ch.encode_utf16(&mut units) {
                    push_u16_escape(out, *u);
                }
                ch.len_utf8()
            }
        };
        i += width;
        start = i;
    }
    put(out, &b[start..]);
}

/// Appends an escape of one byte; its width in the input (1).
fn push(out: &mut Vec<u8>, escape: &[u8]) -> usize {
    out.extend_from_slice(escape);
    1
}

#[inline]
fn push_u64(out: &mut Vec<u8>, v: u64) {
    put(out, itoa::Buffer::new().format(v).as_bytes());
}

impl Sink for JsonSink<'_> {
    #[inline]
    fn begin_map(&mut self) {
        self.sep();
        self.out.push(b'{');
        self.comma = false;
    }
    #[inline]
    fn end_map(&mut self) {
        self.out.push(b'}');
        self.comma = true;
    }
    #[inline]
    fn begin_list(&mut self) {
        self.sep();
        self.out.push(b'[');
        self.comma = false;
    }
    #[inline]
    fn end_list(&mut self) {
        self.out.push(b']');
        self.comma = true;
    }
    #[inline]
    fn key(&mut self, k: &str) {
        self.sep();
        self.out.push(b'"');
        push_escaped(self.out, k);
        self.out.extend_from_slice(b"\":");
        self.comma = false;
    }
    #[inline]
    fn field(&mut self, k: &'static str) {
        debug_assert!(!k.bytes().any(|c| ESCAPED[usize::from(c)]), "{k}");
        self.sep();
        self.out.push(b'"');
        put(self.out, k.as_bytes());
        put(self.out, b"\":");
        self.comma = false;
    }
    #[inline]
    fn null(&mut self) {
        self.sep();
        put(self.out, b"null");
    }
    #[inline]
    fn bool(&mut self, v: bool) {
        self.sep();
        self.out
            .extend_from_slice(if v { b"true" as &[u8] } else { b"false" });
    }
    #[inline]
    fn int(&mut self, v: i64) {
        self.sep();
        if v < 0 {
            self.out.push(b'-');
        }
        push_u64(self.out, v.unsigned_abs());
    }
    #[inline]
    fn uint(&mut self, v: u64) {
        self.sep();
        push_u64(self.out, v);
    }
    #[inline]
    fn str(&mut self, s: &str) {
        self.sep();
        self.out.push(b'"');
        push_escaped(self.out, s);
        self.out.push(b'"');
    }
    #[inline]
    fn lossy(&mut self, b: &[u8]) {
        self.sep();
        self.out.push(b'"');
        for chunk in b.utf8_chunks() {
            push_escaped(self.out, chunk.valid());
            if !chunk.invalid().is_empty() {
                push_u16_escape(self.out, 0xfffd);
            }
        }
        self.out.push(b'"');
    }
    fn syscall(&mut self, nr: u32) {
        self.sep();
        if let Some(json) = self.syscalls.get(&nr) {
            self.out.extend_from_slice(json);
            return;
        }
        let mut json = Vec::new();
        syscall_doc(&mut JsonSink::new(&mut json), nr);
        self.out.extend_from_slice(&json);
        self.syscalls.insert(nr, json);
    }
    fn process(&mut self, hdr: &SyscallEvent) {
        let key = (
            [
                hdr.tgid,
                hdr.tid,
                hdr.ns_tgid,
                hdr.ns_tid,
                hdr.uid,
                hdr.gid,
                hdr.sid,
            ],
            hdr.comm,
        );
        self.memo(|s| &mut s.process, key, |s| process_doc(s, hdr));
    }
    fn namespaces(&mut self, hdr: &SyscallEvent) {
        let key = (hdr.pid_ns, hdr.uts_ns, hdr.mnt_ns, hdr.cgroup_id);
        self.memo(|s| &mut s.namespaces, key, |s| namespaces_doc(s, hdr));
    }
    fn head(&mut self, hdr: &SyscallEvent) {
        self.memo(|s| &mut s.head, head_key(hdr), |s| head_doc(s, hdr));
    }
    fn doc(&mut self, d: &Doc) {
        let addr = std::ptr::from_ref(d) as usize;
        self.sep();
        if self.last_doc == Some(addr) {
            self.out.extend_from_slice(&self.last_doc_json);
            return;
        }
        let json = match self.docs.get(&addr) {
            Some(json) => json.clone(),
            None => {
                let mut json = Vec::new();
                walk_doc(&mut JsonSink::new(&mut json), d);
                self.docs.insert(addr, json.clone());
                json
            }
        };
        self.out.extend_from_slice(&json);
        self.last_doc = Some(addr);
        self.last_doc_json = json;
    }
}

/// Appends one JSON line per record to `out`; `containers` labels each
/// record by its pid namespace (a namespace it does not hold: null).
pub fn encode_json(
    records: &[&[u8]],
    containers: &Containers,
    node: Option<&str>,
    out: &mut Vec<u8>,
) {
    let mut sink = JsonSink::new(out);
    let n = records.len();
    let mut sized = false;
    // The container of the last event's namespace (consecutive events
    // mostly share it): one map lookup per change, not per event.
    let mut last: Option<(u32, Option<&Doc>)> = None;
    for (k, &rec) in records.iter().enumerate() {
        prefetch_ahead(records, k);
        let (hdr, args) = header_and_args(rec);
        let container = match last {
            Some((ns, c)) if ns == hdr.pid_ns => c,
            _ => {
                let c = containers.get(&hdr.pid_ns).and_then(Option::as_ref);
                last = Some((hdr.pid_ns, c));
                c
            }
        };
        let extra = Extra {
            container: Some(container),
            node,
        };
        sink.comma = false;
        let before = sink.out.len();
        event_doc(&mut sink, &hdr, &args, extra);
        sink.out.push(b'\n');
        if !sized {
            // Room for the rest at the first line's size and a quarter more,
            // so the buffer does not move while it grows.
            sized = true;
            let line = sink.out.len() - before;
            sink.out
                .reserve(line.saturating_mul(n).saturating_add(n * line / 4));
        }
    }
}
