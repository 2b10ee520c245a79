//! strace-style text lines (as `Event.to_text()`), one per record.

use super::decoded;

/// Appends one `\n`-terminated text line per record to `out`.
pub fn encode_text<'r>(records: impl Iterator<Item = &'r [u8]>, out: &mut Vec<u8>) {
    for rec in records {
        out.extend_from_slice(decoded(rec).to_text().as_bytes());
        out.push(b'\n');
    }
}
