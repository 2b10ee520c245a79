"""The agent's configuration: one pydantic model, filled from (lowest first) its
defaults, an optional YAML file, ``SYSHUB_AGENT_<FIELD>`` environment variables
and command-line flags. Every problem is an :class:`AgentConfigError` whose
one-line message names the field and where it came from. Pure Python."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from socket import gethostname
from typing import Any, Final

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from syshub.errors import SyshubError

ENV_PREFIX: Final = "SYSHUB_AGENT_"
DEFAULT_SOCKET: Final = "/run/syshub/agent.sock"
DEFAULT_STATE_DIR: Final = "/var/lib/syshub/agent"


class AgentConfigError(SyshubError, ValueError):
    """A bad agent setting (file, environment or flag)."""


class AgentConfig(BaseModel):
    """Everything ``syshub agent`` can be told."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    socket: str = DEFAULT_SOCKET
    """Unix socket path (mode 0600); "" for none."""
    listen: str | None = None
    """TCP ``host:port``: needs tls_cert + tls_key, or ``insecure``."""
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_client_ca: str | None = None
    """CA of client certificates; when given, TCP clients must present one."""
    token_file: str | None = None
    """Bearer tokens (one a line) with full access, over TCP."""
    read_token_file: str | None = None
    """Bearer tokens that may only read (get, list, watch, stats, syscalls)."""
    insecure: bool = False
    """Allow plain TCP: no encryption, no authentication."""
    node_name: str = Field(default_factory=gethostname)
    cri_endpoint: str | None = None
    k8s_endpoint: str | None = None
    k8s_namespace: str | None = None
    alt_root: str = "/"
    state_dir: str = DEFAULT_STATE_DIR
    """Where traces created through the API are kept (files 0600) so a
    restarted agent resumes them; "" for none."""
    ring_bytes: int = Field(default=16 << 20, ge=4096, le=1 << 30)
    poll_ms: int = Field(default=10, ge=1, le=1000)
    tracepoint_syscalls: int = Field(default=16, ge=0, le=1024)
    """A long-lived agent keeps more syscalls on their own tracepoints (cheaper
    for untraced syscalls than the raw hooks)."""
    stream_queue: int = Field(default=65536, ge=1, le=1 << 24)
    """Events one Watch stream may hold (more are counted as its drops)."""
    max_batch: int = Field(default=4096, ge=1, le=1 << 20)
    """Events per Watch message at most."""
    max_streams: int = Field(default=64, ge=1, le=4096)
    shutdown_grace: float = Field(default=5.0, gt=0, le=300)
    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    metrics_host: str = "127.0.0.1"
    metrics_mode: str = "node"
    """``node`` (every process) or ``containers`` (read by the metrics component)."""
    metrics_swoll: bool = False
    """Also export swoll's metric names."""
    metrics_latency: bool = False
    """Latency histograms in the metrics (an entry hook and two clock reads on
    every syscall of the node: about +120 ns each); off by default, so metrics
    cost a node no more than a bare enter + exit hook pair (counts and errnos on
    the exit hook alone; docs/benchmarks.md, issue 12)."""
    kubernetes: bool = False
    """Run the Kubernetes Trace controller (syshub.agent.controller)."""
    k8s_groups: str = "syshub"
    """API groups of the Trace resources the controller follows: syshub, swoll or both
    (comma-separated)."""
    max_filter_keys: int | None = Field(default=None, ge=1)
    """Kernel filter keys (pid namespace, syscall) the Hub installs at most (None: as
    many as the kernel's filter map holds)."""
    python_encoding: bool = False
    """Encode events in Python (one object per event) even when the Hub can
    hand out batches for the Rust encoders: slower, for comparisons."""
    log_level: str = "info"

    @model_validator(mode="after")
    def _check(self) -> AgentConfig:
        if not self.socket and not self.listen:
            raise ValueError("nothing to listen on: give socket and/or listen")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together")
        if self.listen is not None:
            parse_hostport(self.listen, "listen")
            if self.tls_cert is None and not self.insecure:
                raise ValueError(
                    "listen: plain TCP needs --insecure (no encryption, anyone who can "
                    "reach the port can trace this node); give --tls-cert/--tls-key"
                )
        if self.tls_client_ca is not None and self.tls_cert is None:
            raise ValueError("tls_client_ca needs tls_cert and tls_key")
        groups = [g.strip() for g in self.k8s_groups.split(",")]
        if not groups or any(g not in ("syshub", "swoll") for g in groups):
            raise ValueError("k8s_groups must be syshub, swoll or syshub,swoll")
        if self.metrics_mode not in ("node", "containers"):
            raise ValueError("metrics_mode must be node or containers")
        if self.log_level.lower() not in ("debug", "info", "warning", "error"):
            raise ValueError("log_level must be debug, info, warning or error")
        return self

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None


def parse_hostport(text: str, what: str) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port``; raises ValueError naming ``what``."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{what} must be HOST:PORT, got {text!r}")
    return host.strip("[]") or "0.0.0.0", int(port)


FIELDS: Final = tuple(AgentConfig.model_fields)


def env_values(environ: Mapping[str, str]) -> dict[str, str]:
    """``SYSHUB_AGENT_<FIELD>`` variables as field values; unknown ones are errors."""
    out: dict[str, str] = {}
    for key, value in environ.items():
        if not key.startswith(ENV_PREFIX) or key == ENV_PREFIX + "CONFIG":
            continue
        name = key[len(ENV_PREFIX) :].lower()
        if name not in FIELDS:
            raise AgentConfigError(f"{key}: unknown setting (known: {', '.join(FIELDS)})")
        out[name] = value
    return out


def file_values(path: str) -> dict[str, Any]:
    """A YAML mapping of settings (dashes or underscores in keys)."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as e:
        raise AgentConfigError(f"config file {path}: {e.strerror or e}") from None
    except yaml.YAMLError as e:
        problem = " ".join(str(e).split())
        raise AgentConfigError(f"config file {path}: invalid YAML: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise AgentConfigError(f"config file {path}: expected a mapping of settings")
    return {str(k).replace("-", "_"): v for k, v in data.items()}


def _one_line(e: ValidationError, origin: Mapping[str, str]) -> str:
    err = e.errors()[0]
    loc = ".".join(str(p) for p in err["loc"])
    msg = str(err["msg"]).removeprefix("Value error, ")
    if not loc:
        return msg
    return f"{loc} ({origin.get(loc, 'default')}): {msg}"


def build_config(
    flags: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    config_file: str | None = None,
) -> AgentConfig:
    """Defaults < ``config_file`` (or ``$SYSHUB_AGENT_CONFIG``) < environment <
    ``flags`` (None values are not given)."""
    environ = os.environ if environ is None else environ
    config_file = config_file or environ.get(ENV_PREFIX + "CONFIG") or None
    values: dict[str, Any] = {}
    origin: dict[str, str] = {}
    if config_file:
        for k, v in file_values(config_file).items():
            values[k] = v
            origin[k] = f"file {config_file}"
    for k, v in env_values(environ).items():
        values[k] = v
        origin[k] = f"${ENV_PREFIX}{k.upper()}"
    for k, v in (flags or {}).items():
        if v is not None:
            values[k] = v
            origin[k] = f"--{k.replace('_', '-')}"
    try:
        return AgentConfig(**values)
    except ValidationError as e:
        raise AgentConfigError(_one_line(e, origin)) from None
