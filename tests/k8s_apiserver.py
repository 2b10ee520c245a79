"""The local Kubernetes API server of the tests; see :mod:`support.k8s_apiserver`."""

from support.k8s_apiserver import FakeApiServer, Pod, RecordedRequest, make_pod

__all__ = ["FakeApiServer", "Pod", "RecordedRequest", "make_pod"]
