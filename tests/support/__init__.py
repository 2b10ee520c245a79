"""Test-only helpers: a private containerd and the CRI calls that create pods in it,
fake CRI runtimes, a local Kubernetes API server, and observer event recorders.

Importable from every test as ``support`` (pytest puts ``tests/`` on ``sys.path``
for ``tests/conftest.py``)."""
