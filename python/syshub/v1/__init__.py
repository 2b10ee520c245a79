"""syshub's own API messages, generated from ``proto/syshub/v1`` by ``make proto``
(``make proto-check`` verifies that regenerating changes nothing): ``event_pb2``
(the event document as protobuf) and ``agent_pb2`` (the node agent's service).
Needs ``protobuf`` (``pip install 'syshub[agent]'``)."""
