"""One JSON error format for the whole API (RFC 9457 problem details), and the error mapping.

Every exception that reaches the HTTP layer goes through `problem_for`, so a
flask-restful route, an unknown URL and a Flask-level error all answer the
same shape - `type`, `title`, `status`, `detail` and a non-empty `errors`
list of `{field, message}` - and nothing ever answers a stack trace.
"""
from __future__ import annotations

import logging
from typing import Any

import orjson
from flask import Response, has_request_context, request
from pydantic import ValidationError as PydanticValidationError
from sqlalchemy.exc import DBAPIError, OperationalError
from werkzeug.exceptions import ClientDisconnected, HTTPException, MethodNotAllowed, RequestEntityTooLarge
from werkzeug.exceptions import NotFound as NoRoute

from api.http.body import BodyTimeout, BodyUnreadable
from api.services.errors import (Busy, Conflict, DatabaseUnavailable, ExecutorUnavailable, NotFound, ServiceError,
                                 TooLargeForRequest, ValidationFailed)
from api.services.idempotency import IdempotencyConflict

log = logging.getLogger(__name__)

PROBLEM_MIMETYPE = "application/problem+json"
READY_RETRY_AFTER_S = 5


class BadRequest(Exception):
    """The request itself is malformed (body, content type); carries its own status."""

    def __init__(self, status: int, title: str, detail: str, errors: list[dict[str, str]] | None = None) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail, self.errors = status, title, detail, errors or []


class NotReady(Exception):
    """GET /api/ready: the database is unreachable or its schema is behind; `state` joins the answer."""

    def __init__(self, detail: str, **state: Any) -> None:
        super().__init__(detail)
        self.detail, self.state = detail, state


def problem_response(status: int, title: str, detail: str, errors: list[dict[str, str]] | None = None,
                     headers: dict[str, str] | None = None, extra: dict[str, Any] | None = None) -> Response:
    """A problem+json response; `errors` defaults to one entry for the whole request, `extra` adds members."""
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status, "detail": detail,
                            "errors": errors or [{"field": "request", "message": detail}]}
    for key, value in (extra or {}).items():
        body.setdefault(key, value)
    return Response(orjson.dumps(body), status=status, mimetype=PROBLEM_MIMETYPE, headers=headers)


def pydantic_errors(exc: PydanticValidationError) -> list[dict[str, str]]:
    """Pydantic's errors as [{field, message}] with dotted field paths."""
    out = []
    for err in exc.errors(include_url=False):
        field = ".".join(str(p) for p in err["loc"]) or "body"
        out.append({"field": field, "message": err["msg"]})
    return out


def problem_body(exc: BaseException) -> dict[str, Any]:
    """The problem+json body `problem_for` answers for `exc` (what a failed job keeps as its `error`)."""
    return orjson.loads(problem_for(exc).get_data())


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
    if isinstance(exc, NotReady):
        return problem_response(503, "Service unavailable", exc.detail,
                                [{"field": "database", "message": exc.detail}],
                                headers={"Retry-After": str(READY_RETRY_AFTER_S)}, extra=exc.state)
    if isinstance(exc, PydanticValidationError):
        errors = pydantic_errors(exc)
        return problem_response(400, "Invalid request", "; ".join(f"{e['field']}: {e['message']}" for e in errors),
                                errors)
    if isinstance(exc, IdempotencyConflict):
        status = 409 if exc.reason == "in_progress" else 422
        return problem_response(status, "Conflict" if status == 409 else "Unprocessable content", exc.detail,
                                exc.errors, headers={"Retry-After": "1"} if status == 409 else None)
    if isinstance(exc, Conflict):  # retry_after 0: trying again will not help (a finished job, changed candles)
        return problem_response(409, "Conflict", exc.detail, exc.errors,
                                headers={"Retry-After": str(exc.retry_after)} if exc.retry_after else None)
    if isinstance(exc, Busy):
        return problem_response(429, "Too many requests", exc.detail,
                                [{"field": "request", "message": f"{exc.detail} (Retry-After: {exc.retry_after} s)"}],
                                headers={"Retry-After": str(exc.retry_after)})
    if isinstance(exc, DatabaseUnavailable):
        log.warning("database failed during the work: %s", exc.detail)
        return problem_response(503, "Database unavailable", exc.detail,
                                [{"field": "database", "message": "unavailable; nothing was stored"}],
                                headers={"Retry-After": str(exc.retry_after)})
    if isinstance(exc, TooLargeForRequest):
        return problem_response(422, "Unprocessable content", exc.detail, exc.errors)
    if isinstance(exc, ExecutorUnavailable):
        log.warning("executor unavailable: %s", exc.detail)
        return problem_response(503, "Executor unavailable", exc.detail, exc.errors,
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
        return _http_problem(exc)
    if isinstance(exc, (OperationalError, DBAPIError)) and _is_unavailable(exc):
        log.warning("database unavailable: %s", exc)
        return problem_response(503, "Database unavailable",
                                "the database did not answer in time or is down; try again shortly",
                                [{"field": "database", "message": "unavailable; try again after Retry-After"}],
                                headers={"Retry-After": "5"})
    log.exception("unhandled error", exc_info=exc)
    return problem_response(500, "Internal server error", "an unexpected error occurred; it has been logged",
                            [{"field": "server", "message": "unexpected error; it has been logged"}])


def _http_problem(exc: HTTPException) -> Response:
    """werkzeug's own errors (no such route, wrong method, too large...) in the API's shape."""
    headers = {k: v for k, v in exc.get_headers() if k.lower() != "content-type"}  # keeps 405's Allow
    path = request.path if has_request_context() else ""
    if isinstance(exc, NoRoute):
        detail = f"no route {path}; GET /api/openapi.json lists every route"
        errors = [{"field": "path", "message": f"{path} is not a route of this API"}]
    elif isinstance(exc, MethodNotAllowed):
        allowed = headers.get("Allow", "")
        method = request.method if has_request_context() else ""
        detail = f"{method} is not allowed on {path}; allowed: {allowed}"
        errors = [{"field": "method", "message": f"{method} not allowed; use one of {allowed}"}]
    elif isinstance(exc, RequestEntityTooLarge):
        detail, errors = _too_large()
    else:
        detail = exc.description or exc.name
        errors = [{"field": "body" if isinstance(exc, ClientDisconnected) else "request", "message": detail}]
    return problem_response(exc.code or 500, exc.name, detail, errors, headers=headers)


def _too_large() -> tuple[str, list[dict[str, str]]]:
    """413 names the limit: MAX_UPLOAD_MB, or for multipart forms also werkzeug's per-field and parts limits."""
    limit = request.max_content_length if has_request_context() else None
    if limit is None:
        return "the request is too large", [{"field": "body", "message": "too large"}]
    message = f"larger than MAX_UPLOAD_MB = {limit / 2**20:g} ({limit} bytes)"
    detail = f"the request body is {message}"
    declared = request.content_length
    if request.mimetype == "multipart/form-data" and (declared is None or declared <= limit):
        detail += (f", or a form text field is over {request.max_form_memory_size} bytes, "
                   f"or the form has more than {request.max_form_parts} parts")
    return detail, [{"field": "body", "message": message}]


def _is_unavailable(exc: DBAPIError) -> bool:
    if isinstance(exc, OperationalError):
        return True
    sqlstate = getattr(getattr(exc, "orig", None), "sqlstate", None) or ""
    # 57014 query_canceled (statement_timeout), 55P03 lock_not_available, 53xxx resources, 08xxx connection
    return sqlstate in {"57014", "55P03"} or sqlstate.startswith(("53", "08"))
