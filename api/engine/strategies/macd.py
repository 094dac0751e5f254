"""3. MACD: enter when the MACD line crosses above its signal line, exit when it crosses below (TA-Lib MACD)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..candles import Candles
from ..errors import EngineError
from ..indicators import macd
from ..parameters import ParameterSpec
from ..registry import StrategySpec, less_than
from ._common import fill_crossings, one_row, require


def signals(candles: Candles, params: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    return one_row(signal_rows, candles, params)


def signal_rows(candles: Candles, settings: Sequence[Mapping[str, Any]], entry: np.ndarray,
                exit_: np.ndarray) -> list[EngineError | None]:
    """entry[j]/exit_[j]: the MACD line of settings[j] crossing above/below its signal line; each MACD once."""
    errors: list[EngineError | None] = [None] * len(settings)
    series: dict[tuple[str, int, int, int], np.ndarray] = {}
    pairs = []
    for j, params in enumerate(settings):
        key = (int(params["fast_period"]), int(params["slow_period"]), int(params["signal_period"]))
        fast, slow, signal = key
        try:
            require(len(candles), slow + signal, f"MACD({fast},{slow},{signal})")
        except EngineError as exc:
            errors[j] = exc
            continue
        if ("line", *key) not in series:
            line, signal_line, _ = candles.indicator(("macd", *key), lambda: macd(candles.close, fast, slow, signal))
            series[("line", *key)], series[("signal", *key)] = line, signal_line
        pairs.append((j, ("line", *key), ("signal", *key)))
    fill_crossings(series, pairs, entry, exit_)
    return errors


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
    signal_rows=signal_rows,
)
