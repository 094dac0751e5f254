"""POST /api/crypto/backtest/all (every crypto), /backtest/sweep (many settings), /backtest/walkforward (out of
sample?), /backtest/montecarlo (luck?) and /backtest (one crypto)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Response
from flask_restful import Resource
from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from api.http.api import json_bytes
from api.http.problems import BadRequest, pydantic_errors
from api.http.requests import idempotency_key, json_body
from api.http.resources.common import backtest_service, sync_max_backtests
from api.http.schemas import (BatchBacktestRequest, MonteCarloRequest, SingleBacktestRequest, SweepBacktestRequest,
                              WalkForwardRequest)
from api.services.backtest_service import is_final
from api.services.errors import ServiceError, ValidationFailed
from api.services.idempotency import run_once
from api.services.selection import choose, parse_selection

Progress = Callable[[int, int], None]


def _answer(body: dict[str, Any], run: Callable[[], dict[str, Any]]) -> Any:
    """run()'s answer; with an Idempotency-Key, run at most once per key and replayed after."""
    key = idempotency_key()
    if key is None:
        return run(), 200

    def produce() -> tuple[int, bytes, bool]:
        answer = run()
        return 200, json_bytes(answer), is_final(answer)

    status, payload, replayed = run_once(backtest_service().engine, key, body, produce)
    return Response(payload, status=status, mimetype="application/json",
                    headers={"Idempotent-Replayed": "true"} if replayed else None)


# ---- a body -> the service call: one function per kind, shared by its route and by the job runner ----------------
# A route passes max_backtests=SYNC_MAX_BACKTESTS (more answers 422 naming /api/jobs); a job passes none.

def run_all(body: dict[str, Any], progress: Progress | None = None,
            max_backtests: int | None = None) -> dict[str, Any]:
    req = BatchBacktestRequest.model_validate(body)
    selection = parse_selection(req.symbols, req.start, req.end)
    return backtest_service().run_strategy_against_all_cryptos(
        req.strategy_id, req.parameters, use_parallel=req.use_parallel, selection=selection,
        use_cache=req.use_cache, progress=progress, max_backtests=max_backtests)


def _sweep_request(body: dict[str, Any]) -> SweepBacktestRequest:
    req = SweepBacktestRequest.model_validate(body)
    if (req.parameter_sets is None) == (req.grid is None):
        raise BadRequest(400, "Invalid request", "give exactly one of parameter_sets or grid",
                         [{"field": "parameter_sets", "message": "give exactly one of parameter_sets or grid"}])
    if req.fixed is not None and req.grid is None:
        raise BadRequest(400, "Invalid request", "fixed goes with grid",
                         [{"field": "fixed", "message": "only with grid"}])
    return req


def run_sweep(body: dict[str, Any], progress: Progress | None = None,
              max_backtests: int | None = None) -> dict[str, Any]:
    req = _sweep_request(body)
    selection = parse_selection(req.symbols, req.start, req.end)
    if req.grid is not None:
        return backtest_service().run_grid_sweep(
            req.strategy_id, req.grid, req.fixed, use_parallel=req.use_parallel, store=req.store,
            selection=selection, rank_by=req.rank_by, top=req.top, use_cache=req.use_cache, progress=progress,
            max_backtests=max_backtests)
    return backtest_service().run_parameter_sweep(
        req.strategy_id, req.parameter_sets, use_parallel=req.use_parallel, store=req.store, selection=selection,
        max_backtests=max_backtests)


def run_walkforward(body: dict[str, Any], progress: Progress | None = None,
                    max_backtests: int | None = None) -> dict[str, Any]:
    req = WalkForwardRequest.model_validate(body)
    selection = parse_selection(req.symbols, req.start, req.end)
    return backtest_service().run_walk_forward(
        req.strategy_id, req.grid, req.fixed, train_days=req.train_days, test_days=req.test_days,
        step_days=req.step_days, anchored=req.anchored, rank_by=req.rank_by, select=req.select,
        use_parallel=req.use_parallel, selection=selection, store=req.store, equity_curve=req.equity_curve,
        progress=progress, max_backtests=max_backtests)


def run_montecarlo(body: dict[str, Any], progress: Progress | None = None,
                   max_backtests: int | None = None) -> dict[str, Any]:
    req = MonteCarloRequest.model_validate(body)
    selection = parse_selection(req.symbols, req.start, req.end)
    return backtest_service().run_monte_carlo(
        req.strategy_id, req.parameters, method=req.method, paths=req.paths, block_bars=req.block_bars,
        seed=req.seed, use_parallel=req.use_parallel, selection=selection, store=req.store, progress=progress,
        max_backtests=max_backtests)


def check_body(model: type[BaseModel]) -> Callable[[dict[str, Any]], None]:
    """A job kind's check before it is queued: the body's shape, its strategy and parameters, its selection (the
    400/404 its route would give first, each field named inside `request`; what only running finds stays for the
    job's `error`). A job keeps its result, so `"store": false` is refused rather than computed and lost."""
    def check(body: dict[str, Any]) -> None:
        try:
            if body.get("store") is False:
                raise ValidationFailed("a job keeps its result: store must be true (or left out)",
                                       [{"field": "store", "message": "must be true for a job: its result is "
                                                                      "what the job's result_url serves"}])
            checked(body)
        except PydanticValidationError as exc:
            raise ValidationFailed("invalid request", _inside_request(pydantic_errors(exc))) from None
        except (ServiceError, BadRequest) as exc:
            exc.errors = _inside_request(exc.errors)  # the problem's detail is made from them
            raise

    def checked(body: dict[str, Any]) -> None:
        req = _sweep_request(body) if model is SweepBacktestRequest else model.model_validate(body)
        service = backtest_service()
        selection = parse_selection(req.symbols, req.start, req.end)
        if isinstance(req, WalkForwardRequest):
            service.check_walk_forward(req.strategy_id, req.grid, req.fixed, req.train_days, req.test_days,
                                       req.step_days, req.anchored, req.rank_by, req.select, selection)
            return
        if isinstance(req, MonteCarloRequest):
            service.check_monte_carlo(req.strategy_id, req.parameters, req.method, req.paths, req.block_bars,
                                      req.seed, selection)
            return
        strategy = service.strategy(req.strategy_id)
        for params in [req.parameters] if isinstance(req, BatchBacktestRequest) else (req.parameter_sets or []):
            service.prepare(req.strategy_id, params)
        chosen = choose(service.cryptos(), selection)  # NotFound naming unknown symbols
        if isinstance(req, SweepBacktestRequest) and req.grid is not None:
            service.expand_checked_grid(strategy, req.grid, req.fixed, len(chosen), "cryptos")
    return check


def _inside_request(errors: list[dict[str, str]]) -> list[dict[str, str]]:
    """A job's fields are inside its `request`: parameters.x -> request.parameters.x."""
    return [{**e, "field": e["field"] if e["field"].startswith("request") else f"request.{e['field']}"}
            for e in errors]


JOB_KINDS: dict[str, tuple[Callable[..., dict[str, Any]], type[BaseModel]]] = {
    "all": (run_all, BatchBacktestRequest), "sweep": (run_sweep, SweepBacktestRequest),
    "walkforward": (run_walkforward, WalkForwardRequest), "montecarlo": (run_montecarlo, MonteCarloRequest)}


class BatchBacktestResource(Resource):
    def post(self):
        body = json_body()
        BatchBacktestRequest.model_validate(body)  # a bad body is a 400 before an Idempotency-Key is taken
        return _answer(body, lambda: run_all(body, max_backtests=sync_max_backtests()))


class SweepBacktestResource(Resource):
    def post(self):
        body = json_body()
        _sweep_request(body)  # a bad body is a 400 before an Idempotency-Key is taken
        return _answer(body, lambda: run_sweep(body, max_backtests=sync_max_backtests()))


class WalkForwardResource(Resource):
    def post(self):
        body = json_body()
        WalkForwardRequest.model_validate(body)
        return _answer(body, lambda: run_walkforward(body, max_backtests=sync_max_backtests()))


class MonteCarloResource(Resource):
    def post(self):
        body = json_body()
        MonteCarloRequest.model_validate(body)
        return _answer(body, lambda: run_montecarlo(body, max_backtests=sync_max_backtests()))


class SingleBacktestResource(Resource):
    def post(self):
        body = json_body()
        req = SingleBacktestRequest.model_validate(body)
        if (req.crypto_id is None) == (req.symbol is None):
            raise BadRequest(400, "Invalid request", "give exactly one of crypto_id or symbol",
                             [{"field": "crypto_id", "message": "give exactly one of crypto_id or symbol"}])
        selection = parse_selection(None, req.start, req.end)
        return _answer(body, lambda: backtest_service().run_single_backtest(
            req.strategy_id, req.parameters, crypto_id=req.crypto_id, symbol=req.symbol, store=req.store,
            selection=selection))
