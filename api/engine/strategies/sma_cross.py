"""2. SMA crossover: enter when the fast SMA crosses above the slow one, exit when it crosses below."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..candles import Candles
from ..errors import EngineError
from ..indicators import sma
from ..parameters import ParameterSpec
from ..registry import StrategySpec, less_than
from ._common import fill_crossings, one_row, require


def signals(candles: Candles, params: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    return one_row(signal_rows, candles, params)


def signal_rows(candles: Candles, settings: Sequence[Mapping[str, Any]], entry: np.ndarray,
                exit_: np.ndarray) -> list[EngineError | None]:
    """entry[j]/exit_[j]: the fast SMA of settings[j] crossing above/below its slow one; each SMA once."""
    errors: list[EngineError | None] = [None] * len(settings)
    series: dict[int, np.ndarray] = {}
    pairs = []
    for j, params in enumerate(settings):
        fast, slow = int(params["fast_period"]), int(params["slow_period"])
        try:
            require(len(candles), slow + 1, f"SMA cross ({fast}/{slow})")
        except EngineError as exc:
            errors[j] = exc
            continue
        for period in (fast, slow):
            if period not in series:
                series[period] = candles.indicator(("sma", period), lambda: sma(candles.close, period))
        pairs.append((j, fast, slow))
    fill_crossings(series, pairs, entry, exit_)
    return errors


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
    signal_rows=signal_rows,
)
