"""Chaining out-of-sample runs into one account (engine.stitching): one run is itself; runs compound."""
from __future__ import annotations

import math

import numpy as np
import pytest

from api.engine import get_strategy, make_candles, run_backtest
from api.engine.stitching import stitch

DAY = 86_400


def _candles(close: np.ndarray, first: int = 1_700_000_000):
    close = np.ascontiguousarray(close, dtype=np.float64)
    times = first + DAY * np.arange(close.size, dtype=np.int64)
    return make_candles(None, None, None, close, None, times, DAY, int(times[0]), int(times[-1]))


def _walk(n: int, seed: int) -> np.ndarray:
    return 100 * np.exp(np.cumsum(np.random.default_rng(seed).normal(0, 0.05, n)))


RSI = get_strategy(1)
PARAMS = {"initial_investment": 10_000.0, "transaction_fee": 0.1, "slippage_pct": 0.0, "execution": "close",
          "stop_loss_pct": None, "take_profit_pct": None, "trailing_stop_pct": None, "rsi_period": 5,
          "oversold_threshold": 35.0, "overbought_threshold": 60.0}


def test_one_run_stitched_is_that_run() -> None:
    candles = _candles(_walk(200, 1))
    outcome = run_backtest(RSI, candles, PARAMS, 365.0)
    times, equity, metrics = stitch([(candles, outcome)], 365.0)
    assert metrics == outcome.metrics and outcome.metrics["num_trades"] > 2
    assert np.array_equal(equity, outcome.equity) and np.array_equal(times, candles.time)


def test_runs_compound_and_an_open_position_between_them_closes_at_its_mark() -> None:
    prices = _walk(300, 2)
    spans = [_candles(prices[i:i + 100], 1_700_000_000 + i * DAY) for i in (0, 100, 200)]
    runs = [(c, run_backtest(RSI, c, PARAMS, 365.0)) for c in spans]
    times, equity, metrics = stitch(runs, 365.0)
    growth = math.prod(o.metrics["final_value"] / 10_000.0 for _, o in runs)
    assert metrics["final_value"] == pytest.approx(10_000.0 * growth, rel=1e-12)
    assert equity[-1] == pytest.approx(metrics["final_value"], rel=1e-15) and equity.size == times.size == 300
    open_before_last = sum(o.metrics["open_position"] for _, o in runs[:-1])
    assert metrics["num_trades"] == sum(o.metrics["num_trades"] for _, o in runs) + open_before_last
    assert metrics["open_position"] == runs[-1][1].metrics["open_position"]
    # scaled money: fees grow with the account, percents and prices do not
    assert metrics["best_trade"] >= max(o.metrics["best_trade"] or -np.inf for _, o in runs)
    held = np.concatenate([c.close for c in spans])
    assert metrics["buy_and_hold_return"] == pytest.approx((0.999 * held[-1] / held[0] - 1) * 100, rel=1e-12)


def test_nothing_to_stitch_is_an_error() -> None:
    with pytest.raises(ValueError):
        stitch([], 365.0)
