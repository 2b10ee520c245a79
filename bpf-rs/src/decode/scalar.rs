//! Scalar argument registers -> values, by their parsed [`Render`].

use super::argtype::Render;
use super::value::{Value, sym};
use crate::flags as f;

/// Renders a scalar register. `args` and `slot` are the call's registers and
/// this argument's index (a socket option name reads the level before it).
#[must_use]
pub fn render_scalar(render: Render, raw: u64, args: &[u64; 6], slot: usize) -> Value {
    #[allow(
        clippy::cast_possible_wrap,
        reason = "registers hold C ints: reinterpreting the bits is the point"
    )]
    let as_i32 = i64::from(raw as u32 as i32);
    let r32 = raw & 0xffff_ffff;
    let word = |low32: bool| if low32 { r32 } else { raw };
    match render {
        Render::Int => Value::Int(as_i32),
        Render::Long => Value::Int(raw.cast_signed()),
        Render::Uint => Value::Uint(r32),
        Render::Ulong => Value::Uint(raw),
        // umode_t: 16 bits, printed whole (type bits too) as strace does.
        Render::Mode => Value::Octal(raw & 0xffff),
        Render::SymMode => sym(f::symbolic_mode(raw & 0xffff), raw),
        Render::Dirfd if as_i32 == f::AT_FDCWD => sym("AT_FDCWD", raw),
        Render::Dirfd => Value::Int(as_i32),
        Render::OpenFlags => sym(f::open_flags(r32), raw),
        Render::Bits { table, zero, low32 } => sym(f::bits(word(low32), table, zero), raw),
        Render::Enum { table, low32 } => sym(f::enum_name(word(low32), table), raw),
        Render::Custom { render, low32 } => sym(render(word(low32)), raw),
        Render::SockOptname => {
            let level = slot
                .checked_sub(1)
                .and_then(|i| args.get(i))
                .map_or(1, |l| *l);
            sym(f::sockopt_name(level, raw), raw)
        }
        Render::Ptr => Value::Ptr(raw),
        Render::Hex => Value::Hex(raw),
    }
}
