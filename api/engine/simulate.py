"""Long-only, all-in position simulator driven by precomputed signals.

The Python loop runs once per trade, not once per bar: we jump between
candidate signal indices with np.searchsorted and rebuild the per-bar
equity curve vectorized afterwards, so long histories with few trades stay
cheap.
"""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Trade:
    """One round trip; an open trade is marked to market without exit fee."""

    entry_index: int
    exit_index: int | None
    entry_price: float
    exit_price: float | None
    units: float
    entry_value: float
    exit_value: float
    pnl: float
    return_pct: float
    is_open: bool


@dataclass(frozen=True)
class SimulationResult:
    """Per-bar equity/position after each bar's fill, plus the trade list."""

    equity: np.ndarray
    position: np.ndarray
    trades: tuple[Trade, ...]
    final_value: float


def _make_trade(
    entry: int, entry_price: float, units: float, entry_value: float,
    exit_index: int | None, exit_price: float | None, exit_value: float,
) -> Trade:
    pnl = exit_value - entry_value
    return Trade(
        entry_index=entry,
        exit_index=exit_index,
        entry_price=entry_price,
        exit_price=exit_price,
        units=units,
        entry_value=entry_value,
        exit_value=exit_value,
        pnl=pnl,
        return_pct=pnl / entry_value * 100.0 if entry_value else 0.0,
        is_open=exit_index is None,
    )


def _step(n: int, bars: np.ndarray, values: np.ndarray, initial: float | bool) -> np.ndarray:
    """Value in force at each bar: the last event value at or before it."""
    last = np.searchsorted(bars, np.arange(n), side="right")
    return np.concatenate(([initial], values))[last]


def simulate_long_only(
    close: np.ndarray,
    buy_signal: np.ndarray,
    sell_signal: np.ndarray,
    initial_investment: float,
    fee_rate: float,
) -> SimulationResult:
    """Fill signals at the bar's close: all-in buy when flat, sell all when long.

    At most one fill per bar (a sell needs a bar after the buy, a re-entry a
    bar after the sell). `fee_rate` is a fraction of notional per fill.
    """
    close = np.asarray(close, dtype=np.float64)
    buy_signal = np.asarray(buy_signal, dtype=bool)
    sell_signal = np.asarray(sell_signal, dtype=bool)
    if close.ndim != 1 or close.size == 0:
        raise ValueError("close must be a non-empty 1-D array")
    if buy_signal.shape != close.shape or sell_signal.shape != close.shape:
        raise ValueError("buy_signal and sell_signal must match close's shape")
    if not 0.0 <= fee_rate < 1.0:
        raise ValueError(f"fee_rate must be in [0, 1), got {fee_rate}")

    n = close.size
    buys = np.flatnonzero(buy_signal)
    sells = np.flatnonzero(sell_signal)
    prices = close.tolist()
    keep = 1.0 - fee_rate

    cash = float(initial_investment)
    trades: list[Trade] = []
    event_bars: list[int] = []
    event_cash: list[float] = []
    event_units: list[float] = []
    last_fill = -1
    while True:
        k = int(np.searchsorted(buys, last_fill, side="right"))
        if k == buys.size:
            break
        entry = int(buys[k])
        entry_value = cash
        units = cash * keep / prices[entry]
        cash = 0.0
        event_bars.append(entry)
        event_cash.append(0.0)
        event_units.append(units)

        j = int(np.searchsorted(sells, entry, side="right"))
        if j == sells.size:
            trades.append(_make_trade(
                entry, prices[entry], units, entry_value,
                None, None, units * prices[-1],
            ))
            break
        exit_ = int(sells[j])
        cash = units * prices[exit_] * keep
        event_bars.append(exit_)
        event_cash.append(cash)
        event_units.append(0.0)
        trades.append(_make_trade(
            entry, prices[entry], units, entry_value, exit_, prices[exit_], cash,
        ))
        last_fill = exit_

    bars = np.asarray(event_bars, dtype=np.int64)
    cash_t = _step(n, bars, np.asarray(event_cash, dtype=np.float64), float(initial_investment))
    units_t = _step(n, bars, np.asarray(event_units, dtype=np.float64), 0.0)
    # Events alternate buy, sell, buy, ...: even event numbers open a position.
    long_after = np.arange(bars.size) % 2 == 0
    position = _step(n, bars, long_after, False).astype(bool)
    equity = cash_t + units_t * close
    return SimulationResult(
        equity=equity,
        position=position,
        trades=tuple(trades),
        final_value=float(equity[-1]),
    )
