"""Properties of the engine that must hold for any price series and parameters (hypothesis)."""
from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from api.engine import CATALOG, candles_from_close, compute_rsi, get_strategy, run_backtest


def run_rsi_strategy(close, p, bars_per_year):
    spec = get_strategy("rsi")
    return run_backtest(spec, candles_from_close(close), {**spec.defaults(), **p}, bars_per_year)


prices = st.lists(st.floats(min_value=1e-6, max_value=1e6, allow_nan=False, allow_infinity=False),
                  min_size=16, max_size=400).map(np.array)
params = st.fixed_dictionaries({
    "initial_investment": st.floats(min_value=1.0, max_value=1e9),
    "transaction_fee": st.floats(min_value=0.0, max_value=5.0),
    "rsi_period": st.integers(min_value=2, max_value=15),
    "oversold_threshold": st.floats(min_value=0.0, max_value=49.0),
    "overbought_threshold": st.floats(min_value=51.0, max_value=100.0),
})
SETTINGS = settings(max_examples=150, deadline=None)


@SETTINGS
@given(prices, st.integers(min_value=2, max_value=15))
def test_rsi_stays_within_0_and_100(close, period) -> None:
    rsi = compute_rsi(close, period)
    assert np.isnan(rsi[:period]).all()
    assert ((rsi[period:] >= 0) & (rsi[period:] <= 100)).all()


@SETTINGS
@given(prices, params)
def test_equity_is_never_nan_and_metrics_are_json_safe(close, p) -> None:
    out = run_rsi_strategy(close, p, 365.0)
    assert np.isfinite(out.equity).all()
    for name, value in out.metrics.items():
        assert value is None or isinstance(value, bool) or math.isfinite(value), name


@SETTINGS
@given(prices, params, st.floats(min_value=0.0, max_value=5.0))
def test_a_higher_fee_never_raises_the_final_value(close, p, extra) -> None:
    """Same signals (they depend on prices only), every fill costs more: never a better end."""
    cheap = run_rsi_strategy(close, p, 365.0)
    dear = run_rsi_strategy(close, {**p, "transaction_fee": p["transaction_fee"] + extra}, 365.0)
    assert dear.metrics["final_value"] <= cheap.metrics["final_value"] * (1 + 1e-12)


@SETTINGS
@given(prices, params, st.integers(min_value=-20, max_value=20))
def test_scaling_all_prices_leaves_returns_unchanged(close, p, power) -> None:
    """Scaling by a power of two is exact in binary floating point, so results must be identical."""
    base = run_rsi_strategy(close, p, 365.0)
    scaled = run_rsi_strategy(close * 2.0 ** power, p, 365.0)
    for key in ("total_return", "num_trades", "win_rate", "max_drawdown", "exposure", "sharpe_ratio"):
        assert scaled.metrics[key] == base.metrics[key], key


@settings(max_examples=60, deadline=None)
@given(prices, st.sampled_from(CATALOG), st.sampled_from(["close", "next_open"]),
       st.one_of(st.none(), st.floats(min_value=0.5, max_value=50)),
       st.one_of(st.none(), st.floats(min_value=0.5, max_value=50)))
def test_every_strategy_gives_json_safe_metrics(close, spec, execution, stop, trail) -> None:
    params = {**spec.defaults(), "execution": execution, "stop_loss_pct": stop, "trailing_stop_pct": trail}
    for p in spec.own_parameters:  # short look-backs, so the short series give signals
        if p.type == "integer" and "period" in p.name:
            params[p.name] = {"fast_period": 3, "slow_period": 6, "signal_period": 3}.get(p.name, 5)
    try:
        out = run_backtest(spec, candles_from_close(close, interval_seconds=900), params, 35040.0)
    except ValueError as exc:  # only a series too short for the look-back
        assert "needs at least" in str(exc)
        return
    assert np.isfinite(out.equity).all() and (out.equity >= 0).all()
    for name, value in out.metrics.items():
        assert value is None or isinstance(value, bool) or math.isfinite(value), name
    assert out.metrics["num_trades"] == sum(not t.is_open for t in out.trades)
