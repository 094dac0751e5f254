"""GET /api/strategies and GET /api/crypto/cryptocurrencies."""
from __future__ import annotations

from flask_restful import Resource

from api.http.resources.common import backtest_service


class StrategyListResource(Resource):
    def get(self):
        strategies = backtest_service().list_strategies()
        return {"strategies": strategies, "count": len(strategies)}, 200


class CryptocurrencyListResource(Resource):
    def get(self):
        cryptos = backtest_service().list_cryptocurrencies()
        return {"cryptocurrencies": cryptos, "count": len(cryptos)}, 200
