"""Our indicators against TA-Lib itself, the convention DESIGN.md names."""
from __future__ import annotations

import numpy as np
import pytest
import talib  # requirements-dev.txt: the reference implementation, test-only

from api.engine import compute_rsi
from api.engine import indicators as ind


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


# ------------------------------------------------ the indicators module
# Contract: equal to TA-Lib within 1e-9 (relative and absolute), with NaN at
# exactly TA-Lib's positions. (With ta-lib 0.8 every indicator but RSI is in
# fact bit-identical; the RSI seed keeps numpy's pairwise sum.)

SCALES = [1e-3, 1.0, 100.0, 1e5]  # from micro-cap tokens to BTC


def _closes(seed: int, scale: float = 100.0, n: int = 1000) -> np.ndarray:
    """`n` lognormal random-walk closes around `scale`."""
    rng = np.random.default_rng(seed)
    return scale * np.exp(np.cumsum(rng.normal(0.0, 0.02, n)))


def _same(ours: np.ndarray, theirs: np.ndarray) -> None:
    assert ours.dtype == np.float64 and ours.shape == theirs.shape
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))
    np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-9)


def _same_all(ours: tuple, theirs: tuple) -> None:
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        _same(a, b)


@pytest.mark.parametrize("period", [2, 5, 14, 30, 100])
@pytest.mark.parametrize("seed", [1, 2])
def test_rsi_function_equals_talib(period: int, seed: int) -> None:
    close = _closes(seed)
    _same(ind.rsi(close, period), talib.RSI(close, timeperiod=period))
    np.testing.assert_array_equal(ind.rsi(close, period), compute_rsi(close, period))


@pytest.mark.parametrize("period", [1, 2, 3, 10, 20, 50, 200])
@pytest.mark.parametrize("scale", SCALES)
def test_sma_and_ema_equal_talib(period: int, scale: float) -> None:
    close = _closes(period, scale)
    _same(ind.sma(close, period), talib.SMA(close, timeperiod=period))
    _same(ind.ema(close, period), talib.EMA(close, timeperiod=period))


@pytest.mark.parametrize(("fast", "slow", "signal"),
                         [(12, 26, 9), (5, 35, 5), (2, 3, 1), (3, 10, 2), (8, 8, 3), (26, 12, 9)])
@pytest.mark.parametrize("scale", SCALES)
def test_macd_equals_talib(fast: int, slow: int, signal: int, scale: float) -> None:
    close = _closes(fast * 100 + slow, scale)
    _same_all(ind.macd(close, fast, slow, signal),
              talib.MACD(close, fastperiod=fast, slowperiod=slow, signalperiod=signal))


@pytest.mark.parametrize("num_std", [2.0, 1.5, 1.0, 0.0])
@pytest.mark.parametrize("period", [2, 5, 20, 50])
@pytest.mark.parametrize("scale", SCALES)
def test_bbands_equals_talib(period: int, num_std: float, scale: float) -> None:
    close = _closes(period, scale)
    _same_all(ind.bbands(close, period, num_std),
              talib.BBANDS(close, timeperiod=period, nbdevup=num_std, nbdevdn=num_std, matype=0))


def test_bbands_equals_talib_on_a_fine_tick_series() -> None:
    """Two-decimal prices moving by a cent: the variance cancels badly unless computed with care."""
    rng = np.random.default_rng(11)
    close = np.round(30_000 + np.cumsum(rng.choice([-0.01, 0.0, 0.01], 3000)), 2)
    for period in (5, 20):
        _same_all(ind.bbands(close, period, 2.0), talib.BBANDS(close, period, 2.0, 2.0, 0))


@pytest.mark.parametrize("period", [2, 3, 20, 55])
@pytest.mark.parametrize("scale", SCALES)
def test_rolling_max_and_min_equal_talib(period: int, scale: float) -> None:
    close = _closes(period + 7, scale)
    _same(ind.rolling_max(close, period), talib.MAX(close, timeperiod=period))
    _same(ind.rolling_min(close, period), talib.MIN(close, timeperiod=period))


def _all_indicators(close: np.ndarray, p: int) -> dict[str, tuple[tuple, tuple]]:
    """Ours and TA-Lib's value of each indicator with period p (MACD: (p, 2p, p))."""
    return {
        "rsi": ((ind.rsi(close, p),), (talib.RSI(close, p),)),
        "sma": ((ind.sma(close, p),), (talib.SMA(close, p),)),
        "ema": ((ind.ema(close, p),), (talib.EMA(close, p),)),
        "max": ((ind.rolling_max(close, p),), (talib.MAX(close, p),)),
        "min": ((ind.rolling_min(close, p),), (talib.MIN(close, p),)),
        "bbands": (ind.bbands(close, p, 2.0), talib.BBANDS(close, p, 2.0, 2.0, 0)),
        "macd": (ind.macd(close, p, 2 * p, p), talib.MACD(close, p, 2 * p, p)),
    }


# first index with a value for period p (MACD (p, 2p, p): (2p - 1) + (p - 1))
WARM_UP = {"rsi": lambda p: p, "sma": lambda p: p - 1, "ema": lambda p: p - 1, "max": lambda p: p - 1,
           "min": lambda p: p - 1, "bbands": lambda p: p - 1, "macd": lambda p: 3 * p - 2}


@pytest.mark.parametrize("p", [2, 5, 14])
@pytest.mark.parametrize("name", sorted(WARM_UP))
def test_series_exactly_at_the_warm_up_length(name: str, p: int) -> None:
    full = _closes(p)
    first = WARM_UP[name](p)
    # one value exactly at the last index; one shorter, all NaN (TA-Lib too)
    for n, values in ((first + 1, 1), (first, 0)):
        ours, theirs = _all_indicators(full[:n].copy(), p)[name]
        _same_all(ours, theirs)
        for line in ours:
            assert np.count_nonzero(~np.isnan(line)) == values


def test_period_one_where_talib_allows_it() -> None:
    rng = np.random.default_rng(4)
    close = np.abs(rng.standard_cauchy(1000)) * 100 + 0.01  # 3x jumps: EMA(1) must copy, not recurse
    _same(ind.sma(close, 1), talib.SMA(close, 1))
    _same(ind.ema(close, 1), talib.EMA(close, 1))
    np.testing.assert_array_equal(ind.ema(close, 1), close)
    _same_all(ind.macd(close, 12, 26, 1), talib.MACD(close, 12, 26, 1))


@pytest.mark.parametrize("p", [2, 5, 20])
def test_constant_prices(p: int) -> None:
    close = np.full(200, 1234.5)
    for ours, theirs in _all_indicators(close, p).values():
        _same_all(ours, theirs)
    upper, middle, lower = ind.bbands(close, p, 2.0)
    np.testing.assert_array_equal(upper[p - 1:], middle[p - 1:])
    np.testing.assert_array_equal(lower[p - 1:], middle[p - 1:])
