//! Named constants the decoder uses outside the flag tables (AT_FDCWD, open
//! access modes, futex flags, ...), file modes (`S_IFREG|0644`), and the
//! tables of struct fields: epoll events, fcntl arguments, lock types.
//! Every name here is checked against the system headers (see `uapi_check`).

use super::{bits, enum_name};

pub const AT_FDCWD: i64 = -100;
pub const O_ACCMODE: u64 = 3;
pub const O_CREAT: u64 = 0o100;
/// `__O_TMPFILE`: the bit that, with O_DIRECTORY, makes O_TMPFILE.
pub const O_TMPFILE_BIT: u64 = 0o20000000;
pub const S_IFMT: u64 = 0o170000;
/// `S_ISUID | S_ISGID | S_ISVTX`.
pub const S_ISXXX: u64 = 0o7000;
pub const MAP_TYPE: u64 = 0xf;
pub const FUTEX_PRIVATE_FLAG: u64 = 128;
pub const FUTEX_CLOCK_REALTIME: u64 = 256;
pub const FUTEX_CMD_MASK: u64 = !(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME);
/// The kernel's first real-time signal (glibc's SIGRTMIN is a function).
pub const SIGRTMIN: u64 = 32;
pub const SIGRTMAX: u64 = 64;
pub const RLIM64_INFINITY: u64 = u64::MAX;
pub const AT_STATX_SYNC_TYPE: u64 = 0x6000;
pub const SIG_DFL: u64 = 0;
pub const SIG_IGN: u64 = 1;
pub const AF_UNIX: u16 = 1;
pub const AF_INET: u16 = 2;
pub const AF_INET6: u16 = 10;
pub const AF_NETLINK: u16 = 16;

/// Constants named in code, as (value, name), for the header check.
pub const NAMED: &[(u64, &str)] = &[
    (AT_FDCWD.cast_unsigned(), "AT_FDCWD"),
    (O_ACCMODE, "O_ACCMODE"),
    (O_CREAT, "O_CREAT"),
    (O_TMPFILE_BIT, "__O_TMPFILE"),
    (S_IFMT, "S_IFMT"),
    (MAP_TYPE, "MAP_TYPE"),
    (FUTEX_CMD_MASK, "FUTEX_CMD_MASK"),
    (FUTEX_PRIVATE_FLAG, "FUTEX_PRIVATE_FLAG"),
    (FUTEX_CLOCK_REALTIME, "FUTEX_CLOCK_REALTIME"),
    (SIGRTMIN, "SIGRTMIN"),
    (SIGRTMAX, "SIGRTMAX"),
    (RLIM64_INFINITY, "RLIM64_INFINITY"),
    (AT_STATX_SYNC_TYPE, "AT_STATX_SYNC_TYPE"),
    (SIG_DFL, "SIG_DFL"),
    (SIG_IGN, "SIG_IGN"),
    (AF_UNIX as u64, "AF_UNIX"),
    (AF_INET as u64, "AF_INET"),
    (AF_INET6 as u64, "AF_INET6"),
    (AF_NETLINK as u64, "AF_NETLINK"),
    (0, "F_OK"),
    (0, "PROT_NONE"),
];

/// The open(2) access modes (the value of `flags & O_ACCMODE`); strace
/// names the invalid mode 3 O_ACCMODE.
pub const O_ACCESS: &[(u64, &str)] = &[
    (0, "O_RDONLY"),
    (1, "O_WRONLY"),
    (2, "O_RDWR"),
    (3, "O_ACCMODE"),
];

/// Mapping types (the value of `flags & MAP_TYPE`).
pub const MAP_TYPES: &[(u64, &str)] = &[
    (1, "MAP_SHARED"),
    (2, "MAP_PRIVATE"),
    (3, "MAP_SHARED_VALIDATE"),
];

/// File types (the value of `mode & S_IFMT`).
pub const S_TYPES: &[(u64, &str)] = &[
    (0o010000, "S_IFIFO"),
    (0o020000, "S_IFCHR"),
    (0o040000, "S_IFDIR"),
    (0o060000, "S_IFBLK"),
    (0o100000, "S_IFREG"),
    (0o120000, "S_IFLNK"),
    (0o140000, "S_IFSOCK"),
];

/// Set-id and sticky bits, in strace's order.
pub const S_SPECIAL: &[(u64, &str)] = &[
    (0o4000, "S_ISUID"),
    (0o2000, "S_ISGID"),
    (0o1000, "S_ISVTX"),
];

/// statx's synchronisation type (the value of `flags & AT_STATX_SYNC_TYPE`).
pub const AT_STATX_SYNC: &[(u64, &str)] = &[
    (0, "AT_STATX_SYNC_AS_STAT"),
    (0x2000, "AT_STATX_FORCE_SYNC"),
    (0x4000, "AT_STATX_DONT_SYNC"),
];

pub const EPOLL_EVENTS: &[(u64, &str)] = &[
    (0x1, "EPOLLIN"),
    (0x2, "EPOLLPRI"),
    (0x4, "EPOLLOUT"),
    (0x8, "EPOLLERR"),
    (0x10, "EPOLLHUP"),
    (0x20, "EPOLLNVAL"),
    (0x40, "EPOLLRDNORM"),
    (0x80, "EPOLLRDBAND"),
    (0x100, "EPOLLWRNORM"),
    (0x200, "EPOLLWRBAND"),
    (0x400, "EPOLLMSG"),
    (0x2000, "EPOLLRDHUP"),
    (1 << 28, "EPOLLEXCLUSIVE"),
    (1 << 29, "EPOLLWAKEUP"),
    (1 << 30, "EPOLLONESHOT"),
    (1 << 31, "EPOLLET"),
];

/// fcntl F_SETFD/F_GETFD flags.
pub const FD_FLAGS: &[(u64, &str)] = &[(1, "FD_CLOEXEC")];

/// struct flock l_type.
pub const LOCK_TYPES: &[(u64, &str)] = &[(0, "F_RDLCK"), (1, "F_WRLCK"), (2, "F_UNLCK")];

/// `%#x`: `0` for zero, `0x1f` otherwise.
fn c_hex(v: u64) -> String {
    if v == 0 {
        "0".into()
    } else {
        format!("{v:#x}")
    }
}

/// A dev_t as strace prints it: `makedev(0x88, 0x1)` (glibc's encoding).
#[must_use]
pub fn makedev(dev: u64) -> String {
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    format!("makedev({}, {})", c_hex(major), c_hex(minor))
}

/// True for a character or block device's mode.
#[must_use]
pub fn is_device(mode: u64) -> bool {
    let kind = mode & S_IFMT;
    S_TYPES
        .iter()
        .any(|&(v, n)| v == kind && matches!(n, "S_IFCHR" | "S_IFBLK"))
}

/// `%#03o`, as strace prints octal numbers: `0644`, `000`, `007`.
#[must_use]
pub fn octal(v: u64) -> String {
    if v == 0 {
        return "000".into();
    }
    format!("{:0>3}", format!("0{v:o}"))
}

/// A mode as strace prints it for mknod and stat: `S_IFREG|S_ISUID|0755`;
/// an unknown file type prints the whole value in octal.
#[must_use]
pub fn symbolic_mode(v: u64) -> String {
    let kind = v & S_IFMT;
    let mut out = String::new();
    if kind != 0 {
        match S_TYPES.iter().find(|(x, _)| *x == kind) {
            Some((_, name)) => {
                out.push_str(name);
                out.push('|');
            }
            None => return octal(v),
        }
    }
    for (bit, name) in S_SPECIAL {
        if v & bit != 0 {
            out.push_str(name);
            out.push('|');
        }
    }
    out.push_str(&octal(v & !(S_IFMT | S_ISXXX)));
    out
}

/// statx flags: the sync type (`AT_STATX_SYNC_AS_STAT` when 0), then the
/// other AT_* flags.
#[must_use]
pub fn statx_flags(v: u64) -> String {
    let mut s = enum_name(v & AT_STATX_SYNC_TYPE, AT_STATX_SYNC);
    if s.chars().next().is_some_and(|c| c.is_ascii_digit()) {
        s = format!("{:#x}", v & AT_STATX_SYNC_TYPE);
    }
    let rest = v & !AT_STATX_SYNC_TYPE;
    if rest != 0 {
        s.push('|');
        s.push_str(&bits(rest, super::AT_FLAGS, "0"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_as_strace_prints_them() {
        assert_eq!(octal(0o644), "0644");
        assert_eq!(octal(0), "000");
        assert_eq!(octal(7), "007");
        assert_eq!(octal(0o100744), "0100744");
        assert_eq!(symbolic_mode(0o100644), "S_IFREG|0644");
        assert_eq!(symbolic_mode(0o41777), "S_IFDIR|S_ISVTX|0777");
        assert_eq!(symbolic_mode(0o4755), "S_ISUID|0755");
        assert_eq!(symbolic_mode(0o170644), "0170644");
        assert_eq!(statx_flags(0), "AT_STATX_SYNC_AS_STAT");
        assert_eq!(
            statx_flags(0x100),
            "AT_STATX_SYNC_AS_STAT|AT_SYMLINK_NOFOLLOW"
        );
        assert_eq!(statx_flags(0x2000), "AT_STATX_FORCE_SYNC");
        assert_eq!(makedev(0x103), "makedev(0x1, 0x3)");
        assert_eq!(makedev(0), "makedev(0, 0)");
    }
}
