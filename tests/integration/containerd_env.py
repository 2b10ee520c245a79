"""A private, real containerd for integration tests (no Docker, no registry).

``ContainerdEnv`` starts ``containerd`` with its own root, state and socket in a
temporary directory, imports a tiny busybox image built locally from the
``busybox-static`` binary, and drives pods and containers through the CRI with
:class:`syshub.topology.cri.CriClient` - the same client the product uses.

Pitfalls on these machines (see shared FACTS.md):
* root lacks CAP_SYS_RESOURCE, so the CRI plugin needs ``restrict_oom_score_adj``;
* host-network pods must have an empty hostname;
* there is no systemd: containerd is our child, stopped by pid, and the shims,
  pod cgroups (``kubepods/syshub-<token>``) and containerd 1.6's fixed
  ``/run/containerd/{s,runc}`` entries are cleaned up by us.

Usable on its own: ``python3 tests/integration/containerd_env.py`` starts one,
runs a container, prints timings and tears everything down.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import importlib.util
import io
import json
import logging
import os
import platform
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

if importlib.util.find_spec("syshub") is None:  # source checkout that is not installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "python"))

from syshub.errors import CriError
from syshub.topology.cri import (
    ContainerConfig,
    CriClient,
    NamespaceMode,
    PodSandboxConfig,
)

log = logging.getLogger("syshub.tests.containerd")

IMAGE_NAME = "docker.io/syshub/busybox:test"
REQUIRED_BINARIES = ("containerd", "runc", "ctr")
APPLETS = (
    "sh", "sleep", "cat", "ls", "echo", "true", "false", "touch", "mkdir", "rm", "wget", "nc",
    "ps", "id", "env", "grep", "head", "tail", "kill", "ln", "cp", "mv", "pwd", "uname",
    "hostname", "date", "wc", "yes", "seq", "stat", "readlink", "dd", "chmod", "test", "[",
)  # fmt: skip
_LAYER_DIRS = (
    ("bin", 0o755), ("dev", 0o755), ("etc", 0o755), ("proc", 0o555), ("root", 0o700),
    ("sys", 0o555), ("tmp", 0o1777), ("usr", 0o755), ("usr/bin", 0o755), ("var", 0o755),
    ("var/tmp", 0o1777),
)  # fmt: skip
_FIXED_MTIME = 1_700_000_000
_IMAGE_FORMAT_VERSION = "1"  # bump to invalidate cached image tars


class ContainerdUnavailable(RuntimeError):
    """The machine cannot run the private containerd (missing binaries, not root, ...)."""


# ================================================================================== image


def _is_static_elf(path: Path) -> bool:
    """True for an ELF executable without a PT_INTERP program header (static)."""
    with path.open("rb") as f:
        head = f.read(64)
        if head[:4] != b"\x7fELF" or head[4] != 2:  # ELFCLASS64 only
            return False
        endian = "<" if head[5] == 1 else ">"
        phoff = struct.unpack_from(endian + "Q", head, 32)[0]
        phentsize, phnum = struct.unpack_from(endian + "HH", head, 54)
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    for i in range(phnum):
        (p_type,) = struct.unpack_from(endian + "I", table, i * phentsize)
        if p_type == 3:  # PT_INTERP
            return False
    return True


def find_static_busybox() -> Path:
    for candidate in ("/bin/busybox", "/usr/bin/busybox", shutil.which("busybox") or ""):
        if candidate and Path(candidate).is_file():
            path = Path(candidate).resolve()
            if _is_static_elf(path):
                return path
            raise ContainerdUnavailable(
                f"{path} is dynamically linked; install busybox-static (apt-get install "
                "busybox-static)"
            )
    raise ContainerdUnavailable("busybox not found; install busybox-static")


def _oci_arch() -> str:
    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}.get(machine, machine)


def _tar_add(
    tar: tarfile.TarFile,
    name: str,
    *,
    data: bytes | None = None,
    mode: int = 0o644,
    kind: bytes = tarfile.REGTYPE,
    link: str = "",
) -> None:
    info = tarfile.TarInfo(name)
    info.mtime = _FIXED_MTIME
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    info.mode = mode
    info.type = kind
    info.linkname = link
    if data is not None:
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    else:
        tar.addfile(info)


def _busybox_layer(busybox: Path, applets: Sequence[str]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for d, mode in _LAYER_DIRS:
            _tar_add(tar, d, mode=mode, kind=tarfile.DIRTYPE)
        _tar_add(tar, "bin/busybox", data=busybox.read_bytes(), mode=0o755)
        for applet in applets:
            _tar_add(tar, f"bin/{applet}", mode=0o777, kind=tarfile.SYMTYPE, link="busybox")
        passwd = b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"
        _tar_add(tar, "etc/passwd", data=passwd)
        _tar_add(tar, "etc/group", data=b"root:x:0:\nnobody:x:65534:\n")
    return buf.getvalue()


def _available_applets(busybox: Path) -> list[str]:
    try:
        out = subprocess.run(
            [str(busybox), "--list"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.split()
    except (OSError, subprocess.SubprocessError):
        return list(APPLETS)
    return [a for a in APPLETS if a in out]


def _blob(data: bytes) -> tuple[str, bytes]:
    return "sha256:" + hashlib.sha256(data).hexdigest(), data


def build_busybox_image(
    cache_dir: Path | None = None, image_name: str = IMAGE_NAME, busybox: Path | None = None
) -> Path:
    """An OCI image-layout tar (for ``ctr images import``) with busybox-static.

    One uncompressed layer: ``/bin/busybox`` plus applet symlinks, empty
    ``dev proc sys tmp``, ``/etc/passwd`` and ``/etc/group`` with root. The
    default command sleeps ~68 years, so the image also serves as sandbox
    ("pause") image. Cached by content under ``cache_dir`` (default: the
    system temp dir); the build is deterministic.
    """
    busybox = busybox or find_static_busybox()
    binary = busybox.read_bytes()
    applets = _available_applets(busybox)
    key_src = b"\0".join(
        [_IMAGE_FORMAT_VERSION.encode(), image_name.encode(), " ".join(applets).encode(), binary]
    )
    key = hashlib.sha256(key_src).hexdigest()[:16]
    cache_dir = cache_dir or Path(tempfile.gettempdir()) / "syshub-test-images"
    target = cache_dir / f"busybox-{key}.tar"
    if target.is_file():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)

    layer_digest, layer = _blob(_busybox_layer(busybox, applets))
    config = {
        "created": "2023-11-14T22:13:20Z",
        "architecture": _oci_arch(),
        "os": "linux",
        "config": {
            "Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": ["/bin/sleep", "2147483647"],
            "WorkingDir": "/",
        },
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
        "history": [{"created": "2023-11-14T22:13:20Z", "created_by": "syshub test image"}],
    }
    config_digest, config_bytes = _blob(json.dumps(config, sort_keys=True).encode())
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": len(config_bytes),
        },
        "layers": [
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": layer_digest,
                "size": len(layer),
            }
        ],
    }
    manifest_digest, manifest_bytes = _blob(json.dumps(manifest, sort_keys=True).encode())
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": manifest_digest,
                "size": len(manifest_bytes),
                "annotations": {
                    "io.containerd.image.name": image_name,
                    "org.opencontainers.image.ref.name": image_name.rsplit(":", 1)[-1],
                },
                "platform": {"architecture": _oci_arch(), "os": "linux"},
            }
        ],
    }
    partial = target.with_suffix(f".{os.getpid()}.partial")
    with tarfile.open(partial, mode="w", format=tarfile.PAX_FORMAT) as tar:
        _tar_add(tar, "oci-layout", data=b'{"imageLayoutVersion":"1.0.0"}')
        _tar_add(tar, "index.json", data=json.dumps(index, sort_keys=True).encode())
        _tar_add(tar, "blobs", mode=0o755, kind=tarfile.DIRTYPE)
        _tar_add(tar, "blobs/sha256", mode=0o755, kind=tarfile.DIRTYPE)
        for digest, data in (
            (layer_digest, layer),
            (config_digest, config_bytes),
            (manifest_digest, manifest_bytes),
        ):
            _tar_add(tar, "blobs/sha256/" + digest.split(":", 1)[1], data=data)
    partial.replace(target)
    return target


# ================================================================================== host helpers


def _mountinfo() -> list[tuple[str, str]]:
    """(mount point, fs type) of every mount in our mount namespace."""
    out: list[tuple[str, str]] = []
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fields = left.split()
            if len(fields) < 5 or not right:
                continue
            point = fields[4].encode().decode("unicode_escape")
            out.append((point, right.split()[0]))
    return out


def _cgroup_roots() -> list[Path]:
    return [Path(p) for p, fs in _mountinfo() if fs in ("cgroup", "cgroup2")]


_libc = ctypes.CDLL(None, use_errno=True)
_MNT_DETACH = 2


def _umount_lazy(path: str) -> None:
    if _libc.umount2(path.encode(), _MNT_DETACH) != 0:
        err = ctypes.get_errno()
        if err not in (errno.EINVAL, errno.ENOENT):
            log.warning("umount %s: %s", path, os.strerror(err))


def _overlay_works(base: Path) -> bool:
    """Can we mount overlayfs with upper/work dirs on ``base``'s filesystem?"""
    probe = base / "overlay-probe"
    dirs = {n: probe / n for n in ("lower", "upper", "work", "merged")}
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    opts = f"lowerdir={dirs['lower']},upperdir={dirs['upper']},workdir={dirs['work']}"
    try:
        result = subprocess.run(
            ["mount", "-t", "overlay", "overlay", "-o", opts, str(dirs["merged"])],
            capture_output=True,
            timeout=10,
        )
        ok = result.returncode == 0
        if ok:
            _umount_lazy(str(dirs["merged"]))
        return ok
    except (OSError, subprocess.SubprocessError):
        return False
    finally:
        shutil.rmtree(probe, ignore_errors=True)


def _kill_pid(pid: int, sig: int = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def _pids_with_arg(needle: str) -> list[int]:
    """Pids whose command line contains ``needle`` as a whole argument."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                args = f.read().split(b"\0")
        except OSError:
            continue
        if needle.encode() in args:
            out.append(int(entry))
    return out


def _remove_cgroup_tree(root: Path) -> list[str]:
    """Kill every process in the cgroup subtree ``root`` then rmdir it bottom-up."""
    problems: list[str] = []
    if not root.is_dir():
        return problems
    dirs = sorted((p for p in [root, *root.rglob("*")] if p.is_dir()), key=lambda p: -len(p.parts))
    for d in dirs:
        with contextlib.suppress(OSError):
            for pid in (d / "cgroup.procs").read_text().split():
                _kill_pid(int(pid))
    for d in dirs:
        for attempt in range(50):
            try:
                d.rmdir()
                break
            except FileNotFoundError:
                break
            except OSError as exc:
                if exc.errno != errno.EBUSY or attempt == 49:
                    problems.append(f"rmdir {d}: {exc.strerror}")
                    break
                time.sleep(0.02)
    return problems


# ================================================================================== containerd


@dataclass
class _Pod:
    config: PodSandboxConfig
    containers: list[str] = field(default_factory=list)


CONFIG_TEMPLATE = """\
version = 2
root = "{root}"
state = "{state}"
disabled_plugins = [
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing",
]

[grpc]
  address = "{socket}"

[ttrpc]
  address = "{socket}.ttrpc"

[debug]
  address = ""
  level = "info"

[metrics]
  address = ""

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{image}"
  restrict_oom_score_adj = true
  disable_apparmor = true
  disable_hugetlb_controller = true
  tolerate_missing_hugetlb_controller = true
  netns_mounts_under_state_dir = true
  enable_selinux = false
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "{snapshotter}"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{cni_conf}"
"""


class ContainerdEnv:
    """A private containerd serving CRI on ``endpoint``; ``start()``/``stop()``.

    ``timings`` records ``start_to_socket`` (containerd launch until its socket
    accepts), ``start_to_cri`` (until CRI Version answers) and ``image_import``
    (seconds). Pods run on the host network with a private pid namespace per
    container, under the cgroup parent ``/kubepods/syshub-<token>/pod<uid>``.
    """

    RUN_CONTAINERD = Path("/run/containerd")
    SHARED_RUN_DIRS = (RUN_CONTAINERD / "s", RUN_CONTAINERD / "runc")

    def __init__(self, base_dir: Path | None = None, image_name: str = IMAGE_NAME) -> None:
        self.image_name = image_name
        self._own_base = base_dir is None
        # keep the path short: unix socket paths are limited to 107 bytes
        self.base = Path(base_dir or tempfile.mkdtemp(prefix="syshub-ctrd-", dir="/tmp"))
        self.token = uuid.uuid4().hex[:8]
        self.socket = self.base / "containerd.sock"
        self.endpoint = f"unix://{self.socket}"
        self.config_path = self.base / "config.toml"
        self.log_path = self.base / "containerd.log"
        self.cgroup_parent = f"/kubepods/syshub-{self.token}"
        self.snapshotter = "overlayfs"
        self.timings: dict[str, float] = {}
        self.proc: subprocess.Popen[bytes] | None = None
        self._client: CriClient | None = None
        self._pods: dict[str, _Pod] = {}
        self._ids: set[str] = set()  # every sandbox and container id we created
        self._run_before: dict[Path, set[str] | None] = {}
        self._log_file: io.BufferedWriter | None = None

    # ---------------------------------------------------------------- properties

    @property
    def client(self) -> CriClient:
        if self._client is None:
            raise RuntimeError("containerd is not started")
        return self._client

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no containerd log)"
        return "\n".join(text[-lines:])

    @staticmethod
    def check_prerequisites() -> None:
        """Raise :class:`ContainerdUnavailable` naming what is missing."""
        missing = [b for b in REQUIRED_BINARIES if shutil.which(b) is None]
        if missing:
            raise ContainerdUnavailable(
                f"missing {', '.join(missing)} (apt-get install containerd runc busybox-static)"
            )
        if os.geteuid() != 0:
            raise ContainerdUnavailable("containerd tests need root")
        find_static_busybox()

    # ---------------------------------------------------------------- lifecycle

    def __enter__(self) -> ContainerdEnv:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _snapshot_run_dirs(self) -> None:
        for d in self.SHARED_RUN_DIRS:
            self._run_before[d] = set(os.listdir(d)) if d.is_dir() else None

    def write_config(self) -> None:
        for sub in ("root", "state", "cni/net.d"):
            (self.base / sub).mkdir(parents=True, exist_ok=True)
        self.snapshotter = "overlayfs" if _overlay_works(self.base) else "native"
        self.config_path.write_text(
            CONFIG_TEMPLATE.format(
                root=self.base / "root",
                state=self.base / "state",
                socket=self.socket,
                image=self.image_name,
                snapshotter=self.snapshotter,
                cni_conf=self.base / "cni/net.d",
            )
        )

    def start(self, timeout: float = 30.0) -> None:
        self.check_prerequisites()
        image = build_busybox_image(image_name=self.image_name)
        self.write_config()
        self._snapshot_run_dirs()
        self._log_file = self.log_path.open("ab")
        t0 = time.monotonic()
        self.proc = subprocess.Popen(
            [shutil.which("containerd") or "containerd", "--config", str(self.config_path)],
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            self._wait_socket(t0, timeout)
            self.timings["start_to_socket"] = time.monotonic() - t0
            client = CriClient(self.endpoint, timeout=10.0)
            deadline = t0 + timeout
            while True:
                try:
                    client.connect()
                    break
                except CriError:
                    if time.monotonic() > deadline or self.proc.poll() is not None:
                        raise
                    time.sleep(0.05)
            self._client = client
            self.timings["start_to_cri"] = time.monotonic() - t0
            t1 = time.monotonic()
            self._ctr("images", "import", "--snapshotter", self.snapshotter, str(image), timeout=60)
            self.timings["image_import"] = time.monotonic() - t1
        except BaseException:
            tail = self.log_tail()
            self.stop()
            log.error("containerd failed to start; log tail:\n%s", tail)
            raise

    def _wait_socket(self, t0: float, timeout: float) -> None:
        assert self.proc is not None
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"containerd exited with {self.proc.returncode} before serving; log:\n"
                    + self.log_tail()
                )
            if self.socket.exists():
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    s.connect(str(self.socket))
                    return
                except OSError:
                    pass
                finally:
                    s.close()
            if time.monotonic() - t0 > timeout:
                raise RuntimeError(f"containerd socket {self.socket} not up after {timeout}s")
            time.sleep(0.01)

    def _ctr(self, *args: str, timeout: float = 30) -> str:
        cmd = ["ctr", "-a", str(self.socket), "-n", "k8s.io", *args]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise RuntimeError(
                f"{' '.join(cmd)} failed ({result.returncode}): {result.stderr.strip()}"
            )
        return result.stdout

    def stop(self) -> None:
        """Tear everything down; safe to call twice and after a failed start."""
        problems: list[str] = []
        if self._client is not None:
            with contextlib.suppress(CriError):
                for pod in self._client.list_pod_sandboxes():
                    self._ids.add(pod.id)
                    self._pods.setdefault(pod.id, _Pod(PodSandboxConfig(pod.name)))
                for c in self._client.list_containers(state_running_only=False):
                    self._ids.add(c.id)
            for pod_id in list(self._pods):
                try:
                    self.remove_pod(pod_id)
                except CriError as exc:
                    problems.append(str(exc))
            self._client.close()
            self._client = None
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(5)
            self.proc = None
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        # shims started by *our* containerd carry our socket as their -address argument
        for pid in _pids_with_arg(str(self.socket)):
            problems.append(f"killed leftover shim pid {pid}")
            _kill_pid(pid)
        for root in _cgroup_roots():
            problems += _remove_cgroup_tree(root / self.cgroup_parent.lstrip("/"))
            with contextlib.suppress(OSError):
                (root / "kubepods").rmdir()  # only when empty (nobody else uses it)
        self._clean_run_dirs()
        for point, _ in sorted(_mountinfo(), key=lambda m: -len(m[0])):
            if point == str(self.base) or point.startswith(str(self.base) + "/"):
                _umount_lazy(point)
        if self._own_base:
            shutil.rmtree(self.base, ignore_errors=True)
        for p in problems:
            log.warning("containerd teardown: %s", p)

    def _clean_run_dirs(self) -> None:
        """Remove what containerd 1.6 left under /run/containerd/{s,runc} since we started."""
        for d, before in self._run_before.items():
            if not d.is_dir():
                continue
            if d.name == "runc":  # <namespace>/<container id> state dirs of runc
                for ns in d.iterdir():
                    for cid in self._ids:
                        shutil.rmtree(ns / cid, ignore_errors=True)
            for name in set(os.listdir(d)) - (before or set()):
                target = d / name
                if target.is_dir() and not target.is_symlink():
                    shutil.rmtree(target, ignore_errors=True)
                else:
                    with contextlib.suppress(OSError):
                        target.unlink()
            if before is None:
                shutil.rmtree(d, ignore_errors=True)
        with contextlib.suppress(OSError):
            self.RUN_CONTAINERD.rmdir()  # only if now empty
        self._run_before.clear()

    # ---------------------------------------------------------------- CRI helpers

    def pod_config(self, pod_id: str) -> PodSandboxConfig:
        return self._pods[pod_id].config

    def run_pod(
        self,
        name: str,
        namespace: str = "default",
        labels: Mapping[str, str] | None = None,
        uid: str | None = None,
    ) -> str:
        """A ready host-network pod (private pid namespace per container)."""
        uid = uid or str(uuid.uuid4())
        all_labels = {
            **(labels or {}),
            "io.kubernetes.pod.name": name,
            "io.kubernetes.pod.namespace": namespace,
            "io.kubernetes.pod.uid": uid,
        }
        log_dir = self.base / "logs" / f"{namespace}_{name}_{uid}"
        log_dir.mkdir(parents=True, exist_ok=True)
        config = PodSandboxConfig(
            name=name,
            namespace=namespace,
            uid=uid,
            hostname="",  # host network: runc cannot set a hostname
            log_directory=str(log_dir),
            labels=all_labels,
            network=NamespaceMode.NODE,
            pid=NamespaceMode.CONTAINER,
            ipc=NamespaceMode.POD,
            cgroup_parent=f"{self.cgroup_parent}/pod{uid}",
        )
        pod_id = self.client.run_pod_sandbox(config)
        self._ids.add(pod_id)
        self._pods[pod_id] = _Pod(config)
        return pod_id

    def run_container(
        self,
        pod_id: str,
        name: str,
        command: Sequence[str],
        labels: Mapping[str, str] | None = None,
        attempt: int = 0,
    ) -> str:
        """Create and start a container; returns its id (RUNNING when this returns)."""
        pod = self._pods[pod_id]
        meta = pod.config
        config = ContainerConfig(
            name=name,
            image=self.image_name,
            command=list(command),
            labels={
                **(labels or {}),
                "io.kubernetes.container.name": name,
                "io.kubernetes.pod.name": meta.name,
                "io.kubernetes.pod.namespace": meta.namespace,
                "io.kubernetes.pod.uid": meta.uid,
            },
            attempt=attempt,
            log_path=f"{name}_{attempt}.log",
            network=meta.network,
            pid=NamespaceMode.CONTAINER,
            ipc=meta.ipc,
        )
        container_id = self.client.create_container(pod_id, config, meta)
        self._ids.add(container_id)
        pod.containers.append(container_id)
        self.client.start_container(container_id)
        return container_id

    def container_log(self, pod_id: str, name: str, attempt: int = 0) -> str:
        path = Path(self._pods[pod_id].config.log_directory) / f"{name}_{attempt}.log"
        try:
            return path.read_text(errors="replace")
        except OSError:
            return ""

    def remove_container(self, container_id: str) -> None:
        self.client.stop_container(container_id, 0)
        self.client.remove_container(container_id)
        for pod in self._pods.values():
            if container_id in pod.containers:
                pod.containers.remove(container_id)

    def remove_pod(self, pod_id: str) -> None:
        """Stop and remove a pod with its containers (idempotent)."""
        self.client.stop_pod_sandbox(pod_id)
        self.client.remove_pod_sandbox(pod_id)
        self._pods.pop(pod_id, None)

    def container_pid(self, container_id: str) -> int:
        return self.client.container_status(container_id).pid

    def pods(self) -> Iterator[str]:
        return iter(list(self._pods))


def main() -> int:  # manual smoke run: python3 tests/integration/containerd_env.py
    logging.basicConfig(level=logging.INFO)
    with ContainerdEnv() as env:
        t0 = time.monotonic()
        pod = env.run_pod("smoke", labels={"app": "smoke"})
        cid = env.run_container(pod, "sleeper", ["sleep", "3600"])
        ready = time.monotonic() - t0
        status = env.client.container_status(cid)
        print(json.dumps(env.client.version()))
        print(f"snapshotter={env.snapshotter} timings={env.timings} pod+container={ready:.3f}s")
        print(f"container {cid[:12]} state={status.state.name} pid={status.pid}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
