"""The one position simulator every strategy shares: fills, fees, slippage, stops, trade book, equity.

Long only, all in, one position at a time, driven by a strategy's boolean
`entry`/`exit` arrays (decided on each bar's close). The rules are DESIGN.md's
"Strategies and execution", summarised in the README; in short:

* ``execution="close"`` fills a decision at that bar's close; ``"next_open"``
  at the next bar's open (a decision on the last bar is not filled).
* Buys fill at price x (1 + slippage), sells at price x (1 - slippage);
  ``units = cash * (1 - fee) / buy_fill``, ``cash = units * sell_fill * (1 - fee)``.
* Stops are levels from the entry fill: stop = max(stop-loss, trail), the
  trail hanging below the highest high of the bars checked so far. On a
  checked bar: open <= stop fills at the open, low <= stop at the stop,
  open >= target at the open, high >= target at the target (the stop wins a
  bar that touches both). Checked bars: those after the entry bar under
  "close", from the entry bar itself under "next_open".
* A bar on which any exit filled decides no new entry at its close.

Kernel input rules: float64 arrays C-contiguous, aligned and writable; bool
arrays of the same length n >= 1; fractions (not percents) for fee, slippage
and stops, NaN for a stop that is off. With no slippage the fills are the bar
prices themselves, so strategy 1 keeps its numbers to the last bit.
"""
from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numba import njit

from .candles import Candles
from .numeric import CACHE

# exit reasons, as stored in the trade table
SIGNAL, STOP_LOSS, TRAILING_STOP, TAKE_PROFIT, END = range(5)
EXIT_REASONS = ("signal", "stop_loss", "trailing_stop", "take_profit", "end")

# integer trade columns, then float trade columns
B_ENTRY, B_EXIT, B_REASON = range(3)
(V_ENTRY_PRICE, V_EXIT_PRICE, V_UNITS, V_ENTRY_VALUE, V_EXIT_VALUE, V_ENTRY_FEE, V_EXIT_FEE, V_PNL,
 V_RETURN_PCT) = range(9)
TRADE_VALUES = 9


@dataclass(frozen=True)
class Execution:
    """The common parameters as the simulator uses them: fractions, NaN for a stop that is off."""

    initial: float
    fee_rate: float
    slippage: float
    next_open: bool
    stop_loss: float
    take_profit: float
    trailing: float

    @classmethod
    def from_parameters(cls, params: Mapping[str, Any]) -> Execution:
        """From validated parameters (percents, None = off); cached, a batch asks once per crypto."""
        return _execution(params.get("initial_investment"), params.get("transaction_fee"),
                          params.get("slippage_pct"), params.get("execution"), params.get("stop_loss_pct"),
                          params.get("take_profit_pct"), params.get("trailing_stop_pct"))

    @property
    def has_stops(self) -> bool:
        return not (np.isnan(self.stop_loss) and np.isnan(self.take_profit) and np.isnan(self.trailing))

    @functools.cached_property
    def settings(self) -> np.ndarray:
        """The rules as one read-only float array, the form the compiled backtest takes them in."""
        arr = np.array([self.initial, self.fee_rate, self.slippage, float(self.next_open), self.stop_loss,
                        self.take_profit, self.trailing])
        arr.setflags(write=False)
        return arr

    @functools.cached_property
    def fields(self) -> frozenset[str]:
        """The candle fields these rules read: the close, the open for next-open fills and stops, high and low
        for stops."""
        if self.has_stops:
            return frozenset({"open", "high", "low", "close"})
        return frozenset({"open", "close"}) if self.next_open else frozenset({"close"})


@functools.lru_cache(maxsize=1024)
def _execution(initial: float, fee: float, slippage: float | None, execution: str | None, stop_loss: float | None,
               take_profit: float | None, trailing: float | None) -> Execution:
    def fraction(value: float | None) -> float:
        return float("nan") if value is None else float(value) / 100.0

    return Execution(float(initial), float(fee) / 100.0, float(slippage or 0.0) / 100.0, execution == "next_open",
                     fraction(stop_loss), fraction(take_profit), fraction(trailing))


@dataclass(frozen=True, eq=False)
class Simulation:
    """The equity after each bar's fills and the first `count` rows of the trade table (the last may be open)."""

    equity: np.ndarray
    trade_bars: np.ndarray
    trade_values: np.ndarray
    count: int
    execution: Execution


def simulate(candles: Candles, entry: np.ndarray, exit_: np.ndarray, execution: Execution) -> Simulation:
    """Run the signals through the simulator (arrays as `Candles` guarantees them)."""
    args = kernel_inputs(candles, entry, exit_, execution)
    outputs = kernel_outputs(len(candles))
    e = execution
    count = simulate_kernel(*args, e.initial, e.fee_rate, e.slippage, e.next_open, e.stop_loss, e.take_profit,
                            e.trailing, *outputs)
    return Simulation(*outputs, count, execution)


def kernel_inputs(candles: Candles, entry: np.ndarray, exit_: np.ndarray,
                  execution: Execution) -> tuple[np.ndarray, ...]:
    """(open, high, low, close, entry, exit) for `simulate_kernel`, checked against what the rules read."""
    n = len(candles)
    if entry.shape != (n,) or exit_.shape != (n,):
        raise ValueError(f"entry and exit must have one value per candle ({n})")
    if not execution.fields <= candles.fields:
        missing = ", ".join(sorted(execution.fields - candles.fields))
        raise ValueError(f"these execution rules need the candles' {missing}")
    close = candles.close  # stands in for a field these rules never read (checked above)
    return (close if candles.open is None else candles.open, close if candles.high is None else candles.high,
            close if candles.low is None else candles.low, close,
            np.ascontiguousarray(entry, dtype=np.bool_), np.ascontiguousarray(exit_, dtype=np.bool_))


def kernel_outputs(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(equity, trade_bars, trade_values) for a run over n candles."""
    rows = n // 2 + 2
    return np.empty(n), np.empty((rows, 3), dtype=np.int64), np.empty((rows, TRADE_VALUES))


@njit(cache=CACHE, nogil=True)
def _open_trade(trade_bars, trade_values, k, t, cash, fill, fee_rate, stop_loss, take_profit):
    """Book trade k's entry at bar t: all `cash` at `fill`, the fee taken first.

    Returns (units bought, stop-loss level, take-profit level), the levels from the fill price.
    """
    units = cash * (1.0 - fee_rate) / fill
    trade_bars[k, B_ENTRY] = t
    trade_values[k, V_ENTRY_VALUE] = cash
    trade_values[k, V_ENTRY_FEE] = cash * fee_rate
    trade_values[k, V_ENTRY_PRICE] = fill
    trade_values[k, V_UNITS] = units
    return units, fill * (1.0 - stop_loss), fill * (1.0 + take_profit)


@njit(cache=CACHE, nogil=True)
def _close_trade(trade_bars, trade_values, k, t, reason, units, fill, fee_rate):
    """Book trade k's exit at bar t: every unit at `fill`, less the fee; returns the cash received."""
    gross = units * fill
    cash = gross * (1.0 - fee_rate)
    trade_bars[k, B_EXIT] = t
    trade_bars[k, B_REASON] = reason
    trade_values[k, V_EXIT_PRICE] = fill
    trade_values[k, V_EXIT_VALUE] = cash
    trade_values[k, V_EXIT_FEE] = gross * fee_rate
    return cash


@njit(cache=CACHE, nogil=True)
def simulate_kernel(open_, high, low, close, entry, exit_, initial, fee_rate, slippage, next_open,
                    stop_loss, take_profit, trailing, equity, trade_bars, trade_values):
    """Fill `equity` (n) and the trade table; returns the number of trades (the last may be open).

    trade_bars[k] = entry bar, exit bar (-1 while open), exit reason;
    trade_values[k] = the V_* columns. Needs n // 2 + 2 rows.
    """
    n = close.size
    buy_mult = 1.0 + slippage
    sell_mult = 1.0 - slippage
    use_sl = stop_loss == stop_loss
    use_tp = take_profit == take_profit
    use_trail = trailing == trailing
    use_stop = use_sl or use_trail

    cash = initial
    units = 0.0
    long = False
    k = 0
    entry_bar = -1
    sl_level = 0.0
    tp_level = 0.0
    peak = 0.0
    pending_entry = False
    pending_exit = False

    for t in range(n):
        exited = False
        if next_open:
            if pending_exit:
                cash = _close_trade(trade_bars, trade_values, k, t, SIGNAL, units, open_[t] * sell_mult, fee_rate)
                k += 1
                units = 0.0
                long = False
                exited = True
            elif pending_entry:
                peak = open_[t] * buy_mult  # the trail's peak starts at the entry fill
                units, sl_level, tp_level = _open_trade(trade_bars, trade_values, k, t, cash, peak, fee_rate,
                                                        stop_loss, take_profit)
                cash, long, entry_bar = 0.0, True, t
            pending_entry = False
            pending_exit = False

        if long and (use_stop or use_tp) and (next_open or t > entry_bar):
            hit = -1
            price = 0.0
            if use_stop:
                stop = sl_level
                reason = STOP_LOSS
                if use_trail:
                    trail_level = peak * (1.0 - trailing)
                    if not use_sl or trail_level > sl_level:
                        stop = trail_level
                        reason = TRAILING_STOP
                if open_[t] <= stop:
                    hit = reason
                    price = open_[t]
                elif low[t] <= stop:
                    hit = reason
                    price = stop
            if hit < 0 and use_tp:
                if open_[t] >= tp_level:
                    hit = TAKE_PROFIT
                    price = open_[t]
                elif high[t] >= tp_level:
                    hit = TAKE_PROFIT
                    price = tp_level
            if hit >= 0:
                cash = _close_trade(trade_bars, trade_values, k, t, hit, units, price * sell_mult, fee_rate)
                k += 1
                units = 0.0
                long = False
                exited = True
            elif high[t] > peak:
                peak = high[t]

        # the decision on this bar's close
        price = close[t]
        if long:
            if exit_[t]:
                if next_open:
                    pending_exit = t + 1 < n
                else:
                    cash = _close_trade(trade_bars, trade_values, k, t, SIGNAL, units, price * sell_mult, fee_rate)
                    k += 1
                    units = 0.0
                    long = False
        elif not exited and entry[t]:
            if next_open:
                pending_entry = t + 1 < n
            else:
                peak = price * buy_mult
                units, sl_level, tp_level = _open_trade(trade_bars, trade_values, k, t, cash, peak, fee_rate,
                                                        stop_loss, take_profit)
                cash, long, entry_bar = 0.0, True, t

        # cash + units * close, where one of the two terms is 0
        equity[t] = units * price if long else cash

    if long:  # marked to market at the last close, no exit fee
        trade_bars[k, B_EXIT] = -1
        trade_bars[k, B_REASON] = END
        trade_values[k, V_EXIT_PRICE] = np.nan
        trade_values[k, V_EXIT_VALUE] = units * close[n - 1]
        trade_values[k, V_EXIT_FEE] = 0.0
        k += 1
    for j in range(k):  # pnl over the cash committed at entry, the entry fee included
        committed = trade_values[j, V_ENTRY_VALUE]
        pnl = trade_values[j, V_EXIT_VALUE] - committed
        trade_values[j, V_PNL] = pnl
        trade_values[j, V_RETURN_PCT] = pnl / committed * 100.0 if committed != 0.0 else 0.0
    return k
