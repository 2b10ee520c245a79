"""``syshub trace``: build a Trace, run it on a local Hub (HostObserver), print
its events, account for every matched call.

Order of a run: load the probe; start CMD held before ``exec`` in a new pid
namespace (under a minimal init: the command is PID 2); run the job (``CMD``
/ ``--pid``: a kernel process scope, ``--namespace-of``: a pid namespace,
``--host``: every namespace) and subscribe to it; wait until its filters are
in the kernel; release CMD. At the end: end the command if it still runs, delete the
trace (the Hub routes what the kernel already emitted), print what is queued,
print the summary, and only then stop the Hub.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import select
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING

from syshub.cli.errors import EXIT_NOT_FOUND, BrokenOutput, CliError, UsageError
from syshub.cli.output import EventWriter, open_output
from syshub.cli.parser import KILL_AFTER
from syshub.cli.signals import SignalGate
from syshub.cli.summary import trace_summary

if TYPE_CHECKING:
    from syshub import Hub, Job, Target
    from syshub.hub.batches import BatchSubscription
    from syshub.nsproc import NamespacedProcess
    from syshub.spec.limits import Capture

#: ``timeout(1)``'s exit status when the duration ended the command.
EXIT_TIMEOUT = 124
#: How long a command may take to exit after a stopping signal before SIGKILL.
SIGNAL_GRACE = 0.5
#: How long the kernel filters may take to be installed.
APPLY_TIMEOUT = 30.0
POLL = 0.05
#: Events written per write (one encode and one write call).
BATCH = 16384


def capture_sizes(args: argparse.Namespace) -> Capture:
    from syshub.errors import TraceSpecError
    from syshub.spec.limits import Capture

    try:
        return Capture(
            str_max=args.str_max,
            argv_max=args.argv_max,
            buf_max=args.buf_max,
            durations=args.durations,
        )
    except TraceSpecError as e:
        raise UsageError(str(e)) from None


def _pidfd(pid: int) -> int:
    try:
        return os.pidfd_open(pid)
    except ProcessLookupError:
        raise UsageError(f"no such process: {pid}") from None
    except OSError as e:  # EINVAL: a thread id, not a process
        raise UsageError(f"cannot watch process {pid}: {e.strerror} (a thread id?)") from None


def _exited(fd: int) -> bool:
    return bool(select.select([fd], [], [], 0)[0])


class TraceRun:
    """One ``syshub trace`` invocation."""

    def __init__(self, args: argparse.Namespace, gate: SignalGate) -> None:
        from syshub import Hub, HubConfig
        from syshub.topology import HostObserver

        self.args = args
        self.gate = gate
        self.capture = capture_sizes(args)
        out, name, text = open_output(args.output)
        self.writer = EventWriter(out, name, args.format, text)
        self.observer = HostObserver()
        self.hub: Hub = Hub(HubConfig(ring_bytes=args.ring_bytes), observer=self.observer)
        self.child: NamespacedProcess | None = None
        self.watched: int | None = None  # pidfd of --pid / --namespace-of
        self.job: Job | None = None
        self.sub: BatchSubscription | None = None

    # start-up --------------------------------------------------------------
    def _start_hub(self) -> None:
        from syshub.errors import ProbeError

        try:
            self.hub.start()
        except PermissionError as e:
            raise UsageError(f"{e} (run as root)" if "root" not in str(e) else str(e)) from None
        except ValueError as e:
            raise UsageError(str(e)) from None
        except ProbeError as e:
            raise CliError(f"cannot load the probe: {e}") from None

    def _spawn(self, cmd: list[str]) -> NamespacedProcess:
        from syshub.errors import SyshubError
        from syshub.nsproc import NamespacedProcess

        try:
            child = NamespacedProcess(cmd, init=True)
        except SyshubError as e:
            status = EXIT_NOT_FOUND if "command not found" in str(e) else None
            raise CliError(str(e), status) from None
        # Label its events from the first one (the observer polls /proc).
        self._label(child.pid_ns)
        return child

    def _label(self, pid_ns: int) -> None:
        from syshub.topology import ContainerEvent, ContainerEventKind

        for ns, c in self.observer.scan().items():
            if pid_ns in (0, ns):
                self.hub.topology.apply(ContainerEvent(ContainerEventKind.START, c))

    def _run_job(self, target: Target) -> tuple[Job, BatchSubscription]:
        from syshub import Job, Trace
        from syshub.errors import TraceSpecError

        try:
            trace = Trace.new(
                "syshub-trace", self.args.syscall_names, sample_rate=self.args.sample_rate
            )
        except (TraceSpecError, ValueError) as e:
            raise UsageError(str(e)) from None
        job = Job(trace, target=target, capture=self.capture)
        # Subscribed before it runs: no call is routed before the queue exists.
        # Batch mode: chunks of the poll batches, encoded in Rust by the writer.
        sub = self.hub.subscribe_batches(job, maxsize=self.args.queue, overflow="drop_newest")
        try:
            self.hub.run_job(job)
        except BaseException:
            sub.close()
            raise
        return job, sub

    def _start_job(self) -> None:
        from syshub import Target
        from syshub.errors import HubError

        a, child = self.args, self.child
        if child is not None:
            try:
                target = Target.process(child.pid)
                self.job, self.sub = self._run_job(target)
                return
            except (HubError, AttributeError, NotImplementedError):
                # No kernel process scopes: trace the command's namespace (its
                # init is then traced too).
                target = Target.namespace_of(child.pid)
        elif a.host:
            self._label(0)
            target = Target.every_namespace()
        else:
            pid = a.pid if a.pid is not None else a.namespace_of
            self.watched = _pidfd(pid)
            with contextlib.suppress(OSError):  # unlabelled events then, not an error
                self._label(os.stat(f"/proc/{pid}/ns/pid").st_ino)
            target = Target.process(pid) if a.pid is not None else Target.namespace_of(pid)
        try:
            self.job, self.sub = self._run_job(target)
        except HubError as e:
            raise CliError(str(e)) from None
        except (AttributeError, NotImplementedError):
            raise CliError("this kernel probe has no process scopes: use --namespace-of") from None

    def _wait_applied(self) -> None:
        assert self.job is not None
        end = time.monotonic() + APPLY_TIMEOUT
        while not self.hub.wait_applied(self.job, timeout=POLL):
            self.gate.check()
            if time.monotonic() >= end:
                raise CliError(f"the kernel filters were not in place after {APPLY_TIMEOUT:g} s")

    def _announce(self) -> None:
        """Like strace's "Process N attached": say what is traced once the
        filters are in (not for a command: its output starts right away)."""
        a = self.args
        if a.host:
            what = "every process on the host"
        elif a.pid is not None:
            what = f"process {a.pid} and its descendants"
        elif a.namespace_of is not None:
            what = f"the pid namespace of process {a.namespace_of}"
        else:
            return
        sys.stderr.write(f"syshub: tracing {what}\n")
        sys.stderr.flush()

    # tracing ---------------------------------------------------------------
    def _pump(self, timeout: float) -> int:
        assert self.sub is not None
        chunks = self.sub.get_chunks(BATCH, timeout=timeout)
        with contextlib.suppress(BrokenOutput):  # seen as writer.broken
            self.writer.write(chunks)
        return sum(len(c) for c in chunks)

    def _trace(self) -> tuple[str, int]:
        """Print events until the end; (why it ended, exit status so far)."""
        a, child = self.args, self.child
        deadline = None if a.duration is None else time.monotonic() + a.duration
        while True:
            self._pump(POLL)
            signum = self.gate.poll()
            if signum is not None:
                return "signal", 128 + signum
            if self.writer.broken:  # the reader went away: as SIGPIPE would
                return "signal", 128 + signal.SIGPIPE
            if child is not None and child.poll() is not None:
                return "exit", child.wait()
            if self.watched is not None and _exited(self.watched):
                return "exit", 0
            if deadline is not None and time.monotonic() >= deadline:
                return "duration", EXIT_TIMEOUT if child is not None else 0

    def _end_child(self, why: str) -> None:
        """A command still running is ended (printing its events meanwhile)."""
        child = self.child
        if child is None or why == "exit":
            return
        if why == "duration":
            child.send_signal(signal.SIGTERM)
        grace = KILL_AFTER if why == "duration" else SIGNAL_GRACE
        end = time.monotonic() + grace
        while child.poll() is None and time.monotonic() < end:
            self._pump(0.02)
        if child.poll() is None:
            child.kill()
        child.wait()

    def _finish(self) -> None:
        """Stop tracing, print every event routed to us, print the summary."""
        assert self.job is not None and self.sub is not None
        self.gate.forward = None
        self.hub.delete_trace(self.job)
        self.sub.close()  # closed by the Hub already; queued events stay readable
        while self._pump(0):
            pass
        self.writer.close()
        st = self.hub.stats()
        js = st.jobs[self.job.job_id]
        line = trace_summary(js, self.writer.printed, st.decode_errors)
        with contextlib.suppress(OSError):  # stderr itself may be the broken output
            sys.stderr.write(line + "\n")
            sys.stderr.flush()

    def run(self) -> int:
        try:
            self.gate.check()
            self._start_hub()
            self.gate.check()
            if self.args.cmd:
                self.child = self._spawn(self.args.cmd)
            elif self.args.pid is not None or self.args.namespace_of is not None:
                pid = self.args.pid if self.args.pid is not None else self.args.namespace_of
                if not os.path.exists(f"/proc/{pid}"):
                    raise UsageError(f"no such process: {pid}")
            self.gate.check()
            self._start_job()
            self._wait_applied()
            self.gate.check()
            self._announce()
            if self.child is not None:
                self.gate.forward = self.child.send_signal
                self.child.release()
            why, status = self._trace()
            self._end_child(why)
            self._finish()
            return status
        finally:
            self._cleanup()

    def _cleanup(self) -> None:
        child = self.child
        if child is not None:
            if child.poll() is None:
                child.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=5)
            child.close()
        if self.watched is not None:
            os.close(self.watched)
        self.hub.stop()


def run_trace(args: argparse.Namespace, gate: SignalGate) -> int:
    return TraceRun(args, gate).run()
