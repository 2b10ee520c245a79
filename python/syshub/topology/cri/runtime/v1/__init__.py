"""``runtime.v1``: the CRI subset of ``proto/cri/runtime/v1/api.proto`` (generated)."""
