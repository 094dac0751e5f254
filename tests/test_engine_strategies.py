"""Strategy registry, input validation, and a golden comparison of the fast
RSI strategy against a slow, obvious per-bar reference implementation."""

import math
import statistics

import numpy as np
import pytest

from api.engine import (
    STRATEGIES,
    EngineError,
    InsufficientDataError,
    InvalidPriceDataError,
    compute_rsi,
    get_strategy,
    run_rsi_strategy,
)

DEFAULTS = {
    "initial_investment": 10000,
    "transaction_fee": 0.1,
    "rsi_period": 14,
    "oversold_threshold": 30,
    "overbought_threshold": 70,
}


# ---------------------------------------------------------------- registry

def test_registry_and_defaults() -> None:
    spec = get_strategy("rsi_buy_sell")
    assert STRATEGIES == {"rsi_buy_sell": spec}
    assert spec.name == "RSI buy/sell"
    assert spec.defaults() == DEFAULTS
    assert spec.run is run_rsi_strategy


def test_parameter_schema() -> None:
    schema = get_strategy("rsi_buy_sell").parameter_schema()
    assert list(schema) == list(DEFAULTS)
    assert schema["initial_investment"] == {
        "type": "number", "default": 10000, "min": 0, "max": 1e12,
        "exclusive_min": True, "exclusive_max": False, "description": schema["initial_investment"]["description"],
    }
    assert schema["transaction_fee"]["exclusive_max"] is True
    assert (schema["transaction_fee"]["min"], schema["transaction_fee"]["max"]) == (0, 100)
    assert schema["rsi_period"]["type"] == "integer"
    assert (schema["rsi_period"]["min"], schema["rsi_period"]["max"]) == (2, 1000)
    for name in ("oversold_threshold", "overbought_threshold"):
        assert (schema[name]["min"], schema[name]["max"], schema[name]["type"]) == (0, 100, "number")
    assert all(s["description"] for s in schema.values())


@pytest.mark.parametrize(("low", "high", "ok"), [(30, 70, True), (70, 70, False), (80, 70, False)])
def test_threshold_cross_check(low: float, high: float, ok: bool) -> None:
    errors = get_strategy("rsi_buy_sell").check(
        {**DEFAULTS, "oversold_threshold": low, "overbought_threshold": high}
    )
    if ok:
        assert errors == []
    else:
        assert errors == [("oversold_threshold", "must be less than overbought_threshold (70)")]


def test_unknown_strategy() -> None:
    with pytest.raises(KeyError, match="nope.*rsi_buy_sell"):
        get_strategy("nope")


# -------------------------------------------------------------- validation

@pytest.mark.parametrize(
    "close",
    [
        [100.0, float("nan"), 101.0] * 10,
        [100.0, float("inf"), 101.0] * 10,
        [100.0, 0.0, 101.0] * 10,
        [100.0, -5.0, 101.0] * 10,
        np.ones((20, 2)),
        ["a", "b"],
    ],
    ids=["nan", "inf", "zero", "negative", "2-d", "text"],
)
def test_invalid_prices_rejected(close) -> None:
    with pytest.raises(InvalidPriceDataError):
        run_rsi_strategy(close, DEFAULTS)


def test_too_few_candles() -> None:
    with pytest.raises(InsufficientDataError, match="15.*got 14") as info:
        run_rsi_strategy(np.linspace(1.0, 2.0, 14), DEFAULTS)
    assert isinstance(info.value, EngineError) and isinstance(info.value, ValueError)


def test_thresholds_are_strict() -> None:
    flat = np.full(20, 50.0)  # RSI is exactly 0 from bar 14
    assert run_rsi_strategy(flat, {**DEFAULTS, "oversold_threshold": 0}).trades == ()
    (trade,) = run_rsi_strategy(flat, {**DEFAULTS, "oversold_threshold": 1e-9}).trades
    assert trade.entry_index == 14 and trade.is_open


def test_outcome_fields() -> None:
    close = _walk(0, 100)
    out = run_rsi_strategy(close, DEFAULTS)
    np.testing.assert_array_equal(out.rsi, compute_rsi(close, 14))
    assert out.equity.shape == close.shape
    assert out.metrics["final_value"] == pytest.approx(float(out.equity[-1]), rel=1e-15)


# ------------------------------------------------------------------ golden

def _walk(seed: int, n: int = 300) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.03, n)))


def _reference(close: list[float], p: dict, bars_per_year: float) -> tuple[dict, list[tuple]]:
    """Slow, obvious backtest: one pass over bars, plain Python only."""
    period = int(p["rsi_period"])
    fee = p["transaction_fee"] / 100
    initial = float(p["initial_investment"])
    n = len(close)

    # RSI
    rsi = [None] * n
    up = down = 0.0
    for t in range(1, n):
        change = close[t] - close[t - 1]
        gain, loss = max(change, 0.0), max(-change, 0.0)
        if t < period:
            up, down = up + gain, down + loss
        elif t == period:
            up, down = (up + gain) / period, (down + loss) / period
        else:
            up = (up * (period - 1) + gain) / period
            down = (down * (period - 1) + loss) / period
        if t >= period:
            rsi[t] = 0.0 if up + down == 0 else 100 * up / (up + down)

    # positions
    cash, units, entry = initial, 0.0, None
    equity, held, trades = [], [], []
    for t in range(n):
        if rsi[t] is not None:
            if entry is None and rsi[t] < p["oversold_threshold"]:
                entry = (t, cash)
                units, cash = cash * (1 - fee) / close[t], 0.0
            elif entry is not None and rsi[t] > p["overbought_threshold"]:
                cash = units * close[t] * (1 - fee)
                trades.append((entry[0], t, cash - entry[1]))
                units, entry = 0.0, None
        equity.append(cash + units * close[t])
        held.append(entry is not None)
    open_trade = (entry[0], None, units * close[-1] - entry[1]) if entry else None

    # metrics
    peak, mdd = equity[0], 0.0
    for e in equity:
        peak = max(peak, e)
        mdd = max(mdd, (peak - e) / peak)
    rets = [equity[t] / equity[t - 1] - 1 for t in range(1, n)]
    sd = statistics.stdev(rets) if len(rets) > 1 else 0.0
    downside = math.sqrt(sum(min(r, 0.0) ** 2 for r in rets) / len(rets))
    pnls = [pnl for _, _, pnl in trades]
    wins = [x for x in pnls if x > 0]
    losses = [-x for x in pnls if x < 0]
    metrics = {
        "total_return": (equity[-1] / initial - 1) * 100,
        "final_value": equity[-1],
        "buy_and_hold_return": (initial * (1 - fee) / close[0] * close[-1] / initial - 1) * 100,
        "num_trades": len(trades),
        "win_rate": len(wins) / len(trades) * 100 if trades else 0.0,
        "max_drawdown": mdd * 100,
        "sharpe_ratio": statistics.mean(rets) / sd * math.sqrt(bars_per_year) if sd else None,
        "sortino_ratio": (statistics.mean(rets) * math.sqrt(bars_per_year) / downside
                          if downside else None),
        "exposure": sum(held) / n * 100,
        "profit_factor": sum(wins) / sum(losses) if losses else None,
        "open_position": open_trade is not None,
    }
    return metrics, trades + ([open_trade] if open_trade else [])


PARAM_SETS = [
    pytest.param({}, id="defaults"),
    pytest.param({"rsi_period": 5, "oversold_threshold": 40, "overbought_threshold": 60,
                  "transaction_fee": 0.25}, id="fast"),
    pytest.param({"rsi_period": 21, "oversold_threshold": 45, "overbought_threshold": 55,
                  "transaction_fee": 0}, id="slow-no-fee"),
    pytest.param({"rsi_period": 9, "oversold_threshold": 25, "overbought_threshold": 75,
                  "transaction_fee": 1.0, "initial_investment": 2500}, id="wide-1pct"),
]


@pytest.mark.parametrize("seed", [0, 1, 7])
@pytest.mark.parametrize("overrides", PARAM_SETS)
@pytest.mark.parametrize("bars_per_year", [365.0, 252.0])
def test_golden_against_reference(seed: int, overrides: dict, bars_per_year: float) -> None:
    params = {**DEFAULTS, **overrides}
    close = _walk(seed)
    out = run_rsi_strategy(close, params, bars_per_year)
    want, want_trades = _reference(close.tolist(), params, bars_per_year)

    assert want_trades, "scenario should trade at least once to be meaningful"
    assert [(t.entry_index, t.exit_index) for t in out.trades] == [
        (e, x) for e, x, _ in want_trades
    ]
    assert [t.pnl for t in out.trades] == pytest.approx([pnl for *_, pnl in want_trades],
                                                        rel=1e-9)
    assert set(out.metrics) == set(want)
    for key, value in want.items():
        got = out.metrics[key]
        if value is None or isinstance(value, (bool, int)) and not isinstance(value, float):
            assert got == value, key
        else:
            assert got == pytest.approx(value, rel=1e-9, abs=1e-12), key


def test_golden_mean_reverting_series_many_round_trips() -> None:
    rng = np.random.default_rng(3)
    t = np.arange(500)
    close = 100 + 15 * np.sin(t / 6) + rng.normal(0, 1.5, t.size)
    out = run_rsi_strategy(close, DEFAULTS, 365.0)
    want, want_trades = _reference(close.tolist(), DEFAULTS, 365.0)
    assert want["num_trades"] >= 5
    assert [(x.entry_index, x.exit_index) for x in out.trades] == [(e, x) for e, x, _ in want_trades]
    for key, value in want.items():
        if value is None or type(value) in (bool, int):
            assert out.metrics[key] == value, key
        else:
            assert out.metrics[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key
