//! strace-style text lines (as `Event.to_text()`), one per record.

use super::prefetch_ahead;

/// Appends one `\n`-terminated text line per record to `out`, each written
/// into one reused buffer (the line of a getppid is ~30 bytes: allocating
/// it cost more than writing it, perf).
pub fn encode_text(records: &[&[u8]], out: &mut Vec<u8>) {
    let mut line = String::new();
    for (k, &rec) in records.iter().enumerate() {
        prefetch_ahead(records, k);
        line.clear();
        super::decoded(rec).write_text(&mut line);
        line.push('\n');
        out.extend_from_slice(line.as_bytes());
    }
}
