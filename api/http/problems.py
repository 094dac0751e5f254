"""One JSON error format for the whole API (RFC 9457 problem details), and the error mapping.

Every exception that reaches the HTTP layer goes through `problem_for`, so a
flask-restful route, an unknown URL and a Flask-level error all answer the
same shape, and nothing ever answers a stack trace.
"""
from __future__ import annotations

import logging
from typing import Any

import orjson
from flask import Response
from pydantic import ValidationError as PydanticValidationError
from sqlalchemy.exc import DBAPIError, OperationalError
from werkzeug.exceptions import HTTPException

from api.http.body import BodyTimeout, BodyUnreadable
from api.services.errors import Busy, DatabaseUnavailable, NotFound, ServiceError, ValidationFailed
from api.services.idempotency import IdempotencyConflict

log = logging.getLogger(__name__)

PROBLEM_MIMETYPE = "application/problem+json"


class BadRequest(Exception):
    """The request itself is malformed (body, content type); carries its own status."""

    def __init__(self, status: int, title: str, detail: str, errors: list[dict[str, str]] | None = None) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail, self.errors = status, title, detail, errors or []


def problem_response(status: int, title: str, detail: str, errors: list[dict[str, str]] | None = None,
                     headers: dict[str, str] | None = None) -> Response:
    """A problem+json response."""
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    if errors:
        body["errors"] = errors
    return Response(orjson.dumps(body), status=status, mimetype=PROBLEM_MIMETYPE, headers=headers)


def pydantic_errors(exc: PydanticValidationError) -> list[dict[str, str]]:
    """Pydantic's errors as [{field, message}] with dotted field paths."""
    out = []
    for err in exc.errors(include_url=False):
        field = ".".join(str(p) for p in err["loc"]) or "body"
        out.append({"field": field, "message": err["msg"]})
    return out


def problem_for(exc: BaseException) -> Response:
    """Map any exception to its problem response."""
    if isinstance(exc, BadRequest):
        return problem_response(exc.status, exc.title, exc.detail, exc.errors)
    if isinstance(exc, BodyUnreadable):
        return problem_response(400, "Invalid request", f"the request body could not be read: {exc.reason}",
                                [{"field": "body", "message": f"unreadable: {exc.reason}"}])
    if isinstance(exc, BodyTimeout):
        message = f"not complete within REQUEST_BODY_TIMEOUT_SECONDS = {exc.seconds:g}"
        return problem_response(408, "Request timeout", f"the request body was {message} s; nothing was done",
                                [{"field": "body", "message": message}])
    if isinstance(exc, PydanticValidationError):
        errors = pydantic_errors(exc)
        return problem_response(400, "Invalid request", "; ".join(f"{e['field']}: {e['message']}" for e in errors),
                                errors)
    if isinstance(exc, IdempotencyConflict):
        status = 409 if exc.reason == "in_progress" else 422
        return problem_response(status, "Conflict" if status == 409 else "Unprocessable content", exc.detail,
                                exc.errors, headers={"Retry-After": "1"} if status == 409 else None)
    if isinstance(exc, Busy):
        return problem_response(429, "Too many requests", exc.detail, headers={"Retry-After": str(exc.retry_after)})
    if isinstance(exc, DatabaseUnavailable):
        log.warning("database failed during the work: %s", exc.detail)
        return problem_response(503, "Database unavailable", exc.detail,
                                [{"field": "database", "message": "unavailable; nothing was stored"}],
                                headers={"Retry-After": str(exc.retry_after)})
    if isinstance(exc, NotFound):
        return problem_response(404, "Not found", exc.detail, exc.errors)
    if isinstance(exc, ValidationFailed):
        return problem_response(400, "Invalid request",
                                "; ".join(f"{e['field']}: {e['message']}" for e in exc.errors) or exc.detail,
                                exc.errors)
    if isinstance(exc, ServiceError):
        return problem_response(400, "Invalid request", exc.detail, exc.errors)
    if isinstance(exc, HTTPException):
        status = exc.code or 500
        return problem_response(status, exc.name, exc.description or exc.name)
    if isinstance(exc, (OperationalError, DBAPIError)) and _is_unavailable(exc):
        log.warning("database unavailable: %s", exc)
        return problem_response(503, "Database unavailable",
                                "the database did not answer in time or is down; try again shortly",
                                headers={"Retry-After": "5"})
    log.exception("unhandled error", exc_info=exc)
    return problem_response(500, "Internal server error", "an unexpected error occurred; it has been logged")


def _is_unavailable(exc: DBAPIError) -> bool:
    if isinstance(exc, OperationalError):
        return True
    sqlstate = getattr(getattr(exc, "orig", None), "sqlstate", None) or ""
    # 57014 query_canceled (statement_timeout), 55P03 lock_not_available, 53xxx resources, 08xxx connection
    return sqlstate in {"57014", "55P03"} or sqlstate.startswith(("53", "08"))
