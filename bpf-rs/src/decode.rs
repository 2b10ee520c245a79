//! Raw ring records -> typed syscall events. Pure code: validating a record
//! never trusts a length it has not checked, and decoding never panics on a
//! record that passed validation (fuzzed in tests).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::OnceLock;

use crate::abi::{self, Capture, SyscallEvent};
use crate::syscalls::{RetKind, SyscallDef, SyscallTable};

const ERRNO_TSV: &str = include_str!(concat!(env!("OUT_DIR"), "/errno.tsv"));

/// Why a record was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("record of {0} bytes is shorter than the header")]
    Short(usize),
    #[error("unknown record kind {0}")]
    Kind(u16),
    #[error("record says {said} bytes but {got} arrived")]
    Size { said: u32, got: usize },
    #[error("capture {index} overruns the record")]
    Capture { index: usize },
    #[error("syscall number {0} out of range")]
    Nr(u32),
}

/// One captured argument, borrowed from its record.
#[derive(Clone, Copy, Debug)]
pub struct CaptureRef<'a> {
    pub cap: Capture,
    pub data: &'a [u8],
}

/// Checks a record and returns its header and captures.
///
/// # Errors
/// [`DecodeError`] when the header, size or any capture is inconsistent.
pub fn parse(rec: &[u8]) -> Result<(SyscallEvent, Vec<CaptureRef<'_>>), DecodeError> {
    let hdr = validate(rec)?;
    Ok((hdr, captures(rec, &hdr)))
}

/// Validates a record (header, size, every capture inside bounds).
///
/// # Errors
/// [`DecodeError`] describing the first inconsistency.
pub fn validate(rec: &[u8]) -> Result<SyscallEvent, DecodeError> {
    let hdr = SyscallEvent::read(rec).ok_or(DecodeError::Short(rec.len()))?;
    if hdr.kind != abi::REC_SYSCALL {
        return Err(DecodeError::Kind(hdr.kind));
    }
    let size = hdr.size as usize;
    if size < abi::EVENT_SIZE || size > rec.len() || size > abi::REC_MAX {
        return Err(DecodeError::Size {
            said: hdr.size,
            got: rec.len(),
        });
    }
    if hdr.nr >= abi::MAX_SYSCALLS {
        return Err(DecodeError::Nr(hdr.nr));
    }
    let mut off = abi::EVENT_SIZE;
    for index in 0..usize::from(hdr.ncaptures) {
        let cap = Capture::read(rec.get(off..size).unwrap_or_default())
            .ok_or(DecodeError::Capture { index })?;
        let data_end = off
            .checked_add(abi::CAPTURE_SIZE)
            .and_then(|d| d.checked_add(cap.len as usize))
            .ok_or(DecodeError::Capture { index })?;
        if data_end > size || usize::from(cap.slot) >= abi::NARGS {
            return Err(DecodeError::Capture { index });
        }
        off = (data_end + 7) & !7;
    }
    Ok(hdr)
}

/// Captures of a record that [`validate`] accepted.
#[must_use]
pub fn captures<'a>(rec: &'a [u8], hdr: &SyscallEvent) -> Vec<CaptureRef<'a>> {
    let size = (hdr.size as usize).min(rec.len());
    let mut out = Vec::with_capacity(usize::from(hdr.ncaptures));
    let mut off = abi::EVENT_SIZE;
    for _ in 0..hdr.ncaptures {
        let Some(cap) = Capture::read(rec.get(off..size).unwrap_or_default()) else {
            break;
        };
        let start = off + abi::CAPTURE_SIZE;
        let Some(data) = rec.get(start..start + cap.len as usize) else {
            break;
        };
        out.push(CaptureRef { cap, data });
        off = (start + cap.len as usize + 7) & !7;
    }
    out
}

/// A socket address as the kernel stored it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SockAddr {
    Inet {
        addr: std::net::Ipv4Addr,
        port: u16,
    },
    Inet6 {
        addr: std::net::Ipv6Addr,
        port: u16,
        flowinfo: u32,
        scope_id: u32,
    },
    /// `path` is empty for unnamed sockets; abstract names start with `@`.
    Unix {
        path: String,
        abstract_name: bool,
    },
    Netlink {
        pid: u32,
        groups: u32,
    },
    Other {
        family: u16,
        bytes: Vec<u8>,
    },
}

impl SockAddr {
    #[must_use]
    pub fn parse(b: &[u8]) -> Option<Self> {
        let family = u16::from_ne_bytes([*b.first()?, *b.get(1)?]);
        Some(match family {
            2 if b.len() >= 8 => Self::Inet {
                port: u16::from_be_bytes([b[2], b[3]]),
                addr: std::net::Ipv4Addr::new(b[4], b[5], b[6], b[7]),
            },
            10 if b.len() >= 24 => {
                let mut a = [0u8; 16];
                a.copy_from_slice(&b[8..24]);
                Self::Inet6 {
                    port: u16::from_be_bytes([b[2], b[3]]),
                    flowinfo: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
                    addr: std::net::Ipv6Addr::from(a),
                    scope_id: b
                        .get(24..28)
                        .map_or(0, |s| u32::from_ne_bytes([s[0], s[1], s[2], s[3]])),
                }
            }
            1 => {
                let p = &b[2..];
                if p.first() == Some(&0) && p.len() > 1 {
                    Self::Unix {
                        path: format!("@{}", String::from_utf8_lossy(&p[1..])),
                        abstract_name: true,
                    }
                } else {
                    let end = p.iter().position(|&c| c == 0).unwrap_or(p.len());
                    Self::Unix {
                        path: String::from_utf8_lossy(&p[..end]).into_owned(),
                        abstract_name: false,
                    }
                }
            }
            16 if b.len() >= 12 => Self::Netlink {
                pid: u32::from_ne_bytes([b[4], b[5], b[6], b[7]]),
                groups: u32::from_ne_bytes([b[8], b[9], b[10], b[11]]),
            },
            _ => Self::Other {
                family,
                bytes: b[2..].to_vec(),
            },
        })
    }

    #[must_use]
    pub fn family_name(&self) -> String {
        match self {
            Self::Inet { .. } => "AF_INET".into(),
            Self::Inet6 { .. } => "AF_INET6".into(),
            Self::Unix { .. } => "AF_UNIX".into(),
            Self::Netlink { .. } => "AF_NETLINK".into(),
            Self::Other { family, .. } => format!("{family}"),
        }
    }

    /// strace-like text: `{sa_family=AF_INET, sin_port=htons(80), sin_addr=inet_addr("1.2.3.4")}`.
    #[must_use]
    pub fn to_text(&self) -> String {
        match self {
            Self::Inet { addr, port } => format!(
                "{{sa_family=AF_INET, sin_port=htons({port}), sin_addr=inet_addr(\"{addr}\")}}"
            ),
            Self::Inet6 {
                addr,
                port,
                flowinfo,
                scope_id,
            } => format!(
                "{{sa_family=AF_INET6, sin6_port=htons({port}), sin6_flowinfo=htonl({flowinfo}), \
                 inet_pton(AF_INET6, \"{addr}\", &sin6_addr), sin6_scope_id={scope_id}}}"
            ),
            Self::Unix { path, .. } => {
                format!(
                    "{{sa_family=AF_UNIX, sun_path={}}}",
                    quote(path.as_bytes(), false)
                )
            }
            Self::Netlink { pid, groups } => {
                format!("{{sa_family=AF_NETLINK, nl_pid={pid}, nl_groups={groups:08x}}}")
            }
            Self::Other { family, .. } => format!("{{sa_family={family}, ...}}"),
        }
    }
}

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
        text: std::borrow::Cow<'static, str>,
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
}

/// One argument of an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Arg {
    pub name: &'static str,
    pub raw: u64,
    pub value: Value,
}

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
            Self::Octal(v) => format!("0{v:o}"),
            Self::Sym { text, .. } => text.to_string(),
            Self::Str {
                bytes,
                truncated,
                fault,
            } => {
                if *fault && bytes.is_empty() {
                    "<unreadable>".into()
                } else {
                    quote(bytes, *truncated)
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
            Self::Bytes {
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
            Self::Sockaddr(sa) => sa.to_text(),
            Self::Struct(fields) => {
                let inner: Vec<String> = fields
                    .iter()
                    .map(|(k, v)| format!("{k}={}", v.to_text()))
                    .collect();
                format!("{{{}}}", inner.join(", "))
            }
        }
    }
}

/// Errno number -> name, from `data/errno.tsv`.
#[must_use]
pub fn errno_name(n: i64) -> Option<&'static str> {
    static TABLE: OnceLock<HashMap<i64, &'static str>> = OnceLock::new();
    let t = TABLE.get_or_init(|| {
        ERRNO_TSV
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .filter_map(|l| {
                let mut c = l.split('\t');
                Some((c.next()?.trim().parse().ok()?, c.next()?.trim()))
            })
            .collect()
    });
    t.get(&n).copied()
}

/// Errno name -> number.
#[must_use]
pub fn errno_number(name: &str) -> Option<i64> {
    ERRNO_TSV
        .lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let mut c = l.split('\t');
            let n = c.next()?.trim().parse().ok()?;
            let nm = c.next()?.trim();
            let aliases = c.nth(1).unwrap_or("-");
            (nm == name || aliases.split(',').any(|a| a.trim() == name)).then_some(n)
        })
}

/// The errno of a return value, if it is an error for this kind of call.
#[must_use]
pub fn errno_of(ret: i64, kind: Option<RetKind>) -> Option<i64> {
    if kind == Some(RetKind::NoReturn) {
        return None;
    }
    // Kernel errors are -1..=-4095 for every return kind, including addresses.
    (-4095..=-1).contains(&ret).then_some(-ret)
}

const O_FLAGS: &[(u64, &str)] = &[
    (0o100, "O_CREAT"),
    (0o200, "O_EXCL"),
    (0o400, "O_NOCTTY"),
    (0o1000, "O_TRUNC"),
    (0o2000, "O_APPEND"),
    (0o4000, "O_NONBLOCK"),
    (0o10000, "O_DSYNC"),
    (0o20000, "O_ASYNC"),
    (0o40000, "O_DIRECT"),
    (0o100000, "O_LARGEFILE"),
    (0o200000, "O_DIRECTORY"),
    (0o400000, "O_NOFOLLOW"),
    (0o1000000, "O_NOATIME"),
    (0o2000000, "O_CLOEXEC"),
    (0o4010000, "O_SYNC"),
    (0o20000000, "O_PATH"),
    (0o20200000, "O_TMPFILE"),
];

/// `O_RDONLY|O_CLOEXEC`-style text for open(2) flags: the access mode, then
/// the other flags in ascending bit order (O_SYNC and O_TMPFILE, which
/// include other bits, are matched whole).
#[must_use]
pub fn open_flags(v: u64) -> String {
    open_flags_text(v).into_owned()
}

fn open_flags_text(v: u64) -> std::borrow::Cow<'static, str> {
    let acc = match v & 3 {
        0 => "O_RDONLY",
        1 => "O_WRONLY",
        2 => "O_RDWR",
        _ => "O_ACCMODE",
    };
    if v & !3 == 0 {
        return acc.into();
    }
    let mut out = String::with_capacity(40);
    out.push_str(acc);
    out.push('|');
    crate::flags::bits_into(&mut out, v & !3, O_FLAGS);
    out.into()
}

/// What a scalar renderer may look at besides the value itself.
#[derive(Clone, Copy, Debug, Default)]
pub struct ArgCtx<'a> {
    pub syscall: &'a str,
    pub args: [u64; 6],
    pub slot: usize,
}

/// Renders a scalar argument by its render type (unknown types: hex).
#[must_use]
pub fn render_scalar(ty: &str, raw: u64) -> Value {
    render_scalar_in(ty, raw, &ArgCtx::default())
}

fn sym(text: impl Into<std::borrow::Cow<'static, str>>, raw: u64) -> Value {
    Value::Sym {
        text: text.into(),
        raw,
    }
}

/// Renders a scalar argument, using the call's other arguments where the
/// meaning depends on them (socket option names, AT_EACCESS).
#[must_use]
pub fn render_scalar_in(ty: &str, raw: u64, ctx: &ArgCtx<'_>) -> Value {
    use crate::flags as f;
    #[allow(
        clippy::cast_possible_wrap,
        reason = "registers hold C ints: reinterpreting the bits is the point"
    )]
    let as_i32 = i64::from(raw as u32 as i32);
    #[allow(clippy::cast_possible_wrap, reason = "C long in a 64-bit register")]
    let as_i64 = raw as i64;
    let r32 = raw & 0xffff_ffff;
    match ty {
        "int" | "pid" | "fd" => Value::Int(as_i32),
        "long" | "off" => Value::Int(as_i64),
        "uint" | "uid" | "gid" => Value::Uint(r32),
        "ulong" | "size" => Value::Uint(raw),
        "mode" => Value::Octal(raw & 0o7777),
        "dirfd" => {
            if as_i32 == -100 {
                sym("AT_FDCWD", raw)
            } else {
                Value::Int(as_i32)
            }
        }
        // dup3 and pipe2 take only O_CLOEXEC-style bits, no access mode.
        "open_flags" if matches!(ctx.syscall, "dup3" | "memfd_secret") => {
            sym(crate::flags::bits(r32, O_FLAGS, "0"), raw)
        }
        "pipe_flags" => sym(crate::flags::bits(r32, O_FLAGS, "0"), raw),
        "open_flags" => sym(open_flags_text(r32), raw),
        "statx_mask" => sym(crate::flags::bits(r32, crate::flags::STATX_MASK, "0"), raw),
        "fadvise_advice" => sym(crate::flags::enum_name(r32, crate::flags::FADVISE), raw),
        "rusage_who" => sym(crate::flags::enum_name(r32, crate::flags::RUSAGE_WHO), raw),
        "prio_which" => sym(crate::flags::enum_name(r32, crate::flags::PRIO_WHICH), raw),
        "at_flags" => {
            let table = if ctx.syscall.starts_with("faccessat") {
                f::AT_ACCESS_FLAGS
            } else {
                f::AT_FLAGS
            };
            sym(f::bits(r32, table, "0"), raw)
        }
        "access_mode" => sym(f::bits(raw, f::ACCESS, "F_OK"), raw),
        "sock_domain" => sym(f::enum_name(raw, f::FAMILIES), raw),
        "sock_type" => sym(f::sock_type(raw), raw),
        "accept_flags" => sym(
            f::bits(
                raw,
                &[(0o4000, "SOCK_NONBLOCK"), (0o2000000, "SOCK_CLOEXEC")],
                "0",
            ),
            raw,
        ),
        "sock_level" => sym(f::enum_name(raw, f::SOCK_LEVELS), raw),
        "sock_optname" => {
            let level = ctx.slot.checked_sub(1).map_or(1, |i| ctx.args[i]);
            sym(f::sockopt_name(level, raw), raw)
        }
        "msg_flags" => sym(f::bits(r32, f::MSG_FLAGS, "0"), raw),
        "prot" => sym(f::bits(raw, f::PROT, "PROT_NONE"), raw),
        "map_flags" => sym(f::map_flags(raw), raw),
        "mremap_flags" => sym(f::bits(raw, f::MREMAP_FLAGS, "0"), raw),
        "madvise" => sym(f::enum_name(raw, f::MADVISE), raw),
        "mount_flags" => sym(f::bits(raw, f::MS_FLAGS, "0"), raw),
        "umount_flags" => sym(f::bits(raw, f::MNT_FLAGS, "0"), raw),
        "clone_flags" => sym(f::clone_flags(raw), raw),
        "unshare_flags" | "setns_nstype" => sym(f::bits(raw, f::CLONE_FLAGS, "0"), raw),
        "signal" => sym(f::signal(r32), raw),
        "inotify_mask" => sym(f::bits(r32, f::IN_MASK, "0"), raw),
        "inotify_init_flags" => sym(f::bits(raw, f::IN_INIT, "0"), raw),
        "tfd_flags" => sym(f::bits(raw, f::TFD_FLAGS, "0"), raw),
        "timer_flags" => sym(f::bits(raw, f::TIMER_FLAGS, "0"), raw),
        "eventfd_flags" => sym(f::bits(raw, f::EFD_FLAGS, "0"), raw),
        "signalfd_flags" => sym(f::bits(raw, f::CLOEXEC_NONBLOCK, "0"), raw),
        "epoll_create_flags" => sym(f::bits(raw, f::EPOLL_CREATE, "0"), raw),
        "memfd_flags" => sym(f::bits(raw, f::MFD_FLAGS, "0"), raw),
        "rlimit_resource" => sym(f::enum_name(raw, f::RLIMITS), raw),
        "ptrace_request" => sym(f::enum_name(raw, f::PTRACE), raw),
        "clockid" => sym(f::enum_name(raw, f::CLOCKS), raw),
        "whence" => sym(f::enum_name(raw, f::WHENCE), raw),
        "fcntl_cmd" => sym(f::enum_name(raw, f::FCNTL), raw),
        "bpf_cmd" => sym(f::enum_name(raw, f::BPF_CMDS), raw),
        "seccomp_op" => sym(f::enum_name(raw, f::SECCOMP_OPS), raw),
        "renameat2_flags" => sym(f::bits(raw, f::RENAME_FLAGS, "0"), raw),
        "wait_options" => sym(f::bits(raw, f::WAIT_OPTIONS, "0"), raw),
        "getrandom_flags" => sym(f::bits(raw, f::GRND_FLAGS, "0"), raw),
        "flock_op" => sym(f::bits(raw, f::FLOCK_OPS, "0"), raw),
        "epoll_op" => sym(f::enum_name(raw, f::EPOLL_OPS), raw),
        "shut_how" => sym(f::enum_name(raw, f::SHUT_HOW), raw),
        "sigprocmask_how" => sym(f::enum_name(raw, f::SIGPROCMASK_HOW), raw),
        "prctl_option" => sym(f::enum_name(raw, f::PRCTL), raw),
        "close_range_flags" => sym(f::bits(raw, f::CLOSE_RANGE, "0"), raw),
        "xattr_flags" => sym(f::bits(raw, f::XATTR_FLAGS, "0"), raw),
        "fallocate_mode" => sym(f::bits(raw, f::FALLOC_FLAGS, "0"), raw),
        "msync_flags" => sym(f::bits(raw, f::MSYNC_FLAGS, "0"), raw),
        "futex_op" => sym(f::futex_op(raw), raw),
        "ptr" => Value::Ptr(raw),
        _ => Value::Hex(raw),
    }
}

fn le_u64(b: &[u8], off: usize) -> u64 {
    b.get(off..off + 8).map_or(0, |s| {
        u64::from_le_bytes([s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]])
    })
}

fn le_i64(b: &[u8], off: usize) -> i64 {
    le_u64(b, off).cast_signed()
}

fn timespec_at(b: &[u8], off: usize) -> Value {
    Value::Struct(vec![
        ("tv_sec".into(), Value::Int(le_i64(b, off))),
        ("tv_nsec".into(), Value::Int(le_i64(b, off + 8))),
    ])
}

fn rlim(v: u64) -> Value {
    if v == u64::MAX {
        sym("RLIM64_INFINITY", v)
    } else {
        Value::Uint(v)
    }
}

/// Field-by-field value of a captured struct of type `ty`, if known and whole.
#[must_use]
pub fn decode_struct(ty: &str, b: &[u8]) -> Option<Value> {
    use crate::flags as f;
    let need = crate::syscalls::struct_size(ty).map_or(usize::MAX, usize::from);
    Some(match ty {
        "timespec" | "timeval" if b.len() >= 16 => timespec_at(b, 0),
        "itimerspec" | "itimerval" if b.len() >= 32 => Value::Struct(vec![
            ("it_interval".into(), timespec_at(b, 0)),
            ("it_value".into(), timespec_at(b, 16)),
        ]),
        "rlimit" if b.len() >= 16 => Value::Struct(vec![
            ("rlim_cur".into(), rlim(le_u64(b, 0))),
            ("rlim_max".into(), rlim(le_u64(b, 8))),
        ]),
        "open_how" if b.len() >= 24 => Value::Struct(vec![
            ("flags".into(), sym(open_flags(le_u64(b, 0)), le_u64(b, 0))),
            ("mode".into(), Value::Octal(le_u64(b, 8))),
            ("resolve".into(), Value::Hex(le_u64(b, 16))),
        ]),
        "clone_args" if b.len() >= 64 => Value::Struct(vec![
            (
                "flags".into(),
                sym(f::bits(le_u64(b, 0), f::CLONE_FLAGS, "0"), le_u64(b, 0)),
            ),
            ("pidfd".into(), Value::Ptr(le_u64(b, 8))),
            ("child_tid".into(), Value::Ptr(le_u64(b, 16))),
            ("parent_tid".into(), Value::Ptr(le_u64(b, 24))),
            (
                "exit_signal".into(),
                sym(f::signal(le_u64(b, 32)), le_u64(b, 32)),
            ),
            ("stack".into(), Value::Ptr(le_u64(b, 40))),
            ("stack_size".into(), Value::Uint(le_u64(b, 48))),
            ("tls".into(), Value::Ptr(le_u64(b, 56))),
        ]),
        "sigaction" if b.len() >= 32 => {
            let handler = le_u64(b, 0);
            let h = match handler {
                0 => sym("SIG_DFL", 0),
                1 => sym("SIG_IGN", 1),
                v => Value::Ptr(v),
            };
            Value::Struct(vec![
                ("sa_handler".into(), h),
                (
                    "sa_flags".into(),
                    sym(f::bits(le_u64(b, 8), f::SA_FLAGS, "0"), le_u64(b, 8)),
                ),
                ("sa_restorer".into(), Value::Ptr(le_u64(b, 16))),
                ("sa_mask".into(), Value::Hex(le_u64(b, 24))),
            ])
        }
        "sigset" if b.len() >= 8 => Value::Hex(le_u64(b, 0)),
        "fd_pair" if b.len() >= 8 => Value::Struct(vec![
            (
                "fd0".into(),
                Value::Int(i64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]]))),
            ),
            (
                "fd1".into(),
                Value::Int(i64::from(i32::from_le_bytes([b[4], b[5], b[6], b[7]]))),
            ),
        ]),
        // Option values are mostly ints; longer ones stay bytes.
        "sockopt" if b.len() >= 4 && (b.len() == 4 || b[4..].iter().all(|&x| x == 0)) => {
            Value::Int(i64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]])))
        }
        _ if b.len() < need => return None,
        _ => return None,
    })
}

fn capture_value(
    c: &CaptureRef<'_>,
    items: &[&CaptureRef<'_>],
    def: &crate::syscalls::ArgDef,
) -> Value {
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
            _ => Value::Bytes {
                data: c.data.to_vec(),
                orig_len: known_len(c.cap.orig_len),
                truncated,
                fault,
            },
        },
        abi::CAP_STRUCT if !fault && !truncated => def
            .params
            .first()
            .and_then(|t| decode_struct(t.trim(), c.data))
            .unwrap_or_else(|| Value::Bytes {
                data: c.data.to_vec(),
                orig_len: known_len(c.cap.orig_len),
                truncated,
                fault,
            }),
        _ => Value::Bytes {
            data: c.data.to_vec(),
            orig_len: known_len(c.cap.orig_len),
            truncated,
            fault,
        },
    }
}

fn known_len(v: u32) -> Option<u64> {
    (v != abi::LEN_UNKNOWN).then_some(u64::from(v))
}

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
        return hdr
            .args
            .iter()
            .enumerate()
            .map(|(i, &raw)| Arg {
                name: ["arg0", "arg1", "arg2", "arg3", "arg4", "arg5"][i],
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
            let slot = u8::try_from(i).unwrap_or(0);
            // A string re-read at exit (not resident at entry) wins over the fault.
            let main = caps
                .iter()
                .filter(|c| c.cap.slot == slot && c.cap.kind != abi::CAP_STRV)
                .min_by_key(|c| c.cap.flags & abi::CAPF_FAULT);
            let value = match main {
                // A NULL pointer was not captured: show it as NULL, not as a fault.
                Some(c) if raw == 0 && c.cap.flags & abi::CAPF_FAULT != 0 => Value::Ptr(0),
                Some(c) => {
                    let items: Vec<&CaptureRef<'_>> = caps
                        .iter()
                        .filter(|x| x.cap.slot == slot && x.cap.kind == abi::CAP_STRV)
                        .collect();
                    capture_value(c, &items, a)
                }
                None if is_capture_type(&a.ty) => Value::Ptr(raw),
                None => render_scalar_in(
                    &a.ty,
                    raw,
                    &ArgCtx {
                        syscall: &def.name,
                        args: hdr.args,
                        slot: i,
                    },
                ),
            };
            Arg {
                name: a.name.as_str(),
                raw,
                value,
            }
        })
        .collect()
}

fn is_capture_type(ty: &str) -> bool {
    matches!(
        ty,
        "str"
            | "strv"
            | "str_out"
            | "buf_in"
            | "buf_out"
            | "sockaddr_in"
            | "sockaddr_out"
            | "struct_in"
            | "struct_in_len"
            | "struct_out"
            | "struct_out_lenptr"
            | "msghdr_in"
            | "msghdr_out"
    )
}

/// A fully decoded event (owned).
#[derive(Clone, Debug)]
pub struct Decoded {
    pub hdr: SyscallEvent,
    pub name: std::borrow::Cow<'static, str>,
    pub args: Vec<Arg>,
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
        errno: errno_of(hdr.ret, def.map(|d| d.ret)),
        hdr,
    })
}

impl Decoded {
    /// The strace-like line: `comm[pid] openat(AT_FDCWD, "/x", O_RDONLY) = 3 <0.000012>`.
    #[must_use]
    pub fn to_text(&self) -> String {
        let mut s = format!("{}[{}] {}(", self.hdr.comm_str(), self.hdr.tgid, self.name);
        // open/openat only use `mode` with O_CREAT or O_TMPFILE; strace omits it otherwise.
        let creates = self
            .args
            .iter()
            .find(|a| a.name == "flags")
            .is_some_and(|a| a.raw & (0o100 | 0o20000000) != 0);
        let skip_mode = matches!(&*self.name, "open" | "openat") && !creates;
        let shown = self
            .args
            .iter()
            .filter(|a| !(skip_mode && a.name == "mode"));
        for (i, a) in shown.enumerate() {
            if i > 0 {
                s.push_str(", ");
            }
            s.push_str(&a.value.to_text());
        }
        s.push(')');
        if self.hdr.flags & abi::EVF_NO_EXIT != 0 {
            s.push_str(" = ?");
            return s;
        }
        let kind = SyscallTable::get().by_nr(self.hdr.nr).map(|d| d.ret);
        match self.errno {
            Some(e) => {
                let _ = write!(s, " = -1 {}", errno_name(e).unwrap_or("E?"));
            }
            None if matches!(kind, Some(RetKind::Ptr | RetKind::Hex)) => {
                let _ = write!(s, " = {:#x}", self.hdr.ret);
            }
            None => {
                let _ = write!(s, " = {}", self.hdr.ret);
            }
        }
        let dur = self.hdr.exit_ns.saturating_sub(self.hdr.enter_ns);
        let _ = write!(
            s,
            " <{}.{:06}>",
            dur / 1_000_000_000,
            (dur % 1_000_000_000) / 1000
        );
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(nr: u32, ncap: u16, size: u32) -> SyscallEvent {
        SyscallEvent {
            kind: abi::REC_SYSCALL,
            size,
            nr,
            ncaptures: ncap,
            ..SyscallEvent::default()
        }
    }

    fn bytes_of<T: Copy>(v: &T) -> Vec<u8> {
        // SAFETY: test helper over POD ABI structs.
        unsafe { std::slice::from_raw_parts((v as *const T).cast::<u8>(), size_of::<T>()) }.to_vec()
    }

    fn record(nr: u32, caps: &[(u8, u8, &[u8])]) -> Vec<u8> {
        let mut body = Vec::new();
        for &(slot, kind, data) in caps {
            let c = Capture {
                slot,
                kind,
                flags: 0,
                len: u32::try_from(data.len()).unwrap(),
                orig_len: u32::try_from(data.len()).unwrap(),
                index: 0,
            };
            body.extend(bytes_of(&c));
            body.extend_from_slice(data);
            while body.len() % 8 != 0 {
                body.push(0);
            }
        }
        let size = u32::try_from(abi::EVENT_SIZE + body.len()).unwrap();
        let mut h = header(nr, u16::try_from(caps.len()).unwrap(), size);
        h.args[0] = (-100i64).cast_unsigned();
        h.args[2] = 0o2000000;
        h.ret = 3;
        let mut r = bytes_of(&h);
        r.extend(body);
        r
    }

    #[test]
    fn decodes_openat_with_path() {
        let r = record(257, &[(1, abi::CAP_STR, b"/etc/hostname")]);
        let d = decode(&r).unwrap();
        assert_eq!(d.name, "openat");
        assert_eq!(d.args[0].value.to_text(), "AT_FDCWD");
        assert_eq!(d.args[1].value.to_text(), "\"/etc/hostname\"");
        assert_eq!(d.args[2].value.to_text(), "O_RDONLY|O_CLOEXEC");
        assert!(
            d.to_text()
                .contains("openat(AT_FDCWD, \"/etc/hostname\", O_RDONLY|O_CLOEXEC")
        );
    }

    #[test]
    fn rejects_overrunning_capture() {
        let mut r = record(257, &[(1, abi::CAP_STR, b"/etc/hostname")]);
        // Claim a longer capture than the record holds.
        r[abi::EVENT_SIZE + 4] = 200;
        assert!(matches!(validate(&r), Err(DecodeError::Capture { .. })));
    }

    #[test]
    fn rejects_bad_kind_and_size() {
        let mut r = record(39, &[]);
        r[0] = 9;
        assert_eq!(validate(&r), Err(DecodeError::Kind(9)));
        let r = record(39, &[]);
        assert!(matches!(validate(&r[..100]), Err(DecodeError::Short(100))));
    }

    #[test]
    fn sockaddr_inet_port_is_host_order() {
        let sa = [2u8, 0, 0x1f, 0x90, 127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(
            SockAddr::parse(&sa),
            Some(SockAddr::Inet {
                addr: std::net::Ipv4Addr::LOCALHOST,
                port: 8080
            })
        );
    }

    #[test]
    fn sockaddr_unix_abstract() {
        let mut sa = vec![1u8, 0, 0];
        sa.extend_from_slice(b"hidden");
        match SockAddr::parse(&sa).unwrap() {
            SockAddr::Unix {
                path,
                abstract_name,
            } => {
                assert_eq!(path, "@hidden");
                assert!(abstract_name);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn errno_and_pointer_returns() {
        assert_eq!(errno_of(-2, Some(RetKind::Int)), Some(2));
        assert_eq!(errno_of(3, Some(RetKind::Fd)), None);
        // A high mmap address is not an error.
        assert_eq!(errno_of(0x7f00_0000_0000, Some(RetKind::Ptr)), None);
        assert_eq!(errno_name(2), Some("ENOENT"));
        assert_eq!(errno_number("EWOULDBLOCK"), Some(11));
    }

    #[test]
    fn open_flags_order_is_fixed() {
        assert_eq!(open_flags(0o2000000), "O_RDONLY|O_CLOEXEC");
        assert_eq!(open_flags(0o101 | 0o1000), "O_WRONLY|O_CREAT|O_TRUNC");
        assert_eq!(open_flags(0o20200002), "O_RDWR|O_TMPFILE");
    }

    /// Decode rate on this machine; run with
    /// `cargo test --release -p syshub-bpf decode_throughput -- --ignored --nocapture`.
    #[test]
    #[ignore = "benchmark, not a test"]
    fn decode_throughput() {
        let recs = [
            record(
                257,
                &[(1, abi::CAP_STR, b"/usr/lib/x86_64-linux-gnu/libc.so.6")],
            ),
            record(110, &[]),
            record(
                59,
                &[(0, abi::CAP_STR, b"/bin/sh"), (1, abi::CAP_STRV, b"sh")],
            ),
        ];
        for (name, rec) in ["openat+path", "getppid", "execve"].iter().zip(&recs) {
            let n = 2_000_000u32;
            let t = std::time::Instant::now();
            let mut args = 0usize;
            for _ in 0..n {
                let d = decode(std::hint::black_box(rec)).unwrap();
                args += d.args.len();
            }
            let el = t.elapsed().as_secs_f64();
            println!(
                "decode {name}: {:.2} M records/s ({args} args)",
                f64::from(n) / el / 1e6
            );
            let t = std::time::Instant::now();
            for _ in 0..n {
                validate(std::hint::black_box(rec)).unwrap();
            }
            let el = t.elapsed().as_secs_f64();
            println!(
                "validate {name}: {:.2} M records/s",
                f64::from(n) / el / 1e6
            );
        }
    }

    #[test]
    fn structs_decode() {
        let mut ts = Vec::new();
        ts.extend_from_slice(&1i64.to_le_bytes());
        ts.extend_from_slice(&500i64.to_le_bytes());
        assert_eq!(
            decode_struct("timespec", &ts).unwrap().to_text(),
            "{tv_sec=1, tv_nsec=500}"
        );
        let mut rl = Vec::new();
        rl.extend_from_slice(&1024u64.to_le_bytes());
        rl.extend_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(
            decode_struct("rlimit", &rl).unwrap().to_text(),
            "{rlim_cur=1024, rlim_max=RLIM64_INFINITY}"
        );
        assert!(decode_struct("timespec", &ts[..8]).is_none());
        assert_eq!(
            render_scalar_in(
                "at_flags",
                0x200,
                &ArgCtx {
                    syscall: "faccessat2",
                    ..ArgCtx::default()
                }
            )
            .to_text(),
            "AT_EACCESS"
        );
        assert_eq!(
            render_scalar_in(
                "at_flags",
                0x200,
                &ArgCtx {
                    syscall: "unlinkat",
                    ..ArgCtx::default()
                }
            )
            .to_text(),
            "AT_REMOVEDIR"
        );
        let ctx = ArgCtx {
            syscall: "setsockopt",
            args: [3, 1, 2, 0, 4, 0],
            slot: 2,
        };
        assert_eq!(
            render_scalar_in("sock_optname", 2, &ctx).to_text(),
            "SO_REUSEADDR"
        );
    }

    #[test]
    fn random_bytes_never_panic() {
        // Deterministic xorshift: random and truncated records.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let base = record(
            59,
            &[(0, abi::CAP_STR, b"/bin/sh"), (1, abi::CAP_STRV, b"sh")],
        );
        for i in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let mut r = base.clone();
            let n = (x % 8) as usize + 1;
            for k in 0..n {
                let pos = ((x >> (k * 8)) as usize) % r.len();
                r[pos] = (x >> (k * 5)) as u8;
            }
            let cut = (x as usize >> 3) % (r.len() + 1);
            let r = if i % 3 == 0 { &r[..cut] } else { &r[..] };
            if let Ok(d) = decode(r) {
                let _ = d.to_text();
            }
        }
    }
}
