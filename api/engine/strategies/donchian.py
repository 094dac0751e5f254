"""5. Donchian breakout: enter above the highest high of the prior bars, exit below the lowest low."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..candles import Candles
from ..indicators import rolling_max, rolling_min
from ..parameters import ParameterSpec
from ..registry import StrategySpec
from ._common import require


def signals(candles: Candles, params: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    entry_period, exit_period = int(params["entry_period"]), int(params["exit_period"])
    require(len(candles), entry_period + 1, f"Donchian({entry_period})")
    # upper[t-1]: the channel of the bars before t
    upper = candles.indicator(("rolling_max_high", entry_period), lambda: rolling_max(candles.high, entry_period))
    lower = candles.indicator(("rolling_min_low", exit_period), lambda: rolling_min(candles.low, exit_period))
    close = candles.close
    entry = np.zeros(close.size, dtype=np.bool_)
    exit_ = np.zeros(close.size, dtype=np.bool_)
    np.greater(close[1:], upper[:-1], out=entry[1:])  # False while the channel warms up (NaN)
    np.less(close[1:], lower[:-1], out=exit_[1:])
    return entry, exit_


SPEC = StrategySpec(
    id=5, code="donchian", name="Donchian channel breakout",
    description="Long only: enter when the close is above the highest high of the previous entry_period bars, "
                "exit when it is below the lowest low of the previous exit_period bars.",
    own_parameters=(
        ParameterSpec("entry_period", "integer", 20, 1, 1000, description="Bars of the entry channel."),
        ParameterSpec("exit_period", "integer", 10, 1, 1000, description="Bars of the exit channel."),
    ),
    signals=signals,
    inputs=frozenset({"high", "low", "close"}),
)
