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


def _prior(values: np.ndarray) -> np.ndarray:
    """values[t-1] at t (NaN at 0): a channel of the bars before t, never t itself."""
    out = np.empty_like(values)
    out[0] = np.nan
    out[1:] = values[:-1]
    return out


def signals(candles: Candles, params: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    entry_period, exit_period = int(params["entry_period"]), int(params["exit_period"])
    require(len(candles), entry_period + 1, f"Donchian({entry_period})")
    upper = _prior(rolling_max(candles.high, entry_period))
    lower = _prior(rolling_min(candles.low, exit_period))
    return candles.close > upper, candles.close < lower


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
