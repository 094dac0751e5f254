"""Scenario tables (freqtrade style): a few hand-written candles and the exact trades they must produce.

Each row: candles as (open, high, low, close) with a comment, the signals or
strategy parameters, and the expected trades as
(entry_bar, entry_fill, exit_bar, exit_fill, exit_reason); exit_bar/exit_fill
are None for a trade still open at the end (reason "end"). Fees and slippage
are 0 unless the row says otherwise, initial investment 1000. Every
expectation is written from DESIGN.md, "Strategies and execution".
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from api.engine import InsufficientDataError, get_strategy, make_candles, run_backtest
from api.engine.registry import StrategySpec

BASE = {"initial_investment": 1000.0, "transaction_fee": 0.0, "slippage_pct": 0.0, "execution": "close",
        "stop_loss_pct": None, "take_profit_pct": None, "trailing_stop_pct": None}
FLAT = (100.0, 100.0, 100.0, 100.0)   # an entry bar: everything at 100


def given_signals(entry, exit_):
    e, x = np.array(entry, dtype=bool), np.array(exit_, dtype=bool)
    return StrategySpec(99, "given", "given", "", (), lambda _c, _p: (e, x))


def run_bars(bars, spec, params, time=None, interval=86_400):
    o, h, lo, c = (list(col) for col in zip(*bars))
    return run_backtest(spec, make_candles(o, h, lo, c, None, time, interval), {**BASE, **params},
                        365 * 86_400 / interval)


def as_rows(trades):
    return [(t.entry_bar, t.entry_price, t.exit_bar, t.exit_price, t.exit_reason) for t in trades]


def assert_rows(got, want):
    assert len(got) == len(want), f"got {got}, want {want}"
    for g, w in zip(got, want):
        assert (g[0], g[2], g[4]) == (w[0], w[2], w[4]), f"got {got}, want {want}"
        assert math.isclose(g[1], w[1], rel_tol=1e-12), f"entry fill: got {got}, want {want}"
        assert (g[3] is None) == (w[3] is None), f"got {got}, want {want}"
        if w[3] is not None:
            assert math.isclose(g[3], w[3], rel_tol=1e-12), f"exit fill: got {got}, want {want}"


# ------------------------------------------------------------------------------- the simulator
# (id, bars, entry, exit, params, trades)
SIMULATOR = [
    ("stop inside the bar fills at the stop",
     [FLAT,                          # 0: enter at the close, 100 -> SL 95
      (99.0, 101.0, 94.0, 96.0),     # 1: opens above 95, trades down to 94: stop at 95
      (96.0, 97.0, 95.0, 96.0)],
     [1, 0, 0], [0, 0, 0], {"stop_loss_pct": 5.0},
     [(0, 100.0, 1, 95.0, "stop_loss")]),
    ("gap through the stop fills at the open",
     [FLAT,
      (93.0, 94.0, 90.0, 92.0)],     # 1: opens at 93, below the 95 stop: fill at the open
     [1, 0], [0, 0], {"stop_loss_pct": 5.0},
     [(0, 100.0, 1, 93.0, "stop_loss")]),
    ("stop and target in one bar: the stop wins",
     [FLAT,
      (100.0, 106.0, 94.0, 100.0)],  # 1: touches TP 105 and SL 95
     [1, 0], [0, 0], {"stop_loss_pct": 5.0, "take_profit_pct": 5.0},
     [(0, 100.0, 1, 95.0, "stop_loss")]),
    ("gap above the target, but the bar also trades through the stop: the stop wins, at the stop",
     [FLAT,
      (106.0, 107.0, 94.0, 100.0)],
     [1, 0], [0, 0], {"stop_loss_pct": 5.0, "take_profit_pct": 5.0},
     [(0, 100.0, 1, 95.0, "stop_loss")]),
    ("take-profit inside the bar fills at the target",
     [FLAT,
      (101.0, 107.0, 100.0, 103.0)],  # 1: high 107 >= TP 105
     [1, 0], [0, 0], {"take_profit_pct": 5.0},
     [(0, 100.0, 1, 105.0, "take_profit")]),
    ("take-profit gapped fills at the open",
     [FLAT,
      (108.0, 109.0, 107.0, 108.0)],  # 1: opens above TP 105
     [1, 0], [0, 0], {"take_profit_pct": 5.0},
     [(0, 100.0, 1, 108.0, "take_profit")]),
    ("trailing stop rises with the highs, then is hit inside a bar",
     [FLAT,                           # 0: entry 100, peak 100, trail 90
      (100.0, 110.0, 99.0, 108.0),    # 1: stop 90 not hit; peak -> 110 (trail 99)
      (108.0, 112.0, 100.0, 101.0),   # 2: stop 99 not hit (low 100); peak -> 112 (trail 100.8)
      (101.0, 102.0, 95.0, 96.0)],    # 3: open 101 > 100.8, low 95 <= 100.8: fill at 100.8
     [1, 0, 0, 0], [0, 0, 0, 0], {"trailing_stop_pct": 10.0},
     [(0, 100.0, 3, 100.8, "trailing_stop")]),
    ("trail above the stop-loss: exit_reason trailing_stop",
     [FLAT,
      (100.0, 110.0, 99.0, 108.0),
      (108.0, 112.0, 100.0, 101.0),
      (101.0, 102.0, 95.0, 96.0)],    # 3: max(SL 95, trail 100.8) = trail
     [1, 0, 0, 0], [0, 0, 0, 0], {"trailing_stop_pct": 10.0, "stop_loss_pct": 5.0},
     [(0, 100.0, 3, 100.8, "trailing_stop")]),
    ("trail below the stop-loss: exit_reason stop_loss",
     [FLAT,
      (99.0, 100.0, 94.0, 96.0)],     # 1: SL 95 > trail 90: stop_loss at 95
     [1, 0], [0, 0], {"trailing_stop_pct": 10.0, "stop_loss_pct": 5.0},
     [(0, 100.0, 1, 95.0, "stop_loss")]),
    ("trail equal to the stop-loss: a tie is stop_loss",
     [FLAT,
      (99.0, 100.0, 89.0, 96.0)],     # 1: SL 90 == trail 90 (peak still the entry fill)
     [1, 0], [0, 0], {"trailing_stop_pct": 10.0, "stop_loss_pct": 10.0},
     [(0, 100.0, 1, 90.0, "stop_loss")]),
    ("the peak rises only AFTER a bar is checked",
     [FLAT,
      (100.0, 120.0, 91.0, 118.0),    # 1: checked against trail 90 (not 108): no exit; peak -> 120
      (115.0, 116.0, 107.0, 110.0)],  # 2: trail 108, low 107: fill at 108
     [1, 0, 0], [0, 0, 0], {"trailing_stop_pct": 10.0},
     [(0, 100.0, 2, 108.0, "trailing_stop")]),
    ("close execution: the entry bar is not checked and its high does not raise the peak",
     [(100.0, 150.0, 80.0, 100.0),    # 0: enter at the close; low 80 and high 150 ignored
      (100.0, 101.0, 96.0, 100.0),    # 1: trail 90 (peak 100, not 150): no exit
      (100.0, 101.0, 89.0, 95.0)],    # 2: trail max(100, 101) x 0.9 = 90.9: fill at 90.9
     [1, 0, 0], [0, 0, 0], {"trailing_stop_pct": 10.0},
     [(0, 100.0, 2, 90.9, "trailing_stop")]),
    ("next_open: entry and exit fill at the next bar's open",
     [(10.0, 11.0, 9.0, 10.0),        # 0: entry decided at the close
      (12.0, 13.0, 11.0, 12.0),       # 1: entry fills at the open, 12
      (14.0, 15.0, 13.0, 14.0),       # 2: exit decided at the close
      (13.0, 14.0, 12.0, 13.0),       # 3: exit fills at the open, 13
      (15.0, 16.0, 14.0, 15.0)],
     [1, 0, 0, 0, 0], [0, 0, 1, 0, 0], {"execution": "next_open"},
     [(1, 12.0, 3, 13.0, "signal")]),
    ("next_open: an entry decided on the last bar is not filled",
     [(10.0, 11.0, 9.0, 10.0), (12.0, 13.0, 11.0, 12.0)],
     [0, 1], [0, 0], {"execution": "next_open"},
     []),
    ("next_open: an exit decided on the last bar is not filled; the trade ends open",
     [(10.0, 11.0, 9.0, 10.0), (12.0, 13.0, 11.0, 12.0), (13.0, 14.0, 12.0, 13.5)],
     [1, 0, 0], [0, 0, 1], {"execution": "next_open"},
     [(1, 12.0, None, None, "end")]),
    ("next_open: stops are checked on the entry bar itself",
     [FLAT,
      (100.0, 101.0, 94.0, 99.0),     # 1: entry at the open 100, low 94 <= SL 95 on the same bar
      (99.0, 100.0, 98.0, 99.0)],
     [1, 0, 0], [0, 0, 0], {"execution": "next_open", "stop_loss_pct": 5.0},
     [(1, 100.0, 1, 95.0, "stop_loss")]),
    ("slippage on the entry, the signal exit and in the fill of a stop",
     [FLAT,                           # 0: buy at 100 x 1.01 = 101
      (110.0, 111.0, 109.0, 110.0),   # 1: sell at 110 x 0.99 = 108.9
      FLAT,                           # 2: buy at 101; SL 5 % of the fill: 95.95
      (100.0, 100.0, 95.0, 96.0)],    # 3: low 95 <= 95.95: fill 95.95 x 0.99
     [1, 0, 1, 0], [0, 1, 0, 0], {"slippage_pct": 1.0, "stop_loss_pct": 5.0},
     [(0, 101.0, 1, 108.9, "signal"), (2, 101.0, 3, 95.95 * 0.99, "stop_loss")]),
    ("slippage on a gap through the stop and on a take-profit",
     [FLAT,                           # 0: buy at 101, SL 95.95, TP 106.05
      (90.0, 91.0, 89.0, 90.0),       # 1: gap through the stop: 90 x 0.99
      FLAT,                           # 2: buy at 101
      (102.0, 107.0, 101.0, 103.0)],  # 3: high 107 >= TP 106.05: 106.05 x 0.99
     [1, 0, 1, 0], [0, 0, 0, 0], {"slippage_pct": 1.0, "stop_loss_pct": 5.0, "take_profit_pct": 5.0},
     [(0, 101.0, 1, 89.1, "stop_loss"), (2, 101.0, 3, 101.0 * 1.05 * 0.99, "take_profit")]),
    ("close: no re-entry at the close of a bar whose stop filled",
     [FLAT,
      (99.0, 100.0, 94.0, 96.0),      # 1: stop at 95; entry[1] ignored
      (96.0, 97.0, 95.0, 96.0),       # 2: entry at the close, 96
      (96.0, 97.0, 95.0, 96.0)],
     [1, 1, 1, 1], [0, 0, 0, 0], {"stop_loss_pct": 5.0},
     [(0, 100.0, 1, 95.0, "stop_loss"), (2, 96.0, None, None, "end")]),
    ("next_open: no entry decided on a bar whose stop filled",
     [FLAT,                           # 0: entry decided
      (100.0, 101.0, 94.0, 96.0),     # 1: fills at 100, stop 95 hit on the same bar; entry[1] ignored
      (96.0, 97.0, 95.0, 96.0),       # 2: entry decided
      (97.0, 98.0, 96.0, 97.0)],      # 3: fills at the open, 97
     [1, 1, 1, 0], [0, 0, 0, 0], {"execution": "next_open", "stop_loss_pct": 5.0},
     [(1, 100.0, 1, 95.0, "stop_loss"), (3, 97.0, None, None, "end")]),
    ("next_open: a signal exit at the open comes before a stop on that bar, and blocks an entry",
     [FLAT,                           # 0: entry decided
      (100.0, 101.0, 99.0, 100.0),    # 1: entry fills at 100 (SL 95); exit decided at the close
      (97.0, 98.0, 80.0, 90.0),       # 2: exit fills at the open 97 (the stop at 95 never fills); entry[2] ignored
      (90.0, 91.0, 89.0, 90.0)],
     [1, 0, 1, 0], [0, 1, 0, 0], {"execution": "next_open", "stop_loss_pct": 5.0},
     [(1, 100.0, 2, 97.0, "signal")]),
    ("end of data: the open trade is marked at the last close",
     [FLAT, (101.0, 103.0, 100.0, 102.0)],
     [1, 0], [0, 0], {},
     [(0, 100.0, None, None, "end")]),
]


@pytest.mark.parametrize("name, bars, entry, exit_, params, trades", SIMULATOR, ids=[s[0] for s in SIMULATOR])
def test_simulator_scenarios(name, bars, entry, exit_, params, trades):
    out = run_bars(bars, given_signals(entry, exit_), params)
    assert_rows(as_rows(out.trades), trades)
    for t in out.trades:   # "bars_held (exit fill bar - entry fill bar)"
        if not t.is_open:
            assert t.bars_held == t.exit_bar - t.entry_bar


def test_fees_units_pnl_by_hand():
    """fee 1 %: units = cash(1-fee)/fill, cash = units x fill x (1-fee); pnl and return_pct over the committed cash."""
    bars = [FLAT, (110.0, 110.0, 110.0, 110.0), FLAT, (100.0, 100.0, 100.0, 120.0)]
    out = run_bars(bars, given_signals([1, 0, 1, 0], [0, 1, 0, 0]), {"transaction_fee": 1.0})
    first, second = out.trades
    assert first.units == pytest.approx(1000 * 0.99 / 100, rel=1e-12)
    assert first.entry_fee == pytest.approx(10.0, rel=1e-12)
    assert first.exit_fee == pytest.approx(9.9 * 110 * 0.01, rel=1e-12)
    assert first.exit_value == pytest.approx(9.9 * 110 * 0.99, rel=1e-12)
    assert first.pnl == pytest.approx(9.9 * 110 * 0.99 - 1000, rel=1e-12)
    assert first.return_pct == pytest.approx((9.9 * 110 * 0.99 - 1000) / 1000 * 100, rel=1e-12)
    cash = 9.9 * 110 * 0.99
    assert second.is_open and second.exit_fee == 0.0 and second.exit_reason == "end"
    assert second.units == pytest.approx(cash * 0.99 / 100, rel=1e-12)
    assert second.exit_value == pytest.approx(cash * 0.99 / 100 * 120, rel=1e-12)
    assert out.metrics["total_fees"] == pytest.approx(10.0 + 9.9 * 110 * 0.01 + cash * 0.01, rel=1e-12)
    assert out.metrics["num_trades"] == 1 and out.metrics["open_position"] is True


# ------------------------------------------------------------------------------- metrics by hand
def hold(closes, params=None, time=None):
    bars = [(c, c, c, c) for c in closes]
    return run_bars(bars, get_strategy("buy_and_hold"), params or {}, time)


def test_max_drawdown_of_a_rising_curve_is_zero():
    """ENGINE BUG (DESIGN: 'max_drawdown % = largest peak-to-trough fall of the equity curve'; 'The equity
    curve has one value per bar'). Buy and hold at 0.1 % fee on closes 100, 101, 102, 103: the curve is
    9990, 10089.9, 10189.8, 10289.7 - it never falls, so max_drawdown is 0 (the engine's
    max_drawdown_duration is 0 too). The engine reports 0.1: its running peak starts at the initial
    investment (10000), which is not a value of the curve."""
    out = hold([100.0, 101.0, 102.0, 103.0], {"initial_investment": 10000.0, "transaction_fee": 0.1})
    assert out.equity.tolist() == pytest.approx([9990.0, 10089.9, 10189.8, 10289.7], rel=1e-12)
    assert out.metrics["max_drawdown_duration"] == 0
    assert out.metrics["max_drawdown"] == 0.0
    assert out.metrics["calmar_ratio"] is None


def test_drawdown_and_its_duration_by_hand():
    # equity follows the closes: peaks 120 (bar 1) back at bar 4 (3 bars); 130 (bar 5) never back (to bar 7: 2)
    out = hold([100.0, 120.0, 90.0, 80.0, 120.0, 130.0, 65.0, 70.0])
    assert out.metrics["max_drawdown"] == pytest.approx(50.0, rel=1e-12)
    assert out.metrics["max_drawdown_duration"] == 3
    # a peak that is matched (not exceeded) counts from the LAST bar at the peak
    out = hold([100.0, 120.0, 110.0, 120.0, 100.0, 90.0, 95.0, 121.0])
    assert out.metrics["max_drawdown_duration"] == 4   # bar 3 (back at 120) to bar 7


def test_trade_statistics_by_hand():
    # three round trips at fee 0: +10 % (pnl 100), -5 % (pnl -55), +20 % (pnl 209)
    bars = [(c, c, c, c) for c in (100.0, 110.0, 100.0, 95.0, 100.0, 120.0)]
    out = run_bars(bars, given_signals([1, 0, 1, 0, 1, 0], [0, 1, 0, 1, 0, 1]), {})
    pnls = [100.0, -55.0, 209.0]
    assert [t.pnl for t in out.trades] == pytest.approx(pnls, rel=1e-12)
    m = out.metrics
    mean = sum(pnls) / 3
    std = math.sqrt(sum((p - mean) ** 2 for p in pnls) / 2)
    assert m["num_trades"] == 3
    assert m["win_rate"] == pytest.approx(200 / 3, rel=1e-12)
    assert m["profit_factor"] == pytest.approx(309 / 55, rel=1e-12)
    assert m["sqn"] == pytest.approx(math.sqrt(3) * mean / std, rel=1e-12)
    assert m["avg_trade_return"] == pytest.approx(25 / 3, rel=1e-12)
    assert (m["best_trade"], m["worst_trade"]) == pytest.approx((20.0, -5.0), rel=1e-12)
    assert m["avg_bars_held"] == 1.0
    assert m["exposure"] == pytest.approx(50.0, rel=1e-12)      # held at the closes of bars 0, 2, 4
    assert m["final_value"] == pytest.approx(1254.0, rel=1e-12)
    assert m["total_return"] == pytest.approx(25.4, rel=1e-12)
    assert m["buy_and_hold_return"] == pytest.approx(20.0, rel=1e-12)
    assert m["total_fees"] == 0.0


def test_undefined_metrics_are_none():
    m = hold([100.0, 100.0, 100.0]).metrics   # flat: no returns spread, no trades closed
    for name in ("sharpe_ratio", "sortino_ratio", "profit_factor", "cagr", "calmar_ratio", "sqn",
                 "avg_trade_return", "best_trade", "worst_trade", "avg_bars_held"):
        assert m[name] is None, name
    assert m["win_rate"] == 0.0 and m["num_trades"] == 0 and m["max_drawdown_duration"] == 0


def test_cagr_by_hand():
    # 100 -> 121 over 730 days: (1.21 ** 0.5 - 1) x 100 = 10 %
    out = hold([100.0, 121.0], time=[0, 730 * 86_400])
    assert out.metrics["cagr"] == pytest.approx(10.0, rel=1e-12)
    # 29.99 days: null; exactly 30 days: defined
    assert hold([100.0, 101.0], time=[0, 30 * 86_400 - 1]).metrics["cagr"] is None
    assert hold([100.0, 101.0], time=[0, 30 * 86_400]).metrics["cagr"] == pytest.approx(
        (1.01 ** (365 / 30) - 1) * 100, rel=1e-12)


def test_buy_and_hold_return_ignores_execution_and_slippage():
    bars = [(99.0, 101.0, 98.0, 100.0), (104.0, 111.0, 103.0, 110.0), (120.0, 121.0, 119.0, 120.0)]
    for params in ({}, {"execution": "next_open", "slippage_pct": 2.0, "transaction_fee": 0.5}):
        fee = params.get("transaction_fee", 0.0) / 100
        m = run_bars(bars, get_strategy("buy_and_hold"), params).metrics
        assert m["buy_and_hold_return"] == pytest.approx(((1 - fee) * 120 / 100 - 1) * 100, rel=1e-12)


# ------------------------------------------------------------------------------- the strategies
def closes(cs, opens=None):
    opens = opens or cs
    return [(o, max(o, c), min(o, c), c) for o, c in zip(opens, cs)]


T0 = 1_704_067_200      # 2024-01-01 00:00 UTC
Q = 900                 # 15 minutes


def orb_day(day, rows, skip=()):
    """One 00:00-02:00 session of 15-minute bars: rows of (high, low, close); open = close."""
    out = []
    for i, (h, lo, c) in enumerate(rows):
        if i not in skip:
            out.append((T0 + day * 86_400 + i * Q, (c, h, lo, c)))
    return out


ORB = (
    # day 0: range 00:00-00:30 -> high 102, low 98
    orb_day(0, [(101, 99, 100), (102, 98, 101),
                (102, 101, 101.5),    # 2: 101.5 <= 102, no breakout
                (103.5, 101, 103),    # 3: first close > 102: ENTRY
                (103, 97, 97.5),      # 4: close < 98: EXIT
                (103, 97, 103),       # 5: > 102 again, but one entry per session
                (102, 100, 101), (101, 99, 100)])   # 7 (01:45): the last bar
    # day 1: range 51/48; entry at 00:30, exit on the session's last bar (01:45)
    + orb_day(1, [(50, 48, 49), (51, 49, 50), (52, 50, 52), (53, 52, 53), (54, 53, 54), (54, 53, 53),
                  (53, 52, 52), (52, 51, 51)])
    # day 2: range 61/59; entry at 00:30; its last bar (01:45) is missing: no session-end exit
    + orb_day(2, [(61, 59, 60), (61, 59, 60), (62, 60, 62), (63, 62, 63), (63, 62, 63), (64, 63, 64),
                  (64, 63, 64), (64, 63, 64)], skip=(7,))
    # day 3: still long; the range bars give no exit (range 66/63 unknown yet); 00:45 closes < 63: EXIT
    + orb_day(3, [(65, 63, 64), (66, 64, 65), (66, 65, 66), (66, 62, 62.5)])
    # day 4: range 71/69; the only close above 71 is on the last bar: no entry
    + orb_day(4, [(71, 69, 70), (71, 69, 70), (71, 70, 70.5), (71, 70, 71), (71, 70, 70), (71, 70, 70.5),
                  (71, 70, 71), (72, 70, 72)])
)
ORB_TIME = [t for t, _ in ORB]
ORB_BARS = [b for _, b in ORB]

# (id, bars, time, interval, strategy, params, trades)
STRATEGIES = [
    ("sma_cross SMA(2)/SMA(3)",
     # SMA2: -, 10, 10, 11.5, 13, 10, 7, 7 ; SMA3: -, -, 10, 11, 12, 11, 9, 7
     closes([10.0, 10.0, 10.0, 13.0, 13.0, 7.0, 7.0, 7.0]), None, 86_400, "sma_cross",
     {"fast_period": 2, "slow_period": 3},
     [(3, 13.0, 5, 7.0, "signal")]),      # 3: 11.5 > 11 after 10 <= 10; 5: 10 < 11 after 13 >= 12
    ("sma_cross SMA(2)/SMA(3), next_open",
     closes([10.0, 10.0, 10.0, 13.0, 13.0, 7.0, 7.0, 7.0], [10.0, 10.0, 10.0, 12.0, 14.0, 8.0, 6.0, 7.0]),
     None, 86_400, "sma_cross", {"fast_period": 2, "slow_period": 3, "execution": "next_open"},
     [(4, 14.0, 6, 6.0, "signal")]),
    ("rsi RSI(2) 30/70",
     # RSI(2): -, -, 100, 50, 25 (ENTRY), 12.5, 56.25, 85.42 (EXIT), 91.25
     closes([10.0, 11.0, 12.0, 11.0, 10.0, 9.0, 10.0, 12.0, 13.0]), None, 86_400, "rsi",
     {"rsi_period": 2, "oversold_threshold": 30.0, "overbought_threshold": 70.0},
     [(4, 10.0, 7, 12.0, "signal")]),
    ("macd MACD(2,3,2)",
     # TA-Lib MACD / signal: bar 3: 0/0; 4: .333/.222 (ENTRY); 6: .287/.352 (EXIT); 9: -.588/-.514;
     # 10: -.232/-.326 (ENTRY), held to the end
     closes([10.0, 10.0, 10.0, 10.0, 12.0, 14.0, 13.0, 11.0, 9.0, 8.0, 9.0, 11.0, 12.0]), None, 86_400, "macd",
     {"fast_period": 2, "slow_period": 3, "signal_period": 2},
     [(4, 12.0, 6, 13.0, "signal"), (10, 9.0, None, None, "end")]),
    ("bollinger(3, 1) lower-band entry, middle exit",
     # bar 3: window 10,10,7: mean 9, std sqrt(2): lower 7.59, close 7 < lower: ENTRY
     # bar 4: window 10,7,10: middle 9, close 10 > 9: EXIT
     closes([10.0, 10.0, 10.0, 7.0, 10.0, 13.0, 10.0]), None, 86_400, "bollinger",
     {"period": 3, "num_std": 1.0, "exit_band": "middle"},
     [(3, 7.0, 4, 10.0, "signal")]),
    ("bollinger(3, 1) lower-band entry, upper exit",
     # bar 4: upper 9 + sqrt(2) = 10.41, close 10 not above; bar 5: window 7,10,13: upper 10 + sqrt(6): EXIT
     closes([10.0, 10.0, 10.0, 7.0, 10.0, 13.0, 10.0]), None, 86_400, "bollinger",
     {"period": 3, "num_std": 1.0, "exit_band": "upper"},
     [(3, 7.0, 5, 13.0, "signal")]),
    ("donchian(3, 2) breakout",
     [(10.0, 11.0, 9.0, 10.0),
      (11.0, 12.0, 10.0, 11.0),
      (10.0, 11.0, 9.0, 10.0),
      (12.0, 13.0, 10.0, 12.5),     # 3: 12.5 > max(high[0..2]) = 12 (not 13: bar 3 itself is not in it): ENTRY
      (12.0, 13.0, 11.0, 12.0),     # 4: min(low[2..3]) = 9
      (11.0, 12.0, 10.0, 11.0),     # 5: min(low[3..4]) = 10, 11 not below
      (9.5, 11.0, 8.0, 9.5),        # 6: min(low[4..5]) = 10, 9.5 < 10: EXIT
      (11.0, 12.0, 9.0, 11.0)],     # 7: max(high[4..6]) = 13: no entry
     None, 86_400, "donchian", {"entry_period": 3, "exit_period": 2},
     [(3, 12.5, 6, 9.5, "signal")]),
    ("opening_range_breakout on 15-minute candles, five sessions",
     ORB_BARS, ORB_TIME, Q, "opening_range_breakout",
     {"session_start_hour": 0, "range_minutes": 30, "session_hours": 2},
     [(3, 103.0, 4, 97.5, "signal"),          # day 0: breakout, then below the range low
      (10, 52.0, 15, 51.0, "signal"),         # day 1: exit on the session's last bar
      (18, 62.0, 26, 62.5, "signal")]),       # day 2 -> day 3: no last bar on day 2; range-low exit on day 3
    ("buy_and_hold",
     closes([10.0, 9.0, 12.0]), None, 86_400, "buy_and_hold", {},
     [(0, 10.0, None, None, "end")]),
    ("buy_and_hold, next_open",
     closes([10.0, 9.0, 12.0], [9.5, 9.25, 11.0]), None, 86_400, "buy_and_hold", {"execution": "next_open"},
     [(1, 9.25, None, None, "end")]),
]


@pytest.mark.parametrize("name, bars, time, interval, code, params, trades", STRATEGIES,
                         ids=[s[0] for s in STRATEGIES])
def test_strategy_scenarios(name, bars, time, interval, code, params, trades):
    spec = get_strategy(code)
    out = run_bars(bars, spec, {**spec.defaults(), **params}, time, interval)
    assert_rows(as_rows(out.trades), trades)


# ------------------------------------------------------------------------------- insufficient data
# (strategy, params, candles that are one too few, which raise; one more gives a signal value)
TOO_SHORT = [
    ("rsi", {"rsi_period": 14}, 14),                     # first RSI at index 14
    ("sma_cross", {"fast_period": 2, "slow_period": 5}, 5),   # the first cross needs SMA_slow at t-1
    ("macd", {"fast_period": 3, "slow_period": 6, "signal_period": 4}, 9),   # first value at 6 + 4 - 2 = 8
    ("bollinger", {"period": 20}, 19),
    ("donchian", {"entry_period": 20, "exit_period": 10}, 20),
]


@pytest.mark.parametrize("code, params, n", TOO_SHORT, ids=[s[0] for s in TOO_SHORT])
def test_too_short_raises_insufficient_data(code, params, n):
    spec = get_strategy(code)
    full = {**spec.defaults(), **params}
    cs = [100.0 + (i % 3) for i in range(n + 1)]
    with pytest.raises(InsufficientDataError):
        run_bars(closes(cs[:n]), spec, full)
    run_bars(closes(cs), spec, full)   # one more candle is enough


def test_opening_range_breakout_on_daily_candles_is_insufficient_data():
    spec = get_strategy("opening_range_breakout")
    with pytest.raises(InsufficientDataError):
        run_bars(closes([100.0 + i for i in range(40)]), spec, spec.defaults(), [T0 + 86400 * i for i in range(40)], 86400)
    # 60-minute candles are not shorter than a 60-minute range either
    with pytest.raises(InsufficientDataError):
        run_bars(closes([100.0 + i for i in range(40)]), spec, spec.defaults(),
                 [T0 + 3600 * i for i in range(40)], 3600)


def test_opening_range_breakout_with_no_bar_after_the_range_is_insufficient_data():
    """(DESIGN: 'A value needing history that does not exist yet (warm-up) is not a signal;
    a crypto too short to give a single signal value gets insufficient_data'). Four 15-minute candles
    00:00-00:45 UTC with the default 60-minute range: every bar is inside the opening range (its high/low
    are not known before 01:00) and none is a session's last bar, so not one entry/exit value exists.
    So the crypto gets InsufficientDataError (found by the oracle: the engine once returned an empty run)."""
    spec = get_strategy("opening_range_breakout")
    bars = closes([100.0, 101.0, 102.0, 103.0])
    with pytest.raises(InsufficientDataError):
        run_bars(bars, spec, spec.defaults(), [T0 + Q * i for i in range(4)], Q)
    # one bar after the range gives a signal value: no error
    run_bars(closes([100.0, 101.0, 102.0, 103.0, 104.0]), spec, spec.defaults(), [T0 + Q * i for i in range(5)], Q)
