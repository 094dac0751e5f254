"""Read a JSON request body strictly: right content type, valid JSON, an object."""
from __future__ import annotations

import json
from typing import Any

import orjson
from flask import request

from api.http.problems import BadRequest

MAX_JSON_DEPTH = 32


def json_body() -> dict[str, Any]:
    """The request's JSON object, or a 4xx BadRequest saying what is wrong with it."""
    if not request.mimetype or request.mimetype != "application/json":
        raise BadRequest(415, "Unsupported media type",
                         f"send the body as application/json (got {request.mimetype or 'no content type'})",
                         [{"field": "body", "message": "content type must be application/json"}])
    raw = request.get_data(cache=True)
    if not raw.strip():
        raise BadRequest(400, "Invalid request", "the request body is empty; send a JSON object",
                         [{"field": "body", "message": "required"}])
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        body = _lenient_loads(raw, exc)
    if not isinstance(body, dict):
        raise BadRequest(400, "Invalid request", "the body must be a JSON object",
                         [{"field": "body", "message": "must be an object"}])
    if _depth(body) > MAX_JSON_DEPTH:
        raise BadRequest(400, "Invalid request", f"the body nests deeper than {MAX_JSON_DEPTH} levels",
                         [{"field": "body", "message": "nested too deeply"}])
    return body


def _lenient_loads(raw: bytes, first_error: Exception) -> Any:
    """Accept NaN/Infinity literals (which orjson refuses) so validation can name the field they are in."""
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        raise BadRequest(400, "Invalid JSON", f"the body is not valid JSON: {first_error}",
                         [{"field": "body", "message": "not valid JSON"}]) from None


def _depth(value: Any, level: int = 1) -> int:
    if level > MAX_JSON_DEPTH:
        return level
    if isinstance(value, dict):
        return max((_depth(v, level + 1) for v in value.values()), default=level)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level)
    return level


_KEY_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:")


def idempotency_key() -> str | None:
    """The request's Idempotency-Key header (1-255 of [A-Za-z0-9-_.:]), None when absent."""
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not 1 <= len(key) <= 255 or not set(key) <= _KEY_CHARS:
        raise BadRequest(400, "Invalid request", "Idempotency-Key must be 1-255 characters of A-Z a-z 0-9 - _ . :",
                         [{"field": "Idempotency-Key", "message": "1-255 characters of A-Z a-z 0-9 - _ . :"}])
    return key
