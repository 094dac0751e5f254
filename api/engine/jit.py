"""Compile (or load from the on-disk cache) every numba kernel up front.

The engine's inner loops (`api.engine.kernels`, `api.engine.indicators`) are numba functions compiled
on first call. Compiling them all takes a few seconds; loading them from
numba's on-disk cache takes a fraction of a second. Call `warm_up()` once per
process - at server start and in every pool worker - so no request pays for
either.

Cache location: numba writes the compiled code next to the source, in
``api/engine/__pycache__``. When that directory is read-only (e.g. a Docker
image whose code belongs to root while the server runs as another user), set
the environment variable ``NUMBA_CACHE_DIR`` to a directory that the server's
user can write, before the process starts (numba reads it at import). Without
it numba falls back to a per-user cache (``~/.cache/numba``); if that is not
writable either, the kernels still work but without a disk cache, so every
process compiles them in `warm_up()` (seconds) and a RuntimeWarning says so.
numba only uses a cache directory it can write to: to ship a warm cache in an
image, run ``python -c "import api.engine as e; e.warm_up()"`` at build time
with NUMBA_CACHE_DIR pointing at a directory then handed to the runtime user.
The cache is keyed on the source files' modification times and on the CPU,
and is rebuilt automatically when either changes.
"""

import time

import numpy as np

from . import indicators, kernels

__all__ = ["warm_up"]


def _price_variants() -> list[np.ndarray]:
    """Tiny price series of each array type the engine passes to the kernels.

    Kernels are specialised per argument type; callers may hand over either
    writable or read-only (e.g. memory-mapped or frozen demo) float64 arrays.
    """
    writable = np.array([10.0, 11.0, 10.5, 9.0, 9.5, 12.0, 11.0, 13.0], dtype=np.float64)
    read_only = writable.copy()
    read_only.setflags(write=False)
    return [writable, read_only]


def warm_up() -> float:
    """Compile or cache-load every kernel for every argument type; seconds taken.

    Idempotent and thread-safe; after the first call in a process it returns
    almost immediately.
    """
    started = time.perf_counter()
    period = 2
    for close in _price_variants():
        n = close.size
        out = np.empty(n, dtype=np.float64)
        kernels.rsi_kernel(close, period, out)
        rows = (n - period) // 2 + 1
        kernels.rsi_strategy_kernel(
            close, period, 30.0, 70.0, 1000.0, 0.001, 365.0,
            np.empty(n, dtype=np.float64), np.empty(n, dtype=np.float64),
            np.empty((rows, 2), dtype=np.int64),
            np.empty((rows, kernels.TRADE_COLUMNS), dtype=np.float64),
            np.empty(kernels.STATS_SIZE, dtype=np.float64),
        )
        kernels.pairwise_sum(close, 0, n)
    _warm_indicators(_price_variants()[0])
    return time.perf_counter() - started


def _warm_indicators(close: np.ndarray) -> None:
    """Each indicator kernel once, through its wrapper (so with the exact argument types it uses).

    The wrappers hand every kernel writable contiguous float64 (`as_kernel_array`),
    so one array type compiles each of them.
    """
    indicators.rsi(close, 2)
    indicators.sma(close, 2)  # _rolling_mean_std without the deviation
    indicators.bbands(close, 2, 2.0)  # _rolling_mean_std with it
    indicators.ema(close, 2)
    indicators.macd(close, 2, 3, 2)  # _ema on a series with a NaN warm-up
    indicators.rolling_max(close, 2)
    indicators.rolling_min(close, 2)
