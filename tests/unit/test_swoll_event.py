"""swoll's event JSON (``TraceEvent.to_dict(style="swoll")``) from hand-built records decoded
by the real decoder: the top-level keys and their meaning (pid = thread, tid = process), the
argument documents of swoll's decoders (key names, flag lists, socket addresses, base64
buffers) and the generic form for syscalls swoll does not decode.

The expected key sets per syscall are written here from swoll's Go structs
(``pkg/event/call``), independently of the implementation's table."""

from __future__ import annotations

import base64
import json
import struct
from typing import Any

import pytest

from syshub import TraceEvent
from syshub.hub.swoll_event import SWOLL_DECODED
from syshub.probe import abi_layout, decode_record
from syshub.topology import Container

LAYOUT = abi_layout()["syshub_event"]
HDR_SIZE = LAYOUT["__size__"][1]
CAP_STR, CAP_BUF, CAP_SOCKADDR, CAP_STRV, CAP_STRV_END = 1, 2, 3, 4, 5
EVF_NO_EXIT, EVF_KILLED = 0x1, 0x20
TGID, TID, NS_TGID = 4242, 4243, 7

#: swoll's TraceEvent JSON keys, in its struct order.
TOP_KEYS = [
    "syscall", "pid", "tid", "container_pid", "uid", "gid", "comm", "session", "container",
    "error", "return", "pid_ns", "uts_ns", "mount_ns", "start", "finish", "args",
]  # fmt: skip

#: (nr, JSON keys of swoll's decoder struct) for each syscall swoll decodes.
SWOLL_KEYS: dict[str, tuple[int, set[str]]] = {
    "read": (0, {"fd", "buf", "count"}),
    "write": (1, {"fd", "buf", "count"}),
    "open": (2, {"filename", "flags", "mode", "ret"}),
    "close": (3, {"FD"}),
    "stat": (4, {"filename", "stat_buf"}),
    "fstat": (5, {"fd", "stat_buf"}),
    "mprotect": (10, {"addr", "len", "prot", "addr_data"}),
    "brk": (12, {"addr"}),
    "access": (21, {"pathname", "mode"}),
    "mincore": (27, {"addr", "len", "vec"}),
    "nanosleep": (35, {"req", "rem"}),
    "alarm": (37, {"seconds"}),
    "socket": (41, {"family", "type", "protocol"}),
    "connect": (42, {"fd", "Saddr"}),
    "accept": (43, {"fd", "saddr"}),
    "sendto": (44, {"fd", "ubuf", "size", "flags", "saddr"}),
    "recvfrom": (45, {"fd", "ubuf", "size", "o_size", "flags", "saddr"}),
    "bind": (49, {"FD", "Ret", "Saddr"}),
    "listen": (50, {"sock", "backlog"}),
    "getsockname": (51, {"fd", "saddr"}),
    "getpeername": (52, {"fd", "saddr"}),
    "setsockopt": (54, {"fd", "level", "name", "val", "len"}),
    "getsockopt": (55, {"sockopt"}),
    "clone": (56, {"flags", "new_stack", "child_stack", "parent_stack", "tls"}),
    "execve": (59, {"filename", "argv"}),
    "exit": (60, {"code"}),
    "kill": (62, {"pid", "sig"}),
    "ftruncate": (77, {"fd", "length"}),
    "getcwd": (79, {"buf", "size"}),
    "chdir": (80, {"filename"}),
    "rename": (82, {"old_name", "new_name"}),
    "mkdir": (83, {"pathname", "mode"}),
    "rmdir": (84, {"pathname"}),
    "creat": (85, {"pathname", "mode"}),
    "link": (86, {"old_name", "new_name"}),
    "unlink": (87, {"pathname"}),
    "symlink": (88, {"target", "linkpath"}),
    "readlink": (89, {"pathname", "buf", "size"}),
    "ptrace": (101, {"request", "pid", "addr", "data"}),
    "syslog": (103, {"type", "buf", "len"}),
    "setuid": (105, {"uid"}),
    "statfs": (137, {"path", "stat_buf"}),
    "pivot_root": (155, {"new_root", "old_root"}),
    "chroot": (161, {"filename"}),
    "acct": (163, {"pathname"}),
    "mount": (165, {"device", "directory", "type", "flags"}),
    "umount2": (166, {"target", "flags"}),
    "init_module": (175, {"name", "len", "params"}),
    "futex": (202, {"uaddr", "op", "val"}),
    "inotify_add_watch": (254, {"fd", "pathname", "mask"}),
    "openat": (257, {"dir_fd", "pathname", "flags"}),
    "readlinkat": (267, {"dir_fd", "pathname", "buf", "size"}),
    "faccessat": (269, {"fd", "pathname", "mode", "flags"}),
    "timerfd_create": (283, {"clock", "flags"}),
    "timerfd_settime": (286, {"fd", "flags", "new", "old"}),
    "accept4": (288, {"fd", "saddr", "flags"}),
    "prlimit64": (302, {"pid", "resource", "new", "old"}),
    "setns": (308, {"fd", "ns_type"}),
    "seccomp": (317, {"op", "flags", "args"}),
}


def _cap(slot: int, kind: int, data: bytes, orig_len: int | None = None) -> bytes:
    n = len(data) if orig_len is None else orig_len
    body = struct.pack("<BBHIII", slot, kind, 0, len(data), n, 0) + data
    return body + b"\0" * (-len(body) % 8)


def _put(hdr: bytearray, field: str, fmt: str, value: int | bytes) -> None:
    struct.pack_into(fmt, hdr, LAYOUT[field][0], value)


def event(
    nr: int,
    args: dict[int, int] | None = None,
    caps: list[bytes] | None = None,
    *,
    ret: int = 0,
    flags: int = 0,
    container: Container | None = None,
) -> TraceEvent:
    """A TraceEvent of syscall ``nr`` decoded from a hand-built record."""
    body = b"".join(caps or [])
    hdr = bytearray(HDR_SIZE)
    struct.pack_into("<HHII", hdr, 0, 1, flags, HDR_SIZE + len(body), nr)
    _put(hdr, "ncaptures", "<H", len(caps or []))
    _put(hdr, "tgid", "<I", TGID)
    _put(hdr, "tid", "<I", TID)
    _put(hdr, "ns_tgid", "<I", NS_TGID)
    _put(hdr, "ns_tid", "<I", 8)
    _put(hdr, "ret", "<q", ret)
    _put(hdr, "comm", "16s", b"cat")
    for slot, value in (args or {}).items():
        struct.pack_into("<Q", hdr, LAYOUT["args"][0] + 8 * slot, value & (2**64 - 1))
    return TraceEvent(decode_record(bytes(hdr) + body), container)


def swoll(ev: TraceEvent) -> dict[str, Any]:
    doc = ev.to_dict(style="swoll")
    assert json.loads(json.dumps(doc)) == doc, "the document is JSON as is"
    return doc


def test_the_decoded_set_is_swolls() -> None:
    assert set(SWOLL_KEYS) == SWOLL_DECODED
    assert len(SWOLL_DECODED) == 59


@pytest.mark.parametrize("name", sorted(SWOLL_KEYS))
def test_every_decoder_writes_swolls_keys(name: str) -> None:
    nr, keys = SWOLL_KEYS[name]
    doc = swoll(event(nr))
    assert doc["syscall"]["nr"] == nr and doc["syscall"]["name"] == f"sys_{name}"
    assert set(doc["args"]) == keys


def test_top_level_document_and_pid_meaning() -> None:
    c = Container("abc", "web", 100, 4026531999, pod="p", namespace="ns", labels={"a": "b"})
    doc = swoll(
        event(257, {0: -100, 2: 0x80000}, [_cap(1, CAP_STR, b"/etc/hostname")], ret=3, container=c)
    )
    assert list(doc) == TOP_KEYS
    assert doc["syscall"] == {
        "nr": 257,
        "name": "sys_openat",
        "class": "FileSystem",
        "group": "Files",
    }
    # swoll's pid is the thread id, its tid the process id; container_pid in the pid ns.
    assert (doc["pid"], doc["tid"], doc["container_pid"]) == (TID, TGID, NS_TGID)
    assert doc["comm"] == "cat" and doc["error"] == "OK" and doc["return"] == 3
    assert doc["container"] == {
        "id": "abc", "pod": "p", "name": "web", "namespace": "ns", "labels": {"a": "b"},
        "pid": 100, "pid-namespace": 4026531999,
    }  # fmt: skip
    assert doc["args"] == {"dir_fd": -100, "pathname": "/etc/hostname", "flags": ["O_CLOEXEC"]}
    assert "returned" not in doc


def test_errors_returns_and_open_flags() -> None:
    doc = swoll(event(257, {0: -100, 2: 0}, [_cap(1, CAP_STR, b"/nope")], ret=-2))
    assert (doc["error"], doc["return"]) == ("ENOENT", -2)
    assert doc["args"]["flags"] == ["O_RDONLY"]
    assert doc["container"] is None
    doc = swoll(event(2, {1: 0x1 | 0x40 | 0x200, 2: 0o644}, [_cap(0, CAP_STR, b"/tmp/x")], ret=5))
    assert doc["args"] == {
        "filename": "/tmp/x", "flags": ["O_WRONLY", "O_CREAT", "O_TRUNC"], "mode": 0o644, "ret": 5,
    }  # fmt: skip
    assert swoll(event(0, {0: 9}, ret=-9))["error"] == "EBADF"
    assert swoll(event(0, {0: 9}, ret=-41))["error"] == "UNK"  # no errno 41


def test_socket_addresses() -> None:
    sin = struct.pack("<H", 2) + struct.pack(">H", 8080) + bytes([127, 0, 0, 1]) + bytes(8)
    doc = swoll(event(42, {0: 3, 2: 16}, [_cap(1, CAP_SOCKADDR, sin)], ret=0))
    assert doc["args"] == {
        "fd": 3,
        "Saddr": {
            "Family": 2,
            "Data": [31, -112, 127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0],
            "decoded": "ipv4:127.0.0.1:8080",
        },
    }
    sin6 = struct.pack("<H", 10) + struct.pack(">HI", 443, 0) + bytes(15) + b"\x01" + bytes(4)
    sa = swoll(event(42, {0: 4, 2: 28}, [_cap(1, CAP_SOCKADDR, sin6)]))["args"]["Saddr"]
    assert (
        sa["Family"] == 10 and sa["decoded"] == "ipv6:" + ":".join(["0000"] * 7 + ["0001"]) + ":443"
    )
    assert sa["Data"][:2] == [1, -69]  # port 443 in network order, as the kernel has it
    sun = struct.pack("<H", 1) + b"/run/x.sock\0"
    doc = swoll(event(49, {0: 5, 2: 14}, [_cap(1, CAP_SOCKADDR, sun)]))
    assert doc["args"]["Saddr"]["decoded"] == "unix:/run/x.sock:0"
    assert doc["args"]["Saddr"]["Data"][:3] == [ord("/"), ord("r"), ord("u")]
    assert doc["args"]["FD"] == 5


def test_buffers_are_base64_and_sockets_by_name() -> None:
    doc = swoll(event(1, {0: 1, 2: 5}, [_cap(1, CAP_BUF, b"hello")], ret=5))
    assert doc["args"] == {"fd": 1, "buf": base64.b64encode(b"hello").decode(), "count": 5}
    assert base64.b64decode(doc["args"]["buf"]) == b"hello"
    doc = swoll(event(41, {0: 2, 1: 1 | 0x80000, 2: 0}, ret=3))
    assert doc["args"] == {
        "family": "AF_INET", "type": ["SOCK_STREAM", "SOCK_CLOEXEC"], "protocol": "IPPROTO_IP",
    }  # fmt: skip
    doc = swoll(event(41, {0: 10, 1: 2 | 0x800, 2: 17}, ret=3))
    assert doc["args"]["type"] == ["SOCK_DGRAM", "SOCK_NONBLOCK"]
    assert doc["args"]["protocol"] == "IPPROTO_UDP" and doc["args"]["family"] == "AF_INET6"
    doc = swoll(event(288, {0: 3, 3: 0x80000 | 0x800}, ret=4))
    assert doc["args"]["flags"] == ["SOCK_NONBLOCK", "SOCK_CLOEXEC"]
    assert doc["args"]["saddr"] is None  # no address captured (NULL addr)


def test_execve_close_exit_and_mount() -> None:
    caps = [
        _cap(0, CAP_STR, b"/bin/cat"),
        _cap(1, CAP_STRV, b"cat"),
        _cap(1, CAP_STRV, b"/etc/hostname"),
        _cap(1, CAP_STRV_END, b""),
    ]
    doc = swoll(event(59, {}, caps))
    assert doc["args"] == {"filename": "/bin/cat", "argv": ["cat", "/etc/hostname", "", ""]}
    assert swoll(event(3, {0: 7}))["args"] == {"FD": 7}
    assert swoll(event(60, {0: 3}, flags=EVF_NO_EXIT))["args"] == {"code": 3}
    doc = swoll(event(165, {3: 0x1000 | 0x4000}))
    assert doc["args"]["flags"] == ["MS_BIND", "MS_REC"]
    assert swoll(event(165, {3: 0}))["args"]["flags"] == ["MS_NONE"]
    assert swoll(event(254, {2: 0xFFF}))["args"]["mask"] == ["IN_ALL_EVENTS"]


def test_a_call_that_did_not_return() -> None:
    doc = swoll(event(231, {0: 0}, flags=EVF_NO_EXIT))
    assert (doc["return"], doc["error"], doc["returned"]) == (0, "UNK", False)
    # Killed during the call, or a kernel-internal restart (ERESTARTSYS): the program never
    # saw a result, so none is presented.
    for kw in ({"flags": EVF_KILLED, "ret": -4}, {"ret": -512}):
        doc = swoll(event(0, {0: 3}, **kw))  # type: ignore[arg-type]
        assert (doc["return"], doc["error"], doc["returned"]) == (0, "UNK", False), kw
    doc = swoll(event(0, {0: 3}, ret=-4))
    assert (doc["return"], doc["error"]) == (-4, "EINTR") and "returned" not in doc


def test_other_syscalls_use_swolls_generic_form() -> None:
    doc = swoll(event(72, {0: 3, 1: 1}, ret=0))  # fcntl(3, F_GETFD): swoll has no decoder
    assert "fcntl" not in SWOLL_DECODED
    args = doc["args"]
    assert set(args) == {"name", "args", "ret"}
    assert args["name"] == "fcntl" and args["ret"] is None
    assert [a["name"] for a in args["args"]] == ["fd", "cmd", "arg"]
    assert args["args"][0] == {"name": "fd", "type": "fd", "val": 3}
    assert args["args"][1]["val"] == "F_GETFD"
    assert doc["syscall"]["name"] == "sys_fcntl" and doc["error"] == "OK"


def test_our_document_stays_the_default() -> None:
    ev = event(257, {0: -100}, [_cap(1, CAP_STR, b"/x")], ret=3)
    assert ev.to_dict() == ev.to_dict(style="syshub")
    assert ev.to_dict()["pid"] == TGID and "tgid" in ev.to_dict()
    with pytest.raises(ValueError, match="unknown event style"):
        ev.to_dict(style="strace")  # type: ignore[arg-type]


def test_errno_names_are_swolls() -> None:
    import errno as errno_module

    for n in range(1, 134):
        name = swoll(event(0, {0: 3}, ret=-n))["error"]
        if n in (41, 58):  # no errno has these numbers on Linux
            assert name == "UNK"
        elif n == 133:  # not in Python's errno module
            assert name == "EHWPOISON"
        else:
            assert getattr(errno_module, name) == n, (n, name)
    assert swoll(event(0, {0: 3}, ret=-11))["error"] == "EAGAIN"  # not EWOULDBLOCK
    assert swoll(event(0, {0: 3}, ret=-200))["error"] == "UNK"


def test_structs_as_swolls_go_types() -> None:
    CAP_STRUCT = 6
    req = struct.pack("<qq", 1, 500)
    doc = swoll(event(35, {}, [_cap(0, CAP_STRUCT, req)]))
    assert doc["args"] == {"req": {"Sec": 1, "Nsec": 500}, "rem": {"Sec": 0, "Nsec": 0}}
    new = struct.pack("<QQ", 1024, 2**64 - 1)
    doc = swoll(event(302, {0: 0, 1: 7}, [_cap(2, CAP_STRUCT, new)]))
    assert doc["args"]["resource"] == "RLIMIT_NOFILE"
    assert doc["args"]["new"] == {"Cur": 1024, "Max": 2**64 - 1}  # RLIM64_INFINITY
    its = struct.pack("<qqqq", 0, 0, 2, 5)
    doc = swoll(event(286, {0: 4, 1: 1}, [_cap(2, CAP_STRUCT, its)]))
    assert doc["args"]["new"] == {"Interval": {"Sec": 0, "Nsec": 0}, "Value": {"Sec": 2, "Nsec": 5}}
    assert doc["args"]["flags"] == ["TFD_TIMER_ABSTIME"]


def test_stat_results_as_go_stat_t() -> None:
    CAP_STRUCT = 6
    st = bytearray(144)
    struct.pack_into("<I", st, 24, 0o100644)  # st_mode
    struct.pack_into("<q", st, 48, 1234)  # st_size
    doc = swoll(event(5, {0: 3}, [_cap(1, CAP_STRUCT, bytes(st))]))
    buf = doc["args"]["stat_buf"]
    assert (buf["Mode"], buf["Size"]) == (0o100644, 1234)
    assert set(buf) >= {"Dev", "Ino", "Nlink", "Uid", "Gid", "Blksize", "Blocks", "Atim"}
    assert buf["Atim"] == {"Sec": 0, "Nsec": 0}
    assert swoll(event(5, {0: 3}, ret=-9))["args"]["stat_buf"] is None  # nothing written
    doc = swoll(event(4, {}, [_cap(0, CAP_STR, b"/x"), _cap(1, CAP_STRUCT, bytes(st))]))
    assert doc["args"]["filename"] == "/x" and doc["args"]["stat_buf"]["Mode"] == 0o100644
