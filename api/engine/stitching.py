"""Out-of-sample runs chained into one account (walk-forward, issue 12): one equity curve, one set of metrics.

Each run is a backtest of its own span that started from its own initial
cash; chained, run k starts with what run k-1 ended with, so its equity curve
and its trades' money columns are scaled by (the account before it / its own
initial cash). Prices, return percents and bar counts do not change. A
position still open at the end of a run that is not the last is, in the
chained account, closed there at its mark-to-market value (the last close, no
exit fee), which is what that run's own equity says it was worth; it counts as
a closed round trip with exit reason `end`. The metrics come from the one
metrics kernel, on the chained curve, closes and trades; the span for `cagr`
runs from the first run's first candle to the last run's last one.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .backtest import BacktestOutcome
from .candles import Candles
from .metrics import STATS_SIZE, checked_bars_per_year, metrics_kernel, metrics_of
from .simulator import (B_ENTRY, B_EXIT, B_REASON, END, V_ENTRY_FEE, V_ENTRY_VALUE, V_EXIT_FEE, V_EXIT_PRICE,
                        V_EXIT_VALUE, V_PNL, V_UNITS)

_MONEY = [V_UNITS, V_ENTRY_VALUE, V_EXIT_VALUE, V_ENTRY_FEE, V_EXIT_FEE, V_PNL]


def stitch(runs: Sequence[tuple[Candles, BacktestOutcome]],
           bars_per_year: float) -> tuple[np.ndarray, np.ndarray, dict[str, float | int | bool | None]]:
    """(times, equity, metrics) of the runs chained in order (each run: its candles and its outcome).

    The account starts with the first run's initial cash; buy_and_hold_return
    buys at the first run's first close with its fee. ValueError for no runs.
    """
    if not runs:
        raise ValueError("nothing to stitch")
    first = runs[0][1].simulation.execution
    account = first.initial
    equity, closes, times, bars, values = [], [], [], [], []
    offset = 0
    for k, (candles, outcome) in enumerate(runs):
        sim = outcome.simulation
        n = len(candles)
        scale = account / sim.execution.initial
        equity.append(sim.equity[:n] * scale)
        closes.append(candles.close)
        times.append(candles.time)
        b = sim.trade_bars[:sim.count].copy()
        v = sim.trade_values[:sim.count].copy()
        v[:, _MONEY] *= scale
        if sim.count and b[-1, B_EXIT] < 0 and k < len(runs) - 1:  # closed at its mark where the run ends
            b[-1, B_EXIT] = n - 1
            b[-1, B_REASON] = END
            v[-1, V_EXIT_PRICE] = candles.close[n - 1]
        b[:, B_ENTRY] += offset
        b[:, B_EXIT] = np.where(b[:, B_EXIT] >= 0, b[:, B_EXIT] + offset, b[:, B_EXIT])
        bars.append(b)
        values.append(v)
        account = float(equity[-1][-1])
        offset += n
    curve = np.ascontiguousarray(np.concatenate(equity))
    trade_bars = np.ascontiguousarray(np.concatenate(bars))
    trade_values = np.ascontiguousarray(np.concatenate(values))
    stats = np.empty(STATS_SIZE)
    days = float(runs[-1][0].last_time - runs[0][0].first_time) / 86_400.0
    metrics_kernel(np.ascontiguousarray(np.concatenate(closes)), curve, trade_bars, trade_values, len(trade_bars),
                   first.initial, first.fee_rate, checked_bars_per_year(bars_per_year), days, stats)
    return np.concatenate(times), curve, metrics_of(stats)
