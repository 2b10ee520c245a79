"""Code generated from ``proto/cri`` (``make proto``); do not edit the ``*_pb2`` files."""
