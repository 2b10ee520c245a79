"""``syshub traces create|list|get|delete`` and ``syshub watch``: the agent's
client on the command line. ``--agent`` (repeatable) names each agent:
``unix:///run/syshub/agent.sock`` (the default) or ``host:port`` (TLS unless
``--insecure``). With several agents, traces are created on each and events
are merged; every event carries its node name."""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from syshub.cli.errors import EXIT_USAGE, CliError, OutputError
from syshub.cli.summary import kernel_drops

if TYPE_CHECKING:
    from syshub.client import AgentClient, WatchBatch
    from syshub.v1 import agent_pb2 as pb

DEFAULT_AGENT = "unix:///run/syshub/agent.sock"


def _agent_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("agents")
    g.add_argument(
        "--agent",
        action="append",
        metavar="ADDR",
        help=f"unix:///PATH or HOST:PORT; repeat for several agents [{DEFAULT_AGENT}]",
    )
    g.add_argument("--tls-ca", metavar="FILE", help="CA that signed the agents' certificates")
    g.add_argument("--tls-cert", metavar="FILE", help="client certificate (PEM)")
    g.add_argument("--tls-key", metavar="FILE", help="client private key (PEM)")
    g.add_argument("--token-file", metavar="FILE", help="bearer token for TCP agents")
    g.add_argument("--server-name", metavar="NAME", help="expected name in the agent certificate")
    g.add_argument(
        "--insecure", action="store_true", help="plain TCP: no TLS (the agent runs --insecure)"
    )
    p.add_argument("-n", "--namespace", default="default", help="the trace's namespace")


def add_remote_parsers(sub: Any, formatter: type[argparse.HelpFormatter]) -> None:
    """Register ``syshub agent``, ``syshub traces`` and ``syshub watch``."""
    from syshub.cli.agent_cmd import add_agent_parser

    add_agent_parser(sub, formatter)
    t = sub.add_parser(
        "traces",
        help="create, list, get or delete traces on agents",
        description="Manage the traces of node agents.",
        formatter_class=formatter,
    )
    ts = t.add_subparsers(dest="traces_command", required=True, metavar="ACTION")
    c = ts.add_parser("create", help="start a trace from a manifest", formatter_class=formatter)
    c.add_argument(
        "-f", "--file", required=True, metavar="FILE", help="Trace manifest ('-': stdin)"
    )
    c.add_argument("--wait", type=float, default=5.0, metavar="SECONDS", help="wait for filters")
    _agent_options(c)
    ls = ts.add_parser("list", help="list traces", formatter_class=formatter)
    ls.add_argument("-A", "--all-namespaces", action="store_true", help="every namespace")
    _agent_options(ls)
    for action, text in (("get", "show a trace (JSON)"), ("delete", "stop and forget a trace")):
        a = ts.add_parser(action, help=text, formatter_class=formatter)
        a.add_argument("name", metavar="NAME")
        _agent_options(a)
    w = sub.add_parser(
        "watch",
        help="print the events of a trace (or a path) from agents",
        description="Stream events from agents until the trace ends or Ctrl-C. Summary on "
        "stderr: per agent, matched = delivered + dropped by the stream.",
        formatter_class=formatter,
    )
    w.add_argument("name", nargs="?", metavar="NAME", help="the trace")
    w.add_argument("--path", metavar="NS/POD/CONTAINER/SYSCALL", help="a path prefix instead")
    w.add_argument("-o", "--output", choices=("text", "json"), default="text", help="format")
    w.add_argument("--queue", type=int, default=0, metavar="EVENTS", help="stream queue bound")
    _agent_options(w)


def _clients(args: argparse.Namespace) -> list[AgentClient]:
    from syshub.client import AgentClient

    return [
        AgentClient(
            target,
            tls_ca=args.tls_ca,
            tls_cert=args.tls_cert,
            tls_key=args.tls_key,
            token_file=args.token_file,
            insecure=args.insecure,
            server_name=args.server_name,
        )
        for target in (args.agent or [DEFAULT_AGENT])
    ]


def _fail(e: Exception) -> CliError:
    code = getattr(e, "code", "")
    return CliError(str(e), EXIT_USAGE if code == "INVALID_ARGUMENT" else None)


def _out(text: str) -> None:
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except OSError as e:
        raise OutputError(f"cannot write to stdout: {e.strerror or e}") from None


def _counts(info: pb.TraceInfo) -> str:
    c = info.counters
    return (
        f"{c.matched} matched: {c.delivered} delivered, {kernel_drops(c.dropped, c.over_share)}, "
        f"{c.sampled_out} sampled out"
    )


def run_traces(args: argparse.Namespace) -> int:
    from google.protobuf.json_format import MessageToDict

    from syshub.errors import SyshubError

    try:
        clients = _clients(args)
        action = args.traces_command
        if action == "create":
            manifest = sys.stdin.read() if args.file == "-" else _read(args.file)
            for cl in clients:
                info = cl.create_trace(manifest, wait_applied=args.wait)
                ready = "filters in" if info.applied else "filters not in yet"
                _out(f"trace {info.namespace}/{info.name} created on {info.node} ({ready})\n")
        elif action == "list":
            rows = [("NODE", "NAMESPACE", "NAME", "STATE", "SYSCALLS", "MATCHED", "DROPPED")]
            for cl in clients:
                for i in cl.list_traces("" if args.all_namespaces else args.namespace):
                    rows.append(
                        (
                            i.node,
                            i.namespace,
                            i.name,
                            i.state,
                            ",".join(i.syscalls),
                            str(i.counters.matched),
                            str(i.counters.dropped),
                        )
                    )
            widths = [max(len(r[k]) for r in rows) for k in range(len(rows[0]))]
            _out(
                "".join(
                    "  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() + "\n"
                    for r in rows
                )
            )
        elif action == "get":
            for cl in clients:
                info = cl.get_trace(args.name, args.namespace)
                doc = MessageToDict(info, preserving_proto_field_name=True)
                doc["manifest"] = json.loads(doc.pop("manifest_json", "{}"))
                _out(json.dumps(doc, indent=2) + "\n")
        else:
            for cl in clients:
                info = cl.delete_trace(args.name, args.namespace)
                _out(
                    f"trace {info.namespace}/{info.name} deleted on {info.node}: {_counts(info)}\n"
                )
    except SyshubError as e:
        raise _fail(e) from None
    return 0


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError as e:
        raise CliError(f"cannot read {path}: {e.strerror or e}") from None


def _lines(batch: WatchBatch, fmt: str, several: bool) -> Iterator[str]:
    if fmt == "json":
        node = json.dumps(batch.node)
        for line in batch.lines:
            yield '{"node":' + node + ("," + line[1:] if len(line) > 2 else "}")
    elif several:
        for line in batch.lines:
            yield f"[{batch.node}] {line}"
    else:
        yield from batch.lines


def run_watch(args: argparse.Namespace) -> int:
    from syshub.client import merge_watch
    from syshub.errors import SyshubError

    if (args.name is None) == (args.path is None):
        raise CliError("give a trace NAME or --path, not both", EXIT_USAGE)
    stopped: list[int] = []

    def on_signal(signum: int, _frame: object) -> None:
        stopped.append(signum)
        raise KeyboardInterrupt

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    last: dict[str, WatchBatch] = {}
    failed = 0
    try:
        clients = _clients(args)
        several = len(clients) > 1
        stream = merge_watch(
            clients,
            parse=False,
            name=args.name,
            namespace=args.namespace,
            path=args.path,
            format=args.output,
            queue=args.queue,
        )
        with contextlib.closing(stream):
            for item in stream:
                if isinstance(item, Exception):
                    sys.stderr.write(f"syshub: error: {item}\n")
                    failed = max(failed, _fail(item).status)
                    continue
                last[item.agent] = item
                if item.lines:
                    _out("\n".join(_lines(item, args.output, several)) + "\n")
    except KeyboardInterrupt:
        pass
    except SyshubError as e:
        raise _fail(e) from None
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    for b in last.values():
        c = b.counters
        end = b.end_reason if b.final else "interrupted"
        sys.stderr.write(
            f"syshub: {b.node}: {c.matched} matched: {c.delivered} delivered, "
            f"{c.dropped} dropped (stream), {c.queued} queued ({end})\n"
        )
    if stopped:
        return 128 + stopped[0]
    return failed


def run_remote(args: argparse.Namespace) -> int:
    """Dispatch ``syshub agent``, ``syshub traces`` and ``syshub watch``."""
    if args.command == "agent":
        from syshub.cli.agent_cmd import run_agent

        return run_agent(args)
    if args.command == "traces":
        return run_traces(args)
    return run_watch(args)
