//! Captured structs -> field-by-field values (timespec, rlimit, open_how, ...).

use super::argtype::StructType;
use super::value::{Value, sym};
use crate::flags as f;

fn le_u64(b: &[u8], off: usize) -> u64 {
    b.get(off..off + 8).map_or(0, |s| {
        u64::from_le_bytes([s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]])
    })
}

fn le_i32(b: &[u8], off: usize) -> Value {
    let v = b
        .get(off..off + 4)
        .map_or(0, |s| i32::from_le_bytes([s[0], s[1], s[2], s[3]]));
    Value::Int(i64::from(v))
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
    if v == u64::MAX {
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
        0 => sym("SIG_DFL", 0),
        1 => sym("SIG_IGN", 1),
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
        T::FdPair if b.len() >= 8 => Value::Struct(vec![
            ("fd0".into(), le_i32(b, 0)),
            ("fd1".into(), le_i32(b, 4)),
        ]),
        // Option values are mostly ints; longer ones stay bytes.
        T::Sockopt if b.len() >= 4 && b[4..].iter().all(|&x| x == 0) => le_i32(b, 0),
        _ => return None,
    })
}
