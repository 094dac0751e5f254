"""CryptoBacktestService: one strategy against every crypto, in parallel or in sequence.

The batch is the same per-crypto function either way: in-process for
`use_parallel=False` (or a single crypto), or fanned out over a warm
`multiprocessing.Pool` whose static worker keeps its own connection. Results
come back in crypto-id order, are sorted by total_return, and are stored in
one transaction, so a parallel and a sequential run give identical answers.
`use_parallel="auto"` picks the mode from the estimated work.
"""
from __future__ import annotations

import contextlib
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Literal

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

import api.engine as engine_module
from api.db import repository as repo
from api.db.connection import lent_connection
from api.engine import StrategySpec
from api.engine.intervals import missing_candles
from api.services import catalog
from api.services.crypto_reads import (DATABASE_FAILED, NO_CANDLES_IN_SPAN, failure_code, fields_for, inside_span,
                                       read_crypto, span_missed)
from api.services.admission import Admission
from api.services.errors import Conflict, DatabaseUnavailable, NotFound, ValidationFailed
from api.services.grid import MAX_COMBINATIONS, GridTooLarge, expand_grid
from api.services.request_size import check_request_size
from api.services.walkforward import check_options as check_walkforward
from api.services.walkforward_run import plan_walk_forward, run_walk_forward
from api.services.montecarlo import check_options, montecarlo_crypto, montecarlo_error, montecarlo_summary
from api.services.grid_answer import check_ranking, grid_answer
from api.services.executor import Stream
from api.services.fanout import TaskFailure, pool_size, run_in_pool, warm_pool
from api.services.read_ahead import plan_read_ahead, reading_ahead
from api.services.selection import ALL, Selection, choose, known_symbol_shape, span_of, within_span
from api.services.parameters import validate_parameters
from api.services.results import (RETRYABLE_ERRORS, CryptoSettings, backtest_settings, crypto_header,
                                  crypto_settings, error_result, failed_settings, grid_row, rank_results,
                                  ranked_settings, retryable_count, reusable, settings_results, stored_result,
                                  stored_settings, summarize)

log = logging.getLogger(__name__)

ParallelMode = bool | Literal["auto"]

# Below this many candle-evaluations (price rows x parameter settings) "auto" runs
# sequentially: the fan-out's fixed cost (task pickling, result transfer, a
# second process competing with the database for 2 cores) is not repaid.
# Calibrated with `benchmarks/benchmark_parallel.py --calibrate` once the closes
# were read ahead in groups (sequential got faster): sequential wins clearly up to
# ~400,000, the two are within 10 % between ~0.8 and ~1.7 million, parallel wins
# from ~3 million on 2 cores. AUTO_PARALLEL_MIN_WORK overrides it.
AUTO_PARALLEL_MIN_WORK = 1_000_000

MAX_SWEEP_SETTINGS = 500  # an explicit parameter_sets list; a grid is bounded by its backtests instead
MAX_SWEEP_BACKTESTS = 1_000_000
Progress = Callable[[int, int], None]  # (backtests done, backtests in all)

class CryptoBacktestService:
    """Runs backtests for the HTTP layer and the CLI; owns no HTTP or SQL details.

    Admission (api/services/admission.py): at most `max_concurrent_batches`
    batches (or sweeps, or single backtests) run at once in one server
    process, up to `max_queued_batches` more wait up to `batch_queue_seconds`
    for their turn, and any more are refused with Busy (HTTP 429 +
    Retry-After), so batches never take every thread of a process.
    """

    def __init__(self, engine: Engine, db_config: dict[str, Any], max_processes: int = 8,
                 start_method: str | None = None, auto_parallel_min_work: int = AUTO_PARALLEL_MIN_WORK,
                 task_timeout: float = 60.0, max_concurrent_batches: int = 1, max_queued_batches: int = 2,
                 batch_queue_seconds: float = 30.0, max_sweep_backtests: int = MAX_SWEEP_BACKTESTS,
                 executor: str = "process", dask_scheduler_address: str | None = None) -> None:
        """executor "process": parallel batches on this host's warm pool; "dask": on the Dask cluster at
        dask_scheduler_address (api/services/dask_fanout.py, imported only then)."""
        self.engine = engine
        self.executor = executor
        self._dask: Any = None
        if executor == "dask":
            if not dask_scheduler_address:
                raise ValueError("the dask executor needs a scheduler address")
            from api.services.dask_fanout import DaskCluster

            self._dask = DaskCluster(dask_scheduler_address)
        elif executor != "process":
            raise ValueError(f"unknown executor {executor!r}")
        self.task_timeout = task_timeout
        self._admission = Admission(max_concurrent_batches, max_queued_batches, batch_queue_seconds)
        self.db_config = db_config
        self.max_processes = max_processes
        self.start_method = start_method
        self.auto_parallel_min_work = auto_parallel_min_work
        self.max_sweep_backtests = max_sweep_backtests

    # ---- catalog -------------------------------------------------------------------------

    def list_strategies(self) -> list[dict[str, Any]]:
        """The strategy catalog, each with its parameter schema (from the engine's registry)."""
        return catalog.list_strategies()

    def resolve_strategy_id(self, key: int | str) -> int:
        """A strategy id from an id or a code (the CLI's --strategy); NotFound names the known ones."""
        spec = catalog.find_strategy(int(key) if isinstance(key, str) and key.isdigit() else key)
        if spec is None:
            known = ", ".join(f"{s['id']} {s['code']}" for s in catalog.list_strategies())
            raise NotFound(f"no strategy {key!r}; known: {known}",
                           [{"field": "strategy_id", "message": f"no strategy {key!r}; known: {known}"}])
        return spec.id

    def start_pool(self) -> int:
        """Start this process's warm pool (min(cpu_count, MAX_PROCESSES) workers) and wait until it is ready.

        A server calls it once a process has loaded the app (gunicorn's
        post_worker_init, on its main thread), so the first parallel batch pays
        no process start-up; apps built for tests or the CLI start theirs on
        first use. Returns how many workers are ready (0 with EXECUTOR=dask: the cluster's workers run batches).
        """
        if self._dask is not None:
            return 0
        return warm_pool(self.start_method, warm_worker).prestart(pool_size(os.cpu_count() or 1, self.max_processes))

    def readiness(self) -> dict[str, Any]:
        """GET /api/ready: {"database": "reachable", migrations' current/head revision, "at_head"}, or
        {"database": "unreachable", "detail": why} when no connection can be made."""
        try:
            with self.engine.connect() as conn:
                return {"database": "reachable", **repo.schema_status(conn)}
        except SQLAlchemyError as exc:
            return {"database": "unreachable", "detail": str(exc.__cause__ or exc).splitlines()[0]}

    def list_cryptocurrencies(self) -> list[dict[str, Any]]:
        """Cryptos that have data, with first/last candle time, row count and missing candles.

        missing_candles comes from the packed series' span and count, not from
        a scan of the candles, so the listing stays one cheap query.
        """
        with self.engine.connect() as conn:
            rows = repo.crypto_summaries(conn)
        return [{**r, "first_time": r["first_time"].isoformat().replace("+00:00", "Z"),
                 "last_time": r["last_time"].isoformat().replace("+00:00", "Z"),
                 "missing_candles": missing_candles(int(r["first_time"].timestamp()), int(r["last_time"].timestamp()),
                                                    r["rows"], r["interval"])} for r in rows]

    def candles(self, symbol: Any, selection: Selection = ALL) -> dict[str, Any]:
        """One crypto's candles inside the selection's span, as rows a price chart takes:
        {"symbol", "interval", "count", "candles": [{"time": epoch s, "open", "high", "low", "close", "volume"}]}."""
        known_symbol_shape(symbol)
        with self.engine.connect() as conn:
            crypto = repo.find_crypto(conn, symbol=symbol)
            if crypto is None:
                raise NotFound(f"cryptocurrency {symbol!r} does not exist",
                               [{"field": "symbol", "message": f"no cryptocurrency {symbol!r}"}])
            prices = within_span(repo.load_candles(conn.connection.driver_connection, crypto["id"]),
                                 selection.start, selection.end)
        names = ("time", "open", "high", "low", "close", "volume")
        columns = [getattr(prices, name).tolist() for name in names]
        return {"symbol": crypto["symbol"], "interval": crypto["interval"], "count": len(prices),
                "candles": [dict(zip(names, row)) for row in zip(*columns)]}

    def prepare(self, strategy_id: Any, parameters: Any) -> tuple[StrategySpec, dict[str, Any]]:
        """Look up the strategy and validate parameters; returns (strategy, full parameters)."""
        strategy = self.strategy(strategy_id)
        return strategy, self._validate(strategy, parameters, "parameters")

    @staticmethod
    def strategy(strategy_id: Any) -> StrategySpec:
        """The strategy of an id; ValidationFailed / NotFound naming strategy_id."""
        if isinstance(strategy_id, bool) or not isinstance(strategy_id, int):
            raise ValidationFailed("strategy_id must be an integer",
                                   [{"field": "strategy_id", "message": "must be an integer"}])
        spec = catalog.find_strategy(strategy_id)
        if spec is None:
            raise NotFound(f"strategy {strategy_id} does not exist",
                           [{"field": "strategy_id", "message": f"no strategy with id {strategy_id}"}])
        return spec

    @staticmethod
    def _validate(spec: StrategySpec, parameters: Any, field: str) -> dict[str, Any]:
        try:
            return validate_parameters(spec.parameter_schema(), parameters if parameters is not None else {},
                                       spec.check)
        except ValidationFailed as exc:
            if field != "parameters":  # name the sweep entry: parameter_sets.3.rsi_period
                for err in exc.errors:
                    err["field"] = field + err["field"][len("parameters"):]
            raise

    # ---- the batch -----------------------------------------------------------------------

    def run_strategy_against_all_cryptos(self, strategy_id: int, parameters: Mapping[str, Any] | None,
                                         use_parallel: ParallelMode = True, store: bool = True,
                                         selection: Selection = ALL, use_cache: bool = True,
                                         progress: Progress | None = None,
                                         max_backtests: int | None = None) -> dict[str, Any]:
        """Backtest every crypto with data (or those `selection` names, over its span); returns
        {"results": [...ranked], "summary": {...}}.

        With use_cache, a crypto whose result for this strategy, these parameters, this span and its current
        data version is stored answers from the store (summary.from_store); the others are computed
        (summary.computed) and stored. progress(done, total) is called in cryptos as they finish.
        max_backtests: the most cryptos it may run (a synchronous request's SYNC_MAX_BACKTESTS), else
        TooLargeForRequest before anything runs; each run_* method takes it alike.
        """
        with self.admitted():
            return self._run_batch(strategy_id, parameters, use_parallel, store, selection, use_cache, progress,
                                   max_backtests)

    def admitted(self) -> contextlib.AbstractContextManager[None]:
        """Hold one of this process's batch slots (waiting a bounded time in a bounded queue), or raise Busy."""
        return self._admission.admitted()

    def _run_batch(self, strategy_id: int, parameters: Mapping[str, Any] | None, use_parallel: ParallelMode,
                   store: bool, selection: Selection, use_cache: bool = True,
                   progress: Progress | None = None, max_backtests: int | None = None) -> dict[str, Any]:
        strategy, params = self.prepare(strategy_id, parameters)
        started = time.perf_counter()
        chosen = choose(self.cryptos(), selection)
        check_request_size(len(chosen), max_backtests, "all")
        stored = self._stored_results(strategy.id, params, selection, chosen) if use_cache else {}
        cryptos = [c for c in chosen if c["id"] not in stored]
        parallel = self.choose_parallel(use_parallel, len(cryptos), settings=1)
        log.info("Running strategy against %d cryptocurrencies (parallel=%s)", len(cryptos), parallel)
        processes = pool_size(len(cryptos), self.max_processes) if parallel else 1
        log.info("Using %d parallel processes", processes)
        args = [(c, strategy.id, params, self.db_config) for c in cryptos]
        results = []
        if progress is not None:
            progress(len(stored), len(chosen))
        with contextlib.closing(self.stream(CryptoBacktestService._run_single_backtest_worker, args, parallel,
                                            processes)) as stream:
            for result in stream:
                results.append(result)
                if progress is not None:
                    progress(len(stored) + len(results), len(chosen))
        _raise_if_database_failed(results)
        computed = results
        results = rank_results(results + [stored_result(c, stored[c["id"]]) for c in chosen if c["id"] in stored])
        successful = sum(1 for r in results if r["error"] is None)
        log.info("Completed backtesting: %d successful, %d failed", successful, len(results) - successful)
        batch_id = str(uuid.uuid4()) if store else None
        summary = summarize(results, time.perf_counter() - started, parallel, processes, strategy.id, params)
        summary.update(stream.describe())
        summary["retryable"] = retryable_count(results)
        summary["requested_parallel"] = use_parallel
        summary["selection"] = selection.describe()
        summary["computed"] = len(computed)
        summary["from_store"] = len(results) - len(computed)
        summary["batch_id"] = batch_id
        if batch_id is not None:
            reused = {c["id"]: row["result_id"] for c in chosen if (row := stored.get(c["id"])) is not None}
            self._store(batch_id, "all", strategy.id, [(params, computed)], selection, summary,
                        [c["id"] for c in chosen], reused)
        return {"results": results, "summary": summary}

    def _stored_results(self, strategy_id: int, params: Mapping[str, Any], selection: Selection,
                        cryptos: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
        """The stored results that answer for these cryptos (their current data versions), by crypto id."""
        versions = {c["id"]: c["data_version"] for c in cryptos if c.get("data_version") is not None}
        with self.engine.connect() as conn:
            return repo.find_stored_results(conn, strategy_id, params, (selection.start, selection.end), versions)

    @staticmethod
    def _run_single_backtest_worker(crypto: dict[str, Any], strategy_id: int, parameters: dict[str, Any],
                                    db_config: dict[str, Any]) -> dict[str, Any]:
        """Backtest one crypto on this process's own connection; never raises."""
        return _backtest_crypto(crypto, strategy_id, [parameters], db_config)[0]

    # ---- a parameter sweep ---------------------------------------------------------------

    def run_parameter_sweep(self, strategy_id: int, parameter_sets: Sequence[Mapping[str, Any]],
                            use_parallel: ParallelMode = True, store: bool = True,
                            selection: Selection = ALL, max_backtests: int | None = None) -> dict[str, Any]:
        """Every parameter set against every crypto through the same fan-out.

        Each task is one crypto with all settings, so its prices are read once.
        Returns {"settings": [{"parameters", "summary", "results"}...], "summary": {...}}, settings
        ranked by average return.
        """
        with self.admitted():
            strategy = self.strategy(strategy_id)
            if not isinstance(parameter_sets, Sequence) or isinstance(parameter_sets, (str, bytes)) \
                    or not 1 <= len(parameter_sets) <= MAX_SWEEP_SETTINGS:
                raise ValidationFailed("parameter_sets must be a list of 1 to 500 objects", [
                    {"field": "parameter_sets", "message": f"must be a list of 1 to {MAX_SWEEP_SETTINGS} objects"}])
            sets = [self._validate(strategy, p, f"parameter_sets.{i}") for i, p in enumerate(parameter_sets)]
            return self._run_sweep(strategy, sets, use_parallel, store, selection, max_backtests)

    def run_grid_sweep(self, strategy_id: int, grid: Any, fixed: Any = None, use_parallel: ParallelMode = True,
                       store: bool = True, selection: Selection = ALL, rank_by: str = "median_return",
                       top: int = 10, use_cache: bool = True, progress: Progress | None = None,
                       max_backtests: int | None = None) -> dict[str, Any]:
        """A sweep over every valid combination of a grid (api/services/grid.py).

        The answer (api/services/grid_answer.py): every setting's aggregate,
        ranked by `rank_by`; the best `top` settings with their rows; each
        crypto's best setting. summary.skipped counts combinations that broke a
        cross-field rule. A grid whose backtests (settings x cryptos) exceed
        max_sweep_backtests is refused before anything runs, with the number.
        A crypto whose rows for these settings, span and data version are
        stored answers from the store (summary.computed / from_store count
        backtests). progress(done, total) is called in backtests as cryptos finish.
        """
        rank_by, top = check_ranking(rank_by, top)
        strategy = self.strategy(strategy_id)
        chosen = choose(self.cryptos(), selection)
        sets, skipped = self.expand_checked_grid(strategy, grid, fixed, len(chosen), "cryptos")
        check_request_size(len(sets) * len(chosen), max_backtests, "sweep", "grid")
        with self.admitted():
            return self._run_grid(strategy, sets, chosen, use_parallel, store, selection, use_cache, progress,
                                  {"skipped": skipped}, rank_by, top)

    def expand_checked_grid(self, strategy: StrategySpec, grid: Any, fixed: Any, runs: int,
                            unit: str) -> tuple[list[dict[str, Any]], int]:
        """(settings, skipped) of a grid that will run on `runs` spans (cryptos, or crypto windows), or
        ValidationFailed naming `grid` when those backtests would exceed max_sweep_backtests.

        Expanded outside any batch slot, and only when it could fit: 4x the
        settings the cap allows, for combinations that the rules between
        parameters skip (fast < slow skips about half).
        """
        runs = max(runs, 1)
        cap = self.max_sweep_backtests
        most = min(MAX_COMBINATIONS, max(4 * (cap // runs), 10_000))
        try:
            sets, skipped = expand_grid(strategy, grid, fixed, most)
        except GridTooLarge as exc:
            n = exc.combinations
            raise ValidationFailed(
                f"the grid has {n:,} combinations, up to {n * runs:,} backtests with {runs} {unit}; at most "
                f"{cap:,} backtests (MAX_SWEEP_BACKTESTS) and {most:,} combinations are expanded",
                [{"field": "grid", "message": f"{n:,} combinations x {runs} {unit}; at most {cap:,} backtests "
                                              f"(MAX_SWEEP_BACKTESTS)"}]) from None
        if not sets:
            raise ValidationFailed(f"every one of the {skipped} combinations of the grid breaks a rule between "
                                   "parameters", [{"field": "grid", "message": "no valid combination"}])
        if len(sets) * runs > cap:
            raise ValidationFailed(
                f"the grid would run {len(sets) * runs:,} backtests ({len(sets):,} settings x {runs} {unit}); at "
                f"most {cap:,} (MAX_SWEEP_BACKTESTS)",
                [{"field": "grid", "message": f"would run {len(sets) * runs:,} backtests ({len(sets):,} "
                                              f"settings x {runs} {unit}); at most {cap:,} "
                                              "(MAX_SWEEP_BACKTESTS)"}])
        return sets, skipped

    def _run_grid(self, strategy: StrategySpec, sets: list[dict[str, Any]], chosen: list[dict[str, Any]],
                  use_parallel: ParallelMode, store: bool, selection: Selection, use_cache: bool,
                  progress: Progress | None, extra: Mapping[str, Any], rank_by: str, top: int) -> dict[str, Any]:
        """The grid in its numeric form: per crypto one CryptoSettings, from the store when its key is there."""
        started = time.perf_counter()
        key = repo.settings_hash(sets)
        span = (selection.start, selection.end)
        stored = self._stored_grid(strategy.id, key, span, chosen) if use_cache else {}
        todo = [c for c in chosen if c["id"] not in stored]
        parallel = self.choose_parallel(use_parallel, len(todo), settings=len(sets))
        processes = pool_size(len(todo), self.max_processes) if parallel else 1
        log.info("Running a grid of %d settings against %d cryptocurrencies (%d from the store, parallel=%s)",
                 len(sets), len(todo), len(stored), parallel)
        args = [(c, strategy.id, sets, self.db_config) for c in todo]
        worker = CryptoBacktestService._run_grid_worker
        stream = self.stream(worker, args, parallel, processes)
        computed: dict[int, CryptoSettings] = {}
        batch_id = str(uuid.uuid4()) if store else None

        def arriving() -> Iterator[tuple[dict[str, Any], CryptoSettings]]:
            done = len(stored)
            if progress is not None:
                progress(done * len(sets), len(chosen) * len(sets))
            for crypto, rows in zip(todo, stream):
                if rows.crypto_error is not None and rows.crypto_error["code"] == DATABASE_FAILED:
                    # inside the COPY when storing: it rolls back, nothing is stored
                    raise DatabaseUnavailable(f"the database failed during the batch "
                                              f"({rows.crypto_error['message']}); nothing was stored, try again "
                                              "shortly")
                computed[crypto["id"]] = rows
                done += 1
                if progress is not None:
                    progress(done * len(sets), len(chosen) * len(sets))
                yield crypto, rows

        def answer() -> dict[str, Any]:
            by_crypto = [computed[c["id"]] if c["id"] in computed else stored_settings(c, stored[c["id"]], len(sets))
                         for c in chosen]
            summary = {
                "total_cryptos": len(chosen), "settings": len(sets), "backtests": len(chosen) * len(sets),
                "computed": len(computed) * len(sets), "from_store": len(stored) * len(sets),
                "total_time": time.perf_counter() - started, "parallel": parallel, "requested_parallel": use_parallel,
                "processes": processes, "strategy_id": strategy.id, "batch_id": batch_id,
                "selection": selection.describe(), **extra, **stream.describe()}
            return grid_answer(by_crypto, sets, rank_by, top, summary)

        with contextlib.closing(stream):  # however this ends, no task of it keeps running
            if batch_id is None:
                for _ in arriving():
                    pass
                return answer()
            # rows are stored as they arrive, while later cryptos are still computed; one transaction, with the
            # cryptos share-locked so that none is deleted between its read and its row (cryptos deleted before
            # are left out)
            with self.engine.begin() as conn:
                present = repo.lock_cryptos_for_results(conn, [c["id"] for c in chosen])
                repo.save_grid_rows(conn, batch_id, strategy.id, key, span,
                                    (grid_row(rows) for crypto, rows in arriving() if crypto["id"] in present))
                out = answer()
                repo.insert_batch(conn, batch_id, "grid", strategy.id, out["summary"],
                                  [c["id"] for c in chosen if c["id"] in present],
                                  [row["grid_result_id"] for cid, row in stored.items() if cid in present], sets)
            return out

    def _stored_grid(self, strategy_id: int, key: str, span: tuple[int | None, int | None],
                     cryptos: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
        """Stored grid rows that answer for these cryptos at their current data versions (none lost to a fault)."""
        versions = {c["id"]: c["data_version"] for c in cryptos if c.get("data_version") is not None}
        with self.engine.connect() as conn:
            rows = repo.find_grid_rows(conn, strategy_id, key, span, versions)
        return {cid: row for cid, row in rows.items() if reusable(row)}

    @staticmethod
    def _run_grid_worker(crypto: dict[str, Any], strategy_id: int, parameter_sets: list[dict[str, Any]],
                         db_config: dict[str, Any]) -> CryptoSettings:
        """One crypto under every setting of a grid, in numbers (one price read); never raises."""
        return _grid_crypto(crypto, strategy_id, parameter_sets, db_config)

    def _run_sweep(self, strategy: StrategySpec, sets: list[dict[str, Any]], use_parallel: ParallelMode,
                   store: bool, selection: Selection, max_backtests: int | None = None) -> dict[str, Any]:
        started = time.perf_counter()
        cryptos = choose(self.cryptos(), selection)
        check_request_size(len(cryptos) * len(sets), max_backtests, "sweep", "parameter_sets")
        parallel = self.choose_parallel(use_parallel, len(cryptos), settings=len(sets))
        log.info("Running %d settings against %d cryptocurrencies (parallel=%s)", len(sets), len(cryptos), parallel)
        processes = pool_size(len(cryptos), self.max_processes) if parallel else 1
        batch_id = str(uuid.uuid4()) if store else None
        args = [(c, strategy.id, sets, self.db_config, batch_id) for c in cryptos]
        stream = self.stream(CryptoBacktestService._run_sweep_worker, args, parallel, processes)
        per_crypto: list[list[dict[str, Any]]] = []
        present: set[int] | None = None  # when storing: the cryptos still there, share-locked till the commit

        def encoded_rows() -> Any:
            for crypto, (results, encoded) in zip(cryptos, stream):
                _raise_if_database_failed(results)  # inside the COPY: it rolls back, nothing is stored
                per_crypto.append(results)
                if present is None or crypto["id"] in present:
                    yield encoded

        def answer() -> dict[str, Any]:
            settings = ranked_settings([(params, [rows[i] for rows in per_crypto]) for i, params in enumerate(sets)],
                                       time.perf_counter() - started, parallel, processes, strategy.id)
            ok = sum(s["summary"]["successful"] for s in settings)
            return {"settings": settings, "summary": {
                "total_cryptos": len(cryptos), "settings": len(sets), "backtests": len(cryptos) * len(sets),
                "successful": ok, "failed": len(cryptos) * len(sets) - ok,
                "total_time": time.perf_counter() - started, "parallel": parallel,
                "requested_parallel": use_parallel, "processes": processes, "strategy_id": strategy.id,
                "batch_id": batch_id, "selection": selection.describe(),
                "retryable": sum(s["summary"]["retryable"] for s in settings),
                "best_parameters": settings[0]["parameters"] if settings else None,
                "best_average_return": settings[0]["summary"]["average_return"] if settings else None,
                **stream.describe()}}

        with contextlib.closing(stream):  # however this ends, no task of it keeps running
            if store:  # rows are stored while later cryptos are still computed; one transaction
                with self.engine.begin() as conn:
                    present = repo.lock_cryptos_for_results(conn, [c["id"] for c in cryptos])
                    repo.copy_encoded_results(conn, encoded_rows())
                    out = answer()
                    repo.insert_batch(conn, batch_id, "sweep", strategy.id, out["summary"],
                                      [c["id"] for c in cryptos if c["id"] in present])
                return out
            for _ in encoded_rows():
                pass
        return answer()

    @staticmethod
    def _run_sweep_worker(crypto: dict[str, Any], strategy_id: int, parameter_sets: list[dict[str, Any]],
                          db_config: dict[str, Any], batch_id: str | None) -> tuple[list[dict[str, Any]], bytes]:
        """Backtest one crypto under every parameter set (one price read); never raises.

        Also encodes the rows for storage (when batch_id is given), so the
        parent only streams bytes to the database.
        """
        results = _backtest_crypto(crypto, strategy_id, parameter_sets, db_config)
        if batch_id is None:
            return results, b""
        return results, repo.encode_results(batch_id, strategy_id, list(zip(parameter_sets, ([r] for r in results))),
                                            span_of(crypto))

    # ---- Monte Carlo (issue 12) -----------------------------------------------------------

    def run_monte_carlo(self, strategy_id: int, parameters: Mapping[str, Any] | None, method: str = "trades",
                        paths: int = 1_000, block_bars: int = 20, seed: int = 0,
                        use_parallel: ParallelMode = True, selection: Selection = ALL,
                        store: bool = True, progress: Progress | None = None,
                        max_backtests: int | None = None) -> dict[str, Any]:
        """The strategy's Monte Carlo robustness on every chosen crypto (api/services/montecarlo.py).

        Each crypto's paths are seeded from (seed, crypto id), so the answer is
        identical sequential or parallel, at any pool size. Stored as a batch of
        kind "montecarlo" (its results on the batch record), read back by the batch routes.
        """
        options, strategy, params, chosen = self.check_monte_carlo(strategy_id, parameters, method, paths,
                                                                   block_bars, seed, selection)
        check_request_size(len(chosen) * options["paths"], max_backtests, "montecarlo", "paths")
        with self.admitted():
            started = time.perf_counter()
            parallel = self.choose_parallel(use_parallel, len(chosen), settings=options["paths"])
            processes = pool_size(len(chosen), self.max_processes) if parallel else 1
            args = [(c, strategy.id, params, options, self.db_config) for c in chosen]
            worker = CryptoBacktestService._run_montecarlo_worker
            stream = self.stream(worker, args, parallel, processes)
            results = []
            with contextlib.closing(stream):  # however this ends, no task of it keeps running
                for result in stream:
                    results.append(result)
                    if progress is not None:  # in paths
                        progress(len(results) * options["paths"], len(chosen) * options["paths"])
            _raise_if_database_failed(results)
            batch_id = str(uuid.uuid4()) if store else None
            summary = {**montecarlo_summary(results), **options, "strategy_id": strategy.id, "parameters": params,
                       "parallel": parallel, "requested_parallel": use_parallel, "processes": processes,
                       "selection": selection.describe(), "total_time": time.perf_counter() - started,
                       "retryable": retryable_count(results), "batch_id": batch_id, **stream.describe()}
            if batch_id is not None:
                with self.engine.begin() as conn:
                    present = repo.lock_cryptos_for_results(conn, [c["id"] for c in chosen])
                    repo.insert_batch(conn, batch_id, "montecarlo", strategy.id, summary,
                                      [c["id"] for c in chosen if c["id"] in present], results=results)
            return {"results": results, "summary": summary}

    def check_monte_carlo(self, strategy_id: int, parameters: Mapping[str, Any] | None, method: Any, paths: Any,
                          block_bars: Any, seed: Any, selection: Selection = ALL
                          ) -> tuple[dict[str, Any], StrategySpec, dict[str, Any], list[dict[str, Any]]]:
        """(options, strategy, parameters, chosen cryptos) of a Monte Carlo that may run, or the 400/404 it gets
        before anything runs (a job is checked with it before it is queued)."""
        options = check_options(method, paths, block_bars, seed)
        strategy, params = self.prepare(strategy_id, parameters)
        chosen = choose(self.cryptos(), selection)
        work = len(chosen) * options["paths"]
        if work > self.max_sweep_backtests:
            raise ValidationFailed(f"{options['paths']:,} paths x {len(chosen)} cryptos = {work:,} backtests; at most "
                                   f"{self.max_sweep_backtests:,} (MAX_SWEEP_BACKTESTS)",
                                   [{"field": "paths", "message": f"{work:,} backtests over {len(chosen)} cryptos; "
                                                                  f"at most {self.max_sweep_backtests:,}"}])
        return options, strategy, params, chosen

    @staticmethod
    def _run_montecarlo_worker(crypto: dict[str, Any], strategy_id: int, parameters: dict[str, Any],
                               options: dict[str, Any], db_config: dict[str, Any]) -> dict[str, Any]:
        """One crypto's Monte Carlo on this process's own connection; never raises."""
        prices = None
        try:
            fields = fields_for(strategy_id, [parameters], with_trades=True)
            prices = read_crypto(crypto, db_config, fields)
            inside = inside_span(crypto, prices)
            if span_missed(prices, inside):
                return {**crypto_header(crypto, inside), "error": {"code": "no_data", "message": NO_CANDLES_IN_SPAN}}
            return montecarlo_crypto(crypto, strategy_id, parameters, options["method"], options["paths"],
                                     options["block_bars"], options["seed"], inside)
        except Exception as exc:  # one crypto's failure must not sink the batch
            return montecarlo_error(crypto, failure_code(crypto, exc), f"{type(exc).__name__}: {exc}")

    # ---- walk-forward (issue 12) -----------------------------------------------------------

    def run_walk_forward(self, strategy_id: int, grid: Any, fixed: Any = None, train_days: Any = 365,
                         test_days: Any = 90, step_days: Any = None, anchored: Any = False,
                         rank_by: Any = "sharpe_ratio", select: Any = "per_crypto",
                         use_parallel: ParallelMode = True, selection: Selection = ALL, store: bool = True,
                         equity_curve: bool = True, progress: Progress | None = None,
                         max_backtests: int | None = None) -> dict[str, Any]:
        """Walk-forward of a grid on every chosen crypto (api/services/walkforward.py and walkforward_run.py).

        Per window: the grid on the train span, the best setting by rank_by (per crypto or over the
        universe), that setting alone on the test span; per crypto the test runs chained into one
        account. Stored as a batch of kind "walkforward". progress(done, total) counts backtests.
        """
        options = check_walkforward(train_days, test_days, step_days, anchored, rank_by, select)
        return run_walk_forward(self, strategy_id, grid, fixed, options, use_parallel, selection, store,
                                equity_curve, progress, max_backtests)

    def check_walk_forward(self, strategy_id: int, grid: Any, fixed: Any, train_days: Any, test_days: Any,
                           step_days: Any = None, anchored: Any = False, rank_by: Any = "sharpe_ratio",
                           select: Any = "per_crypto", selection: Selection = ALL) -> None:
        """Everything run_walk_forward checks before it runs (a job's check before it is queued)."""
        options = check_walkforward(train_days, test_days, step_days, anchored, rank_by, select)
        plan_walk_forward(self, strategy_id, grid, fixed, options, selection)

    # ---- one crypto ----------------------------------------------------------------------

    def run_single_backtest(self, strategy_id: int, parameters: Mapping[str, Any] | None,
                            crypto_id: int | None = None, symbol: str | None = None,
                            store: bool = True, selection: Selection = ALL) -> dict[str, Any]:
        """Backtest one crypto (by id or symbol, over the selection's span) with its trades and equity curve."""
        with self.admitted():
            return self._run_single(strategy_id, parameters, crypto_id, symbol, store, selection)

    def _run_single(self, strategy_id: int, parameters: Mapping[str, Any] | None, crypto_id: int | None,
                    symbol: str | None, store: bool, selection: Selection) -> dict[str, Any]:
        strategy, params = self.prepare(strategy_id, parameters)
        with self.engine.connect() as conn:
            crypto = repo.find_crypto(conn, crypto_id=crypto_id, symbol=symbol)
            if crypto is None:
                field, value = ("crypto_id", crypto_id) if crypto_id is not None else ("symbol", symbol)
                raise NotFound(f"cryptocurrency {value!r} does not exist",
                               [{"field": field, "message": f"no cryptocurrency {value!r}"}])
            started = time.perf_counter()
            prices = repo.load_candles(conn.connection.driver_connection, crypto["id"],
                                       fields_for(strategy.id, [params], with_trades=True))
        crypto = choose([crypto], selection.span_only())[0]
        result = _run_span(crypto, strategy.id, [params], prices, started, with_trades=True)[0]
        batch_id = str(uuid.uuid4()) if store else None
        answer = {"result": result, "strategy_id": strategy.id, "parameters": params,
                  "selection": selection.span_only().describe(), "batch_id": batch_id}
        if batch_id is not None:
            record = {k: v for k, v in answer.items() if k != "result"}
            self._store(batch_id, "single", strategy.id, [(params, [result])], selection, record, [crypto["id"]])
        return answer

    # ---- shared plumbing -----------------------------------------------------------------

    def cryptos(self) -> list[dict[str, Any]]:
        """Every crypto with candles, in id order (a batch's universe before the selection)."""
        with self.engine.connect() as conn:
            return repo.list_cryptos_with_data(conn)

    def choose_parallel(self, use_parallel: ParallelMode, n_cryptos: int, settings: int) -> bool:
        """True/False as asked; "auto": parallel when rows x settings reaches the calibrated threshold."""
        if n_cryptos < 2 or not use_parallel:
            return False
        if use_parallel != "auto":
            return True
        with self.engine.connect() as conn:
            rows = repo.total_candles(conn)
        return rows * settings >= self.auto_parallel_min_work

    def stream(self, worker: Any, args: list[tuple], parallel: bool, processes: int) -> Stream:
        """The worker's results in input order: run here in sequence, or fanned out over the pool (or the Dask
        cluster with EXECUTOR=dask); a task lost to a dead or hung worker becomes its crypto's error.

        Close it when leaving early: that stops the batch's busy workers.
        """
        if not parallel:
            return Stream(_run_here(worker, args, self.db_config), "sequential", lambda: 1)
        if self._dask is not None:
            run = self._dask.run(worker, args, self.task_timeout)  # ExecutorUnavailable before anything runs
            return Stream(_answered(worker, args, run), "dask", lambda: run.workers)
        outcomes = run_in_pool(worker, args, processes, self.start_method, initializer=warm_worker,
                               task_timeout=self.task_timeout, before_chunk=plan_read_ahead)
        return Stream(_answered(worker, args, outcomes), "process", lambda: processes)

    def close(self) -> None:
        """Let go of the Dask cluster's connection (the process pool is this process's, stopped at exit)."""
        if self._dask is not None:
            self._dask.close()

    def _store(self, batch_id: str, kind: str, strategy_id: int,
               result_sets: list[tuple[dict[str, Any], list[dict[str, Any]]]], selection: Selection,
               summary: Mapping[str, Any], crypto_ids: Sequence[int], reused: Mapping[int, int] | None = None) -> None:
        """The computed results and the batch's record, in one transaction (cryptos deleted meanwhile left out)."""
        with self.engine.begin() as conn:
            present = repo.lock_cryptos_for_results(conn, crypto_ids)
            kept = [(params, [r for r in rs if r["crypto_id"] in present]) for params, rs in result_sets]
            repo.save_result_sets(conn, batch_id, strategy_id, kept, (selection.start, selection.end))
            repo.insert_batch(conn, batch_id, kind, strategy_id, summary, [i for i in crypto_ids if i in present],
                              [rid for cid, rid in (reused or {}).items() if cid in present])

    # ---- removing cryptocurrencies -------------------------------------------------------

    def delete_cryptocurrencies(self, symbol: str | None = None, synthetic: bool = False) -> dict[str, Any]:
        """Delete one crypto (by symbol) or every synthetic demo crypto, with candles and results.

        NotFound for an unknown symbol; Conflict when a batch is storing
        results for one of them (or an import is writing it) past the lock
        timeout: nothing is deleted then.
        """
        if (symbol is None) == (not synthetic):
            raise ValidationFailed("name one symbol, or synthetic=true for every demo crypto",
                                   [{"field": "synthetic", "message": "give a symbol or synthetic=true"}])
        if symbol is not None:
            known_symbol_shape(symbol)
        with self.engine.begin() as conn:
            if symbol is not None and not repo.lock_symbol_imports(conn, symbol):
                deleted = None
            else:
                deleted = repo.delete_cryptocurrencies(conn, symbol=symbol, synthetic=synthetic)
            if deleted is None:
                conn.rollback()
                what = symbol or "the synthetic cryptos"
                raise Conflict(f"{what}: a batch is storing results for it or an import is writing it; nothing was "
                               "deleted, retry when it is done",
                               [{"field": "symbol" if symbol else "synthetic", "message": "in use, retry shortly"}])
        if symbol is not None and not deleted:
            raise NotFound(f"cryptocurrency {symbol!r} does not exist",
                           [{"field": "symbol", "message": f"no cryptocurrency {symbol!r}"}])
        return {"deleted": deleted, "count": len(deleted)}


def is_final(answer: Mapping[str, Any]) -> bool:
    """An answer worth replaying for its Idempotency-Key: no crypto in it was lost to a fault.

    Batches and sweeps count theirs in summary.retryable; a single backtest's result says it itself.
    """
    if "summary" in answer:
        return answer["summary"].get("retryable", 0) == 0
    error = answer.get("result", {}).get("error")
    return error is None or error["code"] not in RETRYABLE_ERRORS


def _raise_if_database_failed(results: Sequence[Mapping[str, Any]]) -> None:
    """A crypto whose read failed with the database fails the batch: 503, nothing stored."""
    for r in results:
        if r["error"] is not None and r["error"]["code"] == DATABASE_FAILED:
            raise DatabaseUnavailable(f"the database failed during the batch ({r['error']['message']}); "
                                      "nothing was stored, try again shortly")


def _failed_task(worker: Any, task_args: tuple, failure: TaskFailure) -> Any:
    """What a worker would have returned for a crypto whose task was lost: error entries."""
    crypto, strategy_id = task_args[0], task_args[1]
    log.error("backtest of %s lost: %s", crypto.get("symbol"), failure.message)
    lost = getattr(worker, "lost", None)
    if lost is not None:  # a worker that says itself what its lost task stands for
        return lost(task_args, failure)
    if worker is CryptoBacktestService._run_montecarlo_worker:
        return montecarlo_error(crypto, failure.code, failure.message)
    if worker is CryptoBacktestService._run_grid_worker:
        return failed_settings(crypto_header(crypto, None), len(task_args[2]), failure.code, failure.message,
                               time.perf_counter())
    entry = error_result(crypto, None, failure.code, failure.message, time.perf_counter())
    if worker is CryptoBacktestService._run_sweep_worker:
        parameter_sets, batch_id = task_args[2], task_args[4]
        results = [dict(entry) for _ in parameter_sets]
        encoded = b"" if batch_id is None else repo.encode_results(
            batch_id, strategy_id, list(zip(parameter_sets, ([r] for r in results))), span_of(crypto))
        return results, encoded
    return entry


def _answered(worker: Any, args: list[tuple], outcomes: Iterator[Any]) -> Iterator[Any]:
    """Each task's result, a TaskFailure turned into what the worker would have answered for a lost crypto."""
    with contextlib.closing(outcomes):  # type: ignore[type-var]
        for task_args, outcome in zip(args, outcomes):
            yield _failed_task(worker, task_args, outcome) if isinstance(outcome, TaskFailure) else outcome


def _run_here(worker: Any, args: list[tuple], db_config: dict[str, Any]) -> Iterator[Any]:
    """A worker over many tasks in this thread, on a connection lent to this run, closes read ahead in groups."""
    with reading_ahead(args), lent_connection(db_config):
        for task in args:
            yield worker(*task)


def warm_worker() -> None:
    """Pool worker start-up: load compiled engine kernels before the first task needs them."""
    warm_up = getattr(engine_module, "warm_up", None)
    if warm_up is not None:
        warm_up()


def _backtest_crypto(crypto: dict[str, Any], strategy_id: int, parameter_sets: list[dict[str, Any]],
                     db_config: dict[str, Any]) -> list[dict[str, Any]]:
    """One crypto's prices read once on this thread's connection, run under each parameter set.

    Never raises: a failure becomes this crypto's error entry in every set. A
    connection that died since its last use (server restart, backends
    terminated between batches) is replaced and the read tried once more; a
    database that still fails gives DATABASE_FAILED entries, which fail the
    whole batch (503), never this crypto alone.
    """
    return settings_results(_grid_crypto(crypto, strategy_id, parameter_sets, db_config))


def _grid_crypto(crypto: dict[str, Any], strategy_id: int, parameter_sets: list[dict[str, Any]],
                 db_config: dict[str, Any]) -> CryptoSettings:
    """`_backtest_crypto` in numbers (the grid's form, which `_backtest_crypto` turns into dicts)."""
    started = time.perf_counter()
    prices = None
    try:
        fields = fields_for(strategy_id, parameter_sets, with_trades=False)
        if span_of(crypto) != (None, None):
            fields = fields | {"time"}
        prices = read_crypto(crypto, db_config, fields)
        inside = inside_span(crypto, prices)
        if span_missed(prices, inside):
            return failed_settings(crypto_header(crypto, inside), len(parameter_sets), "no_data", NO_CANDLES_IN_SPAN,
                                   started)
        return crypto_settings(crypto, strategy_id, parameter_sets, inside, started)
    except Exception as exc:  # one crypto's failure must not sink the batch
        code = failure_code(crypto, exc)
        return failed_settings(crypto_header(crypto, prices), len(parameter_sets), code,
                               f"{type(exc).__name__}: {exc}", started)


def _run_span(crypto: dict[str, Any], strategy_id: int, parameter_sets: Sequence[Mapping[str, Any]],
              prices: repo.PriceSeries, started: float, with_trades: bool = False) -> list[dict[str, Any]]:
    """backtest_settings on the candles inside the crypto's span (all of them without one)."""
    inside = inside_span(crypto, prices)
    if span_missed(prices, inside):
        return [error_result(crypto, inside, "no_data", NO_CANDLES_IN_SPAN, started) for _ in parameter_sets]
    return backtest_settings(crypto, strategy_id, parameter_sets, inside, started, with_trades)
