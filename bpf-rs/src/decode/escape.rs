//! Escaping bytes from the traced process for text output, as strace does:
//! a traced process chooses its strings (and its comm, with prctl
//! PR_SET_NAME), so text output never carries a raw control character.
//!
//! `\t \n \v \f \r` keep their C escapes; other bytes below 0x20, 0x7f,
//! bytes that are not valid UTF-8 and the C1 controls U+0080..U+009F (a
//! terminal reads U+009B as CSI) become octal escapes, shortest form unless
//! an octal digit follows (`\33` for ESC, `\0331` for ESC then `1`). Inside
//! quotes `"` is escaped; `\` always is. Other UTF-8 text is kept.

/// Escapes `b` into `out`; `quoted`: the text goes between double quotes.
pub fn escape_into(out: &mut String, b: &[u8], quoted: bool) {
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        let width = utf8_width(c);
        if c < 0x80 {
            push_ascii(out, c, next, quoted);
        } else if let Some(ch) = printable_char(b.get(i..i + width).unwrap_or_default()) {
            out.push(ch);
            i += width;
            continue;
        } else {
            push_octal(out, c, next);
        }
        i += 1;
    }
}

/// `b` escaped for unquoted text (a command name).
#[must_use]
pub fn escape(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len());
    escape_into(&mut s, b, false);
    s
}

/// `b` as a quoted C string literal; `..."` marks truncation.
#[must_use]
pub fn quote(b: &[u8], truncated: bool) -> String {
    let mut s = String::with_capacity(b.len() + 5);
    s.push('"');
    escape_into(&mut s, b, true);
    s.push('"');
    if truncated {
        s.push_str("...");
    }
    s
}

fn push_ascii(out: &mut String, c: u8, next: Option<u8>, quoted: bool) {
    match c {
        b'"' if quoted => out.push_str("\\\""),
        b'\\' => out.push_str("\\\\"),
        b'\t' => out.push_str("\\t"),
        b'\n' => out.push_str("\\n"),
        0x0b => out.push_str("\\v"),
        0x0c => out.push_str("\\f"),
        b'\r' => out.push_str("\\r"),
        0x20..=0x7e => out.push(char::from(c)),
        _ => push_octal(out, c, next),
    }
}

/// `\ooo`, or fewer digits when no octal digit follows.
fn push_octal(out: &mut String, c: u8, next: Option<u8>) {
    let digit = |v: u8| char::from(b'0' + (v & 7));
    out.push('\\');
    if next.is_some_and(|n| (b'0'..=b'7').contains(&n)) {
        out.push(digit(c >> 6));
        out.push(digit(c >> 3));
    } else if c >> 3 != 0 {
        if c >> 6 != 0 {
            out.push(digit(c >> 6));
        }
        out.push(digit(c >> 3));
    }
    out.push(digit(c));
}

/// Length of the UTF-8 sequence a leading byte announces (1 if invalid).
fn utf8_width(c: u8) -> usize {
    match c {
        0xc2..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf4 => 4,
        _ => 1,
    }
}

/// The character `seq` encodes, when it is exactly one valid UTF-8
/// character that is not a C1 control.
fn printable_char(seq: &[u8]) -> Option<char> {
    let mut chars = std::str::from_utf8(seq).ok()?.chars();
    let ch = chars.next()?;
    (chars.next().is_none() && !('\u{80}'..='\u{9f}').contains(&ch)).then_some(ch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c_escapes_and_quotes() {
        assert_eq!(
            quote(b"a\tb\nc\x0bd\x0ce\rf", false),
            r#""a\tb\nc\vd\fe\rf""#
        );
        assert_eq!(quote(br#"say "hi" \o/"#, true), r#""say \"hi\" \\o/"..."#);
        assert_eq!(escape(br#"x"y\z"#), r#"x"y\\z"#);
    }

    #[test]
    fn octal_is_shortest_unless_an_octal_digit_follows() {
        assert_eq!(escape(b"\x1b[31m"), r"\33[31m");
        assert_eq!(escape(b"\x1b1"), r"\0331");
        assert_eq!(escape(b"\x1b8"), r"\338");
        assert_eq!(escape(b"\0"), r"\0");
        assert_eq!(escape(b"\x00\x31"), r"\0001");
        assert_eq!(escape(b"\x07\x7f"), r"\7\177");
        assert_eq!(escape(b"\x01\x02"), r"\1\2");
    }

    #[test]
    fn utf8_is_kept_invalid_bytes_and_c1_are_octal() {
        assert_eq!(
            escape("caf\u{e9} \u{1f600}".as_bytes()),
            "caf\u{e9} \u{1f600}"
        );
        assert_eq!(escape(b"\xff\xfe"), r"\377\376");
        // A lone lead byte, a truncated sequence, an overlong encoding.
        assert_eq!(escape(b"\xc3"), r"\303");
        assert_eq!(escape(b"\xe2\x82"), r"\342\202");
        assert_eq!(escape(b"\xc0\xaf"), r"\300\257");
        // U+009B (CSI) is valid UTF-8 but a terminal control.
        assert_eq!(escape("\u{9b}31m".as_bytes()), r"\302\23331m");
    }

    #[test]
    fn never_emits_a_control_character() {
        let all: Vec<u8> = (0..=255).collect();
        for text in [escape(&all), quote(&all, false)] {
            assert!(!text.chars().any(char::is_control), "{text}");
        }
    }
}
