//! Symbolic names of syscall argument values: flag sets in a fixed,
//! documented order (ascending bit value, multi-bit values first), enums,
//! signal names. Values mirror include/uapi/linux/*.h and
//! include/uapi/asm-generic/*.h for x86_64. Pure; unknown bits are kept as hex.

mod fdflags;
mod fs;
mod mem;
mod names;
mod net;
mod process;
#[cfg(test)]
mod uapi_check;

pub use fdflags::*;
pub use fs::*;
pub use mem::*;
pub use names::*;
pub use net::*;
pub use process::*;

/// Every table of names, by its Rust name: the header check
/// (`uapi_check`) compares each entry with the system headers, and checks
/// that this list names every table of the module.
#[must_use]
pub fn tables() -> &'static [(&'static str, &'static [(u64, &'static str)])] {
    &[
        ("SFD_FLAGS", SFD_FLAGS),
        ("IN_INIT", IN_INIT),
        ("TFD_FLAGS", TFD_FLAGS),
        ("EFD_FLAGS", EFD_FLAGS),
        ("MFD_FLAGS", MFD_FLAGS),
        ("TIMER_FLAGS", TIMER_FLAGS),
        ("EPOLL_OPS", EPOLL_OPS),
        ("EPOLL_CREATE", EPOLL_CREATE),
        ("AT_FLAGS", AT_FLAGS),
        ("AT_ACCESS_FLAGS", AT_ACCESS_FLAGS),
        ("MS_FLAGS", MS_FLAGS),
        ("MNT_FLAGS", MNT_FLAGS),
        ("IN_MASK", IN_MASK),
        ("ACCESS", ACCESS),
        ("WHENCE", WHENCE),
        ("FCNTL", FCNTL),
        ("RENAME_FLAGS", RENAME_FLAGS),
        ("FLOCK_OPS", FLOCK_OPS),
        ("CLOSE_RANGE", CLOSE_RANGE),
        ("XATTR_FLAGS", XATTR_FLAGS),
        ("FALLOC_FLAGS", FALLOC_FLAGS),
        ("STATX_MASK", STATX_MASK),
        ("STATX_ATTRS", STATX_ATTRS),
        ("FADVISE", FADVISE),
        ("O_FLAGS", O_FLAGS),
        ("PROT", PROT),
        ("MAP_FLAGS", MAP_FLAGS),
        ("MREMAP_FLAGS", MREMAP_FLAGS),
        ("MADVISE", MADVISE),
        ("MSYNC_FLAGS", MSYNC_FLAGS),
        ("NAMED", NAMED),
        ("O_ACCESS", O_ACCESS),
        ("MAP_TYPES", MAP_TYPES),
        ("S_TYPES", S_TYPES),
        ("S_SPECIAL", S_SPECIAL),
        ("AT_STATX_SYNC", AT_STATX_SYNC),
        ("EPOLL_EVENTS", EPOLL_EVENTS),
        ("FD_FLAGS", FD_FLAGS),
        ("LOCK_TYPES", LOCK_TYPES),
        ("FAMILIES", FAMILIES),
        ("SOCK_TYPES", SOCK_TYPES),
        ("SOCK_FLAGS", SOCK_FLAGS),
        ("MSG_FLAGS", MSG_FLAGS),
        ("SOCK_LEVELS", SOCK_LEVELS),
        ("SO_NAMES", SO_NAMES),
        ("TCP_NAMES", TCP_NAMES),
        ("IP_NAMES", IP_NAMES),
        ("IPV6_NAMES", IPV6_NAMES),
        ("SHUT_HOW", SHUT_HOW),
        ("CLONE_FLAGS", CLONE_FLAGS),
        ("SIGNALS", SIGNALS),
        ("RLIMITS", RLIMITS),
        ("PTRACE", PTRACE),
        ("CLOCKS", CLOCKS),
        ("BPF_CMDS", BPF_CMDS),
        ("SECCOMP_OPS", SECCOMP_OPS),
        ("WAIT_OPTIONS", WAIT_OPTIONS),
        ("GRND_FLAGS", GRND_FLAGS),
        ("SIGPROCMASK_HOW", SIGPROCMASK_HOW),
        ("PRCTL", PRCTL),
        ("SA_FLAGS", SA_FLAGS),
        ("RUSAGE_WHO", RUSAGE_WHO),
        ("PRIO_WHICH", PRIO_WHICH),
        ("FUTEX_OPS", FUTEX_OPS),
    ]
}

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
