"""Candles: the OHLCV arrays of one instrument, the one input of every strategy and of the simulator.

Input rules (checked once per instrument by `make_candles`, so kernels can
trust them): the price/volume arrays present are 1-D float64, C-contiguous,
aligned and writable, all of one length; open, high, low and close are
finite and > 0; volume is finite and >= 0; `time` holds each candle's open
time in int64 epoch seconds (UTC), strictly increasing.
"""
from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from numba import njit

from .errors import InvalidPriceDataError
from .numeric import CACHE, as_kernel_array
from .records import record


FIELDS = ("time", "open", "high", "low", "close", "volume")
MEMO_LIMIT = 256  # indicator arrays kept per Candles (a grid of more distinct look-backs recomputes)
T = TypeVar("T")


@dataclass(frozen=True, eq=False)
class Candles:
    """One instrument's candles in time order (see the module docstring for the rules).

    Only the close is always there: a run reads the fields it needs (its
    strategy's `inputs`, plus open for "next_open" fills and open/high/low for
    stops; see `backtest.required_fields`), and the others are None.
    `first_time`/`last_time` (epoch seconds of the first and last candle) are
    always set, for the metrics that need the span.
    """

    close: np.ndarray
    open: np.ndarray | None
    high: np.ndarray | None
    low: np.ndarray | None
    volume: np.ndarray | None
    time: np.ndarray | None
    first_time: int
    last_time: int
    interval_seconds: int
    fields: frozenset[str]  # the names of the fields present
    memo: dict[Hashable, Any] = field(default_factory=dict, repr=False, compare=False)

    def __len__(self) -> int:
        return self.close.size

    def indicator(self, key: Hashable, compute: Callable[[], T]) -> T:
        """`compute()` once per key for these candles: a grid asks for the same RSI under every threshold.

        The key names the indicator and every argument it depends on
        (``("rsi", 14)``); callers must not modify the arrays they get back.
        """
        memo = self.memo
        try:
            return memo[key]
        except KeyError:
            pass
        if len(memo) >= MEMO_LIMIT:
            memo.clear()
        value = memo[key] = compute()
        return value

    def head(self, k: int) -> Candles:
        """The first k candles (a run on them must not see anything later: the no-look-ahead rule)."""
        if self.time is None:
            raise ValueError("head() needs the candle times")
        cut = {f: None if getattr(self, f) is None else np.ascontiguousarray(getattr(self, f)[:k])
               for f in FIELDS}
        return make_candles(cut["open"], cut["high"], cut["low"], cut["close"], cut["volume"], cut["time"],
                            self.interval_seconds)


def make_candles(open_: object | None, high: object | None, low: object | None, close: object,
                 volume: object | None = None, time: object | None = None, interval_seconds: int = 86_400,
                 first_time: int | None = None, last_time: int | None = None) -> Candles:
    """Checked Candles from array-likes; InvalidPriceDataError names the first bad field and index.

    Fields passed as None stay absent. Without `time`, the span is
    `first_time` (default 0) to `last_time` (default one interval per candle).
    """
    c = _price_array("close", close)
    n = c.size
    o = None if open_ is None else _price_array("open", open_)
    h = None if high is None else _price_array("high", high)
    lo = None if low is None else _price_array("low", low)
    vol = None if volume is None else _volume_array(volume)
    times = None if time is None else _time_array(time)
    present = [(name, arr) for name, arr in (("open", o), ("high", h), ("low", lo), ("volume", vol),
                                             ("time", times)) if arr is not None] if open_ is not None \
        or high is not None or low is not None or volume is not None or time is not None else []
    for name, arr in present:
        if arr.ndim != 1 or arr.size != n:
            raise InvalidPriceDataError(f"{name} must be a 1-D array of {n} values, got shape {arr.shape}")
    interval_seconds = int(interval_seconds)
    if interval_seconds <= 0:
        raise InvalidPriceDataError(f"interval_seconds must be positive, got {interval_seconds}")
    if times is not None and n:
        if n > 1 and not np.all(times[1:] > times[:-1]):
            i = int(np.flatnonzero(times[1:] <= times[:-1])[0]) + 1
            raise InvalidPriceDataError(f"candle times must be strictly increasing; index {i} is not")
        first_time, last_time = int(times[0]), int(times[-1])
    first = 0 if first_time is None else int(first_time)
    last = first + max(n - 1, 0) * interval_seconds if last_time is None else int(last_time)
    return record(Candles, {"close": c, "open": o, "high": h, "low": lo, "volume": vol, "time": times,
                            "first_time": first, "last_time": last, "interval_seconds": interval_seconds,
                            "fields": frozenset(["close", *(name for name, _ in present)]) if present
                            else _CLOSE_ONLY, "memo": {}})


_CLOSE_ONLY = frozenset({"close"})


def _volume_array(values: object) -> np.ndarray:
    vol = _float_array("volume", values)
    bad = np.flatnonzero(~(np.isfinite(vol) & (vol >= 0)))
    if bad.size:
        raise InvalidPriceDataError(f"volume must be finite and >= 0; first bad value at index {bad[0]}: "
                                    f"{vol[bad[0]]!r}")
    return vol


def _time_array(values: object) -> np.ndarray:
    try:
        return np.require(np.asarray(values).astype(np.int64), requirements=("C", "A", "W"))
    except (TypeError, ValueError) as exc:
        raise InvalidPriceDataError(f"time must be integer epoch seconds: {exc}") from exc


def candles_from_close(close: object, time: object | None = None, interval_seconds: int = 86_400) -> Candles:
    """Candles whose open, high and low all equal the close (for data that has closes only)."""
    c = _price_array("close", close)
    if time is None:
        time = np.arange(c.size, dtype=np.int64) * int(interval_seconds)
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
    if arr.ndim == 1 and _first_bad_price(arr) >= 0:  # one compiled pass; numpy's version cost 5 us a series
        bad = np.flatnonzero(~(np.isfinite(arr) & (arr > 0)))
        i = int(bad[0])
        raise InvalidPriceDataError(f"{name} prices must be finite and > 0; {bad.size} bad value(s), "
                                    f"first at index {i}: {arr[i]!r}")
    return arr


@njit(cache=CACHE, nogil=True)
def _first_bad_price(values):
    """Index of the first value that is not finite and > 0, or -1.

    The scan has no early exit, so it vectorises (prices are nearly always fine);
    only a bad series pays a second pass to find where.
    """
    ok = True
    for i in range(values.size):
        x = values[i]
        ok &= (x > 0.0) & (x < np.inf)
    if ok:
        return -1
    for i in range(values.size):
        x = values[i]
        if not (x > 0.0 and x < np.inf):
            return i
    return -1
