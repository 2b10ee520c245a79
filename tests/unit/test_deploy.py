"""deploy/: every manifest is valid against the Kubernetes schemas (kubernetes-validate), is
created in the local API server through the real ``kubernetes`` client, the kustomize base
renders (``kubectl kustomize``, when kubectl is installed), the CRD file is the generated
one, RBAC is exactly the least privilege the agent needs, and the DaemonSet is what a node
agent needs (hostPID, privileged, host mounts, tolerations, resources, health probes)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

import syshub
from support.k8s_apiserver import FakeApiServer
from syshub.spec.crd import crd_documents

kubernetes_validate = pytest.importorskip("kubernetes_validate")

BASE = Path(__file__).resolve().parents[2] / "deploy" / "base"
K8S_VERSIONS = ("1.28.0", "1.30.0")


def _docs(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((BASE / name).read_text()) if d]


def _manifests() -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((BASE / "kustomization.yaml").read_text())
    return [d for f in kustomization["resources"] for d in _docs(f)]


def _by_kind(kind: str) -> list[dict[str, Any]]:
    return [d for d in _manifests() if d["kind"] == kind]


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((BASE / "kustomization.yaml").read_text())
    files = {p.name for p in BASE.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files
    assert kustomization["images"] == [{"name": "syshub", "newTag": syshub.__version__}]


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_every_manifest_validates(version: str) -> None:
    docs = _manifests()
    assert {d["kind"] for d in docs} == {
        "Namespace",
        "CustomResourceDefinition",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "DaemonSet",
    }
    for doc in docs:
        kubernetes_validate.validate(doc, version, strict=True)


def test_crd_file_is_the_generated_one() -> None:
    assert _docs("crd.yaml") == crd_documents(["syshub", "swoll"])


def test_rbac_is_least_privilege() -> None:
    (role,) = _by_kind("ClusterRole")
    rules = {
        (tuple(r["apiGroups"]), tuple(r["resources"]), tuple(sorted(r["verbs"])))
        for r in role["rules"]
    }
    groups = ("syshub.io", "tools.swoll.criticalstack.com")
    assert rules == {
        (("",), ("pods",), ("get", "list", "watch")),
        (groups, ("traces",), ("get", "list", "watch")),
        (groups, ("traces/status",), ("patch",)),
        (("",), ("events",), ("create",)),
    }
    (binding,) = _by_kind("ClusterRoleBinding")
    (account,) = _by_kind("ServiceAccount")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [
        {
            "kind": "ServiceAccount",
            "name": account["metadata"]["name"],
            "namespace": account["metadata"]["namespace"],
        }
    ]


def test_daemonset_is_a_node_agent() -> None:
    (ds,) = _by_kind("DaemonSet")
    pod = ds["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert pod["hostPID"] is True
    assert c["securityContext"]["privileged"] is True
    assert pod["serviceAccountName"] == _by_kind("ServiceAccount")[0]["metadata"]["name"]
    assert {"operator": "Exists"} in pod["tolerations"]
    assert c["resources"]["requests"] and c["resources"]["limits"]
    host_paths = {v["hostPath"]["path"] for v in pod["volumes"] if "hostPath" in v}
    assert {"/proc", "/sys/kernel/btf", "/sys/kernel/tracing"} <= host_paths
    assert "/run/containerd/containerd.sock" in host_paths
    mounted = {m["name"] for m in c["volumeMounts"]}
    assert mounted == {v["name"] for v in pod["volumes"]}
    assert c["image"] == f"syshub:{syshub.__version__}"
    assert ds["metadata"]["labels"]["app.kubernetes.io/version"] == syshub.__version__
    assert "--kubernetes" in c["args"] and c["args"][0] == "agent"
    node_env = {e["name"]: e for e in c["env"]}["SYSHUB_AGENT_NODE_NAME"]
    assert node_env["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"
    for probe in ("readinessProbe", "livenessProbe"):
        script = " ".join(c[probe]["exec"]["command"])
        assert "grpc_health.v1" in script and "syshub.v1.Agent" in script
        assert "unix:///run/syshub/agent.sock" in script
    assert "--socket=/run/syshub/agent.sock" in c["args"]


def test_daemonset_args_parse() -> None:
    """The container's arguments are a valid ``syshub agent`` command line."""
    from syshub.cli.parser import parse_args

    (ds,) = _by_kind("DaemonSet")
    args = parse_args(ds["spec"]["template"]["spec"]["containers"][0]["args"])
    assert args.command == "agent" and args.kubernetes


def test_manifests_create_in_the_local_api_server() -> None:
    kubernetes = pytest.importorskip("kubernetes")
    from kubernetes import utils  # type: ignore[import-untyped]

    with FakeApiServer() as api:
        cfg = kubernetes.client.Configuration()
        cfg.host = api.url
        with kubernetes.client.ApiClient(cfg) as client:
            for doc in _manifests():
                utils.create_from_dict(client, doc)
            apps = kubernetes.client.AppsV1Api(client)
            ds = apps.read_namespaced_daemon_set("syshub-agent", "syshub")
            assert ds.spec.template.spec.host_pid is True
            rbac = kubernetes.client.RbacAuthorizationV1Api(client)
            assert rbac.read_cluster_role("syshub-agent").rules
        # the CRDs made the Trace groups servable
        assert api.resource_type("syshub.io", "v1alpha1", "traces") is not None
        assert api.resource_type("tools.swoll.criticalstack.com", "v1alpha1", "traces")


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kustomize_base_renders() -> None:
    out = subprocess.run(
        ["kubectl", "kustomize", str(BASE)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    docs = [d for d in yaml.safe_load_all(out.stdout) if d]
    assert len(docs) == len(_manifests())
    for doc in docs:
        kubernetes_validate.validate(doc, K8S_VERSIONS[-1], strict=True)
        if doc["kind"] in ("ServiceAccount", "DaemonSet"):
            assert doc["metadata"]["namespace"] == "syshub"
        assert doc["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "kustomize"
