"""HTTP layer: the route table, JSON errors for every URL (known or not)."""
from __future__ import annotations

from flask import Flask
from werkzeug.exceptions import HTTPException

from api.http.api import ProblemApi
from api.http.openapi import OpenApiResource
from api.http.problems import problem_for
from api.http.resources.backtests import BatchBacktestResource, SingleBacktestResource, SweepBacktestResource
from api.http.resources.catalog import CryptocurrencyListResource, StrategyListResource
from api.http.resources.health import HealthResource, ReadyResource
from api.http.resources.prices import PriceUploadResource

ROUTES = (
    (BatchBacktestResource, "/api/crypto/backtest/all"),
    (SweepBacktestResource, "/api/crypto/backtest/sweep"),
    (SingleBacktestResource, "/api/crypto/backtest"),
    (StrategyListResource, "/api/strategies"),
    (CryptocurrencyListResource, "/api/crypto/cryptocurrencies"),
    (PriceUploadResource, "/api/crypto/prices"),
    (HealthResource, "/api/health"),
    (ReadyResource, "/api/ready"),
    (OpenApiResource, "/api/openapi.json"),
)


def register_http(app: Flask) -> ProblemApi:
    """Mount every resource and make Flask-level errors (404 on unknown URLs...) answer problem JSON."""
    api = ProblemApi(app)
    for resource, url in ROUTES:
        api.add_resource(resource, url)
    app.register_error_handler(HTTPException, problem_for)
    app.register_error_handler(Exception, problem_for)
    return api
