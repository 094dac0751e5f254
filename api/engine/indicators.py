"""Technical indicators, equal to TA-Lib's functions of the same name.

Input rules (vectorbt style):

* a series is a 1-D array-like of numbers; it is converted with
  `as_kernel_array` (float64, C-contiguous, aligned, writable; copied only when
  it is not already), so every kernel is compiled for that one array type;
* periods are positive Python/numpy ints (ValueError otherwise); they may be 1
  even where TA-Lib refuses it (the formulas stay well defined);
* the result is a new float64 array of the input's length (a tuple of them for
  `macd` and `bbands`), NaN during the warm-up wherever TA-Lib has no value;
  a series too short for even one value gives all NaN, not an error (the
  strategy layer decides what is too short); only `compute_rsi` raises
  InsufficientDataError, as it always has;
* prices are expected finite (`Candles` checks them); a NaN is not detected
  here and propagates, for running sums into every later value. Unlike TA-Lib,
  leading NaNs are not skipped.

Every function does TA-Lib's float operations in TA-Lib's order, as of the
TA-Lib 0.8 C library that the pinned ``ta-lib`` package bundles (its EMA step
is one fused multiply-add; its BBANDS variance is computed from shifted data,
reseeded from the window when cancellation threatens, not from raw sums of
squares), so results are bit-identical to ``talib`` (tests check 1e-9:
tests/test_engine_vs_talib.py). The exception is RSI's seed averages, which
keep the engine's numpy pairwise summation (within 1e-9 of TA-Lib's
sequential sum, bit-identical to the engine's earlier numpy RSI). The loops
run in four numba kernels (plus RSI's helpers), compiled by
`api.engine.jit.warm_up`.
"""

import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from .errors import InsufficientDataError
from .numeric import CACHE, as_kernel_array, pairwise_sum

__all__ = [
    "bbands",
    "check_period",
    "check_rsi_period",
    "compute_rsi",
    "ema",
    "macd",
    "rolling_max",
    "rolling_min",
    "rsi",
    "sma",
]

# TA-Lib's BBANDS/STDDEV variance: recompute the shifted sums from the window
# when cancellation has eaten too many digits, or every 32 windows anyway.
_RESEED_WINDOWS = 32
_RESEED_RATIO = 1e-6  # variance below this fraction of the mean shifted square
_RESEED_DROP = 1e6  # the dropped squared deviation dwarfs what remains
_VARIANCE_FLOOR = 1e-12  # after a reseed, smaller relative variance is exactly 0


# ----------------------------------------------------------------- kernels


@intrinsic
def _fma(typingctx, a, b, c):
    """a * b + c rounded once (LLVM's fma: the FMA instruction, else libm's exact fma)."""
    sig = types.float64(types.float64, types.float64, types.float64)

    def codegen(context, builder, signature, args):
        double = ir.DoubleType()
        fnty = ir.FunctionType(double, [double, double, double])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.fma.f64")
        return builder.call(fn, args)

    return sig, codegen


@njit(cache=CACHE, nogil=True)
def _gain(d):
    # np.maximum(d, 0.0): NaN propagates, like the numpy formulation.
    return 0.0 if d <= 0.0 else d


@njit(cache=CACHE, nogil=True)
def _loss(d):
    # np.maximum(-d, 0.0)
    return 0.0 if d >= 0.0 else -d


@njit(cache=CACHE, nogil=True)
def _seed_averages(close, period, scratch):
    """First Wilder averages: numpy-summed first `period` gains/losses over period.

    `scratch` (length >= period) is overwritten.
    """
    for i in range(period):
        scratch[i] = _gain(close[i + 1] - close[i])
    ag = (0.0 + pairwise_sum(scratch, 0, period)) / period
    for i in range(period):
        scratch[i] = _loss(close[i + 1] - close[i])
    al = (0.0 + pairwise_sum(scratch, 0, period)) / period
    return ag, al


@njit(cache=CACHE, nogil=True)
def _rsi_value(ag, al):
    total = ag + al
    if total != 0.0:
        # ag <= total, so RSI <= 100; (100 * ag) / total can round one ulp above it
        return min(100.0 * ag / total, 100.0)
    return 0.0


@njit(cache=CACHE, nogil=True)
def rsi_kernel(close, period, out):
    """Wilder RSI (TA-Lib convention) of `close` into `out`; NaN before `period`.

    Requires ``1 <= period < close.size`` (checked by the caller).
    """
    n = close.size
    ag, al = _seed_averages(close, period, out)
    for t in range(period):
        out[t] = np.nan
    out[period] = _rsi_value(ag, al)
    p1 = period - 1
    for t in range(period + 1, n):
        d = close[t] - close[t - 1]
        ag = (ag * p1 + _gain(d)) / period
        al = (al * p1 + _loss(d)) / period
        out[t] = _rsi_value(ag, al)


@njit(cache=CACHE, nogil=True)
def below_above_rows_kernel(x, rows, below, above, is_below, is_above):
    """For each r: is_below[rows[r]] = x < below[r] and is_above[rows[r]] = x > above[r] (2-D bool outputs):
    many threshold pairs on one indicator in one call (an RSI grid's signals)."""
    for r in range(rows.size):
        j = rows[r]
        lo = below[r]
        hi = above[r]
        for t in range(x.size):
            v = x[t]
            is_below[j, t] = v < lo
            is_above[j, t] = v > hi


@njit(cache=CACHE, nogil=True)
def _rolling_mean_std(x, period, mean, std):
    """TA-Lib's SMA of `x` into `mean` and, if ``std.size``, its BBANDS deviation into `std`.

    NaN before index period - 1. The mean is TA-Lib's running sum (add the new
    value, divide, subtract the leaving one). The deviation is TA-Lib's
    population standard deviation of the window: running sums of the values
    minus a shift (the first window's first value, later a window mean),
    reseeded from the window when cancellation would lose digits or every
    32 windows; after a reseed a variance below 1e-12 of the mean shifted
    square is exactly 0.
    """
    n = x.size
    with_std = std.size > 0
    first = period - 1
    for t in range(min(first, n)):
        mean[t] = np.nan
        if with_std:
            std[t] = np.nan
    if n <= first:
        return
    inv = 1.0 / period
    shift = x[0]
    total = 0.0
    total1 = 0.0
    total2 = 0.0
    for j in range(first):
        total += x[j]
        if with_std:
            d = x[j] - shift
            total1 += d
            total2 += d * d
    trailing = 0
    countdown = _RESEED_WINDOWS * period
    for t in range(first, n):
        v = x[t]
        total += v
        mean[t] = total / period
        total -= x[trailing]
        if with_std:
            d = v - shift
            total1 += d
            total2 += d * d
            m1 = total1 * inv
            variance = total2 * inv - m1 * m1
            d = x[trailing] - shift
            total1 -= d
            d = d * d
            total2 -= d
            countdown -= 1
            if variance < _RESEED_RATIO * (total2 * inv) or d > _RESEED_DROP * total2 or countdown <= 0:
                countdown = _RESEED_WINDOWS * period
                s = 0.0
                for j in range(trailing, t + 1):
                    s += x[j]
                shift = s * inv
                total1 = 0.0
                total2 = 0.0
                for j in range(trailing, t + 1):
                    d = x[j] - shift
                    total1 += d
                    total2 += d * d
                m1 = total1 * inv
                variance = total2 * inv - m1 * m1
                if variance < _VARIANCE_FLOOR * (total2 * inv):
                    variance = 0.0
                d = x[trailing] - shift
                total1 -= d
                total2 -= d * d
            std[t] = math.sqrt(variance) if variance != 0.0 else 0.0
        trailing += 1


@njit(cache=CACHE, nogil=True)
def _ema(x, first, period, out):
    """TA-Lib's EMA of `x` into `out`, its first value at index `first`; NaN before.

    The seed is the mean of the `period` values ending at `first` (summed in
    order from 0.0), then ``prev = (x - prev) * k + prev`` with
    k = 2 / (period + 1), the multiply-add fused (one rounding) as TA-Lib 0.8
    does it. Period 1 copies x, as TA-Lib does. Requires
    ``first >= period - 1``; all NaN when ``first >= x.size``.
    """
    n = x.size
    for t in range(min(first, n)):
        out[t] = np.nan
    if first >= n:
        return
    if period == 1:
        for t in range(first, n):
            out[t] = x[t]
        return
    k = 2.0 / (period + 1)
    total = 0.0
    for j in range(first - period + 1, first + 1):
        total += x[j]
    prev = total / period
    out[first] = prev
    for t in range(first + 1, n):
        prev = _fma(x[t] - prev, k, prev)
        out[t] = prev


@njit(cache=CACHE, nogil=True)
def _rolling_extreme(x, period, is_max, out):
    """Max (`is_max`) or min of the `period` values ending at each t into `out`; NaN before.

    TA-Lib's MAX/MIN scan: keep the extreme and its index, rescan the window
    only when the extreme has left it.
    """
    n = x.size
    first = period - 1
    for t in range(min(first, n)):
        out[t] = np.nan
    sign = 1.0 if is_max else -1.0  # -a > -b exactly when a < b
    best_idx = -1
    best = 0.0
    for t in range(first, n):
        trailing = t - first
        v = x[t]
        if best_idx < trailing:
            best_idx = trailing
            best = x[trailing]
            for i in range(trailing + 1, t + 1):
                v = x[i]
                if sign * v > sign * best:
                    best_idx = i
                    best = v
        elif sign * v >= sign * best:
            best_idx = t
            best = v
        out[t] = best


# ---------------------------------------------------------------- wrappers


def check_period(period: object, name: str = "period") -> int:
    """`period` as a Python int, or ValueError unless it is a positive integer (not a bool)."""
    if type(period) is int and period >= 1:  # the common case first
        return period
    if isinstance(period, (bool, np.bool_)) or not isinstance(period, (int, np.integer)) or period < 1:
        raise ValueError(f"{name} must be a positive integer, got {period!r}")
    return int(period)


def _series(values: object) -> np.ndarray:
    """`values` as the kernels' array type; ValueError unless 1-D."""
    arr = as_kernel_array(values)
    if arr.ndim != 1:
        raise ValueError(f"an indicator needs a 1-D series, got shape {arr.shape}")
    return arr


def rsi(close: np.ndarray, period: int) -> np.ndarray:
    """Wilder RSI = talib.RSI; NaN for the first `period` bars, all NaN if len < period + 1."""
    period = check_period(period)
    x = _series(close)
    out = np.empty(x.size)
    if x.size <= period:
        out.fill(np.nan)
    else:
        rsi_kernel(x, period, out)
    return out


def rsi_crossings(close: np.ndarray, period: int, below: float, above: float) -> tuple[np.ndarray, np.ndarray]:
    """(rsi(close, period) < below, rsi(close, period) > above); all False if too short."""
    values = rsi(close, period)
    is_below = np.empty((1, values.size), dtype=np.bool_)
    is_above = np.empty((1, values.size), dtype=np.bool_)
    below_above_rows_kernel(values, np.zeros(1, dtype=np.int64), np.array([float(below)]), np.array([float(above)]),
                            is_below, is_above)
    return is_below[0], is_above[0]


def sma(x: np.ndarray, period: int) -> np.ndarray:
    """Simple moving average = talib.SMA; NaN for the first period - 1 values."""
    period = check_period(period)
    arr = _series(x)
    out = np.empty(arr.size)
    _rolling_mean_std(arr, period, out, np.empty(0))
    return out


def ema(x: np.ndarray, period: int) -> np.ndarray:
    """Exponential moving average = talib.EMA (k = 2 / (period + 1), SMA seed); NaN for period - 1 values."""
    period = check_period(period)
    arr = _series(x)
    out = np.empty(arr.size)
    _ema(arr, period - 1, period, out)
    return out


def macd(close: np.ndarray, fast: int, slow: int, signal: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(macd_line, signal_line, histogram) = talib.MACD(close, fast, slow, signal).

    macd_line = EMA(fast) - EMA(slow), both starting at index slow - 1 (the
    fast EMA is seeded with the mean of the `fast` values ending there);
    signal_line = EMA(signal) of macd_line; histogram = macd_line - signal_line.
    As in TA-Lib, fast and slow are swapped if fast > slow, and all three are
    NaN before index slow + signal - 2.
    """
    fast = check_period(fast, "fast")
    slow = check_period(slow, "slow")
    signal = check_period(signal, "signal")
    if slow < fast:
        fast, slow = slow, fast
    arr = _series(close)
    n = arr.size
    fast_line = np.empty(n)
    slow_line = np.empty(n)
    _ema(arr, slow - 1, fast, fast_line)
    _ema(arr, slow - 1, slow, slow_line)
    macd_line = fast_line - slow_line
    signal_line = fast_line  # reused as the output buffer
    start = slow - 1 + signal - 1
    _ema(macd_line, start, signal, signal_line)
    macd_line[:start] = np.nan
    return macd_line, signal_line, macd_line - signal_line


def bbands(close: np.ndarray, period: int, num_std: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(upper, middle, lower) = talib.BBANDS(close, period, num_std, num_std, matype=SMA).

    middle = SMA(period); upper/lower = middle +/- num_std * population
    standard deviation of the window (TA-Lib's algorithm); NaN for the first
    period - 1 values. `num_std` must be a finite number >= 0.
    """
    period = check_period(period)
    if isinstance(num_std, (bool, np.bool_)) or not isinstance(num_std, (int, float, np.integer, np.floating)):
        raise ValueError(f"num_std must be a number, got {num_std!r}")
    num_std = float(num_std)
    if not (math.isfinite(num_std) and num_std >= 0.0):
        raise ValueError(f"num_std must be finite and >= 0, got {num_std!r}")
    arr = _series(close)
    middle = np.empty(arr.size)
    deviation = np.empty(arr.size)
    _rolling_mean_std(arr, period, middle, deviation)
    deviation *= num_std
    return middle + deviation, middle, middle - deviation


def rolling_max(x: np.ndarray, period: int) -> np.ndarray:
    """Max of the `period` values ending at each t (inclusive) = talib.MAX; NaN for period - 1 values."""
    period = check_period(period)
    arr = _series(x)
    out = np.empty(arr.size)
    _rolling_extreme(arr, period, True, out)
    return out


def rolling_min(x: np.ndarray, period: int) -> np.ndarray:
    """Min of the `period` values ending at each t (inclusive) = talib.MIN; NaN for period - 1 values."""
    period = check_period(period)
    arr = _series(x)
    out = np.empty(arr.size)
    _rolling_extreme(arr, period, False, out)
    return out


# ------------------------------------------------- RSI as the engine uses it


def check_rsi_period(period: object) -> int:
    """`period` as an int, or ValueError unless it is a positive integer."""
    if isinstance(period, bool) or int(period) != period or period < 1:
        raise ValueError(f"RSI period must be a positive integer, got {period!r}")
    return int(period)


def compute_rsi(close: np.ndarray, period: int = 14) -> np.ndarray:
    """Wilder's RSI as TA-Lib computes it; NaN during the `period`-bar warm-up.

    The first averages are the (numpy-summed) mean of the first `period`
    gains/losses; then avg = (avg * (period - 1) + x) / period. RSI is
    100 * avg_gain / (avg_gain + avg_loss), or 0 when both are 0. Raises
    InsufficientDataError with fewer than period + 1 prices (`rsi` returns
    all NaN instead). The recursion runs in the compiled `rsi_kernel`.
    """
    period = check_rsi_period(period)
    close = np.asarray(close, dtype=np.float64)
    n = close.size
    if close.ndim != 1:
        raise ValueError(f"RSI needs a 1-D price array, got shape {close.shape}")
    if n < period + 1:
        raise InsufficientDataError(
            f"RSI({period}) needs at least {period + 1} candles, got {n}"
        )
    out = np.empty(n, dtype=np.float64)
    rsi_kernel(as_kernel_array(close), period, out)
    return out
