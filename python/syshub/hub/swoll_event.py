"""swoll's event JSON as an output format: ``TraceEvent.to_dict(style="swoll")``.

:func:`swoll_document` writes the document swoll's ``event.TraceEvent`` marshals to, so a
consumer written for swoll (its Go ``UnmarshalJSON``, or code reading its JSON lines) reads
ours unchanged. The shape (facts from swoll's ``pkg/event`` and ``pkg/event/call``):

* ``syscall`` {nr, name ``sys_x``, class, group}; ``pid`` is the THREAD id and ``tid`` the
  PROCESS id (tgid), host view, as swoll named them; ``container_pid`` the process id inside
  its pid namespace; ``uid``, ``gid``, ``comm``, ``session``; ``container`` (swoll's keys,
  empty ones omitted; null when unknown); ``error`` (``"OK"``, ``"ENOENT"``, ... and
  ``"UNK"`` for numbers swoll has no name for); ``return``; ``pid_ns``, ``uts_ns``,
  ``mount_ns``; ``start``, ``finish`` (monotonic ns);
* ``args``: for the 59 syscalls swoll decodes (:data:`SWOLL_DECODED`), its decoder struct's
  JSON: its key names (``dir_fd``, ``pathname``, ``Saddr``, ``FD``, ...), flag lists
  (``["O_RDONLY"]``, ``["SOCK_STREAM", "SOCK_CLOEXEC"]``), socket addresses as
  ``{"Family", "Data", "decoded"}``, byte buffers as base64 (Go ``[]byte``), numbers cut to
  the width of swoll's Go field (a Go consumer could not read a wider one);
* ``args`` for any other syscall (swoll has no decoder; swoll itself failed on them): swoll's
  generic ``Function`` form ``{"name": "fcntl", "args": [{"name", "type", "val"}, ...],
  "ret": null}`` with our argument names, our type names and our decoded values.

Where swoll's output was a defect it is not reproduced (docs/trace-spec.md lists them):
``return`` is the signed 64-bit result (swoll's was truncated to 32 bits), IPv6 ports are in
host order, execve's ``argv`` holds argv[0..3] (swoll lost argv[0]), values swoll read from
uncaptured memory (mprotect ``addr_data``, syslog ``buf``, init_module ``name``, seccomp
``args``) are empty. A call that did not return to the program has ``return`` 0, ``error``
``"UNK"`` and an extra ``"returned": false``. A buffer holding invalid UTF-8 is written as
base64 of its UTF-8 rendering (replacement characters), as our own JSON does.
"""

from __future__ import annotations

import base64
import ipaddress
import re
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

from syshub import syscalls

if TYPE_CHECKING:
    from syshub.hub.events import TraceEvent

__all__ = ["SWOLL_DECODED", "swoll_args", "swoll_document"]

_M32: Final = (1 << 32) - 1
_M64: Final = (1 << 64) - 1

# Errno names swoll knows (pkg/types/errno.go): Linux numbers 1..133 except 41 and 58, and
# ERESTARTSYS; other numbers are "UNK".
_ERRNO: Final = (  # noqa: SIM905 (a table, one word per entry)
    "OK EPERM ENOENT ESRCH EINTR EIO ENXIO E2BIG ENOEXEC EBADF ECHILD EAGAIN ENOMEM EACCES "
    "EFAULT ENOTBLK EBUSY EEXIST EXDEV ENODEV ENOTDIR EISDIR EINVAL ENFILE EMFILE ENOTTY "
    "ETXTBSY EFBIG ENOSPC ESPIPE EROFS EMLINK EPIPE EDOM ERANGE EDEADLK ENAMETOOLONG ENOLCK "
    "ENOSYS ENOTEMPTY ELOOP - ENOMSG EIDRM ECHRNG EL2NSYNC EL3HLT EL3RST ELNRNG EUNATCH "
    "ENOCSI EL2HLT EBADE EBADR EXFULL ENOANO EBADRQC EBADSLT - EBFONT ENOSTR ENODATA ETIME "
    "ENOSR ENONET ENOPKG EREMOTE ENOLINK EADV ESRMNT ECOMM EPROTO EMULTIHOP EDOTDOT EBADMSG "
    "EOVERFLOW ENOTUNIQ EBADFD EREMCHG ELIBACC ELIBBAD ELIBSCN ELIBMAX ELIBEXEC EILSEQ "
    "ERESTART ESTRPIPE EUSERS ENOTSOCK EDESTADDRREQ EMSGSIZE EPROTOTYPE ENOPROTOOPT "
    "EPROTONOSUPPORT ESOCKTNOSUPPORT EOPNOTSUPP EPFNOSUPPORT EAFNOSUPPORT EADDRINUSE "
    "EADDRNOTAVAIL ENETDOWN ENETUNREACH ENETRESET ECONNABORTED ECONNRESET ENOBUFS EISCONN "
    "ENOTCONN ESHUTDOWN ETOOMANYREFS ETIMEDOUT ECONNREFUSED EHOSTDOWN EHOSTUNREACH EALREADY "
    "EINPROGRESS ESTALE EUCLEAN ENOTNAM ENAVAIL EISNAM EREMOTEIO EDQUOT ENOMEDIUM "
    "EMEDIUMTYPE ECANCELED ENOKEY EKEYEXPIRED EKEYREVOKED EKEYREJECTED EOWNERDEAD "
    "ENOTRECOVERABLE ERFKILL EHWPOISON"
).split()
_ERESTARTSYS: Final = 512

# Flag tables of swoll's Go types, Linux x86_64 values. A flag is listed when any of its bits
# is set (swoll's test: flag & value != 0), in this order.
_Flags = tuple[tuple[str, int], ...]
_OPEN: Final[_Flags] = (
    ("O_WRONLY", 0x1), ("O_RDWR", 0x2), ("O_CREAT", 0x40), ("O_EXCL", 0x80),
    ("O_NOCTTY", 0x100), ("O_TRUNC", 0x200), ("O_APPEND", 0x400), ("O_NONBLOCK", 0x800),
    ("O_DSYNC", 0x1000), ("O_ASYNC", 0x2000), ("O_DIRECT", 0x4000), ("O_DIRECTORY", 0x10000),
    ("O_NOFOLLOW", 0x20000), ("O_NOATIME", 0x40000), ("O_CLOEXEC", 0x80000),
    ("O_SYNC", 0x101000),
)  # fmt: skip
_ACCEPT: Final[_Flags] = (("SOCK_NONBLOCK", 0x800), ("SOCK_CLOEXEC", 0x80000))
_MSG: Final[_Flags] = (
    ("MSG_OOB", 0x1), ("MSG_PEEK", 0x2), ("MSG_TRUNC", 0x20), ("MSG_DONTWAIT", 0x40),
    ("MSG_WAITALL", 0x100), ("MSG_ERRQUEUE", 0x2000), ("MSG_NOSIGNAL", 0x4000),
    ("MSG_CMSG_CLOEXEC", 0x40000000),
)  # fmt: skip
_TFD: Final[_Flags] = (
    ("TFD_TIMER_ABSTIME", 0x1), ("TFD_TIMER_CANCEL_ON_SET", 0x2), ("TFD_NONBLOCK", 0x800),
    ("TFD_CLOEXEC", 0x80000),
)  # fmt: skip
_UMOUNT: Final[_Flags] = (("MNT_FORCE", 0x1), ("MNT_DETACH", 0x2), ("MNT_EXPIRE", 0x4))
_MS_NAMES: Final = (  # noqa: SIM905 (a table, one word per entry)
    "RDONLY NOSUID NODEV NOEXEC SYNCHRONOUS REMOUNT MANDLOCK DIRSYNC - - NOATIME NODIRATIME "
    "BIND MOVE REC VERBOSE POSIXACL UNBINDABLE PRIVATE SLAVE SHARED RELATIME KERNMOUNT "
    "I_VERSION STRICTATIME LAZYTIME SUBMOUNT NOREMOTELOCK NOSEC BORN ACTIVE NOUSER"
).split()
_MOUNT: Final[_Flags] = tuple((f"MS_{n}", 1 << i) for i, n in enumerate(_MS_NAMES) if n != "-")
_INOTIFY: Final[_Flags] = (
    ("IN_ACCESS", 0x1), ("IN_MODIFY", 0x2), ("IN_ATTRIB", 0x4), ("IN_CLOSE_WRITE", 0x8),
    ("IN_CLOSE_NOWRITE", 0x10), ("IN_OPEN", 0x20), ("IN_MOVED_FROM", 0x40),
    ("IN_MOVED_TO", 0x80), ("IN_CREATE", 0x100), ("IN_DELETE", 0x200),
    ("IN_DELETE_SELF", 0x400), ("IN_MOVE_SELF", 0x800), ("IN_ONLYDIR", 0x1000000),
    ("IN_DONT_FOLLOW", 0x2000000), ("IN_EXCL_UNLINK", 0x4000000), ("IN_MASK_ADD", 0x20000000),
    ("IN_ONESHOT", 0x80000000),
)  # fmt: skip
_IN_ALL_EVENTS: Final = 0xFFF
# Enumerations swoll writes by name (a number it does not know is written as its digits).
_FAMILIES: Final = {
    1: "AF_UNIX", 2: "AF_INET", 3: "AF_AX25", 4: "AF_IPX", 5: "AF_APPLETALK", 7: "AF_BRIDGE",
    8: "AF_ATMPVC", 10: "AF_INET6", 12: "AF_DECnet", 13: "AF_NETBEUI", 15: "AF_KEY",
    16: "AF_NETLINK", 17: "AF_PACKET", 18: "AF_ASH", 19: "AF_ECONET", 20: "AF_ATMSVC",
    23: "AF_IRDA", 27: "AF_IB", 28: "AF_MPLS", 29: "AF_CAN", 30: "AF_TIPC", 31: "AF_BLUETOOTH",
    34: "AF_ISDN", 37: "AF_CAIF", 38: "AF_ALG", 40: "AF_VSOCK", 41: "AF_KCM", 44: "AF_XDP",
}  # fmt: skip
_PROTOCOLS: Final = {
    0: "IP", 1: "ICMP", 2: "IGMP", 4: "IPIP", 6: "TCP", 8: "EGP", 17: "UDP", 22: "IDP",
    29: "TP", 33: "DCCP", 41: "IPV6", 43: "ROUTING", 44: "FRAGMENT", 46: "RSVP", 47: "GRE",
    50: "ESP", 51: "AH", 58: "ICMPV6", 59: "NONE", 60: "DSTOPTS", 92: "MTP", 98: "ENCAP",
    108: "COMP", 132: "SCTP", 136: "UDPLITE", 255: "RAW",
}  # fmt: skip
_LEVELS: Final = {
    0: "SOL_IP", 1: "SOL_SOCKET", 6: "SOL_TCP", 41: "SOL_IPV6", 58: "SOL_ICMPV6",
    255: "SOL_RAW", 261: "SOL_DECNET", 262: "SOL_X25", 263: "SOL_PACKET", 264: "SOL_ATM",
    265: "SOL_AAL", 266: "SOL_IRDA",
}  # fmt: skip
_SOCK_TYPES: Final = {1: "STREAM", 2: "DGRAM", 3: "RAW", 4: "RDM", 5: "SEQPACKET", 10: "PACKET"}
_RLIMITS: Final = (  # noqa: SIM905 (a table, one word per entry)
    "CPU FSIZE DATA STACK CORE RSS NPROC NOFILE MEMLOCK AS LOCKS SIGPENDING MSGQUEUE NICE "
    "RTPRIO RTTIME"
).split()
_OPTNAME_RE: Final = re.compile(r"(SO|TCP|IP|IPV6)_[A-Z0-9_]+")
_STAT_FIELDS: Final = ("Dev", "Ino", "Nlink", "Mode", "Uid", "Gid", "X__pad0", "Rdev", "Size")
_STAT_TAIL: Final = ("Blksize", "Blocks")


def _signed(v: int, bits: int) -> int:
    v &= (1 << bits) - 1
    return v - (1 << bits) if v >> (bits - 1) else v


def _flag_list(value: int, table: _Flags, zero: str | None = None) -> list[str]:
    if value == 0 and zero is not None:
        return [zero]
    return [name for name, bits in table if value & bits]


def _go_bytes(data: bytes | None) -> str | None:
    """Go's JSON of a ``[]byte``: base64 (null for a nil slice)."""
    return None if data is None else base64.b64encode(data).decode("ascii")


def _timespec(v: object) -> dict[str, int]:
    d = v if isinstance(v, Mapping) else {}
    return {"Sec": _int(d.get("tv_sec")), "Nsec": _int(d.get("tv_nsec"))}


def _int(v: object) -> int:
    return v if isinstance(v, int) and not isinstance(v, bool) else 0


def _rlimit(v: object) -> dict[str, int]:
    d = v if isinstance(v, Mapping) else {}

    def one(x: object) -> int:
        return _M64 if x == "RLIM64_INFINITY" else _int(x)

    return {"Cur": one(d.get("rlim_cur")), "Max": one(d.get("rlim_max"))}


_MODE_BITS: Final = {
    "S_IFSOCK": 0o140000, "S_IFLNK": 0o120000, "S_IFREG": 0o100000, "S_IFBLK": 0o60000,
    "S_IFDIR": 0o40000, "S_IFCHR": 0o20000, "S_IFIFO": 0o10000, "S_ISUID": 0o4000,
    "S_ISGID": 0o2000, "S_ISVTX": 0o1000,
}  # fmt: skip


def _mode(v: object) -> int:
    """A file mode from our decoded text (``"S_IFREG|0644"``, ``"0755"``) or number."""
    if not isinstance(v, str):
        return _int(v)
    total = 0
    for part in v.split("|"):
        part = part.strip()
        if part in _MODE_BITS:
            total |= _MODE_BITS[part]
        elif re.fullmatch(r"0[0-7]*", part):
            total |= int(part, 8)
    return total


def _stat(v: object) -> dict[str, Any]:
    """Go's ``syscall.Stat_t`` (amd64) from a decoded stat struct (zeros where unknown: the
    decoder keeps strace's abbreviation, the mode and the size)."""
    d = v if isinstance(v, Mapping) else {}

    def field(name: str) -> int:
        value = d.get(f"st_{name.lower()}")
        return _mode(value) if name == "Mode" else _int(value)

    def when(name: str) -> dict[str, int]:
        t = d.get(f"st_{name}")
        if isinstance(t, Mapping):
            return _timespec(t)
        return {"Sec": _int(t), "Nsec": _int(d.get(f"st_{name}_nsec"))}

    out: dict[str, Any] = {k: field(k) for k in _STAT_FIELDS}
    out["X__pad0"] = 0
    out.update({k: field(k) for k in _STAT_TAIL})
    out.update({"Atim": when("atime"), "Mtim": when("mtime"), "Ctim": when("ctime")})
    out["X__unused"] = [0, 0, 0]
    return out


def _sockaddr(v: object) -> dict[str, Any] | None:
    """swoll's ``SockAddr`` JSON: ``{"Family", "Data" (14 signed bytes), "decoded"}``."""
    if not isinstance(v, Mapping) or "family" not in v:
        return None
    fam = v["family"]
    port = _int(v.get("port"))
    data = b""
    decoded = ""
    if fam == "AF_INET":
        family, addr = 2, bytes(int(x) for x in str(v.get("addr", "0.0.0.0")).split("."))
        data = port.to_bytes(2, "big") + addr
        decoded = f"ipv4:{'.'.join(str(b) for b in addr)}:{port}"
    elif fam == "AF_INET6":
        family, addr = 10, ipaddress.IPv6Address(str(v.get("addr", "::"))).packed
        data = port.to_bytes(2, "big") + _int(v.get("flowinfo")).to_bytes(4, "big") + addr
        groups = ":".join(addr[i : i + 2].hex() for i in range(0, 16, 2))
        decoded = f"ipv6:{groups}:{port}"
    elif fam == "AF_UNIX":
        family, path = 1, str(v.get("path", ""))
        if v.get("abstract"):
            data, path = b"\0" + path.removeprefix("@").encode(), ""
        else:
            data = path.encode()
        decoded = f"unix:{path}:0"
    elif fam == "AF_NETLINK":
        family = 16
        data = b"\0\0" + _int(v.get("pid")).to_bytes(4, "little")
        data += _int(v.get("groups")).to_bytes(4, "little")
        decoded = "16:0"
    else:
        family = _int(fam)
        raw = v.get("data")
        data = raw if isinstance(raw, bytes) else b""
    signed = [_signed(b, 8) for b in (data + bytes(14))[:14]]
    if not decoded:  # Go's "%v" of the [14]int8 for AF_UNSPEC, the bare family otherwise
        decoded = f"unspec:[{' '.join(map(str, signed))}]:0" if family == 0 else f"{family}:0"
    return {"Family": family, "Data": signed, "decoded": decoded}


class _Args:
    """One event's arguments as swoll's decoders read them: raw registers cut to a Go width,
    captured strings, buffers, socket addresses and structs."""

    def __init__(self, ev: TraceEvent) -> None:
        self.ev = ev
        self.raw: Sequence[int] = ev.raw_args
        self.args: Mapping[str, Any] = ev.args

    def i32(self, i: int) -> int:
        return _signed(self.raw[i], 32)

    def u32(self, i: int) -> int:
        return self.raw[i] & _M32

    def i64(self, i: int) -> int:
        return _signed(self.raw[i], 64)

    def u64(self, i: int) -> int:
        return self.raw[i] & _M64

    def text(self, name: str) -> str:
        v = self.args.get(name)
        if isinstance(v, Mapping):  # a buffer holding a string (getcwd)
            v = v.get("data")
        return v.split("\0", 1)[0] if isinstance(v, str) else ""

    def buf(self, name: str) -> str | None:
        v = self.args.get(name)
        if not isinstance(v, Mapping) or not isinstance(v.get("data"), str):
            return None
        return _go_bytes(v["data"].encode("utf-8", "surrogateescape"))

    def sa(self, name: str) -> dict[str, Any] | None:
        return _sockaddr(self.args.get(name))

    def ret(self) -> int:
        """The call's result when it succeeded (a new fd, a byte count), else 0."""
        r = _signed(self.ev.ret, 64)
        return r if r >= 0 and self.ev.errno is None else 0

    def sockopt(self, getter: bool) -> dict[str, Any]:
        """swoll's ``Sockopt``: level and option by name, the value's first 4 bytes; ``len``
        is ``optlen`` (setsockopt) or the length the kernel wrote (getsockopt)."""
        level, opt = self.i32(1), self.i32(2)
        text = self.args.get("optname")
        name = text if isinstance(text, str) and _OPTNAME_RE.fullmatch(text) else str(opt)
        val = self.args.get("optval")
        data: bytes | None = None
        if isinstance(val, Mapping) and isinstance(val.get("data"), str):
            data = val["data"].encode("utf-8", "surrogateescape")
        elif isinstance(val, int) and not isinstance(val, bool) and -(1 << 31) <= val < 1 << 32:
            data = (val & _M32).to_bytes(4, "little")  # an int option decoded as its value
        length = (len(data) if data is not None else 0) if getter else self.i32(4)
        return {
            "fd": self.i32(0),
            "level": _LEVELS.get(level, str(level)),
            "name": name,
            "val": _go_bytes(data[:4] if data is not None else None),
            "len": length,
        }


def _execve(a: _Args) -> dict[str, Any]:
    argv = a.args.get("argv")
    items = [x for x in argv if isinstance(x, str)][:4] if isinstance(argv, list) else []
    return {"filename": a.text("filename"), "argv": items + [""] * (4 - len(items))}


def _socket_type(v: int) -> list[str]:
    out = [f"SOCK_{_SOCK_TYPES[v & 0xF]}" if v & 0xF in _SOCK_TYPES else f"<{v & 0xF}>"]
    return out + [n for n, bit in (("SOCK_CLOEXEC", 0x80000), ("SOCK_NONBLOCK", 0x800)) if v & bit]


def _enum(table: Mapping[int, str], v: int, prefix: str = "") -> str:
    return f"{prefix}{table[v]}" if v in table else str(v)


def _path_pair(old: str, new: str) -> Callable[[_Args], dict[str, Any]]:
    return lambda a: {old: a.text("oldname"), new: a.text("newname")}


_Decoder = Callable[[_Args], dict[str, Any]]

_DECODERS: Final[dict[str, _Decoder]] = {
    "accept": lambda a: {"fd": a.i32(0), "saddr": a.sa("upeer_sockaddr")},
    "accept4": lambda a: {
        "fd": a.i32(0),
        "saddr": a.sa("upeer_sockaddr"),
        "flags": _flag_list(a.i32(3), _ACCEPT),
    },
    "access": lambda a: {"pathname": a.text("filename"), "mode": a.i32(1)},
    "acct": lambda a: {"pathname": a.text("name")},
    "alarm": lambda a: {"seconds": a.u32(0)},
    "bind": lambda a: {"FD": a.i32(0), "Ret": a.ret(), "Saddr": a.sa("umyaddr")},
    "brk": lambda a: {"addr": a.u64(0)},
    "chdir": lambda a: {"filename": a.text("filename")},
    "chroot": lambda a: {"filename": a.text("filename")},
    "clone": lambda a: {
        "flags": a.i64(0),
        "new_stack": a.u64(1),
        "child_stack": a.u64(2),
        "parent_stack": a.u64(3),
        "tls": a.u64(4),
    },
    "close": lambda a: {"FD": a.i32(0)},
    "connect": lambda a: {"fd": a.i32(0), "Saddr": a.sa("uservaddr")},
    "creat": lambda a: {"pathname": a.text("pathname"), "mode": a.u32(1)},
    "execve": _execve,
    "exit": lambda a: {"code": a.i32(0)},
    "faccessat": lambda a: {
        "fd": a.i32(0),
        "pathname": a.text("filename"),
        "mode": a.u32(2),
        "flags": 0,
    },
    "fstat": lambda a: {
        "fd": a.i32(0),
        "stat_buf": _stat(a.args["statbuf"])
        if isinstance(a.args.get("statbuf"), Mapping)
        else None,
    },
    "ftruncate": lambda a: {"fd": a.i32(0), "length": a.i64(1)},
    "futex": lambda a: {"uaddr": a.u32(0), "op": a.i32(1), "val": a.u32(2)},
    "getcwd": lambda a: {"buf": a.text("buf"), "size": a.i64(1)},
    "getpeername": lambda a: {"fd": a.i32(0), "saddr": a.sa("usockaddr")},
    "getsockname": lambda a: {"fd": a.i32(0), "saddr": a.sa("usockaddr")},
    "getsockopt": lambda a: {"sockopt": a.sockopt(getter=True)},
    "init_module": lambda a: {"name": "", "len": a.i64(1), "params": a.text("uargs")},
    "inotify_add_watch": lambda a: {
        "fd": a.i32(0),
        "pathname": a.text("pathname"),
        "mask": ["IN_ALL_EVENTS"] if a.u32(2) == _IN_ALL_EVENTS else _flag_list(a.u32(2), _INOTIFY),
    },
    "kill": lambda a: {"pid": a.i32(0), "sig": a.i32(1)},
    "link": _path_pair("old_name", "new_name"),
    "listen": lambda a: {"sock": a.i32(0), "backlog": a.i32(1)},
    "mincore": lambda a: {"addr": a.u64(0), "len": a.i64(1), "vec": a.u64(2)},
    "mkdir": lambda a: {"pathname": a.text("pathname"), "mode": a.u32(1)},
    "mount": lambda a: {
        "device": a.text("dev_name"),
        "directory": a.text("dir_name"),
        "type": a.text("type"),
        "flags": _flag_list(a.u32(3), _MOUNT, "MS_NONE"),
    },
    "mprotect": lambda a: {"addr": a.u64(0), "len": a.i64(1), "prot": a.i32(2), "addr_data": None},
    "nanosleep": lambda a: {
        "req": _timespec(a.args.get("rqtp")),
        "rem": _timespec(a.args.get("rmtp")),
    },
    "open": lambda a: {
        "filename": a.text("filename"),
        "flags": _flag_list(a.i32(1), _OPEN, "O_RDONLY"),
        "mode": a.i32(2),
        "ret": a.ret(),
    },
    "openat": lambda a: {
        "dir_fd": a.i32(0),
        "pathname": a.text("filename"),
        "flags": _flag_list(a.i32(2), _OPEN, "O_RDONLY"),
    },
    "pivot_root": lambda a: {"new_root": a.text("new_root"), "old_root": a.text("put_old")},
    "prlimit64": lambda a: {
        "pid": a.i32(0),
        "resource": _enum(dict(enumerate(_RLIMITS)), a.i32(1), "RLIMIT_"),
        "new": _rlimit(a.args.get("new_rlim")),
        "old": _rlimit(a.args.get("old_rlim")),
    },
    "ptrace": lambda a: {"request": a.i32(0), "pid": a.i32(1), "addr": a.u64(2), "data": a.u64(3)},
    "read": lambda a: {"fd": a.i32(0), "buf": a.buf("buf"), "count": a.i64(2)},
    "readlink": lambda a: {"pathname": a.text("path"), "buf": a.buf("buf"), "size": a.i32(2)},
    "readlinkat": lambda a: {
        "dir_fd": a.i32(0),
        "pathname": a.text("pathname"),
        "buf": a.buf("buf"),
        "size": a.i32(3),
    },
    "recvfrom": lambda a: {
        "fd": a.i32(0),
        "ubuf": a.buf("ubuf"),
        "size": a.i64(2),
        "o_size": a.ret(),
        "flags": _flag_list(a.u32(3), _MSG),
        "saddr": a.sa("addr"),
    },
    "rename": _path_pair("old_name", "new_name"),
    "rmdir": lambda a: {"pathname": a.text("pathname")},
    "seccomp": lambda a: {"op": a.u32(0), "flags": a.u32(1), "args": ""},
    "sendto": lambda a: {
        "fd": a.i32(0),
        "ubuf": a.buf("buff"),
        "size": a.i64(2),
        "flags": _flag_list(a.u32(3), _MSG),
        "saddr": a.sa("addr"),
    },
    "setns": lambda a: {"fd": a.i32(0), "ns_type": a.i32(1)},
    "setsockopt": lambda a: a.sockopt(getter=False),
    "setuid": lambda a: {"uid": a.i32(0)},
    "socket": lambda a: {
        "family": _enum(_FAMILIES, a.i32(0)),
        "type": _socket_type(a.i32(1)),
        "protocol": _enum(_PROTOCOLS, a.i32(2), "IPPROTO_"),
    },
    "stat": lambda a: {"filename": a.text("filename"), "stat_buf": _stat(a.args.get("statbuf"))},
    "statfs": lambda a: {"path": a.text("pathname"), "stat_buf": _stat(None)},
    "symlink": _path_pair("target", "linkpath"),
    "syslog": lambda a: {"type": a.i32(0), "buf": "", "len": a.i32(2)},
    "timerfd_create": lambda a: {"clock": a.i32(0), "flags": _flag_list(a.i32(1), _TFD)},
    "timerfd_settime": lambda a: {
        "fd": a.i32(0),
        "flags": _flag_list(a.i32(1), _TFD),
        "new": _itimerspec(a.args.get("utmr")),
        "old": _itimerspec(a.args.get("otmr")),
    },
    "umount2": lambda a: {"target": a.text("name"), "flags": _flag_list(a.i32(1), _UMOUNT)},
    "unlink": lambda a: {"pathname": a.text("pathname")},
    "write": lambda a: {"fd": a.i32(0), "buf": a.buf("buf"), "count": a.i64(2)},
}


def _itimerspec(v: object) -> dict[str, Any]:
    d = v if isinstance(v, Mapping) else {}
    return {"Interval": _timespec(d.get("it_interval")), "Value": _timespec(d.get("it_value"))}


#: Names of the syscalls swoll has argument decoders for (``call.DecodeSyscall``).
SWOLL_DECODED: Final = frozenset(_DECODERS)


def _jsonable(v: Any) -> Any:
    if isinstance(v, bytes):
        return _go_bytes(v)
    if isinstance(v, Mapping):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    return v


def swoll_args(ev: TraceEvent) -> dict[str, Any]:
    """The ``args`` of swoll's document: its decoder's JSON for :data:`SWOLL_DECODED`
    syscalls, else the generic ``{"name", "args": [{"name", "type", "val"}], "ret"}``."""
    decoder = _DECODERS.get(ev.syscall)
    if decoder is not None:
        return decoder(_Args(ev))
    try:
        types = dict(syscalls.lookup(ev.nr).args)
    except (KeyError, ValueError):
        types = {}
    return {
        "name": ev.syscall,
        "args": [
            {"name": name, "type": types.get(name, ""), "val": _jsonable(val)}
            for name, val in ev.args.items()
        ],
        "ret": None,
    }


def _syscall(ev: TraceEvent) -> dict[str, object]:
    try:
        return syscalls.lookup(ev.nr).to_dict()
    except (KeyError, ValueError):
        return {"nr": ev.nr, "name": f"sys_{ev.syscall}", "class": "", "group": ""}


def swoll_document(ev: TraceEvent) -> dict[str, Any]:
    """swoll's ``TraceEvent`` JSON document of ``ev`` (see the module doc)."""
    returned = bool(getattr(ev, "returned", not ev.no_exit))
    errno = ev.errno
    if not returned:
        error = "UNK"
    elif errno is None:
        error = "OK"
    elif errno == _ERESTARTSYS:
        error = "ERESTARTSYS"
    else:
        name = _ERRNO[errno] if 0 < errno < len(_ERRNO) else "-"
        error = "UNK" if name == "-" else name
    container = ev.container
    doc: dict[str, Any] = {
        "syscall": _syscall(ev),
        "pid": ev.tid,
        "tid": ev.tgid,
        "container_pid": ev.ns_tgid,
        "uid": ev.uid,
        "gid": ev.gid,
        "comm": ev.comm,
        "session": ev.sid,
        "container": container.to_dict() if container is not None else None,
        "error": error,
        "return": _signed(ev.ret, 64) if returned else 0,
        "pid_ns": ev.pid_ns,
        "uts_ns": ev.uts_ns,
        "mount_ns": ev.mnt_ns,
        "start": ev.enter_ns,
        "finish": ev.exit_ns,
        "args": swoll_args(ev),
    }
    if not returned:
        doc["returned"] = False
    return doc
