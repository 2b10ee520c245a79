"""A private, real containerd for integration tests (no Docker, no registry).

``ContainerdEnv`` starts ``containerd`` with its own root, state and socket in a
temporary directory, imports a tiny busybox image built locally from the
``busybox-static`` binary (:mod:`support.busybox_image`), and drives pods and
containers through the CRI: reads with :class:`syshub.topology.cri.client.CriClient`
(the product's client), lifecycle calls with :mod:`support.cri_lifecycle`.

Pitfalls on these machines (see shared FACTS.md):
* root lacks CAP_SYS_RESOURCE, so the CRI plugin needs ``restrict_oom_score_adj``;
* host-network pods must have an empty hostname;
* there is no systemd: containerd is our child, stopped by pid, and the shims,
  pod cgroups (``kubepods/syshub-<token>``) and containerd 1.6's fixed
  ``/run/containerd/{s,runc}`` entries are cleaned up by us (:mod:`support.host`).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from support.busybox_image import (
    IMAGE_NAME,
    ContainerdUnavailable,
    build_busybox_image,
    find_static_busybox,
)
from support.cri_lifecycle import ContainerConfig, Lifecycle, PodSandboxConfig
from support.host import (
    cgroup_roots,
    kill_pid,
    mountinfo,
    overlay_works,
    pids_with_arg,
    remove_cgroup_tree,
    umount_lazy,
)
from syshub.errors import CriError
from syshub.topology.cri.client import CriClient
from syshub.topology.cri.runtime.v1 import api_pb2 as pb

log = logging.getLogger("syshub.tests.containerd")

REQUIRED_BINARIES = ("containerd", "runc", "ctr")


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
    def lifecycle(self) -> Lifecycle:
        """The test-only CRI calls (run pods, create/start/stop/remove containers)."""
        return Lifecycle(self.client)

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
        self.snapshotter = "overlayfs" if overlay_works(self.base) else "native"
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
        for pid in pids_with_arg(str(self.socket)):
            problems.append(f"killed leftover shim pid {pid}")
            kill_pid(pid)
        for root in cgroup_roots():
            problems += remove_cgroup_tree(root / self.cgroup_parent.lstrip("/"))
            with contextlib.suppress(OSError):
                (root / "kubepods").rmdir()  # only when empty (nobody else uses it)
        self._clean_run_dirs()
        for point, _ in sorted(mountinfo(), key=lambda m: -len(m[0])):
            if point == str(self.base) or point.startswith(str(self.base) + "/"):
                umount_lazy(point)
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
            network=pb.NODE,
            pid=pb.CONTAINER,
            ipc=pb.POD,
            cgroup_parent=f"{self.cgroup_parent}/pod{uid}",
        )
        pod_id = self.lifecycle.run_pod_sandbox(config)
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
            pid=pb.CONTAINER,
            ipc=meta.ipc,
        )
        container_id = self.lifecycle.create_container(pod_id, config, meta)
        self._ids.add(container_id)
        pod.containers.append(container_id)
        self.lifecycle.start_container(container_id)
        return container_id

    def container_log(self, pod_id: str, name: str, attempt: int = 0) -> str:
        path = Path(self._pods[pod_id].config.log_directory) / f"{name}_{attempt}.log"
        try:
            return path.read_text(errors="replace")
        except OSError:
            return ""

    def remove_container(self, container_id: str) -> None:
        self.lifecycle.stop_container(container_id, 0)
        self.lifecycle.remove_container(container_id)
        for pod in self._pods.values():
            if container_id in pod.containers:
                pod.containers.remove(container_id)

    def remove_pod(self, pod_id: str) -> None:
        """Stop and remove a pod with its containers (idempotent)."""
        self.lifecycle.stop_pod_sandbox(pod_id)
        self.lifecycle.remove_pod_sandbox(pod_id)
        self._pods.pop(pod_id, None)

    def container_pid(self, container_id: str) -> int:
        return self.client.container_status(container_id).pid

    def pods(self) -> Iterator[str]:
        return iter(list(self._pods))
