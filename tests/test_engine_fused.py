"""The compiled fast paths against the generic numpy ones they replace.

`run_rsi_strategy` runs one fused numba kernel; it must give exactly what
`compute_rsi` -> `simulate_long_only` -> `compute_metrics` give (same trades,
same equity curve, metrics equal to 1e-12 relative; in practice bit for bit).
`compute_rsi` itself must equal the former numpy/Python-float implementation
bit for bit.
"""

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from api.demo_data import generate_demo_cryptos
from api.engine import (
    InsufficientDataError,
    InvalidPriceDataError,
    Trade,
    compute_metrics,
    compute_rsi,
    get_strategy,
    run_rsi_strategy,
    simulate_long_only,
    warm_up,
)
from api.engine import kernels

REPO_ROOT = Path(__file__).resolve().parents[1]

DEFAULTS = get_strategy("rsi_buy_sell").defaults()


def _generic(close: np.ndarray, params: dict, bars_per_year: float):
    """The signal-driven path: compute_rsi -> simulate_long_only -> compute_metrics."""
    close = np.asarray(close, dtype=np.float64)
    rsi = compute_rsi(close, int(params["rsi_period"]))
    with np.errstate(invalid="ignore"):
        buy = rsi < params["oversold_threshold"]
        sell = rsi > params["overbought_threshold"]
    initial = float(params["initial_investment"])
    fee = float(params["transaction_fee"]) / 100.0
    sim = simulate_long_only(close, buy, sell, initial, fee)
    return sim, compute_metrics(close, sim, initial, fee, bars_per_year), rsi


def _numpy_rsi(close: np.ndarray, period: int) -> np.ndarray:
    """The engine's previous RSI (numpy + a Python-float loop), kept as reference."""
    close = np.asarray(close, dtype=np.float64)
    diff = np.diff(close)
    gains = np.maximum(diff, 0.0)
    losses = np.maximum(-diff, 0.0)
    ag = float(gains[:period].sum()) / period
    al = float(losses[:period].sum()) / period
    ag_list, al_list = [ag], [al]
    for g, l in zip(gains[period:].tolist(), losses[period:].tolist()):
        ag = (ag * (period - 1) + g) / period
        al = (al * (period - 1) + l) / period
        ag_list.append(ag)
        al_list.append(al)
    avg_gain, avg_loss = np.array(ag_list), np.array(al_list)
    out = np.full(close.size, np.nan)
    total = avg_gain + avg_loss
    out[period:] = np.divide(100.0 * avg_gain, total, out=np.zeros_like(total), where=total != 0.0)
    # RSI is at most 100 by definition; the division can round one ulp above it
    out[period:] = np.where(out[period:] > 100.0, 100.0, out[period:])
    return out


def _series(rng: np.random.Generator, kind: str, n: int) -> np.ndarray:
    if kind == "walk":
        return 100.0 * np.exp(np.cumsum(rng.normal(0.0, rng.uniform(0.005, 0.08), n)))
    if kind == "fat":
        return 5.0 * np.exp(np.cumsum(rng.standard_t(3, n) * 0.03))
    if kind == "sine":
        t = np.arange(n)
        return 100 + 15 * np.sin(t / rng.uniform(3, 12)) + rng.normal(0, 1.5, n)
    if kind == "steps":  # long flat stretches: zero changes, RSI 0 and ties
        return np.repeat(rng.uniform(1.0, 2.0, n // 7 + 1), 7)[:n]
    if kind == "tiny":  # sub-cent prices, huge unit counts
        return 1e-6 * np.exp(np.cumsum(rng.normal(0.0, 0.05, n)))
    raise AssertionError(kind)


def _random_params(rng: np.random.Generator) -> dict:
    low = float(rng.uniform(5, 50))
    return {
        "initial_investment": float(rng.choice([1.0, 2500.0, 10000.0, 123456.789, 1e12])),
        "transaction_fee": float(rng.choice([0.0, 0.1, 0.25, 1.0, 7.5])),
        "rsi_period": int(rng.choice([2, 3, 5, 9, 14, 21, 50])),
        "oversold_threshold": low,
        "overbought_threshold": float(rng.uniform(low + 0.5, 95)),
    }


def _assert_same(close: np.ndarray, params: dict, bars_per_year: float) -> int:
    out = run_rsi_strategy(close, params, bars_per_year)
    sim, metrics, rsi = _generic(close, params, bars_per_year)
    # Trade dataclasses compare field by field, floats exactly.
    assert out.trades == sim.trades
    np.testing.assert_array_equal(out.equity, sim.equity)
    np.testing.assert_array_equal(out.rsi, rsi)
    assert out.metrics.keys() == metrics.keys()
    for key, want in metrics.items():
        got = out.metrics[key]
        assert type(got) is type(want), key
        if isinstance(want, float):
            assert got == pytest.approx(want, rel=1e-12, abs=0.0), key
        else:
            assert got == want, key
    return len(out.trades)


@pytest.mark.parametrize("kind", ["walk", "fat", "sine", "steps", "tiny"])
def test_fused_equals_generic_path_random(kind: str) -> None:
    rng = np.random.default_rng(["walk", "fat", "sine", "steps", "tiny"].index(kind))
    traded = 0
    for _ in range(60):
        params = _random_params(rng)
        n = int(rng.integers(params["rsi_period"] + 1, 1200))
        close = _series(rng, kind, n)
        bars_per_year = float(rng.choice([365.0, 252.0, 8760.0, 12.0]))
        traded += _assert_same(close, params, bars_per_year) > 0
    assert traded > 20  # most scenarios trade, so the comparison means something


def test_fused_equals_generic_path_demo_data() -> None:
    for crypto in generate_demo_cryptos(12, 1828):
        _assert_same(crypto.close, DEFAULTS, 365.0)
    (hourly,) = generate_demo_cryptos(1, 43_800, interval="1h")
    assert _assert_same(hourly.close, DEFAULTS, 8760.0) > 100


@pytest.mark.parametrize(
    ("close", "params"),
    [
        (np.full(20, 50.0), {**DEFAULTS, "oversold_threshold": 1e-9}),  # buys, never sells
        (np.full(20, 50.0), DEFAULTS),  # RSI exactly 0 = threshold: no trade
        (np.arange(1.0, 31.0), {**DEFAULTS, "overbought_threshold": 99}),  # RSI 100, flat
        (np.array([1.0, 2.0, 1.0, 3.0]), {**DEFAULTS, "rsi_period": 3, "oversold_threshold": 80,
                                          "overbought_threshold": 90}),  # n = period + 1
        (np.array([3.0, 2.0, 1.0, 2.0, 3.0, 2.0, 1.0]), {**DEFAULTS, "rsi_period": 1,
                                                         "oversold_threshold": 50,
                                                         "overbought_threshold": 60}),
    ],
    ids=["open-at-end", "strict-threshold", "monotone", "minimal-length", "period-1-churn"],
)
def test_fused_edge_cases(close: np.ndarray, params: dict) -> None:
    _assert_same(close, params, 365.0)


def test_rsi_bit_identical_to_previous_implementation() -> None:
    rng = np.random.default_rng(11)
    for n in (2, 3, 9, 15, 16, 129, 200, 1828):
        for period in (1, 2, 7, 8, 9, 14, 100, 128, 129, 300):
            if n < period + 1:
                continue
            close = _series(rng, "fat", n)
            np.testing.assert_array_equal(compute_rsi(close, period), _numpy_rsi(close, period))
    close = np.concatenate([np.full(30, 5.0), np.linspace(5, 9, 30), np.full(30, 9.0)])
    np.testing.assert_array_equal(compute_rsi(close, 14), _numpy_rsi(close, 14))


def test_rsi_kernel_keeps_numpy_nan_semantics() -> None:
    # compute_rsi does not validate prices; NaN/inf propagate as they did.
    close = np.array([1.0, 2.0, np.nan, 3.0, 4.0, 5.0, np.inf, 6.0, 5.0, 4.0])
    with np.errstate(invalid="ignore"):
        want = _numpy_rsi(close, 2)
    np.testing.assert_array_equal(compute_rsi(close, 2), want)


@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 127, 128, 129, 250, 256, 1000, 1827, 8193, 43_799])
def test_pairwise_sum_matches_numpy_sum_exactly(n: int) -> None:
    rng = np.random.default_rng(n)
    a = rng.standard_t(2, n + 5) * 10.0 ** rng.uniform(-8, 8, n + 5)
    for start in (0, 3):
        assert 0.0 + kernels.pairwise_sum(a, start, n) == a[start:start + n].sum()


def test_inputs_of_any_layout_give_the_same_outcome() -> None:
    close = _series(np.random.default_rng(5), "sine", 400)
    want = run_rsi_strategy(close, DEFAULTS)
    frozen = close.copy()
    frozen.setflags(write=False)
    strided = np.repeat(close, 2)[::2]
    for variant in (frozen, strided, close.tolist()):
        got = run_rsi_strategy(variant, DEFAULTS)
        assert got.trades == want.trades
        assert got.metrics == want.metrics
        np.testing.assert_array_equal(got.equity, want.equity)


def test_warm_up_covers_the_array_types_callers_use() -> None:
    assert warm_up() >= 0.0
    counts = {k: len(k.signatures) for k in (kernels.rsi_kernel, kernels.rsi_strategy_kernel)}
    warm_up()  # already compiled: a second call only dispatches (checked below: no new signature)
    close = _series(np.random.default_rng(6), "walk", 300)
    frozen = close.copy()
    frozen.setflags(write=False)
    for variant in (close, frozen, close[::-1], close.tolist(), close.astype(np.int64) + 1):
        run_rsi_strategy(variant, DEFAULTS)
        compute_rsi(variant, 14)
    assert {k: len(k.signatures) for k in counts} == counts  # nothing compiled on demand


def test_outcome_types_are_plain_python() -> None:
    out = run_rsi_strategy(_series(np.random.default_rng(8), "sine", 500), DEFAULTS)
    assert out.trades and out.trades[-1].is_open in (True, False)
    for trade in out.trades:
        assert type(trade) is Trade
        assert type(trade.entry_index) is int and type(trade.is_open) is bool
        assert trade.is_open == (trade.exit_index is None) == (trade.exit_price is None)
        assert trade.exit_index is None or type(trade.exit_index) is int
        for name in ("entry_price", "units", "entry_value", "exit_value", "pnl", "return_pct"):
            assert type(getattr(trade, name)) is float, name
    for key, value in out.metrics.items():
        assert value is None or type(value) in (float, int, bool), key
        assert not (isinstance(value, float) and not math.isfinite(value)), key
    assert out.equity.dtype == np.float64 and out.rsi.dtype == np.float64


# ------------------------------------------------------------- validation

def test_bad_prices_are_reported_before_other_problems() -> None:
    bad_and_short = [100.0, float("nan"), 101.0]
    with pytest.raises(InvalidPriceDataError, match="first at index 1"):
        run_rsi_strategy(bad_and_short, DEFAULTS)
    with pytest.raises(InvalidPriceDataError, match="2 bad value"):
        run_rsi_strategy([1.0] * 20 + [0.0, -1.0], {**DEFAULTS, "rsi_period": 0})
    with pytest.raises(InvalidPriceDataError):
        run_rsi_strategy([1.0, np.inf] * 20, {**DEFAULTS, "transaction_fee": 100})


@pytest.mark.parametrize("index", [0, 5, 14, 15, 99])
def test_bad_price_anywhere_is_caught(index: int) -> None:
    close = _series(np.random.default_rng(index), "walk", 100)
    close[index] = -1.0
    with pytest.raises(InvalidPriceDataError, match=f"1 bad value\\(s\\), first at index {index}: "):
        run_rsi_strategy(close, DEFAULTS)


def test_argument_errors_unchanged() -> None:
    close = _series(np.random.default_rng(1), "walk", 50)
    with pytest.raises(InsufficientDataError, match=r"RSI\(14\) needs at least 15 candles, got 14"):
        run_rsi_strategy(close[:14], DEFAULTS)
    with pytest.raises(ValueError, match="RSI period must be a positive integer"):
        run_rsi_strategy(close, {**DEFAULTS, "rsi_period": 0})
    with pytest.raises(ValueError, match="fee_rate"):
        run_rsi_strategy(close, {**DEFAULTS, "transaction_fee": 100})
    with pytest.raises(ValueError, match="bars_per_year"):
        run_rsi_strategy(close, DEFAULTS, 0.0)


def test_engine_import_does_not_compile() -> None:
    """Importing the engine stays cheap; compilation happens in warm_up()."""
    check = (
        "import api.engine.kernels as k; "
        "import sys; sys.exit(1 if k.rsi_strategy_kernel.signatures else 0)"
    )
    result = subprocess.run([sys.executable, "-c", check], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr

