"""7. Buy and hold: enter on the first bar, never exit (the benchmark every other strategy is read against)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..candles import Candles
from ..registry import StrategySpec
from ._common import require


def signals(candles: Candles, params: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    require(len(candles), 1, "buy and hold")
    entry = np.zeros(len(candles), dtype=np.bool_)
    entry[0] = True
    return entry, np.zeros(len(candles), dtype=np.bool_)


SPEC = StrategySpec(
    id=7, code="buy_and_hold", name="Buy and hold",
    description="Enter on the first bar and hold to the end (stops and take-profit still apply when set).",
    own_parameters=(),
    signals=signals,
)
