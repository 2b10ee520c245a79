"""Server-side apply for the local API server (``application/apply-patch+yaml``), faithful
enough for field ownership between controllers:

* every field manager owns a set of fields (leaf paths; maps are granular, lists and scalars
  atomic), per operation (``Apply`` or ``Update``), shown in ``metadata.managedFields``
  (``fieldsV1``) as the real server does;
* an apply sets the fields of its configuration and owns them; a field the same manager
  applied before and leaves out now is removed unless another manager owns it too;
* an apply that would change a field another manager owns fails with 409 ``Conflict``
  naming the manager and the field, unless ``force=true`` (then ownership moves);
  applying the value a field already has makes the owners share it (no conflict);
* an update (merge patch, PUT) takes the fields it changes from every other manager
  (updates never conflict);
* ``fieldManager`` is required for apply; the configuration needs apiVersion, kind and
  metadata.name; ``metadata.resourceVersion`` in it is a precondition, as for patches.

Only the part a request may change is considered: ``status`` for the status subresource,
everything but ``metadata`` and ``status`` for the main resource.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from typing import Any

from support.k8s_objects import now_iso

Path = tuple[str, ...]
Owners = dict[tuple[str, str, str], set[Path]]  # (manager, operation, subresource) -> fields
_MISSING = object()


def leaves(obj: Mapping[str, Any], prefix: Path = ()) -> Iterator[tuple[Path, Any]]:
    """(path, value) of every leaf field: maps are granular, anything else atomic."""
    for key, value in obj.items():
        path = (*prefix, str(key))
        if isinstance(value, Mapping) and value:
            yield from leaves(value, path)
        else:
            yield path, value


def get_path(obj: Any, path: Path) -> Any:
    for key in path:
        if not isinstance(obj, Mapping) or key not in obj:
            return _MISSING
        obj = obj[key]
    return obj


def set_path(obj: dict[str, Any], path: Path, value: Any) -> None:
    for key in path[:-1]:
        nxt = obj.get(key)
        if not isinstance(nxt, dict):
            nxt = obj[key] = {}
        obj = nxt
    obj[path[-1]] = copy.deepcopy(value)


def del_path(obj: dict[str, Any], path: Path) -> None:
    parents = []
    for key in path[:-1]:
        nxt = obj.get(key)
        if not isinstance(nxt, dict):
            return
        parents.append((obj, key))
        obj = nxt
    obj.pop(path[-1], None)
    for parent, key in reversed(parents):  # maps emptied by the removal go too
        if parent[key]:
            break
        del parent[key]


def overlaps(a: Path, b: Path) -> bool:
    """One field contains the other (an atomic map owned whole covers its keys)."""
    n = min(len(a), len(b))
    return a[:n] == b[:n]


def part(obj: Mapping[str, Any], subresource: str) -> dict[str, Any]:
    """What a request on ``subresource`` may change."""
    if subresource == "status":
        status = obj.get("status")
        return {"status": copy.deepcopy(status)} if isinstance(status, Mapping) else {}
    return {k: copy.deepcopy(v) for k, v in obj.items() if k not in ("metadata", "status")}


def conflicts(
    owners: Owners, manager: str, live: Mapping[str, Any], config: Mapping[str, Any]
) -> list[tuple[str, Path]]:
    """(other manager, field) pairs an apply of ``config`` by ``manager`` would change."""
    out = []
    for path, value in leaves(config):
        if get_path(live, path) == value:
            continue  # the same value: shared ownership, no conflict
        for (other, _op, _sub), fields in owners.items():
            if other != manager and any(overlaps(path, f) for f in fields):
                out.append((other, path))
    return out


def apply(
    owners: Owners,
    live: dict[str, Any],
    config: Mapping[str, Any],
    manager: str,
    subresource: str,
    force: bool,
) -> list[tuple[str, Path]]:
    """Apply ``config`` (already narrowed with :func:`part`) to ``live`` in place; returns
    the conflicts and changes nothing when there are some and ``force`` is false."""
    found = conflicts(owners, manager, live, config)
    if found and not force:
        return found
    for other, path in found:  # forced: the other managers lose these fields
        for key in owners:
            if key[0] == other:
                owners[key] = {f for f in owners[key] if not overlaps(f, path)}
    applied = {p for p, _ in leaves(config)}
    mine = (manager, "Apply", subresource)
    for path in owners.get(mine, set()) - applied:
        others = any(path in f for k, f in owners.items() if k != mine)
        if not others:
            del_path(live, path)
    for path, value in leaves(config):
        set_path(live, path, value)
    owners[mine] = applied
    _prune(owners)
    return found


def took_over(owners: Owners, manager: str, subresource: str, old: Any, new: Any) -> None:
    """An update by ``manager`` changed ``old`` into ``new``: it owns what it changed."""
    before = dict(leaves(old)) if isinstance(old, Mapping) else {}
    after = dict(leaves(new)) if isinstance(new, Mapping) else {}
    changed = {p for p in before.keys() | after.keys() if before.get(p, _MISSING) != after.get(p)}
    if not changed:
        return
    for key, fields in owners.items():
        if key[0] != manager:
            owners[key] = {f for f in fields if not any(overlaps(f, c) for c in changed)}
    mine = (manager, "Update", subresource)
    owners[mine] = (owners.get(mine, set()) | {p for p in changed if p in after}) - {
        p for p in changed if p not in after
    }
    _prune(owners)


def _prune(owners: Owners) -> None:
    for key in [k for k, v in owners.items() if not v]:
        del owners[key]


def fields_v1(paths: set[Path]) -> dict[str, Any]:
    """The ``fieldsV1`` form of a set of fields: ``{"f:status": {"f:nodes": {...}}}``."""
    out: dict[str, Any] = {}
    for path in sorted(paths):
        node = out
        for key in path:
            node = node.setdefault(f"f:{key}", {})
    return out


def managed_fields(owners: Owners, api_version: str) -> list[dict[str, Any]]:
    now = now_iso()
    out = []
    for (manager, op, sub), fields in sorted(owners.items()):
        entry: dict[str, Any] = {
            "manager": manager,
            "operation": op,
            "apiVersion": api_version,
            "time": now,
            "fieldsType": "FieldsV1",
            "fieldsV1": fields_v1(fields),
        }
        if sub:
            entry["subresource"] = sub
        out.append(entry)
    return out
