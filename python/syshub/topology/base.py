"""Former name of :mod:`syshub.topology.model`, kept for existing imports."""

from syshub.topology import model as _model


def __getattr__(name: str) -> object:
    return getattr(_model, name)
