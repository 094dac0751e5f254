"""Metrics on tiny curves whose values can be checked by hand."""

import math

import numpy as np
import pytest

from api.engine import SimulationResult, Trade, compute_metrics

KEYS = {
    "total_return", "final_value", "buy_and_hold_return", "num_trades", "win_rate",
    "max_drawdown", "sharpe_ratio", "sortino_ratio", "exposure", "profit_factor",
    "open_position",
}


def _trade(pnl: float, is_open: bool = False) -> Trade:
    return Trade(
        entry_index=0, exit_index=None if is_open else 1, entry_price=100.0,
        exit_price=None if is_open else 100.0 + pnl / 10, units=10.0,
        entry_value=1000.0, exit_value=1000.0 + pnl, pnl=pnl,
        return_pct=pnl / 10, is_open=is_open,
    )


def _sim(equity: list[float], trades: tuple[Trade, ...] = (), position=None) -> SimulationResult:
    eq = np.array(equity, dtype=np.float64)
    pos = np.zeros(eq.size, bool) if position is None else np.array(position, bool)
    return SimulationResult(equity=eq, position=pos, trades=trades, final_value=float(eq[-1]))


def _metrics(equity: list[float], trades=(), position=None, close=None, fee=0.0, bpy=365.0):
    close = np.ones(len(equity)) if close is None else np.asarray(close, float)
    return compute_metrics(close, _sim(equity, trades, position), equity[0], fee, bpy)


def test_keys_and_plain_python_types() -> None:
    m = _metrics([100.0, 110.0, 99.0, 108.9], trades=(_trade(50.0), _trade(-10.0)),
                 position=[False, True, True, False])
    assert set(m) == KEYS
    for key, value in m.items():
        assert value is None or type(value) in (float, int, bool), key
        if isinstance(value, float):
            assert math.isfinite(value), key
    assert type(m["num_trades"]) is int and type(m["open_position"]) is bool


def test_max_drawdown() -> None:
    # peaks 100,120,120,130,130: falls 0, 0, 25 %, 0, 50 % -> 50 %
    assert _metrics([100.0, 120.0, 90.0, 130.0, 65.0])["max_drawdown"] == pytest.approx(50.0)
    assert _metrics([100.0, 100.0, 101.0, 150.0])["max_drawdown"] == 0.0


def test_total_return_and_final_value() -> None:
    m = _metrics([1000.0, 900.0, 1250.0])
    assert m["final_value"] == 1250.0
    assert m["total_return"] == pytest.approx(25.0)


def test_sharpe_and_sortino_by_hand() -> None:
    # returns: +10 %, -10 %, +10 %; mean = 1/30
    # deviations 2/30, -4/30, 2/30 -> sum of squares 24/900; ddof=1 var = 12/900
    # std = sqrt(12)/30 -> per-bar Sharpe = 1/sqrt(12); * sqrt(12 bars/year) = 1
    # downside: mean(0, 0.01, 0) = 0.01/3 -> sqrt = 0.1/sqrt(3)
    # Sortino = (1/30) / (0.1/sqrt(3)) * sqrt(12) = sqrt(3)/3 * sqrt(12) = 2
    m = _metrics([100.0, 110.0, 99.0, 108.9], bpy=12.0)
    assert m["sharpe_ratio"] == pytest.approx(1.0, rel=1e-9)
    assert m["sortino_ratio"] == pytest.approx(2.0, rel=1e-9)


def test_sharpe_scales_with_sqrt_bars_per_year() -> None:
    a = _metrics([100.0, 110.0, 99.0, 108.9], bpy=12.0)["sharpe_ratio"]
    b = _metrics([100.0, 110.0, 99.0, 108.9], bpy=48.0)["sharpe_ratio"]
    assert b == pytest.approx(2 * a, rel=1e-12)


def test_flat_equity_has_no_ratios() -> None:
    m = _metrics([100.0] * 5)
    assert m["sharpe_ratio"] is None
    assert m["sortino_ratio"] is None
    assert m["max_drawdown"] == 0.0
    assert m["total_return"] == 0.0


def test_ratios_need_enough_returns() -> None:
    assert _metrics([100.0])["sharpe_ratio"] is None
    assert _metrics([100.0])["sortino_ratio"] is None
    one = _metrics([100.0, 90.0])  # one return of -10 %: no std, Sortino = -0.1/0.1*sqrt(365)
    assert one["sharpe_ratio"] is None
    assert one["sortino_ratio"] == pytest.approx(-math.sqrt(365), rel=1e-9)


def test_only_gains_have_no_sortino() -> None:
    m = _metrics([100.0, 110.0, 120.0, 150.0])
    assert m["sortino_ratio"] is None
    assert m["sharpe_ratio"] is not None and m["sharpe_ratio"] > 0


def test_win_rate_and_profit_factor() -> None:
    trades = (_trade(300.0), _trade(-100.0), _trade(500.0, is_open=True))
    m = _metrics([1000.0, 1200.0], trades=trades)
    assert m["num_trades"] == 2  # the open one is not a round trip
    assert m["win_rate"] == pytest.approx(50.0)
    assert m["profit_factor"] == pytest.approx(3.0)
    assert m["open_position"] is True


def test_no_losing_trade_profit_factor_none() -> None:
    m = _metrics([1000.0, 1200.0], trades=(_trade(300.0), _trade(20.0)))
    assert m["win_rate"] == 100.0
    assert m["profit_factor"] is None


def test_no_trades() -> None:
    m = _metrics([1000.0, 1000.0])
    assert m["num_trades"] == 0
    assert m["win_rate"] == 0.0
    assert m["profit_factor"] is None
    assert m["open_position"] is False


def test_buy_and_hold_pays_entry_fee_only() -> None:
    # units = 10000 * 0.999 / 100 = 99.9; value at 150 = 14985 -> +49.85 %
    m = _metrics([10000.0, 10000.0], close=[100.0, 150.0], fee=0.001)
    assert m["buy_and_hold_return"] == pytest.approx(49.85, rel=1e-12)


def test_exposure() -> None:
    m = _metrics([1.0, 1.0, 1.0, 1.0], position=[True, True, False, False])
    assert m["exposure"] == pytest.approx(50.0)


def test_nan_equity_never_leaks_nan() -> None:
    m = _metrics([100.0, float("nan"), 100.0])
    for key in ("max_drawdown", "sharpe_ratio", "sortino_ratio"):
        assert m[key] is None, key
