"""Technical indicators, matching TA-Lib so results agree with common tools."""

import numpy as np

from .errors import InsufficientDataError
from .kernels import rsi_kernel


def check_rsi_period(period: object) -> int:
    """`period` as an int, or ValueError unless it is a positive integer."""
    if isinstance(period, bool) or int(period) != period or period < 1:
        raise ValueError(f"RSI period must be a positive integer, got {period!r}")
    return int(period)


def kernel_array(values: np.ndarray) -> np.ndarray:
    """`values` as a C-contiguous, aligned float64 array (copied only if needed).

    Keeps the compiled kernels to the few array types that `jit.warm_up`
    compiles (writable or read-only contiguous float64).
    """
    arr = np.asarray(values, dtype=np.float64)
    flags = arr.flags
    if not (flags.c_contiguous and flags.aligned):
        arr = np.array(arr, dtype=np.float64, order="C")
    return arr


def compute_rsi(close: np.ndarray, period: int = 14) -> np.ndarray:
    """Wilder's RSI as TA-Lib computes it; NaN during the `period`-bar warm-up.

    The first averages are the (numpy-summed) mean of the first `period`
    gains/losses; then avg = (avg * (period - 1) + x) / period. RSI is
    100 * avg_gain / (avg_gain + avg_loss), or 0 when both are 0. The
    sequential recursion runs in a compiled kernel (`kernels.rsi_kernel`).
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
    rsi_kernel(kernel_array(close), period, out)
    return out


# ---- TEMPORARY stand-ins until the TA-Lib-exact kernels land (replaced wholesale) ----
def rsi(close, period):
    close = kernel_array(close)
    out = np.full(close.size, np.nan)
    if close.size > period:
        rsi_kernel(close, period, out)
    return out


def sma(x, period):
    x = kernel_array(x)
    out = np.full(x.size, np.nan)
    if x.size >= period:
        c = np.cumsum(np.r_[0.0, x])
        out[period - 1:] = (c[period:] - c[:-period]) / period
    return out


def ema(x, period, start=None):
    x = kernel_array(x)
    out = np.full(x.size, np.nan)
    s = period - 1 if start is None else start
    if x.size > s:
        k = 2.0 / (period + 1)
        prev = x[s - period + 1:s + 1].mean()
        out[s] = prev
        for t in range(s + 1, x.size):
            prev = (x[t] - prev) * k + prev
            out[t] = prev
    return out


def macd(close, fast, slow, signal):
    close = kernel_array(close)
    f = ema(close, fast, start=slow - 1)
    s = ema(close, slow)
    line = f - s
    sig = np.full(close.size, np.nan)
    if close.size >= slow + signal - 1:
        sig[slow - 1:] = ema(line[slow - 1:], signal)
    line[: slow + signal - 2] = np.nan
    return line, sig, line - sig


def bbands(close, period, num_std):
    close = kernel_array(close)
    mid = sma(close, period)
    sq = sma(close * close, period)
    std = np.sqrt(np.maximum(sq - mid * mid, 0.0))
    return mid + num_std * std, mid, mid - num_std * std


def rolling_max(x, period):
    x = kernel_array(x)
    out = np.full(x.size, np.nan)
    if x.size >= period:
        out[period - 1:] = np.lib.stride_tricks.sliding_window_view(x, period).max(axis=1)
    return out


def rolling_min(x, period):
    x = kernel_array(x)
    out = np.full(x.size, np.nan)
    if x.size >= period:
        out[period - 1:] = np.lib.stride_tricks.sliding_window_view(x, period).min(axis=1)
    return out
