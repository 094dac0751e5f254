"""Candles: the OHLCV arrays of one instrument, the one input of every strategy and of the simulator.

Input rules (checked once per instrument by `make_candles`, so kernels can
trust them): the five price/volume arrays are 1-D float64, C-contiguous,
aligned and writable, all of one length; open, high, low and close are
finite and > 0; volume is finite and >= 0; `time` holds each candle's open
time in int64 epoch seconds (UTC), strictly increasing.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import InvalidPriceDataError
from .numeric import as_kernel_array


@dataclass(frozen=True, eq=False)
class Candles:
    """One instrument's candles in time order (see the module docstring for the rules)."""

    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    time: np.ndarray
    interval_seconds: int

    def __len__(self) -> int:
        return self.close.size

    def head(self, k: int) -> Candles:
        """The first k candles (a run on them must not see anything later: the no-look-ahead rule)."""
        return Candles(*(np.ascontiguousarray(a[:k]) for a in (self.open, self.high, self.low, self.close,
                                                                self.volume, self.time)), self.interval_seconds)


def make_candles(open_: object, high: object, low: object, close: object, volume: object | None = None,
                 time: object | None = None, interval_seconds: int = 86_400) -> Candles:
    """Checked Candles from array-likes; InvalidPriceDataError names the first bad field and index.

    `volume` defaults to zeros and `time` to one candle per `interval_seconds`
    from the epoch, for callers (tests, peers) that have closes only.
    """
    prices = {}
    for name, values in (("open", open_), ("high", high), ("low", low), ("close", close)):
        prices[name] = _price_array(name, values)
    n = prices["close"].size
    vol = np.zeros(n) if volume is None else _float_array("volume", volume)
    if time is None:
        times = np.arange(n, dtype=np.int64) * int(interval_seconds)
    else:
        try:
            times = np.require(np.asarray(time).astype(np.int64), requirements=("C", "A", "W"))
        except (TypeError, ValueError) as exc:
            raise InvalidPriceDataError(f"time must be integer epoch seconds: {exc}") from exc
    for name, arr in (*prices.items(), ("volume", vol), ("time", times)):
        if arr.ndim != 1 or arr.size != n:
            raise InvalidPriceDataError(f"{name} must be a 1-D array of {n} values, got shape {arr.shape}")
    bad = np.flatnonzero(~(np.isfinite(vol) & (vol >= 0)))
    if bad.size:
        raise InvalidPriceDataError(f"volume must be finite and >= 0; first bad value at index {bad[0]}: "
                                    f"{vol[bad[0]]!r}")
    if n > 1 and not np.all(times[1:] > times[:-1]):
        i = int(np.flatnonzero(times[1:] <= times[:-1])[0]) + 1
        raise InvalidPriceDataError(f"candle times must be strictly increasing; index {i} is not")
    if int(interval_seconds) <= 0:
        raise InvalidPriceDataError(f"interval_seconds must be positive, got {interval_seconds}")
    return Candles(prices["open"], prices["high"], prices["low"], prices["close"], vol, times, int(interval_seconds))


def candles_from_close(close: object, time: object | None = None, interval_seconds: int = 86_400) -> Candles:
    """Candles whose open, high and low all equal the close (for data that has closes only)."""
    c = _price_array("close", close)
    return make_candles(c, c, c, c, None, time, interval_seconds)


def _float_array(name: str, values: object) -> np.ndarray:
    try:
        arr = as_kernel_array(values)
    except (TypeError, ValueError) as exc:
        raise InvalidPriceDataError(f"{name} prices must be numeric: {exc}") from exc
    if arr.ndim != 1:
        raise InvalidPriceDataError(f"{name} prices must be 1-D, got shape {arr.shape}")
    return arr


def _price_array(name: str, values: object) -> np.ndarray:
    arr = _float_array(name, values)
    bad = np.flatnonzero(~(np.isfinite(arr) & (arr > 0)))
    if bad.size:
        i = int(bad[0])
        raise InvalidPriceDataError(f"{name} prices must be finite and > 0; {bad.size} bad value(s), "
                                    f"first at index {i}: {arr[i]!r}")
    return arr
