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
