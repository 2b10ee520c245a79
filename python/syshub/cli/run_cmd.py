"""``syshub run``: trace pods of a cluster from a laptop.

Creates a Trace with the user's kubeconfig, follows its events from every node by following
the agent pods' logs through the API server (each agent prints a trace's events as JSON lines
labelled with the trace and its job, see :mod:`syshub.agent.controller.report`), and deletes
the Trace on Ctrl-C (or once it completed, with ``--duration``).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
import uuid
from typing import Any, TextIO

from syshub.cli.errors import EXIT_FAILURE, CliError, UsageError

RUN_EPILOG = """\
The agents (deploy/: the syshub-agent DaemonSet) must run with --kubernetes; `syshub run`
needs create/get/delete on traces and get/list on pods and pods/log in the agents' namespace.

examples:
  syshub run -n shop -l app=web -s openat,connect
  syshub run -n shop -l app=web -s %network --duration 30s -o json
"""
AGENT_SELECTOR = "app.kubernetes.io/name=syshub-agent"


def add_run_parser(sub: Any, formatter: type[argparse.HelpFormatter]) -> None:
    from syshub.cli.parser import duration, ranged

    r = sub.add_parser(
        "run",
        help="trace pods of a Kubernetes cluster through the node agents",
        description="Create a Trace, follow its events from every node, delete it on Ctrl-C.",
        epilog=RUN_EPILOG,
        formatter_class=formatter,
    )
    r.add_argument("-n", "--namespace", default="default", help="namespace of the pods")
    r.add_argument("-l", "--selector", default="", help="pod label selector (app=web,tier!=db)")
    r.add_argument("--field-selector", default=None, help="pod field selector")
    r.add_argument("-c", "--container", action="append", default=[], help="only this container")
    r.add_argument("-s", "--syscalls", required=True, metavar="LIST", help="syscalls (as trace)")
    r.add_argument("--duration", type=duration, metavar="SECONDS", help="complete after this")
    r.add_argument("--sample-rate", type=ranged("--sample-rate"), default=1, metavar="N")
    r.add_argument("--name", default=None, help="the Trace's name [run-<random>]")
    r.add_argument("--group", choices=("syshub", "swoll"), default="syshub", help="API group")
    r.add_argument("--kubeconfig", default=None, help="kubeconfig path or API URL")
    r.add_argument("--agent-namespace", default="syshub", help="namespace of the agents")
    r.add_argument("--agent-selector", default=AGENT_SELECTOR, help="label selector of agents")
    r.add_argument("-o", "--output", choices=("text", "json"), default="text", help="format")
    r.add_argument("--keep", action="store_true", help="do not delete the Trace at the end")
    r.set_defaults(handler=run_run)


class _Follower:
    """Follows the log of one agent pod; prints this trace's lines."""

    def __init__(self, run: _Run, pod: str) -> None:
        self.run = run
        self.pod = pod
        self.thread = threading.Thread(target=self._follow, name=f"log-{pod}", daemon=True)
        self.response: Any = None

    def _follow(self) -> None:
        run = self.run
        try:
            resp = run.core.read_namespaced_pod_log(
                self.pod, run.agent_ns, follow=True, _preload_content=False
            )
        except Exception as exc:
            run.warn(f"cannot follow the log of agent pod {self.pod}: {_one_line(exc)}")
            return
        self.response = resp
        buf = b""
        try:
            for chunk in resp.stream(amt=None, decode_content=False):
                buf += chunk
                *lines, buf = buf.split(b"\n")
                for line in lines:
                    run.line(line)
        except Exception:
            if not run.stopping.is_set():
                run.warn(f"the log of agent pod {self.pod} ended")


class _Run:
    def __init__(self, args: argparse.Namespace, out: TextIO) -> None:
        from syshub.spec.crd import GROUPS
        from syshub.topology.kubernetes.api import _kubernetes, load_configuration

        k8s_client, _ = _kubernetes()
        self.args = args
        self.out = out
        self.group = GROUPS[args.group]
        self.agent_ns = args.agent_namespace
        self.client = k8s_client.ApiClient(load_configuration(args.kubeconfig))
        self.custom = k8s_client.CustomObjectsApi(self.client)
        self.core = k8s_client.CoreV1Api(self.client)
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.job = ""
        # intent: a node can log the Trace's first lines before create() has read the
        # answer that names the job: followers wait for it rather than drop them
        self.job_known = threading.Event()
        self.printed = 0
        self.nodes: set[str] = set()

    def warn(self, text: str) -> None:
        with self.lock:
            sys.stderr.write(f"syshub: {text}\n")
            sys.stderr.flush()

    def line(self, raw: bytes) -> None:
        try:
            doc = json.loads(raw)
        except ValueError:
            return  # a log line that is not an event
        if not isinstance(doc, dict):
            return
        self.job_known.wait()
        if doc.get("job") != self.job:
            return
        if self.args.output == "json":
            text = raw.decode("utf-8", "replace")
        else:
            ev = doc.get("event") or {}
            c = ev.get("container") or {}
            where = f"{c.get('namespace', '-')}/{c.get('pod', '-')}/{c.get('name', '-')}"
            text = f"{doc.get('node', '?')} {where} {doc.get('text', '')}"
        with self.lock:
            self.out.write(text + "\n")
            self.out.flush()
            self.printed += 1
            self.nodes.add(str(doc.get("node")))

    def create(self, manifest: dict[str, Any]) -> dict[str, Any]:
        from syshub.agent.controller.status import job_id_for

        ns = manifest["metadata"]["namespace"]
        try:
            obj: dict[str, Any] = self.custom.create_namespaced_custom_object(
                self.group, "v1alpha1", ns, "traces", manifest
            )
        except Exception as exc:
            if getattr(exc, "status", None) == 404:
                raise CliError(
                    f"the Trace resource of {self.group} is not served: install the CRD "
                    "(syshub crd | kubectl apply -f -)"
                ) from None
            raise CliError(f"cannot create the Trace: {_one_line(exc)}") from None
        meta = obj["metadata"]
        self.job = job_id_for(str(meta["name"]), str(meta.get("uid", "")))
        self.job_known.set()
        return obj

    def state(self, ns: str, name: str) -> str:
        try:
            obj = self.custom.get_namespaced_custom_object(
                self.group, "v1alpha1", ns, "traces", name
            )
        except Exception:
            return ""
        return str((obj.get("status") or {}).get("state") or "")

    def delete(self, ns: str, name: str) -> None:
        try:
            self.custom.delete_namespaced_custom_object(self.group, "v1alpha1", ns, "traces", name)
        except Exception as exc:
            if getattr(exc, "status", None) != 404:
                self.warn(f"cannot delete trace {ns}/{name}: {_one_line(exc)}")

    def agents(self) -> list[str]:
        try:
            resp = self.core.list_namespaced_pod(
                self.agent_ns, label_selector=self.args.agent_selector, _preload_content=False
            )
            pods = json.loads(resp.data)
        except Exception as exc:
            raise CliError(
                f"cannot list the agent pods in {self.agent_ns}: {_one_line(exc)}"
            ) from None
        return [str(p["metadata"]["name"]) for p in pods.get("items") or []]


def _one_line(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    status = getattr(exc, "status", None)
    if reason and status:
        return f"{status} {reason}"
    return " ".join(str(exc).split()) or type(exc).__name__


def _manifest(args: argparse.Namespace) -> dict[str, Any]:
    from syshub.cli.parser import parse_syscalls
    from syshub.errors import SyshubError
    from syshub.spec.crd import GROUPS
    from syshub.spec.trace import Trace

    name = args.name or f"run-{uuid.uuid4().hex[:8]}"
    try:
        trace = Trace.new(
            name,
            parse_syscalls(args.syscalls),
            namespace=args.namespace,
            labels=args.selector or None,
            fields=args.field_selector,
            hosts=args.container,
            sample_rate=args.sample_rate,
            duration=args.duration,
            api_version=f"{GROUPS[args.group]}/v1alpha1",
        )
    except SyshubError as exc:
        raise UsageError(str(exc)) from None
    return trace.to_dict()


def run_run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Create the Trace, print its events until Ctrl-C / completion, delete it."""
    manifest = _manifest(args)
    run = _Run(args, out or sys.stdout)
    agents = run.agents()
    if not agents:
        raise CliError(
            f"no agent pods ({args.agent_selector}) in namespace {run.agent_ns}: "
            "deploy syshub (kubectl apply -k deploy/base)"
        )
    ns, name = manifest["metadata"]["namespace"], manifest["metadata"]["name"]
    followers = [_Follower(run, pod) for pod in agents]
    for f in followers:
        f.thread.start()
    run.create(manifest)
    run.warn(f"trace {ns}/{name} created; following {len(agents)} agent(s) (Ctrl-C to stop)")
    status = 0
    previous = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        deadline = None if args.duration is None else time.monotonic() + args.duration + 60
        while True:
            time.sleep(0.5)
            if args.duration is not None and run.state(ns, name) in ("Complete", "Failed"):
                time.sleep(1.0)  # the last lines of the agents' logs
                break
            if deadline is not None and time.monotonic() > deadline:
                run.warn("the trace did not complete in time")
                status = EXIT_FAILURE
                break
    except KeyboardInterrupt:
        status = 128 + signal.SIGINT
    finally:
        signal.signal(signal.SIGTERM, previous)
        run.stopping.set()
        if not args.keep:
            run.delete(ns, name)
        for f in followers:
            if f.response is not None:
                from syshub.topology.kubernetes.api import shutdown_response

                shutdown_response(f.response)
    nodes = ", ".join(sorted(run.nodes)) or "none"
    kept = "kept" if args.keep else "deleted"
    run.warn(f"{run.printed} events from nodes: {nodes}; trace {ns}/{name} {kept}")
    return status
