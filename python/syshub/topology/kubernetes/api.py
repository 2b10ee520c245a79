"""The Kubernetes API side of the pod watch: configuration, LIST and WATCH requests.

Needs the ``kubernetes`` package (``pip install 'syshub[k8s]'``); a missing package or
an unusable configuration is a one-line :class:`~syshub.errors.KubernetesError`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from syshub.errors import KubernetesError

log = logging.getLogger("syshub.topology.kubernetes")

_URL = re.compile(r"^https?://", re.IGNORECASE)


def one_line(exc: BaseException | str) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def _kubernetes() -> tuple[Any, Any]:
    """The ``kubernetes.client`` and ``kubernetes.config`` modules."""
    try:
        from kubernetes import (  # type: ignore[import-untyped,unused-ignore]
            client as k8s_client,
        )
        from kubernetes import (  # type: ignore[import-untyped,unused-ignore]
            config as k8s_config,
        )
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise KubernetesError(
            "the `kubernetes` package is not installed (pip install 'syshub[k8s]')"
        ) from exc
    return k8s_client, k8s_config


def load_configuration(endpoint: str | None) -> Any:
    """A ``kubernetes.client.Configuration`` for ``endpoint`` (see KubernetesObserver)."""
    k8s_client, k8s_config = _kubernetes()
    cfg: Any = k8s_client.Configuration()
    if endpoint and _URL.match(endpoint):
        cfg.host = endpoint.rstrip("/")
        return cfg
    if endpoint:
        path = os.path.expanduser(endpoint)
    elif os.environ.get("KUBERNETES_SERVICE_HOST"):
        try:
            k8s_config.load_incluster_config(client_configuration=cfg)
        except Exception as exc:
            raise KubernetesError(
                f"cannot load the in-cluster Kubernetes configuration: {one_line(exc)}"
            ) from exc
        return cfg
    else:
        path = os.path.expanduser(
            (os.environ.get("KUBECONFIG") or "~/.kube/config").split(os.pathsep)[0]
        )
        if not os.path.exists(path):
            raise KubernetesError(
                "no Kubernetes configuration: not running in a pod (KUBERNETES_SERVICE_HOST "
                f"is unset) and no kubeconfig at `{path}`; pass a kubeconfig path or an API URL"
            )
    try:
        with open(path, "rb") as fh:
            fh.read(1)
    except OSError as exc:
        raise KubernetesError(
            f"cannot read kubeconfig `{path}`: {exc.strerror or one_line(exc)}"
        ) from exc
    try:
        k8s_config.load_kube_config(
            config_file=path, client_configuration=cfg, persist_config=False
        )
    except Exception as exc:
        raise KubernetesError(f"invalid kubeconfig `{path}`: {one_line(exc)}") from exc
    return cfg


class Gone(Exception):
    """The requested resourceVersion is too old (410): relist."""


class WatchError(Exception):
    """The watch stream reported an error other than 410."""


def shutdown_response(resp: Any) -> None:
    """Unblock a streamed response being read in another thread."""
    try:
        shutdown = getattr(resp, "shutdown", None)
        if shutdown is not None:  # urllib3 >= 2.3
            shutdown()
            return
        sock = getattr(getattr(resp, "connection", None), "sock", None)
        if sock is not None:
            sock.shutdown(socket.SHUT_RDWR)
    except Exception:  # pragma: no cover - best effort
        pass


def close_response(resp: Any) -> None:
    """Never hand a watch connection back to the pool: close it (FIN to the server)."""
    with contextlib.suppress(Exception):
        resp.close()
    with contextlib.suppress(Exception):
        resp.release_conn()


def lines(resp: Any) -> Iterator[bytes]:
    """Complete, non-empty lines of a streamed (chunked) HTTP response."""
    buf = b""
    for chunk in resp.stream(amt=None, decode_content=False):
        buf += chunk
        while True:
            nl = buf.find(b"\n")
            if nl < 0:
                break
            line, buf = buf[:nl], buf[nl + 1 :]
            if line.strip():
                yield line
    if buf.strip():
        yield buf


@dataclass(frozen=True, slots=True)
class Scope:
    """Which pods the one watch follows, and how long requests may take."""

    endpoint: str | None
    namespace: str | None
    node_name: str | None
    watch_timeout: int
    request_timeout: float


class PodApi:
    """LIST and WATCH of the pods of a :class:`Scope` through the ``kubernetes`` client."""

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self._lock = threading.Lock()
        self._api: Any = None
        self._api_client: Any = None

    def ensure_client(self) -> None:
        """Load the configuration and build the API client (config errors raise)."""
        with self._lock:
            if self._api is not None:
                return
            cfg = load_configuration(self.scope.endpoint)
            k8s_client, _ = _kubernetes()
            api_client: Any = k8s_client.ApiClient(cfg)
            self._api_client = api_client
            self._api = k8s_client.CoreV1Api(api_client)

    def check(self) -> None:
        """Ask the API server for its version: KubernetesError when it does not answer."""
        self.ensure_client()
        try:
            k8s_client, _ = _kubernetes()
            version: Any = k8s_client.VersionApi(self._api_client).get_code(
                _request_timeout=self.timeout()
            )
            log.debug("kubernetes API %s at %s", version.git_version, self.host())
        except KubernetesError:
            raise
        except Exception as exc:
            raise KubernetesError(
                f"cannot reach the Kubernetes API at {self.host()}: {one_line(exc)}"
            ) from exc

    def host(self) -> str:
        return str(getattr(getattr(self._api_client, "configuration", None), "host", "?"))

    def timeout(self) -> tuple[float, float]:
        t = self.scope.request_timeout
        return (min(t, 5.0), t)

    def close(self) -> None:
        with self._lock:
            if self._api_client is not None:
                with contextlib.suppress(Exception):
                    self._api_client.close()

    def _call(self, **kwargs: Any) -> Any:
        ns = self.scope.namespace
        node = self.scope.node_name
        if node:
            kwargs["field_selector"] = f"spec.nodeName={node}"
        if ns:
            return self._api.list_namespaced_pod(ns, _preload_content=False, **kwargs)
        return self._api.list_pod_for_all_namespaces(_preload_content=False, **kwargs)

    def list(self) -> tuple[list[dict[str, Any]], str]:
        """The pods and the list's resourceVersion."""
        resp = self._call(_request_timeout=self.timeout())
        try:
            body = json.loads(resp.data)
        finally:
            resp.release_conn()
        meta = body.get("metadata") or {}
        return list(body.get("items") or []), str(meta.get("resourceVersion", ""))

    def watch(self, resource_version: str | None) -> Any:
        """A streamed WATCH response from ``resource_version`` (bookmarks on).

        Raises :class:`Gone` on 410 and anything else on connection errors.
        """
        from kubernetes.client.exceptions import (  # type: ignore[import-untyped,unused-ignore]
            ApiException,
        )

        timeout = self.scope.watch_timeout
        try:
            return self._call(
                watch=True,
                resource_version=resource_version,
                allow_watch_bookmarks=True,
                timeout_seconds=timeout,
                _request_timeout=(self.timeout()[0], timeout + self.scope.request_timeout),
            )
        except ApiException as exc:
            if exc.status == 410:
                raise Gone(str(exc.reason)) from exc
            raise

    @staticmethod
    def events(resp: Any) -> Iterator[tuple[str, dict[str, Any]]]:
        """(type, object) of each watch event; ERROR events raise Gone / WatchError."""
        for line in lines(resp):
            event = json.loads(line)
            kind = str(event.get("type"))
            obj = event.get("object") or {}
            if kind == "ERROR":
                if obj.get("code") == 410:
                    raise Gone(str(obj.get("message", "")))
                raise WatchError(
                    f"watch error {obj.get('code')}: {obj.get('reason')}: {obj.get('message')}"
                )
            yield kind, obj
