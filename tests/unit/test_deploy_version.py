"""One version number: pyproject, the Cargo workspace, ``syshub --version``, the image tag and
labels in deploy/, and the CHANGELOG agree."""

from __future__ import annotations

import contextlib
import io
import re
import tomllib
from pathlib import Path

import yaml

import syshub
from syshub.cli.main import main

ROOT = Path(__file__).resolve().parents[2]


def test_one_version_everywhere() -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    cargo = tomllib.loads((ROOT / "Cargo.toml").read_text())["workspace"]["package"]["version"]
    assert syshub.__version__ == version == cargo
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["--version"]) == 0
    assert out.getvalue().strip() == f"syshub {version}"
    base = ROOT / "deploy" / "base"
    kustomization = yaml.safe_load((base / "kustomization.yaml").read_text())
    assert kustomization["images"][0]["newTag"] == version
    (ds,) = [d for d in yaml.safe_load_all((base / "daemonset.yaml").read_text()) if d]
    assert ds["metadata"]["labels"]["app.kubernetes.io/version"] == version
    assert ds["spec"]["template"]["spec"]["containers"][0]["image"] == f"syshub:{version}"
    changelog = (ROOT / "CHANGELOG.md").read_text()
    released = re.findall(r"^## \[(\d+\.\d+\.\d+)\]", changelog, re.MULTILINE)
    assert released and released[0] == version
