"""1. RSI buy/sell: enter when Wilder's RSI closes below `oversold_threshold`, exit above `overbought_threshold`."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..candles import Candles
from ..errors import EngineError
from ..indicators import below_above_rows_kernel, rsi
from ..parameters import ParameterSpec
from ..registry import StrategySpec, less_than
from ._common import one_row, require


def signals(candles: Candles, params: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    return one_row(signal_rows, candles, params)


def signal_rows(candles: Candles, settings: Sequence[Mapping[str, Any]], entry: np.ndarray,
                exit_: np.ndarray) -> list[EngineError | None]:
    """entry[j] = RSI < oversold, exit_[j] = RSI > overbought of settings[j]: one RSI per distinct period,
    every threshold pair of that period in one compiled call."""
    errors: list[EngineError | None] = [None] * len(settings)
    by_period: dict[int, list[int]] = {}
    for j, params in enumerate(settings):
        by_period.setdefault(int(params["rsi_period"]), []).append(j)
    for period, rows in by_period.items():
        try:
            require(len(candles), period + 1, f"RSI({period})")
        except EngineError as exc:
            for j in rows:
                errors[j] = exc
            continue
        values = candles.indicator(("rsi", period), lambda: rsi(candles.close, period))
        below = np.array([settings[j]["oversold_threshold"] for j in rows], dtype=np.float64)
        above = np.array([settings[j]["overbought_threshold"] for j in rows], dtype=np.float64)
        below_above_rows_kernel(values, np.array(rows, dtype=np.int64), below, above, entry, exit_)
    return errors


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
    signal_rows=signal_rows,
)
