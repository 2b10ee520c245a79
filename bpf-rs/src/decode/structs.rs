//! Captured structs -> field-by-field values (timespec, rlimit, open_how, ...).

use super::argtype::StructType;
use super::value::{Value, sym};
use crate::flags as f;

fn le_u64(b: &[u8], off: usize) -> u64 {
    b.get(off..off + 8).map_or(0, |s| {
        u64::from_le_bytes([s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]])
    })
}

fn le_u32(b: &[u8], off: usize) -> u64 {
    b.get(off..off + 4).map_or(0, |s| {
        u64::from(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    })
}

fn le_u16(b: &[u8], off: usize) -> u64 {
    b.get(off..off + 2)
        .map_or(0, |s| u64::from(u16::from_le_bytes([s[0], s[1]])))
}

fn le_i32(b: &[u8], off: usize) -> Value {
    let v = b
        .get(off..off + 4)
        .map_or(0, |s| i32::from_le_bytes([s[0], s[1], s[2], s[3]]));
    Value::Int(i64::from(v))
}

fn mode_field(name: &str, mode: u64) -> (String, Value) {
    (name.into(), sym(f::symbolic_mode(mode), mode))
}

/// struct stat, as strace abbreviates it: the mode, then the device of a
/// device node or the size of anything else.
fn stat(b: &[u8]) -> Value {
    let mode = le_u32(b, 24);
    let last = if f::is_device(mode) {
        let dev = le_u64(b, 40);
        ("st_rdev".into(), sym(f::makedev(dev), dev))
    } else {
        ("st_size".into(), Value::Int(le_u64(b, 48).cast_signed()))
    };
    Value::Struct(vec![mode_field("st_mode", mode), last])
}

/// struct statx, as strace abbreviates it.
fn statx(b: &[u8]) -> Value {
    Value::Struct(vec![
        flag_field("stx_mask", le_u32(b, 0), |v| f::bits(v, f::STATX_MASK, "0")),
        flag_field("stx_attributes", le_u64(b, 8), |v| {
            f::bits(v, f::STATX_ATTRS, "0")
        }),
        mode_field("stx_mode", le_u16(b, 28)),
        ("stx_size".into(), Value::Uint(le_u64(b, 40))),
    ])
}

fn epoll_event(b: &[u8], off: usize) -> Value {
    let data = le_u64(b, off + 4);
    Value::Struct(vec![
        flag_field("events", le_u32(b, off), |v| {
            f::bits(v, f::EPOLL_EVENTS, "0")
        }),
        (
            "data".into(),
            Value::Struct(vec![
                ("u32".into(), Value::Uint(data & 0xffff_ffff)),
                ("u64".into(), Value::Uint(data)),
            ]),
        ),
    ])
}

fn flock(b: &[u8]) -> Value {
    Value::Struct(vec![
        flag_field("l_type", le_u16(b, 0), |v| f::enum_name(v, f::LOCK_TYPES)),
        flag_field("l_whence", le_u16(b, 2), |v| f::enum_name(v, f::WHENCE)),
        ("l_start".into(), Value::Int(le_u64(b, 8).cast_signed())),
        ("l_len".into(), Value::Int(le_u64(b, 16).cast_signed())),
    ])
}

/// fcntl's third argument by command: a number, FD_CLOEXEC, open flags, a
/// signal, a lock type, or (for the lock commands) the captured struct flock.
#[must_use]
pub fn fcntl_arg(cmd: u64, raw: u64, flock_bytes: Option<&[u8]>) -> Value {
    #[allow(
        clippy::cast_possible_wrap,
        reason = "the argument is a C int for these commands"
    )]
    let int = Value::Int(i64::from(raw as u32 as i32));
    let name = f::enum_name(cmd & 0xffff_ffff, f::FCNTL);
    match name.as_str() {
        "F_DUPFD" | "F_DUPFD_CLOEXEC" | "F_SETOWN" | "F_SETPIPE_SZ" => int,
        "F_SETFD" => sym(f::bits(raw & 0xffff_ffff, f::FD_FLAGS, "0"), raw),
        "F_SETFL" => sym(f::open_flags(raw & 0xffff_ffff).into_owned(), raw),
        "F_SETSIG" => sym(f::signal(raw & 0xffff_ffff), raw),
        "F_SETLEASE" => sym(f::enum_name(raw & 0xffff_ffff, f::LOCK_TYPES), raw),
        "F_GETLK" | "F_SETLK" | "F_SETLKW" | "F_OFD_GETLK" | "F_OFD_SETLK" | "F_OFD_SETLKW" => {
            match flock_bytes {
                Some(b) if b.len() >= 24 => flock(b),
                _ => Value::Ptr(raw),
            }
        }
        _ => Value::Hex(raw),
    }
}

/// The structs of an array capture; `truncated`: the capture was cut.
#[must_use]
pub fn decode_array(ty: StructType, b: &[u8], truncated: bool) -> Option<Value> {
    let size = usize::from(ty.size()?);
    if ty != StructType::EpollEvent {
        return None;
    }
    let items = (0..b.len() / size)
        .map(|i| epoll_event(b, i * size))
        .collect();
    Some(Value::List {
        items,
        truncated: truncated || !b.len().is_multiple_of(size),
    })
}

fn timespec_at(b: &[u8], off: usize) -> Value {
    Value::Struct(vec![
        ("tv_sec".into(), Value::Int(le_u64(b, off).cast_signed())),
        (
            "tv_nsec".into(),
            Value::Int(le_u64(b, off + 8).cast_signed()),
        ),
    ])
}

fn rlim(v: u64) -> Value {
    if v == f::RLIM64_INFINITY {
        sym("RLIM64_INFINITY", v)
    } else {
        Value::Uint(v)
    }
}

fn flag_field(name: &str, v: u64, render: impl Fn(u64) -> String) -> (String, Value) {
    (name.into(), sym(render(v), v))
}

fn sigaction(b: &[u8]) -> Value {
    let h = match le_u64(b, 0) {
        f::SIG_DFL => sym("SIG_DFL", f::SIG_DFL),
        f::SIG_IGN => sym("SIG_IGN", f::SIG_IGN),
        v => Value::Ptr(v),
    };
    Value::Struct(vec![
        ("sa_handler".into(), h),
        flag_field("sa_flags", le_u64(b, 8), |v| f::bits(v, f::SA_FLAGS, "0")),
        ("sa_restorer".into(), Value::Ptr(le_u64(b, 16))),
        ("sa_mask".into(), Value::Hex(le_u64(b, 24))),
    ])
}

fn clone_args(b: &[u8]) -> Value {
    Value::Struct(vec![
        flag_field("flags", le_u64(b, 0), |v| f::bits(v, f::CLONE_FLAGS, "0")),
        ("pidfd".into(), Value::Ptr(le_u64(b, 8))),
        ("child_tid".into(), Value::Ptr(le_u64(b, 16))),
        ("parent_tid".into(), Value::Ptr(le_u64(b, 24))),
        flag_field("exit_signal", le_u64(b, 32), f::signal),
        ("stack".into(), Value::Ptr(le_u64(b, 40))),
        ("stack_size".into(), Value::Uint(le_u64(b, 48))),
        ("tls".into(), Value::Ptr(le_u64(b, 56))),
    ])
}

/// Field-by-field value of a captured struct, if its type is known and the
/// capture holds all of it.
#[must_use]
pub fn decode_struct(ty: StructType, b: &[u8]) -> Option<Value> {
    use StructType as T;
    Some(match ty {
        T::Timespec | T::Timeval if b.len() >= 16 => timespec_at(b, 0),
        T::Itimerspec | T::Itimerval if b.len() >= 32 => Value::Struct(vec![
            ("it_interval".into(), timespec_at(b, 0)),
            ("it_value".into(), timespec_at(b, 16)),
        ]),
        T::Rlimit if b.len() >= 16 => Value::Struct(vec![
            ("rlim_cur".into(), rlim(le_u64(b, 0))),
            ("rlim_max".into(), rlim(le_u64(b, 8))),
        ]),
        T::OpenHow if b.len() >= 24 => Value::Struct(vec![
            flag_field("flags", le_u64(b, 0), |v| f::open_flags(v).into_owned()),
            ("mode".into(), Value::Octal(le_u64(b, 8))),
            ("resolve".into(), Value::Hex(le_u64(b, 16))),
        ]),
        T::CloneArgs if b.len() >= 64 => clone_args(b),
        T::Sigaction if b.len() >= 32 => sigaction(b),
        T::Sigset if b.len() >= 8 => Value::Hex(le_u64(b, 0)),
        T::Stat if b.len() >= 64 => stat(b),
        T::Statx if b.len() >= 48 => statx(b),
        T::EpollEvent if b.len() >= 12 => epoll_event(b, 0),
        T::Flock if b.len() >= 24 => flock(b),
        T::FdPair if b.len() >= 8 => Value::Struct(vec![
            ("fd0".into(), le_i32(b, 0)),
            ("fd1".into(), le_i32(b, 4)),
        ]),
        // Option values are mostly ints; longer ones stay bytes.
        T::Sockopt if b.len() >= 4 && b[4..].iter().all(|&x| x == 0) => le_i32(b, 0),
        _ => return None,
    })
}
