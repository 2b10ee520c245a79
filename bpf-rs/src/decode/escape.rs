//! Escaping bytes from the traced process for text output.

use std::fmt::Write as _;

/// Escapes bytes as a C string literal; `..."` marks truncation.
#[must_use]
pub fn quote(b: &[u8], truncated: bool) -> String {
    let mut s = String::with_capacity(b.len() + 2);
    s.push('"');
    for &c in b {
        match c {
            b'"' => s.push_str("\\\""),
            b'\\' => s.push_str("\\\\"),
            b'\n' => s.push_str("\\n"),
            b'\t' => s.push_str("\\t"),
            b'\r' => s.push_str("\\r"),
            0x20..=0x7e => s.push(char::from(c)),
            _ => {
                let _ = write!(s, "\\x{c:02x}");
            }
        }
    }
    s.push('"');
    if truncated {
        s.push_str("...");
    }
    s
}
