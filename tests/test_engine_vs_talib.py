"""Our Wilder RSI against TA-Lib itself, the convention DESIGN.md names."""
from __future__ import annotations

import numpy as np
import pytest
import talib  # requirements-dev.txt: the reference implementation, test-only

from api.engine import compute_rsi


@pytest.mark.parametrize("period", [2, 5, 14, 30, 100])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_rsi_equals_talib(period: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.standard_t(3, 1500) * 0.02))
    ours, theirs = compute_rsi(close, period), talib.RSI(close, timeperiod=period)
    assert np.array_equal(np.isnan(ours), np.isnan(theirs))
    np.testing.assert_allclose(ours[period:], theirs[period:], rtol=0, atol=1e-9)


def test_rsi_equals_talib_on_flat_and_stepped_series() -> None:
    close = np.concatenate([np.full(30, 5.0), np.linspace(5, 9, 30), np.full(30, 9.0)])
    np.testing.assert_allclose(compute_rsi(close, 14)[14:], talib.RSI(close, 14)[14:], atol=1e-9)
