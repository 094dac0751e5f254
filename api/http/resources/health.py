"""GET /api/health (the process answers) and GET /api/ready (database reachable, schema at head)."""
from __future__ import annotations

from flask_restful import Resource

from api.http.problems import NotReady
from api.http.resources.common import backtest_service


class HealthResource(Resource):
    def get(self):
        return {"status": "ok"}, 200


class ReadyResource(Resource):
    def get(self):
        status = backtest_service().readiness()
        if status["database"] == "unreachable":
            raise NotReady(status["detail"], database="unreachable")
        if not status["at_head"]:
            raise NotReady("migrations are not at head; run `alembic upgrade head`", **status)
        return {"status": "ready", **status}, 200
