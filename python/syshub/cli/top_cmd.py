"""``syshub top``: live syscall rates per container / pod / syscall / errno,
with latency percentiles from the kernel histograms.

Locally it loads its own kernel metrics program (no agent needed) and labels
pid namespaces with the local topology; with ``--agent`` it reads agents'
Metrics method instead. Rates are the difference of two reads over the time
between them. Keys (on a terminal): ``s`` sort, ``g`` group, ``/`` filter,
``e`` errors only, ``p``/space pause, ``q`` quit. ``--once`` prints one
snapshot (``-o json``: one JSON document) and exits."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import select
import sys
import termios
import time
import tty
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from syshub.cli.errors import CliError, UsageError

#: group-by presets the ``g`` key cycles through
GROUPS: tuple[tuple[str, ...], ...] = (
    ("node", "namespace", "pod", "container", "syscall", "error"),
    ("node", "namespace", "pod", "container"),
    ("node", "namespace", "pod"),
    ("node", "namespace"),
    ("syscall",),
    ("syscall", "error"),
    ("error",),
)
FIELDS = ("node", "namespace", "pod", "container", "pid_ns", "syscall", "class", "group", "error")
SORTS = ("rate", "errors", "time", "p50", "p99", "name")


def add_top_parser(sub: Any, formatter: type[argparse.HelpFormatter]) -> None:
    """Register ``syshub top`` on the ``syshub`` subparsers."""
    t = sub.add_parser(
        "top",
        help="live syscall rates and latencies per container, pod, syscall and errno",
        description=__doc__,
        formatter_class=formatter,
    )
    t.add_argument(
        "--agent",
        action="append",
        metavar="ADDR",
        help="read this agent's metrics (unix:///path or host:port; repeatable) instead of "
        "loading a local metrics program",
    )
    t.add_argument(
        "--mode",
        choices=("node", "containers"),
        default="node",
        help="local: count every process (node) or only the containers the topology reports",
    )
    t.add_argument("--cri", metavar="ENDPOINT", help="local: containers from this CRI socket")
    t.add_argument(
        "-i", "--interval", type=float, default=1.0, metavar="SECONDS", help="refresh interval"
    )
    t.add_argument(
        "--by",
        default=",".join(GROUPS[0]),
        metavar="FIELDS",
        help=f"group rows by these fields (comma-separated: {', '.join(FIELDS)})",
    )
    t.add_argument("--sort", choices=SORTS, default="rate", help="sort key")
    t.add_argument(
        "--filter", default="", metavar="TEXT", help="only rows whose labels contain TEXT"
    )
    t.add_argument("--errors", action="store_true", help="only calls that failed")
    t.add_argument("-n", "--limit", type=int, default=40, metavar="N", help="rows shown")
    t.add_argument("--once", action="store_true", help="print one snapshot and exit")
    t.add_argument(
        "-o", "--output", choices=("text", "json"), default="text", help="--once output format"
    )
    t.set_defaults(handler=run_top)


@dataclass(slots=True)
class View:
    by: tuple[str, ...]
    sort: str = "rate"
    text: str = ""
    errors_only: bool = False
    limit: int = 40
    paused: bool = False
    editing: str | None = None


@dataclass(slots=True)
class Line:
    """One row of the view: a group's calls in the last interval."""

    labels: dict[str, str]
    calls: int = 0
    errors: int = 0
    total_ns: int = 0
    buckets: list[int] = field(default_factory=list)


def _labels(node: str, r: Any) -> dict[str, str]:
    return {
        "node": node,
        "namespace": r.namespace,
        "pod": r.pod,
        "container": r.container,
        "pid_ns": str(r.pid_ns),
        "syscall": r.syscall,
        "class": r.klass,
        "group": r.group,
        "error": r.error,
    }


def aggregate(reports: Sequence[tuple[Any, Any]], view: View) -> list[Line]:
    """Group the calls between each (now, before) report pair per ``view.by``."""
    from syshub.metrics import delta

    groups: dict[tuple[str, ...], Line] = {}
    text = view.text.lower()
    for now, before in reports:
        for r in delta(now, before):
            labels = _labels(now.node, r)
            if text and not any(text in v.lower() for v in labels.values()):
                continue
            if view.errors_only and r.errno == 0:
                continue
            k = tuple(labels[f] for f in view.by)
            line = groups.get(k)
            if line is None:
                line = groups[k] = Line({f: labels[f] for f in view.by})
            line.calls += r.count
            line.errors += r.count if r.errno else 0
            line.total_ns += r.total_ns
            if len(line.buckets) < len(r.buckets):
                line.buckets += [0] * (len(r.buckets) - len(line.buckets))
            for i, x in enumerate(r.buckets):
                line.buckets[i] += x
    lines = list(groups.values())
    key: Callable[[Line], Any] = {
        "rate": lambda ln: -ln.calls,
        "errors": lambda ln: -ln.errors,
        "time": lambda ln: -ln.total_ns,
        "p50": lambda ln: -(_pct(ln, 0.5) or 0.0),
        "p99": lambda ln: -(_pct(ln, 0.99) or 0.0),
        "name": lambda ln: tuple(ln.labels.values()),
    }[view.sort]
    lines.sort(key=key)
    return lines


def _pct(line: Line, q: float) -> float | None:
    from syshub.metrics import percentile_ns

    return percentile_ns(line.buckets, q)


def line_doc(line: Line, secs: float) -> dict[str, Any]:
    def us(q: float) -> float | None:
        v = _pct(line, q)
        return None if v is None else round(v / 1e3, 3)

    return {
        **line.labels,
        "calls": line.calls,
        "rate": round(line.calls / secs, 3) if secs > 0 else 0.0,
        "errors": line.errors,
        "total_ns": line.total_ns,
        "avg_us": round(line.total_ns / line.calls / 1e3, 3) if line.calls else None,
        "p50_us": us(0.5),
        "p90_us": us(0.9),
        "p99_us": us(0.99),
        "buckets": line.buckets,
    }


# sources ---------------------------------------------------------------------
class LocalSource:
    """Its own kernel metrics program, labelled by the local topology."""

    def __init__(self, args: argparse.Namespace) -> None:
        from syshub.hub.config import HubConfig, default_observer
        from syshub.metrics import ContainerMetrics, Metrics

        self.metrics = Metrics(args.mode)
        try:
            observer = default_observer(HubConfig(cri_endpoint=args.cri))
            self.labels = ContainerMetrics(self.metrics, observer).start()
            self.labels.wait_synced(5.0)
        except BaseException:
            self.metrics.close()
            raise

    def reports(self) -> list[Any]:
        return [self.labels.report()]

    def close(self) -> None:
        self.labels.stop()
        self.metrics.close()


class AgentSource:
    """The Metrics method of one or more agents."""

    def __init__(self, addrs: Sequence[str]) -> None:
        from syshub.client import AgentClient

        self.addrs = list(addrs)
        self.clients = [AgentClient(a) for a in addrs]

    def reports(self) -> list[Any]:
        from google.protobuf import json_format

        from syshub.errors import SyshubError
        from syshub.metrics import MetricsReport

        out = []
        for addr, c in zip(self.addrs, self.clients, strict=True):
            try:
                msg = c.metrics()
                d = json_format.MessageToDict(msg, preserving_proto_field_name=True)
                out.append(MetricsReport.from_dict(d))
            except (SyshubError, OSError, ValueError, KeyError) as e:
                raise CliError(f"metrics of agent {addr}: {e}") from None
        return out

    def close(self) -> None:
        for c in self.clients:
            with contextlib.suppress(Exception):
                c.close()


def _source(args: argparse.Namespace) -> LocalSource | AgentSource:
    if args.agent:
        return AgentSource(args.agent)
    return LocalSource(args)


# output ----------------------------------------------------------------------
def _fmt_ns(ns: float | None) -> str:
    if ns is None:
        return "-"
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("us", 1e3)):
        if ns >= scale:
            return f"{ns / scale:.3g}{unit}"
    return f"{ns:.0f}ns"


def _fmt_rate(x: float) -> str:
    for unit, scale in (("M", 1e6), ("k", 1e3)):
        if x >= scale:
            return f"{x / scale:.3g}{unit}"
    return f"{x:.3g}"


def render(lines: list[Line], view: View, secs: float, calls: int, overflow: int) -> Any:
    from rich.table import Table

    state = "paused" if view.paused else f"every {secs:.1f}s"
    title = (
        f"syshub top: {calls} calls in {secs:.1f}s, {state}; by {','.join(view.by)}; "
        f"sort {view.sort}"
        + (f"; filter {view.text!r}" if view.text else "")
        + ("; errors only" if view.errors_only else "")
        + (f"; {overflow} calls in the overflow (map full)" if overflow else "")
    )
    caption = (
        f"filter: {view.editing}_"
        if view.editing is not None
        else "s sort  g group  / filter  e errors  p pause  q quit"
    )
    t = Table(title=title, caption=caption, expand=False)
    for f in view.by:
        t.add_column(f)
    for name in ("calls/s", "errors/s", "avg", "p50", "p90", "p99"):
        t.add_column(name, justify="right")
    for ln in lines[: view.limit]:
        avg = ln.total_ns / ln.calls if ln.calls else None
        t.add_row(
            *[ln.labels[f] or "-" for f in view.by],
            _fmt_rate(ln.calls / secs if secs else 0.0),
            _fmt_rate(ln.errors / secs if secs else 0.0),
            _fmt_ns(avg),
            _fmt_ns(_pct(ln, 0.5)),
            _fmt_ns(_pct(ln, 0.9)),
            _fmt_ns(_pct(ln, 0.99)),
        )
    return t


@contextlib.contextmanager
def _keys() -> Iterator[Callable[[float], str | None]]:
    """A reader of single key presses (cbreak mode) while on a terminal."""
    fd = sys.stdin.fileno() if sys.stdin is not None and sys.stdin.isatty() else None
    if fd is None:

        def wait(timeout: float) -> str | None:
            time.sleep(timeout)
            return None

        yield wait
        return
    old = termios.tcgetattr(fd)
    tty.setcbreak(fd)

    def read(timeout: float) -> str | None:
        ready, _, _ = select.select([fd], [], [], max(timeout, 0.0))
        return os.read(fd, 1).decode(errors="replace") if ready else None

    try:
        yield read
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, old)


def on_key(view: View, key: str) -> bool:
    """Apply a key press to ``view``; False to quit."""
    if view.editing is not None:
        if key in ("\r", "\n"):
            view.text, view.editing = view.editing, None
        elif key == "\x1b":
            view.editing = None
        elif key in ("\x7f", "\b"):
            view.editing = view.editing[:-1]
        elif key.isprintable():
            view.editing += key
        return True
    if key in ("q", "Q"):
        return False
    if key == "s":
        view.sort = SORTS[(SORTS.index(view.sort) + 1) % len(SORTS)]
    elif key == "g":
        i = GROUPS.index(view.by) if view.by in GROUPS else -1
        view.by = GROUPS[(i + 1) % len(GROUPS)]
    elif key == "/":
        view.editing = ""
    elif key == "e":
        view.errors_only = not view.errors_only
    elif key in ("p", " "):
        view.paused = not view.paused
    return True


def _view(args: argparse.Namespace) -> View:
    by = tuple(f.strip() for f in args.by.split(",") if f.strip())
    bad = [f for f in by if f not in FIELDS]
    if bad or not by:
        raise UsageError(
            f"--by: unknown field(s) {', '.join(bad) or '(none)'}; fields: {', '.join(FIELDS)}"
        )
    if not args.interval > 0:
        raise UsageError(f"--interval must be > 0, got {args.interval}")
    if args.limit < 1:
        raise UsageError(f"--limit must be >= 1, got {args.limit}")
    return View(by, args.sort, args.filter, args.errors, args.limit)


def run_top(args: argparse.Namespace) -> int:
    """``syshub top``; returns the exit status."""
    view = _view(args)
    if not (args.once and args.output == "json"):
        try:
            import rich  # noqa: F401
        except ImportError:
            raise CliError("syshub top needs rich: pip install 'syshub[metrics]'") from None
    try:
        src = _source(args)
    except KeyboardInterrupt:
        return 128 + 2
    try:
        before = src.reports()
        t0 = time.monotonic()
        if args.once:
            time.sleep(args.interval)
            now = src.reports()
            secs = time.monotonic() - t0
            lines = aggregate(list(zip(now, before, strict=True)), view)
            return _print_once(now, lines, view, secs, args.output)
        return _live(src, view, args.interval, before, t0)
    except KeyboardInterrupt:
        return 128 + 2
    finally:
        src.close()


def _print_once(now: list[Any], lines: list[Line], view: View, secs: float, output: str) -> int:
    if output == "json":
        doc = {
            "nodes": [r.node for r in now],
            "taken_at": max((r.taken_at for r in now), default=time.time()),
            "interval": round(secs, 6),
            "by": list(view.by),
            "overflow": sum(r.overflow.count for r in now),
            "rows": [line_doc(ln, secs) for ln in lines[: view.limit]],
        }
        sys.stdout.write(json.dumps(doc) + "\n")
    else:
        from rich.console import Console

        calls = sum(ln.calls for ln in lines)
        Console().print(render(lines, view, secs, calls, sum(r.overflow.count for r in now)))
    sys.stdout.flush()
    return 0


def _live(
    src: LocalSource | AgentSource, view: View, interval: float, before: Any, t0: float
) -> int:
    from rich.console import Console
    from rich.live import Live

    console = Console()
    with _keys() as key, Live(console=console, auto_refresh=False, screen=False) as live:
        shown: Any = None
        while True:
            deadline = time.monotonic() + interval
            while (left := deadline - time.monotonic()) > 0:
                k = key(left)
                if k is not None:
                    if not on_key(view, k):
                        return 0
                    if shown is not None:
                        # intent: a key press regroups the last interval at once
                        pairs, secs, overflow = shown
                        lines = aggregate(pairs, view)
                        calls = sum(ln.calls for ln in lines)
                        live.update(render(lines, view, secs, calls, overflow))
                        live.refresh()
            if view.paused and shown is not None:
                continue
            now = src.reports()
            t1 = time.monotonic()
            secs = t1 - t0
            pairs = list(zip(now, before, strict=True))
            lines = aggregate(pairs, view)
            overflow = sum(r.overflow.count for r in now)
            shown = (pairs, secs, overflow)
            live.update(render(lines, view, secs, sum(ln.calls for ln in lines), overflow))
            live.refresh()
            before, t0 = now, t1
