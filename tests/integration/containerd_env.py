"""The private containerd of the integration tests (see :mod:`support.containerd`).

Usable on its own: ``python3 tests/integration/containerd_env.py`` starts one,
runs a container, prints timings and tears everything down.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import sys
import time
from pathlib import Path

if importlib.util.find_spec("syshub") is None:  # source checkout that is not installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "python"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: `support`

from support.busybox_image import IMAGE_NAME, ContainerdUnavailable, build_busybox_image
from support.containerd import ContainerdEnv

__all__ = ["IMAGE_NAME", "ContainerdEnv", "ContainerdUnavailable", "build_busybox_image"]


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
