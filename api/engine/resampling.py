"""Monte Carlo resampling for robustness (issue 12): trade returns with replacement, and candles by moving blocks.

Pure numpy, no I/O. Every random draw comes from one generator per path, made
from its own `numpy.random.SeedSequence` (`path_seeds`), so a result depends
only on the seed, the crypto and the path index: never on how many workers ran
it, or in which order.

* `resample_trades`: each path draws as many closed-trade returns as there are,
  with replacement, and compounds them. A permutation would not do: a product
  of the same returns in another order ends at the same value, so its final
  return could not vary.
* `block_bootstrap`: a moving-block bootstrap of the candles' log returns. Each
  bar carries its open, high and low relative to its close, so a synthetic
  path keeps every candle's shape; it starts at the first close, has the
  original length and times, and with `block_bars` >= the number of returns
  (candles - 1) it is the original series (to rounding). It keeps the return
  distribution and short-range dependence (within a block), not regime changes.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .candles import Candles, make_candles


def path_seeds(seed: int, crypto_key: int, paths: int) -> list[np.random.SeedSequence]:
    """One independent SeedSequence per path, spawned from (seed, crypto_key): the same at any worker count."""
    return np.random.SeedSequence(int(seed), spawn_key=(int(crypto_key),)).spawn(int(paths))


def resample_trades(returns_pct: np.ndarray, seeds: Sequence[np.random.SeedSequence]) -> tuple[np.ndarray, np.ndarray]:
    """(final return %, max drawdown %) of each path: len(returns) draws with replacement, compounded.

    The drawdown is measured on the compounded trade-by-trade equity, from a
    start of 1 (the initial cash). No trades: every path is 0 % and 0 %.
    """
    r = np.asarray(returns_pct, dtype=np.float64) / 100.0
    k = r.size
    if k == 0:
        return np.zeros(len(seeds)), np.zeros(len(seeds))
    draws = np.empty((len(seeds), k), dtype=np.int64)
    for i, ss in enumerate(seeds):
        draws[i] = np.random.default_rng(ss).integers(0, k, size=k)
    equity = np.cumprod(1.0 + r[draws], axis=1)
    final = (equity[:, -1] - 1.0) * 100.0
    peaks = np.maximum.accumulate(np.concatenate([np.ones((len(seeds), 1)), equity], axis=1), axis=1)[:, 1:]
    drawdown = ((peaks - equity) / peaks).max(axis=1) * 100.0
    return final, drawdown


def block_bootstrap(candles: Candles, block_bars: int, seed: np.random.SeedSequence) -> Candles:
    """A synthetic path of `candles` by a moving-block bootstrap of its log returns (see the module docstring).

    Blocks of `block_bars` consecutive returns start at uniform positions
    (0 .. returns - block_bars) and are laid end to end, the last cut to fit.
    Needs at least 2 candles and block_bars >= 1 (ValueError otherwise).
    """
    close = candles.close
    n = close.size
    if n < 2:
        raise ValueError("a bootstrap needs at least 2 candles")
    block = int(block_bars)
    if block < 1:
        raise ValueError(f"block_bars must be at least 1, got {block_bars}")
    returns = n - 1
    block = min(block, returns)
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, returns - block + 1, size=-(-returns // block))
    source = (starts[:, None] + np.arange(block)[None, :]).ravel()[:returns]  # the return each new bar copies
    log_returns, ratios = candles.indicator(("bootstrap source",), lambda: _source(candles))  # once per crypto
    new_close = np.empty(n)
    new_close[0] = close[0]
    new_close[1:] = close[0] * np.exp(np.cumsum(log_returns[source]))
    bars = np.empty(n, dtype=np.int64)
    bars[0] = 0
    bars[1:] = source + 1

    def carried(name: str) -> np.ndarray | None:
        return None if ratios[name] is None else new_close * ratios[name][bars]

    volume = None if candles.volume is None else candles.volume[bars]
    return make_candles(carried("open"), carried("high"), carried("low"), new_close, volume,
                        candles.time, candles.interval_seconds, candles.first_time, candles.last_time)


def _source(candles: Candles) -> tuple[np.ndarray, dict[str, np.ndarray | None]]:
    """The log returns of the closes and each bar's open, high and low over its close, computed once."""
    close = candles.close
    ratios = {name: None if getattr(candles, name) is None else getattr(candles, name) / close
              for name in ("open", "high", "low")}
    return np.log(close[1:] / close[:-1]), ratios
