"""2. SMA crossover: enter when the fast SMA crosses above the slow one, exit when it crosses below."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..candles import Candles
from ..indicators import sma
from ..parameters import ParameterSpec
from ..registry import StrategySpec, less_than
from ._common import crosses_above, crosses_below, require


def signals(candles: Candles, params: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    fast, slow = int(params["fast_period"]), int(params["slow_period"])
    require(len(candles), slow + 1, f"SMA cross ({fast}/{slow})")
    f = candles.indicator(("sma", fast), lambda: sma(candles.close, fast))
    s = candles.indicator(("sma", slow), lambda: sma(candles.close, slow))
    return crosses_above(f, s), crosses_below(f, s)


SPEC = StrategySpec(
    id=2, code="sma_cross", name="SMA crossover",
    description="Long only: enter when the fast simple moving average of the close crosses above the slow "
                "one (above now, at or below on the bar before), exit on the opposite cross.",
    own_parameters=(
        ParameterSpec("fast_period", "integer", 20, 1, 1000, description="Fast SMA length in bars "
                                                                        "(must be below slow_period)."),
        ParameterSpec("slow_period", "integer", 50, 2, 1000, description="Slow SMA length in bars."),
    ),
    signals=signals,
    check=less_than("fast_period", "slow_period"),
)
