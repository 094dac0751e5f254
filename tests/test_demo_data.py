"""Tests for the synthetic demo data generator: determinism, OHLC sanity, variety."""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest

from api.demo_data import (
    INTERVAL_SECONDS,
    DemoCrypto,
    generate_demo_cryptos,
    iter_demo_cryptos,
)

FIELDS = ("times", "open", "high", "low", "close", "volume")


def _same(a: DemoCrypto, b: DemoCrypto) -> bool:
    return a.symbol == b.symbol and a.name == b.name and all(
        np.array_equal(getattr(a, f), getattr(b, f)) for f in FIELDS
    )


@pytest.fixture(scope="module")
def default_set() -> list[DemoCrypto]:
    """The full default data set (211 x 1828 daily), built once for the module."""
    return generate_demo_cryptos()


def test_same_seed_is_identical() -> None:
    a = generate_demo_cryptos(4, 300, seed=7)
    b = generate_demo_cryptos(4, 300, seed=7)
    assert all(_same(x, y) for x, y in zip(a, b, strict=True))


def test_different_seed_differs() -> None:
    a = generate_demo_cryptos(3, 300, seed=7)
    b = generate_demo_cryptos(3, 300, seed=8)
    for x, y in zip(a, b, strict=True):
        assert np.array_equal(x.times, y.times)
        assert not np.array_equal(x.close, y.close)


def test_crypto_independent_of_n_cryptos() -> None:
    small = generate_demo_cryptos(5, 400)
    large = generate_demo_cryptos(20, 400)
    assert all(_same(x, y) for x, y in zip(small, large[:5]))


def test_iterator_matches_list() -> None:
    assert all(
        _same(x, y)
        for x, y in zip(iter_demo_cryptos(3, 200), generate_demo_cryptos(3, 200), strict=True)
    )


def test_default_shape_symbols_and_names(default_set: list[DemoCrypto]) -> None:
    assert len(default_set) == 211
    assert default_set[0].symbol == "SYN001"
    assert default_set[-1].symbol == "SYN211"
    assert len({c.symbol for c in default_set}) == 211
    assert all("demo data" in c.name and "Synthetic" in c.name for c in default_set)
    for c in default_set:
        for f in FIELDS:
            assert getattr(c, f).shape == (1828,)


def test_ohlc_invariants_every_candle(default_set: list[DemoCrypto]) -> None:
    for c in default_set:
        for f in ("open", "high", "low", "close", "volume"):
            arr = getattr(c, f)
            assert arr.dtype == np.float64
            assert np.isfinite(arr).all(), (c.symbol, f)
        assert (c.high >= np.maximum(c.open, c.close)).all(), c.symbol
        assert (c.low <= np.minimum(c.open, c.close)).all(), c.symbol
        assert (c.low > 0).all(), c.symbol
        assert (c.volume > 0).all(), c.symbol
        assert c.low.min() >= 1e-8 and c.high.max() <= 1e9, c.symbol


def test_daily_times(default_set: list[DemoCrypto]) -> None:
    times = default_set[0].times
    assert times.dtype == np.dtype("datetime64[s]")
    steps = np.diff(times).astype(np.int64)
    assert (steps == 86_400).all()
    assert times[-1] == np.datetime64("2025-12-31T00:00:00")
    assert times[0] == np.datetime64("2025-12-31T00:00:00") - np.timedelta64(1827, "D")
    assert all(np.array_equal(c.times, times) for c in default_set)


def test_first_open_near_start_and_open_follows_close(default_set: list[DemoCrypto]) -> None:
    for c in default_set:
        gap = np.abs(np.log(c.open[1:] / c.close[:-1]))
        assert np.median(gap) < 0.01, c.symbol  # small gaps, as on a 24/7 market


def test_variety(default_set: list[DemoCrypto]) -> None:
    total_return = np.array([c.close[-1] / c.open[0] - 1.0 for c in default_set])
    daily_vol = np.array([np.std(np.diff(np.log(c.close))) for c in default_set])
    assert (total_return > 1.0).sum() >= 10  # some up more than 100 %
    assert (total_return < -0.5).sum() >= 10  # some down more than 50 %
    assert daily_vol.max() >= 3.0 * daily_vol.min()
    start = np.array([c.open[0] for c in default_set])
    assert start.min() < 0.01 and start.max() > 1_000  # penny coins to large caps


def test_pinned_fingerprint() -> None:
    # These values pin cross-machine determinism (PCG64 + numpy distributions).
    # If they change, every seeded demo database changes: only update on purpose.
    # Compared to 12 significant digits (rel=1e-12): loose enough for last-ulp
    # libm/SIMD differences between CPUs, tight enough to catch any real change.
    c = generate_demo_cryptos(1)[0]
    assert c.open[0] == pytest.approx(539.3666691539152, rel=1e-12)
    assert c.close[0] == pytest.approx(533.1386207746498, rel=1e-12)
    assert c.close[-1] == pytest.approx(1145.6422899620925, rel=1e-12)
    assert c.volume[0] == pytest.approx(690.1123041612186, rel=1e-12)


def test_hourly_spacing_and_end() -> None:
    cryptos = generate_demo_cryptos(2, 24 * 30, interval="1h")
    assert len(cryptos) == 2
    for c in cryptos:
        assert c.times.shape == (720,)
        assert (np.diff(c.times).astype(np.int64) == 3_600).all()
        assert c.times[-1] == np.datetime64("2025-12-31T23:00:00")
        assert (c.high >= np.maximum(c.open, c.close)).all()
        assert (c.low <= np.minimum(c.open, c.close)).all()


def test_four_hour_end_and_explicit_end_time() -> None:
    (c,) = generate_demo_cryptos(1, 10, interval="4h")
    assert (np.diff(c.times).astype(np.int64) == INTERVAL_SECONDS["4h"]).all()
    assert c.times[-1] == np.datetime64("2025-12-31T20:00:00")
    # A timestamp means "last candle fully closed by then".
    (h,) = generate_demo_cryptos(1, 5, interval="1h", end="2025-06-01T15:30")
    assert h.times[-1] == np.datetime64("2025-06-01T14:00:00")


def test_hourly_volatility_scaled_down() -> None:
    (d,) = generate_demo_cryptos(1, 2000, interval="1d")
    (h,) = generate_demo_cryptos(1, 2000 * 24, interval="1h")
    ratio = np.std(np.diff(np.log(d.close))) / np.std(np.diff(np.log(h.close)))
    assert 3.0 < ratio < 8.0  # ~sqrt(24) = 4.9


def test_iterator_is_lazy_and_releases_previous() -> None:
    it = iter_demo_cryptos(3, 24 * 365, interval="1h")
    assert not isinstance(it, list)
    first = next(it)
    ref = weakref.ref(first)
    del first
    second = next(it)
    gc.collect()
    assert ref() is None  # the generator kept no reference to crypto 0
    assert second.symbol == "SYN002"


def test_arrays_are_read_only() -> None:
    (c,) = generate_demo_cryptos(1, 10)
    with pytest.raises(ValueError):
        c.close[0] = 1.0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"interval": "2m"},
        {"n_candles": 0},
        {"n_cryptos": -1},
        {"seed": -1},
        {"end": "not-a-date"},
    ],
)
def test_invalid_arguments(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        generate_demo_cryptos(**{"n_cryptos": 1, "n_candles": 5, **kwargs})
