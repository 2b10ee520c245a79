"""Shared material for the spec tests: a syscall resolver that needs no native module and
two manifests, one per API group."""

from __future__ import annotations

import difflib
from pathlib import Path

_TABLE = Path(__file__).resolve().parents[2] / "bpf-rs" / "data" / "syscalls_x86_64.tsv"
_FALLBACK_NAMES = frozenset(
    {"read", "write", "open", "close", "stat", "fstat", "mmap", "connect", "accept", "sendto"}
    | {"recvfrom", "socket", "bind", "listen", "clone", "fork", "vfork", "execve", "exit"}
    | {"kill", "openat", "mkdirat", "unlinkat", "renameat", "execveat", "accept4", "getppid"}
    | {"getpid", "nanosleep"}
)


def _syscall_names() -> frozenset[str]:
    """Names from the shared syscall table (column 2) when it exists, else a fixed list."""
    if not _TABLE.is_file():
        return _FALLBACK_NAMES
    names = set()
    for line in _TABLE.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        names.add(line.split("\t")[1])
    return frozenset(names)


NAMES = _syscall_names()


def resolve(name: str) -> str:
    """Canonical name without ``sys_``, or ValueError with a suggestion."""
    bare = name.removeprefix("sys_")
    if bare in NAMES:
        return bare
    close = difflib.get_close_matches(bare, sorted(NAMES), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise ValueError(f"unknown syscall {name!r}{hint}")


SWOLL_MANIFEST = (
    """\
apiVersion: tools.swoll.criticalstack.com/v1alpha1
kind: Trace
metadata: {name: trace-nginx, namespace: swoll}
spec:
  hostSelector: [nginx]
  labelSelector: {matchLabels: {app: nginx}}
  fieldSelector: {matchLabels: {status.phase: Running}}
  syscalls: [sys_openat, sys_execve, connect]
  sampleRate: 2
  duration: 5m
"""
    # one line in the manifest, split here only for the line length
    'status: {state: Running, job: trace-nginx-abc, startTime: "2021-01-02T03:04:05Z", '
    'completeTime: "2021-01-02T03:09:05Z"}\n'
)

OUR_MANIFEST = """\
apiVersion: syshub.io/v1alpha1
kind: Trace
metadata:
  name: web-exec
  namespace: shop
  labels:
    team: payments
spec:
  syscalls: [execve, execveat]
  labelSelector:
    matchLabels: {app: web}
    matchExpressions:
      - {key: tier, operator: In, values: [frontend, edge]}
      - {key: canary, operator: DoesNotExist}
  fieldSelector: status.phase=Running,spec.nodeName!=node-0
  hostSelector: [web, sidecar]
  sampleRate: 0
  duration: 1h30m
"""


def manifest(**spec_changes: object) -> dict[str, object]:
    """A minimal valid manifest of our group with ``spec_changes`` applied."""
    spec: dict[str, object] = {"syscalls": ["openat"]}
    spec.update(spec_changes)
    return {
        "apiVersion": "syshub.io/v1alpha1",
        "kind": "Trace",
        "metadata": {"name": "t"},
        "spec": spec,
    }
