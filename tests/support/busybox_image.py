"""A tiny OCI image for the private containerd, built locally from ``busybox-static``
(no registry, no network): one layer with ``/bin/busybox`` and applet symlinks."""

from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import shutil
import struct
import subprocess
import tarfile
import tempfile
from collections.abc import Sequence
from pathlib import Path

IMAGE_NAME = "docker.io/syshub/busybox:test"
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
