"""The controller's Kubernetes side: LIST/WATCH of one API group's Traces, server-side apply
of this node's entry of ``/status`` (field manager ``syshub-agent-<node>``), merge patches of
the overall fields (with a resourceVersion precondition), and core Events, through the
``kubernetes`` client.

:class:`TraceApi` is a :class:`~syshub.topology.kubernetes.api.PodApi` for Traces, so the
pod watch's protocol (:func:`~syshub.topology.kubernetes.watch.watch_loop`: LIST, WATCH from
its resourceVersion with bookmarks, relist on 410, backoff) serves Traces unchanged.
"""

from __future__ import annotations

import json
from typing import Any

from syshub.errors import KubernetesError
from syshub.spec.model import VERSION
from syshub.topology.kubernetes.api import PodApi, Scope, _kubernetes, load_configuration, one_line

PLURAL = "traces"
MERGE_PATCH = "application/merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"


class Conflict(Exception):
    """A write's resourceVersion precondition failed (409)."""


class NotFound(Exception):
    """The object is gone (404)."""


def api_client_of(api: Any) -> tuple[Any, bool]:
    """(a ``kubernetes.client.ApiClient``, whether we made it) from an ApiClient, a
    kubeconfig path / API URL, or None (in-cluster, then ``$KUBECONFIG``)."""
    if api is None or isinstance(api, str):
        k8s_client, _ = _kubernetes()
        return k8s_client.ApiClient(load_configuration(api)), True
    return api, False


class TraceApi(PodApi):
    """Traces of one API group (all namespaces, or one), on a shared ``ApiClient``."""

    def __init__(
        self,
        scope: Scope,
        group: str,
        api_client: Any,
        field_manager: str,
        version: str = VERSION,
    ) -> None:
        super().__init__(scope)
        self.group = group
        self.field_manager = field_manager
        self.version = version
        self._given = api_client
        self._core: Any = None

    def ensure_client(self) -> None:
        with self._lock:
            if self._api is not None:
                return
            k8s_client, _ = _kubernetes()
            self._api_client = self._given
            self._api = k8s_client.CustomObjectsApi(self._given)
            self._core = k8s_client.CoreV1Api(self._given)

    def close(self) -> None:
        """The ApiClient belongs to the controller; nothing to close here."""

    def _call(self, **kwargs: Any) -> Any:
        ns = self.scope.namespace
        if ns:
            return self._api.list_namespaced_custom_object(
                self.group, self.version, ns, PLURAL, _preload_content=False, **kwargs
            )
        return self._api.list_cluster_custom_object(
            self.group, self.version, PLURAL, _preload_content=False, **kwargs
        )

    # ------------------------------------------------------------------ writes
    def _raise(self, exc: Exception, what: str) -> None:
        status = getattr(exc, "status", None)
        if status == 409:
            raise Conflict(what) from None
        if status == 404:
            raise NotFound(what) from None
        raise KubernetesError(f"{what}: {one_line(getattr(exc, 'reason', None) or exc)}") from None

    def patch_status(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        """Merge-patch the Trace's ``/status`` (a ``metadata.resourceVersion`` in ``patch``
        is a precondition: :class:`Conflict` when stale)."""
        self.ensure_client()
        try:
            resp = self._api.patch_namespaced_custom_object_status(
                self.group,
                self.version,
                namespace,
                PLURAL,
                name,
                patch,
                field_manager=self.field_manager,
                _content_type=MERGE_PATCH,
                _preload_content=False,
                _request_timeout=self.timeout(),
            )
            try:
                out: dict[str, Any] = json.loads(resp.data)
            finally:
                resp.release_conn()
            return out
        except Exception as exc:
            self._raise(exc, f"patch status of {namespace}/{name}")
            raise  # pragma: no cover - _raise always raises

    def apply_status(
        self, namespace: str, name: str, status: dict[str, Any], force: bool = True
    ) -> dict[str, Any]:
        """Server-side apply of ``status`` to the Trace's ``/status`` under this field
        manager: the fields it applied before and leaves out now are removed, a field another
        manager owns is taken over when ``force`` (else :class:`Conflict`)."""
        self.ensure_client()
        body = {
            "apiVersion": f"{self.group}/{self.version}",
            "kind": "Trace",
            "metadata": {"name": name, "namespace": namespace},
            "status": status,
        }
        try:
            resp = self._api.patch_namespaced_custom_object_status(
                self.group,
                self.version,
                namespace,
                PLURAL,
                name,
                body,
                field_manager=self.field_manager,
                force=force,
                _content_type=APPLY_PATCH,
                _preload_content=False,
                _request_timeout=self.timeout(),
            )
            try:
                out: dict[str, Any] = json.loads(resp.data)
            finally:
                resp.release_conn()
            return out
        except Exception as exc:
            self._raise(exc, f"apply status of {namespace}/{name}")
            raise  # pragma: no cover - _raise always raises

    def create_event(self, namespace: str, body: dict[str, Any]) -> None:
        """A core/v1 Event (errors raise :class:`KubernetesError`)."""
        self.ensure_client()
        try:
            resp = self._core.create_namespaced_event(
                namespace, body, _preload_content=False, _request_timeout=self.timeout()
            )
            try:
                _ = resp.data  # read it all: a pooled connection must not keep a body unread
            finally:
                resp.release_conn()
        except Exception as exc:
            self._raise(exc, f"create event in {namespace}")
