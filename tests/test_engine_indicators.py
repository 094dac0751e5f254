"""RSI checks against hand arithmetic and an independent per-bar reference."""

from fractions import Fraction

import numpy as np
import pytest

from api.engine import InsufficientDataError, compute_rsi

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
