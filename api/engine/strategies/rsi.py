"""1. RSI buy/sell: enter when Wilder's RSI closes below `oversold_threshold`, exit above `overbought_threshold`."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..candles import Candles
from ..indicators import below_above, rsi
from ..parameters import ParameterSpec
from ..registry import StrategySpec, less_than
from ._common import require


def signals(candles: Candles, params: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    period = int(params["rsi_period"])
    require(len(candles), period + 1, f"RSI({period})")
    values = candles.indicator(("rsi", period), lambda: rsi(candles.close, period))  # once per period in a grid
    return below_above(values, params["oversold_threshold"], params["overbought_threshold"])


SPEC = StrategySpec(
    id=1, code="rsi", name="RSI buy/sell",
    description="Long only: buy with all cash when Wilder's RSI closes below the oversold threshold, "
                "sell everything when it closes above the overbought threshold.",
    own_parameters=(
        ParameterSpec("rsi_period", "integer", 14, 2, 1000, description="Wilder RSI look-back in bars."),
        ParameterSpec("oversold_threshold", "number", 30.0, 0, 100,
                      description="Enter when flat and RSI closes below this (must be below overbought)."),
        ParameterSpec("overbought_threshold", "number", 70.0, 0, 100,
                      description="Exit when long and RSI closes above this."),
    ),
    signals=signals,
    check=less_than("oversold_threshold", "overbought_threshold"),
)
