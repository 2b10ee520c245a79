"""The generic object store of the local API server (:mod:`support.k8s_apiserver`).

Every resource type (built-in, or served from a CustomResourceDefinition once one is
created) is kept in one store with the server's one resourceVersion counter and history, so
LIST/WATCH/410/bookmarks behave for them as for pods. Semantics kept from the real server:

* create: 409 ``AlreadyExists``; ``uid``, ``creationTimestamp``, ``generation`` set; the
  status of a type with a status subresource is dropped;
* update/patch of the main resource cannot change ``status`` of such a type, and ``/status``
  changes nothing but ``status``; ``generation`` counts changes of everything but
  metadata and status;
* patches: JSON merge patch (``application/merge-patch+json``; the strategic merge patch of
  built-ins is treated the same); a ``metadata.resourceVersion`` in a patch or an update is a
  precondition (409 ``Conflict`` when stale; counted in :attr:`Store.conflicts`);
* server-side apply (``application/apply-patch+yaml``) with field ownership per manager
  (:mod:`support.k8s_apply`; conflicts counted in :attr:`Store.apply_conflicts`); updates
  take the fields they change;
* pod logs (``/pods/{name}/log``, ``follow=true`` streams) from :meth:`Store.append_log`.
"""

from __future__ import annotations

import copy
import uuid
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from support import k8s_apply
from support.k8s_objects import BUILTIN_TYPES, ResourceType, crd_types, merge_patch, now_iso

if TYPE_CHECKING:
    import threading


class ApiError(Exception):
    """An API failure answered as a ``Status`` object."""

    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message


Obj = dict[str, Any]
_CRD_KEY = "customresourcedefinitions.apiextensions.k8s.io"


def _body(obj: Obj) -> Obj:
    """What ``generation`` follows: everything but metadata and status."""
    return {k: v for k, v in obj.items() if k not in ("metadata", "status")}


class Store:
    """Mixed into FakeApiServer, which provides ``_cond``, ``_rv`` and ``_commit``."""

    _cond: threading.Condition

    def __init__(self) -> None:
        self._types: dict[str, ResourceType] = {t.key: t for t in BUILTIN_TYPES}
        self._store: defaultdict[str, dict[tuple[str, str], Obj]] = defaultdict(dict)
        self._logs: defaultdict[tuple[str, str], str] = defaultdict(str)
        self.conflicts = 0
        """Writes refused because their resourceVersion precondition was stale."""
        self.apply_conflicts = 0
        """Applies refused because another field manager owns a field they change."""
        self._owners: dict[tuple[str, str, str], k8s_apply.Owners] = {}

    def _commit(self, kind: str, obj: Obj, old: Obj | None, resource: str = "pods") -> Obj:
        raise NotImplementedError

    # ------------------------------------------------------------------ types
    def resource_type(self, group: str, version: str, plural: str) -> ResourceType | None:
        with self._cond:
            for t in self._types.values():
                if (t.group, t.version, t.plural) == (group, version, plural):
                    return t
            return None

    def resource_types(self) -> list[ResourceType]:
        with self._cond:
            return list(self._types.values())

    def type_by_key(self, key: str) -> ResourceType:
        with self._cond:
            return self._types[key]

    # ------------------------------------------------------------------ objects
    def create(self, rt: ResourceType, obj: Obj, namespace: str | None = None) -> Obj:
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        if not meta.get("name"):
            prefix = meta.get("generateName")
            if not prefix:
                raise ApiError(422, "Invalid", "metadata.name: Required value")
            meta["name"] = prefix + uuid.uuid4().hex[:5]
        if rt.namespaced:
            meta["namespace"] = namespace or meta.get("namespace") or "default"
        else:
            meta.pop("namespace", None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now_iso()
        meta["generation"] = 1
        meta.pop("resourceVersion", None)
        obj.setdefault("apiVersion", rt.api_version)
        obj.setdefault("kind", rt.kind)
        if rt.custom and rt.status_subresource:
            obj.pop("status", None)
        key = (meta.get("namespace", ""), meta["name"])
        with self._cond:
            objs = self._store[rt.key]
            if key in objs:
                raise ApiError(409, "AlreadyExists", f'{rt.plural} "{meta["name"]}" already exists')
            objs[key] = obj
            out = self._commit("ADDED", obj, None, rt.key)
            if rt.key == _CRD_KEY:
                for t in crd_types(obj):
                    self._types[t.key] = t
            return out

    def get(self, rt: ResourceType, namespace: str | None, name: str) -> Obj:
        with self._cond:
            obj = self._store[rt.key].get((namespace or "", name))
            if obj is None:
                raise ApiError(404, "NotFound", f'{rt.plural} "{name}" not found')
            return copy.deepcopy(obj)

    def get_object(self, key: str, namespace: str | None, name: str) -> Obj:
        """For tests: an object by its type key (``traces.syshub.io``)."""
        return self.get(self.type_by_key(key), namespace, name)

    def objects(self, key: str) -> list[Obj]:
        with self._cond:
            return [copy.deepcopy(o) for o in self._store[key].values()]

    def update(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        change: Any,
        subresource: str = "",
        manager: str | None = None,
    ) -> Obj:
        """Replace the object (PUT) with ``change`` under the subresource rules."""
        return self._write(rt, namespace, name, change, subresource, patch=False, manager=manager)

    def patch(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        patch: Obj,
        subresource: str = "",
        manager: str | None = None,
    ) -> Obj:
        return self._write(rt, namespace, name, patch, subresource, patch=True, manager=manager)

    def owners(self, key: str, namespace: str | None, name: str) -> k8s_apply.Owners:
        """For tests: the fields each (manager, operation, subresource) owns."""
        with self._cond:
            return copy.deepcopy(self._owners.get((key, namespace or "", name), {}))

    def apply(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        config: Obj,
        subresource: str,
        manager: str,
        force: bool,
    ) -> Obj:
        """Server-side apply of ``config`` by ``manager`` (see :mod:`support.k8s_apply`)."""
        if subresource not in ("", "status") or (subresource and not rt.status_subresource):
            raise ApiError(404, "NotFound", f"{rt.plural}/{subresource} is not served")
        meta = config.get("metadata") if isinstance(config.get("metadata"), dict) else {}
        assert isinstance(meta, dict)
        if not config.get("apiVersion") or not config.get("kind"):
            raise ApiError(400, "BadRequest", "apply: the configuration needs apiVersion and kind")
        if meta.get("name") not in (None, name):
            raise ApiError(400, "BadRequest", "apply: metadata.name does not match the path")
        key = (namespace or "", name)
        with self._cond:
            old = self._store[rt.key].get(key)
            if old is None:
                raise ApiError(404, "NotFound", f'{rt.plural} "{name}" not found')
            self._precondition(rt, name, old, config)
            owners = self._owners.setdefault((rt.key, *key), {})
            new = copy.deepcopy(old)
            found = k8s_apply.apply(
                owners, new, k8s_apply.part(config, subresource), manager, subresource, force
            )
            if found and not force:
                self.apply_conflicts += 1
                listed = ", ".join(f'conflict with "{m}": .{".".join(p)}' for m, p in found)
                raise ApiError(
                    409, "Conflict", f"Apply failed with {len(found)} conflict(s): {listed}"
                )
            if _body(new) != _body(old):
                new["metadata"]["generation"] = int(old["metadata"].get("generation", 1)) + 1
            return self._store_write(rt, key, new, old, owners)

    def _precondition(self, rt: ResourceType, name: str, old: Obj, change: Obj) -> None:
        want_rv = str((change.get("metadata") or {}).get("resourceVersion") or "")
        if want_rv and want_rv != old["metadata"]["resourceVersion"]:
            self.conflicts += 1
            raise ApiError(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on {rt.plural} "{name}": the object has '
                "been modified; please apply your changes to the latest version and try again",
            )

    def _store_write(
        self, rt: ResourceType, key: tuple[str, str], new: Obj, old: Obj, owners: Any
    ) -> Obj:
        if owners:
            new["metadata"]["managedFields"] = k8s_apply.managed_fields(owners, rt.api_version)
        else:
            new["metadata"].pop("managedFields", None)
        self._store[rt.key][key] = new
        return self._commit("MODIFIED", new, copy.deepcopy(old), rt.key)

    def _write(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        change: Obj,
        subresource: str,
        *,
        patch: bool,
        manager: str | None = None,
    ) -> Obj:
        if subresource not in ("", "status") or (subresource and not rt.status_subresource):
            raise ApiError(404, "NotFound", f"{rt.plural}/{subresource} is not served")
        key = (namespace or "", name)
        with self._cond:
            old = self._store[rt.key].get(key)
            if old is None:
                raise ApiError(404, "NotFound", f'{rt.plural} "{name}" not found')
            self._precondition(rt, name, old, change)
            if patch:
                new = merge_patch(copy.deepcopy(old), change)
            else:
                new = copy.deepcopy(change)
                new.setdefault("metadata", {})
                for k in ("uid", "creationTimestamp", "generation", "namespace", "name"):
                    if k in old["metadata"]:
                        new["metadata"][k] = old["metadata"][k]
            if subresource == "status":
                result = copy.deepcopy(old)
                if "status" in new:
                    result["status"] = new["status"]
                else:
                    result.pop("status", None)
                new = result
            elif rt.status_subresource:
                if "status" in old:
                    new["status"] = copy.deepcopy(old["status"])
                else:
                    new.pop("status", None)
            for k in ("uid", "creationTimestamp", "name"):
                new["metadata"][k] = old["metadata"][k]
            if _body(new) != _body(old):
                new["metadata"]["generation"] = int(old["metadata"].get("generation", 1)) + 1
            else:
                new["metadata"]["generation"] = old["metadata"].get("generation", 1)
            owners = self._owners.setdefault((rt.key, *key), {})
            k8s_apply.took_over(
                owners,
                manager or "unknown",
                subresource,
                k8s_apply.part(old, subresource),
                k8s_apply.part(new, subresource),
            )
            return self._store_write(rt, key, new, old, owners)

    def delete(self, rt: ResourceType, namespace: str | None, name: str) -> Obj:
        with self._cond:
            obj = self._store[rt.key].pop((namespace or "", name), None)
            if obj is None:
                raise ApiError(404, "NotFound", f'{rt.plural} "{name}" not found')
            self._owners.pop((rt.key, namespace or "", name), None)
            out = self._commit("DELETED", obj, None, rt.key)
            if rt.key == _CRD_KEY:
                for t in crd_types(obj):
                    self._types.pop(t.key, None)
                    for k in list(self._store[t.key]):
                        self._commit("DELETED", self._store[t.key].pop(k), None, t.key)
            return out

    def delete_object(self, key: str, namespace: str | None, name: str) -> Obj:
        return self.delete(self.type_by_key(key), namespace, name)

    # ------------------------------------------------------------------ events
    def events_about(self, name: str, namespace: str | None = None) -> list[Obj]:
        """Core Events whose involvedObject is ``name`` (oldest first)."""
        out = []
        for ev in self.objects("events"):
            inv = ev.get("involvedObject") or {}
            if inv.get("name") == name and (namespace is None or inv.get("namespace") == namespace):
                out.append(ev)
        return sorted(out, key=lambda e: int(e["metadata"]["resourceVersion"]))

    # ------------------------------------------------------------------ pod logs
    def append_log(self, namespace: str, pod: str, text: str) -> None:
        """Append to a pod's log (served at ``/pods/{name}/log``, followed live)."""
        with self._cond:
            self._logs[(namespace, pod)] += text
            self._cond.notify_all()

    def log_text(self, namespace: str, pod: str) -> str:
        with self._cond:
            return self._logs[(namespace, pod)]
