"""Indicator checks against hand arithmetic and an independent per-bar reference."""

import math
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from api.engine import InsufficientDataError, compute_rsi, warm_up
from api.engine import indicators as ind

REPO_ROOT = Path(__file__).resolve().parents[1]
NAN = float("nan")

# period 5, 20 closes
CLOSES = [10, 12, 11, 13, 15, 14, 13, 16, 17, 15, 14, 16, 18, 17, 19, 20, 18, 17, 19, 21]


def _fraction_rsi(closes: list[int], period: int) -> list[Fraction | None]:
    """Exact Wilder RSI in rationals, step by step."""
    diffs = [Fraction(b - a) for a, b in zip(closes, closes[1:])]
    gains = [d if d > 0 else Fraction(0) for d in diffs]
    losses = [-d if d < 0 else Fraction(0) for d in diffs]
    ag = sum(gains[:period]) / period
    al = sum(losses[:period]) / period
    out: list[Fraction | None] = [None] * period
    out.append(100 * ag / (ag + al) if ag + al else Fraction(0))
    for g, l in zip(gains[period:], losses[period:]):
        ag = (ag * (period - 1) + g) / period
        al = (al * (period - 1) + l) / period
        out.append(100 * ag / (ag + al) if ag + al else Fraction(0))
    return out


def test_hand_worked_period_5() -> None:
    rsi = compute_rsi(np.array(CLOSES, dtype=float), 5)
    assert rsi.shape == (20,)
    assert np.isnan(rsi[:5]).all()

    # diffs: +2 -1 +2 +2 -1 | -1 +3 +1 -2 -1 +2 +2 -1 +2 +1 -2 -1 +2 +2
    # bar 5: avg_gain = (2+0+2+2+0)/5 = 6/5, avg_loss = (0+1+0+0+1)/5 = 2/5
    #        RSI = 100 * (6/5) / (8/5) = 75
    ag, al = Fraction(6, 5), Fraction(2, 5)
    assert rsi[5] == pytest.approx(75.0, rel=1e-12)
    # bar 6 (diff -1): avg_gain = (6/5*4 + 0)/5 = 24/25, avg_loss = (2/5*4 + 1)/5 = 13/25
    ag, al = (ag * 4 + 0) / 5, (al * 4 + 1) / 5
    assert (ag, al) == (Fraction(24, 25), Fraction(13, 25))
    assert rsi[6] == pytest.approx(float(100 * ag / (ag + al)), rel=1e-12)  # 2400/37
    # bar 7 (diff +3): avg_gain = (24/25*4 + 3)/5 = 171/125, avg_loss = 13/25*4/5 = 52/125
    ag, al = (ag * 4 + 3) / 5, (al * 4 + 0) / 5
    assert (ag, al) == (Fraction(171, 125), Fraction(52, 125))
    assert rsi[7] == pytest.approx(17100 / 223, rel=1e-12)
    # bar 8 (diff +1): avg_gain = (171/125*4 + 1)/5 = 809/625, avg_loss = 208/625
    ag, al = (ag * 4 + 1) / 5, (al * 4 + 0) / 5
    assert rsi[8] == pytest.approx(80900 / 1017, rel=1e-12)

    # the rest follows the same recursion, computed exactly
    expected = _fraction_rsi(CLOSES, 5)
    assert expected[8] == Fraction(80900, 1017)
    for t in range(5, 20):
        assert rsi[t] == pytest.approx(float(expected[t]), rel=1e-12), t


def _reference_rsi(closes: list[float], period: int) -> list[float]:
    """Obvious per-bar Wilder RSI over Python floats."""
    out = [float("nan")] * len(closes)
    avg_gain = avg_loss = 0.0
    for t in range(1, len(closes)):
        change = closes[t] - closes[t - 1]
        gain = change if change > 0 else 0.0
        loss = -change if change < 0 else 0.0
        if t <= period:
            avg_gain += gain / period
            avg_loss += loss / period
        else:
            avg_gain = (avg_gain * (period - 1) + gain) / period
            avg_loss = (avg_loss * (period - 1) + loss) / period
        if t >= period:
            total = avg_gain + avg_loss
            out[t] = 0.0 if total == 0 else 100 * avg_gain / total
    return out


def test_period_14_matches_reference() -> None:
    rng = np.random.default_rng(42)
    close = 50 * np.exp(np.cumsum(rng.normal(0, 0.03, 250)))
    got = compute_rsi(close, 14)
    want = _reference_rsi(close.tolist(), 14)
    assert np.isnan(got[:14]).all()
    assert got[14:] == pytest.approx(want[14:], rel=1e-12)
    assert 0 < np.nanmin(got) < np.nanmax(got) < 100


@pytest.mark.parametrize(
    ("close", "expected"),
    [
        (np.full(30, 7.5), 0.0),
        (np.arange(1.0, 31.0), 100.0),
        (np.arange(30.0, 0.0, -1.0), 0.0),
    ],
    ids=["flat", "monotone-rise", "monotone-fall"],
)
def test_degenerate_series(close: np.ndarray, expected: float) -> None:
    rsi = compute_rsi(close, 14)
    assert np.isnan(rsi[:14]).all()
    assert (rsi[14:] == expected).all()


def test_too_few_candles_raises_with_counts() -> None:
    with pytest.raises(InsufficientDataError, match=r"RSI\(14\).*15.*got 10"):
        compute_rsi(np.arange(1.0, 11.0), 14)


def test_exactly_period_plus_one_gives_one_value() -> None:
    rsi = compute_rsi(np.array([1.0, 2.0, 1.0, 3.0]), 3)
    # gains 1,0,2 -> 1; losses 0,1,0 -> 1/3; RSI = 100 * 1 / (4/3) = 75
    assert np.isnan(rsi[:3]).all()
    assert rsi[3] == pytest.approx(75.0, rel=1e-12)
    assert np.count_nonzero(~np.isnan(rsi)) == 1


# ------------------------------------------------ sma, ema, macd, bbands, max/min


def _eq(got: np.ndarray, want: list[float]) -> None:
    """Same NaN positions, values equal to 1e-12 relative."""
    assert got.dtype == np.float64 and got.shape == (len(want),)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=0)


def test_sma_by_hand() -> None:
    _eq(ind.sma([1.0, 2.0, 3.0, 4.0], 3), [NAN, NAN, 2.0, 3.0])
    _eq(ind.sma([5.0, 7.0], 1), [5.0, 7.0])


def test_ema_seed_is_the_sma_then_the_recursion() -> None:
    # EMA(3): k = 0.5, seed at index 2 = mean(2, 4, 6) = 4;
    # then (8 - 4) * 0.5 + 4 = 6 and (4 - 6) * 0.5 + 6 = 5
    _eq(ind.ema([2.0, 4.0, 6.0, 8.0, 4.0], 3), [NAN, NAN, 4.0, 6.0, 5.0])
    # EMA(4): k = 0.4, seed mean(1, 2, 3, 4) = 2.5; (10 - 2.5) * 0.4 + 2.5 = 5.5
    _eq(ind.ema([1.0, 2.0, 3.0, 4.0, 10.0], 4), [NAN, NAN, NAN, 2.5, 5.5])
    _eq(ind.ema([1.0, 3.0, 100.0], 1), [1.0, 3.0, 100.0])  # period 1 is the series itself


def test_macd_by_hand() -> None:
    x = [1.0, 2.0, 4.0, 8.0, 16.0]
    # MACD(2, 3, 2). slow EMA(3), k = 1/2: 7/3 at index 2, then 31/6, 127/12.
    # fast EMA(2), k = 2/3, seeded at index 2 (= slow - 1) with mean(2, 4) = 3
    # (the 2 values ending there, not the first 2): then 19/3, 115/9.
    # line = fast - slow: 2/3, 7/6, 79/36. signal EMA(2) of the line, k = 2/3,
    # seeded at index 3 with mean(2/3, 7/6) = 11/12, then 191/108.
    line, signal, hist = ind.macd(x, 2, 3, 2)
    _eq(line, [NAN, NAN, NAN, 7 / 6, 79 / 36])  # index 2 hidden, as TA-Lib does
    _eq(signal, [NAN, NAN, NAN, 11 / 12, 191 / 108])
    _eq(hist, [NAN, NAN, NAN, 1 / 4, 23 / 54])
    # fast > slow is swapped, as in TA-Lib
    for a, b in zip(ind.macd(x, 3, 2, 2), (line, signal, hist)):
        np.testing.assert_array_equal(a, b)


def test_bbands_by_hand() -> None:
    upper, middle, lower = ind.bbands([1.0, 2.0, 3.0, 4.0, 6.0], 3, 2.0)
    # windows (1,2,3), (2,3,4): population std sqrt(2/3); (3,4,6): mean 13/3, std sqrt(14/9)
    _eq(middle, [NAN, NAN, 2.0, 3.0, 13 / 3])
    dev = [NAN, NAN, 2 * math.sqrt(2 / 3), 2 * math.sqrt(2 / 3), 2 * math.sqrt(14 / 9)]
    _eq(upper, list(np.add([NAN, NAN, 2.0, 3.0, 13 / 3], dev)))
    _eq(lower, list(np.subtract([NAN, NAN, 2.0, 3.0, 13 / 3], dev)))
    flat = ind.bbands(np.full(10, 3.25), 4, 2.0)
    for band in flat:
        _eq(band, [NAN] * 3 + [3.25] * 7)


def test_rolling_max_and_min_include_the_current_bar() -> None:
    x = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0]
    _eq(ind.rolling_max(x, 3), [NAN, NAN, 4.0, 4.0, 5.0, 9.0, 9.0, 9.0])
    _eq(ind.rolling_min(x, 3), [NAN, NAN, 1.0, 1.0, 1.0, 1.0, 2.0, 2.0])
    _eq(ind.rolling_max(x, 1), x)
    # a falling series makes the maximum leave the window at every bar
    _eq(ind.rolling_max([5.0, 4.0, 3.0, 2.0, 1.0], 2), [NAN, 5.0, 4.0, 3.0, 2.0])
    _eq(ind.rolling_min([1.0, 2.0, 3.0, 4.0, 5.0], 2), [NAN, 1.0, 2.0, 3.0, 4.0])


def _outputs(x: object, p: int) -> list[np.ndarray]:
    return [ind.rsi(x, p), ind.sma(x, p), ind.ema(x, p), *ind.macd(x, p, p + 1, p), *ind.bbands(x, p, 2.0),
            ind.rolling_max(x, p), ind.rolling_min(x, p)]


@pytest.mark.parametrize("n", [0, 1, 4])
def test_too_short_is_all_nan_not_an_error(n: int) -> None:
    for out in _outputs(np.arange(1.0, n + 1.0), 5):
        assert out.shape == (n,) and np.isnan(out).all()


@pytest.mark.parametrize("bad", [0, -1, 2.5, 3.0, True, "3", None])
def test_bad_periods_are_value_errors(bad: object) -> None:
    x = np.arange(1.0, 40.0)
    calls = [
        lambda: ind.rsi(x, bad), lambda: ind.sma(x, bad), lambda: ind.ema(x, bad),
        lambda: ind.rolling_max(x, bad), lambda: ind.rolling_min(x, bad), lambda: ind.bbands(x, bad, 2.0),
        lambda: ind.macd(x, bad, 26, 9), lambda: ind.macd(x, 12, bad, 9), lambda: ind.macd(x, 12, 26, bad),
    ]
    for call in calls:
        with pytest.raises(ValueError, match="must be a positive integer"):
            call()


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf"), "2", True])
def test_bad_num_std_is_a_value_error(bad: object) -> None:
    with pytest.raises(ValueError, match="num_std"):
        ind.bbands(np.arange(1.0, 40.0), 20, bad)


def test_input_rules() -> None:
    close = 100 * np.exp(np.cumsum(np.random.default_rng(3).normal(0, 0.02, 300)))
    want = _outputs(close, 14)
    frozen = close.copy()
    frozen.setflags(write=False)
    for variant in (frozen, np.repeat(close, 2)[::2], close.tolist()):
        for got, expected in zip(_outputs(variant, 14), want):
            np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(ind.sma(np.arange(10), np.int32(3)), ind.sma(np.arange(10.0), 3))
    kept = close.copy()
    _outputs(close, 14)
    np.testing.assert_array_equal(close, kept)  # inputs are never written
    with pytest.raises(ValueError, match="1-D"):
        ind.sma(np.ones((5, 2)), 2)


INDICATOR_KERNELS = ("_gain", "_loss", "_seed_averages", "_rsi_value", "rsi_kernel",
                     "_rolling_mean_std", "_ema", "_rolling_extreme")


TOP_KERNELS = ("rsi_kernel", "below_above_rows_kernel", "_rolling_mean_std", "_ema", "_rolling_extreme")  # the rest are their callees


def test_warm_up_compiles_each_indicator_kernel() -> None:
    check = (
        "import api.engine as e, api.engine.indicators as m, sys; e.warm_up(); "
        f"sys.exit(0 if all(len(getattr(m, k).signatures) == 1 for k in {TOP_KERNELS!r}) else 1)"
    )
    result = subprocess.run([sys.executable, "-c", check], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_any_input_layout_uses_the_one_compiled_array_type() -> None:
    warm_up()
    close = 50 * np.exp(np.cumsum(np.random.default_rng(9).normal(0, 0.03, 100)))
    frozen = close.copy()
    frozen.setflags(write=False)
    for variant in (close, frozen, close[::-1], close.tolist(), close.astype(np.int64) + 1,
                    close.astype(np.float32)):
        _outputs(variant, 5)
        compute_rsi(variant, 14)
    assert {k: len(getattr(ind, k).signatures) for k in TOP_KERNELS} == dict.fromkeys(TOP_KERNELS, 1)


def test_engine_import_does_not_compile_indicators() -> None:
    check = (
        "import api.engine.indicators as m, sys; "
        f"sys.exit(1 if any(getattr(m, k).signatures for k in {INDICATOR_KERNELS!r}) else 0)"
    )
    result = subprocess.run([sys.executable, "-c", check], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_rsi_crossings_equal_comparisons_of_the_rsi() -> None:
    close = np.random.default_rng(3).lognormal(0, 0.05, 700).cumprod() * 100
    for period, below, above in ((14, 30.0, 70.0), (3, 45.5, 50.0), (30, 0.0, 100.0)):
        values = ind.rsi(close, period)
        is_below, is_above = ind.rsi_crossings(close, period, below, above)
        np.testing.assert_array_equal(is_below, values < below)
        np.testing.assert_array_equal(is_above, values > above)
    short_below, short_above = ind.rsi_crossings(close[:5], 14, 30.0, 70.0)
    assert not short_below.any() and not short_above.any() and short_below.size == 5
