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
for the cache directory to use when the package is read-only).

Callers must pass float64 arrays (C-contiguous and aligned, to avoid extra
specialisations) and Python ints/floats for scalars; the public wrappers in
`indicators` and `strategies` take care of that.
"""

import math

import numpy as np
from numba import njit

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

# numpy's pairwise-summation block size (PW_BLOCKSIZE in loops_utils.h).
_PW_BLOCKSIZE = 128


@njit(cache=True, nogil=True)
def _block_sum(a, start, n):
    """numpy's pairwise_sum leaf (n <= 128): 8 interleaved accumulators."""
    if n < 8:
        res = -0.0
        for i in range(start, start + n):
            res += a[i]
        return res
    r0 = a[start]
    r1 = a[start + 1]
    r2 = a[start + 2]
    r3 = a[start + 3]
    r4 = a[start + 4]
    r5 = a[start + 5]
    r6 = a[start + 6]
    r7 = a[start + 7]
    stop = start + n - n % 8
    i = start + 8
    while i < stop:
        r0 += a[i]
        r1 += a[i + 1]
        r2 += a[i + 2]
        r3 += a[i + 3]
        r4 += a[i + 4]
        r5 += a[i + 5]
        r6 += a[i + 6]
        r7 += a[i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < start + n:
        res += a[i]
        i += 1
    return res


@njit(cache=True, nogil=True)
def pairwise_sum(a, start, n):
    """Sum of a[start:start+n] exactly as numpy's float64 ``add.reduce`` does.

    numpy sums contiguous float64 data with 8 interleaved accumulators in
    blocks of at most 128 values and splits longer runs in two (the first
    part a multiple of 8 near half), adding the two partial sums. Reproducing
    that order makes the result bit-identical to ``a[start:start+n].sum()``
    (``0.0 + pairwise_sum(...)``, numpy adds its 0.0 identity first).

    numpy recurses; this walks the same tree with explicit stacks, because
    numba's on-disk cache cannot hold recursive functions (numba#6061).
    """
    if n <= _PW_BLOCKSIZE:
        return _block_sum(a, start, n)
    # Depth-first walk of the split tree. Each frame is a run still to be
    # summed; stage 0 = split it, 1 = its two halves are on the value stack.
    f_start = np.empty(64, dtype=np.int64)
    f_n = np.empty(64, dtype=np.int64)
    f_stage = np.empty(64, dtype=np.int64)
    values = np.empty(64, dtype=np.float64)
    top = 0
    nvals = 0
    f_start[0] = start
    f_n[0] = n
    f_stage[0] = 0
    while top >= 0:
        s = f_start[top]
        m = f_n[top]
        if m <= _PW_BLOCKSIZE:
            values[nvals] = _block_sum(a, s, m)
            nvals += 1
            top -= 1
        elif f_stage[top] == 0:
            f_stage[top] = 1
            m2 = m // 2
            m2 -= m2 % 8
            # push the right half first so the left one is summed first
            f_start[top + 1] = s + m2
            f_n[top + 1] = m - m2
            f_stage[top + 1] = 0
            f_start[top + 2] = s
            f_n[top + 2] = m2
            f_stage[top + 2] = 0
            top += 2
        else:
            nvals -= 1
            values[nvals - 1] = values[nvals - 1] + values[nvals]
            top -= 1
    return values[0]


@njit(cache=True, nogil=True)
def _gain(d):
    # np.maximum(d, 0.0): NaN propagates, like the numpy formulation.
    return 0.0 if d <= 0.0 else d


@njit(cache=True, nogil=True)
def _loss(d):
    # np.maximum(-d, 0.0)
    return 0.0 if d >= 0.0 else -d


@njit(cache=True, nogil=True)
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


@njit(cache=True, nogil=True)
def _rsi_value(ag, al):
    total = ag + al
    if total != 0.0:
        return 100.0 * ag / total
    return 0.0


@njit(cache=True, nogil=True)
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


@njit(cache=True, nogil=True)
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
    `compute_metrics`, with the same float operations in the same order.
    `trade_idx`/`trade_val` need (n - period) // 2 + 1 rows.
    """
    n = close.size
    keep = 1.0 - fee_rate
    c0 = close[0]
    if not (c0 > 0.0 and c0 < np.inf):
        return -1

    # ---- warm-up bars: no RSI yet, so no signal; the cash just sits there.
    for t in range(1, period + 1):
        x = close[t]
        if not (x > 0.0 and x < np.inf):
            return -1
    ag, al = _seed_averages(close, period, rsi)
    cash = initial
    for t in range(period):
        rsi[t] = np.nan
        equity[t] = cash

    # ---- trading bars: RSI, fills, equity, trades in one pass.
    p1 = period - 1
    units = 0.0
    entry_value = 0.0
    entry_bar = -1
    long = False
    k = 0
    long_bars = 0
    for t in range(period, n):
        price = close[t]
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
            entry_value = cash
            units = cash * keep / price
            cash = 0.0
            entry_bar = t
            trade_val[k, T_ENTRY_PRICE] = price
            trade_val[k, T_UNITS] = units
            trade_val[k, T_ENTRY_VALUE] = entry_value
            long = True
        if long:
            equity[t] = units * price
            long_bars += 1
        else:
            equity[t] = cash
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
    hold_value = initial * keep / c0 * close[n - 1]
    stats[S_BUY_AND_HOLD] = (hold_value / initial - 1.0) * 100.0
    stats[S_NUM_TRADES] = closed
    stats[S_WIN_RATE] = wins / closed * 100.0 if closed > 0 else 0.0
    stats[S_EXPOSURE] = long_bars / n * 100.0
    stats[S_PROFIT_FACTOR] = gross_profit / gross_loss if gross_loss > 0.0 else np.nan
    stats[S_OPEN_POSITION] = 1.0 if long else 0.0
    _equity_stats(equity, bars_per_year, stats)
    return k


@njit(cache=True, nogil=True)
def _equity_stats(equity, bars_per_year, stats):
    """Max drawdown, Sharpe and Sortino exactly as `metrics` computes them."""
    n = equity.size
    # max drawdown over the running peak (None if any value is not finite)
    finite = True  # np.all(np.isfinite(equity))
    positive = True  # not np.any(equity[:-1] <= 0)
    peak = equity[0]
    mdd = 0.0
    for t in range(n):
        e = equity[t]
        if not (e - e == 0.0):
            finite = False
        if e <= 0.0 and t < n - 1:
            positive = False
        if e > peak:
            peak = e
        if peak > 0.0:
            dd = (peak - e) / peak
            if dd > mdd:
                mdd = dd
    stats[S_MAX_DRAWDOWN] = mdd * 100.0 if finite else np.nan

    stats[S_SHARPE] = np.nan
    stats[S_SORTINO] = np.nan
    if n < 2 or not positive:
        return
    m = n - 1
    work = np.empty(m)
    for i in range(m):
        r = equity[i + 1] / equity[i] - 1.0
        if not (r - r == 0.0):
            return
        work[i] = r
    scale = math.sqrt(bars_per_year)
    mean = (0.0 + pairwise_sum(work, 0, m)) / m
    if m >= 2:
        # numpy's var: sum((r - mean)**2) / (m - 1), then sqrt
        dev = np.empty(m)
        for i in range(m):
            x = work[i] - mean
            dev[i] = x * x
        std = math.sqrt((0.0 + pairwise_sum(dev, 0, m)) / (m - 1))
        if std > 0.0:
            stats[S_SHARPE] = mean / std * scale
    for i in range(m):
        x = min(work[i], 0.0)
        work[i] = x * x
    downside = math.sqrt((0.0 + pairwise_sum(work, 0, m)) / m)
    if downside > 0.0:
        stats[S_SORTINO] = mean * scale / downside
