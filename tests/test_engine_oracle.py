"""Property tests: the engine against `tests/engine_oracle.py` (DESIGN.md in slow, plain Python).

For random consistent candles (0 < low <= min(open, close), high >= max(open, close)),
every strategy with short look-backs, both executions and random common
parameters, the engine's trades and every metric equal the oracle's
(relative 1e-9, and absolute 1e-9 for values that are differences near 0;
None exactly where the oracle has None). Plus the no-look-ahead property.
"""
from __future__ import annotations

import math
import random

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, note, settings
from hypothesis import strategies as st

from api.engine import InsufficientDataError, METRIC_NAMES, get_strategy, make_candles, run_backtest
from api.engine.registry import StrategySpec
from tests import engine_oracle as oracle

# no "explain" phase: it reruns a failing case many times (seconds per failure, no new information)
SETTINGS = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                    phases=(Phase.explicit, Phase.generate, Phase.shrink),
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
REL = ABS = 1e-9
CODES = ("rsi", "sma_cross", "macd", "bollinger", "donchian", "opening_range_breakout", "buy_and_hold")
DAY = 86_400


# ---------------------------------------------------------------------------------- data
@st.composite
def ohlc(draw, min_n=2, max_n=45):
    """Consistent daily-or-hourly candles on a price grid (the grid decides how much rounding happens)."""
    n = draw(st.integers(min_n, max_n))
    scale = draw(st.sampled_from([0.25, 0.01, 0.37, 3.0]))
    steps = draw(st.lists(st.integers(-6, 6), min_size=n, max_size=n))
    gaps = draw(st.lists(st.integers(-3, 3), min_size=n, max_size=n))
    wicks = draw(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 4)), min_size=n, max_size=n))
    level, close_lv = 100, []
    for s in steps:
        level = max(8, level + s)
        close_lv.append(level)
    open_lv = [max(6, (close_lv[i - 1] if i else close_lv[0]) + gaps[i]) for i in range(n)]
    high_lv = [max(o, c) + w[0] for o, c, w in zip(open_lv, close_lv, wicks)]
    low_lv = [max(1, min(o, c) - w[1]) for o, c, w in zip(open_lv, close_lv, wicks)]
    interval = draw(st.sampled_from([DAY, DAY, 3600]))
    t0 = draw(st.integers(1_500_000_000 // DAY, 1_700_000_000 // DAY)) * DAY
    return tuple([x * scale for x in a] for a in (open_lv, high_lv, low_lv, close_lv)) + (
        [t0 + i * interval for i in range(n)], interval)


@st.composite
def intraday(draw):
    """15-minute candles over a few UTC days, some bars missing (for the opening range breakout)."""
    seed = draw(st.integers(0, 2**32 - 1))
    rnd = random.Random(seed)
    n_slots = draw(st.integers(40, 300))
    drop = draw(st.sampled_from([0.0, 0.02, 0.1]))
    t0 = draw(st.integers(1_600_000_000 // DAY, 1_650_000_000 // DAY)) * DAY + draw(st.integers(0, 95)) * 900
    o, h, lo, c, t = [], [], [], [], []
    price = 400
    for i in range(n_slots):
        nxt = max(40, price + rnd.randint(-6, 6))
        if i and rnd.random() < drop:
            price = nxt
            continue
        op = max(30, price + rnd.randint(-2, 2))
        o.append(op * 0.25)
        c.append(nxt * 0.25)
        h.append((max(op, nxt) + rnd.randint(0, 4)) * 0.25)
        lo.append(max(1, min(op, nxt) - rnd.randint(0, 4)) * 0.25)
        t.append(t0 + i * 900)
        price = nxt
    return o, h, lo, c, t, 900


PCT = st.sampled_from([1.0, 2.0, 3.0, 5.0, 10.0])   # shared values so stop-loss/trail ties happen


@st.composite
def common(draw):
    return {
        "initial_investment": draw(st.sampled_from([10000.0, 1000.0, 123.45])),
        "transaction_fee": draw(st.sampled_from([0.0, 0.1, 0.25, 1.0]) | st.floats(0.0, 2.0)),
        "slippage_pct": draw(st.sampled_from([0.0, 0.0, 0.05, 0.5, 2.0])),
        "execution": draw(st.sampled_from(["close", "next_open"])),
        "stop_loss_pct": draw(st.none() | PCT | st.floats(0.5, 15.0)),
        "take_profit_pct": draw(st.none() | PCT | st.floats(0.5, 20.0)),
        "trailing_stop_pct": draw(st.none() | PCT | st.floats(0.5, 15.0)),
    }


@st.composite
def own(draw, code):
    """Short look-backs so that signals happen within a few dozen bars."""
    if code == "rsi":
        return {"rsi_period": draw(st.integers(2, 5)), "oversold_threshold": draw(st.floats(20, 45)),
                "overbought_threshold": draw(st.floats(55, 80))}
    if code == "sma_cross":
        fast = draw(st.integers(1, 3))
        return {"fast_period": fast, "slow_period": draw(st.integers(fast + 1, fast + 4))}
    if code == "macd":
        fast = draw(st.integers(2, 4))
        return {"fast_period": fast, "slow_period": draw(st.integers(fast + 1, fast + 4)),
                "signal_period": draw(st.integers(1, 4))}
    if code == "bollinger":
        return {"period": draw(st.integers(2, 6)), "num_std": draw(st.sampled_from([0.5, 1.0, 1.5, 2.0])),
                "exit_band": draw(st.sampled_from(["middle", "upper"]))}
    if code == "donchian":
        return {"entry_period": draw(st.integers(1, 5)), "exit_period": draw(st.integers(1, 5))}
    if code == "opening_range_breakout":
        hours = draw(st.sampled_from([1, 2, 3, 4, 6, 12, 24]))
        minutes = draw(st.sampled_from([m for m in (30, 45, 60, 90) if m < hours * 60]))
        return {"session_start_hour": draw(st.integers(0, 23)), "range_minutes": minutes, "session_hours": hours}
    return {}


def candles_for(code):
    return intraday() if code == "opening_range_breakout" else ohlc(min_n=6)


def bars_per_year(interval):
    return 365 * DAY / interval


# ---------------------------------------------------------------------------------- comparison
def close_enough(a, b):
    return math.isclose(a, b, rel_tol=REL, abs_tol=ABS)


def assert_trades_equal(engine_trades, oracle_trades):
    assert len(engine_trades) == len(oracle_trades), (
        [(t.entry_bar, t.exit_bar, t.exit_reason) for t in engine_trades],
        [(t.entry_bar, t.exit_bar, t.exit_reason) for t in oracle_trades])
    for i, (e, o) in enumerate(zip(engine_trades, oracle_trades)):
        where = f"trade {i}: engine {e} oracle {o}"
        assert (e.entry_bar, e.exit_bar, e.exit_reason, e.is_open, e.bars_held) == (
            o.entry_bar, o.exit_bar, o.exit_reason, o.is_open, o.bars_held), where
        for name in ("entry_price", "units", "entry_value", "exit_value", "entry_fee", "exit_fee", "pnl",
                     "return_pct"):
            assert close_enough(getattr(e, name), getattr(o, name)), f"{name}: {where}"
        assert (e.exit_price is None) == (o.exit_price is None), where
        if o.exit_price is not None:
            assert close_enough(e.exit_price, o.exit_price), f"exit_price: {where}"


def assert_metrics_equal(engine_metrics, oracle_metrics):
    assert set(engine_metrics) == set(METRIC_NAMES) == set(oracle_metrics)
    wrong = {}
    for name, want in oracle_metrics.items():
        got = engine_metrics[name]
        if want is None or got is None or isinstance(want, bool):
            ok = got == want
        else:
            ok = close_enough(got, want)
        if not ok:
            wrong[name] = (got, want)
    assert not wrong, f"metrics (engine, oracle): {wrong}"


def run_both(code, data, params, signals=None):
    o, h, lo, c, t, interval = data
    candles = make_candles(o, h, lo, c, None, t, interval)
    bpy = bars_per_year(interval)
    if signals is None:
        spec = get_strategy(code)
        want = oracle.backtest(code, o, h, lo, c, t, interval, params, bpy)
    else:  # a strategy that returns the given arrays: the simulator and metrics alone
        entry, exit_ = (np.array(a, dtype=bool) for a in signals)
        spec = StrategySpec(99, "given", "given", "", (), lambda _c, _p: (entry, exit_))
        run = oracle.simulate(o, h, lo, c, entry, exit_, params)
        want = (oracle.metrics(run, c, t, params, bpy), run.trades, run.equity)
    got = run_backtest(spec, candles, params, bpy)
    return got, want


# ---------------------------------------------------------------------------------- tests
@SETTINGS
@given(data=ohlc(), params=common(), flags=st.data())
def test_simulator_and_metrics_match_the_oracle(data, params, flags):
    """Hand-made entry/exit arrays (overlapping too) through the one simulator and the one metrics function."""
    n = len(data[0])
    entry = flags.draw(st.lists(st.booleans(), min_size=n, max_size=n))
    exit_ = flags.draw(st.lists(st.booleans(), min_size=n, max_size=n))
    note(f"candles={data!r}\nparams={params!r}\nentry={entry!r}\nexit={exit_!r}")
    got, (want_metrics, want_trades, want_equity) = run_both(None, data, params, (entry, exit_))
    assert_trades_equal(got.trades, want_trades)
    assert np.allclose(got.equity, want_equity, rtol=REL, atol=0.0)
    assert_metrics_equal(got.metrics, want_metrics)


@pytest.mark.parametrize("code", CODES)
def test_strategy_matches_the_oracle(code):
    @SETTINGS
    @given(data=candles_for(code), params=common(), mine=own(code))
    def check(data, params, mine):
        params = {**get_strategy(code).defaults(), **params, **mine}
        note(f"candles={data!r}\nparams={params!r}")
        try:
            want = oracle.backtest(code, *data[:6], params, bars_per_year(data[5]))
        except oracle.OracleInsufficientData:
            with pytest.raises(InsufficientDataError):
                run_backtest(get_strategy(code), make_candles(*data[:4], None, data[4], data[5]), params,
                             bars_per_year(data[5]))
            return
        o, h, lo, c, t, interval = data
        spec = get_strategy(code)
        candles = make_candles(o, h, lo, c, None, t, interval)
        entry, exit_ = spec.signals(candles, params)
        want_entry, want_exit = oracle.signals(code, o, h, lo, c, t, interval, params)
        assert list(map(bool, entry)) == want_entry, "entry signals differ from TA-Lib/DESIGN"
        assert list(map(bool, exit_)) == want_exit, "exit signals differ from TA-Lib/DESIGN"
        got = run_backtest(spec, candles, params, bars_per_year(interval))
        assert_trades_equal(got.trades, want[1])
        assert np.allclose(got.equity, want[2], rtol=REL, atol=0.0)
        assert_metrics_equal(got.metrics, want[0])
    check()


def min_length(code, params):
    return {"rsi": lambda p: p["rsi_period"] + 1, "sma_cross": lambda p: p["slow_period"] + 1,
            "macd": lambda p: p["slow_period"] + p["signal_period"], "bollinger": lambda p: p["period"],
            "donchian": lambda p: p["entry_period"] + 1}.get(code, lambda p: 2)(params)


@pytest.mark.parametrize("execution", ["close", "next_open"])
@pytest.mark.parametrize("code", CODES)
def test_no_look_ahead(code, execution):
    """A run on candles.head(k) sees nothing of bars k.. : what it can know equals the full run's.

    Equal: entry[:k] and exit[:k]; equity[:k] (bit for bit); the trades the
    full run closed on a bar < k (every field). Under "next_open" a decision
    on bar k-1 fills on bar k, which the short run cannot have: a trade the
    full run exits (or enters) on bar k is, in the short run, still open (or
    absent). The short run's open trade, if any, is the full run's trade that
    was open at bar k-1 (same entry bar, fill and units), marked at close[k-1].
    """
    @SETTINGS
    @given(data=candles_for(code), params=common(), mine=own(code), cut=st.floats(0.0, 1.0))
    def check(data, params, mine, cut):
        params = {**get_strategy(code).defaults(), **params, **mine, "execution": execution}
        note(f"candles={data!r}\nparams={params!r}\ncut={cut!r}")
        o, h, lo, c, t, interval = data
        spec = get_strategy(code)
        full = make_candles(o, h, lo, c, None, t, interval)
        n = len(full)
        low_k = min(n, min_length(code, params))
        k = low_k + int(cut * (n - low_k))
        bpy = bars_per_year(interval)
        try:
            whole = run_backtest(spec, full, params, bpy)
            head = run_backtest(spec, full.head(k), params, bpy)
        except InsufficientDataError:
            return
        entry, exit_ = spec.signals(full, params)
        head_entry, head_exit = spec.signals(full.head(k), params)
        assert np.array_equal(head_entry, entry[:k]) and np.array_equal(head_exit, exit_[:k])
        assert np.array_equal(head.equity, whole.equity[:k])
        closed_before_k = [tr for tr in whole.trades if tr.exit_bar is not None and tr.exit_bar < k]
        assert [tr for tr in head.trades if not tr.is_open] == closed_before_k
        head_open = [tr for tr in head.trades if tr.is_open]
        open_at_k1 = [tr for tr in whole.trades if tr.entry_bar < k and (tr.exit_bar is None or tr.exit_bar >= k)]
        assert len(head_open) == len(open_at_k1) <= 1
        for a, b in zip(head_open, open_at_k1):
            assert (a.entry_bar, a.entry_price, a.units, a.entry_value, a.entry_fee) == (
                b.entry_bar, b.entry_price, b.units, b.entry_value, b.entry_fee)
            assert a.exit_value == a.units * c[k - 1] and a.exit_reason == "end"
    check()
