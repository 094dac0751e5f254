"""POST /api/crypto/backtest/all (every crypto), /backtest/sweep (many settings) and /backtest (one crypto)."""
from __future__ import annotations

from flask_restful import Resource

from api.http.problems import BadRequest
from api.http.requests import json_body
from api.http.resources.common import backtest_service
from api.http.schemas import BatchBacktestRequest, SingleBacktestRequest, SweepBacktestRequest


class BatchBacktestResource(Resource):
    def post(self):
        req = BatchBacktestRequest.model_validate(json_body())
        return backtest_service().run_strategy_against_all_cryptos(
            req.strategy_id, req.parameters, use_parallel=req.use_parallel), 200


class SweepBacktestResource(Resource):
    def post(self):
        req = SweepBacktestRequest.model_validate(json_body())
        return backtest_service().run_parameter_sweep(
            req.strategy_id, req.parameter_sets, use_parallel=req.use_parallel, store=req.store), 200


class SingleBacktestResource(Resource):
    def post(self):
        req = SingleBacktestRequest.model_validate(json_body())
        if (req.crypto_id is None) == (req.symbol is None):
            raise BadRequest(400, "Invalid request", "give exactly one of crypto_id or symbol",
                             [{"field": "crypto_id", "message": "give exactly one of crypto_id or symbol"}])
        return backtest_service().run_single_backtest(
            req.strategy_id, req.parameters, crypto_id=req.crypto_id, symbol=req.symbol), 200
