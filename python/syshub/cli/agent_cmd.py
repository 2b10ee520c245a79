"""``syshub agent``: the node agent's command line. Flags override
``SYSHUB_AGENT_*`` environment variables, which override the YAML file given
with ``--config`` (or ``$SYSHUB_AGENT_CONFIG``)."""

from __future__ import annotations

import argparse
from typing import Any

from syshub.cli.errors import CliError, UsageError

AGENT_EPILOG = """\
listening:
  By default the agent listens on the unix socket /run/syshub/agent.sock (mode 0600:
  root only). --listen HOST:PORT adds TCP, which needs --tls-cert/--tls-key (clients
  may then authenticate with certificates signed by --tls-client-ca, or with a bearer
  token from --token-file; --read-token-file tokens may only read). --insecure allows
  plain TCP: no encryption and no authentication, anyone who reaches the port can
  trace every process of this node. Use it only on a loopback address or in tests.

settings: every flag is also SYSHUB_AGENT_<SETTING> in the environment and a key of the
  YAML --config file, the setting being the flag's name with underscores (SYSHUB_AGENT_LISTEN,
  node_name: ...), except --kubeconfig (k8s_endpoint) and --trace-groups (k8s_groups). Flags
  win over the environment, which wins over the file.

logs: JSON lines on stderr. SIGTERM/SIGINT: stop accepting, end every stream with its
final counters, stop the Hub, remove the socket.
"""

#: flag, dest, type, metavar, help
_OPTIONS: tuple[tuple[str, str, Any, str, str], ...] = (
    ("--socket", "socket", str, "PATH", "unix socket path ('' for none) [/run/syshub/agent.sock]"),
    ("--listen", "listen", str, "HOST:PORT", "also listen on TCP (needs TLS or --insecure)"),
    ("--tls-cert", "tls_cert", str, "FILE", "server certificate (PEM) for TCP"),
    ("--tls-key", "tls_key", str, "FILE", "server private key (PEM) for TCP"),
    ("--tls-client-ca", "tls_client_ca", str, "FILE", "require client certificates of this CA"),
    ("--token-file", "token_file", str, "FILE", "bearer tokens (one a line): full access"),
    ("--read-token-file", "read_token_file", str, "FILE", "bearer tokens that may only read"),
    ("--node-name", "node_name", str, "NAME", "node name carried by events [hostname]"),
    ("--cri-endpoint", "cri_endpoint", str, "URL", "containers from this CRI socket"),
    ("--kubeconfig", "k8s_endpoint", str, "PATH", "pods from Kubernetes (kubeconfig or URL)"),
    ("--k8s-namespace", "k8s_namespace", str, "NS", "only pods of this namespace"),
    ("--state-dir", "state_dir", str, "DIR", "API traces kept here for a restart ('' for none)"),
    ("--trace-groups", "k8s_groups", str, "GROUPS", "Trace API groups: syshub,swoll [syshub]"),
    ("--ring-bytes", "ring_bytes", int, "BYTES", "kernel ring buffer size [16M]"),
    ("--tracepoint-syscalls", "tracepoint_syscalls", int, "N", "syscalls on own tracepoints [16]"),
    ("--stream-queue", "stream_queue", int, "EVENTS", "queue bound per Watch stream [65536]"),
    ("--max-batch", "max_batch", int, "EVENTS", "events per Watch message at most [4096]"),
    ("--max-streams", "max_streams", int, "N", "concurrent Watch streams at most [64]"),
    ("--shutdown-grace", "shutdown_grace", float, "SECONDS", "time streams get to end [5]"),
    ("--metrics-port", "metrics_port", int, "PORT", "serve Prometheus /metrics on this port"),
    ("--metrics-host", "metrics_host", str, "HOST", "address of /metrics [127.0.0.1]"),
    ("--metrics-mode", "metrics_mode", str, "MODE", "node or containers [node]"),
    ("--log-level", "log_level", str, "LEVEL", "debug, info, warning, error [info]"),
)


def add_agent_parser(sub: Any, formatter: type[argparse.HelpFormatter]) -> None:
    """Register ``syshub agent`` on the top-level subparsers."""
    a = sub.add_parser(
        "agent",
        help="run the node agent (gRPC API over a unix socket or TLS)",
        description="Run the node agent: one Hub traced over gRPC (needs root).",
        epilog=AGENT_EPILOG,
        formatter_class=formatter,
    )
    from syshub.cli.parser import ring_bytes

    a.add_argument("--config", metavar="FILE", help="YAML file of settings")
    for flag, dest, typ, metavar, text in _OPTIONS:
        if dest == "ring_bytes":
            typ = ring_bytes
        a.add_argument(flag, dest=dest, type=typ, metavar=metavar, default=None, help=text)
    a.add_argument(
        "--insecure",
        action="store_true",
        default=None,
        help="allow --listen without TLS: plain TCP, no encryption, no authentication",
    )
    a.add_argument(
        "--metrics-swoll",
        action="store_true",
        default=None,
        help="also export swoll's metric names on /metrics",
    )
    a.add_argument(
        "--metrics-latency",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="latency histograms in the metrics (an entry hook and two clock reads on "
        "every syscall) [off: counts and errnos only, the cheaper kernel path]",
    )
    a.add_argument(
        "--python-encoding",
        action="store_true",
        default=None,
        help="encode events in Python, not in Rust (slower; for comparisons)",
    )
    a.add_argument(
        "--kubernetes",
        action="store_true",
        default=None,
        help="run the Kubernetes Trace controller in the agent",
    )


def _flags(args: argparse.Namespace) -> dict[str, Any]:
    names = [dest for _f, dest, _t, _m, _h in _OPTIONS] + [
        "insecure",
        "kubernetes",
        "metrics_latency",
        "metrics_swoll",
        "python_encoding",
    ]
    return {n: getattr(args, n) for n in names}


def run_agent(args: argparse.Namespace) -> int:
    from syshub.agent.config import AgentConfigError, build_config
    from syshub.agent.logs import setup_logging
    from syshub.errors import ProbeError

    try:
        cfg = build_config(_flags(args), config_file=args.config)
    except AgentConfigError as e:
        raise UsageError(str(e)) from None
    log = setup_logging(cfg.log_level)
    from syshub.agent.server import Agent

    try:
        Agent(cfg).run()
    except AgentConfigError as e:
        log.error("agent failed to start", extra={"error": str(e)})
        raise UsageError(str(e)) from None
    except PermissionError as e:
        raise CliError(f"{e} (run the agent as root)" if "root" not in str(e) else str(e)) from None
    except ProbeError as e:
        raise CliError(f"cannot load the probe: {e}") from None
    except Exception as e:  # a bug: logged with its traceback, one line for the user
        log.exception("agent failed")
        raise CliError(f"agent failed: {type(e).__name__}: {e}") from None
    return 0
