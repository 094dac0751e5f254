"""Comparing answers of runs that must agree: everything but what differs run to run (timings, ids, who ran it)."""
from __future__ import annotations

from collections.abc import Collection
from typing import Any

UNTIMED = frozenset({"calculation_time_ms", "total_time", "batch_id", "requested_parallel", "parallel", "processes",
                     "computed", "from_store", "executor", "workers"})


def untimed(value: Any, keys: Collection[str] = UNTIMED) -> Any:
    """`value` without `keys` at any depth."""
    if isinstance(value, dict):
        return {k: untimed(v, keys) for k, v in value.items() if k not in keys}
    if isinstance(value, list):
        return [untimed(v, keys) for v in value]
    return value
