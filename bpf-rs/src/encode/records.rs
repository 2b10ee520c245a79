//! The records form of an `EventBatch` (`EVENT_FORMAT_RECORDS`): the probe's
//! raw records as they came from the ring buffer, packed against each other
//! ([`super::packed`]), plus the container of each pid namespace they hold.
//! The receiver unpacks them and decodes the records with this crate's
//! decoder (the same one that serves `to_dict()`), so a batch of similar
//! calls costs about 8-30 bytes per event on the wire instead of ~600 for
//! JSON lines (or 160+ for the records as they are), and nothing per event
//! to send but the packing.
//!
//! Field numbers (event.proto, `EventBatch`): node 2, realtime_offset_ns 3,
//! records 4 (the records unpacked: still decoded, no longer sent),
//! records_abi 5, count 6, containers 7 (`map<uint32, string>`: each
//! container's JSON document), packed_records 8.

use std::collections::HashSet;

use super::Containers;
use super::doc::walk_doc;
use super::json::JsonSink;
use super::packed::pack;
use super::proto::{bytes_set, int64_set, message, string, uint};
use crate::abi::{ABI_VERSION, SyscallEvent};

thread_local! {
    /// The packed records of a message before they are framed, kept between
    /// calls.
    static PACKED: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Buffers above this are not kept for the next call.
const PACKED_KEEP: usize = 16 << 20;

/// Records are stored 8-byte aligned, as in a reader batch.
const ALIGN: usize = 8;

fn padded(len: usize) -> usize {
    len.div_ceil(ALIGN) * ALIGN
}

/// Appends the records-form `EventBatch` of `records` to `out`, the records
/// packed ([`super::packed`], field `packed_records`).
pub fn encode_records(
    records: &[&[u8]],
    containers: &Containers,
    node: &str,
    realtime_offset_ns: i64,
    out: &mut Vec<u8>,
) {
    if !records.is_empty() {
        PACKED.with_borrow_mut(|packed| {
            packed.clear();
            pack(records, packed);
            bytes_set(out, 8, packed);
            if packed.capacity() > PACKED_KEEP {
                *packed = Vec::new();
            }
        });
    }
    uint(out, 5, u64::from(ABI_VERSION));
    uint(out, 6, records.len() as u64);
    let mut seen = HashSet::new();
    let mut last = None;
    const PID_NS: usize = std::mem::offset_of!(SyscallEvent, pid_ns);
    for r in records {
        // The header's pid namespace alone (not the whole header copied).
        let Some(&[a, b, c, d]) = r.get(PID_NS..PID_NS + 4) else {
            continue;
        };
        let pid_ns = u32::from_ne_bytes([a, b, c, d]);
        // Runs of one namespace are the rule: hash only at a change.
        if last == Some(pid_ns) || !seen.insert(pid_ns) {
            last = Some(pid_ns);
            continue;
        }
        last = Some(pid_ns);
        if let Some(Some(doc)) = containers.get(&pid_ns) {
            let mut json = Vec::new();
            walk_doc(&mut JsonSink::new(&mut json), doc);
            message(out, 7, |e| {
                uint(e, 1, u64::from(pid_ns));
                bytes_set(e, 2, &json);
            });
        }
    }
    string(out, 2, node);
    if realtime_offset_ns != 0 {
        int64_set(out, 3, realtime_offset_ns);
    }
}

/// The records of a `records` field (concatenated, each 8-byte aligned,
/// each starting with its header whose `size` field says its length); an
/// error naming the first record that does not fit. Records are validated
/// when they are added to a batch.
pub fn split_records(blob: &[u8]) -> Result<Vec<&[u8]>, String> {
    let mut out = Vec::new();
    let mut off = 0;
    while off < blob.len() {
        let size = blob
            .get(off + 4..off + 8)
            .map(|s| u32::from_ne_bytes([s[0], s[1], s[2], s[3]]) as usize)
            .ok_or_else(|| format!("record {} at byte {off}: truncated header", out.len()))?;
        let rec = blob
            .get(off..off + size)
            .filter(|_| size >= 8)
            .ok_or_else(|| {
                format!(
                    "record {} at byte {off}: size {size} does not fit in {} bytes",
                    out.len(),
                    blob.len()
                )
            })?;
        out.push(rec);
        off += padded(size);
    }
    Ok(out)
}
