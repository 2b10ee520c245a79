"""strace's text, parsed: calls (name, arguments, return, errno) and the
values inside them (numbers, C strings, flag sets, string arrays, socket
addresses), for tests/conformance_compare.py."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Zero-valued names strace adds that carry no bits (statx's sync type field).
ZERO_NAMES = frozenset({"AT_STATX_SYNC_AS_STAT"})

# --------------------------------------------------------------------------- strace


@dataclass
class StraceCall:
    name: str
    args: list[str]
    ret: int | None  # None: "?" (the call did not return to the program)
    errno: str | None  # None also for "= ? ERESTARTSYS" (see restart)
    text: str
    restart: str | None = None  # "ERESTARTSYS" in "= ? ERESTARTSYS (...)"
    pid: int | None = None  # the "PID " prefix of strace -f


_RET = re.compile(r"^(\?|-?0x[0-9a-fA-F]+|-?\d+)(?:\s+(E[A-Z0-9_]+))?")
_UNFINISHED = "<unfinished ...>"


def split_top(s: str, sep: str = ",") -> list[str]:
    """Splits at top-level ``sep``: not inside quotes, (), [] or {}."""
    out: list[str] = []
    depth = 0
    cur: list[str] = []
    i = 0
    while i < len(s):
        c = s[i]
        if c == '"':
            j = i + 1
            while j < len(s) and s[j] != '"':
                j += 2 if s[j] == "\\" else 1
            cur.append(s[i : j + 1])
            i = j + 1
            continue
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        if c == sep and depth == 0:
            out.append("".join(cur).strip())
            cur = []
        else:
            cur.append(c)
        i += 1
    tail = "".join(cur).strip()
    if tail or out:
        out.append(tail)
    return out


def _close_paren(s: str, start: int) -> int:
    """Index of the ``)`` matching the ``(`` at ``start``."""
    depth = 0
    i = start
    while i < len(s):
        c = s[i]
        if c == '"':
            i += 1
            while i < len(s) and s[i] != '"':
                i += 2 if s[i] == "\\" else 1
        elif c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise ValueError(f"unbalanced strace line: {s!r}")


def parse_strace_line(line: str) -> StraceCall | None:
    """One ``strace -f`` output line; None for signal/exit notices. Arguments
    strace did not print (a call cut by the task's death: ``<unfinished
    ...>``) are left out."""
    line = line.rstrip("\n")
    pm = re.match(r"^(\d+)\s+", line)
    pid = int(pm.group(1)) if pm else None
    line = line[pm.end() :] if pm else line
    m = re.match(r"^(\w+)\(", line)
    if not m:
        return None
    end = _close_paren(line, m.end() - 1)
    args = [a for a in split_top(line[m.end() : end]) if a != _UNFINISHED]
    if args and args[-1].endswith(_UNFINISHED):
        args[-1] = args[-1][: -len(_UNFINISHED)].strip()
    rest = line[end + 1 :].strip()
    if not rest.startswith("="):
        return None
    r = _RET.match(rest[1:].strip())
    if r is None:
        raise ValueError(f"cannot parse the return value of {line!r}")
    if r.group(1) == "?":
        return StraceCall(m.group(1), args, None, None, line, restart=r.group(2), pid=pid)
    return StraceCall(m.group(1), args, _int(r.group(1)), r.group(2), line, pid=pid)


def parse_strace(text: str) -> list[StraceCall]:
    calls = []
    for line in text.splitlines():
        c = parse_strace_line(line)
        if c is not None:
            calls.append(c)
    return calls


def run_strace(prog: Path, workdir: Path, syscalls: Sequence[str]) -> list[StraceCall]:
    """Runs ``prog workdir`` under strace; the calls in order."""
    out = workdir.parent / "strace.out"
    cmd = ["strace", "-f", "-qq", "-s", "4096", "-e", "signal=none"]
    cmd += ["-e", "trace=" + ",".join(syscalls), "-o", str(out), str(prog), str(workdir)]
    proc = subprocess.run(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"{prog.name} under strace exited {proc.returncode}: {proc.stderr.decode()}"
        )
    return parse_strace(out.read_text(errors="surrogateescape"))


# --------------------------------------------------------------------------- values


def _int(s: str) -> int:
    """strace integer text: decimal, 0x hex, or 0-prefixed octal."""
    neg = s.startswith("-")
    t = s[1:] if neg else s
    if t.lower().startswith("0x"):
        v = int(t, 16)
    elif len(t) > 1 and t.startswith("0") and t.isdigit():
        v = int(t, 8)
    else:
        v = int(t)
    return -v if neg else v


_ESC = {"n": 10, "t": 9, "r": 13, "v": 11, "f": 12, "a": 7, "b": 8, "\\": 92, '"': 34}


def c_unquote(s: str) -> str | None:
    """``"a\\nb"`` -> the string (strace's C escapes); None if ``s`` is no string."""
    s = s.strip()
    if s.endswith("..."):  # truncated by -s: still compare what was shown
        s = s[:-3]
    if len(s) < 2 or s[0] != '"' or s[-1] != '"':
        return None
    body = s[1:-1]
    out = bytearray()
    i = 0
    while i < len(body):
        c = body[i]
        if c != "\\":
            out += c.encode("utf-8", "surrogateescape")
            i += 1
            continue
        n = body[i + 1]
        if n == "x":
            out.append(int(body[i + 2 : i + 4], 16))
            i += 4
        elif n in "01234567":
            j = i + 1
            while j < len(body) and j < i + 4 and body[j] in "01234567":
                j += 1
            out.append(int(body[i + 1 : j], 8))
            i = j
        else:
            out.append(_ESC.get(n, ord(n)))
            i += 2
    return out.decode("utf-8", "surrogateescape")


def strip_comments(s: str) -> str:
    return re.sub(r"/\*.*?\*/", "", s).strip()


def flag_set(v: Any) -> frozenset[str | int] | None:
    """A symbolic value as a set of names and numbers (order-free)."""
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, int):
        return frozenset({v})
    if not isinstance(v, str):
        return None
    parts: set[str | int] = set()
    for tok in strip_comments(v).split("|"):
        tok = tok.strip()
        if not tok:
            continue
        try:
            parts.add(_int(tok))
        except ValueError:
            parts.add(tok)
    rest = parts - ZERO_NAMES
    if parts and not rest:
        return frozenset({0})
    return frozenset(rest)


_MODE_NAMES = {
    "S_IFIFO": 0o010000,
    "S_IFCHR": 0o020000,
    "S_IFDIR": 0o040000,
    "S_IFBLK": 0o060000,
    "S_IFREG": 0o100000,
    "S_IFLNK": 0o120000,
    "S_IFSOCK": 0o140000,
    "S_ISUID": 0o4000,
    "S_ISGID": 0o2000,
    "S_ISVTX": 0o1000,
}


def mode_value(v: Any) -> int | None:
    """A file mode (``0644``, ``0100744``, ``S_IFREG|S_ISUID|0755``) as a number."""
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, int):
        return v
    if not isinstance(v, str):
        return None
    total = 0
    for tok in strip_comments(v).split("|"):
        tok = tok.strip()
        if tok in _MODE_NAMES:
            total |= _MODE_NAMES[tok]
            continue
        try:
            total |= _int(tok)
        except ValueError:
            return None
    return total


def strace_strv(s: str) -> list[str] | None:
    s = strip_comments(s)
    if not (s.startswith("[") and s.endswith("]")):
        return None
    items = [c_unquote(x) for x in split_top(s[1:-1])] if s[1:-1].strip() else []
    if any(x is None for x in items):
        return None
    return [x for x in items if x is not None]


Addr = tuple[str, str, int | None]


def strace_addr(s: str) -> Addr | None:
    """``{sa_family=AF_INET, sin_port=htons(1), sin_addr=inet_addr("127.0.0.1")}``."""
    s = s.strip()
    if not (s.startswith("{") and s.endswith("}")):
        return None
    kv: dict[str, str] = {}
    for part in split_top(s[1:-1]):
        k, _, v = part.partition("=")
        kv[k.strip()] = v.strip()
    fam = kv.get("sa_family", "?")
    if fam == "AF_UNIX":
        p = kv.get("sun_path", '""')
        abstract = p.startswith("@")
        path = c_unquote(p[1:] if abstract else p) or ""
        return (fam, ("@" + path) if abstract else path, None)
    port = kv.get("sin_port") or kv.get("sin6_port")
    pm = re.match(r"htons\((\d+)\)", port or "")
    addr = kv.get("sin_addr") or kv.get("sin6_addr") or ""
    for k in kv:  # IPv6: inet_pton(AF_INET6, "::1", &sin6_addr)
        if k.startswith("inet_pton("):
            addr = k
    am = re.search(r'"([^"]*)"', addr)
    return (fam, am.group(1) if am else addr, int(pm.group(1)) if pm else None)


def our_addr(v: Any) -> Addr | None:
    if not isinstance(v, dict) or "family" not in v:
        return None
    if "path" in v:
        path = v["path"]
        if v.get("abstract") and not path.startswith("@"):
            path = "@" + path
        return (v["family"], path, None)
    return (v["family"], str(v.get("addr", "")), v.get("port"))
