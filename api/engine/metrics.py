"""The one metrics function: every statistic of a simulated run, for every strategy.

The formulas are DESIGN.md's ("Metrics" and "Strategies and execution"),
written out in the README. A metric without a value is None, never NaN,
Infinity or a sentinel. Sums that numpy would compute (means, standard
deviations) use numpy's pairwise order (`numeric.pairwise_sum`), so the
ratios are bit-identical to ``ndarray.mean``/``std``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from .candles import Candles
from .numeric import _PW_STACK, CACHE, _pairwise_sum_into
from .simulator import B_ENTRY, B_EXIT, Simulation, V_ENTRY_FEE, V_EXIT_FEE, V_PNL, V_RETURN_PCT


@dataclass(frozen=True)
class MetricSpec:
    """A metric's name, JSON type and meaning (published in the OpenAPI document and the README)."""

    name: str
    kind: str  # "number", "integer" or "boolean"
    description: str


METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("total_return", "number", "% = (final_value / initial_investment - 1) x 100"),
    MetricSpec("final_value", "number", "cash plus the open position at the last close"),
    MetricSpec("buy_and_hold_return", "number", "% of buying at the first close (paying the fee), "
                                                "valued at the last close"),
    MetricSpec("num_trades", "integer", "closed round trips"),
    MetricSpec("win_rate", "number", "% of closed round trips with pnl > 0 (0 when none)"),
    MetricSpec("max_drawdown", "number", "% largest peak-to-trough fall of the equity curve"),
    MetricSpec("sharpe_ratio", "number", "mean / std (ddof=1) of per-bar equity returns x sqrt(bars per year)"),
    MetricSpec("sortino_ratio", "number", "mean x sqrt(bars per year) / root mean square of min(return, 0)"),
    MetricSpec("exposure", "number", "% of bars at whose close a position is held"),
    MetricSpec("profit_factor", "number", "gross profit / gross loss of closed round trips"),
    MetricSpec("open_position", "boolean", "a position is still open at the last bar"),
    MetricSpec("total_fees", "number", "every fee paid, in quote currency (the open position's entry fee included)"),
    MetricSpec("cagr", "number", "% = ((final / initial)^(365 / days) - 1) x 100, null under 30 days"),
    MetricSpec("calmar_ratio", "number", "cagr / max_drawdown"),
    MetricSpec("sqn", "number", "sqrt(n) x mean(pnl) / std(pnl, ddof=1) over closed trades (null under 2)"),
    MetricSpec("avg_trade_return", "number", "mean return_pct % of closed trades"),
    MetricSpec("best_trade", "number", "highest return_pct % of a closed trade"),
    MetricSpec("worst_trade", "number", "lowest return_pct % of a closed trade"),
    MetricSpec("max_drawdown_duration", "integer", "longest run in bars from an equity peak to the first bar "
                                                   "back at or above it (or to the last bar)"),
    MetricSpec("avg_bars_held", "number", "mean bars_held of closed trades"),
)
METRIC_NAMES: tuple[str, ...] = tuple(m.name for m in METRICS)
_INTEGER = frozenset(m.name for m in METRICS if m.kind == "integer")
_SLOT = {name: i for i, name in enumerate(METRIC_NAMES)}
_OPEN = _SLOT["open_position"]
STATS_SIZE = len(METRICS)
MIN_CAGR_DAYS = 30.0


def compute_metrics(sim: Simulation, candles: Candles, bars_per_year: float) -> dict[str, float | int | bool | None]:
    """Every metric of one simulated run on `candles`."""
    stats = np.empty(STATS_SIZE)
    e = sim.execution
    metrics_kernel(candles.close, sim.equity, sim.trade_bars, sim.trade_values, sim.count, e.initial, e.fee_rate,
                   checked_bars_per_year(bars_per_year), span_days(candles), stats)
    return metrics_of(stats)


def checked_bars_per_year(bars_per_year: float) -> float:
    if not bars_per_year > 0:
        raise ValueError(f"bars_per_year must be positive, got {bars_per_year}")
    return float(bars_per_year)


def span_days(candles: Candles) -> float:
    """Days from the first to the last candle (fractional), the span cagr annualises over."""
    return float(candles.last_time - candles.first_time) / 86_400.0


def metrics_of(stats: np.ndarray) -> dict[str, float | int | bool | None]:
    """The metrics dict from `metrics_kernel`'s stats (NaN -> None, counts as int, the flag as bool)."""
    # `x - x == 0.0` is the cheapest finiteness test
    out = {name: (value if value - value == 0.0 else None) for name, value in zip(METRIC_NAMES, stats.tolist())}
    for name in _INTEGER:
        if out[name] is not None:
            out[name] = int(out[name])
    out["open_position"] = bool(stats[_OPEN] != 0.0)
    return out


@njit(cache=CACHE, nogil=True)
def hold_value(initial, fee_rate, first_close, close):
    """Buy and hold's value at `close` (a number, or an array for its curve): all cash bought at the first close,
    paying the fee, no exit fee. buy_and_hold_return is its value at the last close."""
    return initial * (1.0 - fee_rate) / first_close * close


def buy_and_hold_curve(close: np.ndarray, initial: float, fee_rate: float) -> np.ndarray:
    """Buy and hold's value at every close (the benchmark a chart draws beside the equity curve)."""
    close = np.ascontiguousarray(close, dtype=np.float64)
    return hold_value(float(initial), float(fee_rate), float(close[0]), close) if close.size else close.copy()


def drawdown_curve(equity: np.ndarray) -> np.ndarray:
    """% below the running peak at every bar, >= 0: (peak - equity) / peak x 100, 0 while the peak is not
    positive. Its largest value is max_drawdown (the kernel takes the same quotient at each run's low)."""
    equity = np.asarray(equity, dtype=np.float64)
    peak = np.maximum.accumulate(equity) if equity.size else equity
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(peak > 0.0, (peak - equity) / peak * 100.0, 0.0)


@njit(cache=CACHE, nogil=True)
def metrics_kernel(close, equity, trade_bars, trade_values, k, initial, fee_rate, bars_per_year, days, stats):
    """Fill `stats` in METRICS order (NaN = None) from the equity curve and the first k trades."""
    n = equity.size
    for i in range(stats.size):
        stats[i] = np.nan
    is_open = k > 0 and trade_bars[k - 1, B_EXIT] < 0
    closed = k - 1 if is_open else k

    # ---- the equity curve: finiteness, drawdown and its duration, per-bar returns
    returns = np.empty(max(n - 1, 1))
    finite = True  # np.all(np.isfinite(equity))
    positive = True  # not np.any(equity[:-1] <= 0)
    returns_finite = True
    # Within a run of bars sharing one running peak, (peak - e) / peak is largest at the
    # run's lowest e (subtraction and division round monotonically): one division per run.
    peak = equity[0]  # the curve's own first value, not the cash before it (an entry on bar 0 pays a fee)
    run_low = equity[0]
    mdd = 0.0
    prev = equity[0]
    # duration: from the last bar at the running peak to the first later bar back at or above it
    peak_bar = 0
    longest = 0
    dipped = False
    for t in range(n):
        e = equity[t]
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
        if e >= peak:  # at or above the running peak: a drawdown (if any) has ended
            if e > peak:
                if peak > 0.0:
                    dd = (peak - run_low) / peak
                    if dd > mdd:
                        mdd = dd
                peak = e
                run_low = e
            if dipped:
                if t - peak_bar > longest:
                    longest = t - peak_bar
                dipped = False
            peak_bar = t
        else:
            dipped = True
            if e < run_low:
                run_low = e
    if peak > 0.0:
        dd = (peak - run_low) / peak
        if dd > mdd:
            mdd = dd
    if dipped and n - 1 - peak_bar > longest:
        longest = n - 1 - peak_bar

    # ---- the trades
    gross_profit = 0.0
    gross_loss_sum = 0.0
    wins = 0
    fees = 0.0
    long_bars = 0
    held_sum = 0
    pnls = np.empty(max(closed, 1))
    rets = np.empty(max(closed, 1))
    best = -np.inf
    worst = np.inf
    for j in range(k):
        fees += trade_values[j, V_ENTRY_FEE] + trade_values[j, V_EXIT_FEE]
        if j < closed:
            pnl = trade_values[j, V_PNL]
            ret = trade_values[j, V_RETURN_PCT]
            pnls[j] = pnl
            rets[j] = ret
            held = trade_bars[j, B_EXIT] - trade_bars[j, B_ENTRY]
            held_sum += held
            long_bars += held
            if pnl > 0.0:
                gross_profit += pnl
                wins += 1
            elif pnl < 0.0:
                gross_loss_sum += pnl
            if ret > best:
                best = ret
            if ret < worst:
                worst = ret
        else:
            long_bars += n - trade_bars[j, B_ENTRY]
    gross_loss = -gross_loss_sum

    final_value = equity[n - 1]
    stats[0] = (final_value / initial - 1.0) * 100.0
    stats[1] = final_value
    stats[2] = (hold_value(initial, fee_rate, close[0], close[n - 1]) / initial - 1.0) * 100.0
    stats[3] = closed
    stats[4] = wins / closed * 100.0 if closed > 0 else 0.0
    if finite:
        stats[5] = mdd * 100.0
    stats[8] = long_bars / n * 100.0
    if gross_loss > 0.0:
        stats[9] = gross_profit / gross_loss
    stats[10] = 1.0 if is_open else 0.0
    if n >= 2 and positive and returns_finite:
        _return_ratios(returns, n - 1, bars_per_year, stats)
    stats[11] = fees
    if days >= MIN_CAGR_DAYS and initial > 0.0:
        ratio = final_value / initial
        if ratio >= 0.0:
            cagr = (ratio ** (365.0 / days) - 1.0) * 100.0
            stats[12] = cagr
            if finite and mdd > 0.0:
                stats[13] = cagr / (mdd * 100.0)
    if closed > 0:
        frames = np.empty((3, _PW_STACK), dtype=np.int64)
        values = np.empty(_PW_STACK)
        mean_ret = (0.0 + _pairwise_sum_into(rets, 0, closed, frames, values)) / closed
        stats[15] = mean_ret
        stats[16] = best
        stats[17] = worst
        stats[19] = held_sum / closed
        if closed >= 2:
            mean_pnl = (0.0 + _pairwise_sum_into(pnls, 0, closed, frames, values)) / closed
            for j in range(closed):
                x = pnls[j] - mean_pnl
                pnls[j] = x * x
            std = math.sqrt((0.0 + _pairwise_sum_into(pnls, 0, closed, frames, values)) / (closed - 1))
            if std > 0.0:
                stats[14] = math.sqrt(closed) * mean_pnl / std
    stats[18] = longest


@njit(cache=CACHE, nogil=True)
def _return_ratios(returns, m, bars_per_year, stats):
    """Sharpe (slot 6) and Sortino (slot 7) of m > 0 finite per-bar returns; overwrites `returns`.

    mean = returns.mean(); std = returns.std(ddof=1) (two-pass); downside =
    sqrt(mean(min(r, 0)**2)); every sum in numpy's pairwise order.
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
            stats[6] = mean / std * scale
    downside = math.sqrt((0.0 + _pairwise_sum_into(returns, 0, m, frames, values)) / m)
    if downside > 0.0:
        stats[7] = mean * scale / downside
