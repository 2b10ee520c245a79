//! Decoded argument values and their strace-style text.

use std::borrow::Cow;

use super::escape::quote;
use super::sockaddr::SockAddr;

/// A decoded argument value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Int(i64),
    Uint(u64),
    Hex(u64),
    /// A file mode or permission bits, shown in octal.
    Octal(u64),
    /// Symbolic rendering (flags, AT_FDCWD, signal names) with the raw value.
    Sym {
        text: Cow<'static, str>,
        raw: u64,
    },
    Str {
        bytes: Vec<u8>,
        truncated: bool,
        fault: bool,
    },
    StrList {
        items: Vec<Vec<u8>>,
        truncated: bool,
        fault: bool,
    },
    Bytes {
        data: Vec<u8>,
        /// Length the call really used (read count, buffer size).
        orig_len: Option<u64>,
        truncated: bool,
        fault: bool,
    },
    Sockaddr(SockAddr),
    /// A raw pointer that was not captured.
    Ptr(u64),
    /// A captured struct, field by field (timespec, rlimit, open_how, ...).
    Struct(Vec<(String, Value)>),
    /// An array of values (epoll_wait's events); `truncated`: more followed.
    List {
        items: Vec<Value>,
        truncated: bool,
    },
}

/// One argument of an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Arg {
    pub name: &'static str,
    pub raw: u64,
    pub value: Value,
}

impl Value {
    /// strace-style text of the value.
    #[must_use]
    pub fn to_text(&self) -> String {
        match self {
            Self::Int(v) => v.to_string(),
            Self::Uint(v) => v.to_string(),
            Self::Hex(v) => format!("{v:#x}"),
            Self::Ptr(v) => {
                if *v == 0 {
                    "NULL".into()
                } else {
                    format!("{v:#x}")
                }
            }
            Self::Octal(v) => crate::flags::octal(*v),
            Self::Sym { text, .. } => text.to_string(),
            Self::Str {
                bytes: data,
                truncated,
                fault,
            }
            | Self::Bytes {
                data,
                truncated,
                fault,
                ..
            } => {
                if *fault && data.is_empty() {
                    "<unreadable>".into()
                } else {
                    quote(data, *truncated)
                }
            }
            Self::StrList {
                items,
                truncated,
                fault,
            } => {
                if *fault && items.is_empty() {
                    return "<unreadable>".into();
                }
                let mut s = String::from("[");
                for (i, it) in items.iter().enumerate() {
                    if i > 0 {
                        s.push_str(", ");
                    }
                    s.push_str(&quote(it, false));
                }
                if *truncated {
                    s.push_str(", ...");
                }
                s.push(']');
                s
            }
            Self::Sockaddr(sa) => sa.to_text(),
            Self::Struct(fields) => {
                let inner: Vec<String> = fields
                    .iter()
                    .map(|(k, v)| format!("{k}={}", v.to_text()))
                    .collect();
                format!("{{{}}}", inner.join(", "))
            }
            Self::List { items, truncated } => {
                let mut inner: Vec<String> = items.iter().map(Value::to_text).collect();
                if *truncated {
                    inner.push("...".into());
                }
                format!("[{}]", inner.join(", "))
            }
        }
    }
}

/// A symbolic value with its raw register.
pub(crate) fn sym(text: impl Into<Cow<'static, str>>, raw: u64) -> Value {
    Value::Sym {
        text: text.into(),
        raw,
    }
}
