"""The ``syshub`` command line.

``syshub trace -s openat,execve -- CMD`` runs CMD as PID 1 of a new pid
namespace and prints its syscalls; ``--pid PID`` traces the namespace of a
running process; ``--host`` traces every process. Bad input exits with 2 and
one line on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from collections.abc import Sequence
from typing import IO, Any

from syshub import syscalls
from syshub.errors import SyscallNameError, SyshubError
from syshub.topology import Container, ContainerEvent, ContainerEventKind, HostObserver, Topology

EXIT_USAGE = 2


class UsageError(Exception):
    """Bad command-line input: reported in one line, exit status 2."""


def _parse_syscalls(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise UsageError("no syscalls given to -s/--syscalls")
    out: list[str] = []
    for n in names:
        try:
            out.append(syscalls.lookup(n).name)
        except SyscallNameError as e:
            raise UsageError(str(e)) from None
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="syshub", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser(
        "trace", help="trace syscalls of a command, a process' namespace or the host"
    )
    t.add_argument("-s", "--syscalls", required=True, help="comma-separated syscall names")
    t.add_argument("-o", "--output", choices=("text", "json"), default="text")
    t.add_argument("-O", "--output-file", help="write events here instead of stdout")
    where = t.add_mutually_exclusive_group()
    where.add_argument("--pid", type=int, help="trace the pid namespace of this running process")
    where.add_argument("--host", action="store_true", help="trace every process on the host")
    t.add_argument("--sample-rate", type=int, default=1, help="deliver 1 in N matching calls")
    t.add_argument("--str-max", type=int, default=256, help="bytes captured per string (<=4096)")
    t.add_argument("--argv-max", type=int, default=32, help="argv elements captured (<=128)")
    t.add_argument("--ring-bytes", type=int, default=16 << 20, help="ring buffer size")
    t.add_argument("--duration", type=float, help="stop after this many seconds")
    t.add_argument("cmd", nargs=argparse.REMAINDER, help="-- CMD [ARGS...]")
    s = sub.add_parser("syscalls", help="list the syscall table")
    s.add_argument("--class", dest="klass", help="only this class")
    return p


class _Printer:
    def __init__(self, mode: str, out: IO[str], topology: Topology) -> None:
        self.mode = mode
        self.out = out
        self.count = 0
        self.topology = topology

    def batch(self, batch: Any) -> None:
        write = self.out.write
        if self.mode == "json":
            lookup = self.topology.lookup_container
            for ev in batch:
                d = ev.to_dict()
                d["tgid"] = d["pid"]
                d["ns_pid"] = d["container_pid"]
                d["errno"] = ev.errno
                c = lookup(ev.pid_ns)
                if c is not None:
                    d["container"] = c.to_dict()
                write(json.dumps(d, separators=(",", ":")) + "\n")
        else:
            for ev in batch:
                write(ev.to_text() + "\n")
        self.count += len(batch)
        self.out.flush()


def _drained(probe: Any) -> bool:
    st = probe.stats()
    return all(k["delivered"] >= k["emitted"] for k in st["keys"])


def _trace(args: argparse.Namespace) -> int:
    from syshub import _native
    from syshub.nsproc import NamespacedProcess

    names = _parse_syscalls(args.syscalls)
    cmd = list(args.cmd)
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if args.pid is None and not args.host and not cmd:
        raise UsageError(
            "missing command: syshub trace -s SYSCALLS -- CMD [ARGS...] (or --pid/--host)"
        )
    if (args.pid is not None or args.host) and cmd:
        raise UsageError("give either a command or --pid/--host, not both")
    if args.sample_rate < 0:
        raise UsageError(f"--sample-rate must be >= 0, got {args.sample_rate}")
    if not 1 <= args.str_max <= 4096:
        raise UsageError(f"--str-max must be 1..4096, got {args.str_max}")
    if not 0 <= args.argv_max <= 128:
        raise UsageError(f"--argv-max must be 0..128, got {args.argv_max}")
    target_ns: int
    ns_fd: int | None = None
    if args.pid is not None:
        if args.pid <= 0:
            raise UsageError(f"invalid pid {args.pid}")
        try:
            # Held open while traced: a dead namespace's inode is reused at once.
            ns_fd = os.open(f"/proc/{args.pid}/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
            target_ns = os.fstat(ns_fd).st_ino
        except FileNotFoundError:
            raise UsageError(f"no such process: {args.pid}") from None
        except PermissionError:
            raise UsageError(
                f"cannot read the pid namespace of {args.pid}: permission denied"
            ) from None
    if os.geteuid() != 0:
        raise UsageError("syshub trace needs root (or CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN)")

    out: IO[str] = open(args.output_file, "w") if args.output_file else sys.stdout  # noqa: SIM115
    # The local topology labels events with their "container": the pid
    # namespace of CMD, of --pid, or (--host) every namespace found in /proc.
    topology = Topology()
    host = HostObserver()
    printer = _Printer(args.output, out, topology)
    try:
        probe = _native.Probe(args.ring_bytes)
    except PermissionError as e:
        raise UsageError(str(e)) from None
    except (SyshubError, ValueError) as e:
        raise UsageError(str(e)) from None

    child: NamespacedProcess | None = None
    status = 0
    interrupted = False
    try:
        if cmd:
            try:
                child = NamespacedProcess(cmd)
            except SyshubError as e:
                raise UsageError(str(e)) from None
            target_ns = child.pid_ns
            name = os.path.basename(cmd[0])
            topology.apply(
                ContainerEvent(
                    ContainerEventKind.START,
                    Container(id=f"pidns-{target_ns}", name=name, pid=child.pid, pid_ns=target_ns),
                )
            )
        elif args.host:
            target_ns = 0
        if child is None:
            for c in host.scan().values():
                if args.host or c.pid_ns == target_ns:
                    topology.apply(ContainerEvent(ContainerEventKind.START, c))
        for n in names:
            probe.add_filter(
                target_ns, n, args.sample_rate, str_max=args.str_max, argv_max=args.argv_max
            )
        if child is not None:
            child.release()
        deadline = time.monotonic() + args.duration if args.duration else None
        rescan = time.monotonic() + 1.0
        while True:
            printer.batch(probe.poll(timeout_ms=100))
            if args.host and args.output == "json" and time.monotonic() >= rescan:
                rescan = time.monotonic() + 1.0
                for c in host.scan().values():
                    if topology.lookup_container(c.pid_ns) is None:
                        topology.apply(ContainerEvent(ContainerEventKind.START, c))
            if child is not None and child.poll() is not None:
                break
            if args.pid is not None and not os.path.exists(f"/proc/{args.pid}"):
                break
            if deadline is not None and time.monotonic() >= deadline:
                break
    except KeyboardInterrupt:
        interrupted = True
        if child is not None:
            child.kill()
    finally:
        if child is not None:
            status = child.wait()
        # Stop matching before the namespace (and its inode) is released.
        if child is not None or ns_fd is not None:
            for n in names:
                probe.remove_filter(target_ns, n)
        if child is not None:
            child.close()
        if ns_fd is not None:
            os.close(ns_fd)
    # Final drain: everything the kernel emitted reaches the output.
    end = time.monotonic() + 2.0
    while time.monotonic() < end:
        b = probe.poll(timeout_ms=20)
        printer.batch(b)
        if not b and _drained(probe):
            break
    st = probe.stats()
    probe.close()
    if out is not sys.stdout:
        out.close()
    tot = st["total"]
    sys.stderr.write(
        f"syshub: {printer.count} events, {tot['dropped']} dropped, "
        f"{tot['sampled_out']} sampled out, {st['reader']['decode_errors']} malformed\n"
    )
    if interrupted and child is None:
        return 130
    return status


def _list(args: argparse.Namespace) -> int:
    for s in syscalls.table():
        if args.klass and s.klass != args.klass:
            continue
        sys.stdout.write(f"{s.nr}\t{s.name}\t{s.klass}\t{s.group}\n")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:
        return int(e.code or 0) if isinstance(e.code, int) else EXIT_USAGE
    try:
        if args.command == "trace":
            return _trace(args)
        return _list(args)
    except UsageError as e:
        sys.stderr.write(f"syshub: error: {e}\n")
        return EXIT_USAGE
    except BrokenPipeError:
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        return 141


if __name__ == "__main__":
    sys.exit(main())
