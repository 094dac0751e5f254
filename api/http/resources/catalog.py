"""GET /api/strategies, GET and DELETE /api/crypto/cryptocurrencies, DELETE /api/crypto/cryptocurrencies/{symbol},
GET /api/crypto/cryptocurrencies/{symbol}/candles."""
from __future__ import annotations

from flask import request
from flask_restful import Resource

from api.http.problems import BadRequest

from api.http.resources.common import backtest_service
from api.services.selection import parse_selection


class StrategyListResource(Resource):
    def get(self):
        strategies = backtest_service().list_strategies()
        return {"strategies": strategies, "count": len(strategies)}, 200


class CryptocurrencyListResource(Resource):
    def get(self):
        cryptos = backtest_service().list_cryptocurrencies()
        return {"cryptocurrencies": cryptos, "count": len(cryptos)}, 200

    def delete(self):
        """Only ?synthetic=true: every synthetic demo crypto (a real one is deleted by its symbol)."""
        if request.args.get("synthetic", "").lower() != "true":
            raise BadRequest(400, "Invalid request", "DELETE on the collection needs ?synthetic=true (every demo "
                             "crypto); delete a real crypto by its symbol",
                             [{"field": "synthetic", "message": "must be true"}])
        return backtest_service().delete_cryptocurrencies(synthetic=True), 200


class CryptocurrencyResource(Resource):
    def delete(self, symbol: str):
        return backtest_service().delete_cryptocurrencies(symbol=symbol), 200


class CryptoCandlesResource(Resource):
    def get(self, symbol: str):
        """?start=&end= (ISO dates or datetimes, as a batch's span): the candles a price chart draws."""
        selection = parse_selection(None, request.args.get("start") or None, request.args.get("end") or None)
        return backtest_service().candles(symbol, selection), 200
