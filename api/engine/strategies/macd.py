"""3. MACD: enter when the MACD line crosses above its signal line, exit when it crosses below (TA-Lib MACD)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..candles import Candles
from ..indicators import macd
from ..parameters import ParameterSpec
from ..registry import StrategySpec, less_than
from ._common import crosses_above, crosses_below, require


def signals(candles: Candles, params: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    fast, slow, signal = int(params["fast_period"]), int(params["slow_period"]), int(params["signal_period"])
    require(len(candles), slow + signal, f"MACD({fast},{slow},{signal})")
    line, signal_line, _ = candles.indicator(("macd", fast, slow, signal),
                                             lambda: macd(candles.close, fast, slow, signal))
    return crosses_above(line, signal_line), crosses_below(line, signal_line)


SPEC = StrategySpec(
    id=3, code="macd", name="MACD signal cross",
    description="Long only: enter when TA-Lib's MACD line (fast EMA - slow EMA of the close) crosses above "
                "its signal line, exit when it crosses below.",
    own_parameters=(
        ParameterSpec("fast_period", "integer", 12, 2, 1000, description="Fast EMA length in bars "
                                                                        "(must be below slow_period)."),
        ParameterSpec("slow_period", "integer", 26, 3, 1000, description="Slow EMA length in bars."),
        ParameterSpec("signal_period", "integer", 9, 1, 1000, description="Signal-line EMA length in bars."),
    ),
    signals=signals,
    check=less_than("fast_period", "slow_period"),
)
