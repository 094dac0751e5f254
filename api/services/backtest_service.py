"""CryptoBacktestService: one strategy against every crypto, in parallel or in sequence.

The batch is the same per-crypto function either way: in-process for
`use_parallel=False` (or a single crypto), or fanned out over a
`multiprocessing.Pool` whose static worker opens its own connection. Results
come back in crypto-id order, are sorted by total_return, and are stored in
one transaction, so a parallel and a sequential run give identical answers.
"""
from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy.engine import Engine

from api.db import repository as repo
from api.db.connection import worker_engine
from api.engine import get_strategy
from api.services.errors import NotFound, ValidationFailed
from api.services.fanout import map_in_pool, pool_size
from api.services.parameters import validate_parameters
from api.services.results import backtest_prices, error_result

log = logging.getLogger(__name__)

# strategy id -> engine code; strategy rows never change once written, so
# caching them per process (and across fork) is safe and saves a query per crypto.
_STRATEGY_CODES: dict[tuple[str, int], str] = {}


class CryptoBacktestService:
    """Runs backtests for the HTTP layer and the CLI; owns no HTTP or SQL details."""

    def __init__(self, engine: Engine, db_config: dict[str, Any], max_processes: int = 8,
                 start_method: str | None = None) -> None:
        self.engine = engine
        self.db_config = db_config
        self.max_processes = max_processes
        self.start_method = start_method

    # ---- catalog -------------------------------------------------------------------------

    def list_strategies(self) -> list[dict[str, Any]]:
        """The strategy catalog, each with its parameter schema."""
        with self.engine.connect() as conn:
            rows = repo.list_strategies(conn)
        return [{**r, "parameter_schema": _ordered_schema(r)} for r in rows]

    def list_cryptocurrencies(self) -> list[dict[str, Any]]:
        """Cryptos that have data, with first/last candle time and row count."""
        with self.engine.connect() as conn:
            rows = repo.crypto_summaries(conn)
        return [{**r, "first_time": r["first_time"].isoformat().replace("+00:00", "Z"),
                 "last_time": r["last_time"].isoformat().replace("+00:00", "Z")} for r in rows]

    def prepare(self, strategy_id: Any, parameters: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        """Look up the strategy and validate parameters; returns (strategy row, full parameters)."""
        if isinstance(strategy_id, bool) or not isinstance(strategy_id, int):
            raise ValidationFailed("strategy_id must be an integer",
                                   [{"field": "strategy_id", "message": "must be an integer"}])
        with self.engine.connect() as conn:
            strategy = repo.get_strategy(conn, strategy_id)
        if strategy is None:
            raise NotFound(f"strategy {strategy_id} does not exist",
                           [{"field": "strategy_id", "message": f"no strategy with id {strategy_id}"}])
        spec = get_strategy(strategy["code"])
        params = validate_parameters(_ordered_schema(strategy), parameters, spec.check)
        return strategy, params

    # ---- the batch -----------------------------------------------------------------------

    def run_strategy_against_all_cryptos(self, strategy_id: int, parameters: Mapping[str, Any] | None,
                                         use_parallel: bool = True, store: bool = True) -> dict[str, Any]:
        """Backtest every crypto with data; returns {"results": [...ranked], "summary": {...}}."""
        strategy, params = self.prepare(strategy_id, parameters if parameters is not None else {})
        started = time.perf_counter()
        with self.engine.connect() as conn:
            cryptos = repo.list_cryptos_with_data(conn)
        parallel = bool(use_parallel) and len(cryptos) > 1
        log.info("Running strategy against %d cryptocurrencies (parallel=%s)", len(cryptos), parallel)
        if parallel:
            processes = pool_size(len(cryptos), self.max_processes)
            log.info("Using %d parallel processes", processes)
            results = self._run_parallel_backtests(cryptos, strategy["id"], params, processes)
        else:
            processes = 1
            results = self._run_sequential_backtests(cryptos, strategy["id"], params)
        results = rank_results(results)
        successful = sum(1 for r in results if r["error"] is None)
        log.info("Completed backtesting: %d successful, %d failed", successful, len(results) - successful)
        batch_id = str(uuid.uuid4())
        if store:
            with self.engine.begin() as conn:
                repo.save_results(conn, batch_id, strategy["id"], params, results)
        summary = summarize(results, time.perf_counter() - started, parallel, processes, strategy["id"], params)
        summary["batch_id"] = batch_id if store else None
        return {"results": results, "summary": summary}

    def _run_parallel_backtests(self, cryptos: list[dict[str, Any]], strategy_id: int,
                                parameters: dict[str, Any], processes: int) -> list[dict[str, Any]]:
        args = [(c, strategy_id, parameters, self.db_config) for c in cryptos]
        return map_in_pool(CryptoBacktestService._run_single_backtest_worker, args, processes, self.start_method)

    def _run_sequential_backtests(self, cryptos: list[dict[str, Any]], strategy_id: int,
                                  parameters: dict[str, Any]) -> list[dict[str, Any]]:
        return [CryptoBacktestService._run_single_backtest_worker(c, strategy_id, parameters, self.db_config)
                for c in cryptos]

    @staticmethod
    def _run_single_backtest_worker(crypto: dict[str, Any], strategy_id: int, parameters: dict[str, Any],
                                    db_config: dict[str, Any]) -> dict[str, Any]:
        """Backtest one crypto on this process's own connection; never raises."""
        import numpy as np

        started = time.perf_counter()
        times = np.empty(0, dtype=np.int64)
        try:
            with worker_engine(db_config).connect() as conn:
                code = _strategy_code(conn, db_config, strategy_id)
                times, close = repo.load_prices(conn, crypto["id"])
            return backtest_prices(crypto, code, parameters, times, close, started)
        except Exception as exc:  # one crypto's failure must not sink the batch
            log.exception("backtest of %s failed", crypto.get("symbol"))
            return error_result(crypto, times, "internal_error", f"{type(exc).__name__}: {exc}", started)

    # ---- one crypto ----------------------------------------------------------------------

    def run_single_backtest(self, strategy_id: int, parameters: Mapping[str, Any] | None,
                            crypto_id: int | None = None, symbol: str | None = None,
                            store: bool = True) -> dict[str, Any]:
        """Backtest one crypto (by id or symbol) with its trade list and equity curve."""
        strategy, params = self.prepare(strategy_id, parameters if parameters is not None else {})
        with self.engine.connect() as conn:
            crypto = repo.find_crypto(conn, crypto_id=crypto_id, symbol=symbol)
            if crypto is None:
                field, value = ("crypto_id", crypto_id) if crypto_id is not None else ("symbol", symbol)
                raise NotFound(f"cryptocurrency {value!r} does not exist",
                               [{"field": field, "message": f"no cryptocurrency {value!r}"}])
            started = time.perf_counter()
            times, close = repo.load_prices(conn, crypto["id"])
        result = backtest_prices(crypto, strategy["code"], params, times, close, started, detail=True)
        batch_id = str(uuid.uuid4())
        if store:
            with self.engine.begin() as conn:
                repo.save_results(conn, batch_id, strategy["id"], params, [result])
        return {"result": result, "strategy_id": strategy["id"], "parameters": params,
                "batch_id": batch_id if store else None}


def _strategy_code(conn: Any, db_config: Mapping[str, Any], strategy_id: int) -> str:
    key = (db_config["url"], strategy_id)
    code = _STRATEGY_CODES.get(key)
    if code is None:
        row = repo.get_strategy(conn, strategy_id)
        if row is None:
            raise LookupError(f"strategy {strategy_id} does not exist")
        code = _STRATEGY_CODES[key] = row["code"]
    return code


def _ordered_schema(strategy: Mapping[str, Any]) -> dict[str, Any]:
    """The stored schema in the engine's parameter order (JSONB does not keep key order)."""
    stored = strategy["parameter_schema"]
    try:
        order = [p.name for p in get_strategy(strategy["code"]).parameters]
    except KeyError:
        order = []
    return {**{k: stored[k] for k in order if k in stored}, **stored}


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
