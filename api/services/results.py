"""Turn one crypto's price arrays into the result dict the API returns (pure, no I/O).

Shared by the batch worker and the single-crypto backtest so both report a
crypto the same way.
"""
from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

import numpy as np

from api.db.repository import CACHEABLE_ERRORS, METRIC_COLUMNS, PriceSeries, epoch_of_iso
from api.engine import (BacktestOutcome, Candles, EngineError, Trade, get_strategy, make_candles, metrics_of,
                        run_backtest, run_settings)
from api.engine.metrics import STATS_SIZE, buy_and_hold_curve, drawdown_curve
from api.engine.intervals import SECONDS_PER_INTERVAL, bars_per_year

def iso_utc(epoch_seconds: int | float) -> str:
    """Epoch seconds as an ISO 8601 UTC timestamp ending in Z."""
    return _iso_utc(int(epoch_seconds))


@functools.lru_cache(maxsize=8192)
def _iso_utc(epoch_seconds: int) -> str:
    # cached: every result row names its first and last candle, and most cryptos share them
    return datetime.fromtimestamp(epoch_seconds, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def crypto_header(crypto: Mapping[str, Any], prices: PriceSeries | None) -> dict[str, Any]:
    """Identity and data span of a crypto, the leading fields of every result."""
    if prices is None:
        return _header(crypto, 0, None, None, None)
    return _header(crypto, len(prices), prices.first_time, prices.last_time, prices.version)


def _header(crypto: Mapping[str, Any], candles: int, first_time: int | None, last_time: int | None,
            data_version: int | None) -> dict[str, Any]:
    return {
        "crypto_id": int(crypto["id"]),
        "symbol": crypto["symbol"],
        "name": crypto["name"],
        "interval": crypto.get("interval", "1d"),
        "candles": candles,
        "first_time": iso_utc(first_time) if first_time is not None else None,
        "last_time": iso_utc(last_time) if last_time is not None else None,
        "data_version": data_version,
    }


def stored_result(crypto: Mapping[str, Any], row: Mapping[str, Any]) -> dict[str, Any]:
    """A result from its stored row (repository.find_stored_results): the same fields a computed one has."""
    result = _header(crypto, row["candles"], row["first_time"], row["last_time"], row["data_version"])
    result.update({k: row[k] for k in METRIC_COLUMNS})
    result["calculation_time_ms"] = row["calculation_time_ms"]
    result["error"] = row["error"]
    return result


def stored_settings(crypto: Mapping[str, Any], row: Mapping[str, Any], settings: int) -> CryptoSettings:
    """A grid row (repository.find_grid_rows / batch_grid_rows) as the CryptoSettings it was stored from."""
    header = _header(crypto, row["candles"], row["first_time"], row["last_time"], row["data_version"])
    stats = np.frombuffer(row["stats"], dtype="<f8").reshape(settings, STATS_SIZE)
    errors = {int(i): e for i, e in (row["errors"] or {}).items()}
    return CryptoSettings(header, stats, errors, row["crypto_error"], row["calculation_time_ms"])


def grid_row(rows: CryptoSettings) -> dict[str, Any]:
    """What repository.save_grid_rows stores of a crypto's grid results."""
    h = rows.header
    return {"crypto_id": h["crypto_id"], "data_version": h["data_version"], "candles": h["candles"],
            "first_time": _epoch(h["first_time"]), "last_time": _epoch(h["last_time"]),
            "stats": np.ascontiguousarray(rows.stats, dtype="<f8").tobytes(), "errors": rows.errors,
            "crypto_error": rows.crypto_error, "calculation_time_ms": rows.calculation_time_ms}


def reusable(row: Mapping[str, Any]) -> bool:
    """A stored grid row may answer again: none of its errors was a fault of the machinery (lost, timed out)."""
    errors = [row["crypto_error"]] if row["crypto_error"] is not None else list((row["errors"] or {}).values())
    return all(e["code"] in CACHEABLE_ERRORS for e in errors)


def _epoch(iso: str | None) -> int | None:
    return None if iso is None else epoch_of_iso(iso)


def error_result(crypto: Mapping[str, Any], prices: PriceSeries | None, code: str, message: str,
                 started: float) -> dict[str, Any]:
    """A result whose metrics are all null and whose `error` says what went wrong."""
    result = crypto_header(crypto, prices)
    result.update({k: None for k in METRIC_COLUMNS})
    result["calculation_time_ms"] = (time.perf_counter() - started) * 1000.0
    result["error"] = {"code": code, "message": message}
    return result


def candles_of(prices: PriceSeries, interval: str) -> Candles:
    """A stored candle series as the engine's checked Candles (InvalidPriceDataError if a value is bad)."""
    return make_candles(prices.open, prices.high, prices.low, prices.close, prices.volume, prices.time,
                        SECONDS_PER_INTERVAL.get(interval, 86_400), prices.first_time, prices.last_time)


def backtest_settings(crypto: Mapping[str, Any], strategy_id: int, parameter_sets: Sequence[Mapping[str, Any]],
                      prices: PriceSeries, started: float, with_trades: bool = False) -> list[dict[str, Any]]:
    """Run one strategy on one crypto's candles under each parameter set: one result dict per set.

    Engine errors (too few candles, bad prices) become this crypto's error
    entry. Each result's calculation_time_ms is its own run plus an equal
    share of the time since `started` (reading the candles). with_trades adds
    the trade list and the equity curve.
    """
    if not with_trades:
        return settings_results(crypto_settings(crypto, strategy_id, parameter_sets, prices, started))
    if len(prices) == 0:
        return [error_result(crypto, prices, "no_data", "no price data stored for this cryptocurrency", started)
                for _ in parameter_sets]
    interval = crypto.get("interval", "1d")
    spec = get_strategy(strategy_id)
    header = crypto_header(crypto, prices)
    try:
        candles = candles_of(prices, interval)
    except EngineError as exc:
        return [error_result(crypto, prices, error_code(exc), str(exc), started) for _ in parameter_sets]
    per_year = bars_per_year_of(interval)
    clock = time.perf_counter
    share = (clock() - started) / len(parameter_sets)
    out = []
    for params in parameter_sets:
        began = clock() - share
        try:
            outcome = run_backtest(spec, candles, params, per_year, with_trades=True)
        except EngineError as exc:
            out.append(error_result(crypto, prices, error_code(exc), str(exc), began))
            continue
        result = dict(header)
        result.update(outcome.metrics)  # the engine's METRICS, which are METRIC_COLUMNS in order (a test checks)
        times = prices.time.tolist()
        result["trades"] = [_trade_dict(t, times) for t in outcome.trades]
        result["equity_curve"] = equity_curve(times, outcome, candles.close)
        result["calculation_time_ms"] = (clock() - began) * 1000.0
        result["error"] = None
        out.append(result)
    return out


@dataclass(frozen=True, eq=False)
class CryptoSettings:
    """One crypto's results under many settings in numbers, the grid's form (no dict per backtest).

    stats[i] holds setting i's metrics in METRIC_COLUMNS order (NaN = null);
    errors maps a setting's index to its error; crypto_error fails every
    setting (no candles, bad prices, a lost worker); calculation_time_ms is
    each setting's equal share of the crypto's time.
    """

    header: dict[str, Any]
    stats: np.ndarray
    errors: dict[int, dict[str, str]]
    crypto_error: dict[str, str] | None
    calculation_time_ms: float

    def error_of(self, i: int) -> dict[str, str] | None:
        return self.crypto_error if self.crypto_error is not None else self.errors.get(i)

    def result(self, i: int) -> dict[str, Any]:
        """Setting i's result dict, the same a computed single result has."""
        result = dict(self.header)
        error = self.error_of(i)
        if error is None:
            result.update(metrics_of(self.stats[i]))
        else:
            result.update(dict.fromkeys(METRIC_COLUMNS))
        result["calculation_time_ms"] = self.calculation_time_ms
        result["error"] = error
        return result


def settings_results(rows: CryptoSettings) -> list[dict[str, Any]]:
    """Every setting's result dict."""
    return [rows.result(i) for i in range(rows.stats.shape[0])]


def crypto_settings(crypto: Mapping[str, Any], strategy_id: int, parameter_sets: Sequence[Mapping[str, Any]],
                    prices: PriceSeries, started: float) -> CryptoSettings:
    """`backtest_settings` without trades, in numbers: one strategy on one crypto's candles under each set."""
    header = crypto_header(crypto, prices)
    if len(prices) == 0:
        return failed_settings(header, len(parameter_sets), "no_data", "no price data stored for this cryptocurrency",
                               started)
    interval = crypto.get("interval", "1d")
    try:
        candles = candles_of(prices, interval)
    except EngineError as exc:
        return failed_settings(header, len(parameter_sets), error_code(exc), str(exc), started)
    return _settings_rows(header, get_strategy(strategy_id), parameter_sets, candles, bars_per_year_of(interval),
                          started)


def failed_settings(header: dict[str, Any], settings: int, code: str, message: str,
                    started: float) -> CryptoSettings:
    """A crypto whose every setting failed with one error."""
    ms = (time.perf_counter() - started) * 1000.0 / max(settings, 1)
    return CryptoSettings(header, np.full((settings, STATS_SIZE), np.nan), {}, {"code": code, "message": message}, ms)


def _settings_rows(header: dict[str, Any], spec: Any, parameter_sets: Sequence[Mapping[str, Any]], candles: Candles,
                   per_year: float, started: float) -> CryptoSettings:
    run = run_settings(spec, candles, parameter_sets, per_year)
    errors = {i: {"code": error_code(e), "message": str(e)} for i, e in enumerate(run.errors) if e is not None}
    ms = (time.perf_counter() - started) * 1000.0 / max(len(parameter_sets), 1)
    return CryptoSettings(header, run.stats, errors, None, ms)


@functools.lru_cache(maxsize=64)
def bars_per_year_of(interval: str) -> float:
    return bars_per_year(interval)


def error_code(exc: EngineError) -> str:
    name = type(exc).__name__
    return {"InsufficientDataError": "insufficient_data", "InvalidPriceDataError": "invalid_price_data"}.get(
        name, "engine_error")


def _trade_dict(trade: Trade, times: list[int]) -> dict[str, Any]:
    exit_bar = trade.exit_bar
    return {
        "entry_time": iso_utc(times[trade.entry_bar]),
        "entry_bar": trade.entry_bar,
        "entry_price": trade.entry_price,
        "exit_time": iso_utc(times[exit_bar]) if exit_bar is not None else None,
        "exit_bar": exit_bar,
        "exit_price": trade.exit_price,
        "units": trade.units,
        "entry_value": trade.entry_value,
        "exit_value": trade.exit_value,
        "entry_fee": trade.entry_fee,
        "exit_fee": trade.exit_fee,
        "fees": trade.fees,
        "pnl": trade.pnl,
        "return_pct": trade.return_pct,
        "bars_held": trade.bars_held,
        "exit_reason": trade.exit_reason,
        "is_open": trade.is_open,
    }


def equity_curve(times: list[int], outcome: BacktestOutcome, close: np.ndarray) -> list[dict[str, Any]]:
    """Per bar: the time, the run's equity, buy and hold's value and the drawdown % (what a chart draws), from
    the engine's own formulas (the curve's last buy_and_hold is buy_and_hold_return's value, its largest
    drawdown max_drawdown)."""
    execution = outcome.simulation.execution
    hold = buy_and_hold_curve(close, execution.initial, execution.fee_rate).tolist()
    drawdown = drawdown_curve(outcome.equity).tolist()
    return [{"time": iso_utc(t), "equity": e, "buy_and_hold": h, "drawdown": d}
            for t, e, h, d in zip(times, outcome.equity.tolist(), hold, drawdown)]


def rank_results(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Best total_return first, errors last; ties broken by crypto id so order is deterministic."""
    return sorted(results, key=lambda r: (r["error"] is not None or r["total_return"] is None,
                                          -(r["total_return"] or 0.0), r["crypto_id"]))


# error codes of cryptos lost to a fault of the machinery, not of their data: the same request may succeed
RETRYABLE_ERRORS = frozenset({"worker_lost", "timeout"})


def retryable_count(results: Sequence[Mapping[str, Any]]) -> int:
    """How many results failed for a fault of the machinery (a lost worker, a timeout), not of their data."""
    return sum(1 for r in results if r["error"] is not None and r["error"]["code"] in RETRYABLE_ERRORS)


def ranked_settings(setting_results: Sequence[tuple[dict[str, Any], list[dict[str, Any]]]], total_time: float,
                    parallel: bool, processes: int, strategy_id: int) -> list[dict[str, Any]]:
    """A sweep's settings: each with its ranked results and summary, best average return first."""
    settings = []
    for params, results in setting_results:
        ranked = rank_results(results)
        summary = summarize(ranked, total_time, parallel, processes, strategy_id, params)
        summary["retryable"] = retryable_count(ranked)
        settings.append({"parameters": params, "results": ranked, "summary": summary})
    settings.sort(key=lambda s: (s["summary"]["average_return"] is None, -(s["summary"]["average_return"] or 0)))
    return settings


def summarize(results: list[dict[str, Any]], total_time: float, parallel: bool, processes: int,
              strategy_id: int, parameters: dict[str, Any]) -> dict[str, Any]:
    """The batch summary: counts, timing, mode, parameters and best/worst/average return."""
    ok = [r for r in results if r["error"] is None]
    best = ok[0] if ok else None
    worst = ok[-1] if ok else None
    return {
        "total_cryptos": len(results),
        "successful": len(ok),
        "failed": len(results) - len(ok),
        "total_time": total_time,
        "parallel": parallel,
        "processes": processes,
        "strategy_id": strategy_id,
        "parameters": parameters,
        "best_return": best["total_return"] if best else None,
        "best_symbol": best["symbol"] if best else None,
        "worst_return": worst["total_return"] if worst else None,
        "worst_symbol": worst["symbol"] if worst else None,
        "average_return": (sum(r["total_return"] for r in ok) / len(ok)) if ok else None,
    }
