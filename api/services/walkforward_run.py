"""A walk-forward over every chosen crypto on the service's fan-out (issue 12; the analysis is walkforward.py).

Two passes through the same fan-out, each task one crypto on its worker's own
connection:

1. `train_worker`: lay the crypto's windows, run the grid on each train span;
2. the parent chooses each window's setting (per crypto, or over the universe,
   which needs every crypto's train numbers first);
3. `test_worker`: run the chosen settings on the test spans and chain them.

A crypto whose candles changed between the passes (an import in between)
gets the error `data_changed` rather than a mix of two histories. A crypto
lost to a dead worker is its own `worker_lost` entry; a database that fails
fails the whole request (503) and stores nothing.
"""
from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from api.db import repository as repo
from api.engine.intervals import SECONDS_PER_INTERVAL
from api.engine.windows import MAX_WINDOWS, TooManyWindows, Window
from api.services.crypto_reads import (DATABASE_FAILED, NO_CANDLES_IN_SPAN, failure_code, fields_for, inside_span,
                                       read_crypto, span_missed)
from api.services.errors import DatabaseUnavailable, ValidationFailed
from api.services.fanout import TaskFailure, pool_size
from api.services.results import RETRYABLE_ERRORS, crypto_header
from api.services.request_size import check_request_size
from api.services.selection import Selection, choose
from api.services.walkforward import (TrainedCrypto, WalkForwardOptions, choose_per_crypto, choose_universe,
                                      lost_training, run_test_spans, train_crypto, walkforward_summary,
                                      window_entry)

if TYPE_CHECKING:
    from api.services.backtest_service import CryptoBacktestService

Progress = Callable[[int, int], None]


def run_walk_forward(service: CryptoBacktestService, strategy_id: int, grid: Any, fixed: Any,
                     options: WalkForwardOptions, use_parallel: Any, selection: Selection, store: bool,
                     equity_curve: bool, progress: Progress | None, max_backtests: int | None = None
                     ) -> dict[str, Any]:
    """The walk-forward answer {"results": [per crypto], "summary": {...}}, stored as a batch of kind walkforward."""
    strategy, chosen, windows, sets, skipped = plan_walk_forward(service, strategy_id, grid, fixed, options,
                                                                 selection)
    check_request_size(windows * (len(sets) + 1), max_backtests, "walkforward", "grid")
    with service.admitted():
        started = time.perf_counter()
        parallel = service.choose_parallel(use_parallel, len(chosen), settings=len(sets) * max(1, windows) //
                                           max(1, len(chosen)))
        processes = pool_size(len(chosen), service.max_processes) if parallel else 1
        total = windows * (len(sets) + 1)
        done = 0

        def advance(step: int) -> None:
            nonlocal done
            done += step
            if progress is not None:
                progress(min(done, total), total)

        advance(0)
        trained: list[TrainedCrypto] = []
        args = [(c, strategy.id, sets, options, service.db_config) for c in chosen]
        with contextlib.closing(service.stream(train_worker, args, parallel, processes)) as stream:
            for t in stream:
                if t.error is not None and t.error["code"] == DATABASE_FAILED:
                    raise _database_failed(t.error)
                trained.append(t)
                advance(len(t.windows) * len(sets))
        trained_by = stream.describe()  # who ran the train pass (the test pass may run on fewer workers)
        picks, choices = _choices(trained, options)
        tested: dict[int, dict[str, Any]] = {}
        todo = [(c, t) for c, t in zip(chosen, trained) if t.error is None]
        args = [(c, strategy.id, t.windows, [None if i is None else sets[i] for i in picks[c["id"]]],
                 t.header["data_version"], equity_curve, service.db_config) for c, t in todo]
        with contextlib.closing(service.stream(test_worker, args, parallel, processes)) as stream:
            for (crypto, t), answer in zip(todo, stream):
                if answer.get("error") is not None and answer["error"]["code"] == DATABASE_FAILED:
                    raise _database_failed(answer["error"])
                tested[crypto["id"]] = answer
                advance(len(t.windows))
        results = _ranked([_crypto_result(c, t, picks.get(c["id"]), sets, tested.get(c["id"]), options)
                           for c, t in zip(chosen, trained)])
        batch_id = str(uuid.uuid4()) if store else None
        summary = {**walkforward_summary(results, options), **options.describe(), "strategy_id": strategy.id,
                   "settings": len(sets), "skipped": skipped, "backtests": total,
                   "parallel": parallel, "requested_parallel": use_parallel, "processes": processes,
                   "selection": selection.describe(), "total_time": time.perf_counter() - started,
                   "retryable": sum(1 for r in results if r["error"] is not None
                                    and r["error"]["code"] in RETRYABLE_ERRORS),
                   "batch_id": batch_id,
                   **max(trained_by, stream.describe(), key=lambda d: d["workers"])}
        if choices is not None:
            summary["choices"] = [{**c, "parameters": None if c["setting"] is None else sets[c["setting"]]}
                                  for c in choices]
        if batch_id is not None:
            with service.engine.begin() as conn:
                present = repo.lock_cryptos_for_results(conn, [c["id"] for c in chosen])
                kept = [r for r in results if r["crypto_id"] in present]
                repo.insert_batch(conn, batch_id, "walkforward", strategy.id, summary,
                                  [c["id"] for c in chosen if c["id"] in present], results=kept)
        return {"results": results, "summary": summary}


def plan_walk_forward(service: CryptoBacktestService, strategy_id: int, grid: Any, fixed: Any,
                      options: WalkForwardOptions, selection: Selection) -> tuple[Any, list, int, list, int]:
    """(strategy, chosen cryptos, windows in all, settings, skipped combinations), or the 400/404 the request
    gets before anything runs (a job is checked with it before it is queued)."""
    strategy = service.strategy(strategy_id)
    chosen = choose(service.cryptos(), selection)
    spans = _estimated_windows(service, chosen, options, selection)
    if chosen and not any(spans.values()):
        shortest = min((c.get("interval", "1d") for c in chosen), key=lambda i: SECONDS_PER_INTERVAL.get(i, 86_400))
        if min(options.train_days, options.test_days) * 86_400 < SECONDS_PER_INTERVAL.get(shortest, 86_400):
            field = "train_days" if options.train_days <= options.test_days else "test_days"
            raise ValidationFailed(f"{field} is shorter than one candle of every chosen crypto",
                                   [{"field": field, "message": f"shorter than one candle (at least {shortest})"}])
        raise ValidationFailed(
            f"no chosen crypto has a whole window: train_days + test_days = "
            f"{options.train_days + options.test_days:g} days, the longest history in the span is "
            f"{max(_days(service, chosen, selection).values()):g} days",
            [{"field": "train_days", "message": f"train_days + test_days ({options.train_days + options.test_days:g}"
                                                f" days) is longer than every chosen crypto's history"}])
    windows = sum(spans.values())
    sets, skipped = service.expand_checked_grid(strategy, grid, fixed, windows, "crypto windows")
    return strategy, chosen, windows, sets, skipped


def _choices(trained: Sequence[TrainedCrypto], options: WalkForwardOptions
             ) -> tuple[dict[int, list[int | None]], list[dict[str, Any]] | None]:
    """Per crypto id, each window's chosen setting index; and, for the universe, the choice of each window."""
    if options.select == "per_crypto":
        return {t.header["crypto_id"]: choose_per_crypto(t, options.rank_by) for t in trained}, None
    ok = [t for t in trained if t.error is None]
    choices = choose_universe(ok, options.rank_by)
    by_window = {c["window"]: c["setting"] for c in choices}
    return {t.header["crypto_id"]: [by_window.get(w.index) for w in t.windows] for t in trained}, choices


def _crypto_result(crypto: Mapping[str, Any], trained: TrainedCrypto, picks: Sequence[int | None] | None,
                   sets: Sequence[Mapping[str, Any]], tested: Mapping[str, Any] | None,
                   options: WalkForwardOptions) -> dict[str, Any]:
    """One crypto's entry: its windows with in- and out-of-sample metrics, the chained account, or its error."""
    error = trained.error or (tested or {}).get("error")
    if error is not None or tested is None or picks is None:
        return {**trained.header, "windows": [], "out_of_sample": None, "error": error}
    windows = [window_entry(w, rows, i, None if i is None else sets[i], entry, options.rank_by)
               for w, rows, i, entry in zip(trained.windows, trained.train, picks, tested["windows"])]
    out = {**trained.header, "windows": windows, "out_of_sample": tested["out_of_sample"]}
    if "equity_curve" in tested:
        out["equity_curve"] = tested["equity_curve"]
    out["error"] = None
    return out


def _ranked(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Best chained out-of-sample return first; cryptos without one last; ties by crypto id."""
    def key(r: Mapping[str, Any]) -> tuple:
        value = None if r["out_of_sample"] is None else r["out_of_sample"]["total_return"]
        return value is None, -(value or 0.0), r["crypto_id"]
    return sorted(results, key=key)


def _database_failed(error: Mapping[str, str]) -> DatabaseUnavailable:
    return DatabaseUnavailable(f"the database failed during the walk-forward ({error['message']}); nothing was "
                               "stored, try again shortly")


def _spans(service: CryptoBacktestService, chosen: Sequence[Mapping[str, Any]],
           selection: Selection) -> dict[int, tuple[int, int, str]]:
    """Per chosen crypto id, (first, last) candle open time inside the selection's span (an estimate at its edges)."""
    with service.engine.connect() as conn:
        rows = {r["id"]: r for r in repo.crypto_summaries(conn)}
    out = {}
    for c in chosen:
        row = rows.get(c["id"])
        if row is None:
            continue
        first, last = int(row["first_time"].timestamp()), int(row["last_time"].timestamp())
        if selection.start is not None:
            first = max(first, selection.start)
        if selection.end is not None:
            last = min(last, selection.end)
        if first <= last:
            out[c["id"]] = (first, last, row["interval"])
    return out


def _estimated_windows(service: CryptoBacktestService, chosen: Sequence[Mapping[str, Any]],
                       options: WalkForwardOptions, selection: Selection) -> dict[int, int]:
    """How many windows each chosen crypto has (from its first and last candle; the workers lay the real ones)."""
    out = {}
    for cid, (first, last, interval) in _spans(service, chosen, selection).items():
        try:
            out[cid] = len(options.windows(first, last, interval))
        except TooManyWindows as exc:
            symbol = next(c["symbol"] for c in chosen if c["id"] == cid)
            field = "test_days" if options.step_days is None else "step_days"
            raise ValidationFailed(f"the windows would be {exc} on {symbol}: make {field} longer",
                                   [{"field": field, "message": f"{exc.count:,} windows on {symbol}; at most "
                                                                f"{MAX_WINDOWS:,}"}]) from None
    return out


def _days(service: CryptoBacktestService, chosen: Sequence[Mapping[str, Any]], selection: Selection) -> dict[int, float]:
    return {cid: (last - first) / 86_400 + 1 for cid, (first, last, _) in _spans(service, chosen, selection).items()} \
        or {0: 0.0}


# ---- the workers (static, picklable: they run in the pool's processes) ------------------------------------------------

def train_worker(crypto: dict[str, Any], strategy_id: int, sets: list[dict[str, Any]], options: WalkForwardOptions,
                 db_config: dict[str, Any]) -> TrainedCrypto:
    """One crypto's windows and the grid on each train span, on this process's own connection; never raises."""
    try:
        prices = read_crypto(crypto, db_config, fields_for(strategy_id, sets, with_trades=True))
        inside = inside_span(crypto, prices)
        if span_missed(prices, inside):
            return TrainedCrypto(crypto_header(crypto, inside), (), (), {"code": "no_data",
                                                                          "message": NO_CANDLES_IN_SPAN})
        return train_crypto(crypto, strategy_id, sets, options, inside)
    except Exception as exc:  # one crypto's failure must not sink the batch
        return lost_training(crypto, failure_code(crypto, exc), f"{type(exc).__name__}: {exc}")


def test_worker(crypto: dict[str, Any], strategy_id: int, windows: Sequence[Window],
                chosen: Sequence[Mapping[str, Any] | None], data_version: int | None, equity_curve: bool,
                db_config: dict[str, Any]) -> dict[str, Any]:
    """The chosen settings on one crypto's test spans, chained; never raises."""
    try:
        params = [p for p in chosen if p is not None]
        prices = read_crypto(crypto, db_config, fields_for(strategy_id, params, with_trades=True))
        if prices.version != data_version:
            return {"error": {"code": "data_changed", "message": "the candles of this cryptocurrency changed during "
                                                                 "the walk-forward; run it again"}}
        answer = run_test_spans(crypto, strategy_id, windows, chosen, inside_span(crypto, prices), equity_curve)
        return {**answer, "error": None}
    except Exception as exc:  # one crypto's failure must not sink the batch
        return {"error": {"code": failure_code(crypto, exc), "message": f"{type(exc).__name__}: {exc}"}}


test_worker.__test__ = False  # type: ignore[attr-defined]  # not a test, whatever pytest thinks of its name


def _lost_training(task_args: tuple, failure: TaskFailure) -> TrainedCrypto:
    return lost_training(task_args[0], failure.code, failure.message)


def _lost_test(task_args: tuple, failure: TaskFailure) -> dict[str, Any]:
    return {"error": {"code": failure.code, "message": failure.message}}


train_worker.lost = _lost_training  # type: ignore[attr-defined]  # what the service's fan-out makes of a lost task
test_worker.lost = _lost_test  # type: ignore[attr-defined]
