"""The real programs of the strace differential test (tests/strace_diff.py):
what each runs, in a fresh work directory, and which syscalls both tracers
follow. Each syscall set holds the calls both tools see identically; calls
whose count or result depends on timing (reads from pipes, wait4 loops,
poll) are left out of a workload whose processes run concurrently."""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

SH = shutil.which("sh") or "/bin/sh"
PY = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else shutil.which("python3") or ""
GIT = shutil.which("git")

FILES = "execve,open,openat,close,newfstatat,fstat,lstat,stat,statx,access,faccessat2"
DIRS = "mkdir,mkdirat,unlinkat,unlink,rename,renameat2,chdir,getcwd,readlink,readlinkat"
MODES = "chmod,fchmod,fchmodat,umask,mknod,mknodat,utimensat"
NET = (
    "socket,bind,listen,connect,accept4,accept,sendto,recvfrom,getsockname,getpeername,"
    "setsockopt,shutdown,socketpair,sendmsg,recvmsg"
)


@dataclass(frozen=True)
class Workload:
    name: str
    argv: tuple[str, ...]
    syscalls: str
    setup: Callable[[Path], None] | None = None
    env: dict[str, str] = field(default_factory=dict)
    # Literal prefixes of path parts that differ between runs by design (6
    # random characters of mkstemp names follow), replaced by XXXXXX before
    # comparing.
    random_paths: tuple[str, ...] = ()


def _data(work: Path) -> None:
    d = work / "data"
    (d / "sub").mkdir(parents=True)
    for i in range(3):
        (d / f"f{i}.txt").write_text(f"file {i}\n" * (50 * (i + 1)))
    (d / "sub" / "x.bin").write_bytes(bytes(range(256)) * 8)
    os.chmod(d / "f2.txt", 0o600)
    (d / "link").symlink_to("f0.txt")


NET_SCRIPT = r"""
import os, socket, struct, sys
tcp, udp, tcp6, cport = (int(x) for x in sys.argv[1:5])
linger = struct.pack("ii", 1, 0)

def pair(family, kind, addr, caddr):
    srv = socket.socket(family, kind)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(addr)
    if kind == socket.SOCK_STREAM:
        srv.listen(1)
    cli = socket.socket(family, kind)
    cli.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if caddr is not None:
        cli.bind(caddr)
    return srv, cli

for fam, host, port in ((socket.AF_INET, "127.0.0.1", tcp), (socket.AF_INET6, "::1", tcp6)):
    srv, cli = pair(fam, socket.SOCK_STREAM, (host, port), (host, cport))
    cli.connect((host, port))
    conn, peer = srv.accept()
    cli.sendall(b"ping")
    conn.recv(16)
    conn.send(b"pong")
    cli.recv(16)
    cli.getsockname(); cli.getpeername()
    cli.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
    cli.shutdown(socket.SHUT_WR)
    for s in (cli, conn, srv):
        s.close()

srv, cli = pair(socket.AF_INET, socket.SOCK_DGRAM, ("127.0.0.1", udp), ("127.0.0.1", cport))
cli.sendto(b"hello", ("127.0.0.1", udp))
srv.recvfrom(64)
cli.close(); srv.close()

for path in ("u.sock", "\0syshub-diff-%d" % tcp):
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)
    cli = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    cli.connect(path)
    conn, _ = srv.accept()
    cli.sendall(b"x"); conn.recv(4)
    for s in (cli, conn, srv):
        s.close()
a, b = socket.socketpair()
a.sendall(b"y"); b.recv(4)
a.close(); b.close()
try:
    socket.create_connection(("127.0.0.1", 1), timeout=2)
except OSError:
    pass
"""


def free_ports(n: int) -> list[int]:
    """``n`` distinct ports free now on loopback (TCP and UDP, v4 and v6)."""
    out: list[int] = []
    while len(out) < n:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::", 0))
            port = s.getsockname()[1]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            try:
                u.bind(("127.0.0.1", port))
            except OSError:
                continue
        if port not in out:
            out.append(port)
    return out


def _net(work: Path) -> None:
    (work / "net.py").write_text(NET_SCRIPT)


def _sqlite(work: Path) -> None:
    (work / "db.py").write_text(
        "import sqlite3\n"
        "c = sqlite3.connect('t.db')\n"
        "c.execute('create table t (x integer, y text)')\n"
        "c.executemany('insert into t values (?, ?)', [(i, str(i)) for i in range(100)])\n"
        "c.commit()\n"
        "assert c.execute('select count(*) from t').fetchone()[0] == 100\n"
        "c.close()\n"
    )


def _modes(work: Path) -> None:
    (work / "modes.py").write_text(
        "import os\n"
        "os.umask(0o022)\n"
        "open('a', 'w').close()\n"
        "os.chmod('a', 0o100744)\n"
        "os.chmod('a', 0o4755)\n"
        "os.mkdir('d', 0o1777)\n"
        "os.mknod('fifo', 0o10640)\n"
        "os.mknod('reg', 0o100600)\n"
        "os.umask(0o077)\n"
        "for p in ('a', 'd', 'fifo', 'reg', '/dev/null', '/tmp'):\n"
        "    os.stat(p)\n"
        "    os.lstat(p)\n"
    )


def _restart(work: Path) -> None:
    # A signal arrives while read() sleeps: the kernel restarts it (strace:
    # "= ? ERESTARTSYS"), the handler writes the byte the retried read gets.
    (work / "restart.py").write_text(
        "import os, signal\n"
        "r, w = os.pipe()\n"
        "signal.signal(signal.SIGALRM, lambda *a: os.write(w, b'x'))\n"
        "signal.setitimer(signal.ITIMER_REAL, 0.2)\n"
        "assert os.read(r, 1) == b'x'\n"
    )


def workloads(ports: list[int]) -> list[Workload]:
    """The workloads; ``ports``: four free loopback ports (see free_ports)."""
    py = (PY, "-B", "-I")
    out = [
        Workload(
            "tar+gzip",
            (
                SH,
                "-c",
                "tar -czf a.tgz data && mkdir x && tar -xzf a.tgz -C x && "
                "gzip -k data/f0.txt && gzip -dc data/f0.txt.gz >/dev/null && rm -r x",
            ),
            f"{FILES},{DIRS},{MODES},pipe2,dup2",
            _data,
        ),
        Workload(
            "coreutils",
            (SH, "-c", "ls -la data | sort | head -n 3 >/dev/null; cat data/*.txt | wc -l"),
            f"{FILES},{DIRS},pipe2,dup2",
            _data,
        ),
        Workload(
            "python+sqlite",
            (*py, "db.py"),
            f"{FILES},{DIRS},fcntl,lseek,pread64,pwrite64,fsync,fdatasync",
            _sqlite,
        ),
        Workload("net", (*py, "net.py", *map(str, ports)), f"{NET},close", _net),
        Workload(
            "errors",
            (
                SH,
                "-c",
                "cat /nonexistent; ls /nope/x; mkdir /proc/x; rmdir /nope; "
                "ln -s a /proc/y; exec 3</etc/shadow-x; exit 0",
            ),
            f"{FILES},{DIRS},symlink,symlinkat,rmdir",
        ),
        Workload("modes", (*py, "modes.py"), f"{FILES},{DIRS},{MODES}", _modes),
        Workload("restart", (*py, "restart.py"), "read,write,setitimer,pipe2", _restart),
        Workload(
            "sigkill",
            (SH, "-c", "sleep 5 & sleep 0.3; kill -9 $!; wait; echo done >/dev/null"),
            "execve,clock_nanosleep,nanosleep,kill,exit_group",
        ),
    ]
    if GIT is not None:
        env = {
            "GIT_AUTHOR_NAME": "syshub",
            "GIT_AUTHOR_EMAIL": "s@example.com",
            "GIT_COMMITTER_NAME": "syshub",
            "GIT_COMMITTER_EMAIL": "s@example.com",
            "GIT_AUTHOR_DATE": "1700000000 +0000",
            "GIT_COMMITTER_DATE": "1700000000 +0000",
            "GIT_CONFIG_NOSYSTEM": "1",
            # No background maintenance: a detached process outlives the command.
            "GIT_CONFIG_COUNT": "2",
            "GIT_CONFIG_KEY_0": "maintenance.auto",
            "GIT_CONFIG_VALUE_0": "false",
            "GIT_CONFIG_KEY_1": "gc.auto",
            "GIT_CONFIG_VALUE_1": "0",
        }
        out.append(
            Workload(
                "git",
                (
                    SH,
                    "-c",
                    "git init -q -b main repo && cp -r data/* repo/ && cd repo && "
                    "git add . && git commit -q -m first && git log --oneline >/dev/null",
                ),
                f"{FILES},{DIRS},link,linkat",
                _data,
                env,
                ("tmp_obj_", ".git/t"),
            )
        )
    return out
