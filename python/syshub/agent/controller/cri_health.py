"""Whether this node's CRI runtime answers, for the Traces that need container topology.

Every Trace the controller runs selects pods, so its containers come from the CRI: when the
runtime's socket is missing, refuses connections or answers garbage, new pods cannot be
traced and the Trace must say so (an Event and the node entry's ``lastError``). A
:class:`CriHealth` thread checks while the controller has live Traces: each check opens a
fresh connection (the socket is checked, then the runtime must answer ``Version``), so a
channel that gRPC keeps alive or in its reconnect backoff does not hide the state of the
socket, then closes it. The controller reads :attr:`CriHealth.error` on its ticks.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable

from syshub.topology.cri import new_client
from syshub.topology.kubernetes.api import one_line

log = logging.getLogger("syshub.agent.controller")


class CriHealth:
    """Checks ``endpoint`` every ``interval`` seconds while ``wanted()`` says so."""

    def __init__(
        self,
        endpoint: str,
        interval: float = 2.0,
        timeout: float = 2.0,
        wanted: Callable[[], bool] = lambda: True,
    ) -> None:
        self.endpoint = endpoint
        self.interval = interval
        self.timeout = timeout
        self.wanted = wanted
        self.error: str | None = None
        """The last check's failure, one line (None: the runtime answered)."""
        self.checks = 0
        self.failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="syshub-k8s-cri", daemon=True)

    def start(self) -> CriHealth:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(self.timeout + 2.0)

    def check(self) -> str | None:
        """One check: None when the runtime answers, else why not (one line)."""
        client = None
        try:
            client = new_client(self.endpoint, timeout=self.timeout)
            client.connect()  # the socket, then Version of runtime.v1 / v1alpha2
            return None
        except Exception as exc:
            return one_line(exc)
        finally:
            if client is not None:
                with contextlib.suppress(Exception):
                    client.close()

    def _loop(self) -> None:
        while not self._stop.is_set():
            if self.wanted():
                error = self.check()
                self.checks += 1
                if error is not None:
                    self.failures += 1
                if error != self.error:
                    if error is None:
                        log.info("the CRI at %s answers again", self.endpoint)
                    else:
                        log.warning("the CRI is unreadable: %s", error)
                self.error = error
            self._stop.wait(self.interval)
