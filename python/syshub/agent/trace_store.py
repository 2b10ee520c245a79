"""The agent's traces on disk, so a restarted agent resumes them: one JSON
file per trace created through the API (``trace-<hash of namespace/name>.json``,
mode 0600, in a directory of mode 0700), written atomically (a temporary
file, fsync, rename, fsync of the directory) and removed when the trace is
deleted. Traces of the Kubernetes controller are not stored: the API server
holds them.

A file holds the manifest (without status), the job id, when the trace
started, its target and capture sizes. :meth:`TraceStore.load` returns the
ones that still parse; each one that does not is skipped with one log line
and left where it is."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from syshub.errors import SyshubError
from syshub.hub.jobs import Target, TargetKind
from syshub.hub.plan import CaptureSizes
from syshub.spec.trace import Trace

log = logging.getLogger("syshub.agent")

VERSION: Final = 1
PREFIX: Final = "trace-"
SUFFIX: Final = ".json"


class TraceStoreError(SyshubError):
    """The state directory cannot be used (one line naming it)."""


@dataclass(frozen=True)
class StoredTrace:
    """One trace as the agent created it."""

    trace: Trace
    job_id: str
    started: datetime
    target: Target
    capture: CaptureSizes | None
    pid_start: int | None = None
    """A pid target's start time (clock ticks after boot): a recycled pid is not its process."""

    def remaining(self, now: datetime | None = None) -> timedelta | None:
        """Time left of its duration (None: no limit); <= 0 when elapsed."""
        if self.trace.spec.duration is None:
            return None
        end = self.started + timedelta(seconds=self.trace.spec.duration)
        return end - (now or datetime.now(UTC))

    def to_json(self) -> str:
        manifest = self.trace.to_dict()
        manifest.pop("status", None)
        cap = self.capture
        doc: dict[str, Any] = {
            "version": VERSION,
            "manifest": manifest,
            "job_id": self.job_id,
            "started": self.started.isoformat(),
            "target": {"kind": self.target.kind.value, "value": self.target.value},
            "pid_start": self.pid_start,
            "capture": None
            if cap is None
            else {
                "str_max": cap.str_max,
                "argv_max": cap.argv_max,
                "buf_max": cap.buf_max,
                "durations": cap.durations,
            },
        }
        return json.dumps(doc, ensure_ascii=False, sort_keys=True)

    @staticmethod
    def from_json(text: str) -> StoredTrace:
        """Raises ValueError (or a subclass) naming what is wrong."""
        doc = json.loads(text)
        if not isinstance(doc, dict) or doc.get("version") != VERSION:
            raise ValueError(f"not a version {VERSION} trace record")
        trace = Trace.from_dict(doc["manifest"])
        started = datetime.fromisoformat(doc["started"])
        if started.tzinfo is None:
            raise ValueError("started: no time zone")
        t = doc["target"]
        target = Target(TargetKind(t["kind"]), int(t["value"]))
        capture: CaptureSizes | None = None
        if doc.get("capture") is not None:
            from syshub.spec import limits

            c = doc["capture"]
            capture = limits.Capture(
                str_max=int(c["str_max"]),
                argv_max=int(c["argv_max"]),
                buf_max=int(c["buf_max"]),
                durations=bool(c.get("durations", False)),
            )
        start = doc.get("pid_start")
        pid_start = None if start is None else int(start)
        return StoredTrace(trace, str(doc["job_id"]), started, target, capture, pid_start)


def process_start(pid: int) -> int | None:
    """Start time of process ``pid`` (clock ticks after boot); None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rpartition(")")[2].split()[19])


class TraceStore:
    """Traces saved in ``directory`` (created, mode 0700, on first save)."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.dir = Path(directory)

    def path(self, key: tuple[str, str]) -> Path:
        digest = hashlib.sha256(f"{key[0]}/{key[1]}".encode()).hexdigest()[:24]
        return self.dir / f"{PREFIX}{digest}{SUFFIX}"

    def save(self, stored: StoredTrace) -> None:
        """Write atomically: a reader (or a crash) sees the old file or the new one."""
        data = stored.to_json().encode()
        try:
            self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=SUFFIX, dir=self.dir)  # 0600
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, self.path(stored.trace.key))
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
            self._sync_dir()
        except OSError as e:
            raise TraceStoreError(f"state_dir {self.dir}: {e.strerror or e}") from None

    def remove(self, key: tuple[str, str]) -> None:
        try:
            os.unlink(self.path(key))
        except FileNotFoundError:
            return
        except OSError as e:
            raise TraceStoreError(f"state_dir {self.dir}: {e.strerror or e}") from None
        self._sync_dir()

    def _sync_dir(self) -> None:
        with contextlib.suppress(OSError):
            fd = os.open(self.dir, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def load(self) -> list[StoredTrace]:
        """Every stored trace that parses, oldest first; each other file is
        logged (one line) and skipped."""
        try:
            names = sorted(
                p for p in self.dir.iterdir() if p.name.startswith(PREFIX) and p.suffix == SUFFIX
            )
        except FileNotFoundError:
            return []
        except OSError as e:
            raise TraceStoreError(f"state_dir {self.dir}: {e.strerror or e}") from None
        out: list[StoredTrace] = []
        for p in names:
            try:
                stored = StoredTrace.from_json(p.read_text(encoding="utf-8"))
                if p != self.path(stored.trace.key):
                    raise ValueError("its name does not match the trace it holds")
            except (OSError, ValueError, TypeError, KeyError, SyshubError) as e:
                problem = " ".join(str(e).split())[:300]
                log.warning(
                    "stored trace skipped",
                    extra={"file": str(p), "error": f"{type(e).__name__}: {problem}"},
                )
                continue
            out.append(stored)
        return sorted(out, key=lambda s: s.started)
