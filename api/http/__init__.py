"""HTTP layer: the route table, JSON errors for every URL (known or not), a guarded request body."""
from __future__ import annotations

from flask import Flask
from werkzeug.exceptions import HTTPException

from api.http.api import ProblemApi
from api.http.body import BodyGuard
from api.http.openapi import OpenApiResource
from api.http.problems import problem_for
from api.http.resources.backtests import (BatchBacktestResource, MonteCarloResource, SingleBacktestResource,
                                         SweepBacktestResource, WalkForwardResource)
from api.http.resources.batches import BatchListResource, BatchResource, BatchTradesResource
from api.http.resources.catalog import (CryptoCandlesResource, CryptocurrencyListResource, CryptocurrencyResource,
                                       StrategyListResource)
from api.http.resources.health import HealthResource, ReadyResource
from api.http.resources.jobs import JobCancelResource, JobListResource, JobResource
from api.http.resources.prices import PriceUploadResource

ROUTES = (
    (BatchBacktestResource, "/api/crypto/backtest/all"),
    (SweepBacktestResource, "/api/crypto/backtest/sweep"),
    (WalkForwardResource, "/api/crypto/backtest/walkforward"),
    (MonteCarloResource, "/api/crypto/backtest/montecarlo"),
    (SingleBacktestResource, "/api/crypto/backtest"),
    (BatchListResource, "/api/crypto/backtest/batches"),
    (BatchResource, "/api/crypto/backtest/batches/<string:batch_id>"),
    (BatchTradesResource, "/api/crypto/backtest/batches/<string:batch_id>/trades"),
    (JobListResource, "/api/jobs"),
    (JobResource, "/api/jobs/<string:job_id>"),
    (JobCancelResource, "/api/jobs/<string:job_id>/cancel"),
    (StrategyListResource, "/api/strategies"),
    (CryptocurrencyListResource, "/api/crypto/cryptocurrencies"),
    (CryptocurrencyResource, "/api/crypto/cryptocurrencies/<string:symbol>"),
    (CryptoCandlesResource, "/api/crypto/cryptocurrencies/<string:symbol>/candles"),
    (PriceUploadResource, "/api/crypto/prices"),
    (HealthResource, "/api/health"),
    (ReadyResource, "/api/ready"),
    (OpenApiResource, "/api/openapi.json"),
)


def register_http(app: Flask) -> ProblemApi:
    """Mount every resource; every error, Flask-level ones too (404 on unknown URLs...), answers problem JSON.

    Every request body is read through BodyGuard: unreadable is a 400, slower
    than REQUEST_BODY_TIMEOUT_SECONDS a 408.
    """
    app.wsgi_app = BodyGuard(app.wsgi_app, app.config["SETTINGS"].request_body_timeout_s)  # type: ignore[method-assign]
    api = ProblemApi(app)
    for resource, url in ROUTES:
        api.add_resource(resource, url)
    app.register_error_handler(HTTPException, problem_for)
    app.register_error_handler(Exception, problem_for)
    return api
