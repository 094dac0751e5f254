"""Idempotency-Key handling: run a request once per key, replay its stored response after.

Same key and same request: the stored response, nothing runs or is written
again. Same key, another request: Conflict("mismatch") (HTTP 422). Same key
while the first request is still running: Conflict("in_progress") (HTTP 409).
A request that fails releases its key, so the client can retry it; so does
an answer that is not final (some cryptos lost to a dead worker or a
timeout): replaying it for ever would keep a fault's damage.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import orjson
from sqlalchemy.engine import Engine

from api.db import repository as repo
from api.services.errors import ServiceError


class IdempotencyConflict(ServiceError):
    """The key was used for another request (`reason` "mismatch") or its request still runs ("in_progress")."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail, [{"field": "Idempotency-Key", "message": detail}])
        self.reason = reason


def request_hash(body: Any) -> str:
    """SHA-256 of the request body in canonical form (sorted keys), so formatting does not matter."""
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


def run_once(engine: Engine, key: str, body: Any,
             produce: Callable[[], tuple[int, bytes, bool]]) -> tuple[int, bytes, bool]:
    """(status, body bytes, replayed): `produce` runs only for a key not seen before.

    produce returns (status, body, final); only a final answer is recorded
    for replay, anything else (an exception included) releases the key. While
    it runs, this request holds the key's session lock on a connection of its
    own: another request with the key is 409 for exactly as long as this one
    really runs, and not a moment longer if this process dies.
    """
    digest = request_hash(body)
    with engine.connect() as guard:
        locked = repo.try_lock_idempotency_key(guard, key)
        guard.commit()  # the lock is the session's; no transaction stays open for the request
        try:
            if not locked:
                raise _conflict_with_running(engine, key, digest)
            with engine.begin() as conn:
                existing = repo.claim_idempotency_key(conn, key, digest)
            if existing is not None:
                if existing["request_hash"] != digest:
                    raise _mismatch()
                return existing["response_status"], bytes(existing["response_body"]), True
            try:
                status, payload, final = produce()
            except BaseException:
                with engine.begin() as conn:
                    repo.release_idempotency_key(conn, key)
                raise
            with engine.begin() as conn:
                if final:
                    repo.complete_idempotency_key(conn, key, status, payload)
                else:
                    repo.release_idempotency_key(conn, key)
            return status, payload, False
        finally:
            if locked:
                _unlock(guard, key)


def _conflict_with_running(engine: Engine, key: str, digest: str) -> IdempotencyConflict:
    with engine.connect() as conn:
        row = repo.find_idempotency_key(conn, key)
    if row is not None and row["request_hash"] != digest:
        return _mismatch()
    return IdempotencyConflict("in_progress", "the request with this Idempotency-Key is still running")


def _mismatch() -> IdempotencyConflict:
    return IdempotencyConflict("mismatch", "this Idempotency-Key was already used with a different request")


def _unlock(guard: Any, key: str) -> None:
    """Unlock, or drop the connection: a pooled connection must never keep a key's lock."""
    try:
        repo.unlock_idempotency_key(guard, key)
        guard.commit()
    except Exception:  # noqa: BLE001 - a dead connection has lost its locks already
        guard.invalidate()
