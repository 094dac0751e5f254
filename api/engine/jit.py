"""Compile (or load from the on-disk cache) every numba kernel up front.

The engine's inner loops (indicators, simulator, metrics) are numba functions compiled
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

__all__ = ["warm_up"]


def warm_up() -> float:
    """Compile or cache-load every kernel: one tiny run of every strategy under both executions, stops on
    (single and grid paths).

    Idempotent; after the first call in a process it returns almost at once.
    Seconds taken.
    """
    from .backtest import run_backtest, run_settings
    from .candles import make_candles
    from .metrics import buy_and_hold_curve
    from .resampling import bootstrap_stats, resample_trades
    from .indicators import bbands, ema, macd, rolling_max, rolling_min, rsi, sma
    from .strategies import CATALOG

    started = time.perf_counter()
    n = 64
    t = np.arange(n, dtype=np.float64)
    close = 100.0 + 10.0 * np.sin(t / 3.0)
    candles = make_candles(close, close * 1.01, close * 0.99, close, np.ones(n), (t * 1800).astype(np.int64), 1800)
    for indicator in (lambda x: rsi(x, 14), lambda x: sma(x, 5), lambda x: ema(x, 5),
                      lambda x: macd(x, 3, 6, 2), lambda x: bbands(x, 5, 2.0), lambda x: rolling_max(x, 5),
                      lambda x: rolling_min(x, 5)):
        indicator(close)  # the indicators alone too (compute_rsi, peers, notebooks)
    for spec in CATALOG:
        params = {**spec.defaults(), "stop_loss_pct": 5.0, "take_profit_pct": 5.0, "trailing_stop_pct": 3.0}
        for p in spec.own_parameters:  # short look-backs so 64 candles give signals
            if p.type == "integer" and "period" in p.name:
                params[p.name] = {"fast_period": 3, "slow_period": 6}.get(p.name, 4)
        for execution in ("close", "next_open"):
            run_backtest(spec, candles, {**params, "execution": execution}, 17520.0)
        run_settings(spec, candles, [params, {**params, "execution": "next_open"}], 17520.0)  # the grid path
    bootstrap_stats(CATALOG[0], candles, CATALOG[0].defaults(), 17520.0, 5, 0, 0, 1)  # Monte Carlo
    resample_trades(np.array([1.0, -1.0]), 0, 0, 1)
    buy_and_hold_curve(close, 1000.0, 0.001)  # a single backtest's curve (the array form of hold_value)
    return time.perf_counter() - started
