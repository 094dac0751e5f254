"""run_settings (the grid path): the same metrics as run_backtest, setting by setting, with indicators memoised."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from api.engine import EngineError, get_strategy, make_candles, metrics_of, run_backtest, run_settings
from api.engine import indicators
from tests.test_engine_golden import DAY, RUNS, bars_per_year, lcg_candles

# per strategy: a few values of its own parameters, crossed with two executions and stops on/off
AXES = {
    "rsi": {"rsi_period": [5, 14, 400], "oversold_threshold": [25.0, 35.0], "overbought_threshold": [65.0, 75.0]},
    "sma_cross": {"fast_period": [5, 10], "slow_period": [20, 30, 500]},
    "macd": {"fast_period": [8, 12], "slow_period": [26, 300], "signal_period": [9]},
    "bollinger": {"period": [10, 20], "num_std": [1.5, 2.0], "exit_band": ["middle", "upper"]},
    "donchian": {"entry_period": [10, 20, 900], "exit_period": [5, 10]},
    "opening_range_breakout": {"range_minutes": [30, 60], "session_hours": [4, 8]},
    "buy_and_hold": {},
}
COMMON = [{"execution": "close"}, {"execution": "next_open", "stop_loss_pct": 5.0, "trailing_stop_pct": 8.0}]


def settings_of(code: str) -> list[dict]:
    spec = get_strategy(code)
    axes = AXES[code]
    out = []
    for values in itertools.product(*axes.values()):
        for common in COMMON:
            params = {**spec.defaults(), **dict(zip(axes, values)), **common}
            if not spec.check(params):
                out.append(params)
    return out


def same(a, b) -> bool:
    if a is None or b is None or isinstance(a, (bool, int)):
        return a == b
    return a == b or (math.isnan(a) and math.isnan(b))


@pytest.mark.parametrize("code", list(RUNS))
def test_each_row_equals_its_own_backtest(code: str) -> None:
    spec = get_strategy(code)
    o, h, lo, c, t, interval = RUNS[code][0]()

    def candles_of():
        return make_candles(o, h, lo, c, None, t, interval)

    settings = settings_of(code)
    run = run_settings(spec, candles_of(), settings, bars_per_year(interval))
    assert run.stats.shape[0] == len(settings) == len(run.errors)
    errors = 0
    for params, stats, error in zip(settings, run.stats, run.errors):
        try:
            want = run_backtest(spec, candles_of(), params, bars_per_year(interval), with_trades=False).metrics
        except EngineError as exc:  # fresh candles each time: nothing memoised
            assert error is not None and str(error) == str(exc)
            assert np.isnan(stats).all()
            errors += 1
            continue
        assert error is None
        got = metrics_of(stats)
        assert got.keys() == want.keys()
        assert all(same(got[k], want[k]) for k in want), (params, got, want)
    if code in ("rsi", "sma_cross", "macd", "donchian"):
        assert 0 < errors < len(settings)  # the too-long look-backs fail alone, the rest run


def test_an_indicator_is_computed_once_per_distinct_look_back(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = indicators.rsi

    def counting(close, period):
        calls.append(period)
        return real(close, period)

    monkeypatch.setattr("api.engine.strategies.rsi.rsi", counting)
    spec = get_strategy("rsi")
    grid = [{**spec.defaults(), "rsi_period": p, "oversold_threshold": lo, "overbought_threshold": hi}
            for p in (7, 14, 21) for lo in (20.0, 25.0, 30.0) for hi in (70.0, 80.0)]
    o, h, lo, c, t, interval = lcg_candles(300, DAY, 9)
    candles = make_candles(o, h, lo, c, None, t, interval)
    run = run_settings(spec, candles, grid, 365.0)
    assert sorted(calls) == [7, 14, 21]
    assert set(candles.memo) == {("rsi", 7), ("rsi", 14), ("rsi", 21)}
    assert not any(run.errors) and not np.isnan(run.stats[:, 0]).any()


def test_the_memo_is_bounded_and_still_right() -> None:
    spec = get_strategy("sma_cross")
    close = 100.0 + np.cumsum(np.sin(np.arange(600) / 7.0))
    candles = make_candles(None, None, None, close)
    grid = [{**spec.defaults(), "fast_period": f, "slow_period": 300} for f in range(1, 300)]
    run = run_settings(spec, candles, grid, 365.0)
    assert len(candles.memo) <= 256
    for i in (0, 150, 298):
        want = run_backtest(spec, make_candles(None, None, None, close), grid[i], 365.0, with_trades=False).metrics
        assert metrics_of(run.stats[i]) == want
