"""One backtest: a strategy's signals through the simulator, then the metrics. Pure, no I/O."""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from numba import njit

from .candles import Candles
from .errors import EngineError
from .metrics import STATS_SIZE, checked_bars_per_year, metrics_kernel, metrics_of, span_days
from .numeric import CACHE
from .records import record
from .registry import StrategySpec
from .simulator import (B_ENTRY, B_EXIT, B_REASON, EXIT_REASONS, V_ENTRY_FEE, V_ENTRY_PRICE, V_ENTRY_VALUE,
                        V_EXIT_FEE, V_EXIT_PRICE, V_EXIT_VALUE, V_PNL, V_RETURN_PCT, V_UNITS, Execution,
                        Simulation, kernel_inputs, kernel_outputs, simulate_kernel)


@dataclass(frozen=True)
class Trade:
    """One round trip by bar index; an open one is marked at the last close, without exit fee."""

    entry_bar: int
    exit_bar: int | None
    entry_price: float
    exit_price: float | None
    units: float
    entry_value: float
    exit_value: float
    entry_fee: float
    exit_fee: float
    pnl: float
    return_pct: float
    bars_held: int
    exit_reason: str
    is_open: bool

    @property
    def fees(self) -> float:
        return self.entry_fee + self.exit_fee


@dataclass(frozen=True, eq=False)
class BacktestOutcome:
    """Everything a run produces; the caller decides what to persist or return."""

    metrics: dict[str, float | int | bool | None]
    trades: tuple[Trade, ...]
    equity: np.ndarray
    simulation: Simulation


def run_backtest(spec: StrategySpec, candles: Candles, params: Mapping[str, Any], bars_per_year: float,
                 with_trades: bool = True) -> BacktestOutcome:
    """Run `spec` on `candles` with validated, complete `params` (defaults filled in).

    with_trades=False skips building Trade objects (a batch needs only the metrics).
    """
    if not spec.inputs <= candles.fields:
        missing = ", ".join(sorted(spec.inputs - candles.fields))
        raise ValueError(f"strategy {spec.code} needs the candles' {missing}")
    execution = Execution.from_parameters(params)
    entry, exit_ = spec.signals(candles, params)
    inputs = kernel_inputs(candles, entry, exit_, execution)
    outputs = kernel_outputs(len(candles))
    stats = np.empty(STATS_SIZE)
    count = _simulate_and_measure(*inputs, execution.settings, checked_bars_per_year(bars_per_year),
                                  span_days(candles), *outputs, stats)
    equity, trade_bars, trade_values = outputs
    sim = record(Simulation, {"equity": equity, "trade_bars": trade_bars, "trade_values": trade_values,
                              "count": count, "execution": execution})
    trades = trades_of(sim, len(candles)) if with_trades else ()
    return record(BacktestOutcome, {"metrics": metrics_of(stats), "trades": trades, "equity": equity,
                                    "simulation": sim})


@dataclass(frozen=True, eq=False)
class SettingsRun:
    """One strategy under many settings on one candle series: the metrics of each, as numbers.

    stats[i] holds setting i's metrics in METRICS order (NaN = None; `metrics_of`
    turns a row into the dict `run_backtest` gives); errors[i] is the
    EngineError that stopped setting i (its row is all NaN), else None.
    """

    stats: np.ndarray
    errors: tuple[EngineError | None, ...]


def run_settings(spec: StrategySpec, candles: Candles, parameter_sets: Sequence[Mapping[str, Any]],
                 bars_per_year: float) -> SettingsRun:
    """`run_backtest(..., with_trades=False)` under each validated parameter set, metrics only.

    The grid path: no trade list, no dict per run, one scratch buffer for all;
    each indicator computed once per distinct look-back (`Candles.indicator`);
    the signals of a chunk of settings at once where the strategy has
    `signal_rows`, and the chunk simulated and measured in one compiled call.
    """
    if not spec.inputs <= candles.fields:
        missing = ", ".join(sorted(spec.inputs - candles.fields))
        raise ValueError(f"strategy {spec.code} needs the candles' {missing}")
    n = len(candles)
    stats = np.full((len(parameter_sets), STATS_SIZE), np.nan)
    errors: list[EngineError | None] = []
    outputs = kernel_outputs(n)
    per_year, days = checked_bars_per_year(bars_per_year), span_days(candles)
    chunk = max(1, min(256, _CHUNK_BOOLS // max(n, 1)))
    entry = np.empty((min(chunk, len(parameter_sets)), n), dtype=np.bool_)
    exit_ = np.empty_like(entry)
    for start in range(0, len(parameter_sets), chunk):
        sets = parameter_sets[start:start + chunk]
        executions = [Execution.from_parameters(p) for p in sets]
        for execution in executions:
            if not execution.fields <= candles.fields:
                kernel_inputs(candles, entry[0], exit_[0], execution)  # raises, naming the missing fields
        failed = signal_rows(spec, candles, sets, entry, exit_)
        errors.extend(failed)
        close = candles.close  # stands in for a field these rules never read (checked above)
        _simulate_and_measure_rows(
            close if candles.open is None else candles.open, close if candles.high is None else candles.high,
            close if candles.low is None else candles.low, close, entry, exit_,
            np.array([e.settings for e in executions]), np.array([e is not None for e in failed]), per_year, days,
            *outputs, stats[start:start + len(sets)])
    return SettingsRun(stats, tuple(errors))


_CHUNK_BOOLS = 4_000_000  # entry + exit buffers of a chunk: 8 MB


def signal_rows(spec: StrategySpec, candles: Candles, sets: Sequence[Mapping[str, Any]], entry: np.ndarray,
                 exit_: np.ndarray) -> list[EngineError | None]:
    """Rows 0..len(sets)-1 of entry/exit filled with each setting's signals; each setting's EngineError or None."""
    if spec.signal_rows is not None:
        return spec.signal_rows(candles, sets, entry, exit_)
    errors: list[EngineError | None] = []
    for j, params in enumerate(sets):
        try:
            entry[j], exit_[j] = spec.signals(candles, params)
        except EngineError as exc:
            errors.append(exc)
            continue
        errors.append(None)
    return errors


@njit(cache=CACHE, nogil=True)
def _simulate_and_measure_rows(open_, high, low, close, entry, exit_, settings, skip, bars_per_year, days,
                               equity, trade_bars, trade_values, stats):
    """`_simulate_and_measure` for each row j of entry/exit/settings not skipped, into stats[j]."""
    for j in range(stats.shape[0]):
        if not skip[j]:
            _simulate_and_measure(open_, high, low, close, entry[j], exit_[j], settings[j], bars_per_year, days,
                                  equity, trade_bars, trade_values, stats[j])


@njit(cache=CACHE, nogil=True)
def _simulate_and_measure(open_, high, low, close, entry, exit_, settings, bars_per_year, days,
                          equity, trade_bars, trade_values, stats):
    """The simulator, then the metrics, in one compiled call (one dispatch instead of two: ~15 % of a daily
    run). settings = Execution.settings."""
    count = simulate_kernel(open_, high, low, close, entry, exit_, settings[0], settings[1], settings[2],
                            settings[3] != 0.0, settings[4], settings[5], settings[6], equity, trade_bars,
                            trade_values)
    metrics_kernel(close, equity, trade_bars, trade_values, count, settings[0], settings[1], bars_per_year, days,
                   stats)
    return count


def required_fields(spec: StrategySpec, parameter_sets: Iterable[Mapping[str, Any]],
                    with_trades: bool = False) -> frozenset[str]:
    """The candle fields runs of `spec` under these parameter sets read (a reader loads only these).

    The close always; the strategy's own inputs; open for next-open fills and
    open/high/low for stops; the times for a trade list and equity curve.
    """
    fields = set(spec.inputs) | {"close"}
    for params in parameter_sets:
        fields |= Execution.from_parameters(params).fields
    if with_trades:
        fields.add("time")
    return frozenset(fields)


def trades_of(sim: Simulation, n: int) -> tuple[Trade, ...]:
    """The simulation's trade table as Trade objects."""
    out = []
    for bars, values in zip(sim.trade_bars[:sim.count].tolist(), sim.trade_values[:sim.count].tolist()):
        entry, exit_, reason = bars[B_ENTRY], bars[B_EXIT], bars[B_REASON]
        is_open = exit_ < 0
        out.append(Trade(
            entry_bar=entry, exit_bar=None if is_open else exit_,
            entry_price=values[V_ENTRY_PRICE], exit_price=None if is_open else values[V_EXIT_PRICE],
            units=values[V_UNITS], entry_value=values[V_ENTRY_VALUE], exit_value=values[V_EXIT_VALUE],
            entry_fee=values[V_ENTRY_FEE], exit_fee=values[V_EXIT_FEE], pnl=values[V_PNL],
            return_pct=values[V_RETURN_PCT], bars_held=(n - 1 if is_open else exit_) - entry,
            exit_reason=EXIT_REASONS[reason], is_open=is_open))
    return tuple(out)
