"""Turn one crypto's price arrays into the result dict the API returns (pure, no I/O).

Shared by the batch worker and the single-crypto backtest so both report a
crypto the same way.
"""
from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

import numpy as np

from api.db.repository import METRIC_COLUMNS, PriceSeries
from api.engine import EngineError, get_strategy
from api.engine.intervals import bars_per_year

def iso_utc(epoch_seconds: int | float) -> str:
    """Epoch seconds as an ISO 8601 UTC timestamp ending in Z."""
    return datetime.fromtimestamp(int(epoch_seconds), tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def crypto_header(crypto: Mapping[str, Any], prices: PriceSeries | None) -> dict[str, Any]:
    """Identity and data span of a crypto, the leading fields of every result."""
    return {
        "crypto_id": int(crypto["id"]),
        "symbol": crypto["symbol"],
        "name": crypto["name"],
        "interval": crypto.get("interval", "1d"),
        "candles": len(prices) if prices is not None else 0,
        "first_time": iso_utc(prices.first_time) if prices is not None and prices.first_time is not None else None,
        "last_time": iso_utc(prices.last_time) if prices is not None and prices.last_time is not None else None,
    }


def error_result(crypto: Mapping[str, Any], prices: PriceSeries | None, code: str, message: str,
                 started: float) -> dict[str, Any]:
    """A result whose metrics are all null and whose `error` says what went wrong."""
    result = crypto_header(crypto, prices)
    result.update({k: None for k in METRIC_COLUMNS})
    result["calculation_time_ms"] = (time.perf_counter() - started) * 1000.0
    result["error"] = {"code": code, "message": message}
    return result


def backtest_prices(crypto: Mapping[str, Any], strategy_code: str, parameters: Mapping[str, Any],
                    prices: PriceSeries, started: float, header: dict[str, Any] | None = None,
                    with_trades: bool = False) -> dict[str, Any]:
    """Run the strategy on one crypto's closes; engine errors become this crypto's error entry.

    with_trades (single-crypto endpoint) adds the trade list and equity curve,
    timed by `prices.time`. `header` (crypto_header of the same crypto) may be
    passed in when one price series is run under many parameter sets.
    """
    if len(prices) == 0:
        return error_result(crypto, prices, "no_data", "no price data stored for this cryptocurrency", started)
    times = prices.time if with_trades else None
    try:
        spec = get_strategy(strategy_code)
        outcome = spec.run(prices.close, parameters, bars_per_year(crypto.get("interval", "1d")),
                           with_trades=times is not None)
    except EngineError as exc:
        return error_result(crypto, prices, _error_code(exc), str(exc), started)
    result = dict(header) if header is not None else crypto_header(crypto, prices)
    result.update({k: outcome.metrics[k] for k in METRIC_COLUMNS})
    if times is not None:
        result["trades"] = [_trade_dict(t, times) for t in outcome.trades]
        result["equity_curve"] = [
            {"time": iso_utc(t), "equity": float(e)} for t, e in zip(times.tolist(), outcome.equity.tolist())
        ]
    result["calculation_time_ms"] = (time.perf_counter() - started) * 1000.0
    result["error"] = None
    return result


def _error_code(exc: EngineError) -> str:
    name = type(exc).__name__
    return {"InsufficientDataError": "insufficient_data", "InvalidPriceDataError": "invalid_price_data"}.get(
        name, "engine_error")


def _trade_dict(trade: Any, times: np.ndarray) -> dict[str, Any]:
    exit_index = trade.exit_index
    return {
        "entry_time": iso_utc(times[trade.entry_index]),
        "entry_price": float(trade.entry_price),
        "exit_time": iso_utc(times[exit_index]) if exit_index is not None else None,
        "exit_price": float(trade.exit_price) if trade.exit_price is not None else None,
        "units": float(trade.units),
        "entry_value": float(trade.entry_value),
        "exit_value": float(trade.exit_value),
        "pnl": float(trade.pnl),
        "return_pct": float(trade.return_pct),
        "is_open": bool(trade.is_open),
    }


def rank_results(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Best total_return first, errors last; ties broken by crypto id so order is deterministic."""
    return sorted(results, key=lambda r: (r["error"] is not None or r["total_return"] is None,
                                          -(r["total_return"] or 0.0), r["crypto_id"]))


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
