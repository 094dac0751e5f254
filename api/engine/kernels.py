"""Compiled (numba) inner loops of the engine.

Everything here is plain float arithmetic in a fixed order, with no fastmath,
so the results are bit-identical to the numpy/Python formulation they replace:

* sums that numpy computes (``ndarray.sum``/``mean``/``std``) use
  `pairwise_sum`, a copy of numpy's own pairwise summation, so statistics match
  `metrics.compute_metrics` exactly, not just to rounding;
* the RSI recursion keeps TA-Lib's ``(avg * (p - 1) + x) / p`` order.

The kernels take preallocated output arrays and return small integers/flags,
so a call allocates nothing on the Python side beyond the outputs. They are
compiled on first use and cached on disk (see `api.engine.jit` for warm-up and
for the cache directory to use when the package is read-only). Where numba
finds no writable cache directory at all, the kernels are still defined, just
without the disk cache (each process compiles them once; a warning says so),
rather than making the engine unimportable.

Callers must pass float64 arrays (C-contiguous and aligned, to avoid extra
specialisations) and Python ints/floats for scalars; the public wrappers in
`indicators` and `strategies` take care of that.
"""

import math
import numpy as np
from numba import njit


from .numeric import _PW_STACK, CACHE, _pairwise_sum_into, pairwise_sum  # noqa: F401

# Columns of the float trade table filled by `rsi_strategy_kernel`.
T_ENTRY_PRICE, T_EXIT_PRICE, T_UNITS, T_ENTRY_VALUE, T_EXIT_VALUE, T_PNL, T_RETURN_PCT = range(7)
TRADE_COLUMNS = 7

# Slots of the stats array filled by `rsi_strategy_kernel` (NaN means "None").
(
    S_TOTAL_RETURN,
    S_FINAL_VALUE,
    S_BUY_AND_HOLD,
    S_NUM_TRADES,
    S_WIN_RATE,
    S_MAX_DRAWDOWN,
    S_SHARPE,
    S_SORTINO,
    S_EXPOSURE,
    S_PROFIT_FACTOR,
    S_OPEN_POSITION,
) = range(11)
STATS_SIZE = 11

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
def rsi_strategy_kernel(
    close, period, oversold, overbought, initial, fee_rate, bars_per_year,
    rsi, equity, trade_idx, trade_val, stats,
):
    """The whole RSI buy/sell backtest in one pass over the bars, plus metrics.

    Fills `rsi` and `equity` (length n), the first k rows of `trade_idx`
    (entry, exit bar; exit -1 while open) and `trade_val` (T_* columns), and
    `stats` (S_* slots, NaN where the metric is None). Returns k, or -1 when a
    price is not finite and > 0 (outputs are then meaningless).

    Semantics are those of `compute_rsi` -> `simulate_long_only` ->
    `compute_metrics`, with the same float operations in the same order, so
    every number is bit-identical to that path. `trade_idx`/`trade_val` need
    (n - period) // 2 + 1 rows. Requires 1 <= period < n.
    """
    n = close.size
    keep = 1.0 - fee_rate
    for t in range(period + 1):
        x = close[t]
        if not (x > 0.0 and x < np.inf):
            return -1
    ag, al = _seed_averages(close, period, rsi)
    p1 = period - 1

    # Simulation state.
    cash = initial
    units = 0.0
    entry_bar = -1
    long = False
    k = 0
    long_bars = 0
    # Equity-curve statistics, accumulated bar by bar:
    # returns[t-1] = equity[t] / equity[t-1] - 1 (numpy's `returns`);
    returns = np.empty(max(n - 1, 1))
    finite = True  # np.all(np.isfinite(equity))
    positive = True  # not np.any(equity[:-1] <= 0)
    returns_finite = True
    # Max drawdown: within a run of bars sharing the same running peak,
    # (peak - e) / peak is largest at the run's lowest e (subtraction and
    # division round monotonically), so one division per run gives exactly
    # max((peak - e) / peak) over all bars.
    peak = initial
    run_low = initial
    mdd = 0.0
    prev = initial

    for t in range(n):
        price = close[t]
        if t >= period:
            if t > period:
                if not (price > 0.0 and price < np.inf):
                    return -1
                d = price - close[t - 1]
                ag = (ag * p1 + _gain(d)) / period
                al = (al * p1 + _loss(d)) / period
            r = _rsi_value(ag, al)
            rsi[t] = r
            if long:
                if r > overbought:
                    cash = units * price * keep
                    trade_idx[k, 0] = entry_bar
                    trade_idx[k, 1] = t
                    trade_val[k, T_EXIT_PRICE] = price
                    trade_val[k, T_EXIT_VALUE] = cash
                    k += 1
                    units = 0.0
                    long = False
            elif r < oversold:
                trade_val[k, T_ENTRY_VALUE] = cash
                units = cash * keep / price
                cash = 0.0
                entry_bar = t
                trade_val[k, T_ENTRY_PRICE] = price
                trade_val[k, T_UNITS] = units
                long = True
        else:
            rsi[t] = np.nan

        # equity = cash + units * close, where one of the two terms is 0
        if long:
            e = units * price
            long_bars += 1
        else:
            e = cash
        equity[t] = e

        if not (e - e == 0.0):
            finite = False
        if t > 0:
            if prev <= 0.0:
                positive = False
                ret = 0.0
            elif e == prev and e < np.inf:
                ret = 0.0  # x / x - 1 is exactly 0
            else:
                ret = e / prev - 1.0
                if not (ret - ret == 0.0):
                    returns_finite = False
            returns[t - 1] = ret
        prev = e
        if e > peak:
            if peak > 0.0:
                dd = (peak - run_low) / peak
                if dd > mdd:
                    mdd = dd
            peak = e
            run_low = e
        elif e < run_low:
            run_low = e
    if peak > 0.0:
        dd = (peak - run_low) / peak
        if dd > mdd:
            mdd = dd

    closed = k
    if long:
        trade_idx[k, 0] = entry_bar
        trade_idx[k, 1] = -1
        trade_val[k, T_EXIT_PRICE] = np.nan
        trade_val[k, T_EXIT_VALUE] = units * close[n - 1]
        k += 1

    # ---- per-trade P&L and the trade statistics (closed trades only).
    gross_profit = 0.0
    gross_loss_sum = 0.0
    wins = 0
    for j in range(k):
        ev = trade_val[j, T_ENTRY_VALUE]
        pnl = trade_val[j, T_EXIT_VALUE] - ev
        trade_val[j, T_PNL] = pnl
        trade_val[j, T_RETURN_PCT] = pnl / ev * 100.0 if ev != 0.0 else 0.0
        if j < closed:
            if pnl > 0.0:
                gross_profit += pnl
                wins += 1
            elif pnl < 0.0:
                gross_loss_sum += pnl
    gross_loss = -gross_loss_sum

    final_value = equity[n - 1]
    stats[S_TOTAL_RETURN] = (final_value / initial - 1.0) * 100.0
    stats[S_FINAL_VALUE] = final_value
    hold_value = initial * keep / close[0] * close[n - 1]
    stats[S_BUY_AND_HOLD] = (hold_value / initial - 1.0) * 100.0
    stats[S_NUM_TRADES] = closed
    stats[S_WIN_RATE] = wins / closed * 100.0 if closed > 0 else 0.0
    stats[S_MAX_DRAWDOWN] = mdd * 100.0 if finite else np.nan
    stats[S_EXPOSURE] = long_bars / n * 100.0
    stats[S_PROFIT_FACTOR] = gross_profit / gross_loss if gross_loss > 0.0 else np.nan
    stats[S_OPEN_POSITION] = 1.0 if long else 0.0
    stats[S_SHARPE] = np.nan
    stats[S_SORTINO] = np.nan
    if n >= 2 and positive and returns_finite:
        _return_ratios(returns, n - 1, bars_per_year, stats)
    return k


@njit(cache=CACHE, nogil=True)
def _return_ratios(returns, m, bars_per_year, stats):
    """Sharpe and Sortino of m > 0 finite per-bar returns, as `metrics` does.

    mean = returns.mean(); std = returns.std(ddof=1) (two-pass: sum of squared
    deviations from the mean); downside = sqrt(mean(min(r, 0)**2)); all sums
    in numpy's pairwise order. Overwrites `returns`.
    """
    scale = math.sqrt(bars_per_year)
    frames = np.empty((3, _PW_STACK), dtype=np.int64)
    values = np.empty(_PW_STACK)
    mean = (0.0 + _pairwise_sum_into(returns, 0, m, frames, values)) / m
    squares = np.empty(m)
    for i in range(m):
        r = returns[i]
        x = r - mean
        squares[i] = x * x
        y = min(r, 0.0)
        returns[i] = y * y
    if m >= 2:
        std = math.sqrt((0.0 + _pairwise_sum_into(squares, 0, m, frames, values)) / (m - 1))
        if std > 0.0:
            stats[S_SHARPE] = mean / std * scale
    downside = math.sqrt((0.0 + _pairwise_sum_into(returns, 0, m, frames, values)) / m)
    if downside > 0.0:
        stats[S_SORTINO] = mean * scale / downside
