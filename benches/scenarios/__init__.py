"""The named benchmark scenarios, in the order a full run executes them."""

from __future__ import annotations

from benches.common import Scenario
from benches.scenarios import (
    churn,
    decode,
    fanout,
    floor,
    idle,
    output,
    peers,
    soak,
    throughput,
)

SCENARIOS: dict[str, Scenario] = {
    "idle": idle.run,
    "throughput": throughput.run,
    "peers": peers.run,
    "floor": floor.run,
    "decode": decode.run,
    "fanout": fanout.run,
    "output": output.run,
    "churn": churn.run,
    "soak": soak.run,
}
