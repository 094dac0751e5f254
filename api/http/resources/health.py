"""GET /api/health (the process answers) and GET /api/ready (database reachable, schema at head)."""
from __future__ import annotations

from flask import current_app
from flask_restful import Resource
from sqlalchemy.exc import SQLAlchemyError

from api.db.repository import schema_status
from api.http.problems import NotReady


class HealthResource(Resource):
    def get(self):
        return {"status": "ok"}, 200


class ReadyResource(Resource):
    def get(self):
        try:
            with current_app.extensions["db_engine"].connect() as conn:
                status = schema_status(conn)
        except SQLAlchemyError as exc:
            raise NotReady(str(exc.__cause__ or exc).splitlines()[0], database="unreachable") from exc
        if not status["at_head"]:
            raise NotReady("migrations are not at head; run `alembic upgrade head`", database="reachable", **status)
        return {"status": "ready", "database": "reachable", **status}, 200
