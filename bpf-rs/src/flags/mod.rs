//! Symbolic names of syscall argument values: flag sets in a fixed,
//! documented order (ascending bit value, multi-bit values first), enums,
//! signal names. Values mirror include/uapi/linux/*.h and
//! include/uapi/asm-generic/*.h for x86_64. Pure; unknown bits are kept as hex.

mod fdflags;
mod fs;
mod mem;
mod net;
mod process;

pub use fdflags::*;
pub use fs::*;
pub use mem::*;
pub use net::*;
pub use process::*;

/// `A|B|0x40`: names of the set bits (composite entries first), rest in hex.
#[must_use]
pub fn bits(v: u64, table: &[(u64, &str)], zero: &str) -> String {
    if v == 0 {
        return zero.into();
    }
    let mut out = String::with_capacity(32);
    bits_into(&mut out, v, table);
    out
}

/// Appends the names of the set bits of `v` (non-zero) to `out`, in
/// ascending value order; composite entries (several bits) win over their
/// single bits. Tables hold at most 64 entries.
pub fn bits_into(out: &mut String, v: u64, table: &[(u64, &str)]) {
    let mut rest = v;
    // Indices into `table` of the names to print.
    let mut chosen = 0u64;
    for multi in [true, false] {
        for (i, &(bit, _)) in table.iter().enumerate().take(64) {
            if bit != 0 && (bit & (bit - 1) != 0) == multi && rest & bit == bit {
                chosen |= 1 << i;
                rest &= !bit;
            }
        }
    }
    let mut first = true;
    while chosen != 0 {
        // Few names match: pick the smallest value left each time.
        let mut best = chosen.trailing_zeros() as usize;
        let mut others = chosen & (chosen - 1);
        while others != 0 {
            let i = others.trailing_zeros() as usize;
            if table[i].0 < table[best].0 {
                best = i;
            }
            others &= others - 1;
        }
        chosen &= !(1 << best);
        if !first {
            out.push('|');
        }
        first = false;
        out.push_str(table[best].1);
    }
    if rest != 0 {
        if !first {
            out.push('|');
        }
        let _ = std::fmt::Write::write_fmt(out, format_args!("{rest:#x}"));
    }
}

/// Name of an enum value, or the number.
#[must_use]
pub fn enum_name(v: u64, table: &[(u64, &str)]) -> String {
    table
        .iter()
        .find(|(x, _)| *x == v)
        .map_or_else(|| v.to_string(), |(_, n)| (*n).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_order_and_rest() {
        assert_eq!(bits(0, PROT, "PROT_NONE"), "PROT_NONE");
        assert_eq!(bits(3, PROT, "PROT_NONE"), "PROT_READ|PROT_WRITE");
        assert_eq!(bits(0x10_0003, PROT, ""), "PROT_READ|PROT_WRITE|0x100000");
        // Composite entries first, output in ascending value order.
        let t: &[(u64, &str)] = &[(8, "D"), (1, "A"), (6, "BC"), (2, "B")];
        assert_eq!(bits(0x1f, t, "0"), "A|BC|D|0x10");
        assert_eq!(bits(0x3, t, "0"), "A|B");
        assert_eq!(enum_name(7, &[(7, "SEVEN")]), "SEVEN");
        assert_eq!(enum_name(8, &[(7, "SEVEN")]), "8");
    }
}
