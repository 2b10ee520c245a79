//! Argument types of the syscall table, parsed once when the table loads
//! into what the decoder dispatches on: how a scalar register is shown, or
//! what a capture from user memory holds. Unknown type names render as hex.

use crate::abi;
use crate::flags as f;

/// A symbol table: (value, name) pairs.
pub type Table = &'static [(u64, &'static str)];

/// How a scalar argument register is shown.
#[derive(Clone, Copy, Debug)]
pub enum Render {
    /// Signed 32-bit (int, pid, fd).
    Int,
    /// Signed 64-bit (long, off).
    Long,
    /// Unsigned 32-bit (uint, uid, gid).
    Uint,
    /// Unsigned 64-bit (ulong, size).
    Ulong,
    /// A file mode in octal, whole (`0100644`).
    Mode,
    /// A file mode with its type named (`S_IFREG|0644`), as mknod shows it.
    SymMode,
    /// A directory fd; -100 is AT_FDCWD.
    Dirfd,
    /// open(2) flags: access mode plus flag bits.
    OpenFlags,
    /// Flag bits named from `table` (`zero` when none is set).
    Bits {
        table: Table,
        zero: &'static str,
        low32: bool,
    },
    /// One value named from `table`, or the number.
    Enum { table: Table, low32: bool },
    /// A renderer of its own (signals, clone, mmap, futex, socket types).
    Custom {
        render: fn(u64) -> String,
        low32: bool,
    },
    /// A socket option name, read with the level in the previous argument.
    SockOptname,
    /// An opaque pointer.
    Ptr,
    /// Hexadecimal (also every type the decoder does not know).
    Hex,
}

/// A struct the probe may copy whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StructType {
    Timespec,
    Timeval,
    Itimerspec,
    Itimerval,
    Rlimit,
    OpenHow,
    CloneArgs,
    Sigaction,
    Sigset,
    Pollfd,
    UserCap,
    FdPair,
    EpollEvent,
    SchedAttr,
    Sockopt,
    Utsname,
    /// struct stat (x86_64).
    Stat,
    Statx,
    /// struct flock (fcntl's lock commands).
    Flock,
    /// Captured with the default size, shown as bytes.
    Other,
}

impl StructType {
    #[must_use]
    pub fn parse(name: &str) -> Self {
        match name.trim() {
            "timespec" => Self::Timespec,
            "timeval" => Self::Timeval,
            "itimerspec" => Self::Itimerspec,
            "itimerval" => Self::Itimerval,
            "rlimit" => Self::Rlimit,
            "open_how" => Self::OpenHow,
            "clone_args" => Self::CloneArgs,
            "sigaction" => Self::Sigaction,
            "sigset" => Self::Sigset,
            "pollfd" => Self::Pollfd,
            "user_cap" => Self::UserCap,
            "fd_pair" => Self::FdPair,
            "epoll_event" => Self::EpollEvent,
            "sched_attr" => Self::SchedAttr,
            "sockopt" => Self::Sockopt,
            "utsname" => Self::Utsname,
            "stat" => Self::Stat,
            "statx" => Self::Statx,
            "flock" => Self::Flock,
            _ => Self::Other,
        }
    }

    /// Size on x86_64, `None` for [`StructType::Other`].
    #[must_use]
    pub fn size(self) -> Option<u16> {
        Some(match self {
            Self::Timespec | Self::Timeval | Self::Rlimit => 16,
            Self::Itimerspec | Self::Itimerval | Self::Sigaction => 32,
            Self::OpenHow => 24,
            Self::CloneArgs => 88,
            Self::Sigset | Self::Pollfd | Self::UserCap | Self::FdPair => 8,
            Self::EpollEvent => 12,
            Self::SchedAttr => 56,
            Self::Sockopt => 64,
            Self::Utsname => 390,
            Self::Stat => 144,
            Self::Statx => 256,
            Self::Flock => 32,
            Self::Other => return None,
        })
    }
}

/// What the probe captures from user memory for an argument. `len_arg` is
/// the index of the argument holding the length (`abi::NO_LEN_ARG`: none).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Captured {
    Str,
    Strv,
    StrOut,
    BufIn {
        len_arg: u8,
    },
    BufOut,
    SockaddrIn {
        len_arg: u8,
    },
    SockaddrOut {
        len_arg: u8,
    },
    StructIn(StructType),
    StructInLen(StructType, u8),
    StructOut(StructType),
    StructOutLenptr(StructType, u8),
    /// `ret` structs at exit (epoll_wait's events).
    ArrayOut(StructType),
    MsghdrIn,
    MsghdrOut,
}

impl Captured {
    /// The struct a struct capture holds.
    #[must_use]
    pub fn struct_type(self) -> Option<StructType> {
        match self {
            Self::StructIn(t)
            | Self::StructInLen(t, _)
            | Self::StructOut(t)
            | Self::StructOutLenptr(t, _)
            | Self::ArrayOut(t) => Some(t),
            _ => None,
        }
    }
}

/// The type of one argument.
#[derive(Clone, Copy, Debug)]
pub enum ArgType {
    Scalar(Render),
    Capture(Captured),
}

fn len_arg(params: &[&str], i: usize) -> u8 {
    params
        .get(i)
        .and_then(|p| p.trim().parse::<u8>().ok())
        .filter(|&n| usize::from(n) < abi::NARGS)
        .unwrap_or(abi::NO_LEN_ARG)
}

const fn bits(table: Table, zero: &'static str, low32: bool) -> Render {
    Render::Bits { table, zero, low32 }
}

const fn enum_of(table: Table) -> Render {
    Render::Enum {
        table,
        low32: false,
    }
}

impl ArgType {
    /// The type named `ty` with its parameters, for an argument of
    /// `syscall` (a few types read differently in some calls).
    #[must_use]
    pub fn parse(ty: &str, params: &[&str], syscall: &str) -> Self {
        let st = |i: usize| {
            params
                .get(i)
                .map_or(StructType::Other, |p| StructType::parse(p))
        };
        let cap = match ty {
            "str" => Some(Captured::Str),
            "strv" => Some(Captured::Strv),
            "str_out" => Some(Captured::StrOut),
            "buf_in" => Some(Captured::BufIn {
                len_arg: len_arg(params, 0),
            }),
            "buf_out" => Some(Captured::BufOut),
            "sockaddr_in" => Some(Captured::SockaddrIn {
                len_arg: len_arg(params, 0),
            }),
            "sockaddr_out" => Some(Captured::SockaddrOut {
                len_arg: len_arg(params, 0),
            }),
            "struct_in" => Some(Captured::StructIn(st(0))),
            "struct_in_len" => Some(Captured::StructInLen(st(0), len_arg(params, 1))),
            "struct_out" => Some(Captured::StructOut(st(0))),
            "struct_out_lenptr" => Some(Captured::StructOutLenptr(st(0), len_arg(params, 1))),
            "struct_array_out" => Some(Captured::ArrayOut(st(0))),
            "msghdr_in" => Some(Captured::MsghdrIn),
            "msghdr_out" => Some(Captured::MsghdrOut),
            _ => None,
        };
        cap.map_or_else(|| Self::Scalar(render(ty, syscall)), Self::Capture)
    }
}

fn render(ty: &str, syscall: &str) -> Render {
    let custom = |render, low32| Render::Custom { render, low32 };
    match ty {
        "int" | "pid" | "fd" => Render::Int,
        "long" | "off" => Render::Long,
        "uint" | "uid" | "gid" => Render::Uint,
        "ulong" | "size" => Render::Ulong,
        "mode" if matches!(syscall, "mknod" | "mknodat") => Render::SymMode,
        "mode" => Render::Mode,
        "dirfd" => Render::Dirfd,
        // dup3 and memfd_secret take only O_CLOEXEC-style bits, no access mode.
        "open_flags" if matches!(syscall, "dup3" | "memfd_secret") => bits(f::O_FLAGS, "0", true),
        "pipe_flags" => bits(f::O_FLAGS, "0", true),
        "open_flags" => Render::OpenFlags,
        "statx_mask" => bits(f::STATX_MASK, "0", true),
        "fadvise_advice" => Render::Enum {
            table: f::FADVISE,
            low32: true,
        },
        "rusage_who" => Render::Enum {
            table: f::RUSAGE_WHO,
            low32: true,
        },
        "prio_which" => Render::Enum {
            table: f::PRIO_WHICH,
            low32: true,
        },
        // faccessat2: 0x200 is AT_EACCESS there, AT_REMOVEDIR elsewhere.
        "at_flags" if syscall.starts_with("faccessat") => bits(f::AT_ACCESS_FLAGS, "0", true),
        "at_flags" if syscall == "statx" => custom(f::statx_flags, true),
        "at_flags" => bits(f::AT_FLAGS, "0", true),
        "access_mode" => bits(f::ACCESS, "F_OK", false),
        "sock_domain" => enum_of(f::FAMILIES),
        "sock_type" => custom(f::sock_type, false),
        "accept_flags" => bits(f::SOCK_FLAGS, "0", false),
        "sock_level" => enum_of(f::SOCK_LEVELS),
        "sock_optname" => Render::SockOptname,
        "msg_flags" => bits(f::MSG_FLAGS, "0", true),
        "prot" => bits(f::PROT, "PROT_NONE", false),
        "map_flags" => custom(f::map_flags, false),
        "mremap_flags" => bits(f::MREMAP_FLAGS, "0", false),
        "madvise" => enum_of(f::MADVISE),
        "mount_flags" => bits(f::MS_FLAGS, "0", false),
        "umount_flags" => bits(f::MNT_FLAGS, "0", false),
        "clone_flags" => custom(f::clone_flags, false),
        "unshare_flags" | "setns_nstype" => bits(f::CLONE_FLAGS, "0", false),
        "signal" => custom(f::signal, true),
        "inotify_mask" => bits(f::IN_MASK, "0", true),
        "inotify_init_flags" => bits(f::IN_INIT, "0", false),
        "tfd_flags" => bits(f::TFD_FLAGS, "0", false),
        "timer_flags" => bits(f::TIMER_FLAGS, "0", false),
        "eventfd_flags" => bits(f::EFD_FLAGS, "0", false),
        "signalfd_flags" => bits(f::SFD_FLAGS, "0", false),
        "epoll_create_flags" => bits(f::EPOLL_CREATE, "0", false),
        "memfd_flags" => bits(f::MFD_FLAGS, "0", false),
        "rlimit_resource" => enum_of(f::RLIMITS),
        "ptrace_request" => enum_of(f::PTRACE),
        "clockid" => enum_of(f::CLOCKS),
        "whence" => enum_of(f::WHENCE),
        "fcntl_cmd" => enum_of(f::FCNTL),
        "bpf_cmd" => enum_of(f::BPF_CMDS),
        "seccomp_op" => enum_of(f::SECCOMP_OPS),
        "renameat2_flags" => bits(f::RENAME_FLAGS, "0", false),
        "wait_options" => bits(f::WAIT_OPTIONS, "0", false),
        "getrandom_flags" => bits(f::GRND_FLAGS, "0", false),
        "flock_op" => bits(f::FLOCK_OPS, "0", false),
        "epoll_op" => enum_of(f::EPOLL_OPS),
        "shut_how" => enum_of(f::SHUT_HOW),
        "sigprocmask_how" => enum_of(f::SIGPROCMASK_HOW),
        "prctl_option" => enum_of(f::PRCTL),
        "close_range_flags" => bits(f::CLOSE_RANGE, "0", false),
        "xattr_flags" => bits(f::XATTR_FLAGS, "0", false),
        "fallocate_mode" => bits(f::FALLOC_FLAGS, "0", false),
        "msync_flags" => bits(f::MSYNC_FLAGS, "0", false),
        "futex_op" => custom(f::futex_op, false),
        "dev" => custom(f::makedev, true),
        "ptr" => Render::Ptr,
        _ => Render::Hex,
    }
}
