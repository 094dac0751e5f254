"""GET /api/crypto/backtest/batches (newest first, paginated), /batches/{id} (JSON or CSV), its trades (CSV)."""
from __future__ import annotations

from flask import Response, request
from flask_restful import Resource

from api.http.problems import BadRequest
from api.http.resources.common import backtest_service
from api.services import batches


def _wants_csv(formats: tuple[str, ...] = ("json", "csv")) -> bool:
    """?format= (one of `formats`) or else the Accept header; an unknown format is a 400 naming it."""
    given = request.args.get("format")
    if given is not None:
        if given.lower() not in formats:
            raise BadRequest(400, "Invalid request", f"format must be one of {', '.join(formats)}",
                             [{"field": "format", "message": f"must be one of {', '.join(formats)}, got {given[:40]!r}"}])
        return given.lower() == "csv"
    best = request.accept_mimetypes.best_match(["application/json", "text/csv"])
    return best == "text/csv"


class BatchListResource(Resource):
    def get(self):
        args = request.args
        return batches.list_batches(backtest_service().engine, args.get("limit", 50), args.get("cursor"),
                                    args.get("strategy_id"), args.get("symbol"), args.get("since")), 200


class BatchResource(Resource):
    def get(self, batch_id: str):
        engine = backtest_service().engine
        if _wants_csv():
            return Response(batches.batch_csv(engine, batch_id), status=200, mimetype="text/csv",
                            headers={"Content-Disposition": f'attachment; filename="batch-{batch_id}.csv"'})
        return batches.read_batch(engine, batch_id), 200


class BatchTradesResource(Resource):
    def get(self, batch_id: str):
        _wants_csv(("csv",))  # trades are CSV only
        return Response(batches.batch_trades_csv(backtest_service().engine, batch_id), status=200,
                        mimetype="text/csv",
                        headers={"Content-Disposition": f'attachment; filename="batch-{batch_id}-trades.csv"'})
