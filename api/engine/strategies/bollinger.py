"""4. Bollinger bands: enter when the close falls below the lower band, exit above the middle or upper band."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..candles import Candles
from ..indicators import bbands
from ..parameters import ParameterSpec
from ..registry import StrategySpec
from ._common import require


def signals(candles: Candles, params: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    period = int(params["period"])
    require(len(candles), period, f"Bollinger({period})")
    num_std = float(params["num_std"])
    upper, middle, lower = candles.indicator(("bbands", period, num_std),
                                             lambda: bbands(candles.close, period, num_std))
    close = candles.close
    return close < lower, close > (middle if params["exit_band"] == "middle" else upper)


SPEC = StrategySpec(
    id=4, code="bollinger", name="Bollinger band reversion",
    description="Long only: enter when the close falls below the lower band (TA-Lib BBANDS: SMA +/- num_std "
                "population standard deviations), exit when it closes above the chosen band.",
    own_parameters=(
        ParameterSpec("period", "integer", 20, 2, 1000, description="Band look-back in bars."),
        ParameterSpec("num_std", "number", 2.0, 0, 10, exclusive_min=True,
                      description="Band width in standard deviations."),
        ParameterSpec("exit_band", "string", "middle", enum=("middle", "upper"),
                      description="Exit when the close rises above this band."),
    ),
    signals=signals,
)
