"""The Rust mirror of the ABI header agrees with the compiled eBPF object's
BTF: size and offset of every field. Needs no privileges (bpftool reads the
object file)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from syshub import probe as syshub_probe


@pytest.fixture(scope="module")
def btf_structs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, object]]:
    bpftool = shutil.which("bpftool") or "/usr/sbin/bpftool"
    if not Path(bpftool).exists():
        pytest.fail("bpftool (apt: bpftool) is needed to read the probe's BTF")
    obj = tmp_path_factory.mktemp("abi") / "syshub.bpf.o"
    obj.write_bytes(syshub_probe.probe_object())
    out = subprocess.run(
        [bpftool, "-j", "btf", "dump", "file", str(obj)], check=True, capture_output=True
    ).stdout
    types = json.loads(out)["types"]
    return {t["name"]: t for t in types if t.get("kind") == "STRUCT" and t.get("name")}


def test_every_abi_struct_matches_btf(btf_structs: dict[str, dict[str, object]]) -> None:
    layout = syshub_probe.abi_layout()
    assert set(layout) <= set(btf_structs), set(layout) - set(btf_structs)
    for name, fields in layout.items():
        btf = btf_structs[name]
        assert btf["size"] == fields["__size__"][1], name
        members = {m["name"]: m["bits_offset"] // 8 for m in btf["members"]}  # type: ignore[attr-defined]
        rust = {f: off for f, (off, _size) in fields.items() if f != "__size__"}
        assert rust == members, f"{name}: rust {rust} != btf {members}"


def test_header_sizes_are_the_documented_ones() -> None:
    layout = syshub_probe.abi_layout()
    assert layout["syshub_event"]["__size__"][1] == 160
    assert layout["syshub_capture"]["__size__"][1] == 16
    assert syshub_probe.ABI_VERSION == 2
